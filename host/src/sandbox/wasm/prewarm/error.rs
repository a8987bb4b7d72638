//! Why there is no pre-warmed image: one error type for the build, its audit and loading.
//!
//! None of these stops a run (runs fall back to the runtime's own snapshot); the message is
//! what the log and `runtime status` show, so each variant says what failed and, where the
//! user can act, what to do.

use crate::sandbox::SandboxError;

/// Why the pre-warmed image could not be loaded or built.
#[derive(Debug, thiserror::Error)]
pub enum PrewarmError {
    /// This sandbox was built with pre-warming off.
    #[error("pre-warming is off for this sandbox")]
    Off,
    /// An earlier build of the same image failed; later processes do not retry it by
    /// themselves.
    #[error("an earlier build failed ({detail}); `kaggle-solver runtime install` tries again")]
    EarlierFailure {
        /// What the earlier build recorded.
        detail: String,
    },
    /// A wasmtime or Wizer step failed.
    #[error("{step}: {message}")]
    Wasm {
        /// The step, e.g. `instrumenting the runtime`.
        step: &'static str,
        /// wasmtime's words, with their causes.
        message: String,
    },
    /// The import script failed in the guest.
    #[error("the import step failed: {message}\nguest stderr:\n{stderr_tail}")]
    Imports {
        /// The trap or error.
        message: String,
        /// The end of the guest's stderr.
        stderr_tail: String,
    },
    /// The audit script did not run to its report in a restored image.
    #[error(
        "the audit script failed in a restored image (exit {exit_code:?}, {trap:?}): {stderr_tail}"
    )]
    AuditRun {
        /// The script's exit status, if it exited.
        exit_code: Option<i32>,
        /// The trap that ended it, if any.
        trap: Option<String>,
        /// The end of its stderr.
        stderr_tail: String,
    },
    /// The audit found randomness frozen at build time.
    #[error("the audit refused the image (entropy frozen at build time): {}", .problems.join("; "))]
    Refused {
        /// Each frozen source, by owner.
        problems: Vec<String>,
    },
    /// The built image does not export exactly the runtime's interface.
    #[error("the image exports {got:?}, not {wanted:?}")]
    Exports {
        /// What it exports.
        got: Vec<String>,
        /// What it must export.
        wanted: Vec<String>,
    },
    /// An audit run could not be started by the host.
    #[error("an audit run could not start: {0}")]
    Sandbox(#[source] SandboxError),
    /// The compile cache failed (creating, locking or compiling an entry).
    #[error("{0}")]
    Cache(String),
    /// A host file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The build thread panicked.
    #[error("the pre-warm build panicked: {0}")]
    Panicked(String),
}

/// Names the step a wasmtime result belongs to.
pub(crate) trait WasmStep<T> {
    /// The value, or [`PrewarmError::Wasm`] for `step`.
    fn step(self, step: &'static str) -> Result<T, PrewarmError>;
}

impl<T> WasmStep<T> for wasmtime::Result<T> {
    fn step(self, step: &'static str) -> Result<T, PrewarmError> {
        self.map_err(|e| PrewarmError::Wasm {
            step,
            message: format!("{e:#}"),
        })
    }
}
