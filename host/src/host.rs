//! The library API: everything the service is, as one value to embed in another Rust
//! program. [`Host::builder`] assembles the queue, the pipeline and the API with defaults for
//! whatever is not given; the [`Host`] then accepts jobs ([`Host::submit`]), answers about them,
//! serves the REST routes ([`Host::router`], to nest in any axum app) and runs workers
//! ([`Host::run_workers`]). `kaggle-solver serve` and `kaggle-solver worker` are built on it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use kaggle_solver::host::Host;
//! let host = Host::builder().workers(1).build().await?;
//! let app = axum::Router::new().nest("/solver", host.router());
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! tokio::spawn(host.run_workers(shutdown.clone()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ks_policies::{LimitOverrides, PolicyDir};
use tokio_util::sync::CancellationToken;

pub use crate::api::SubmitError;
use crate::api::{self, ApiState, ApiToken, Submitter};
use crate::logs::{DynLogs, FileLogs};
use crate::metrics::Metrics;
use crate::pipeline::fetch::{Caller, EnvLookup, FetchConfig, FetchError, Fetcher};
use crate::pipeline::generate::{ConfigError, DynGenerator, GeneratorKind, generator_from_env};
use crate::pipeline::solve::{Sandboxes, Solver};
use crate::queue::{CancelOutcome, DynQueue, JobId, JobRecord, MemoryQueue, QueueError};
use crate::sandbox::SandboxError;
use crate::sandbox::wasm::{SetupEvent, WasmSandbox};
use crate::storage::{DynStore, LocalStore};
use crate::sweep::{DEFAULT_JOB_TTL, Sweeper};
use crate::worker::{Worker, WorkerConfig, WorkerParts};

/// Why a [`Host`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// No data folder was given and none could be found (`KS_HOME`, `HOME`).
    #[error("no data folder: {0}; set KS_HOME or call .data_dir(..)")]
    Home(String),
    /// The WASI sandbox could not be set up.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// The code generator is not configured right.
    #[error(transparent)]
    Generator(#[from] ConfigError),
    /// The fetch configuration is unusable.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// A blocking set-up task failed.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Assembles a [`Host`]; see each method for its default.
#[derive(Debug, Default)]
#[must_use]
pub struct HostBuilder {
    policies: Option<PolicyDir>,
    queue: Option<DynQueue>,
    sandboxes: Option<Sandboxes>,
    generator: Option<DynGenerator>,
    store: Option<DynStore>,
    logs: Option<DynLogs>,
    fetcher: Option<Arc<Fetcher>>,
    data_dir: Option<PathBuf>,
    work_dir: Option<PathBuf>,
    workers: usize,
    worker_config: Option<WorkerConfig>,
    token: Option<ApiToken>,
    setup_progress: Option<SetupProgress>,
    allowed_policies: Option<Vec<String>>,
    job_ttl: Option<Duration>,
}

/// Where the sandbox's set-up steps are reported (the first use on a machine takes minutes).
#[derive(Clone)]
struct SetupProgress(Arc<dyn Fn(&SetupEvent) + Send + Sync>);

impl std::fmt::Debug for SetupProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SetupProgress")
    }
}

impl HostBuilder {
    /// Where policy presets are found (default: `KS_POLICY_DIR`, else `policies/`).
    pub fn policies(mut self, policies: PolicyDir) -> Self {
        self.policies = Some(policies);
        self
    }

    /// The job queue (default: a new in-memory queue, which is not durable).
    pub fn queue(mut self, queue: DynQueue) -> Self {
        self.queue = Some(queue);
        self
    }

    /// The sandboxes jobs run in (default: the WASI sandbox, built when workers are wanted).
    pub fn sandboxes(mut self, sandboxes: Sandboxes) -> Self {
        self.sandboxes = Some(sandboxes);
        self
    }

    /// The code generator (default: from the environment, an LLM if one is configured, else
    /// the baseline).
    pub fn generator(mut self, generator: DynGenerator) -> Self {
        self.generator = Some(generator);
        self
    }

    /// Where submissions are stored (default: `<data>/submissions` on local disk; see
    /// [`crate::storage::open`] for an object store).
    pub fn store(mut self, store: DynStore) -> Self {
        self.store = Some(store);
        self
    }

    /// Where job logs are kept (default: `logs.json` in each job's work folder; `serve` and
    /// `worker` give a [`crate::logs::RedisLogs`] with a Redis queue).
    pub fn logs(mut self, logs: DynLogs) -> Self {
        self.logs = Some(logs);
        self
    }

    /// How competitions are fetched (default: `KS_*` variables with the API's local policy:
    /// only folders under `KS_COMPETITIONS_DIR`).
    pub fn fetcher(mut self, fetcher: Arc<Fetcher>) -> Self {
        self.fetcher = Some(fetcher);
        self
    }

    /// The folder holding `work/` and `submissions/` (default: `$KS_HOME`).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Where attempts run and logs are kept (default: `<data>/work`).
    pub fn work_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.work_dir = Some(dir.into());
        self
    }

    /// How many jobs [`Host::run_workers`] runs at once (default 0: submit and serve only).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }

    /// Lease, heartbeat, polling and retry pacing of the workers (its `concurrency` is
    /// replaced by [`HostBuilder::workers`]).
    pub fn worker_config(mut self, config: WorkerConfig) -> Self {
        self.worker_config = Some(config);
        self
    }

    /// Requires `Authorization: Bearer <token>` on every route but `/healthz` (default: none;
    /// a blank token means none).
    pub fn api_token(mut self, token: Option<&str>) -> Self {
        self.token = token.and_then(ApiToken::new);
        self
    }

    /// The presets requests may pick (default: [`api::DEFAULT_API_POLICIES`], `default` and
    /// `small`); a request naming no policy gets the first. See [`Submitter::allow_policies`].
    pub fn allowed_policies<S: AsRef<str>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.allowed_policies = Some(names.into_iter().map(|n| n.as_ref().to_owned()).collect());
        self
    }

    /// How long finished jobs (their records, submissions and logs) are kept before the
    /// workers' sweeper deletes them (default [`DEFAULT_JOB_TTL`], a week).
    pub fn job_ttl(mut self, ttl: Duration) -> Self {
        self.job_ttl = Some(ttl);
        self
    }

    /// Reports the default sandbox's set-up steps (installing and compiling the runtime,
    /// building the pre-warmed image) to `progress` (default: the log).
    pub fn setup_progress(
        mut self,
        progress: impl Fn(&SetupEvent) + Send + Sync + 'static,
    ) -> Self {
        self.setup_progress = Some(SetupProgress(Arc::new(progress)));
        self
    }

    /// The folder holding `work/` and `submissions/`.
    fn data(&self) -> Result<PathBuf, HostError> {
        match &self.data_dir {
            Some(dir) => Ok(dir.clone()),
            None => Ok(ks_guest_runtime::RuntimeHome::from_env()
                .map_err(|e| HostError::Home(e.to_string()))?
                .root()
                .to_owned()),
        }
    }

    /// Only the pipeline, with the same defaults as [`HostBuilder::build`] gives its workers:
    /// for running one job in this process (`kaggle-solver solve`). Sets up the sandboxes if
    /// none were given (blocking, on a blocking thread).
    ///
    /// # Errors
    /// See [`HostError`].
    pub async fn build_solver(self) -> Result<Solver, HostError> {
        let data = self.data()?;
        let work_dir = self.work_dir.unwrap_or_else(|| data.join("work"));
        let store = self
            .store
            .unwrap_or_else(|| Arc::new(LocalStore::new(data.join("submissions"))));
        solver(
            self.sandboxes,
            self.generator,
            store,
            &work_dir,
            self.setup_progress,
        )
        .await
    }

    /// Builds the host. With workers wanted and no sandboxes given, this sets up the WASI
    /// sandbox (blocking, on a blocking thread; the first time on a machine it installs and
    /// compiles the runtime, about a minute).
    ///
    /// # Errors
    /// See [`HostError`].
    pub async fn build(self) -> Result<Host, HostError> {
        let data = self.data()?;
        let work_dir = self.work_dir.unwrap_or_else(|| data.join("work"));
        let policies = self.policies.unwrap_or_else(|| {
            PolicyDir::new(std::env::var_os("KS_POLICY_DIR").unwrap_or_else(|| "policies".into()))
        });
        let queue = self
            .queue
            .unwrap_or_else(|| Arc::new(MemoryQueue::default()));
        let store = self
            .store
            .unwrap_or_else(|| Arc::new(LocalStore::new(data.join("submissions"))));
        let logs = self
            .logs
            .unwrap_or_else(|| Arc::new(FileLogs::new(&work_dir)));
        let fetcher = match self.fetcher {
            Some(fetcher) => fetcher,
            None => Arc::new(Fetcher::new(FetchConfig::from_env(
                &EnvLookup::process(),
                Caller::Api,
            )?)),
        };
        let metrics = Arc::new(Metrics::default());
        let mut submitter = Submitter::new(
            queue.clone(),
            policies.clone(),
            fetcher.config().local_policy.clone(),
        );
        if let Some(names) = self.allowed_policies {
            submitter = submitter.allow_policies(names);
        }
        let sweeper = Sweeper::new(
            queue.clone(),
            store.clone(),
            logs.clone(),
            self.job_ttl.unwrap_or(DEFAULT_JOB_TTL),
        );
        let api = Arc::new(ApiState {
            submitter,
            store: store.clone(),
            logs: logs.clone(),
            metrics: metrics.clone(),
            token: self.token,
        });
        let mut config = self.worker_config.unwrap_or_default();
        config.concurrency = self.workers;
        let worker = if self.workers == 0 {
            None
        } else {
            let solver = solver(
                self.sandboxes,
                self.generator,
                store,
                &work_dir,
                self.setup_progress,
            )
            .await?;
            let parts = WorkerParts {
                queue,
                solver: Arc::new(solver),
                fetcher,
                policies,
                logs,
                metrics,
            };
            Some(Worker::new(parts, config))
        };
        Ok(Host {
            api,
            worker,
            sweeper,
        })
    }
}

