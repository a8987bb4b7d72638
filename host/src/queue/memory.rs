//! The in-memory queue: the embedded mode, for one process that both accepts and runs jobs
//! (tests, `serve` without Redis, a library user with no Redis at hand).
//!
//! **It is not durable**: every job, waiting or running, is lost when the process ends. It has
//! the same semantics as the Redis queue (the conformance suite runs both): FIFO waiting line,
//! leases with deadlines, delayed retries, a cap on infrastructure retries with a bounded dead
//! list, a cap on waiting jobs, expiry of finished records, and refusal of every change from a
//! worker that does not hold the job.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::config::{REQUEUED, unix_ms};
use super::{
    CancelOutcome, Completion, Failure, JobId, JobPage, JobQueue, JobRecord, JobResult, JobStatus,
    LIST_SCAN, LeaseState, ListCursor, ListState, MAX_PAGE, NewJob, Progress, QueueConfig,
    QueueError, QueueStats, StopOutcome, WorkerId,
};

/// The message of a job cancelled before it ended.
pub(crate) const CANCELLED: &str = "cancelled";

/// A queue held in this process's memory; not durable. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct MemoryQueue {
    config: QueueConfig,
    state: Mutex<State>,
}

/// Everything behind the one lock.
#[derive(Debug, Default)]
struct State {
    /// Ids ready to run, oldest first.
    waiting: VecDeque<JobId>,
    /// Ids waiting out a retry delay, with the instant they may run again.
    delayed: Vec<(Instant, JobId)>,
    /// Jobs in flight: the holder and the lease's deadline.
    leases: HashMap<JobId, (WorkerId, Instant)>,
    /// Every job's record.
    records: HashMap<JobId, JobRecord>,
    /// Jobs that ran out of infrastructure retries, in the order they did.
    dead: Vec<JobId>,
    /// Finished jobs in the order they finished (which is the order of their instants).
    finished: VecDeque<(Instant, JobId)>,
    /// Ids whose records a sweep removed and whose files are not yet confirmed gone.
    swept: Vec<JobId>,
    /// Every recorded job by its acceptance number, for listings.
    created: BTreeMap<u64, JobId>,
    /// Each recorded job's acceptance number.
    numbers: HashMap<JobId, u64>,
    /// Jobs accepted so far.
    accepted: u64,
    completed: u64,
    failed: u64,
}

impl MemoryQueue {
    /// An empty queue. Only `config.max_infra_retries` matters here.
    pub fn new(config: QueueConfig) -> Self {
        Self {
            config,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No operation leaves the state half-changed across a panic point, so a poisoned
        // lock still guards consistent data.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for MemoryQueue {
    fn default() -> Self {
        Self::new(QueueConfig::default())
    }
}

impl State {
    /// Whether `worker` holds `id` now.
    fn holds(&self, worker: &WorkerId, id: &JobId) -> bool {
        self.leases
            .get(id)
            .is_some_and(|(holder, _)| holder == worker)
    }

    /// The lease state a holder sees.
    fn lease_state(&self, worker: &WorkerId, id: &JobId) -> LeaseState {
        match self.records.get(id) {
            Some(record) if self.holds(worker, id) && record.cancel_requested => {
                LeaseState::CancelRequested
            }
            Some(record) if self.holds(worker, id) && record.stop_requested => {
                LeaseState::StopRequested
            }
            Some(_) if self.holds(worker, id) => LeaseState::Held,
            _ => LeaseState::Lost,
        }
    }

    /// Moves the delayed jobs that are due into the waiting line.
    fn promote_due(&mut self, now: Instant) {
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.delayed)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.delayed = later;
        let mut due = due;
        due.sort_by_key(|(at, _)| *at);
        self.waiting.extend(due.into_iter().map(|(_, id)| id));
    }

    /// Ends a job as `failed` with `message`.
    fn fail_now(&mut self, id: &JobId, message: String) {
        self.leases.remove(id);
        if let Some(record) = self.records.get_mut(id) {
            record.status = JobStatus::Failed;
            record.message = Some(message);
            record.worker = None;
            record.updated_at_ms = unix_ms();
            self.failed += 1;
            self.finished.push_back((Instant::now(), id.clone()));
        }
    }

    /// After an infrastructure failure of a held job (a reported retry or an expired lease):
    /// back in line after `delay`, or `failed` and dead when out of retries, or `failed` as
    /// cancelled when a cancel was asked for.
    fn retry_or_bury(&mut self, id: &JobId, message: &str, delay: Duration, max: u32) {
        self.leases.remove(id);
        let Some(record) = self.records.get_mut(id) else {
            return;
        };
        if record.cancel_requested {
            self.fail_now(id, CANCELLED.to_owned());
        } else if record.infra_retries >= max {
            self.fail_now(
                id,
                format!("gave up after {max} infrastructure retries: {message}"),
            );
            self.dead.push(id.clone());
        } else {
            record.infra_retries += 1;
            record.status = JobStatus::Pending;
            record.message = Some(message.to_owned());
            record.worker = None;
            record.updated_at_ms = unix_ms();
            if delay.is_zero() {
                self.waiting.push_back(id.clone());
            } else {
                self.delayed.push((Instant::now() + delay, id.clone()));
            }
        }
    }
}

#[async_trait]
impl JobQueue for MemoryQueue {
    async fn enqueue(&self, job: NewJob) -> Result<JobRecord, QueueError> {
        let record = JobRecord::pending(job, unix_ms());
        let mut state = self.lock();
        let limit = self.config.max_queued;
        if (state.waiting.len() + state.delayed.len()) as u64 >= limit {
            return Err(QueueError::Full { limit });
        }
        state.records.insert(record.id.clone(), record.clone());
        state.waiting.push_back(record.id.clone());
        state.accepted += 1;
        let number = state.accepted;
        state.created.insert(number, record.id.clone());
        state.numbers.insert(record.id.clone(), number);
        Ok(record)
    }

