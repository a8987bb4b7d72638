//! Conformance: the life of a job without timing: enqueue, FIFO claims, completion, refusal of
//! non-holders, permanent failure, release, cancel (also racing a completion) and the counts.

use anyhow::ensure;
use kaggle_solver::queue::{
    CancelOutcome, Completion, Failure, JobId, JobResult, JobStatus, LeaseState, Progress,
    QueueStats, StopOutcome,
};

use super::{LONG, Subject, job, record, worker};
use kaggle_solver::pipeline::solve::Stage;
use kaggle_solver::sandbox::Backend;
use kaggle_solver::storage::StoreKind;

fn result(path: &str) -> JobResult {
    JobResult {
        submission_source: StoreKind::Local,
        submission_path: path.into(),
        validation_score: Some(0.875),
        validation_score_source: None,
        attempts: 2,
    }
}

pub async fn enqueue_then_get_pending(s: &Subject) -> anyhow::Result<()> {
    let accepted = s.queue.enqueue(job(1)).await?;
    ensure!(accepted.status == JobStatus::Pending);
    ensure!(accepted.job == job(1));
    ensure!(accepted.worker.is_none() && accepted.infra_retries == 0 && !accepted.cancel_requested);
    ensure!(accepted.created_at_ms > 0 && accepted.updated_at_ms >= accepted.created_at_ms);
    ensure!(JobId::parse(&accepted.id.0).as_ref() == Some(&accepted.id));
    ensure!(record(s, &accepted.id).await? == accepted);
    ensure!(s.queue.get(&JobId::new()).await?.is_none());
    Ok(())
}

pub async fn claim_is_fifo(s: &Subject) -> anyhow::Result<()> {
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(s.queue.enqueue(job(n)).await?.id);
    }
    let w = worker("a");
    for id in &ids {
        let claimed = s.queue.claim(&w, LONG).await?;
        let claimed = claimed.ok_or_else(|| anyhow::anyhow!("nothing to claim"))?;
        ensure!(&claimed.id == id, "claimed out of order");
        ensure!(claimed.status == JobStatus::Processing && claimed.worker.as_ref() == Some(&w));
        ensure!(record(s, id).await? == claimed);
    }
    Ok(())
}

pub async fn claim_on_empty_is_none(s: &Subject) -> anyhow::Result<()> {
    ensure!(s.queue.claim(&worker("a"), LONG).await?.is_none());
    Ok(())
}

pub async fn complete_by_holder(s: &Subject) -> anyhow::Result<()> {
    let id = s.queue.enqueue(job(1)).await?.id;
    let w = worker("a");
    ensure!(s.queue.claim(&w, LONG).await?.is_some());
    let progress = Progress {
        stage: Stage::Generate,
        attempt: Some(1),
        max_attempts: Some(3),
        backend: Some(Backend::Wasm),
        best_score: Some(0.75),
        candidates_tried: Some(2),
    };
    ensure!(s.queue.progress(&w, &id, progress.clone()).await? == LeaseState::Held);
    let running = record(s, &id).await?;
    ensure!(running.stage == Some(Stage::Generate) && running.attempt == Some(1));
    ensure!(running.max_attempts == Some(3) && running.backend == Some(Backend::Wasm));
    ensure!(running.best_score == Some(0.75) && running.candidates_tried == Some(2));
    // A later report without a search's figures keeps them.
    let later = Progress {
        best_score: None,
        candidates_tried: None,
        ..progress
    };
    ensure!(s.queue.progress(&w, &id, later).await? == LeaseState::Held);
    let running = record(s, &id).await?;
    ensure!(running.best_score == Some(0.75) && running.candidates_tried == Some(2));

    ensure!(s.queue.complete(&w, &id, result("/data/sub.csv")).await? == Completion::Completed);
    let done = record(s, &id).await?;
    ensure!(done.status == JobStatus::Completed, "{done:?}");
    ensure!(done.submission_source == Some(StoreKind::Local));
    ensure!(done.submission_path.as_deref() == Some("/data/sub.csv"));
    ensure!(done.validation_score == Some(0.875) && done.attempt == Some(2));
    ensure!(done.worker.is_none() && done.job == job(1));
    // A second completion, or anything else from the former holder, is refused.
    ensure!(s.queue.complete(&w, &id, result("/other.csv")).await? == Completion::NotHeld);
    ensure!(s.queue.heartbeat(&w, &id, LONG).await? == LeaseState::Lost);
    ensure!(record(s, &id).await? == done);
    Ok(())
}

