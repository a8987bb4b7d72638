//! A cancel that races the end of a job, through a real worker on the real pipeline and WASI
//! sandbox, on both queues: landing after the code ran (before the store) or during the
//! store, it ends the job failed as cancelled, never completed.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use async_trait::async_trait;
use kaggle_solver::host::Host;
use kaggle_solver::logs::{FileLogs, JobLogs};
use kaggle_solver::pipeline::solve::Sandboxes;
use kaggle_solver::policies::PolicyDir;
use kaggle_solver::queue::{DynQueue, JobId, JobStatus};
use kaggle_solver::sandbox::{Backend, Outcome, Sandbox, SandboxError, SandboxRequest};
use kaggle_solver::storage::{
    DynStore, LocalStore, StoreError, StoredSubmission, SubmissionStore, SubmissionStream,
};
use kaggle_solver::worker::WorkerConfig;
use tokio_util::sync::CancellationToken;

use super::cluster::{PENGUINS, QUICK, repo};
use super::inproc::{
    Calls, Fixed, Signal, Stalling, TestQueue, ended, mirror_fetcher, names, until,
};
use crate::support::wasm_sandbox;

/// The WASI sandbox, with a cancel of the job landing as its run returns.
#[derive(Debug)]
struct CancelAfterRun {
    inner: Arc<dyn Sandbox>,
    queue: DynQueue,
}

#[async_trait]
impl Sandbox for CancelAfterRun {
    fn backend(&self) -> Backend {
        self.inner.backend()
    }

    async fn run(&self, request: SandboxRequest) -> Result<Outcome, SandboxError> {
        let job = JobId(request.job.clone().unwrap_or_default());
        let outcome = self.inner.run(request).await?;
        let _ = self.queue.cancel(&job).await;
        Ok(outcome)
    }
}

/// A local store, with a cancel of the job landing during the put, once the worker's report
/// of the store stage has gone through.
#[derive(Debug)]
struct CancelInPut {
    inner: LocalStore,
    queue: DynQueue,
}

#[async_trait]
impl SubmissionStore for CancelInPut {
    async fn put(&self, key: &str, contents: &[u8]) -> Result<StoredSubmission, StoreError> {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let _ = self.queue.cancel(&JobId(key.to_owned())).await;
        self.inner.put(key, contents).await
    }

    async fn get(&self, key: &str) -> Result<Option<SubmissionStream>, StoreError> {
        self.inner.get(key).await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }
}

/// Where the cancel lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Moment {
    AfterRun,
    InStore,
}

async fn a_cancel_racing_the_end_fails_the_job(q: TestQueue, moment: Moment) -> Result<()> {
    let wasm: Arc<dyn Sandbox> = Arc::new(tokio::task::spawn_blocking(wasm_sandbox).await?);
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let local = LocalStore::new(data.join("submissions"));
    // After the run, progress reports arrive late, so only the worker's own check at the
    // store can see the cancel in time (a progress answer naming it comes after the job's
    // end). In the store, the report of the store stage has gone through before the cancel.
    let queue: DynQueue = match moment {
        Moment::AfterRun => Arc::new(Stalling {
            inner: q.queue.clone(),
            calls: Calls::Progress,
            frozen: {
                let frozen = Signal::new();
                frozen.raise();
                frozen
            },
            thawed: None,
            late: Duration::from_millis(1500),
        }),
        Moment::InStore => q.queue.clone(),
    };
    let (sandbox, store): (Arc<dyn Sandbox>, DynStore) = match moment {
        Moment::AfterRun => (
            Arc::new(CancelAfterRun {
                inner: wasm,
                queue: q.queue.clone(),
            }),
            Arc::new(local),
        ),
        Moment::InStore => (
            wasm,
            Arc::new(CancelInPut {
                inner: local,
                queue: q.queue.clone(),
            }),
        ),
    };
    let host = Host::builder()
        .queue(queue)
        .policies(PolicyDir::new(repo().join("policies")))
        .fetcher(mirror_fetcher(dir.path()))
        .sandboxes(Sandboxes {
            wasm: Some(sandbox),
            docker: None,
        })
        .store(store)
        .generator(Arc::new(Fixed(QUICK.to_owned())))
        .data_dir(&data)
        .workers(1)
        .worker_config(WorkerConfig::with_lease(Duration::from_secs(30)))
        .build()
        .await?;
    let shutdown = CancellationToken::new();
    let workers = tokio::spawn(host.run_workers(shutdown.clone()));
    let id = host.submit(PENGUINS, Some("small")).await?;
    until(Duration::from_secs(90), "the job ends", async || {
        Ok(q.record(&id).await?.status.is_terminal())
    })
    .await?;
    let ended_as = q.record(&id).await?;
    ensure!(ended_as.status == JobStatus::Failed, "{ended_as:?}");
    ensure!(
        ended_as.message.as_deref() == Some("cancelled"),
        "{ended_as:?}"
    );
    ensure!(ended_as.submission_path.is_none(), "{ended_as:?}");
    until(
        Duration::from_secs(30),
        "the worker counts it",
        async || Ok(ended(host.metrics(), "cancelled") == 1),
    )
    .await?;
    ensure!(ended(host.metrics(), "completed") == 0);
    let log = FileLogs::new(data.join("work"))
        .read(&id)
        .await?
        .context("the log")?;
    let messages: Vec<&str> = log.events.iter().map(|e| e.message.as_str()).collect();
    let stored = data.join("submissions").join(&id.0).join("submission.csv");
    match moment {
        // Caught before the store: nothing was stored.
        Moment::AfterRun => {
            ensure!(
                !stored.exists() && !data.join("submissions").exists(),
                "stored anyway"
            );
            ensure!(
                messages.last() == Some(&"failed: cancelled"),
                "{messages:?}"
            );
            ensure!(!messages.contains(&"completed"), "{messages:?}");
        }
        // Stored, but the queue refused the completion: the job is not completed, and the
        // worker deletes the file nothing will serve.
        Moment::InStore => {
            ensure!(!stored.exists(), "the refused submission is still stored");
            // The log says what the queue accepted: never `completed`.
            let refused = "failed: cancelled (the cancel came before the completion)";
            ensure!(
                messages.ends_with(&["attempt 1 succeeded", refused]),
                "{messages:?}"
            );
            ensure!(!messages.contains(&"completed"), "{messages:?}");
            let last = log.events.last().context("events")?;
            ensure!(
                last.kind == kaggle_solver::logs::EventKind::Terminal
                    && last.status == Some(JobStatus::Failed),
                "{last:?}"
            );
        }
    }
    ensure!(
        names(&data.join("work").join(&id.0))? == ["logs.json"],
        "left behind: {:?}",
        names(&data.join("work").join(&id.0))?
    );
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), workers).await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_after_the_run_stores_nothing_memory() -> Result<()> {
    a_cancel_racing_the_end_fails_the_job(TestQueue::memory(), Moment::AfterRun).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_after_the_run_stores_nothing_redis() -> Result<()> {
    a_cancel_racing_the_end_fails_the_job(TestQueue::redis().await?, Moment::AfterRun).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_during_the_store_fails_the_completion_memory() -> Result<()> {
    a_cancel_racing_the_end_fails_the_job(TestQueue::memory(), Moment::InStore).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_during_the_store_fails_the_completion_redis() -> Result<()> {
    a_cancel_racing_the_end_fails_the_job(TestQueue::redis().await?, Moment::InStore).await
}