/// The solver over the given parts, each missing one made as the builder documents.
async fn solver(
    sandboxes: Option<Sandboxes>,
    generator: Option<DynGenerator>,
    store: DynStore,
    work_dir: &Path,
    progress: Option<SetupProgress>,
) -> Result<Solver, HostError> {
    let sandboxes = match sandboxes {
        Some(sandboxes) => sandboxes,
        None => default_sandboxes(progress).await?,
    };
    let generator = match generator {
        Some(generator) => generator,
        None => generator_from_env(GeneratorKind::Auto, |name| std::env::var(name).ok())?,
    };
    Ok(Solver::new(generator, sandboxes, store, work_dir))
}

async fn default_sandboxes(progress: Option<SetupProgress>) -> Result<Sandboxes, HostError> {
    let wasm = tokio::task::spawn_blocking(move || {
        WasmSandbox::builder()
            .progress(move |event| match &progress {
                Some(SetupProgress(report)) => report(event),
                None => tracing::info!(%event, "runtime set-up"),
            })
            .build()
    })
    .await
    .map_err(|e| HostError::Internal(e.to_string()))??;
    Ok(Sandboxes {
        wasm: Some(Arc::new(wasm)),
        docker: crate::sandbox::DockerSandbox::connect_if_available().await,
    })
}