pub async fn non_holder_is_refused_and_changes_nothing(s: &Subject) -> anyhow::Result<()> {
    let id = s.queue.enqueue(job(1)).await?.id;
    let holder = worker("holder");
    let other = worker("other");
    ensure!(s.queue.claim(&holder, LONG).await?.is_some());
    let before = record(s, &id).await?;
    let progress = Progress {
        stage: Stage::Analyse,
        attempt: None,
        max_attempts: None,
        backend: None,
        best_score: None,
        candidates_tried: None,
    };
    ensure!(s.queue.complete(&other, &id, result("/evil.csv")).await? == Completion::NotHeld);
    ensure!(
        !s.queue
            .fail(
                &other,
                &id,
                Failure::Abort {
                    message: "no".into()
                }
            )
            .await?
    );
    let retry = Failure::Retry {
        message: "no".into(),
        delay_ms: 0,
    };
    ensure!(!s.queue.fail(&other, &id, retry).await?);
    ensure!(!s.queue.release(&other, &id).await?);
    ensure!(s.queue.heartbeat(&other, &id, LONG).await? == LeaseState::Lost);
    ensure!(s.queue.progress(&other, &id, progress).await? == LeaseState::Lost);
    ensure!(
        record(s, &id).await? == before,
        "a refused change modified the record"
    );
    // Unknown jobs are refused too.
    let unknown = JobId::new();
    ensure!(
        s.queue
            .complete(&holder, &unknown, result("/x.csv"))
            .await?
            == Completion::NotHeld
    );
    ensure!(s.queue.heartbeat(&holder, &unknown, LONG).await? == LeaseState::Lost);
    ensure!(s.queue.get(&unknown).await?.is_none());
    ensure!(s.queue.complete(&holder, &id, result("/good.csv")).await? == Completion::Completed);
    Ok(())
}

pub async fn abort_fails_with_message(s: &Subject) -> anyhow::Result<()> {
    let id = s.queue.enqueue(job(1)).await?.id;
    let w = worker("a");
    ensure!(s.queue.claim(&w, LONG).await?.is_some());
    let message = "403: accept the competition's rules on kaggle.com first";
    ensure!(
        s.queue
            .fail(
                &w,
                &id,
                Failure::Abort {
                    message: message.into()
                }
            )
            .await?
    );
    let failed = record(s, &id).await?;
    ensure!(failed.status == JobStatus::Failed && failed.message.as_deref() == Some(message));
    ensure!(failed.worker.is_none() && failed.infra_retries == 0);
    ensure!(s.queue.claim(&w, LONG).await?.is_none());
    ensure!(
        s.dead().await?.is_empty(),
        "an aborted job is not dead-lettered"
    );
    Ok(())
}

pub async fn release_puts_back_in_line(s: &Subject) -> anyhow::Result<()> {
    let first = s.queue.enqueue(job(1)).await?.id;
    let second = s.queue.enqueue(job(2)).await?.id;
    let a = worker("a");
    let b = worker("b");
    ensure!(s.queue.claim(&a, LONG).await?.map(|r| r.id) == Some(first.clone()));
    ensure!(s.queue.release(&a, &first).await?);
    let released = record(s, &first).await?;
    ensure!(released.status == JobStatus::Pending && released.worker.is_none());
    ensure!(released.infra_retries == 0, "a release is not a retry");
    ensure!(!s.queue.release(&a, &first).await?, "released twice");
    // A released job goes back to the front of the line.
    ensure!(s.queue.claim(&b, LONG).await?.map(|r| r.id) == Some(first.clone()));
    ensure!(s.queue.claim(&b, LONG).await?.map(|r| r.id) == Some(second));
    ensure!(s.queue.complete(&a, &first, result("/a.csv")).await? == Completion::NotHeld);
    ensure!(s.queue.complete(&b, &first, result("/b.csv")).await? == Completion::Completed);
    Ok(())
}

