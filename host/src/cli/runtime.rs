//! `kaggle-solver runtime install|status`: the pinned WASI guest runtime and its compile cache.

use std::process::ExitCode;

use ks_guest_runtime::{InstallEvent, RuntimeHome, RuntimeLock};

use super::CliError;
use super::progress::Progress;
use crate::sandbox::DockerSandbox;
use crate::sandbox::wasm::{Prewarm, PrewarmStep, SetupEvent, WasmSandbox};

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
                let progress = Progress::new();
                let shown = progress.clone();
                let sandbox = tokio::task::spawn_blocking(move || {
                    WasmSandbox::builder()
                        .prewarm(Prewarm::Now)
                        .progress(move |event| show_event(&shown, event))
                        .build()
                })
                .await
                .map_err(|e| CliError::Internal(e.to_string()));
                let sandbox = match sandbox {
                    Ok(Ok(sandbox)) => sandbox,
                    Ok(Err(error)) => {
                        progress.abandon();
                        return Err(error.into());
                    }
                    Err(error) => {
                        progress.abandon();
                        return Err(error);
                    }
                };
                progress.done();
                if let Some(Err(reason)) = sandbox.prewarm_state() {
                    progress.line(format!(
                        "warning: no pre-warmed guest, runs use the plain module: {reason}"
                    ));
                }
                if docker {
                    let image = DockerSandbox::pinned_image();
                    let sandbox = DockerSandbox::connect().await?;
                    progress.step(format!(
                        "docker image {image}: checking, building it if missing (minutes)"
                    ));
                    let built = match sandbox.ensure_image().await {
                        Ok(built) => built,
                        Err(error) => {
                            progress.abandon();
                            return Err(error.into());
                        }
                    };
                    progress.done_with(format!(
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

/// Shows install, compile and pre-warm progress: each event starts a step (ending the one
/// before); the events that say how a setup ended are lines of their own.
pub(crate) fn show_event(progress: &Progress, event: &SetupEvent) {
    match event {
        SetupEvent::Runtime(InstallEvent::Done { .. })
        | SetupEvent::Prewarm(PrewarmStep::Ready { .. } | PrewarmStep::Failed { .. }) => {
            progress.done();
            progress.line(event);
        }
        _ => progress.step(event.to_string()),
    }
}