    async fn get(&self, id: &JobId) -> Result<Option<JobRecord>, QueueError> {
        Ok(self.lock().records.get(id).cloned())
    }

    async fn claim(
        &self,
        worker: &WorkerId,
        lease: Duration,
    ) -> Result<Option<JobRecord>, QueueError> {
        let now = Instant::now();
        let mut state = self.lock();
        state.promote_due(now);
        while let Some(id) = state.waiting.pop_front() {
            let Some(record) = state.records.get_mut(&id) else {
                continue;
            };
            if record.status != JobStatus::Pending {
                continue;
            }
            record.status = JobStatus::Processing;
            record.worker = Some(worker.clone());
            record.updated_at_ms = unix_ms();
            let claimed = record.clone();
            state.leases.insert(id, (worker.clone(), now + lease));
            return Ok(Some(claimed));
        }
        Ok(None)
    }

    async fn heartbeat(
        &self,
        worker: &WorkerId,
        id: &JobId,
        lease: Duration,
    ) -> Result<LeaseState, QueueError> {
        let mut state = self.lock();
        let seen = state.lease_state(worker, id);
        if seen != LeaseState::Lost
            && let Some((_, deadline)) = state.leases.get_mut(id)
        {
            *deadline = Instant::now() + lease;
        }
        Ok(seen)
    }

    async fn progress(
        &self,
        worker: &WorkerId,
        id: &JobId,
        progress: Progress,
    ) -> Result<LeaseState, QueueError> {
        let mut state = self.lock();
        let seen = state.lease_state(worker, id);
        if seen != LeaseState::Lost
            && let Some(record) = state.records.get_mut(id)
        {
            record.stage = Some(progress.stage);
            record.attempt = progress.attempt;
            record.max_attempts = progress.max_attempts;
            record.backend = progress.backend;
            record.best_score = progress.best_score.or(record.best_score);
            record.candidates_tried = progress.candidates_tried.or(record.candidates_tried);
            record.updated_at_ms = unix_ms();
        }
        Ok(seen)
    }

