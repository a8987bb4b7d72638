//! The `kaggle-solver` command line: argument definitions and dispatch to the library.
//!
//! `main.rs` only parses [`Cli`] and calls [`Cli::run`]; everything a command does lives in
//! the library so that other programs can do the same through the Rust API.

mod client;
mod dead;
mod logging;
mod policy;
mod progress;
mod runtime;
mod sandbox;
mod serve;
mod solve;
mod store;
mod stress;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
pub use client::RemoteError;
pub use logging::LogFormat;

/// Turns a Kaggle competition into a submission.csv, unattended.
#[derive(Debug, Parser)]
#[command(name = "kaggle-solver", version, about)]
pub struct Cli {
    /// The shape of log lines on stderr (`KS_LOG` sets which are written).
    #[arg(
        long,
        global = true,
        value_enum,
        env = "KS_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Solve a competition in this process and write submission.csv (no Redis needed).
    Solve(solve::SolveArgs),
    /// Run a Python script in a sandbox and print its outcome as JSON.
    #[command(subcommand)]
    Sandbox(sandbox::SandboxCommand),
    /// Install or inspect the WASI guest runtime.
    #[command(subcommand)]
    Runtime(runtime::RuntimeCommand),
    /// Validate policy files.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Serve the REST API (with embedded workers, or none when `worker` processes run).
    Serve(serve::ServeArgs),
    /// Run a worker process on the Redis queue.
    Worker(worker::WorkerArgs),
    /// Load-test a running service: submit concurrently, poll to the end, print one JSON line.
    Stress(stress::StressArgs),
    /// Read or requeue the dead list (jobs out of infrastructure retries) of a Redis queue.
    #[command(subcommand)]
    Dead(dead::DeadCommand),
    /// Submit a competition to a running server; prints the job's id as JSON.
    Submit(client::SubmitArgs),
    /// Print a job's status on a running server as JSON.
    Status(client::JobArgs),
    /// Follow a job on a running server to its end (exit code 1 if it failed).
    Wait(client::JobArgs),
    /// End a job's search early on a running server: its best candidate so far is submitted.
    Stop(client::JobArgs),
    /// Download a completed job's submission from a running server.
    Download(client::DownloadArgs),
}

/// Options shared by commands that read policies.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct PolicyArgs {
    /// A preset name from the policy directory, or a path to a policy file.
    #[arg(long, env = "KS_POLICY", default_value = "default")]
    policy: String,
    /// Where named presets live.
    #[arg(long, env = "KS_POLICY_DIR", default_value = "policies")]
    policy_dir: PathBuf,
}

impl PolicyArgs {
    pub(crate) fn resolve(&self) -> Result<ks_policies::Policy, CliError> {
        Ok(ks_policies::PolicyDir::new(&self.policy_dir).resolve(&self.policy)?)
    }
}

/// Why a command could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A policy could not be read or is invalid.
    #[error(transparent)]
    Policy(#[from] ks_policies::PolicyError),
    /// The guest runtime could not be installed.
    #[error(transparent)]
    Install(#[from] ks_guest_runtime::InstallError),
    /// A sandbox could not be set up or run.
    #[error(transparent)]
    Sandbox(#[from] crate::sandbox::SandboxError),
    /// No backend can run the script.
    #[error(transparent)]
    Select(#[from] crate::sandbox::SelectError),
    /// A file could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The competition could not be named or fetched.
    #[error(transparent)]
    Source(#[from] crate::pipeline::fetch::SourceError),
    /// The competition could not be fetched.
    #[error(transparent)]
    Fetch(#[from] crate::pipeline::fetch::FetchError),
    /// The code generator is not configured right.
    #[error(transparent)]
    Generator(#[from] crate::pipeline::generate::ConfigError),
    /// The pipeline ended without a submission.
    #[error(transparent)]
    Solve(crate::pipeline::solve::SolveError),
    /// The service could not be assembled.
    #[error(transparent)]
    Host(#[from] crate::host::HostError),
    /// The job queue failed.
    #[error(transparent)]
    Queue(#[from] crate::queue::QueueError),
    /// The job logs' store could not be opened.
    #[error("opening the job logs: {0}")]
    Logs(#[from] crate::logs::LogsError),
    /// The submission store is unusable or unreachable.
    #[error(transparent)]
    Store(#[from] crate::storage::StoreError),
    /// `serve` was asked to listen beyond this machine without a token.
    #[error(
        "refusing to serve on {bind} without KS_API_TOKEN: that address can be reached from other \
         machines, and whoever reaches the API can submit jobs (which run code here) and cancel \
         others' jobs. Set KS_API_TOKEN (or --api-token), listen on 127.0.0.1, or pass \
         --insecure-no-auth if a proxy or firewall in front already controls who gets in"
    )]
    Unprotected {
        /// The address asked for.
        bind: String,
    },
    /// `dead requeue` was given a job that is not on the dead list.
    #[error("job {id} is not on the dead list: {reason}")]
    NotDead {
        /// The job id as given.
        id: String,
        /// Why not.
        reason: String,
    },
    /// A request to a remote server failed.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// A blocking task panicked or was cancelled.
    #[error("internal error: {0}")]
    Internal(String),
}

impl CliError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

impl Cli {
    /// Installs the log subscriber this command line asks for; call once, before [`Cli::run`].
    pub fn init_logging(&self) {
        logging::init(self.log_format);
    }

    /// Runs the parsed command.
    ///
    /// # Errors
    /// When the command cannot do its work; the message says why and what to do.
    pub async fn run(self) -> Result<ExitCode, CliError> {
        match self.command {
            Command::Solve(args) => args.run().await,
            Command::Sandbox(command) => command.run().await,
            Command::Runtime(command) => command.run().await,
            Command::Policy(command) => Ok(command.run()),
            Command::Serve(args) => args.run().await,
            Command::Worker(args) => args.run().await,
            Command::Stress(args) => args.run().await,
            Command::Dead(command) => command.run().await,
            Command::Submit(args) => args.run().await,
            Command::Status(args) => args.status().await,
            Command::Wait(args) => args.wait().await,
            Command::Stop(args) => args.stop().await,
            Command::Download(args) => args.run().await,
        }
    }
}

/// Prints one line of progress to stderr, which stays free of the JSON that goes to stdout.
pub(crate) fn progress(message: impl std::fmt::Display) {
    logging::progress_line(&message.to_string());
}

/// Prints a value as one line of JSON on stdout.
pub(crate) fn print_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    let line = serde_json::to_string(value).map_err(|e| CliError::Internal(e.to_string()))?;
    println!("{line}");
    Ok(())
}
