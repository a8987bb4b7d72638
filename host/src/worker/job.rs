//! One claimed job, start to end: heartbeats that keep the lease (and notice a cancel or a
//! lost lease), progress from the pipeline's events, fetch → solve in a work folder of this
//! claim's own, and the report to the queue: retry an infrastructure failure later without
//! using an attempt, fail for good otherwise. What stops a job, and how its writes are fenced
//! against a lost lease, is in `lease`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ks_policies::Backend;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::Shared;
use super::lease::{
    Fence, Lease, StopReason, log_attempts, log_event, log_terminal, record_event, renew,
};
use crate::logs::{EventKind, LogEvent, Provenance};
use crate::metrics::{FetchSource, JobOutcome, LlmCall};
use crate::pipeline::fetch::{CompetitionRef, FetchError, FetchOrigin, SourceError};
use crate::pipeline::solve::{
    AttemptRecord, PreparedCompetition, SolveError, SolveEvent, SolveJob, SolveReport, Stage,
    ValidationSource,
};
use crate::queue::{
    Completion, Failure, JobRecord, JobResult, JobStatus, Progress, QueueError, ScoreSource,
};
use crate::text::{MESSAGE_CHARS, head};

/// Why a job ended without a submission, before classification.
#[derive(Debug, thiserror::Error)]
enum JobError {
    #[error(
        "the policy {name:?} does not load: {source}; fix the preset or submit with another policy"
    )]
    Policy {
        name: String,
        #[source]
        source: ks_policies::PolicyError,
    },
    /// The preset changed since the job was accepted and the request's caps now raise it.
    #[error(
        "the caps this job asked for no longer fit the policy {name:?}: {source}; submit it again"
    )]
    Overrides {
        name: String,
        #[source]
        source: ks_policies::PolicyError,
    },
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Solve(#[from] SolveError),
    #[error("internal error: {0}")]
    Internal(String),
}

/// What the pipeline tells the progress follower.
#[derive(Debug)]
enum Note {
    Started {
        max_attempts: u32,
        backend: Option<Backend>,
    },
    Fetching,
    Event(SolveEvent),
}

/// Runs `record`, claimed by a call sent at `claimed`, to its end and reports it.
pub(super) async fn run(
    shared: Arc<Shared>,
    record: JobRecord,
    claimed: Instant,
    hard_stop: CancellationToken,
) {
    let lease = Arc::new(Lease::new(
        hard_stop.child_token(),
        claimed,
        shared.config.lease,
    ));
    // Every line logged for this job, in this task and the ones it spawns, carries its id
    // (and its slug once the fetch knows it).
    let span = tracing::info_span!(
        "job",
        job = %record.id,
        slug = tracing::field::Empty,
        retry = record.infra_retries,
    );
    async move {
        tracing::info!(source = %record.job.source, "job started");
        log_event(&shared, &lease, &record, "started".to_owned()).await;
        let heartbeat = tokio::spawn(
            heartbeat(shared.clone(), record.clone(), lease.clone()).in_current_span(),
        );
        let (notes, inbox) = mpsc::unbounded_channel();
        let follower = tokio::spawn(
            follow(shared.clone(), record.clone(), lease.clone(), inbox).in_current_span(),
        );
        let outcome = execute(&shared, &record, &lease, notes).await;
        // The sender is gone with `execute`; the follower drains what is left and ends.
        let candidates = follower.await.unwrap_or(0);
        shared.metrics.candidates(candidates);
        finish(&shared, &record, &lease, outcome).await;
        heartbeat.abort();
    }
    .instrument(span)
    .await;
}

