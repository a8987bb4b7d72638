//! Conformance: leases and time (expiry and reaping, heartbeats, delayed retries and the retry
//! cap) and concurrency (many enqueuers, many claimers).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::ensure;
use kaggle_solver::queue::{
    CancelOutcome, Completion, Failure, JobResult, JobStatus, LeaseState, Progress, QueueStats,
};

use super::{LONG, MAX_INFRA_RETRIES, Subject, job, record, worker};
use kaggle_solver::pipeline::solve::Stage;
use kaggle_solver::storage::StoreKind;

const SHORT: Duration = Duration::from_millis(300);

fn result(path: &str) -> JobResult {
    JobResult {
        submission_source: StoreKind::Local,
        submission_path: path.into(),
        validation_score: None,
        validation_score_source: None,
        attempts: 1,
    }
}

pub async fn lease_expiry_hands_job_on(s: &Subject) -> anyhow::Result<()> {
    let id = s.queue.enqueue(job(1)).await?.id;
    let first = worker("first");
    let second = worker("second");
    ensure!(s.queue.claim(&first, SHORT).await?.is_some());
    ensure!(
        s.queue.reap_expired().await? == 0,
        "a live lease was reaped"
    );
    tokio::time::sleep(SHORT + Duration::from_millis(150)).await;
    ensure!(s.queue.reap_expired().await? == 1);
    let requeued = record(s, &id).await?;
    ensure!(requeued.status == JobStatus::Pending && requeued.worker.is_none());
    ensure!(
        requeued.infra_retries == 1,
        "an expired lease counts as an infrastructure retry"
    );
    ensure!(s.queue.reap_expired().await? == 0);

    let claimed = s.queue.claim(&second, LONG).await?;
    ensure!(claimed.map(|r| r.id) == Some(id.clone()));
    // The first worker wakes up late: everything it says is refused.
    ensure!(s.queue.heartbeat(&first, &id, LONG).await? == LeaseState::Lost);
    ensure!(s.queue.complete(&first, &id, result("/late.csv")).await? == Completion::NotHeld);
    ensure!(
        s.queue
            .complete(&second, &id, result("/second.csv"))
            .await?
            == Completion::Completed
    );
    let done = record(s, &id).await?;
    ensure!(done.status == JobStatus::Completed);
    ensure!(
        done.submission_path.as_deref() == Some("/second.csv"),
        "{done:?}"
    );
    Ok(())
}

pub async fn heartbeat_keeps_the_job(s: &Subject) -> anyhow::Result<()> {
    let id = s.queue.enqueue(job(1)).await?.id;
    let holder = worker("holder");
    let thief = worker("thief");
    ensure!(s.queue.claim(&holder, SHORT).await?.is_some());
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
        ensure!(s.queue.heartbeat(&holder, &id, SHORT).await? == LeaseState::Held);
        ensure!(
            s.queue.reap_expired().await? == 0,
            "a heartbeating job was reaped"
        );
        ensure!(
            s.queue.claim(&thief, SHORT).await?.is_none(),
            "a held job was handed on"
        );
    }
    let held = record(s, &id).await?;
    ensure!(held.status == JobStatus::Processing && held.worker.as_ref() == Some(&holder));
    ensure!(s.queue.complete(&holder, &id, result("/held.csv")).await? == Completion::Completed);
    Ok(())
}

