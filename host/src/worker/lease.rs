//! What a worker knows of its hold on one job, and the checks built on it.
//!
//! A lease can lapse while the job runs (a paused process, a stalled heartbeat, a partition);
//! the reaper then hands the job on, and the new holder writes the same submission key and
//! the same logs. So nothing this worker writes for the job is written blind:
//! - the submission only after a heartbeat, sent right before the store, finds the job still
//!   held ([`Fence`], the solver's [`StoreFence`]); the heartbeat also renews the lease, so the
//!   store has a whole lease period before anyone else could claim the job;
//! - a log line only while the lease surely runs: a lease period after the last call that
//!   found the job held, less a margin for the write itself, or else after a fresh heartbeat
//!   ([`may_write`], which [`log_event`] and [`log_attempts`] ask).
//!
//! The job runs under a cancellation token. Three things cancel it, and the first one decides
//! what is reported: the user (`CancelRequested`: fail as cancelled), another worker taking
//! over (`Lost`: report nothing, the new holder owns the job), and a drain that ran out of grace
//! (`Shutdown`: hand the job back). A stop the user asked for is not one of them: it cancels
//! only the lease's `search_stop` token, which ends a search early and keeps the job going to
//! submit the best candidate.

use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::Shared;
use crate::logs::{AttemptLog, EventKind, LogEvent, OUTPUT_TAIL_CHARS, Provenance};
use crate::pipeline::solve::{AttemptRecord, FenceError, FenceVerdict, StoreFence};
use crate::queue::{JobId, JobRecord, JobStatus, LeaseState, QueueError};
use crate::text::{MESSAGE_CHARS, head};

/// Why a job was stopped before it ended by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StopReason {
    CancelRequested,
    Lost,
    Shutdown,
}

/// One job's token, the first reason it was stopped for, and how long its lease surely runs.
#[derive(Debug)]
pub(super) struct Lease {
    pub(super) token: CancellationToken,
    /// Cancelled when the user asks to end the search early and keep the best.
    pub(super) search_stop: CancellationToken,
    reason: OnceLock<StopReason>,
    /// When the last call that found the job held was sent: the queue set the deadline at
    /// least a lease period after that.
    confirmed: Mutex<Instant>,
    period: Duration,
    /// When the claim was sent: a job run's duration counts from here.
    pub(super) claimed: Instant,
}

impl Lease {
    /// The lease of a job claimed by a call sent at `claimed` for `period`.
    pub(super) fn new(token: CancellationToken, claimed: Instant, period: Duration) -> Self {
        Self {
            token,
            search_stop: CancellationToken::new(),
            reason: OnceLock::new(),
            confirmed: Mutex::new(claimed),
            period,
            claimed,
        }
    }

    pub(super) fn stop(&self, reason: StopReason) {
        let _ = self.reason.set(reason);
        self.token.cancel();
    }

    /// The reason, if the job was stopped; a bare cancel comes from the worker's hard stop.
    pub(super) fn reason(&self) -> Option<StopReason> {
        self.reason
            .get()
            .copied()
            .or_else(|| self.token.is_cancelled().then_some(StopReason::Shutdown))
    }

    /// Takes in what a call sent at `sent` found.
    pub(super) fn follow(&self, state: LeaseState, sent: Instant) {
        match state {
            LeaseState::Held => self.confirm(sent),
            LeaseState::StopRequested => {
                self.confirm(sent);
                if !self.search_stop.is_cancelled() {
                    tracing::info!("a stop was asked for: the search ends and keeps its best");
                }
                self.search_stop.cancel();
            }
            LeaseState::CancelRequested => {
                self.confirm(sent);
                self.stop(StopReason::CancelRequested);
            }
            LeaseState::Lost => self.stop(StopReason::Lost),
        }
    }

    fn confirm(&self, sent: Instant) {
        let mut confirmed = self
            .confirmed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *confirmed = (*confirmed).max(sent);
    }

    /// How long the lease surely still runs (zero once it may have lapsed).
    pub(super) fn remaining(&self) -> Duration {
        let confirmed = *self
            .confirmed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        (confirmed + self.period).saturating_duration_since(Instant::now())
    }
}

/// Heartbeats the job now: renews the lease and takes in what the queue says.
pub(super) async fn renew(
    shared: &Shared,
    id: &JobId,
    lease: &Lease,
) -> Result<LeaseState, QueueError> {
    let sent = Instant::now();
    let state = shared
        .queue
        .heartbeat(&shared.id, id, shared.config.lease)
        .await?;
    lease.follow(state, sent);
    Ok(state)
}

/// Whether this worker may write the job's logs now (see the module doc).
pub(super) async fn may_write(shared: &Shared, id: &JobId, lease: &Lease) -> bool {
    if lease.reason() == Some(StopReason::Lost) {
        return false;
    }
    if lease.remaining() > shared.config.lease / 4 {
        return true;
    }
    match renew(shared, id, lease).await {
        Ok(state) => state != LeaseState::Lost,
        Err(error) => {
            tracing::warn!(job = %id, %error, "log line dropped: the lease cannot be confirmed");
            false
        }
    }
}

/// The solver's fence for one job of this worker.
pub(super) struct Fence<'a> {
    pub(super) shared: &'a Shared,
    pub(super) id: &'a JobId,
    pub(super) lease: &'a Lease,
}