async fn execute(
    shared: &Shared,
    record: &JobRecord,
    lease: &Lease,
    notes: mpsc::UnboundedSender<Note>,
) -> Result<SolveReport, JobError> {
    let (dir, name) = (shared.parts.policies.clone(), record.job.policy.clone());
    let policy = tokio::task::spawn_blocking(move || dir.resolve_preset(&name))
        .await
        .map_err(|e| JobError::Internal(e.to_string()))?
        .map_err(|source| JobError::Policy {
            name: record.job.policy.clone(),
            source,
        })?
        .lowered_by(&record.job.overrides)
        .map_err(|source| JobError::Overrides {
            name: record.job.policy.clone(),
            source,
        })?;
    let present = shared.parts.solver.backends();
    let usable: Vec<_> = policy
        .sandbox
        .backends
        .iter()
        .filter(|b| present.contains(b))
        .collect();
    let _ = notes.send(Note::Started {
        max_attempts: policy.attempts.max.max(1),
        backend: match usable.as_slice() {
            [only] => Some(**only),
            _ => None,
        },
    });
    let _ = notes.send(Note::Fetching);
    let source = CompetitionRef::parse(&record.job.source)?;
    let cancel = &lease.token;
    let fetch = tracing::info_span!("stage", stage = %Stage::Fetch, attempt = 0);
    let fetch_started = Instant::now();
    let fetched = tokio::select! {
        fetched = shared.parts.fetcher.fetch(&source).instrument(fetch) => fetched?,
        () = cancel.cancelled() => return Err(SolveError::Cancelled.into()),
    };
    shared.metrics.stage(Stage::Fetch, fetch_started.elapsed());
    shared.metrics.fetched(
        match fetched.origin {
            FetchOrigin::Local => FetchSource::Local,
            FetchOrigin::Mirror => FetchSource::Mirror,
            FetchOrigin::Cache => FetchSource::Cache,
            FetchOrigin::Download => FetchSource::Download,
        },
        fetched.downloaded_bytes,
    );
    tracing::Span::current().record("slug", fetched.slug.as_str());
    // Holds the cached competition's pin until the solve is done with it.
    let competition = PreparedCompetition::from(fetched);
    let events = move |event| {
        let _ = notes.send(Note::Event(event));
    };
    let fence = Fence {
        shared,
        id: &record.id,
        lease,
    };
    let job = SolveJob {
        id: record.id.0.clone(),
        claim: SolveJob::new_claim(),
        policy: &policy,
        cancel: cancel.clone(),
        stop: lease.search_stop.clone(),
        events: &events,
        fence: &fence,
    };
    Ok(shared.parts.solver.solve(&job, &competition).await?)
}

/// Keeps the lease; stops the job when a cancel is asked for or the lease is lost.
async fn heartbeat(shared: Arc<Shared>, record: JobRecord, lease: Arc<Lease>) {
    loop {
        tokio::time::sleep(shared.config.heartbeat).await;
        if let Err(error) = renew(&shared, &record.id, &lease).await {
            tracing::warn!(job = %record.id, %error, "heartbeat failed");
            // Past the lease the reaper may have handed the job on: stop rather than race.
            if lease.remaining().is_zero() {
                lease.stop(StopReason::Lost);
            }
        }
    }
}

