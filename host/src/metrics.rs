//! The numbers `/metrics` shows, in the Prometheus text format.
//!
//! A handful of counters and one histogram do not justify a metrics framework: this is a
//! small registry of atomics that workers update and the API renders, together with the
//! queue's counts by state (read from the queue at scrape time, so they are cluster-wide).
//! The counters and the histogram are per process: scrape every worker process for them
//! (`kaggle-solver worker --metrics-bind`), or the `serve` process in embedded mode.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::queue::QueueStats;

/// Upper bounds (seconds) of the sandbox-duration histogram's buckets.
const BUCKETS: [f64; 12] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
];

/// How a job's run on this process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    /// Completed with a submission.
    Completed,
    /// Failed for good (including exhausted attempts).
    Failed,
    /// Put back in line after an infrastructure failure.
    Retried,
    /// Stopped at the user's request.
    Cancelled,
    /// Handed back by a draining worker.
    Released,
    /// The lease was lost to another worker.
    Lost,
}

impl JobOutcome {
    const ALL: [JobOutcome; 6] = [
        Self::Completed,
        Self::Failed,
        Self::Retried,
        Self::Cancelled,
        Self::Released,
        Self::Lost,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Retried => "retried",
            Self::Cancelled => "cancelled",
            Self::Released => "released",
            Self::Lost => "lost",
        }
    }
}

/// The process's counters. Share one through an `Arc`.
#[derive(Debug, Default)]
pub struct Metrics {
    submitted: AtomicU64,
    rejected: AtomicU64,
    attempts_succeeded: AtomicU64,
    attempts_failed: AtomicU64,
    jobs: [AtomicU64; 6],
    sandbox_buckets: [AtomicU64; BUCKETS.len()],
    sandbox_count: AtomicU64,
    sandbox_micros: AtomicU64,
}

impl Metrics {
    /// A job was accepted by the API.
    pub fn submitted(&self) {
        self.submitted.fetch_add(1, Ordering::Relaxed);
    }

    /// A submission was refused (4xx).
    pub fn rejected(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// An attempt of generated code ended; `succeeded` if it produced a valid submission.
    pub fn attempt(&self, succeeded: bool) {
        let counter = if succeeded {
            &self.attempts_succeeded
        } else {
            &self.attempts_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A job's run on this process ended with `outcome`.
    pub fn job(&self, outcome: JobOutcome) {
        let index = JobOutcome::ALL
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or(0);
        self.jobs[index].fetch_add(1, Ordering::Relaxed);
    }

    /// A sandbox run took `elapsed`.
    pub fn sandbox_run(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Some(bucket) = BUCKETS.iter().position(|le| seconds <= *le) {
            self.sandbox_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
        self.sandbox_count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.sandbox_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The Prometheus text exposition, with the queue's counts when they could be read.
    pub fn render(&self, stats: Option<QueueStats>) -> String {
        let mut out = String::with_capacity(2048);
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        if let Some(stats) = stats {
            header(
                &mut out,
                "ks_queue_depth",
                "gauge",
                "Jobs waiting for a worker.",
            );
            let _ = writeln!(out, "ks_queue_depth {}", stats.pending);
            header(&mut out, "ks_jobs", "gauge", "Jobs in the queue by state.");
            for (state, n) in [
                ("pending", stats.pending),
                ("processing", stats.processing),
                ("completed", stats.completed),
                ("failed", stats.failed),
            ] {
                let _ = writeln!(out, "ks_jobs{{state=\"{state}\"}} {n}");
            }
        }
        header(
            &mut out,
            "ks_submissions_total",
            "counter",
            "Submissions to /run, by whether they were accepted.",
        );
        let _ = writeln!(
            out,
            "ks_submissions_total{{result=\"accepted\"}} {}",
            load(&self.submitted)
        );
        let _ = writeln!(
            out,
            "ks_submissions_total{{result=\"rejected\"}} {}",
            load(&self.rejected)
        );
        header(
            &mut out,
            "ks_attempts_total",
            "counter",
            "Attempts of generated code run by this process, by outcome.",
        );
        let _ = writeln!(
            out,
            "ks_attempts_total{{outcome=\"succeeded\"}} {}",
            load(&self.attempts_succeeded)
        );
        let _ = writeln!(
            out,
            "ks_attempts_total{{outcome=\"failed\"}} {}",
            load(&self.attempts_failed)
        );
        header(
            &mut out,
            "ks_worker_jobs_total",
            "counter",
            "Job runs ended on this process, by outcome.",
        );
        for (outcome, counter) in JobOutcome::ALL.iter().zip(&self.jobs) {
            let _ = writeln!(
                out,
                "ks_worker_jobs_total{{outcome=\"{}\"}} {}",
                outcome.label(),
                load(counter)
            );
        }
        header(
            &mut out,
            "ks_sandbox_duration_seconds",
            "histogram",
            "Wall time of sandbox runs on this process.",
        );
        let mut cumulative = 0;
        for (le, bucket) in BUCKETS.iter().zip(&self.sandbox_buckets) {
            cumulative += load(bucket);
            let _ = writeln!(
                out,
                "ks_sandbox_duration_seconds_bucket{{le=\"{le}\"}} {cumulative}"
            );
        }
        let count = load(&self.sandbox_count);
        let _ = writeln!(
            out,
            "ks_sandbox_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let sum = load(&self.sandbox_micros) as f64 / 1e6;
        let _ = writeln!(out, "ks_sandbox_duration_seconds_sum {sum}");
        let _ = writeln!(out, "ks_sandbox_duration_seconds_count {count}");
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_a_cumulative_histogram() {
        let metrics = Metrics::default();
        metrics.attempt(true);
        metrics.attempt(false);
        metrics.job(JobOutcome::Lost);
        metrics.sandbox_run(Duration::from_millis(80));
        metrics.sandbox_run(Duration::from_secs(3));
        metrics.sandbox_run(Duration::from_secs(4000));
        let text = metrics.render(Some(QueueStats {
            pending: 4,
            processing: 1,
            completed: 2,
            failed: 0,
        }));
        for line in [
            "ks_queue_depth 4",
            "ks_jobs{state=\"processing\"} 1",
            "ks_attempts_total{outcome=\"failed\"} 1",
            "ks_worker_jobs_total{outcome=\"lost\"} 1",
            "ks_sandbox_duration_seconds_bucket{le=\"0.05\"} 0",
            "ks_sandbox_duration_seconds_bucket{le=\"0.1\"} 1",
            "ks_sandbox_duration_seconds_bucket{le=\"5\"} 2",
            "ks_sandbox_duration_seconds_bucket{le=\"+Inf\"} 3",
            "ks_sandbox_duration_seconds_count 3",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        assert!(!metrics.render(None).contains("ks_queue_depth"));
    }
}
