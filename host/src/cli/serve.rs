//! `kaggle-solver serve`: the REST API, with workers embedded in the same process (or none,
//! when separate `kaggle-solver worker` processes do the work). Without `--redis` the queue
//! lives in this process's memory, which is fine for one machine and a demo but loses every
//! job when the process stops.
//!
//! Also holds the options `serve` and `worker` share ([`ServiceArgs`]) and their plumbing:
//! opening the queue, building the [`Host`], and turning SIGTERM / Ctrl-C into a drain.
//!
//! `serve` refuses to listen beyond this machine without a token: anyone who reaches the API
//! can make it run code (in the sandbox) and cancel other people's jobs, so opening it to a
//! network is something to ask for (`--insecure-no-auth`), not a default one typo away.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use ks_policies::PolicyDir;
use tokio_util::sync::CancellationToken;

use super::CliError;
use crate::api::{ApiToken, DEFAULT_API_POLICIES};
use crate::host::{Host, HostBuilder};
use crate::logs::RedisLogs;
use crate::pipeline::generate::{GeneratorKind, generator_from_env};
use crate::queue::{DynQueue, QueueConfig, RedisQueue};
use crate::worker::WorkerConfig;

#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// The address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, env = "KS_BIND", default_value = "127.0.0.1:8000")]
    bind: String,
    /// The Redis URL of the durable queue; without it jobs are kept in memory only.
    #[arg(long, env = "KS_REDIS_URL")]
    redis: Option<String>,
    /// Jobs run at once by workers inside this process (0: API only, for separate workers).
    #[arg(long, env = "KS_WORKERS", default_value_t = 1)]
    workers: usize,
    /// Require `Authorization: Bearer <token>` on every route but /healthz.
    #[arg(long, env = "KS_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
    /// Listen on a non-loopback address without a token (when a proxy or firewall in front
    /// controls who reaches the API). Without it, that is refused.
    #[arg(long)]
    insecure_no_auth: bool,
    /// The policy presets requests may pick, comma-separated; a request naming none gets the
    /// first.
    #[arg(
        long,
        env = "KS_API_POLICIES",
        value_delimiter = ',',
        default_values_t = DEFAULT_API_POLICIES.map(str::to_owned)
    )]
    api_policies: Vec<String>,
    #[command(flatten)]
    service: ServiceArgs,
}

/// Options shared by `serve` and `worker`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ServiceArgs {
    /// Where policy presets (`NAME.toml`) are found.
    #[arg(long, env = "KS_POLICY_DIR", default_value = "policies")]
    policy_dir: PathBuf,
    /// The folder holding `work/` (attempts; logs without Redis) and, without --store,
    /// `submissions/` (default: $KS_HOME). With --redis and an s3:// store, each machine keeps
    /// its own.
    #[arg(long, env = "KS_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Where submissions are stored: `s3://BUCKET/PREFIX` (reached with the standard
    /// AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION and
    /// AWS_ALLOW_HTTP variables), `file://DIR`, or by default `<data-dir>/submissions`.
    #[arg(long, env = "KS_STORE")]
    store: Option<String>,
    /// The prefix of the queue's Redis keys.
    #[arg(long, env = "KS_REDIS_PREFIX", default_value = QueueConfig::DEFAULT_PREFIX)]
    redis_prefix: String,
    /// How long a worker's claim on a job lasts without a heartbeat (heartbeats every third).
    #[arg(long, env = "KS_LEASE", default_value = "30s", value_parser = humantime::parse_duration)]
    lease: Duration,
    /// How long a stopping worker waits for running jobs before handing them back.
    #[arg(long, env = "KS_GRACE", default_value = "60s", value_parser = humantime::parse_duration)]
    grace: Duration,
    /// Which generator writes the code.
    #[arg(long, value_enum, env = "KS_GENERATOR", default_value = "auto")]
    generator: GeneratorKind,
    /// The most jobs that may wait; a submission beyond it is answered 429 with Retry-After.
    #[arg(long, env = "KS_MAX_QUEUED", default_value_t = QueueConfig::DEFAULT_MAX_QUEUED)]
    max_queued: u64,
    /// How long finished jobs (record, submission, log) are kept before workers delete them.
    #[arg(
        long,
        env = "KS_JOB_TTL",
        default_value = "7days",
        value_parser = humantime::parse_duration
    )]
    job_ttl: Duration,
}

impl ServiceArgs {
    /// Opens the Redis queue at `url`, or an in-memory one.
    pub(crate) async fn queue(&self, redis: Option<&str>) -> Result<DynQueue, CliError> {
        let config = QueueConfig {
            max_queued: self.max_queued,
            ..QueueConfig::with_prefix(&self.redis_prefix)
        };
        Ok(match redis {
            Some(url) => Arc::new(RedisQueue::connect(url, config).await?),
            None => Arc::new(crate::queue::MemoryQueue::new(config)),
        })
    }