    async fn complete(
        &self,
        worker: &WorkerId,
        id: &JobId,
        result: JobResult,
    ) -> Result<Completion, QueueError> {
        let mut state = self.lock();
        if !state.holds(worker, id) {
            return Ok(Completion::NotHeld);
        }
        if state.records.get(id).is_some_and(|r| r.cancel_requested) {
            state.fail_now(id, CANCELLED.to_owned());
            return Ok(Completion::Cancelled);
        }
        state.leases.remove(id);
        let Some(record) = state.records.get_mut(id) else {
            return Ok(Completion::NotHeld);
        };
        record.status = JobStatus::Completed;
        record.submission_source = Some(result.submission_source);
        record.submission_path = Some(result.submission_path);
        record.validation_score = result.validation_score;
        record.validation_score_source = result.validation_score_source;
        record.attempt = Some(result.attempts);
        record.message = None;
        record.worker = None;
        record.updated_at_ms = unix_ms();
        state.completed += 1;
        state.finished.push_back((Instant::now(), id.clone()));
        Ok(Completion::Completed)
    }

    async fn fail(
        &self,
        worker: &WorkerId,
        id: &JobId,
        failure: Failure,
    ) -> Result<bool, QueueError> {
        let mut state = self.lock();
        if !state.holds(worker, id) {
            return Ok(false);
        }
        match failure {
            Failure::Retry { message, delay_ms } => {
                let delay = Duration::from_millis(delay_ms);
                state.retry_or_bury(id, &message, delay, self.config.max_infra_retries);
            }
            Failure::Abort { message } => state.fail_now(id, message),
        }
        Ok(true)
    }

    async fn release(&self, worker: &WorkerId, id: &JobId) -> Result<bool, QueueError> {
        let mut state = self.lock();
        if !state.holds(worker, id) {
            return Ok(false);
        }
        state.leases.remove(id);
        let Some(record) = state.records.get_mut(id) else {
            return Ok(false);
        };
        if record.cancel_requested {
            state.fail_now(id, CANCELLED.to_owned());
            return Ok(true);
        }
        record.status = JobStatus::Pending;
        record.worker = None;
        record.updated_at_ms = unix_ms();
        state.waiting.push_front(id.clone());
        Ok(true)
    }

    async fn cancel(&self, id: &JobId) -> Result<CancelOutcome, QueueError> {
        let mut state = self.lock();
        let Some(record) = state.records.get_mut(id) else {
            return Ok(CancelOutcome::NotFound);
        };
        match record.status {
            JobStatus::Completed | JobStatus::Failed => Ok(CancelOutcome::AlreadyFinished),
            JobStatus::Processing => {
                record.cancel_requested = true;
                record.updated_at_ms = unix_ms();
                Ok(CancelOutcome::Requested)
            }
            JobStatus::Pending => {
                record.cancel_requested = true;
                state.waiting.retain(|waiting| waiting != id);
                state.delayed.retain(|(_, delayed)| delayed != id);
                state.fail_now(id, CANCELLED.to_owned());
                Ok(CancelOutcome::Cancelled)
            }
        }
    }

    async fn stop(&self, id: &JobId) -> Result<StopOutcome, QueueError> {
        let mut state = self.lock();
        let Some(record) = state.records.get_mut(id) else {
            return Ok(StopOutcome::NotFound);
        };
        if matches!(record.status, JobStatus::Completed | JobStatus::Failed) {
            return Ok(StopOutcome::AlreadyFinished);
        }
        record.stop_requested = true;
        record.updated_at_ms = unix_ms();
        Ok(StopOutcome::Requested)
    }

    async fn reap_expired(&self) -> Result<u64, QueueError> {
        let now = Instant::now();
        let mut state = self.lock();
        state.promote_due(now);
        let mut expired: Vec<(JobId, WorkerId)> = state
            .leases
            .iter()
            .filter(|(_, (_, deadline))| *deadline <= now)
            .map(|(id, (worker, _))| (id.clone(), worker.clone()))
            .collect();
        expired.sort_by_key(|(id, _)| state.leases.get(id).map(|(_, deadline)| *deadline));
        for (id, worker) in &expired {
            let message = format!("worker {} stopped heartbeating; retrying", worker.0);
            state.retry_or_bury(id, &message, Duration::ZERO, self.config.max_infra_retries);
        }
        Ok(expired.len() as u64)
    }

    async fn stats(&self) -> Result<QueueStats, QueueError> {
        let state = self.lock();
        Ok(QueueStats {
            pending: (state.waiting.len() + state.delayed.len()) as u64,
            processing: state.leases.len() as u64,
            completed: state.completed,
            failed: state.failed,
        })
    }

