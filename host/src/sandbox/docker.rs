//! The Docker backend behind the [`Sandbox`] trait: the hardened container of
//! `ks-sandbox-fallback`, fed the same harnessed program as the WASI guest and reporting the same
//! [`Outcome`].

use async_trait::async_trait;
use ks_sandbox_fallback::{DockerRunner, RunReport, RunSpec, Stop};

use super::{
    Backend, GuestError, LimitHit, Outcome, RunLimits, Sandbox, SandboxError, SandboxRequest,
};

/// Runs scripts in hardened Docker containers. Cheap to clone; runs may proceed concurrently.
#[derive(Debug, Clone)]
pub struct DockerSandbox {
    runner: DockerRunner,
}

impl DockerSandbox {
    /// Connects to the daemon (`DOCKER_HOST` honoured) and removes the containers that a crashed
    /// process on this host left behind.
    ///
    /// # Errors
    /// [`SandboxError::Unavailable`] when no daemon answers.
    pub async fn connect() -> Result<Self, SandboxError> {
        let runner = DockerRunner::connect()
            .await
            .map_err(|e| SandboxError::Unavailable {
                backend: Backend::Docker,
                reason: e.to_string(),
            })?;
        let reaped = runner.reap_orphans().await.map_err(SandboxError::Docker)?;
        if !reaped.is_empty() {
            tracing::warn!(count = reaped.len(), "removed orphaned sandbox containers");
        }
        Ok(Self { runner })
    }

    /// The Docker sandbox if a daemon answers, else `None` with the reason logged: hosts without
    /// Docker still run everything the WASI guest can.
    pub async fn connect_if_available() -> Option<super::DynSandbox> {
        match Self::connect().await {
            Ok(sandbox) => Some(std::sync::Arc::new(sandbox)),
            Err(e) => {
                tracing::info!(reason = %e, "the docker backend is off");
                None
            }
        }
    }

    /// Builds the pinned image if it is missing; returns whether it built it.
    ///
    /// # Errors
    /// When the build fails.
    pub async fn ensure_image(&self) -> Result<bool, SandboxError> {
        self.runner
            .ensure_pinned_image()
            .await
            .map_err(SandboxError::Docker)
    }

    /// The pinned image `runtime install --docker` builds.
    pub fn pinned_image() -> String {
        ks_sandbox_fallback::pinned_image()
    }
}

#[async_trait]
impl Sandbox for DockerSandbox {
    fn backend(&self) -> Backend {
        Backend::Docker
    }

    async fn run(&self, request: SandboxRequest) -> Result<Outcome, SandboxError> {
        let spec = RunSpec {
            image: request.docker.image.clone(),
            program: super::guest_program(&request)?,
            input: request.input.clone(),
            output: request.output.clone(),
            wall_time: request.limits.wall_time,
            memory_bytes: request.limits.memory_bytes,
            output_bytes: request.limits.output_bytes,
            disk_bytes: request.limits.disk_bytes,
            cpus: request.docker.cpus,
            pids: request.docker.pids,
            job: request.job.clone(),
        };
        let report = self
            .runner
            .run(&spec, &request.cancel)
            .await
            .map_err(SandboxError::Docker)?;
        let outcome = outcome(report, &request.output, request.limits);
        outcome.trace_end();
        Ok(outcome)
    }
}

fn outcome(report: RunReport, output: &std::path::Path, limits: RunLimits) -> Outcome {
    let output_cap = limits.output_bytes;
    let disk = report.tmp_bytes_seen.saturating_add(report.output_bytes) > limits.disk_bytes;
    let mut stderr = report.stderr.text();
    let removed: Vec<std::path::PathBuf> = report
        .removed_links
        .iter()
        .map(std::path::PathBuf::from)
        .collect();
    let removed = super::inside(output, &removed);
    for link in &removed {
        stderr.push_str(&format!(
            "kaggle-solver: deleted {link} from /output: links and special files are not \
             collected\n"
        ));
    }
    let truncated = report.stdout.truncated() || report.stderr.truncated();
    let limit = match report.stopped {
        Some(Stop::WallTime) => Some(LimitHit::WallTime),
        Some(Stop::Output) if disk => Some(LimitHit::Disk),
        Some(Stop::Output) => Some(LimitHit::Output),
        Some(Stop::Disk) => Some(LimitHit::Disk),
        Some(Stop::Cancelled) => None,
        None if report.oom_killed => Some(LimitHit::Memory),
        None if disk => Some(LimitHit::Disk),
        None if truncated || report.output_bytes > output_cap => Some(LimitHit::Output),
        None => None,
    };
    let trap = match (report.stopped, report.oom_killed) {
        (Some(Stop::WallTime), _) => Some("killed at the wall-time deadline".to_owned()),
        (Some(Stop::Output), _) => Some("killed: /output grew past the output cap".to_owned()),
        (Some(Stop::Disk), _) => Some(format!(
            "killed: /tmp and /output passed the disk cap of {} bytes",
            limits.disk_bytes
        )),
        (Some(Stop::Cancelled), _) => Some("killed: the run was cancelled".to_owned()),
        (None, true) => Some("killed by the kernel: out of memory".to_owned()),
        (None, false) => None,
    };
    Outcome {
        backend: Backend::Docker,
        exit_code: if report.oom_killed {
            None
        } else {
            report.exit_code
        },
        limit,
        fuel_used: None,
        peak_memory_bytes: None,
        wall_ms: u64::try_from(report.wall.as_millis()).unwrap_or(u64::MAX),
        error: GuestError::from_stderr(&stderr),
        stdout: report.stdout.text(),
        stderr,
        stdout_truncated: report.stdout.truncated(),
        stderr_truncated: report.stderr.truncated(),
        trap,
        cancelled: report.stopped == Some(Stop::Cancelled),
        removed_from_output: removed,
    }
}
