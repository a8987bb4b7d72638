//! Job logs as files: `<root>/<job>/logs.json`, replaced atomically on every write.
//!
//! This works when the API and the workers share a disk (one machine, or a shared volume).
//! Each write goes to a temporary name and is renamed over the file, so a reader never sees
//! half a file. Only the worker holding a job writes its log, and only while its lease surely
//! runs (the worker fences every write), so writers of one file do not race across processes;
//! within a process a mutex serialises the read-modify-write cycles.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::{AttemptLog, JobLog, JobLogs, LogEvent, LogsError, MAX_EVENTS};
use crate::queue::JobId;

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

    async fn update<T>(
        &self,
        id: &JobId,
        change: impl FnOnce(&mut JobLog) -> T,
    ) -> Result<T, LogsError> {
        let path = self.path(id)?;
        let _guard = self.lock.lock().await;
        let mut log = read_file(&path).await?.unwrap_or_else(|| JobLog {
            job_id: id.0.clone(),
            ..JobLog::default()
        });
        let answer = change(&mut log);
        let excess = log.events.len().saturating_sub(MAX_EVENTS);
        log.events.drain(..excess);
        write_file(&path, &log).await?;
        Ok(answer)
    }
}

#[async_trait]
impl JobLogs for FileLogs {
    async fn event(&self, id: &JobId, mut event: LogEvent) -> Result<u64, LogsError> {
        self.update(id, |log| {
            // The last event is never dropped by the cap, so numbers keep rising past it.
            event.seq = log.events.last().map_or(0, |last| last.seq) + 1;
            log.events.push(event);
            log.events.last().map_or(0, |last| last.seq)
        })
        .await
    }

    async fn events_after(&self, id: &JobId, after: u64) -> Result<Vec<LogEvent>, LogsError> {
        let log = read_file(&self.path(id)?).await?;
        Ok(log
            .map(|log| log.events.into_iter().filter(|e| e.seq > after).collect())
            .unwrap_or_default())
    }

    async fn attempts(&self, id: &JobId, attempts: Vec<AttemptLog>) -> Result<(), LogsError> {
        self.update(id, |log| log.attempts.extend(attempts)).await
    }

    async fn read(&self, id: &JobId) -> Result<Option<JobLog>, LogsError> {
        read_file(&self.path(id)?).await
    }

    async fn delete(&self, id: &JobId) -> Result<(), LogsError> {
        let path = self.path(id)?;
        let _guard = self.lock.lock().await;
        match tokio::fs::remove_file(&path).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(LogsError::Io {
                    context: format!("deleting {}", path.display()),
                    source: e,
                });
            }
            _ => {}
        }
        // The job's folder is the work folder its attempts ran in: removed only once empty, as
        // what else is in it is the worker's to clean.
        if let Some(folder) = path.parent() {
            let _ = tokio::fs::remove_dir(folder).await;
        }
        Ok(())
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
    // A name of its own per write: two writers in one process (two hosts, two workers with
    // their own `FileLogs`) never write through the same file.
    let partial = folder.join(format!(".logs.json.{}", uuid::Uuid::new_v4().simple()));
    tokio::fs::write(&partial, bytes)
        .await
        .map_err(io(format!("writing {}", partial.display())))?;
    tokio::fs::rename(&partial, path)
        .await
        .map_err(io(format!("replacing {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::EventKind;

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
            backend: Some(crate::sandbox::Backend::Wasm),
            exit_code: Some(0),
            limit: None,
            wall_ms: Some(3),
            stdout_tail: "1\n".into(),
            stderr_tail: String::new(),
            error: None,
            fuel_used: Some(1_000),
            candidate: None,
        };
        logs.attempts(&id, vec![attempt.clone()])
            .await
            .expect("attempts");
        let log = logs.read(&id).await.expect("read").expect("some");
        assert_eq!(log.job_id, id.0);
        assert_eq!(log.attempts, vec![attempt]);
        assert_eq!(log.events.len(), MAX_EVENTS);
        assert_eq!(log.events[0].message, "e3");
        assert_eq!(log.events[0].seq, 4, "numbers survive the cap");
        let last = u64::try_from(MAX_EVENTS + 3).expect("small");
        assert_eq!(log.events[MAX_EVENTS - 1].seq, last);
        let after = logs.events_after(&id, last - 2).await.expect("after");
        let seqs: Vec<u64> = after.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![last - 1, last]);
        assert!(logs.events_after(&id, last).await.expect("none").is_empty());
        assert!(
            logs.events_after(&JobId::new(), 0)
                .await
                .expect("no log")
                .is_empty()
        );
        let next = logs
            .event(&id, LogEvent::of(EventKind::Terminal, "w", "completed"))
            .await
            .expect("event");
        assert_eq!(next, last + 1);
        assert!(dir.path().join(&id.0).join("logs.json").is_file());
        assert!(logs.read(&JobId("../x".into())).await.is_err());
    }

    #[tokio::test]
    async fn delete_removes_the_log_and_an_emptied_folder_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let logs = FileLogs::new(dir.path());
        let (alone, with_work) = (JobId::new(), JobId::new());
        for id in [&alone, &with_work] {
            logs.event(id, LogEvent::now("w", "started"))
                .await
                .expect("event");
        }
        let attempt = dir.path().join(&with_work.0).join("attempt-1");
        std::fs::create_dir_all(&attempt).expect("an attempt folder");
        logs.delete(&alone).await.expect("deleted");
        logs.delete(&with_work).await.expect("deleted");
        assert_eq!(logs.read(&alone).await.expect("read"), None);
        assert_eq!(logs.read(&with_work).await.expect("read"), None);
        assert!(
            !dir.path().join(&alone.0).exists(),
            "the emptied folder goes"
        );
        assert!(attempt.is_dir(), "a folder with other files stays");
        logs.delete(&alone).await.expect("deleting again is fine");
        assert!(logs.delete(&JobId("../x".into())).await.is_err());
    }
}
