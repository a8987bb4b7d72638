//! The boundary between the host and the untrusted Python code it runs.
//!
//! Every backend (the WASI guest on wasmtime, the hardened Docker container) implements
//! [`Sandbox`] and honours one guest contract: the competition files read-only at `/input`,
//! a writable `/output`, a private `/tmp`, no network, no host files, no secrets. A run that the
//! guest code breaks (a crash, a limit) is an [`Outcome`]; only a failure of the host itself is a
//! [`SandboxError`].

mod collect;
mod docker;
mod modules;
mod outcome;
mod select;
pub mod wasm;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
pub use ks_policies::{Backend, DockerPolicy};
use tokio_util::sync::CancellationToken;

pub use collect::{OutputFileError, inside, read_regular, remove_special};
pub use docker::DockerSandbox;
pub use modules::{WANTED_NOT_IN_GUEST, backend_has, backend_modules, known_module};
pub use outcome::{GuestError, LimitHit, Outcome};
pub use select::{
    BackendChoice, SelectError, docker_only_imports, imported_modules, select_backend,
};

/// One run of a Python script in a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxRequest {
    /// The Python source to run as `__main__`.
    pub script: String,
    /// The name tracebacks show for the script, e.g. `pipeline.py`.
    pub script_name: String,
    /// Host folder mounted read-only at `/input`, if any.
    pub input: Option<PathBuf>,
    /// Host folder mounted writable at `/output`; it must exist.
    pub output: PathBuf,
    /// Where the run's private `/tmp` is made, when it is a host folder (WASI; Docker's is a
    /// tmpfs): a folder of the caller's, so a run whose process dies leaves it where the
    /// caller sweeps. Default: the system's temporary folder.
    pub scratch: Option<PathBuf>,
    /// The caps this run must stay within.
    pub limits: RunLimits,
    /// Cancelling this token stops the run as soon as possible.
    pub cancel: CancellationToken,
    /// The image and the cpu and process caps of the Docker backend (a policy's `[docker]`).
    pub docker: DockerPolicy,
    /// The job the run belongs to, for labels and logs.
    pub job: Option<String>,
    /// The module a WASI run starts from (a policy's `[sandbox] guest`); ignored by Docker.
    pub guest: ks_policies::GuestImage,
}

impl SandboxRequest {
    /// A request for `script` with the given output folder and caps, no input and no cancel.
    pub fn new(script: impl Into<String>, output: impl Into<PathBuf>, limits: RunLimits) -> Self {
        Self {
            script: script.into(),
            script_name: "pipeline.py".to_owned(),
            input: None,
            output: output.into(),
            scratch: None,
            limits,
            cancel: CancellationToken::new(),
            docker: DockerPolicy::default(),
            job: None,
            guest: ks_policies::GuestImage::default(),
        }
    }

    /// A request for `script` under `policy`'s caps, Docker settings and guest image, with no
    /// input and no cancel.
    pub fn from_policy(
        script: impl Into<String>,
        output: impl Into<PathBuf>,
        policy: &ks_policies::Policy,
    ) -> Self {
        Self {
            docker: policy.docker.clone(),
            guest: policy.sandbox.guest,
            ..Self::new(script, output, RunLimits::from(&policy.limits))
        }
    }

    /// Mounts `dir` read-only at `/input`.
    #[must_use]
    pub fn with_input(mut self, dir: impl Into<PathBuf>) -> Self {
        self.input = Some(dir.into());
        self
    }
}

/// The resource caps of one run, taken from a policy's `[limits]` (and `[docker]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunLimits {
    /// Wall-clock time from start to forced stop.
    pub wall_time: Duration,
    /// Linear memory (WASI) or container memory (Docker), in bytes.
    pub memory_bytes: u64,
    /// Instruction budget for the WASI guest; ignored by Docker.
    pub fuel: u64,
    /// Cap on each of stdout and stderr, and on the size of `/output`, in bytes.
    pub output_bytes: u64,
    /// Cap on what `/tmp` and `/output` hold together (apparent sizes), in bytes.
    pub disk_bytes: u64,
}

impl From<&ks_policies::Limits> for RunLimits {
    fn from(limits: &ks_policies::Limits) -> Self {
        Self {
            wall_time: limits.wall_time,
            memory_bytes: limits.memory.0,
            fuel: limits.fuel,
            output_bytes: limits.output.0,
            disk_bytes: limits.disk.0,
        }
    }
}

/// A place where untrusted Python runs under the guest contract.
#[async_trait]
pub trait Sandbox: Send + Sync + std::fmt::Debug {
    /// Which backend this is.
    fn backend(&self) -> Backend;

    /// Runs the request to its end, a limit, or cancellation.
    ///
    /// # Errors
    /// Only when the host could not run the code at all; anything the code itself does,
    /// including breaking a limit, is reported in the [`Outcome`].
    async fn run(&self, request: SandboxRequest) -> Result<Outcome, SandboxError>;
}

/// A shared, type-erased sandbox.
pub type DynSandbox = Arc<dyn Sandbox>;

/// Why the host could not run a request.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The guest runtime is not installed and could not be installed.
    #[error("the guest runtime is not available: {0}")]
    Runtime(#[source] ks_guest_runtime::InstallError),
    /// The engine could not be set up or the module could not be compiled or loaded.
    #[error("{context}: {message}")]
    Engine {
        /// What was being done.
        context: &'static str,
        /// wasmtime's words.
        message: String,
    },
    /// The request cannot run as given, whatever is retried (e.g. a memory cap below the
    /// module's initial memory).
    #[error("invalid sandbox request: {0}")]
    InvalidRequest(String),
    /// A host file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The Docker backend could not run the request.
    #[error(transparent)]
    Docker(#[from] ks_sandbox_fallback::DockerError),
    /// The backend is not usable on this host (e.g. no Docker daemon).
    #[error("the {backend} sandbox is unavailable: {reason}")]
    Unavailable {
        /// The backend asked for.
        backend: Backend,
        /// What is missing and what to do.
        reason: String,
    },
}

impl SandboxError {
    /// Whether trying the same request again later may succeed (an infrastructure hiccup),
    /// as opposed to an error that will recur until something is changed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Runtime(e) => e.is_retryable(),
            Self::Docker(e) => e.is_retryable(),
            Self::Io { .. } | Self::Unavailable { .. } => true,
            Self::Engine { .. } | Self::InvalidRequest(_) => false,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

/// The Python program every backend runs: the script and its name bound as literals, then the
/// guest harness. JSON string literals are valid Python string literals.
pub(crate) fn guest_program(request: &SandboxRequest) -> Result<String, SandboxError> {
    guest_program_with(request, ks_guest_runtime::HARNESS_PY)
}

/// [`guest_program`] with `harness` in place of the harness's source (e.g. a loader of its
/// precompiled code).
pub(crate) fn guest_program_with(
    request: &SandboxRequest,
    harness: &str,
) -> Result<String, SandboxError> {
    let quote =
        |s: &str| serde_json::to_string(s).map_err(|e| SandboxError::InvalidRequest(e.to_string()));
    Ok(format!(
        "__ks_source__ = {}\n__ks_filename__ = {}\n{harness}",
        quote(&request.script)?,
        quote(&request.script_name)?,
    ))
}
