//! The job queue: where accepted jobs wait, which worker holds which job, and each job's
//! record. Two implementations behind one trait, run through one conformance suite: Redis
//! (durable, shared by worker processes on many machines) and in-memory (the embedded mode,
//! not durable).
//!
//! Delivery is at least once, with leases: a worker claims a job for a lease period and
//! heartbeats to keep it; a job whose lease expires is put back by the reaper. Every state
//! change names the worker, and a change from a worker that no longer holds the lease is
//! refused, so a late completion never overwrites the new owner's result.
//!
//! The queue is also bounded: at most [`QueueConfig::max_queued`] jobs wait, the dead list keeps
//! the newest [`QueueConfig::max_dead`], and finished records are removed by
//! [`JobQueue::sweep_finished`] once they are older than the service's time to live, so that
//! neither a flood of submissions nor months of traffic grow the store without end.

mod config;
mod memory;
mod redis;
mod types;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use self::redis::RedisQueue;
pub use config::QueueConfig;
pub use memory::MemoryQueue;
pub use types::{
    CancelOutcome, Completion, Failure, JOB_RECORD_VERSION, JobId, JobPage, JobRecord, JobResult,
    JobStatus, LeaseState, ListCursor, ListState, NewJob, Progress, QueueStats, ScoreSource,
    StopOutcome, WorkerId,
};

/// The most jobs one page of [`JobQueue::list`] holds.
pub const MAX_PAGE: usize = 100;
/// The most entries of the acceptance index one [`JobQueue::list`] call reads while filtering
/// by state, so a rare state in a long history costs a bounded call (the page may then be
/// short, with a cursor to go on).
pub const LIST_SCAN: usize = 1_000;

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The backing store could not be reached or answered with an error (retry later).
    #[error("the queue's store is unavailable: {0}")]
    Unavailable(String),
    /// A stored record could not be read (a bug or a foreign writer).
    #[error("corrupt job record {id}: {reason}")]
    Corrupt {
        /// The job.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// The waiting line is at its cap ([`QueueConfig::max_queued`]); nothing was enqueued.
    #[error("the queue is full: {limit} jobs are already waiting; retry later")]
    Full {
        /// The cap.
        limit: u64,
    },
}

impl QueueError {
    /// Whether retrying the operation later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// The operations every queue offers. Each one is atomic.
#[async_trait]
pub trait JobQueue: Send + Sync + std::fmt::Debug {
    /// Accepts a job: records it as `pending` and puts it at the back of the waiting line.
    async fn enqueue(&self, job: NewJob) -> Result<JobRecord, QueueError>;

    /// The job's record, if the id is known.
    async fn get(&self, id: &JobId) -> Result<Option<JobRecord>, QueueError>;

    /// Takes the next waiting job for `worker`, leased until now + `lease`, and marks it
    /// `processing`. `None` when nothing waits.
    async fn claim(
        &self,
        worker: &WorkerId,
        lease: Duration,
    ) -> Result<Option<JobRecord>, QueueError>;

    /// Extends `worker`'s lease on `id`. Tells the worker whether it still holds the job and
    /// whether a cancel was asked for.
    async fn heartbeat(
        &self,
        worker: &WorkerId,
        id: &JobId,
        lease: Duration,
    ) -> Result<LeaseState, QueueError>;

    /// Records progress (stage, attempt, backend) if `worker` holds the job.
    async fn progress(
        &self,
        worker: &WorkerId,
        id: &JobId,
        progress: Progress,
    ) -> Result<LeaseState, QueueError>;

    /// Marks the job `completed` with its result if `worker` holds it, or `failed` as
    /// cancelled if a cancel was asked for first; nothing changes if `worker` does not hold it.
    async fn complete(
        &self,
        worker: &WorkerId,
        id: &JobId,
        result: JobResult,
    ) -> Result<Completion, QueueError>;

    /// Records a failure if `worker` holds the job: a retryable one puts the job back in line
    /// (after its delay) without using an attempt of the code; a permanent one marks it
    /// `failed`. `false` if the worker does not hold it.
    async fn fail(
        &self,
        worker: &WorkerId,
        id: &JobId,
        failure: Failure,
    ) -> Result<bool, QueueError>;

    /// Hands a held job back to the waiting line (a draining worker); `false` if not held.
    async fn release(&self, worker: &WorkerId, id: &JobId) -> Result<bool, QueueError>;

    /// Cancels a job: a pending one at once, a running one by flagging it for its worker.
    async fn cancel(&self, id: &JobId) -> Result<CancelOutcome, QueueError>;

    /// Asks a job that has not ended to end its search early and submit the best candidate
    /// so far, by flagging it for its worker (whose heartbeats then answer
    /// [`LeaseState::StopRequested`]). A cancel, asked before or after, still wins.
    async fn stop(&self, id: &JobId) -> Result<StopOutcome, QueueError>;

    /// Puts every job whose lease has expired back in line; returns how many.
    async fn reap_expired(&self) -> Result<u64, QueueError>;

    /// Counts by state, for `/metrics`.
    async fn stats(&self) -> Result<QueueStats, QueueError>;

    /// Removes the records of up to `limit` jobs that finished (completed or failed) at least
    /// `ttl` ago, takes them off the dead list, and trims the dead list to its newest
    /// [`QueueConfig::max_dead`]. Returns the ids whose files (submission, log) are still to
    /// delete: the ones removed now and any an earlier sweep removed without
    /// [`JobQueue::confirm_swept`] (a sweeper that stopped midway), up to `limit`. Two
    /// sweepers may get the same id; deleting files twice is harmless.
    async fn sweep_finished(&self, ttl: Duration, limit: u64) -> Result<Vec<JobId>, QueueError>;

    /// Records that the files of `ids` are gone, so that no sweep returns them again.
    async fn confirm_swept(&self, ids: &[JobId]) -> Result<(), QueueError>;

    /// The jobs on the dead list (out of infrastructure retries), newest first.
    async fn dead_letters(&self) -> Result<Vec<JobRecord>, QueueError>;

    /// Up to `limit` (at most [`MAX_PAGE`]) jobs, newest accepted first, in `state` (any when
    /// `None`), accepted before `cursor` (from the start when `None`). At most [`LIST_SCAN`]
    /// jobs are looked at per call, so a filtered page may be short and still have a next one.
    async fn list(
        &self,
        state: Option<ListState>,
        limit: usize,
        cursor: Option<ListCursor>,
    ) -> Result<JobPage, QueueError>;

    /// Puts a job of the dead list back at the end of the waiting line as `pending`, with its
    /// infrastructure retries reset; `None` when the job is not on the dead list. An operator's
    /// requeue of one job is not the flood [`QueueConfig::max_queued`] is for, so it is not
    /// capped.
    async fn requeue_dead(&self, id: &JobId) -> Result<Option<JobRecord>, QueueError>;
}

/// A shared, type-erased queue.
pub type DynQueue = Arc<dyn JobQueue>;
