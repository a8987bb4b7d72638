//! A job's logs: what each attempt's code was and what it printed, and a timeline of events,
//! for `GET /jobs/{id}/logs`.
//!
//! Workers write, the API reads. Behind a small trait so a shared store can replace it; the
//! one implementation here keeps `<work>/<job>/logs.json` under the work folder, which works
//! when the API and the workers share a disk (one machine, or a shared volume). Each write
//! replaces the file atomically (write + rename), so a reader never sees half a file. Only
//! one worker holds a job at a time, so writers of one file do not race across processes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::pipeline::solve::AttemptRecord;
use crate::queue::JobId;

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
    /// The code.
    pub code: String,
    /// The sandbox backend, if it ran.
    pub backend: Option<String>,
    /// The exit code, if the script exited.
    pub exit_code: Option<i32>,
    /// The cap that stopped it, if any (`fuel`, `memory`, `wall-time`, `output`).
    pub limit: Option<String>,
    /// The sandbox run's wall time.
    pub wall_ms: Option<u64>,
    /// The tail of stdout.
    pub stdout_tail: String,
    /// The tail of stderr.
    pub stderr_tail: String,
    /// Why the attempt failed, if it did.
    pub error: Option<String>,
}

impl AttemptLog {
    /// The log of a pipeline attempt run by `worker`.
    pub fn from_record(record: &AttemptRecord, worker: &str) -> Self {
        let outcome = record.outcome.as_ref();
        Self {
            attempt: record.attempt,
            worker: worker.to_owned(),
            generator: record.generator.clone(),
            code: record.code.clone(),
            backend: record.backend.map(|b| b.to_string()),
            exit_code: outcome.and_then(|o| o.exit_code),
            limit: outcome.and_then(|o| o.limit).map(|l| l.to_string()),
            wall_ms: outcome.map(|o| o.wall_ms),
            stdout_tail: outcome.map(|o| tail(&o.stdout)).unwrap_or_default(),
            stderr_tail: outcome.map(|o| tail(&o.stderr)).unwrap_or_default(),
            error: record.error.clone(),
        }
    }
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
    /// The stored file is not a log.
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
}

/// A shared, type-erased log store.
pub type DynLogs = Arc<dyn JobLogs>;

/// Logs as `<root>/<job>/logs.json` (`root` is the solver's work folder).
#[derive(Debug)]
pub struct FileLogs {
    root: PathBuf,
    /// Serialises this process's read-modify-write cycles.
    lock: tokio::sync::Mutex<()>,
}

impl FileLogs {
    /// Logs under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            lock: tokio::sync::Mutex::new(()),
        }
    }

    fn path(&self, id: &JobId) -> Result<PathBuf, LogsError> {
        // Ids come from the queue, but a foreign writer could store anything: keep to UUIDs.
        let id = JobId::parse(&id.0).ok_or_else(|| LogsError::Corrupt {
            path: self.root.clone(),
            reason: format!("{:?} is not a job id", id.0),
        })?;
        Ok(self.root.join(id.0).join("logs.json"))
    }

    async fn update(&self, id: &JobId, change: impl FnOnce(&mut JobLog)) -> Result<(), LogsError> {
        let path = self.path(id)?;
        let _guard = self.lock.lock().await;
        let mut log = read_file(&path).await?.unwrap_or_else(|| JobLog {
            job_id: id.0.clone(),
            ..JobLog::default()
        });
        change(&mut log);
        let excess = log.events.len().saturating_sub(MAX_EVENTS);
        log.events.drain(..excess);
        write_file(&path, &log).await
    }
}

#[async_trait]
impl JobLogs for FileLogs {
    async fn event(&self, id: &JobId, event: LogEvent) -> Result<(), LogsError> {
        self.update(id, |log| log.events.push(event)).await
    }

    async fn attempts(&self, id: &JobId, attempts: Vec<AttemptLog>) -> Result<(), LogsError> {
        self.update(id, |log| log.attempts.extend(attempts)).await
    }

    async fn read(&self, id: &JobId) -> Result<Option<JobLog>, LogsError> {
        read_file(&self.path(id)?).await
    }
}

async fn read_file(path: &Path) -> Result<Option<JobLog>, LogsError> {
    match tokio::fs::read(path).await {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| LogsError::Corrupt {
                path: path.to_owned(),
                reason: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(LogsError::Io {
            context: format!("reading {}", path.display()),
            source,
        }),
    }
}

async fn write_file(path: &Path, log: &JobLog) -> Result<(), LogsError> {
    let io = |context: String| move |source| LogsError::Io { context, source };
    let folder = path.parent().unwrap_or(path);
    tokio::fs::create_dir_all(folder)
        .await
        .map_err(io(format!("creating {}", folder.display())))?;
    let bytes = serde_json::to_vec(log).map_err(|e| LogsError::Corrupt {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let partial = folder.join(format!(".logs.json.{}", std::process::id()));
    tokio::fs::write(&partial, bytes)
        .await
        .map_err(io(format!("writing {}", partial.display())))?;
    tokio::fs::rename(&partial, path)
        .await
        .map_err(io(format!("replacing {}", path.display())))
}

/// The last [`OUTPUT_TAIL_CHARS`] characters of `text`.
fn tail(text: &str) -> String {
    let skip = text.chars().count().saturating_sub(OUTPUT_TAIL_CHARS);
    text.chars().skip(skip).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn appends_events_and_attempts_and_caps_the_timeline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let logs = FileLogs::new(dir.path());
        let id = JobId::new();
        assert_eq!(logs.read(&id).await.expect("read"), None);
        for i in 0..(MAX_EVENTS + 3) {
            logs.event(&id, LogEvent::now("w", format!("e{i}")))
                .await
                .expect("event");
        }
        let attempt = AttemptLog {
            attempt: 1,
            worker: "w".into(),
            generator: "baseline".into(),
            code: "print(1)".into(),
            backend: Some("wasm".into()),
            exit_code: Some(0),
            limit: None,
            wall_ms: Some(3),
            stdout_tail: "1\n".into(),
            stderr_tail: String::new(),
            error: None,
        };
        logs.attempts(&id, vec![attempt.clone()])
            .await
            .expect("attempts");
        let log = logs.read(&id).await.expect("read").expect("some");
        assert_eq!(log.job_id, id.0);
        assert_eq!(log.attempts, vec![attempt]);
        assert_eq!(log.events.len(), MAX_EVENTS);
        assert_eq!(log.events[0].message, "e3");
        assert!(dir.path().join(&id.0).join("logs.json").is_file());
        assert!(logs.read(&JobId("../x".into())).await.is_err());
    }
}