    async fn sweep_finished(&self, ttl: Duration, limit: u64) -> Result<Vec<JobId>, QueueError> {
        let now = Instant::now();
        let mut state = self.lock();
        let mut removed = 0;
        while removed < limit
            && let Some((at, _)) = state.finished.front()
            && now.duration_since(*at) >= ttl
        {
            let Some((_, id)) = state.finished.pop_front() else {
                break;
            };
            removed += 1;
            let terminal = state
                .records
                .get(&id)
                .map(|record| record.status)
                .filter(|status| status.is_terminal());
            match terminal {
                Some(JobStatus::Completed) => state.completed = state.completed.saturating_sub(1),
                Some(_) => state.failed = state.failed.saturating_sub(1),
                None => continue,
            }
            state.records.remove(&id);
            if let Some(number) = state.numbers.remove(&id) {
                state.created.remove(&number);
            }
            state.dead.retain(|dead| dead != &id);
            if !state.swept.contains(&id) {
                state.swept.push(id);
            }
        }
        let max_dead = usize::try_from(self.config.max_dead.max(1)).unwrap_or(usize::MAX);
        let excess = state.dead.len().saturating_sub(max_dead);
        state.dead.drain(..excess);
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        Ok(state.swept.iter().take(limit).cloned().collect())
    }

    async fn confirm_swept(&self, ids: &[JobId]) -> Result<(), QueueError> {
        self.lock().swept.retain(|id| !ids.contains(id));
        Ok(())
    }

    async fn list(
        &self,
        state: Option<ListState>,
        limit: usize,
        cursor: Option<ListCursor>,
    ) -> Result<JobPage, QueueError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let below = cursor.map_or(u64::MAX, |c| c.0);
        let queue = self.lock();
        // Newest first, by acceptance number, below the cursor; the dead list is short.
        let candidates: Vec<(u64, &JobId)> = match state {
            Some(ListState::Dead) => {
                let mut dead: Vec<(u64, &JobId)> = queue
                    .dead
                    .iter()
                    .filter_map(|id| queue.numbers.get(id).map(|n| (*n, id)))
                    .filter(|(n, _)| *n < below)
                    .collect();
                dead.sort_by_key(|d| std::cmp::Reverse(d.0));
                dead
            }
            _ => queue
                .created
                .range(..below)
                .rev()
                .take(LIST_SCAN)
                .map(|(n, id)| (*n, id))
                .collect(),
        };
        let wanted = state.map(ListState::status);
        let mut jobs = Vec::new();
        let mut last = None;
        for (number, id) in candidates.iter().take(LIST_SCAN) {
            if jobs.len() == limit {
                break;
            }
            last = Some(*number);
            if let Some(record) = queue.records.get(*id)
                && wanted.is_none_or(|w| w == record.status)
            {
                jobs.push(record.clone());
            }
        }
        let more = last.is_some_and(|last| match state {
            Some(ListState::Dead) => candidates.iter().any(|(n, _)| *n < last),
            _ => queue.created.range(..last).next_back().is_some(),
        });
        Ok(JobPage {
            jobs,
            next: last.filter(|_| more).map(ListCursor),
        })
    }

    async fn dead_letters(&self) -> Result<Vec<JobRecord>, QueueError> {
        let state = self.lock();
        Ok(state
            .dead
            .iter()
            .rev()
            .filter_map(|id| state.records.get(id).cloned())
            .collect())
    }

    async fn requeue_dead(&self, id: &JobId) -> Result<Option<JobRecord>, QueueError> {
        let mut state = self.lock();
        let Some(at) = state.dead.iter().position(|dead| dead == id) else {
            return Ok(None);
        };
        state.dead.remove(at);
        let Some(record) = state.records.get_mut(id) else {
            return Ok(None);
        };
        record.status = JobStatus::Pending;
        record.infra_retries = 0;
        record.cancel_requested = false;
        record.worker = None;
        record.message = Some(REQUEUED.to_owned());
        record.updated_at_ms = unix_ms();
        let requeued = record.clone();
        state.failed = state.failed.saturating_sub(1);
        state.finished.retain(|(_, finished)| finished != id);
        state.waiting.push_back(id.clone());
        Ok(Some(requeued))
    }
}
