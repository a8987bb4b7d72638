//! A job's logs: what each attempt's code was and what it printed, and a timeline of events,
//! for `GET /jobs/{id}/logs`.
//!
//! Workers write, the API reads; neither imports the other, so the records and their store
//! live here, below both. Behind a small trait with two implementations: [`FileLogs`] (files
//! in the work folder, for one machine) and [`RedisLogs`] (next to the job record, for a
//! deployment whose processes share only Redis and the object store). Turning a pipeline attempt into an [`AttemptLog`] is the
//! worker's business: this module knows nothing of the pipeline.

mod file;
mod redis;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use file::FileLogs;
pub use redis::{MAX_ATTEMPTS, MAX_CODE_CHARS, MAX_EVENT_CHARS, RedisLogs};

use crate::queue::JobId;
use crate::sandbox::{Backend, LimitHit};

/// Characters of stdout and stderr kept per attempt.
pub const OUTPUT_TAIL_CHARS: usize = 8_000;
/// Events kept per job (the oldest go first).
pub const MAX_EVENTS: usize = 500;

/// Everything logged for one job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobLog {
    /// The job.
    pub job_id: String,
    /// Every attempt of generated code, in order (across runs of the job).
    pub attempts: Vec<AttemptLog>,
    /// What happened when: stages, failures, retries.
    pub events: Vec<LogEvent>,
}

/// One attempt of generated code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AttemptLog {
    /// 1-based within its run.
    pub attempt: u32,
    /// The worker that ran it.
    pub worker: String,
    /// The generator that wrote the code.
    pub generator: String,
    pub code: String,
    /// The sandbox backend, if it ran.
    #[schema(value_type = Option<String>)]
    pub backend: Option<Backend>,
    /// The exit code, if the script exited.
    pub exit_code: Option<i32>,
    /// The cap that stopped it, if any (`fuel`, `memory`, `wall-time`, `output`).
    #[schema(value_type = Option<String>)]
    pub limit: Option<LimitHit>,
    /// The sandbox run's wall time.
    pub wall_ms: Option<u64>,
    /// The tail of stdout.
    pub stdout_tail: String,
    /// The tail of stderr.
    pub stderr_tail: String,
    /// Why the attempt failed, if it did.
    pub error: Option<String>,
}

/// Something that happened to a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LogEvent {
    /// When (RFC 3339).
    pub at: String,
    /// The worker that saw it.
    pub worker: String,
    /// What happened.
    pub message: String,
}

impl LogEvent {
    /// An event now.
    pub fn now(worker: &str, message: impl Into<String>) -> Self {
        Self {
            at: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            worker: worker.to_owned(),
            message: message.into(),
        }
    }
}

/// Why logs could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Redis failed or could not be reached.
    #[error("{context}: {source}")]
    Redis {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: ::redis::RedisError,
    },
    /// The stored file (or Redis entry) is not a log.
    #[error("corrupt log {path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Where job logs are kept.
#[async_trait]
pub trait JobLogs: Send + Sync + std::fmt::Debug {
    /// Adds an event to the job's timeline.
    async fn event(&self, id: &JobId, event: LogEvent) -> Result<(), LogsError>;

    /// Adds attempts to the job's log.
    async fn attempts(&self, id: &JobId, attempts: Vec<AttemptLog>) -> Result<(), LogsError>;

    /// The job's log, if anything was logged.
    async fn read(&self, id: &JobId) -> Result<Option<JobLog>, LogsError>;

    /// Deletes the job's log (the job expired); deleting a log that is not there is not an
    /// error, so a repeated sweep succeeds.
    async fn delete(&self, id: &JobId) -> Result<(), LogsError>;
}

/// A shared, type-erased log store.
pub type DynLogs = Arc<dyn JobLogs>;