pub async fn retry_waits_its_delay_then_buries(s: &Subject) -> anyhow::Result<()> {
    let id = s.queue.enqueue(job(1)).await?.id;
    let w = worker("a");
    ensure!(s.queue.claim(&w, LONG).await?.is_some());
    let progress = Progress {
        stage: Stage::Run,
        attempt: Some(2),
        max_attempts: Some(3),
        backend: None,
        best_score: None,
        candidates_tried: None,
    };
    ensure!(s.queue.progress(&w, &id, progress).await? == LeaseState::Held);
    let retry = Failure::Retry {
        message: "Kaggle answered 503".into(),
        delay_ms: 400,
    };
    ensure!(s.queue.fail(&w, &id, retry).await?);
    let waiting = record(s, &id).await?;
    ensure!(waiting.status == JobStatus::Pending && waiting.infra_retries == 1);
    ensure!(
        waiting.attempt == Some(2),
        "a retry must not touch the code's attempts"
    );
    ensure!(waiting.message.as_deref() == Some("Kaggle answered 503"));
    ensure!(
        s.queue.claim(&w, LONG).await?.is_none(),
        "claimed before its delay"
    );
    tokio::time::sleep(Duration::from_millis(550)).await;
    ensure!(s.queue.claim(&w, LONG).await?.map(|r| r.id) == Some(id.clone()));

    // Retries up to the cap, then failed and dead.
    for n in 2..=MAX_INFRA_RETRIES {
        let retry = Failure::Retry {
            message: format!("retry {n}"),
            delay_ms: 0,
        };
        ensure!(s.queue.fail(&w, &id, retry).await?);
        ensure!(record(s, &id).await?.infra_retries == n);
        ensure!(s.queue.claim(&w, LONG).await?.map(|r| r.id) == Some(id.clone()));
    }
    ensure!(s.dead().await?.is_empty());
    let last = Failure::Retry {
        message: "Docker daemon gone".into(),
        delay_ms: 0,
    };
    ensure!(s.queue.fail(&w, &id, last).await?);
    let buried = record(s, &id).await?;
    ensure!(buried.status == JobStatus::Failed, "{buried:?}");
    ensure!(buried.infra_retries == MAX_INFRA_RETRIES && buried.attempt == Some(2));
    let message = buried.message.unwrap_or_default();
    ensure!(message.contains("Docker daemon gone") && message.contains("infrastructure"));
    ensure!(s.dead().await? == vec![id.clone()]);
    ensure!(s.queue.claim(&w, LONG).await?.is_none());
    let want = QueueStats {
        pending: 0,
        processing: 0,
        completed: 0,
        failed: 1,
    };
    ensure!(s.queue.stats().await? == want);

    // A job cancelled while it waits out a delay leaves the delayed set too.
    let delayed = s.queue.enqueue(job(2)).await?.id;
    ensure!(s.queue.claim(&w, LONG).await?.is_some());
    let retry = Failure::Retry {
        message: "later".into(),
        delay_ms: 100,
    };
    ensure!(s.queue.fail(&w, &delayed, retry).await?);
    ensure!(s.queue.cancel(&delayed).await? == CancelOutcome::Cancelled);
    tokio::time::sleep(Duration::from_millis(200)).await;
    ensure!(
        s.queue.claim(&w, LONG).await?.is_none(),
        "a cancelled delayed job was claimed"
    );
    ensure!(s.queue.stats().await?.pending == 0);
    Ok(())
}

pub async fn expired_cancelled_job_is_not_requeued(s: &Subject) -> anyhow::Result<()> {
    let id = s.queue.enqueue(job(1)).await?.id;
    ensure!(s.queue.claim(&worker("a"), SHORT).await?.is_some());
    ensure!(s.queue.cancel(&id).await? == CancelOutcome::Requested);
    tokio::time::sleep(SHORT + Duration::from_millis(150)).await;
    ensure!(s.queue.reap_expired().await? == 1);
    let ended = record(s, &id).await?;
    ensure!(ended.status == JobStatus::Failed && ended.message.as_deref() == Some("cancelled"));
    ensure!(s.queue.claim(&worker("b"), LONG).await?.is_none());
    Ok(())
}

pub async fn concurrent_enqueues(s: &Subject) -> anyhow::Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..200 {
        let queue = s.queue.clone();
        tasks.spawn(async move { queue.enqueue(job(n)).await });
    }
    let mut ids = HashSet::new();
    while let Some(joined) = tasks.join_next().await {
        ids.insert(joined??.id);
    }
    ensure!(ids.len() == 200, "{} distinct ids", ids.len());
    for id in &ids {
        ensure!(record(s, id).await?.status == JobStatus::Pending);
    }
    ensure!(s.queue.stats().await?.pending == 200);
    Ok(())
}

pub async fn concurrent_claims_each_job_once(s: &Subject) -> anyhow::Result<()> {
    let mut all = HashSet::new();
    for n in 0..100 {
        all.insert(s.queue.enqueue(job(n)).await?.id);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..8 {
        let queue = s.queue.clone();
        tasks.spawn(async move {
            let w = worker(&format!("w{k}"));
            let mut mine = Vec::new();
            while let Some(claimed) = queue.claim(&w, LONG).await? {
                let path = format!("/{k}.csv");
                ensure!(
                    queue.complete(&w, &claimed.id, result(&path)).await? == Completion::Completed
                );
                mine.push(claimed.id);
            }
            anyhow::Ok(mine)
        });
    }
    let mut claimed = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        claimed.extend(joined??);
    }
    ensure!(
        claimed.len() == 100,
        "{} claims for 100 jobs",
        claimed.len()
    );
    ensure!(
        claimed.iter().cloned().collect::<HashSet<_>>() == all,
        "a job claimed twice"
    );
    let want = QueueStats {
        pending: 0,
        processing: 0,
        completed: 100,
        failed: 0,
    };
    ensure!(s.queue.stats().await? == want);
    Ok(())
}
