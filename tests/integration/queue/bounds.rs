//! Conformance: what keeps the queue bounded. The cap on waiting jobs (obeyed up to it, refused
//! past it, atomically under concurrent enqueues, retries waiting out a delay counted), the
//! expiry of finished records (only those older than the time to live, in batches, their ids
//! handed out until confirmed), and the dead list (the newest kept, readable, requeueable).

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context, ensure};
use kaggle_solver::queue::{
    Completion, Failure, JobId, JobResult, JobStatus, QueueError, QueueStats,
};
use kaggle_solver::storage::StoreKind;

use super::{LONG, MAX_DEAD, MAX_QUEUED, Subject, job, record, worker};

fn result() -> JobResult {
    JobResult {
        submission_source: StoreKind::Local,
        submission_path: "/data/sub.csv".into(),
        validation_score: None,
        validation_score_source: None,
        attempts: 1,
    }
}

/// Claims `id` (which must be next in line) and fails it with infrastructure retries until it
/// is out of them and on the dead list.
async fn bury(s: &Subject, id: &JobId) -> anyhow::Result<()> {
    let w = worker("burier");
    loop {
        let claimed = s.queue.claim(&w, LONG).await?.context("a job to claim")?;
        ensure!(&claimed.id == id, "claimed {} instead of {id}", claimed.id);
        let retry = Failure::Retry {
            message: "the disk is full".into(),
            delay_ms: 0,
        };
        ensure!(s.queue.fail(&w, id, retry).await?);
        if record(s, id).await?.status == JobStatus::Failed {
            return Ok(());
        }
    }
}

pub async fn enqueue_past_the_cap_is_refused(s: &Subject) -> anyhow::Result<()> {
    // More enqueuers than room at once: exactly the cap's worth get in.
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..(MAX_QUEUED as usize + 40) {
        let queue = s.queue.clone();
        tasks.spawn(async move { queue.enqueue(job(n)).await });
    }
    let (mut accepted, mut refused) = (0, 0);
    while let Some(joined) = tasks.join_next().await {
        match joined? {
            Ok(_) => accepted += 1,
            Err(QueueError::Full { limit }) if limit == MAX_QUEUED => refused += 1,
            Err(other) => anyhow::bail!("unexpected {other}"),
        }
    }
    ensure!(
        (accepted, refused) == (MAX_QUEUED, 40),
        "{accepted} accepted, {refused} refused"
    );
    ensure!(s.queue.stats().await?.pending == MAX_QUEUED);

    // A job taken off the line makes room for exactly one more.
    let w = worker("a");
    let first = s.queue.claim(&w, LONG).await?.context("claimed")?;
    ensure!(s.queue.enqueue(job(1_000)).await.is_ok(), "room for one");
    let refused = s.queue.enqueue(job(1_001)).await;
    ensure!(
        matches!(refused, Err(QueueError::Full { limit: MAX_QUEUED })),
        "{refused:?}"
    );

    // A retry waiting out its delay still waits, so it takes its place in the count.
    let second = s.queue.claim(&w, LONG).await?.context("claimed")?;
    let retry = Failure::Retry {
        message: "Kaggle answered 503".into(),
        delay_ms: 60_000,
    };
    ensure!(s.queue.fail(&w, &second.id, retry).await?);
    let refused = s.queue.enqueue(job(1_002)).await;
    ensure!(
        matches!(refused, Err(QueueError::Full { .. })),
        "{refused:?}"
    );
    // Finishing a held job frees nothing in the line, and nothing refused was stored.
    ensure!(s.queue.complete(&w, &first.id, result()).await? == Completion::Completed);
    ensure!(s.queue.enqueue(job(1_003)).await.is_err());
    let stats = s.queue.stats().await?;
    ensure!(
        stats.pending == MAX_QUEUED && stats.processing == 0,
        "{stats:?}"
    );
    Ok(())
}

