//! Redis-only properties: every accepted job and its state survive a SIGKILL of Redis (AOF with
//! fsync at every write) and the connection heals by itself; an unreachable Redis is
//! `Unavailable`; the key prefix keeps deployments apart.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use kaggle_solver::queue::{
    Completion, DynQueue, JobQueue, JobRecord, JobStatus, LeaseState, Progress, QueueConfig,
    QueueError, QueueStats, RedisQueue,
};

use super::{LONG, job, worker};
use crate::redis_server::RedisServer;
use kaggle_solver::pipeline::solve::Stage;
use kaggle_solver::storage::StoreKind;

/// Retries `get` until Redis answers again (the connection manager reconnects in the
/// background after the first failure).
async fn get_when_back(queue: &DynQueue, record: &JobRecord) -> anyhow::Result<JobRecord> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match queue.get(&record.id).await {
            Ok(found) => return found.context("a job was lost across the Redis restart"),
            Err(e) if Instant::now() < deadline => {
                ensure!(e.is_retryable(), "not retryable: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e).context("Redis did not come back"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_survive_sigkill_of_redis() -> anyhow::Result<()> {
    let mut server = RedisServer::start();
    let queue: DynQueue = std::sync::Arc::new(
        RedisQueue::connect(&server.url(), QueueConfig::with_prefix("dur:")).await?,
    );
    let mut accepted = Vec::new();
    for n in 0..5 {
        accepted.push(queue.enqueue(job(n)).await?);
    }
    let holder = worker("holder");
    let claimed = queue
        .claim(&holder, LONG)
        .await?
        .context("a job to claim")?;
    let progress = Progress {
        stage: Stage::Generate,
        attempt: Some(1),
        max_attempts: Some(3),
        backend: None,
        best_score: None,
        candidates_tried: None,
    };
    ensure!(queue.progress(&holder, &claimed.id, progress).await? == LeaseState::Held);
    let mut before = Vec::new();
    for record in &accepted {
        before.push(
            queue
                .get(&record.id)
                .await?
                .context("a job just enqueued")?,
        );
    }

    server.kill();
    let down = queue.stats().await;
    ensure!(
        matches!(down, Err(QueueError::Unavailable(_))),
        "with Redis dead: {down:?}"
    );
    server.restart();

    for (record, was) in accepted.iter().zip(&before) {
        ensure!(
            &get_when_back(&queue, record).await? == was,
            "job {} changed",
            record.id
        );
    }
    let want = QueueStats {
        pending: 4,
        processing: 1,
        completed: 0,
        failed: 0,
    };
    ensure!(queue.stats().await? == want);
    // The lease survived too, and the scripts load again on the new server.
    ensure!(queue.heartbeat(&holder, &claimed.id, LONG).await? == LeaseState::Held);
    let next = queue
        .claim(&worker("other"), LONG)
        .await?
        .context("a waiting job")?;
    ensure!(next.id == accepted[1].id, "the line kept its order");
    let result = kaggle_solver::queue::JobResult {
        submission_source: StoreKind::Local,
        submission_path: "/x.csv".into(),
        validation_score: None,
        validation_score_source: None,
        attempts: 1,
    };
    ensure!(queue.complete(&holder, &claimed.id, result).await? == Completion::Completed);
    ensure!(queue.get(&claimed.id).await?.map(|r| r.status) == Some(JobStatus::Completed));
    Ok(())
}

#[tokio::test]
async fn refused_connection_is_unavailable() -> anyhow::Result<()> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config = QueueConfig {
        timeout: Duration::from_secs(1),
        ..QueueConfig::default()
    };
    let started = Instant::now();
    let refused = RedisQueue::connect(&format!("redis://127.0.0.1:{port}"), config).await;
    match refused {
        Err(e @ QueueError::Unavailable(_)) => ensure!(e.is_retryable()),
        other => anyhow::bail!("expected Unavailable, got {other:?}"),
    }
    ensure!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    let invalid = RedisQueue::connect("not a url", QueueConfig::default()).await;
    ensure!(
        matches!(invalid, Err(QueueError::Unavailable(_))),
        "{invalid:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefixes_keep_queues_apart() -> anyhow::Result<()> {
    let server = RedisServer::start();
    let blue = RedisQueue::connect(&server.url(), QueueConfig::with_prefix("blue:")).await?;
    let green = RedisQueue::connect(&server.url(), QueueConfig::with_prefix("green:")).await?;
    let id = blue.enqueue(job(1)).await?.id;
    ensure!(green.get(&id).await?.is_none());
    ensure!(green.claim(&worker("g"), LONG).await?.is_none());
    ensure!(green.stats().await? == QueueStats::default());
    ensure!(blue.claim(&worker("b"), LONG).await?.map(|r| r.id) == Some(id));
    blue.ping().await?;
    Ok(())
}
