//! Parts for running workers in the test process against a real queue (in memory, or Redis on
//! a `redis-server` of the test's own), on the real pipeline and the real WASI sandbox: a
//! generator of fixed code, the demo from the local mirror, two ways of holding a worker
//! still at a chosen moment (a sandbox that waits at a gate, a queue whose calls stall), and
//! small checks on what a run left.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use kaggle_solver::metrics::Metrics;
use kaggle_solver::pipeline::fetch::{FetchConfig, Fetcher, LocalPolicy};
use kaggle_solver::pipeline::generate::{
    GenerateError, GeneratedCode, GenerationRequest, Generator,
};
use kaggle_solver::queue::{
    CancelOutcome, Completion, DynQueue, Failure, JobId, JobPage, JobQueue, JobRecord, JobResult,
    LeaseState, ListCursor, ListState, MemoryQueue, NewJob, Progress, QueueConfig, QueueError,
    QueueStats, RedisQueue, StopOutcome, WorkerId,
};
use kaggle_solver::sandbox::{Backend, Outcome, Sandbox, SandboxError, SandboxRequest};
use tokio::sync::watch;

use super::cluster::{PENGUINS, QUICK, repo};
use crate::redis_server::RedisServer;

/// [`QUICK`], answering `species` for every row.
pub fn answering(species: &str) -> String {
    QUICK.replace("'Adelie'", &format!("'{species}'"))
}

/// The demo job, as the API would enqueue it.
pub fn demo_job() -> NewJob {
    NewJob {
        source: PENGUINS.to_owned(),
        policy: "small".to_owned(),
        overrides: Default::default(),
    }
}

/// Hands out `code` for every request.
#[derive(Debug)]
pub struct Fixed(pub String);

#[async_trait]
impl Generator for Fixed {
    fn name(&self) -> String {
        "fixed".into()
    }

    async fn generate(&self, _: &GenerationRequest<'_>) -> Result<GeneratedCode, GenerateError> {
        Ok(GeneratedCode {
            code: self.0.clone(),
            generator: self.name(),
            llm: None,
        })
    }
}

/// Fetches the bundled demo from the local mirror; the cache goes under `dir`.
pub fn mirror_fetcher(dir: &Path) -> Arc<Fetcher> {
    let mirror = repo().join("examples/competitions");
    let mut fetch = FetchConfig::new(dir.join("cache"));
    fetch.competitions_dir = Some(mirror.clone());
    fetch.local_policy = LocalPolicy::UnderRoot(mirror);
    Arc::new(Fetcher::new(fetch))
}

/// A queue for one test, with the Redis server behind it kept alive.
pub struct TestQueue {
    pub queue: DynQueue,
    _server: Option<RedisServer>,
}

impl TestQueue {
    pub fn memory() -> Self {
        Self {
            queue: Arc::new(MemoryQueue::new(QueueConfig::default())),
            _server: None,
        }
    }

    pub async fn redis() -> Result<Self> {
        let server = RedisServer::start();
        let queue = RedisQueue::connect(&server.url(), QueueConfig::default()).await?;
        Ok(Self {
            queue: Arc::new(queue),
            _server: Some(server),
        })
    }

    /// The record of a job that must exist.
    pub async fn record(&self, id: &JobId) -> Result<JobRecord> {
        self.queue.get(id).await?.context("the job's record")
    }
}

/// A one-shot signal: raised once, awaited by anyone.
#[derive(Debug, Clone)]
pub struct Signal(watch::Sender<bool>);

impl Signal {
    pub fn new() -> Self {
        Self(watch::channel(false).0)
    }

    pub fn raise(&self) {
        self.0.send_replace(true);
    }

    pub fn is_raised(&self) -> bool {
        *self.0.borrow()
    }

    pub async fn raised(&self) {
        let mut seen = self.0.subscribe();
        // Never fails: the sender is `self`.
        let _ = seen.wait_for(|raised| *raised).await;
    }
}

/// The WASI sandbox behind a gate: a run raises `entered`, then waits for `open`.
#[derive(Debug)]
pub struct Gated {
    pub inner: Arc<dyn Sandbox>,
    pub entered: Signal,
    pub open: Signal,
}

#[async_trait]
impl Sandbox for Gated {
    fn backend(&self) -> Backend {
        self.inner.backend()
    }

    async fn run(&self, request: SandboxRequest) -> Result<Outcome, SandboxError> {
        self.entered.raise();
        self.open.raised().await;
        self.inner.run(request).await
    }
}

/// Which calls a [`Stalling`] queue holds back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Calls {
    Every,
    Progress,
}