pub async fn finished_jobs_expire_after_the_ttl(s: &Subject) -> anyhow::Result<()> {
    let ttl = Duration::from_millis(400);
    let w = worker("a");
    let completed = s.queue.enqueue(job(1)).await?.id;
    let failed = s.queue.enqueue(job(2)).await?.id;
    let running = s.queue.enqueue(job(3)).await?.id;
    let waiting = s.queue.enqueue(job(4)).await?.id;
    for _ in 0..3 {
        ensure!(s.queue.claim(&w, LONG).await?.is_some());
    }
    ensure!(s.queue.complete(&w, &completed, result()).await? == Completion::Completed);
    let abort = Failure::Abort {
        message: "no submission".into(),
    };
    ensure!(s.queue.fail(&w, &failed, abort).await?);
    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    let fresh = s.queue.enqueue(job(5)).await?.id;
    ensure!(s.queue.claim(&w, LONG).await?.map(|r| r.id) == Some(waiting.clone()));
    ensure!(s.queue.claim(&w, LONG).await?.map(|r| r.id) == Some(fresh.clone()));
    ensure!(s.queue.complete(&w, &fresh, result()).await? == Completion::Completed);
    let before = s.queue.stats().await?;
    ensure!(before.completed == 2 && before.failed == 1, "{before:?}");

    // One at a time: the first sweep expires one of the two old jobs.
    let first = s.queue.sweep_finished(ttl, 1).await?;
    ensure!(first.len() == 1, "{first:?}");
    ensure!(first[0] == completed || first[0] == failed, "{first:?}");
    ensure!(s.queue.get(&first[0]).await?.is_none());
    // The next returns both: the one removed now, and the first, not yet confirmed.
    let both: HashSet<JobId> = s
        .queue
        .sweep_finished(ttl, 100)
        .await?
        .into_iter()
        .collect();
    ensure!(
        both == HashSet::from([completed.clone(), failed.clone()]),
        "{both:?}"
    );
    ensure!(s.queue.get(&completed).await?.is_none());
    ensure!(s.queue.get(&failed).await?.is_none());
    for kept in [&running, &waiting, &fresh] {
        ensure!(s.queue.get(kept).await?.is_some(), "{kept} was swept");
    }
    let after = s.queue.stats().await?;
    let want = QueueStats {
        pending: 0,
        processing: 2,
        completed: 1,
        failed: 0,
    };
    ensure!(after == want, "{after:?} != {want:?}");

    // Confirmed ids are not handed out again.
    s.queue
        .confirm_swept(std::slice::from_ref(&completed))
        .await?;
    ensure!(s.queue.sweep_finished(ttl, 100).await? == vec![failed.clone()]);
    s.queue.confirm_swept(&[failed]).await?;
    s.queue.confirm_swept(&[]).await?;
    ensure!(s.queue.sweep_finished(ttl, 100).await?.is_empty());
    ensure!(s.queue.get(&fresh).await?.is_some(), "younger than the ttl");
    // With no time to live left, the fresh job goes too, but never a running one.
    ensure!(s.queue.sweep_finished(Duration::ZERO, 100).await? == vec![fresh.clone()]);
    ensure!(s.queue.get(&fresh).await?.is_none());
    ensure!(record(s, &running).await?.status == JobStatus::Processing);
    Ok(())
}

pub async fn the_dead_list_keeps_the_newest_and_requeues(s: &Subject) -> anyhow::Result<()> {
    let mut buried = Vec::new();
    for n in 0..(MAX_DEAD as usize + 1) {
        let id = s.queue.enqueue(job(n)).await?.id;
        bury(s, &id).await?;
        buried.push(id);
    }
    let newest_first: Vec<JobId> = buried.iter().rev().cloned().collect();
    ensure!(
        s.dead().await? == newest_first,
        "all are listed until a sweep"
    );
    let listed = s.queue.dead_letters().await?;
    ensure!(
        listed
            .iter()
            .all(|r| r.status == JobStatus::Failed && r.message.is_some())
    );

    // A sweep keeps the newest MAX_DEAD; the oldest stays a failed record, not requeueable.
    ensure!(s.queue.sweep_finished(LONG, 100).await?.is_empty());
    let oldest = &buried[0];
    ensure!(s.dead().await? == newest_first[..MAX_DEAD as usize]);
    ensure!(record(s, oldest).await?.status == JobStatus::Failed);
    ensure!(s.queue.requeue_dead(oldest).await?.is_none());

    // Requeued: pending with fresh retries, off the list, next in line.
    let target = &buried[1];
    let requeued = s.queue.requeue_dead(target).await?.context("requeued")?;
    ensure!(requeued.id == *target && requeued.status == JobStatus::Pending);
    ensure!(requeued.infra_retries == 0 && !requeued.cancel_requested);
    ensure!(requeued.message.as_deref() == Some("requeued from the dead list"));
    ensure!(record(s, target).await? == requeued);
    ensure!(s.dead().await? == vec![buried[2].clone()]);
    ensure!(
        s.queue.requeue_dead(target).await?.is_none(),
        "requeued twice"
    );
    ensure!(s.queue.requeue_dead(&JobId::new()).await?.is_none());
    let stats = s.queue.stats().await?;
    ensure!(stats.pending == 1 && stats.failed == MAX_DEAD, "{stats:?}");

    // It is no longer finished: a sweep with no time to live takes the others, not it.
    let swept: HashSet<JobId> = s
        .queue
        .sweep_finished(Duration::ZERO, 100)
        .await?
        .into_iter()
        .collect();
    ensure!(
        swept == HashSet::from([buried[0].clone(), buried[2].clone()]),
        "{swept:?}"
    );
    ensure!(s.dead().await?.is_empty());
    let w = worker("b");
    let claimed = s.queue.claim(&w, LONG).await?.context("claimed")?;
    ensure!(claimed.id == *target && claimed.infra_retries == 0);
    // Its retries start again from zero.
    let retry = Failure::Retry {
        message: "once more".into(),
        delay_ms: 0,
    };
    ensure!(s.queue.fail(&w, target, retry).await?);
    ensure!(record(s, target).await?.infra_retries == 1);
    Ok(())
}
