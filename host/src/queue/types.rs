//! The job record and the values queue operations take and return.

use ks_policies::{Backend, LimitOverrides};
use serde::{Deserialize, Serialize};

use crate::stage::Stage;
use crate::storage::StoreKind;

/// The version of [`JobRecord`]'s stored form that this release writes. Records carry it so a
/// later release can tell what it reads; records from before it was added read as version 0,
/// whose fields are a subset of today's with the same names and values.
pub const JOB_RECORD_VERSION: u32 = 1;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// Caps the request lowered below the preset's, applied by the worker when it resolves
    /// the policy. Absent in records of releases before requests could lower caps.
    #[serde(default, skip_serializing_if = "LimitOverrides::is_empty")]
    pub overrides: LimitOverrides,
}

/// A job's record, as `/status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The stored form's version ([`JOB_RECORD_VERSION`]); 0 for records written before
    /// versions were recorded.
    #[serde(default)]
    pub version: u32,
    pub id: JobId,
    /// What was asked for.
    pub job: NewJob,
    /// Where it is.
    pub status: JobStatus,
    /// The pipeline stage while processing.
    pub stage: Option<Stage>,
    /// The current or last attempt of the code.
    pub attempt: Option<u32>,
    /// The policy's attempt limit.
    pub max_attempts: Option<u32>,
    /// The sandbox backend of the current attempt.
    pub backend: Option<Backend>,
    /// A human-readable note: the last error for a failed job.
    pub message: Option<String>,
    /// The kind of store holding the submission.
    pub submission_source: Option<StoreKind>,
    /// Where the submission is.
    pub submission_path: Option<String>,
    /// The validation score, if one is known.
    pub validation_score: Option<f64>,
    /// Where the score came from.
    #[serde(default)]
    pub validation_score_source: Option<ScoreSource>,
    /// The best host score of a search so far (while it runs) or in the end.
    #[serde(default)]
    pub best_score: Option<f64>,
    /// Candidates a search has tried.
    #[serde(default)]
    pub candidates_tried: Option<u32>,
    /// The worker holding it.
    pub worker: Option<WorkerId>,
    /// Infrastructure retries so far (they do not use the code's attempts).
    pub infra_retries: u32,
    /// Whether a cancel was asked for.
    pub cancel_requested: bool,
    /// Whether the user asked to end the search early and keep the best candidate so far.
    #[serde(default)]
    pub stop_requested: bool,
    /// When it was accepted (ms since the Unix epoch).
    pub created_at_ms: u64,
    /// When it last changed (ms since the Unix epoch).
    pub updated_at_ms: u64,
}

impl JobRecord {
    /// A freshly accepted job's record: `pending`, stamped `now_ms`, with a new id.
    pub fn pending(job: NewJob, now_ms: u64) -> Self {
        Self {
            version: JOB_RECORD_VERSION,
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
            validation_score_source: None,
            best_score: None,
            candidates_tried: None,
            worker: None,
            infra_retries: 0,
            cancel_requested: false,
            stop_requested: false,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
        }
    }
}

/// Progress a worker reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub stage: Stage,
    pub attempt: Option<u32>,
    /// The attempt limit.
    pub max_attempts: Option<u32>,
    /// The backend, once known.
    pub backend: Option<Backend>,
    /// The best host score of a search so far.
    #[serde(default)]
    pub best_score: Option<f64>,
    /// Candidates a search has tried so far.
    #[serde(default)]
    pub candidates_tried: Option<u32>,
}

/// Where a validation score came from. A number the generated code printed is its own claim:
/// it is shown as such, never as a measurement of the host's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ScoreSource {
    /// Printed by the generated script about its own cross-validation; unchecked.
    Script,
    /// Computed by the host on training rows it held back from the code (a search).
    Host,
}

/// A successful job's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    /// The kind of store holding the submission.
    pub submission_source: StoreKind,
    /// Where the submission is.
    pub submission_path: String,
    /// The validation score, if one is known.
    pub validation_score: Option<f64>,
    /// Where the score came from.
    #[serde(default)]
    pub validation_score_source: Option<ScoreSource>,
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

