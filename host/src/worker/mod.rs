//! Workers: the processes (or tasks, in embedded mode) that take jobs from the queue and run
//! the pipeline on them.
//!
//! A [`Worker`] claims up to its concurrency limit of jobs, each under a lease it heartbeats,
//! and runs a reaper that puts jobs of dead workers back in line. On start it removes the work
//! folders that runs of dead processes on this host left behind. Shutting down drains: it
//! claims nothing new, waits for running jobs up to a grace period, then hands back what it
//! still holds. Parts: `job` (one job's life) and `lease` (what stops a job, and the fences
//! that keep a worker whose lease lapsed from writing over the new holder's work).

mod job;
mod lease;

use std::sync::Arc;
use std::time::Duration;

use ks_policies::PolicyDir;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::logs::DynLogs;
use crate::metrics::Metrics;
use crate::pipeline::fetch::Fetcher;
use crate::pipeline::solve::Solver;
use crate::queue::{DynQueue, WorkerId};

/// How a worker paces itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Jobs run at once.
    pub concurrency: usize,
    /// How long a claim or heartbeat holds a job.
    pub lease: Duration,
    /// How often a held job is heartbeated (a third of the lease is usual).
    pub heartbeat: Duration,
    /// The sleep between claims while the queue is empty (jittered by up to half of it).
    pub poll: Duration,
    /// How long a drain waits for running jobs before handing them back.
    pub grace: Duration,
    /// How often the reaper puts expired leases back in line.
    pub reap_every: Duration,
    /// The first infrastructure retry's delay; each further one doubles it.
    pub retry_base: Duration,
    /// The longest infrastructure retry delay.
    pub retry_max: Duration,
}

impl WorkerConfig {
    /// The defaults with `lease`, heartbeating every third of it and reaping every half.
    pub fn with_lease(lease: Duration) -> Self {
        Self {
            lease,
            heartbeat: lease / 3,
            reap_every: (lease / 2).min(Duration::from_secs(5)),
            ..Self::default()
        }
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            concurrency: 1,
            lease: Duration::from_secs(30),
            heartbeat: Duration::from_secs(10),
            poll: Duration::from_millis(100),
            grace: Duration::from_secs(60),
            reap_every: Duration::from_secs(5),
            retry_base: Duration::from_secs(2),
            retry_max: Duration::from_secs(300),
        }
    }
}

/// What a worker runs jobs with.
#[derive(Debug, Clone)]
pub struct WorkerParts {
    /// Where jobs come from.
    pub queue: DynQueue,
    /// Runs the pipeline.
    pub solver: Arc<Solver>,
    /// Brings competitions' files (for jobs from the API, with `Caller::Api`'s local policy).
    pub fetcher: Arc<Fetcher>,
    /// Where the jobs' policy presets are read.
    pub policies: PolicyDir,
    /// Where job logs go.
    pub logs: DynLogs,
    /// The counters `/metrics` shows.
    pub metrics: Arc<Metrics>,
}

#[derive(Debug)]
struct Shared {
    id: WorkerId,
    queue: DynQueue,
    parts: WorkerParts,
    logs: DynLogs,
    metrics: Arc<Metrics>,
    config: WorkerConfig,
}

/// Takes jobs from a queue and runs them. Its id is unique per process start.
#[derive(Debug, Clone)]
pub struct Worker {
    shared: Arc<Shared>,
}

impl Worker {
    /// A worker with a fresh id ([`WorkerId::for_this_process`]).
    pub fn new(parts: WorkerParts, config: WorkerConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                id: WorkerId::for_this_process(),
                queue: parts.queue.clone(),
                logs: parts.logs.clone(),
                metrics: parts.metrics.clone(),
                parts,
                config,
            }),
        }
    }

    /// This worker's id, as the queue records it.
    pub fn id(&self) -> &WorkerId {
        &self.shared.id
    }

    /// Claims and runs jobs until `shutdown` is cancelled, then drains (see the module doc).
    /// Queue failures are logged and retried; this returns only after the drain.
    pub async fn run(&self, shutdown: CancellationToken) {
        let shared = &self.shared;
        let config = &shared.config;
        if config.concurrency == 0 {
            return;
        }
        tracing::info!(worker = %shared.id.0, concurrency = config.concurrency, "worker started");
        match shared.parts.solver.sweep_abandoned().await {
            Ok(swept) if swept.is_empty() => {}
            Ok(swept) => tracing::info!(folders = swept.len(), "swept dead runs' work folders"),
            Err(error) => tracing::warn!(%error, "dead runs' work folders not swept"),
        }
        let reaper = tokio::spawn(reap(shared.clone(), shutdown.clone()));
        let hard_stop = CancellationToken::new();
        let slots = Arc::new(Semaphore::new(config.concurrency));
        let mut jobs = JoinSet::new();
        let mut failures = 0u32;
        loop {
            while jobs.try_join_next().is_some() {}
            let permit = tokio::select! {
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
                () = shutdown.cancelled() => break,
            };
            let asked = std::time::Instant::now();
            let pause = match shared.queue.claim(&shared.id, config.lease).await {
                Ok(Some(record)) if shutdown.is_cancelled() => {
                    let _ = shared.queue.release(&shared.id, &record.id).await;
                    break;
                }
                Ok(Some(record)) => {
                    failures = 0;
                    let (shared, stop) = (shared.clone(), hard_stop.clone());
                    jobs.spawn(async move {
                        job::run(shared, record, asked, stop).await;
                        drop(permit);
                    });
                    continue;
                }
                Ok(None) => config.poll.mul_f64(1.0 + fastrand::f64() * 0.5),
                Err(error) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(%error, "claim failed");
                    (config.poll * failures.min(50)).min(Duration::from_secs(5))
                }
            };
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = shutdown.cancelled() => break,
            }
        }
        drain(&mut jobs, config.grace, &hard_stop).await;
        reaper.abort();
        tracing::info!(worker = %shared.id.0, "worker stopped");
    }
}

/// Waits for running jobs up to `grace`, then stops them (they hand their jobs back).
async fn drain(jobs: &mut JoinSet<()>, grace: Duration, hard_stop: &CancellationToken) {
    if jobs.is_empty() {
        return;
    }
    tracing::info!(running = jobs.len(), "draining");
    let all = async { while jobs.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, all).await.is_err() {
        tracing::warn!(running = jobs.len(), "grace period over: handing jobs back");
        hard_stop.cancel();
        while jobs.join_next().await.is_some() {}
    }
}

/// Puts jobs with expired leases back in line, every `reap_every`.
async fn reap(shared: Arc<Shared>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(shared.config.reap_every) => {}
            () = shutdown.cancelled() => return,
        }
        match shared.queue.reap_expired().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(requeued = n, "reaped expired leases"),
            Err(error) => tracing::warn!(%error, "reaping failed"),
        }
    }
}
