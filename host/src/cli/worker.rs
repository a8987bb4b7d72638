//! `kaggle-solver worker`: a worker process on the shared Redis queue. Start as many as the
//! machines have cores for; each claims up to `--concurrency` jobs at once, heartbeats them,
//! reaps the leases of dead workers, and on SIGTERM drains (claims nothing new, finishes or
//! hands back what it holds).

use std::process::ExitCode;

use super::CliError;
use super::serve::{ServiceArgs, shutdown_on_signal};

#[derive(Debug, clap::Args)]
pub(crate) struct WorkerArgs {
    /// The Redis URL of the queue, e.g. redis://127.0.0.1:6379.
    #[arg(long, env = "KS_REDIS_URL")]
    redis: String,
    /// Jobs run at once by this process.
    #[arg(long, env = "KS_CONCURRENCY", default_value_t = 1)]
    concurrency: usize,
    /// Also serve GET /metrics, /healthz and /readyz of this process on this address.
    #[arg(long, env = "KS_METRICS_BIND")]
    metrics_bind: Option<String>,
    #[command(flatten)]
    service: ServiceArgs,
}

impl WorkerArgs {
    pub(crate) async fn run(self) -> Result<ExitCode, CliError> {
        if self.concurrency == 0 {
            return Err(CliError::Internal(
                "--concurrency must be at least 1".to_owned(),
            ));
        }
        let host = self
            .service
            .builder(Some(&self.redis), self.concurrency)
            .await?
            .build()
            .await?;
        let shutdown = shutdown_on_signal()?;
        if let Some(bind) = &self.metrics_bind {
            let listener = tokio::net::TcpListener::bind(bind)
                .await
                .map_err(|e| CliError::io(format!("listening on {bind}"), e))?;
            let app = host.metrics_router();
            let stop = shutdown.clone();
            tokio::spawn(async move {
                let served = axum::serve(listener, app)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await;
                if let Err(error) = served {
                    tracing::error!(%error, "the metrics listener failed");
                }
            });
        }
        let id = host.worker().map(|w| w.id().0.clone()).unwrap_or_default();
        super::print_json(&serde_json::json!({ "worker": id }))?;
        super::progress(format!(
            "worker {id} running up to {} job(s) at once",
            self.concurrency
        ));
        host.run_workers(shutdown).await;
        super::progress("stopped");
        Ok(ExitCode::SUCCESS)
    }
}