/// What a worker's completion report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Completion {
    /// The job is `completed` with the result.
    Completed,
    /// A cancel had been asked for: the job is `failed` as cancelled and the result dropped,
    /// so a cancel the API accepted ends the job the same way however close the job was to
    /// its end.
    Cancelled,
    /// The worker does not hold the job: nothing changed.
    NotHeld,
}

/// A lease's state, as a heartbeat or progress report finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeaseState {
    /// The worker still holds the job.
    Held,
    /// The worker holds the job and a cancel was asked for: stop and report.
    CancelRequested,
    /// The worker holds the job and the user asked to end its search early: no new candidate
    /// starts, and the best one so far is submitted.
    StopRequested,
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

/// What a stop (end the search early, keep the best) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopOutcome {
    /// Flagged: a running job's search ends at its worker's next heartbeat, a waiting one's
    /// after its first valid candidate.
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A completed record as the release before typed state wrote it, after Redis's Lua
    /// scripts re-encoded it (cjson orders keys its own way and writes every null).
    const PREVIOUS_RELEASE_COMPLETED: &str = r#"{"max_attempts":3,"submission_path":"/data/submissions/0b6f2c5e-3f1a-4c2e-9d2b-8c1e7f0a9b31/submission.csv","stage":"store","job":{"policy":"default","source":"https://www.kaggle.com/competitions/titanic"},"validation_score":0.82,"backend":"wasm","attempt":1,"created_at_ms":1764000000000,"cancel_requested":false,"id":"0b6f2c5e-3f1a-4c2e-9d2b-8c1e7f0a9b31","message":null,"worker":null,"updated_at_ms":1764000060000,"status":"completed","submission_source":"local","infra_retries":0}"#;

    #[test]
    fn a_record_of_the_previous_release_still_reads() {
        let record: JobRecord =
            serde_json::from_str(PREVIOUS_RELEASE_COMPLETED).expect("the old record reads");
        assert_eq!(record.version, 0);
        assert_eq!(record.status, JobStatus::Completed);
        assert_eq!(record.stage, Some(Stage::Store));
        assert_eq!(record.backend, Some(Backend::Wasm));
        assert_eq!(record.submission_source, Some(StoreKind::Local));
        assert_eq!(record.validation_score, Some(0.82));
        assert_eq!(
            record.job.source,
            "https://www.kaggle.com/competitions/titanic"
        );
        assert!(record.job.overrides.is_empty());
    }

    #[test]
    fn todays_records_carry_the_version_and_the_same_names() {
        let mut record = JobRecord::pending(
            NewJob {
                source: "s".into(),
                policy: "default".into(),
                overrides: LimitOverrides {
                    attempts: Some(1),
                    ..LimitOverrides::default()
                },
            },
            1,
        );
        record.stage = Some(Stage::Run);
        record.backend = Some(Backend::Docker);
        let json = serde_json::to_value(&record).expect("serialises");
        assert_eq!(json["version"], JOB_RECORD_VERSION);
        assert_eq!(json["stage"], "run");
        assert_eq!(json["backend"], "docker");
        assert_eq!(json["job"]["overrides"], serde_json::json!({"attempts": 1}));
        let back: JobRecord = serde_json::from_value(json).expect("reads back");
        assert_eq!(back, record);
    }
}

/// Which jobs a listing shows: one status, or the dead list (failed jobs that ran out of
/// infrastructure retries, which are `failed` too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ListState {
    /// Waiting for a worker.
    Pending,
    /// Held by a worker.
    Processing,
    /// Finished with a submission.
    Completed,
    /// Finished without one.
    Failed,
    /// On the dead list.
    Dead,
}

impl ListState {
    /// The status a job of this listing has.
    pub fn status(self) -> JobStatus {
        match self {
            Self::Pending => JobStatus::Pending,
            Self::Processing => JobStatus::Processing,
            Self::Completed => JobStatus::Completed,
            Self::Failed | Self::Dead => JobStatus::Failed,
        }
    }
}

/// Where a listing goes on: the jobs accepted before the one it ended with. Each job is
/// numbered by when it was accepted (the queue's own count, 1 for the first), so the order
/// has no ties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListCursor(pub u64);

/// One page of a listing, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct JobPage {
    /// The jobs (at most the limit asked for; fewer does not mean the last page).
    pub jobs: Vec<JobRecord>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<ListCursor>,
}