pub async fn cancel_pending_is_never_claimed(s: &Subject) -> anyhow::Result<()> {
    let doomed = s.queue.enqueue(job(1)).await?.id;
    let kept = s.queue.enqueue(job(2)).await?.id;
    ensure!(s.queue.cancel(&doomed).await? == CancelOutcome::Cancelled);
    let cancelled = record(s, &doomed).await?;
    ensure!(cancelled.status == JobStatus::Failed && cancelled.cancel_requested);
    ensure!(cancelled.message.as_deref() == Some("cancelled"));
    let w = worker("a");
    ensure!(s.queue.claim(&w, LONG).await?.map(|r| r.id) == Some(kept.clone()));
    ensure!(
        s.queue.claim(&w, LONG).await?.is_none(),
        "a cancelled job was claimed"
    );
    ensure!(s.queue.cancel(&doomed).await? == CancelOutcome::AlreadyFinished);
    ensure!(s.queue.cancel(&JobId::new()).await? == CancelOutcome::NotFound);
    ensure!(s.queue.complete(&w, &kept, result("/k.csv")).await? == Completion::Completed);
    ensure!(s.queue.cancel(&kept).await? == CancelOutcome::AlreadyFinished);
    ensure!(record(s, &kept).await?.status == JobStatus::Completed);
    Ok(())
}

pub async fn cancel_processing_asks_the_holder(s: &Subject) -> anyhow::Result<()> {
    let id = s.queue.enqueue(job(1)).await?.id;
    let w = worker("a");
    ensure!(s.queue.claim(&w, LONG).await?.is_some());
    ensure!(s.queue.cancel(&id).await? == CancelOutcome::Requested);
    ensure!(s.queue.cancel(&id).await? == CancelOutcome::Requested);
    let flagged = record(s, &id).await?;
    ensure!(flagged.status == JobStatus::Processing && flagged.cancel_requested);
    ensure!(s.queue.heartbeat(&w, &id, LONG).await? == LeaseState::CancelRequested);
    ensure!(s.queue.heartbeat(&worker("b"), &id, LONG).await? == LeaseState::Lost);
    let progress = Progress {
        stage: Stage::Run,
        attempt: None,
        max_attempts: None,
        backend: None,
        best_score: None,
        candidates_tried: None,
    };
    ensure!(s.queue.progress(&w, &id, progress).await? == LeaseState::CancelRequested);
    ensure!(
        s.queue
            .fail(
                &w,
                &id,
                Failure::Abort {
                    message: "cancelled".into()
                }
            )
            .await?
    );
    let ended = record(s, &id).await?;
    ensure!(ended.status == JobStatus::Failed && ended.message.as_deref() == Some("cancelled"));

    // A held job whose cancel was asked for and that is handed back ends as cancelled.
    let other = s.queue.enqueue(job(2)).await?.id;
    ensure!(s.queue.claim(&w, LONG).await?.is_some());
    ensure!(s.queue.cancel(&other).await? == CancelOutcome::Requested);
    ensure!(s.queue.release(&w, &other).await?);
    ensure!(record(s, &other).await?.status == JobStatus::Failed);
    ensure!(s.queue.claim(&w, LONG).await?.is_none());
    Ok(())
}

/// A stop ends a search early, keeping the job: the holder's heartbeats and progress answer
/// `StopRequested`, the job still completes, a waiting job keeps the flag for its claimer, and
/// a cancel asked later wins over it.
pub async fn stop_flags_the_search_and_a_cancel_still_wins(s: &Subject) -> anyhow::Result<()> {
    let w = worker("a");
    let running = s.queue.enqueue(job(1)).await?.id;
    ensure!(s.queue.claim(&w, LONG).await?.is_some());
    ensure!(s.queue.heartbeat(&w, &running, LONG).await? == LeaseState::Held);
    ensure!(s.queue.stop(&running).await? == StopOutcome::Requested);
    ensure!(s.queue.stop(&running).await? == StopOutcome::Requested);
    let flagged = record(s, &running).await?;
    ensure!(flagged.status == JobStatus::Processing && flagged.stop_requested);
    ensure!(!flagged.cancel_requested);
    ensure!(s.queue.heartbeat(&w, &running, LONG).await? == LeaseState::StopRequested);
    ensure!(s.queue.heartbeat(&worker("b"), &running, LONG).await? == LeaseState::Lost);
    ensure!(s.queue.complete(&w, &running, result("/r.csv")).await? == Completion::Completed);
    ensure!(record(s, &running).await?.status == JobStatus::Completed);
    ensure!(s.queue.stop(&running).await? == StopOutcome::AlreadyFinished);
    ensure!(s.queue.stop(&JobId::new()).await? == StopOutcome::NotFound);

    let waiting = s.queue.enqueue(job(2)).await?.id;
    ensure!(s.queue.stop(&waiting).await? == StopOutcome::Requested);
    ensure!(record(s, &waiting).await?.status == JobStatus::Pending);
    ensure!(s.queue.claim(&w, LONG).await?.map(|r| r.id) == Some(waiting.clone()));
    ensure!(s.queue.heartbeat(&w, &waiting, LONG).await? == LeaseState::StopRequested);
    ensure!(s.queue.cancel(&waiting).await? == CancelOutcome::Requested);
    ensure!(s.queue.heartbeat(&w, &waiting, LONG).await? == LeaseState::CancelRequested);
    Ok(())
}