    /// A host builder with these options, the queue at `redis` (or in memory) and `workers`
    /// embedded job slots. With Redis, the job logs are kept there too; a store given is
    /// checked to answer first.
    pub(crate) async fn builder(
        &self,
        redis: Option<&str>,
        workers: usize,
    ) -> Result<HostBuilder, CliError> {
        let queue = self.queue(redis).await?;
        let mut builder = Host::builder()
            .policies(PolicyDir::new(&self.policy_dir))
            .queue(queue)
            .workers(workers)
            .job_ttl(self.job_ttl)
            .worker_config(WorkerConfig {
                grace: self.grace,
                ..WorkerConfig::with_lease(self.lease)
            });
        if let Some(dir) = &self.data_dir {
            builder = builder.data_dir(dir);
        }
        if let Some(url) = &self.store {
            builder = builder.store(super::store::open_store(url).await?);
        }
        if let Some(url) = redis {
            // The sweeper deletes a log with its record; the keys' own expiry is a backstop.
            let keep = self
                .job_ttl
                .saturating_add(Duration::from_secs(24 * 60 * 60));
            let logs = RedisLogs::connect(
                url,
                &self.redis_prefix,
                keep,
                QueueConfig::default().timeout,
            )
            .await?;
            builder = builder.logs(Arc::new(logs));
        }
        if workers > 0 {
            let generator = generator_from_env(self.generator, |name| std::env::var(name).ok())?;
            super::progress(format!("generator: {}", generator.name()));
            builder = builder.generator(generator);
        }
        Ok(builder)
    }
}

impl ServeArgs {
    pub(crate) async fn run(self) -> Result<ExitCode, CliError> {
        let token = self.api_token.as_deref().and_then(ApiToken::new);
        if token.is_none() && !is_loopback(&self.bind) {
            if !self.insecure_no_auth {
                return Err(CliError::Unprotected { bind: self.bind });
            }
            super::progress(format!(
                "warning: serving {} without a token (--insecure-no-auth): whoever reaches it \
                 can submit and cancel jobs",
                self.bind
            ));
        }
        if self.redis.is_none() {
            tracing::warn!(
                "no --redis: jobs are kept in this process's memory and are lost when it stops"
            );
            super::progress(
                "warning: no --redis, so jobs are not durable: they are lost when this process stops",
            );
        }
        let host = self
            .service
            .builder(self.redis.as_deref(), self.workers)
            .await?
            .api_token(self.api_token.as_deref())
            .allowed_policies(&self.api_policies)
            .build()
            .await?;
        let listener = tokio::net::TcpListener::bind(&self.bind)
            .await
            .map_err(|e| CliError::io(format!("listening on {}", self.bind), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| CliError::io("reading the bound address", e))?;
        super::print_json(&serde_json::json!({ "listening": addr.to_string() }))?;
        super::progress(format!(
            "listening on http://{addr} with {} embedded worker slot(s)",
            self.workers
        ));
        let shutdown = shutdown_on_signal()?;
        let workers = tokio::spawn(host.run_workers(shutdown.clone()));
        // Small JSON answers: send them at once rather than waiting on Nagle's algorithm.
        let listener = listener.tap_io(|tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "TCP_NODELAY not set");
            }
        });
        axum::serve(listener, host.router())
            .with_graceful_shutdown(shutdown.clone().cancelled_owned())
            .await
            .map_err(|e| CliError::io("serving HTTP", e))?;
        workers
            .await
            .map_err(|e| CliError::Internal(e.to_string()))?;
        super::progress("stopped");
        Ok(ExitCode::SUCCESS)
    }
}

/// Whether `bind` (`host:port`) listens on this machine only: an address of 127.0.0.0/8 or
/// `::1` (an IPv4-mapped one included), or `localhost`. Any other name may resolve to a public
/// address, so it counts as reachable from elsewhere.
fn is_loopback(bind: &str) -> bool {
    let loopback = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    };
    if let Ok(addr) = bind.parse::<SocketAddr>() {
        return loopback(addr.ip());
    }
    let host = bind.rsplit_once(':').map_or(bind, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(ip) => loopback(ip),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

/// A token cancelled on the first SIGTERM or Ctrl-C.
pub(crate) fn shutdown_on_signal() -> Result<CancellationToken, CliError> {
    use tokio::signal::unix::{SignalKind, signal};
    let shutdown = CancellationToken::new();
    let mut term =
        signal(SignalKind::terminate()).map_err(|e| CliError::io("listening for SIGTERM", e))?;
    let token = shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            Ok(()) = tokio::signal::ctrl_c() => {}
        }
        super::progress("stopping: claiming nothing new, draining running jobs");
        token.cancel();
    });
    Ok(shutdown)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Serve {
        #[command(flatten)]
        args: ServeArgs,
    }

    #[test]
    fn the_defaults_are_the_librarys() {
        let serve = Serve::try_parse_from(["serve"]).expect("parses");
        assert_eq!(serve.args.service.job_ttl, crate::sweep::DEFAULT_JOB_TTL);
        assert_eq!(
            serve.args.service.max_queued,
            QueueConfig::DEFAULT_MAX_QUEUED
        );
        assert_eq!(serve.args.api_policies, DEFAULT_API_POLICIES);
        assert!(!serve.args.insecure_no_auth);
        let serve =
            Serve::try_parse_from(["serve", "--api-policies", "small,large"]).expect("parses");
        assert_eq!(serve.args.api_policies, ["small", "large"]);
    }

    #[test]
    fn only_loopback_addresses_and_localhost_count_as_local() {
        for bind in [
            "127.0.0.1:8000",
            "127.0.0.1:0",
            "127.8.9.10:80",
            "[::1]:8000",
            "[::ffff:127.0.0.1]:8000",
            "localhost:8000",
            "LocalHost:1",
        ] {
            assert!(is_loopback(bind), "{bind}");
        }
        for bind in [
            "0.0.0.0:8000",
            "[::]:8000",
            "10.0.0.5:8000",
            "192.168.1.2:80",
            "[2001:db8::1]:8000",
            "[::ffff:10.0.0.1]:8000",
            "example.com:8000",
            "localhost.example.com:8000",
            "128.0.0.1:8000",
        ] {
            assert!(!is_loopback(bind), "{bind}");
        }
    }
}