/// Turns the pipeline's events into progress in the queue, log events, attempt logs and
/// metrics; returns the number of candidates (attempts) the job tried.
async fn follow(
    shared: Arc<Shared>,
    record: JobRecord,
    lease: Arc<Lease>,
    mut inbox: mpsc::UnboundedReceiver<Note>,
) -> u32 {
    let mut candidates = 0;
    let mut progress = Progress {
        stage: Stage::Fetch,
        attempt: None,
        max_attempts: None,
        backend: None,
        best_score: None,
        candidates_tried: None,
    };
    let worker = shared.id.0.clone();
    while let Some(note) = inbox.recv().await {
        let event = match note {
            Note::Started {
                max_attempts,
                backend,
            } => {
                progress.max_attempts = Some(max_attempts);
                progress.backend = backend;
                continue;
            }
            Note::Fetching => {
                progress.stage = Stage::Fetch;
                LogEvent {
                    stage: Some(Stage::Fetch),
                    ..LogEvent::of(EventKind::Stage, &worker, Stage::Fetch.to_string())
                }
            }
            Note::Event(SolveEvent::StageStarted { stage, attempt }) => {
                if stage == Stage::Generate {
                    candidates += 1;
                }
                progress.stage = stage;
                if attempt > 0 && progress.attempt != Some(attempt) {
                    progress.attempt = Some(attempt);
                    let start = LogEvent {
                        attempt: Some(attempt),
                        ..LogEvent::of(
                            EventKind::AttemptStart,
                            &worker,
                            format!("attempt {attempt} started"),
                        )
                    };
                    record_event(&shared, &lease, &record, start).await;
                }
                let message = match attempt {
                    0 => stage.to_string(),
                    n => format!("attempt {n}: {stage}"),
                };
                LogEvent {
                    stage: Some(stage),
                    attempt: (attempt > 0).then_some(attempt),
                    ..LogEvent::of(EventKind::Stage, &worker, message)
                }
            }
            Note::Event(SolveEvent::StageFinished { stage, millis, .. }) => {
                let elapsed = Duration::from_millis(millis);
                if stage == Stage::Run {
                    shared.metrics.sandbox_run(elapsed);
                }
                shared.metrics.stage(stage, elapsed);
                continue;
            }
            Note::Event(SolveEvent::Generated { llm, .. }) => {
                if let Some(llm) = llm {
                    let call = LlmCall {
                        input_tokens: llm.input_tokens,
                        output_tokens: llm.output_tokens,
                    };
                    shared.metrics.llm_call(&llm.provider, call);
                }
                continue;
            }
            Note::Event(SolveEvent::AttemptFailed { .. }) => {
                shared.metrics.attempt(false);
                continue;
            }
            Note::Event(SolveEvent::AttemptEnded {
                record: attempt,
                score,
            }) => {
                // The attempt's log first, so a client told of its end can read it.
                log_attempts(&shared, &lease, &record, std::slice::from_ref(&attempt)).await;
                record_event(
                    &shared,
                    &lease,
                    &record,
                    attempt_end(&worker, &attempt, score),
                )
                .await;
                continue;
            }
            Note::Event(
                event @ (SolveEvent::SearchSkipped { .. }
                | SolveEvent::HoldoutReady { .. }
                | SolveEvent::CandidateStarted { .. }
                | SolveEvent::CandidateScored { .. }
                | SolveEvent::CandidateFailed { .. }
                | SolveEvent::BlendChosen { .. }
                | SolveEvent::SearchEnded { .. }),
            ) => {
                let (candidate, score, millis) = match &event {
                    SolveEvent::CandidateScored {
                        candidate,
                        score,
                        best_score,
                        candidates_tried,
                        millis,
                        ..
                    } => {
                        progress.best_score = Some(*best_score);
                        progress.candidates_tried = Some(*candidates_tried);
                        (*candidate, Some(*score), *millis)
                    }
                    SolveEvent::CandidateFailed {
                        candidate, millis, ..
                    } => {
                        shared.metrics.attempt(false);
                        progress.candidates_tried = Some(*candidate);
                        (*candidate, None, *millis)
                    }
                    SolveEvent::CandidateStarted { candidate, .. } => {
                        let start = LogEvent {
                            candidate: Some(*candidate),
                            ..LogEvent::of(EventKind::CandidateStart, &worker, search_line(&event))
                        };
                        record_event(&shared, &lease, &record, start).await;
                        continue;
                    }
                    _ => {
                        log_event(&shared, &lease, &record, search_line(&event)).await;
                        continue;
                    }
                };
                // The status shows the search's figures as they change.
                LogEvent {
                    candidate: Some(candidate),
                    score,
                    wall_ms: Some(millis),
                    ..LogEvent::of(EventKind::CandidateEnd, &worker, search_line(&event))
                }
            }
        };
        let sent = Instant::now();
        match shared
            .queue
            .progress(&shared.id, &record.id, progress.clone())
            .await
        {
            Ok(state) => lease.follow(state, sent),
            Err(error) => tracing::warn!(job = %record.id, %error, "progress not recorded"),
        }
        record_event(&shared, &lease, &record, event).await;
    }
    candidates
}