/// A cancel the API answered 202 wins over a completion that raced it: the job ends failed as
/// cancelled, with no submission recorded, exactly as if the worker had seen the cancel.
pub async fn cancel_then_complete_fails_as_cancelled(s: &Subject) -> anyhow::Result<()> {
    let id = s.queue.enqueue(job(1)).await?.id;
    let w = worker("a");
    ensure!(s.queue.claim(&w, LONG).await?.is_some());
    ensure!(s.queue.cancel(&id).await? == CancelOutcome::Requested);
    ensure!(s.queue.complete(&w, &id, result("/raced.csv")).await? == Completion::Cancelled);
    let ended = record(s, &id).await?;
    ensure!(ended.status == JobStatus::Failed, "{ended:?}");
    ensure!(ended.message.as_deref() == Some("cancelled"), "{ended:?}");
    ensure!(ended.submission_path.is_none() && ended.submission_source.is_none());
    ensure!(ended.validation_score.is_none() && ended.worker.is_none());
    // The lease is gone with the job: nothing further from the worker is taken.
    ensure!(s.queue.heartbeat(&w, &id, LONG).await? == LeaseState::Lost);
    ensure!(s.queue.complete(&w, &id, result("/again.csv")).await? == Completion::NotHeld);
    ensure!(s.queue.cancel(&id).await? == CancelOutcome::AlreadyFinished);
    let want = QueueStats {
        pending: 0,
        processing: 0,
        completed: 0,
        failed: 1,
    };
    ensure!(s.queue.stats().await? == want);

    // Without a cancel the same completion completes.
    let kept = s.queue.enqueue(job(2)).await?.id;
    ensure!(s.queue.claim(&w, LONG).await?.is_some());
    ensure!(s.queue.complete(&w, &kept, result("/kept.csv")).await? == Completion::Completed);
    ensure!(record(s, &kept).await?.submission_path.as_deref() == Some("/kept.csv"));
    Ok(())
}

pub async fn stats_count_by_state(s: &Subject) -> anyhow::Result<()> {
    ensure!(s.queue.stats().await? == QueueStats::default());
    let mut ids = Vec::new();
    for n in 0..6 {
        ids.push(s.queue.enqueue(job(n)).await?.id);
    }
    let w = worker("a");
    for _ in 0..3 {
        ensure!(s.queue.claim(&w, LONG).await?.is_some());
    }
    ensure!(s.queue.complete(&w, &ids[0], result("/0.csv")).await? == Completion::Completed);
    ensure!(
        s.queue
            .fail(
                &w,
                &ids[1],
                Failure::Abort {
                    message: "bad".into()
                }
            )
            .await?
    );
    ensure!(s.queue.cancel(&ids[5]).await? == CancelOutcome::Cancelled);
    let retry = Failure::Retry {
        message: "fetch timed out".into(),
        delay_ms: 60_000,
    };
    ensure!(s.queue.fail(&w, &ids[2], retry).await?);
    let stats = s.queue.stats().await?;
    let want = QueueStats {
        pending: 3,
        processing: 0,
        completed: 1,
        failed: 2,
    };
    ensure!(stats == want, "{stats:?} != {want:?}");
    ensure!(s.queue.claim(&w, LONG).await?.is_some());
    let want = QueueStats {
        pending: 2,
        processing: 1,
        completed: 1,
        failed: 2,
    };
    ensure!(s.queue.stats().await? == want);
    Ok(())
}