#[async_trait]
impl StoreFence for Fence<'_> {
    async fn check(&self) -> Result<FenceVerdict, FenceError> {
        match renew(self.shared, self.id, self.lease).await {
            Ok(LeaseState::Held | LeaseState::StopRequested) => Ok(FenceVerdict::Held),
            Ok(LeaseState::CancelRequested) => Ok(FenceVerdict::Cancelled),
            Ok(LeaseState::Lost) => Ok(FenceVerdict::Lost),
            Err(error) => Err(FenceError {
                retryable: error.is_retryable(),
                message: error.to_string(),
            }),
        }
    }
}

/// Logs the attempts of the job, unless the lease may have lapsed.
pub(super) async fn log_attempts(
    shared: &Shared,
    lease: &Lease,
    record: &JobRecord,
    attempts: &[AttemptRecord],
) {
    if !may_write(shared, &record.id, lease).await {
        return;
    }
    let logs = attempts
        .iter()
        .map(|a| attempt_log(a, &shared.id.0))
        .collect();
    if let Err(error) = shared.logs.attempts(&record.id, logs).await {
        tracing::warn!(job = %record.id, %error, "attempts not logged");
    }
}

/// Logs a line for the job, unless the lease may have lapsed (see `lease`): a line written
/// then could replace the new holder's.
pub(super) async fn log_event(shared: &Shared, lease: &Lease, record: &JobRecord, message: String) {
    record_event(shared, lease, record, LogEvent::now(&shared.id.0, message)).await;
}

/// Logs an event for the job, unless the lease may have lapsed; its message is bounded.
pub(super) async fn record_event(
    shared: &Shared,
    lease: &Lease,
    record: &JobRecord,
    mut event: LogEvent,
) {
    if !may_write(shared, &record.id, lease).await {
        return;
    }
    event.message = head(&event.message, MESSAGE_CHARS);
    if let Err(error) = shared.logs.event(&record.id, event).await {
        tracing::warn!(job = %record.id, %error, "event not logged");
    }
}

/// Logs the job's `terminal` event. Called only once the queue accepted this worker's report
/// of the final state: that acceptance is the fence (no one holds a finished job), so no
/// lease is checked.
pub(super) async fn log_terminal(
    shared: &Shared,
    record: &JobRecord,
    status: JobStatus,
    message: String,
    score: Option<f64>,
    provenance: Option<Provenance>,
) {
    let event = LogEvent {
        status: Some(status),
        score,
        provenance,
        ..LogEvent::of(
            EventKind::Terminal,
            &shared.id.0,
            head(&message, MESSAGE_CHARS),
        )
    };
    if let Err(error) = shared.logs.event(&record.id, event).await {
        tracing::warn!(job = %record.id, %error, "terminal event not logged");
    }
}

/// The log of a pipeline attempt run by `worker`, its output cut to the logs' tails.
fn attempt_log(record: &AttemptRecord, worker: &str) -> AttemptLog {
    let outcome = record.outcome.as_ref();
    let tail = |text: &str| crate::text::tail(text, OUTPUT_TAIL_CHARS);
    AttemptLog {
        attempt: record.attempt,
        worker: worker.to_owned(),
        generator: record.generator.clone(),
        code: record.code.clone(),
        backend: record.backend,
        exit_code: outcome.and_then(|o| o.exit_code),
        limit: outcome.and_then(|o| o.limit),
        wall_ms: outcome.map(|o| o.wall_ms),
        stdout_tail: outcome.map(|o| tail(&o.stdout)).unwrap_or_default(),
        stderr_tail: outcome.map(|o| tail(&o.stderr)).unwrap_or_default(),
        error: record.error.clone(),
        fuel_used: outcome.and_then(|o| o.fuel_used),
        candidate: record.candidate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lease_runs_a_period_from_the_last_confirmation_and_the_first_stop_wins() {
        let period = Duration::from_secs(30);
        let long_ago = Instant::now()
            .checked_sub(Duration::from_secs(40))
            .expect("the machine has been up for a minute");
        let lease = Lease::new(CancellationToken::new(), long_ago, period);
        assert_eq!(lease.remaining(), Duration::ZERO, "lapsed");
        lease.follow(LeaseState::Held, Instant::now());
        assert!(lease.remaining() > Duration::from_secs(29));
        // An older answer arriving late does not shorten it.
        lease.follow(LeaseState::Held, long_ago);
        assert!(lease.remaining() > Duration::from_secs(29));
        assert_eq!(lease.reason(), None);
        // A stop keeps the job: only the search's token is cancelled.
        lease.follow(LeaseState::StopRequested, Instant::now());
        assert!(lease.search_stop.is_cancelled() && !lease.token.is_cancelled());
        assert_eq!(lease.reason(), None);

        lease.follow(LeaseState::CancelRequested, Instant::now());
        lease.follow(LeaseState::Lost, Instant::now());
        assert_eq!(lease.reason(), Some(StopReason::CancelRequested));
        assert!(lease.token.is_cancelled());

        let hard_stopped = Lease::new(CancellationToken::new(), Instant::now(), period);
        hard_stopped.token.cancel();
        assert_eq!(hard_stopped.reason(), Some(StopReason::Shutdown));
    }
}
