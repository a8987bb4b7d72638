//! `kaggle-solver sandbox run`: one script in one sandbox, the outcome printed as JSON.

use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;

use super::{CliError, PolicyArgs};
use crate::sandbox::{Backend, BackendChoice, Outcome, SandboxRequest, select_backend};

/// Sandbox commands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum SandboxCommand {
    /// Run SCRIPT.py under the policy's caps and print the outcome as one JSON line.
    Run(RunArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    policy: PolicyArgs,
    /// Which sandbox runs the script.
    #[arg(long, value_enum, env = "KS_BACKEND", default_value = "auto")]
    backend: BackendChoice,
    /// Folder mounted read-only at /input.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Folder mounted writable at /output (created if missing; default: a new temporary folder).
    #[arg(long)]
    output: Option<PathBuf>,
    /// The Python script to run.
    script: PathBuf,
}

/// The JSON printed: the fixed outcome keys plus where `/output` is on the host.
#[derive(Serialize)]
struct Printed<'a> {
    #[serde(flatten)]
    outcome: &'a Outcome,
    output_dir: &'a std::path::Path,
}

impl SandboxCommand {
    pub(crate) async fn run(self) -> Result<ExitCode, CliError> {
        let Self::Run(args) = self;
        let policy = args.policy.resolve()?;
        let script = std::fs::read_to_string(&args.script)
            .map_err(|e| CliError::io(format!("reading {}", args.script.display()), e))?;
        // Docker counts as present here: connecting to it says clearly when it is not.
        let present = [Backend::Wasm, Backend::Docker];
        let backend = select_backend(args.backend, &policy.sandbox.backends, &present, &script)?;
        let output = match args.output {
            Some(dir) => {
                std::fs::create_dir_all(&dir)
                    .map_err(|e| CliError::io(format!("creating {}", dir.display()), e))?;
                dir
            }
            None => tempfile::Builder::new()
                .prefix("ks-output-")
                .tempdir()
                .map_err(|e| CliError::io("creating an output folder", e))?
                .keep(),
        };
        let sandbox = build_sandbox(backend, policy.sandbox.guest).await?;
        let mut request = SandboxRequest::from_policy(script, &output, &policy);
        if let Some(name) = args.script.file_name() {
            request.script_name = name.to_string_lossy().into_owned();
        }
        if let Some(input) = args.input {
            request = request.with_input(input);
        }
        let outcome = sandbox.run(request).await?;
        super::print_json(&Printed {
            outcome: &outcome,
            output_dir: &output,
        })?;
        Ok(if outcome.succeeded() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }
}

async fn build_sandbox(
    backend: Backend,
    guest: crate::sandbox::wasm::GuestImage,
) -> Result<crate::sandbox::DynSandbox, CliError> {
    use crate::sandbox::wasm::{GuestImage, Prewarm};
    match backend {
        Backend::Wasm => {
            // One run: load the pre-warmed image only if this run uses it.
            let prewarm = match guest {
                GuestImage::Plain => Prewarm::Off,
                GuestImage::Prewarmed => Prewarm::OnFirstUse,
            };
            let progress = super::progress::Progress::new();
            let shown = progress.clone();
            let sandbox = tokio::task::spawn_blocking(move || {
                crate::sandbox::wasm::WasmSandbox::builder()
                    .prewarm(prewarm)
                    .progress(move |event| super::runtime::show_event(&shown, event))
                    .build()
            })
            .await
            .map_err(|e| CliError::Internal(e.to_string()));
            match &sandbox {
                Ok(Ok(_)) => progress.done(),
                _ => progress.abandon(),
            }
            let sandbox = sandbox??;
            Ok(std::sync::Arc::new(sandbox))
        }
        Backend::Docker => {
            let sandbox = crate::sandbox::DockerSandbox::connect().await?;
            Ok(std::sync::Arc::new(sandbox))
        }
    }
}
