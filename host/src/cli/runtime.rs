//! `kaggle-solver runtime install|status`: the pinned WASI guest runtime and its compile cache.

use std::process::ExitCode;

use ks_guest_runtime::{RuntimeHome, RuntimeLock};

use super::CliError;
use crate::sandbox::wasm::{SetupEvent, WasmSandbox};

/// Runtime commands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum RuntimeCommand {
    /// Download, verify, unpack and precompile the pinned guest runtime (idempotent).
    Install,
    /// Print what is installed and where, as JSON.
    Status,
}

impl RuntimeCommand {
    pub(crate) async fn run(self) -> Result<ExitCode, CliError> {
        match self {
            Self::Install => {
                // Building a sandbox installs the runtime and compiles its module once.
                tokio::task::spawn_blocking(|| {
                    WasmSandbox::builder().progress(print_event).build()
                })
                .await
                .map_err(|e| CliError::Internal(e.to_string()))??;
                print_status()
            }
            Self::Status => print_status(),
        }
    }
}

fn print_status() -> Result<ExitCode, CliError> {
    let home = RuntimeHome::from_env().map_err(|e| CliError::Internal(e.to_string()))?;
    super::print_json(&ks_guest_runtime::status(&home, RuntimeLock::pinned()))?;
    Ok(ExitCode::SUCCESS)
}

/// Prints install and compile progress on stderr.
pub(crate) fn print_event(event: &SetupEvent) {
    super::progress(event);
}
