//! `kaggle-solver runtime install|status`: the pinned WASI guest runtime and its compile cache.

use std::process::ExitCode;

use ks_guest_runtime::{RuntimeHome, RuntimeLock};

use super::CliError;
use crate::sandbox::DockerSandbox;
use crate::sandbox::wasm::{Prewarm, SetupEvent, WasmSandbox};

/// Runtime commands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum RuntimeCommand {
    /// Download, verify, unpack and precompile the pinned guest runtime, and build the
    /// pre-warmed guest image (idempotent).
    Install {
        /// Also build the Docker backend's pinned image if it is missing (offline recipe:
        /// mmdebstrap from the host's Debian mirror, then `docker import`).
        #[arg(long)]
        docker: bool,
    },
    /// Print what is installed and where, as JSON.
    Status,
}

impl RuntimeCommand {
    pub(crate) async fn run(self) -> Result<ExitCode, CliError> {
        match self {
            Self::Install { docker } => {
                // Building a sandbox installs the runtime and compiles its module once, and
                // builds the pre-warmed image (a failed build leaves the plain module in use).
                let sandbox = tokio::task::spawn_blocking(|| {
                    WasmSandbox::builder()
                        .prewarm(Prewarm::Now)
                        .progress(print_event)
                        .build()
                })
                .await
                .map_err(|e| CliError::Internal(e.to_string()))??;
                if let Some(Err(reason)) = sandbox.prewarm_state() {
                    super::progress(format!(
                        "warning: no pre-warmed guest, runs use the plain module: {reason}"
                    ));
                }
                if docker {
                    let image = DockerSandbox::pinned_image();
                    let sandbox = DockerSandbox::connect().await?;
                    super::progress(format!("docker image {image}: checking"));
                    let built = sandbox.ensure_image().await?;
                    super::progress(format!(
                        "docker image {image}: {}",
                        if built { "built" } else { "present" }
                    ));
                }
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