/// The service: a queue, the REST API over it, and (optionally) workers.
#[derive(Debug, Clone)]
pub struct Host {
    api: Arc<ApiState>,
    worker: Option<Worker>,
    sweeper: Sweeper,
}

impl Host {
    /// A builder with every default.
    pub fn builder() -> HostBuilder {
        HostBuilder::default()
    }

    /// Checks and enqueues a job, as `POST /run` does; `policy` defaults to `default`.
    ///
    /// # Errors
    /// See [`SubmitError`]: a bad source or policy enqueues nothing.
    pub async fn submit(&self, source: &str, policy: Option<&str>) -> Result<JobId, SubmitError> {
        self.submit_with(source, policy, LimitOverrides::default())
            .await
    }

    /// [`Host::submit`] with caps lowered for this job, as `/run?memory=..` does.
    ///
    /// # Errors
    /// See [`SubmitError`]: a raised cap enqueues nothing.
    pub async fn submit_with(
        &self,
        source: &str,
        policy: Option<&str>,
        overrides: LimitOverrides,
    ) -> Result<JobId, SubmitError> {
        let record = self
            .api
            .submitter
            .submit_with(source, policy, overrides)
            .await?;
        self.api.metrics.submitted();
        Ok(record.id)
    }

    /// The job's record, if the id is known.
    ///
    /// # Errors
    /// When the queue fails.
    pub async fn status(&self, id: &JobId) -> Result<Option<JobRecord>, QueueError> {
        self.api.submitter.queue().get(id).await
    }

    /// Cancels a job: a pending one at once, a running one within a heartbeat.
    ///
    /// # Errors
    /// When the queue fails.
    pub async fn cancel(&self, id: &JobId) -> Result<CancelOutcome, QueueError> {
        self.api.submitter.queue().cancel(id).await
    }

    /// The queue jobs go to.
    pub fn queue(&self) -> &DynQueue {
        self.api.submitter.queue()
    }

    /// The counters `/metrics` shows.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.api.metrics
    }

    /// The REST routes, to serve or to nest in a larger axum app.
    pub fn router(&self) -> axum::Router {
        api::router(self.api.clone())
    }

    /// Only `/metrics`, `/healthz` and `/readyz`, for a worker process to expose its counters
    /// and be probed.
    pub fn metrics_router(&self) -> axum::Router {
        api::metrics_router(self.api.clone())
    }

    /// The embedded worker, if [`HostBuilder::workers`] asked for one.
    pub fn worker(&self) -> Option<&Worker> {
        self.worker.as_ref()
    }

    /// Deletes the jobs that finished longer ago than [`HostBuilder::job_ttl`], with their
    /// submissions and logs, now; returns how many. The workers do this on their own
    /// ([`Host::run_workers`]); this is for a host without workers, or a test.
    ///
    /// # Errors
    /// When the queue fails.
    pub async fn sweep_expired(&self) -> Result<u64, QueueError> {
        self.sweeper.sweep().await
    }

    /// Runs the workers, and the sweeper that expires finished jobs, until `shutdown` is
    /// cancelled, then drains them; ends at once when the host has no workers (jobs finish
    /// only on workers, so a host without them has nothing to expire).
    pub fn run_workers(&self, shutdown: CancellationToken) -> impl Future<Output = ()> + use<> {
        let worker = self.worker.clone();
        let sweeper = self.sweeper.clone();
        async move {
            if let Some(worker) = worker {
                let sweeping = tokio::spawn(sweeper.run(shutdown.clone()));
                worker.run(shutdown).await;
                // The sweeper stops at the same signal; a sweep under way is left to finish.
                if let Err(error) = sweeping.await {
                    tracing::warn!(%error, "the sweeper ended abnormally");
                }
            }
        }
    }
}
