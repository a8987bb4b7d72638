//! Expiry of finished jobs: once a job has been completed or failed for the service's time to
//! live (`KS_JOB_TTL`, default 7 days), its queue record, its stored submission and its log are
//! deleted, so that neither the queue's store nor the data folder grows with every job ever run.
//!
//! One owner, the [`Sweeper`], in two steps. The queue removes the expired records atomically
//! and hands back their ids ([`JobQueue::sweep_finished`]); the sweeper then deletes their files
//! and confirms ([`JobQueue::confirm_swept`]). Records go first, so that from the moment
//! `/status` answers 404 nothing is served from files about to go; the queue keeps each id until
//! it is confirmed, so a sweeper that dies between the steps leaves the files to the next sweep
//! rather than on disk for good. Workers run it (and so `serve` with embedded workers): every
//! job that finishes was run by one.
//!
//! [`JobQueue::sweep_finished`]: crate::queue::JobQueue::sweep_finished
//! [`JobQueue::confirm_swept`]: crate::queue::JobQueue::confirm_swept

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::logs::DynLogs;
use crate::queue::{DynQueue, JobId, QueueError};
use crate::storage::DynStore;

/// How long finished jobs are kept by default: a week.
pub const DEFAULT_JOB_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// How many jobs one call to the queue expires at most.
const BATCH: u64 = 200;

/// Deletes expired jobs: their records, submissions and logs.
#[derive(Debug, Clone)]
pub struct Sweeper {
    queue: DynQueue,
    store: DynStore,
    logs: DynLogs,
    ttl: Duration,
}

impl Sweeper {
    /// A sweeper expiring jobs of `queue` finished `ttl` ago, with their files in `store` and
    /// `logs`.
    pub fn new(queue: DynQueue, store: DynStore, logs: DynLogs, ttl: Duration) -> Self {
        Self {
            queue,
            store,
            logs,
            ttl,
        }
    }

    /// How long finished jobs are kept.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// How often [`Sweeper::run`] sweeps: a tenth of the time to live, so a job outlives it by
    /// at most a tenth, but at most every 100 ms and at least every minute.
    pub fn interval(&self) -> Duration {
        (self.ttl / 10).clamp(Duration::from_millis(100), Duration::from_secs(60))
    }

    /// One sweep: expires every job due now and deletes its files. Returns how many jobs'
    /// files were deleted. A file that could not be deleted is logged and left, with its id,
    /// for the next sweep.
    ///
    /// # Errors
    /// When the queue fails (then nothing more is swept this time).
    pub async fn sweep(&self) -> Result<u64, QueueError> {
        let mut deleted = 0;
        loop {
            let ids = self.queue.sweep_finished(self.ttl, BATCH).await?;
            let mut gone = Vec::with_capacity(ids.len());
            for id in &ids {
                if self.delete_files(id).await {
                    gone.push(id.clone());
                }
            }
            self.queue.confirm_swept(&gone).await?;
            deleted += gone.len() as u64;
            // A short batch means nothing else is due; a failed deletion would come back in
            // the next batch at once, so it waits for the next sweep instead.
            if (ids.len() as u64) < BATCH || gone.len() < ids.len() {
                return Ok(deleted);
            }
        }
    }

    /// Deletes the job's submission and log; whether both are gone.
    async fn delete_files(&self, id: &JobId) -> bool {
        let submission = self.store.delete(&id.0).await;
        if let Err(error) = &submission {
            tracing::warn!(job = %id, %error, "expired submission not deleted; retrying later");
        }
        let log = self.logs.delete(id).await;
        if let Err(error) = &log {
            tracing::warn!(job = %id, %error, "expired log not deleted; retrying later");
        }
        submission.is_ok() && log.is_ok()
    }

    /// Sweeps every [`Sweeper::interval`] until `shutdown` is cancelled. Queue failures are
    /// logged and retried at the next interval.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            match self.sweep().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(expired = n, "expired finished jobs"),
                Err(error) => tracing::warn!(%error, "sweeping expired jobs failed"),
            }
            tokio::select! {
                () = tokio::time::sleep(self.interval()) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::logs::{FileLogs, JobLogs, LogEvent};
    use crate::queue::{JobResult, MemoryQueue, NewJob, WorkerId};
    use crate::storage::{LocalStore, SubmissionStore};

    #[test]
    fn the_interval_follows_the_ttl_within_bounds() {
        let sweeper = |ttl| {
            let queue: DynQueue = Arc::new(MemoryQueue::default());
            let store: DynStore = Arc::new(LocalStore::new("/nonexistent"));
            let logs: DynLogs = Arc::new(FileLogs::new("/nonexistent"));
            Sweeper::new(queue, store, logs, ttl)
        };
        assert_eq!(sweeper(DEFAULT_JOB_TTL).interval(), Duration::from_secs(60));
        assert_eq!(
            sweeper(Duration::from_secs(100)).interval(),
            Duration::from_secs(10)
        );
        assert_eq!(
            sweeper(Duration::from_millis(10)).interval(),
            Duration::from_millis(100)
        );
    }

    #[tokio::test]
    async fn an_expired_job_loses_its_record_submission_and_log_and_a_fresh_one_keeps_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let queue: DynQueue = Arc::new(MemoryQueue::default());
        let store = Arc::new(LocalStore::new(dir.path().join("submissions")));
        let logs = Arc::new(FileLogs::new(dir.path().join("work")));
        let csv: &[u8] = b"id,y\n1,2\n";
        let worker = WorkerId("w".into());
        let finish = async |n: usize| {
            let job = NewJob {
                source: format!("s{n}"),
                policy: "default".into(),
                overrides: Default::default(),
            };
            let id = queue.enqueue(job).await.expect("enqueued").id;
            queue
                .claim(&worker, Duration::from_secs(60))
                .await
                .expect("claimed");
            let stored = store.put(&id.0, csv).await.expect("stored");
            logs.event(&id, LogEvent::now("w", "started"))
                .await
                .expect("logged");
            let result = JobResult {
                submission_source: stored.source,
                submission_path: stored.path,
                validation_score: None,
                validation_score_source: None,
                attempts: 1,
            };
            assert_eq!(
                queue
                    .complete(&worker, &id, result)
                    .await
                    .expect("completed"),
                crate::queue::Completion::Completed
            );
            id
        };
        let old = finish(1).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let fresh = finish(2).await;
        let sweeper = Sweeper::new(
            queue.clone(),
            store.clone(),
            logs.clone(),
            Duration::from_millis(250),
        );
        assert_eq!(sweeper.sweep().await.expect("swept"), 1);
        assert_eq!(queue.get(&old).await.expect("get"), None);
        assert!(store.get(&old.0).await.expect("get").is_none());
        assert_eq!(logs.read(&old).await.expect("read"), None);
        assert!(!dir.path().join("submissions").join(&old.0).exists());
        assert!(!dir.path().join("work").join(&old.0).exists());
        assert!(queue.get(&fresh).await.expect("get").is_some());
        assert!(store.get(&fresh.0).await.expect("get").is_some());
        assert!(logs.read(&fresh).await.expect("read").is_some());
        assert_eq!(sweeper.sweep().await.expect("swept"), 0, "nothing twice");
    }
}
