//! Job logs in Redis (`RedisLogs`), against a real `redis-server`: bounded (entries cut,
//! Lists trimmed), expiring (a backstop expiry on every write) and deleted with the record by
//! the sweeper.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use kaggle_solver::logs::{
    AttemptLog, DynLogs, JobLogs, LogEvent, MAX_ATTEMPTS, MAX_CODE_CHARS, MAX_EVENT_CHARS,
    MAX_EVENTS, RedisLogs,
};
use kaggle_solver::queue::{
    Completion, DynQueue, JobId, JobResult, NewJob, QueueConfig, RedisQueue, WorkerId,
};
use kaggle_solver::storage::{DynStore, LocalStore, StoreKind};
use kaggle_solver::sweep::Sweeper;

use crate::redis_server::RedisServer;

fn attempt(n: u32, code: String) -> AttemptLog {
    AttemptLog {
        attempt: n,
        worker: "w".into(),
        generator: "baseline".into(),
        code,
        backend: None,
        exit_code: Some(0),
        limit: None,
        wall_ms: Some(1),
        stdout_tail: "ok\n".into(),
        stderr_tail: String::new(),
        error: None,
        fuel_used: None,
        candidate: Some(n),
    }
}

#[tokio::test]
async fn logs_in_redis_are_bounded_and_expire() -> Result<()> {
    let redis = RedisServer::start();
    let keep = Duration::from_secs(3600);
    let logs = RedisLogs::connect(&redis.url(), "t:", keep, Duration::from_secs(5)).await?;
    let id = JobId::new();
    ensure!(logs.read(&id).await?.is_none());
    for i in 0..(MAX_EVENTS + 10) {
        let message = if i == 0 {
            "x".repeat(MAX_EVENT_CHARS * 3)
        } else {
            format!("e{i}")
        };
        logs.event(&id, LogEvent::now("w", message)).await?;
    }
    let huge = "y".repeat(MAX_CODE_CHARS * 2);
    for n in 0..(MAX_ATTEMPTS as u32 + 5) {
        logs.attempts(&id, vec![attempt(n, huge.clone())]).await?;
    }
    let log = logs.read(&id).await?.context("logged")?;
    ensure!(log.job_id == id.0);
    ensure!(log.events.len() == MAX_EVENTS, "{}", log.events.len());
    ensure!(log.events[0].message == "e10", "{}", log.events[0].message);
    // Numbered from 1 in order, numbers kept past the trim.
    ensure!(log.events[0].seq == 11, "{:?}", log.events[0]);
    ensure!(log.events.last().map(|e| e.seq) == Some(MAX_EVENTS as u64 + 10));
    let after = logs.events_after(&id, MAX_EVENTS as u64 + 5).await?;
    ensure!(
        after.iter().map(|e| e.seq).collect::<Vec<_>>()
            == ((MAX_EVENTS as u64 + 6)..=(MAX_EVENTS as u64 + 10)).collect::<Vec<_>>(),
        "{after:?}"
    );
    ensure!(logs.events_after(&JobId::new(), 0).await?.is_empty());
    ensure!(
        log.events.last().map(|e| e.message.as_str())
            == Some(format!("e{}", MAX_EVENTS + 9).as_str())
    );
    ensure!(log.attempts.len() == MAX_ATTEMPTS, "{}", log.attempts.len());
    ensure!(log.attempts[0].attempt == 5);
    ensure!(
        log.attempts[0].code.chars().count() < MAX_CODE_CHARS + 100
            && log.attempts[0].code.contains("more characters cut"),
        "{}",
        log.attempts[0].code.len()
    );
    // A cut message: the first event is gone by now, so cut one on its own.
    let other = JobId::new();
    logs.event(&other, LogEvent::now("w", "z".repeat(MAX_EVENT_CHARS * 3)))
        .await?;
    let cut = logs.read(&other).await?.context("logged")?;
    ensure!(cut.events[0].message.chars().count() < MAX_EVENT_CHARS + 100);

    // Both Lists carry the backstop expiry.
    let client = redis::Client::open(redis.url())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    for suffix in ["events", "attempts", "seq"] {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(format!("t:job:{}:{suffix}", id.0))
            .query_async(&mut conn)
            .await?;
        ensure!(ttl > 3_500_000 && ttl <= 3_600_000, "{suffix}: {ttl}");
    }
    logs.delete(&id).await?;
    ensure!(logs.read(&id).await?.is_none());
    logs.delete(&id).await?;
    ensure!(logs.read(&JobId("../x".into())).await.is_err());
    Ok(())
}

#[tokio::test]
async fn the_sweeper_deletes_a_redis_log_with_its_record() -> Result<()> {
    let redis = RedisServer::start();
    let queue: DynQueue =
        Arc::new(RedisQueue::connect(&redis.url(), QueueConfig::default()).await?);
    let logs: DynLogs = Arc::new(
        RedisLogs::connect(
            &redis.url(),
            QueueConfig::DEFAULT_PREFIX,
            Duration::from_secs(3600),
            Duration::from_secs(5),
        )
        .await?,
    );
    let dir = tempfile::tempdir()?;
    let store: DynStore = Arc::new(LocalStore::new(dir.path()));
    let job = NewJob {
        source: "https://www.kaggle.com/competitions/penguins".into(),
        policy: "default".into(),
        overrides: Default::default(),
    };
    let record = queue.enqueue(job).await?;
    let worker = WorkerId::for_this_process();
    queue
        .claim(&worker, Duration::from_secs(30))
        .await?
        .context("claimed")?;
    logs.event(&record.id, LogEvent::now(&worker.0, "started"))
        .await?;
    let result = JobResult {
        submission_source: StoreKind::Local,
        submission_path: "/x".into(),
        validation_score: None,
        validation_score_source: None,
        attempts: 1,
    };
    ensure!(queue.complete(&worker, &record.id, result).await? == Completion::Completed);
    let keep = Sweeper::new(
        queue.clone(),
        store.clone(),
        logs.clone(),
        Duration::from_secs(3600),
    );
    ensure!(keep.sweep().await? == 0);
    ensure!(
        logs.read(&record.id).await?.is_some(),
        "a fresh job keeps its log"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    let sweeper = Sweeper::new(queue.clone(), store, logs.clone(), Duration::from_millis(1));
    ensure!(sweeper.sweep().await? == 1);
    ensure!(queue.get(&record.id).await?.is_none());
    ensure!(
        logs.read(&record.id).await?.is_none(),
        "the log went with the record"
    );
    Ok(())
}