/// The `attempt-end` event of an attempt.
fn attempt_end(worker: &str, attempt: &AttemptRecord, score: Option<f64>) -> LogEvent {
    let n = attempt.attempt;
    let message = match &attempt.error {
        Some(reason) => format!("attempt {n} failed: {reason}"),
        None => format!("attempt {n} succeeded"),
    };
    let outcome = attempt.outcome.as_ref();
    LogEvent {
        attempt: Some(n),
        backend: attempt.backend,
        exit_code: outcome.and_then(|o| o.exit_code),
        limit: outcome.and_then(|o| o.limit),
        wall_ms: outcome.map(|o| o.wall_ms),
        score,
        ..LogEvent::of(EventKind::AttemptEnd, worker, message)
    }
}

/// The search journal's line for a search event.
fn search_line(event: &SolveEvent) -> String {
    event.journal_line().unwrap_or_else(|| format!("{event:?}"))
}

/// Reports how the job ended: completed, retried, failed, handed back, or nothing when the
/// lease was lost (the new holder reports).
async fn finish(
    shared: &Shared,
    record: &JobRecord,
    lease: &Lease,
    outcome: Result<SolveReport, JobError>,
) {
    let id = &record.id;
    let queue = &shared.queue;
    if outcome.is_ok() {
        shared.metrics.attempt(true);
    }
    let report = match (outcome, lease.reason()) {
        (Err(JobError::Solve(SolveError::Lost)), _) | (_, Some(StopReason::Lost)) => {
            tracing::warn!(job = %id, "lease lost; another worker owns the job now");
            shared
                .metrics
                .job(JobOutcome::Lost, lease.claimed.elapsed());
            return;
        }
        // Done before the hard stop came: the work is worth reporting.
        (Ok(report), None | Some(StopReason::Shutdown)) => {
            complete(shared, lease, record, report).await;
            return;
        }
        // A cancel was asked for: never reported as completed, however far the job got.
        (_, Some(StopReason::CancelRequested)) => (
            Failure::Abort {
                message: "cancelled".to_owned(),
            },
            JobOutcome::Cancelled,
        ),
        (Err(_), Some(StopReason::Shutdown)) => {
            let line = "handed back: the worker is shutting down".to_owned();
            log_event(shared, lease, record, line).await;
            let held = queue.release(&shared.id, id).await;
            reported(shared, record, lease, held, JobOutcome::Released);
            return;
        }
        (Err(error), None) => classify(shared, record, error),
    };
    let (mut failure, outcome) = report;
    // Whatever a message quotes from the run is bounded already; this bounds the whole, so a
    // record in Redis and a `/status` body stay small.
    match &mut failure {
        Failure::Retry { message, .. } | Failure::Abort { message } => {
            *message = head(message, MESSAGE_CHARS);
        }
    }
    // A retry's line goes first: once the queue has the job back, another worker may write.
    let terminal = match &failure {
        Failure::Retry { message, delay_ms } => {
            let line = format!("will retry in {delay_ms} ms: {message}");
            log_event(shared, lease, record, line).await;
            None
        }
        Failure::Abort { message } => Some(format!("failed: {message}")),
    };
    let held = queue.fail(&shared.id, id, failure).await;
    if let Ok(true) = held {
        // A retry out of retries is buried by the queue: failed, on the dead list.
        let line = match terminal {
            Some(line) => Some(line),
            None => match queue.get(id).await {
                Ok(Some(now)) if now.status == JobStatus::Failed => {
                    Some(format!("failed: {}", now.message.unwrap_or_default()))
                }
                _ => None,
            },
        };
        if let Some(line) = line {
            log_terminal(shared, record, JobStatus::Failed, line, None, None).await;
        }
    }
    reported(shared, record, lease, held, outcome);
}

