//! A worker whose lease lapsed while it was paused wakes just before its store, through real
//! workers on the real pipeline and WASI sandbox, on both queues: the new holder's submission,
//! record and logs stay exactly as the new holder left them, and neither claim leaves a folder.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use kaggle_solver::logs::{FileLogs, JobLogs};
use kaggle_solver::metrics::Metrics;
use kaggle_solver::pipeline::solve::{Sandboxes, Solver};
use kaggle_solver::policies::PolicyDir;
use kaggle_solver::queue::{DynQueue, JobStatus};
use kaggle_solver::sandbox::Sandbox;
use kaggle_solver::storage::{DynStore, LocalStore};
use kaggle_solver::worker::{Worker, WorkerConfig, WorkerParts};
use tokio_util::sync::CancellationToken;

use super::cluster::repo;
use super::inproc::{
    Calls, Fixed, Gated, Signal, Stalling, TestQueue, answering, demo_job, ended, mirror_fetcher,
    names, until,
};
use crate::support::wasm_sandbox;

async fn a_stale_workers_late_store_replaces_nothing(q: TestQueue) -> Result<()> {
    const LEASE: Duration = Duration::from_secs(3);
    let wasm: Arc<dyn Sandbox> = Arc::new(tokio::task::spawn_blocking(wasm_sandbox).await?);
    let dir = tempfile::tempdir()?;
    let work = dir.path().join("work");
    let store: DynStore = Arc::new(LocalStore::new(dir.path().join("submissions")));
    let fetcher = mirror_fetcher(dir.path());
    let policies = PolicyDir::new(repo().join("policies"));
    let parts =
        |queue: DynQueue, code: String, sandbox: Arc<dyn Sandbox>, metrics: Arc<Metrics>| {
            let sandboxes = Sandboxes {
                wasm: Some(sandbox),
                docker: None,
            };
            WorkerParts {
                queue,
                solver: Arc::new(Solver::new(
                    Arc::new(Fixed(code)),
                    sandboxes,
                    store.clone(),
                    &work,
                )),
                fetcher: fetcher.clone(),
                policies: policies.clone(),
                // Each its own, as two processes' are.
                logs: Arc::new(FileLogs::new(&work)),
                metrics,
            }
        };

    // The stale worker: its heartbeats never come round, its run waits at a gate, and its
    // queue calls freeze when the run starts, as a process stopped there would.
    let (entered, open, frozen, thawed) =
        (Signal::new(), Signal::new(), Signal::new(), Signal::new());
    let stalling = Arc::new(Stalling {
        inner: q.queue.clone(),
        calls: Calls::Every,
        frozen: frozen.clone(),
        thawed: Some(thawed.clone()),
        late: Duration::from_secs(5),
    });
    let gated = Arc::new(Gated {
        inner: wasm.clone(),
        entered: entered.clone(),
        open: open.clone(),
    });
    let stale_metrics = Arc::new(Metrics::default());
    let stale = Worker::new(
        parts(
            stalling,
            answering("Chinstrap"),
            gated,
            stale_metrics.clone(),
        ),
        WorkerConfig {
            heartbeat: Duration::from_secs(3600),
            reap_every: Duration::from_secs(3600),
            ..WorkerConfig::with_lease(LEASE)
        },
    );
    let id = q.queue.enqueue(demo_job()).await?.id;
    let stop_stale = CancellationToken::new();
    let stale_run = tokio::spawn({
        let (worker, stop) = (stale.clone(), stop_stale.clone());
        async move { worker.run(stop).await }
    });
    tokio::time::timeout(Duration::from_secs(60), entered.raised())
        .await
        .context("the stale worker never reached its run")?;
    frozen.raise();
    let held = q.record(&id).await?;
    ensure!(
        held.status == JobStatus::Processing && held.worker.as_ref() == Some(stale.id()),
        "the stale worker must still hold the job when it is paused: {held:?}"
    );

    // The new holder takes the job once the lease lapses, and completes it.
    let fresh_metrics = Arc::new(Metrics::default());
    let fresh = Worker::new(
        parts(
            q.queue.clone(),
            answering("Adelie"),
            wasm,
            fresh_metrics.clone(),
        ),
        WorkerConfig {
            reap_every: Duration::from_millis(100),
            ..WorkerConfig::with_lease(Duration::from_secs(10))
        },
    );
    let stop_fresh = CancellationToken::new();
    let fresh_run = tokio::spawn({
        let (worker, stop) = (fresh.clone(), stop_fresh.clone());
        async move { worker.run(stop).await }
    });
    until(
        Duration::from_secs(60),
        "the new holder completes",
        async || Ok(q.record(&id).await?.status == JobStatus::Completed),
    )
    .await?;
    let done = q.record(&id).await?;
    ensure!(done.infra_retries == 1, "handed on once: {done:?}");
    let path = done.submission_path.clone().context("a submission")?;
    let stored = std::fs::read_to_string(&path)?;
    ensure!(
        stored.contains(",Adelie\n") && !stored.contains("Chinstrap"),
        "{stored}"
    );

    // The stale worker wakes: its run finishes and it gets as far as the store.
    thawed.raise();
    open.raise();
    until(
        Duration::from_secs(60),
        "the stale worker gives up",
        async || Ok(ended(&stale_metrics, "lost") == 1),
    )
    .await?;
    ensure!(
        std::fs::read_to_string(&path)? == stored,
        "the submission was replaced"
    );
    ensure!(
        q.record(&id).await? == done,
        "the record changed after completion"
    );
    let key_dir = std::path::Path::new(&path)
        .parent()
        .context("the submission's folder")?;
    ensure!(
        names(key_dir)? == ["submission.csv"],
        "{:?}",
        names(key_dir)?
    );
    ensure!(ended(&fresh_metrics, "completed") == 1);
    ensure!(ended(&stale_metrics, "completed") + ended(&stale_metrics, "failed") == 0);

    // Its log lines stop where its lease did: the new holder's are the last word.
    let log = FileLogs::new(&work)
        .read(&id)
        .await?
        .context("the job's log")?;
    let fresh_id = &fresh.id().0;
    ensure!(
        log.attempts.len() == 1 && &log.attempts[0].worker == fresh_id,
        "{:?}",
        log.attempts
    );
    let first_fresh = log
        .events
        .iter()
        .position(|e| &e.worker == fresh_id)
        .context("the new holder's events")?;
    ensure!(
        first_fresh > 0,
        "the stale worker logged its start: {:?}",
        log.events
    );
    ensure!(
        log.events[first_fresh..]
            .iter()
            .all(|e| &e.worker == fresh_id),
        "the stale worker wrote after losing the job: {:?}",
        log.events
    );
    let completed: Vec<_> = log
        .events
        .iter()
        .filter(|e| e.message == "completed")
        .collect();
    ensure!(
        completed.len() == 1 && &completed[0].worker == fresh_id,
        "{completed:?}"
    );
    // Neither claim's folder is left: only the logs.
    ensure!(
        names(&work.join(&id.0))? == ["logs.json"],
        "{:?}",
        names(&work.join(&id.0))?
    );

    stop_stale.cancel();
    stop_fresh.cancel();
    tokio::time::timeout(Duration::from_secs(30), async {
        stale_run.await?;
        fresh_run.await
    })
    .await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_workers_late_store_replaces_nothing_memory() -> Result<()> {
    a_stale_workers_late_store_replaces_nothing(TestQueue::memory()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_workers_late_store_replaces_nothing_redis() -> Result<()> {
    a_stale_workers_late_store_replaces_nothing(TestQueue::redis().await?).await
}
