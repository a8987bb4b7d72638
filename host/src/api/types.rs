//! The JSON the REST API takes and gives, in one place so that the handlers, the OpenAPI
//! document and clients (the stress tool, the tests) agree on every field.
//!
//! `StatusResponse` keeps the original design's four keys (`status`, `source`, `path`,
//! `message`) always present, and adds the optional extras (stage, attempts, backend, times, score) only when known.

use std::time::{Duration, SystemTime};

use ks_policies::{LimitOverrides, PolicyError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::queue::{CancelOutcome, JobRecord, JobStatus, ListState, MAX_PAGE, ScoreSource};
use crate::stage::Stage;
use crate::storage::StoreKind;

/// The query of `POST /run` (and `GET /run`).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunQuery {
    /// The competition: `https://www.kaggle.com/competitions/<slug>`, or a folder under the
    /// server's `KS_COMPETITIONS_DIR`.
    #[param(required = true, min_length = 1, pattern = r"\S")]
    pub url: Option<String>,
    /// A policy preset's name, one of those the server offers (`KS_API_POLICIES`; default
    /// `default`, the first offered).
    pub policy: Option<String>,
    /// Lowers the preset's wall-clock cap per run for this job, e.g. `5m`; never above it.
    #[serde(rename = "wall-time")]
    #[param(rename = "wall-time", example = "5m")]
    pub wall_time: Option<String>,
    /// Lowers the preset's memory cap, e.g. `1GiB`; at least 64 MiB.
    #[param(example = "1GiB")]
    pub memory: Option<String>,
    /// Lowers the preset's fuel (instruction) budget of the WASI guest.
    #[param(value_type = Option<u64>, example = 5_000_000_000u64)]
    pub fuel: Option<String>,
    /// Lowers the preset's cap on stdout, stderr and `/output`, e.g. `8MiB`.
    #[param(example = "8MiB")]
    pub output: Option<String>,
    /// Lowers the preset's number of attempts of generated code; at least 1.
    #[param(value_type = Option<u32>, example = 1)]
    pub attempts: Option<String>,
}

impl RunQuery {
    /// The caps this request lowers (empty values are absent, as for `policy`).
    ///
    /// # Errors
    /// [`PolicyError::Invalid`] naming the first value that does not parse.
    pub fn overrides(&self) -> Result<LimitOverrides, PolicyError> {
        let given = [
            &self.wall_time,
            &self.memory,
            &self.fuel,
            &self.output,
            &self.attempts,
        ];
        LimitOverrides::parse(LimitOverrides::KEYS.into_iter().zip(given).filter_map(
            |(key, value)| value.as_deref().filter(|v| !v.is_empty()).map(|v| (key, v)),
        ))
    }
}

/// `202` answer of `/run`: the accepted job's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RunResponse {
    /// The job's id (a UUID), for `/status/{job_id}`.
    #[schema(format = Uuid)]
    pub job_id: String,
}

/// A job's state, as `GET /status/{job_id}` answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StatusResponse {
    /// Where the job is in its life.
    pub status: JobStatus,
    /// The kind of store holding the submission; `null` until the job completes.
    #[schema(required = true)]
    pub source: Option<StoreKind>,
    /// Where in that store the submission is; `null` until the job completes.
    #[schema(required = true)]
    pub path: Option<String>,
    /// A human-readable note; for a failed job, the last error and what to do about it.
    pub message: String,
    /// The pipeline stage while processing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
    /// The current or last attempt of the generated code (1-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// The policy's attempt limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// The sandbox backend of the current attempt (`wasm` or `docker`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub backend: Option<ks_policies::Backend>,
    /// When the job was accepted (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// When the job last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// The validation score, when one is known; see `validation_score_source`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_score: Option<f64>,
    /// Where `validation_score` came from: `script` is the generated code's own claim about
    /// its cross-validation, printed and not checked by the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_score_source: Option<ScoreSource>,
    /// A search's best host score so far: the score of a candidate on training rows the host
    /// held back from the code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_score: Option<f64>,
    /// Candidates a search has tried so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidates_tried: Option<u32>,
}

impl From<&JobRecord> for StatusResponse {
    fn from(record: &JobRecord) -> Self {
        let message = record
            .message
            .clone()
            .unwrap_or_else(|| match record.status {
                JobStatus::Pending => "waiting for a worker".to_owned(),
                JobStatus::Processing => match &record.stage {
                    Some(stage) => format!("processing: {stage}"),
                    None => "processing".to_owned(),
                },
                JobStatus::Completed => "completed".to_owned(),
                JobStatus::Failed => "failed".to_owned(),
            });
        Self {
            status: record.status,
            source: record.submission_source,
            path: record.submission_path.clone(),
            message,
            stage: record.stage,
            attempt: record.attempt,
            max_attempts: record.max_attempts,
            backend: record.backend,
            created_at: Some(rfc3339(record.created_at_ms)),
            updated_at: Some(rfc3339(record.updated_at_ms)),
            validation_score: record.validation_score,
            validation_score_source: record.validation_score.and(record.validation_score_source),
            best_score: record.best_score,
            candidates_tried: record.candidates_tried,
        }
    }
}

/// The query of `GET /jobs`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only jobs in this state (`dead`: the dead list, jobs that ran out of infrastructure
    /// retries); every job when absent.
    pub state: Option<ListState>,
    /// Jobs per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(minimum = 0)]
    pub cursor: Option<i64>,
}