/// A worker's view of the queue whose calls stall once `frozen` is raised. With a `thawed`
/// signal it is a paused process: a call made while frozen waits for the thaw and arrives
/// `late` after it, as a stopped process's calls in flight do, and calls made after the thaw
/// pass straight through. Without one it is a slow link: every such call arrives `late`.
#[derive(Debug)]
pub struct Stalling {
    pub inner: DynQueue,
    pub calls: Calls,
    pub frozen: Signal,
    pub thawed: Option<Signal>,
    pub late: Duration,
}

impl Stalling {
    async fn pass(&self, progress: bool) {
        if !self.frozen.is_raised() || (self.calls == Calls::Progress && !progress) {
            return;
        }
        if let Some(thawed) = &self.thawed {
            if thawed.is_raised() {
                return;
            }
            thawed.raised().await;
        }
        tokio::time::sleep(self.late).await;
    }
}

#[async_trait]
impl JobQueue for Stalling {
    async fn enqueue(&self, job: NewJob) -> Result<JobRecord, QueueError> {
        self.pass(false).await;
        self.inner.enqueue(job).await
    }

    async fn get(&self, id: &JobId) -> Result<Option<JobRecord>, QueueError> {
        self.pass(false).await;
        self.inner.get(id).await
    }

    async fn claim(&self, w: &WorkerId, lease: Duration) -> Result<Option<JobRecord>, QueueError> {
        self.pass(false).await;
        self.inner.claim(w, lease).await
    }

    async fn heartbeat(
        &self,
        w: &WorkerId,
        id: &JobId,
        lease: Duration,
    ) -> Result<LeaseState, QueueError> {
        self.pass(false).await;
        self.inner.heartbeat(w, id, lease).await
    }

    async fn progress(
        &self,
        w: &WorkerId,
        id: &JobId,
        p: Progress,
    ) -> Result<LeaseState, QueueError> {
        self.pass(true).await;
        self.inner.progress(w, id, p).await
    }

    async fn complete(
        &self,
        w: &WorkerId,
        id: &JobId,
        result: JobResult,
    ) -> Result<Completion, QueueError> {
        self.pass(false).await;
        self.inner.complete(w, id, result).await
    }

    async fn stop(&self, id: &JobId) -> Result<StopOutcome, QueueError> {
        self.pass(false).await;
        self.inner.stop(id).await
    }

    async fn fail(&self, w: &WorkerId, id: &JobId, failure: Failure) -> Result<bool, QueueError> {
        self.pass(false).await;
        self.inner.fail(w, id, failure).await
    }

    async fn release(&self, w: &WorkerId, id: &JobId) -> Result<bool, QueueError> {
        self.pass(false).await;
        self.inner.release(w, id).await
    }

    async fn cancel(&self, id: &JobId) -> Result<CancelOutcome, QueueError> {
        self.pass(false).await;
        self.inner.cancel(id).await
    }

    async fn reap_expired(&self) -> Result<u64, QueueError> {
        self.pass(false).await;
        self.inner.reap_expired().await
    }

    async fn stats(&self) -> Result<QueueStats, QueueError> {
        self.pass(false).await;
        self.inner.stats().await
    }

    async fn sweep_finished(&self, ttl: Duration, limit: u64) -> Result<Vec<JobId>, QueueError> {
        self.pass(false).await;
        self.inner.sweep_finished(ttl, limit).await
    }

    async fn confirm_swept(&self, ids: &[JobId]) -> Result<(), QueueError> {
        self.pass(false).await;
        self.inner.confirm_swept(ids).await
    }

    async fn dead_letters(&self) -> Result<Vec<JobRecord>, QueueError> {
        self.pass(false).await;
        self.inner.dead_letters().await
    }

    async fn requeue_dead(&self, id: &JobId) -> Result<Option<JobRecord>, QueueError> {
        self.pass(false).await;
        self.inner.requeue_dead(id).await
    }

    async fn list(
        &self,
        state: Option<ListState>,
        limit: usize,
        cursor: Option<ListCursor>,
    ) -> Result<JobPage, QueueError> {
        self.pass(false).await;
        self.inner.list(state, limit, cursor).await
    }
}

/// The count of job runs that ended with `outcome` on a worker with these metrics.
pub fn ended(metrics: &Metrics, outcome: &str) -> u64 {
    let line = format!("ks_worker_jobs_total{{outcome=\"{outcome}\"}} ");
    metrics
        .render(None)
        .lines()
        .find_map(|l| l.strip_prefix(&line)?.parse().ok())
        .unwrap_or(0)
}

/// Waits up to `within` for `done`.
pub async fn until(
    within: Duration,
    what: &str,
    mut done: impl AsyncFnMut() -> Result<bool>,
) -> Result<()> {
    let deadline = Instant::now() + within;
    while !done().await? {
        if Instant::now() > deadline {
            bail!("{what}: not within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// The names of the entries of `dir`, sorted.
pub fn names(dir: &Path) -> Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_>>()?;
    names.sort();
    Ok(names)
}
