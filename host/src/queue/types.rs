//! The job record and the values queue operations take and return.

use serde::{Deserialize, Serialize};

/// A job's id: a UUID, as text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub String);

impl JobId {
    /// A fresh random id.
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// Parses a client-given id, accepting only a UUID.
    pub fn parse(text: &str) -> Option<Self> {
        uuid::Uuid::parse_str(text)
            .ok()
            .map(|u| Self(u.to_string()))
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A worker's id, unique per process start (e.g. `host-pid-uuid`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WorkerId(pub String);

impl WorkerId {
    /// A fresh id for this process start.
    pub fn for_this_process() -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".to_owned());
        Self(format!(
            "{host}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ))
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Waiting for a worker.
    Pending,
    /// Held by a worker.
    Processing,
    /// Finished with a submission.
    Completed,
    /// Finished without one (including cancelled jobs).
    Failed,
}

impl JobStatus {
    /// Whether the job will change no more.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed)
    }
}

/// What a client asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewJob {
    /// The competition: a Kaggle URL or an allowed local path.
    pub source: String,
    /// The policy preset's name.
    pub policy: String,
}

/// A job's record, as `/status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The id.
    pub id: JobId,
    /// What was asked for.
    pub job: NewJob,
    /// Where it is.
    pub status: JobStatus,
    /// The pipeline stage while processing.
    pub stage: Option<String>,
    /// The current or last attempt of the code.
    pub attempt: Option<u32>,
    /// The policy's attempt limit.
    pub max_attempts: Option<u32>,
    /// The sandbox backend of the current attempt.
    pub backend: Option<String>,
    /// A human-readable note: the last error for a failed job.
    pub message: Option<String>,
    /// The stored submission: `local` or `s3`.
    pub submission_source: Option<String>,
    /// Where the submission is.
    pub submission_path: Option<String>,
    /// The validation score the code printed.
    pub validation_score: Option<f64>,
    /// The worker holding it.
    pub worker: Option<WorkerId>,
    /// Infrastructure retries so far (they do not use the code's attempts).
    pub infra_retries: u32,
    /// Whether a cancel was asked for.
    pub cancel_requested: bool,
    /// When it was accepted (ms since the Unix epoch).
    pub created_at_ms: u64,
    /// When it last changed (ms since the Unix epoch).
    pub updated_at_ms: u64,
}

impl JobRecord {
    /// A freshly accepted job's record: `pending`, stamped `now_ms`, with a new id.
    pub fn pending(job: NewJob, now_ms: u64) -> Self {
        Self {
            id: JobId::new(),
            job,
            status: JobStatus::Pending,
            stage: None,
            attempt: None,
            max_attempts: None,
            backend: None,
            message: None,
            submission_source: None,
            submission_path: None,
            validation_score: None,
            worker: None,
            infra_retries: 0,
            cancel_requested: false,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
        }
    }
}

/// Progress a worker reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// The stage.
    pub stage: String,
    /// The attempt.
    pub attempt: Option<u32>,
    /// The attempt limit.
    pub max_attempts: Option<u32>,
    /// The backend.
    pub backend: Option<String>,
}

/// A successful job's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    /// `local` or `s3`.
    pub submission_source: String,
    /// Where the submission is.
    pub submission_path: String,
    /// The validation score the code printed.
    pub validation_score: Option<f64>,
    /// Attempts used.
    pub attempts: u32,
}

/// A failure a worker reports, with what to do about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Failure {
    /// An infrastructure failure: back in line after `delay_ms`, up to the queue's retry cap.
    Retry {
        /// What happened.
        message: String,
        /// Wait before the job can be claimed again.
        delay_ms: u64,
    },
    /// A permanent failure: the job is `failed` with this message.
    Abort {
        /// What happened and what to do.
        message: String,
    },
}

/// A lease's state, as a heartbeat or progress report finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeaseState {
    /// The worker still holds the job.
    Held,
    /// The worker holds the job and a cancel was asked for: stop and report.
    CancelRequested,
    /// The worker no longer holds the job (its lease expired and it was handed on, or the job
    /// ended): stop without reporting.
    Lost,
}

/// What a cancel did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CancelOutcome {
    /// The job was waiting; it is now `failed` as cancelled.
    Cancelled,
    /// The job is running; its worker will stop it.
    Requested,
    /// The job had already ended.
    AlreadyFinished,
    /// No such job.
    NotFound,
}

/// Counts by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct QueueStats {
    /// Waiting.
    pub pending: u64,
    /// Held by workers.
    pub processing: u64,
    /// Done with a submission.
    pub completed: u64,
    /// Done without one.
    pub failed: u64,
}