/// Reports a submission stored; the queue fails the job instead if a cancel came first.
async fn complete(shared: &Shared, lease: &Lease, record: &JobRecord, report: SolveReport) {
    let provenance = provenance(record, &report);
    let result = JobResult {
        submission_source: report.submission.source,
        submission_path: report.submission.path,
        validation_score: report.validation_score,
        validation_score_source: report
            .validation_score
            .and(report.validation_score_source)
            .map(|source| match source {
                ValidationSource::Script => ScoreSource::Script,
                ValidationSource::Host => ScoreSource::Host,
            }),
        attempts: u32::try_from(report.attempts.len()).unwrap_or(u32::MAX),
    };
    let score = result.validation_score;
    let done = shared.queue.complete(&shared.id, &record.id, result).await;
    if let Ok(Completion::Completed) = done {
        log_terminal(
            shared,
            record,
            JobStatus::Completed,
            "completed".into(),
            score,
            Some(provenance),
        )
        .await;
    }
    if let Ok(Completion::Cancelled) = done {
        let line = "failed: cancelled (the cancel came before the completion)".to_owned();
        log_terminal(shared, record, JobStatus::Failed, line, None, None).await;
        if let Err(error) = shared.parts.solver.discard_submission(&record.id.0).await {
            tracing::warn!(job = %record.id, %error, "a cancelled job's submission stays stored");
        }
    }
    let (held, outcome) = match done {
        Ok(Completion::Completed) => (Ok(true), JobOutcome::Completed),
        Ok(Completion::Cancelled) => (Ok(true), JobOutcome::Cancelled),
        Ok(Completion::NotHeld) => (Ok(false), JobOutcome::Completed),
        Err(error) => (Err(error), JobOutcome::Completed),
    };
    reported(shared, record, lease, held, outcome);
}

/// Where the report's submission came from.
fn provenance(record: &JobRecord, report: &SolveReport) -> Provenance {
    let overrides = &record.job.overrides;
    let policy = if overrides.is_empty() {
        record.job.policy.clone()
    } else {
        let lowered = serde_json::to_string(overrides).unwrap_or_default();
        format!("{} lowered by {lowered}", record.job.policy)
    };
    Provenance {
        runtime: report.runtime.clone(),
        policy,
        generator: report
            .attempts
            .last()
            .map(|a| a.generator.clone())
            .unwrap_or_default(),
        seed: report.seed,
        candidate: report.search.as_ref().map(|s| s.submitted),
    }
}

/// The failure to report for an error of the job itself.
fn classify(shared: &Shared, record: &JobRecord, error: JobError) -> (Failure, JobOutcome) {
    let retryable = match &error {
        JobError::Fetch(e) => e.is_retryable(),
        JobError::Solve(e) => e.is_retryable(),
        JobError::Internal(_) => true,
        JobError::Policy { .. } | JobError::Overrides { .. } | JobError::Source(_) => false,
    };
    if retryable {
        let delay = backoff(shared, record.infra_retries);
        let failure = Failure::Retry {
            message: error.to_string(),
            delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        };
        return (failure, JobOutcome::Retried);
    }
    let message = match &error {
        // Each attempt's log was written as it ended.
        JobError::Solve(SolveError::AttemptsExhausted { .. }) => {
            format!(
                "{error}. Each attempt's code and output are at GET /jobs/{}/logs; try a policy \
                 with more attempts or larger limits, or an LLM generator",
                record.id
            )
        }
        _ => error.to_string(),
    };
    (Failure::Abort { message }, JobOutcome::Failed)
}

/// The delay before the `retries`-th infrastructure retry: exponential, capped, ±25 % jitter.
fn backoff(shared: &Shared, retries: u32) -> Duration {
    let config = &shared.config;
    let exponential = config
        .retry_base
        .saturating_mul(1u32.checked_shl(retries.min(20)).unwrap_or(u32::MAX));
    let capped = exponential.min(config.retry_max);
    capped.mul_f64(0.75 + fastrand::f64() * 0.5)
}

fn reported(
    shared: &Shared,
    record: &JobRecord,
    lease: &Lease,
    held: Result<bool, QueueError>,
    outcome: JobOutcome,
) {
    let elapsed = lease.claimed.elapsed();
    match held {
        Ok(true) => {
            tracing::info!(job = %record.id, ?outcome, "job reported");
            shared.metrics.job(outcome, elapsed);
        }
        Ok(false) => {
            tracing::warn!(job = %record.id, ?outcome, "not reported: the lease was lost");
            shared.metrics.job(JobOutcome::Lost, elapsed);
        }
        // The lease will expire and the reaper will put the job back: at least once.
        Err(error) => tracing::error!(job = %record.id, %error, ?outcome, "report failed"),
    }
}