impl ListQuery {
    /// The page size when none is asked for.
    pub const DEFAULT_LIMIT: u32 = 20;

    /// The page size asked for, if it is allowed.
    pub fn limit(&self) -> Option<usize> {
        let limit = usize::try_from(self.limit.unwrap_or(Self::DEFAULT_LIMIT)).ok()?;
        (1..=MAX_PAGE).contains(&limit).then_some(limit)
    }
}

/// One job of a listing: its id and request, and its status as `/status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobSummary {
    /// The job's id (a UUID).
    #[schema(format = Uuid)]
    pub job_id: String,
    /// The competition asked for.
    pub url: String,
    /// The policy preset.
    pub policy: String,
    /// The job's status.
    #[serde(flatten)]
    pub status: StatusResponse,
}

impl From<&JobRecord> for JobSummary {
    fn from(record: &JobRecord) -> Self {
        Self {
            job_id: record.id.0.clone(),
            url: record.job.source.clone(),
            policy: record.job.policy.clone(),
            status: StatusResponse::from(record),
        }
    }
}

/// Answer of `GET /jobs`: newest accepted first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobList {
    /// The page's jobs; a short page may still have a next one.
    pub jobs: Vec<JobSummary>,
    /// The `cursor` of the next page; `null` on the last one.
    #[schema(required = true)]
    pub next_cursor: Option<u64>,
}

/// Answer of `DELETE /jobs/{job_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CancelResponse {
    /// The job.
    pub job_id: String,
    /// What the cancel did.
    pub outcome: CancelAnswer,
}

/// What a cancel did to a job that had not ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CancelAnswer {
    /// It was waiting and is now `failed`.
    Cancelled,
    /// It is running; its worker stops the sandbox within a heartbeat.
    CancelRequested,
}

impl CancelResponse {
    /// The answer for `outcome`, or `None` for the outcomes that are errors.
    pub fn new(job_id: &str, outcome: CancelOutcome) -> Option<Self> {
        let outcome = match outcome {
            CancelOutcome::Cancelled => CancelAnswer::Cancelled,
            CancelOutcome::Requested => CancelAnswer::CancelRequested,
            CancelOutcome::AlreadyFinished | CancelOutcome::NotFound => return None,
        };
        Some(Self {
            job_id: job_id.to_owned(),
            outcome,
        })
    }
}

/// Answer of `POST /jobs/{job_id}/stop`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StopResponse {
    /// The job.
    pub job_id: String,
    /// Always `stop-requested`: a running search ends at its worker's next heartbeat and
    /// submits its best candidate; a waiting job's search ends after its first valid one.
    pub outcome: StopAnswer,
}

/// What a stop did to a job that had not ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StopAnswer {
    /// Its search is asked to end and keep the best.
    StopRequested,
}

/// Every 4xx and 5xx answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// A stable, machine-readable code, e.g. `invalid_url`, `unknown_policy`, `not_found`.
    pub error: String,
    /// What is wrong and what to do, for a person (generic for server errors).
    pub detail: String,
}

/// `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `ok` when the process answers.
    pub status: String,
}

/// `GET /readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    /// `ready` when the queue and the submission store answer, else `unready`.
    pub status: String,
    /// What does not answer (`unready` only): a short fixed sentence, never the error itself,
    /// which the server logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Formats milliseconds since the Unix epoch as RFC 3339 (UTC, millisecond precision).
pub fn rfc3339(ms: u64) -> String {
    let time = SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
    humantime::format_rfc3339_millis(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::NewJob;

    #[test]
    fn status_keeps_the_four_keys_and_skips_unknown_extras() {
        let job = NewJob {
            source: "https://www.kaggle.com/competitions/titanic".into(),
            policy: "default".into(),
            overrides: LimitOverrides::default(),
        };
        let record = JobRecord::pending(job, 1_700_000_000_123);
        let json = serde_json::to_value(StatusResponse::from(&record)).expect("json");
        assert_eq!(json["status"], "pending");
        assert!(json["source"].is_null() && json["path"].is_null());
        assert_eq!(json["message"], "waiting for a worker");
        assert_eq!(json["created_at"], "2023-11-14T22:13:20.123Z");
        assert!(json.get("stage").is_none() && json.get("validation_score").is_none());
    }

    #[test]
    fn the_run_query_reads_its_caps_by_their_policy_names() {
        let parse = |uri: &str| {
            let uri: axum::http::Uri = uri.parse().expect("a URI");
            axum::extract::Query::<RunQuery>::try_from_uri(&uri)
                .expect("query")
                .0
        };
        let query = parse("/run?url=x&wall-time=5m&memory=1GiB&fuel=5_000_000&output=&attempts=1");
        let overrides = query.overrides().expect("parses");
        assert_eq!(overrides.wall_time, Some(Duration::from_secs(300)));
        assert_eq!(overrides.memory, Some(ks_policies::ByteSize::gib(1)));
        assert_eq!(overrides.fuel, Some(5_000_000));
        assert_eq!(overrides.output, None, "an empty value is absent");
        assert_eq!(overrides.attempts, Some(1));
        let err = parse("/run?url=x&attempts=many")
            .overrides()
            .expect_err("not a number");
        assert!(err.to_string().contains("`attempts.max`"), "{err}");
    }
}
