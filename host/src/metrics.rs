//! The numbers `/metrics` shows, in the Prometheus text format.
//!
//! A handful of counters and histograms do not justify a metrics framework: this is a small
//! registry of atomics that workers update and the API renders, together with the queue's
//! counts by state (read from the queue at scrape time, so they are cluster-wide). The
//! counters and histograms are per process: scrape every worker process for them
//! (`kaggle-solver worker --metrics-bind`), or the `serve` process in embedded mode.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::queue::QueueStats;
use crate::stage::Stage;

/// Upper bounds (seconds) of the duration histograms' buckets.
const BUCKETS: [f64; 12] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
];

/// Upper bounds of the candidates-per-job histogram's buckets.
const CANDIDATE_BUCKETS: [f64; 9] = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 20.0, 50.0];

/// Every stage, in the order the histogram lists them.
const STAGES: [Stage; 6] = [
    Stage::Fetch,
    Stage::Analyse,
    Stage::Generate,
    Stage::Run,
    Stage::Validate,
    Stage::Store,
];

/// A histogram over fixed buckets: counts per bucket (not cumulative), total count and sum.
#[derive(Debug)]
struct Histogram {
    bounds: &'static [f64],
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    /// The sum in millionths, so that it fits an atomic integer.
    micros: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            micros: AtomicU64::new(0),
        }
    }

    fn observe(&self, value: f64) {
        if let Some(bucket) = self.bounds.iter().position(|le| value <= *le) {
            self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        // Saturating float-to-int cast: a negative or huge value cannot wrap the sum.
        let micros = (value * 1e6).round() as u64;
        self.micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The `_bucket`, `_sum` and `_count` lines of `name`, each with `labels` (`k="v"` pairs,
    /// already formatted, or empty) before `le`.
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (le, bucket) in self.bounds.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}"
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = self.micros.load(Ordering::Relaxed) as f64 / 1e6;
        let braced = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braced} {sum}");
        let _ = writeln!(out, "{name}_count{braced} {count}");
    }
}

/// Where a competition's files came from, for the fetch counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchSource {
    /// A folder the caller named.
    Local,
    /// The local mirror.
    Mirror,
    /// The cache, filled earlier: a hit.
    Cache,
    /// Downloaded for this job: a miss.
    Download,
}

impl FetchSource {
    const ALL: [FetchSource; 4] = [Self::Local, Self::Mirror, Self::Cache, Self::Download];

    fn label(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Mirror => "mirror",
            Self::Cache => "cache",
            Self::Download => "download",
        }
    }
}

/// One reply of an LLM provider, as its `usage` field counted it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LlmCall {
    /// Tokens of the prompt (for Anthropic, cached prompt tokens included).
    pub input_tokens: u64,
    /// Tokens of the reply.
    pub output_tokens: u64,
}

#[derive(Debug, Default, Clone, Copy)]
struct LlmTotals {
    calls: u64,
    input: u64,
    output: u64,
}

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
#[derive(Debug)]
pub struct Metrics {
    submitted: AtomicU64,
    rejected: AtomicU64,
    attempts_succeeded: AtomicU64,
    attempts_failed: AtomicU64,
    jobs: [AtomicU64; 6],
    sandbox: Histogram,
    stages: [Histogram; STAGES.len()],
    job_seconds: [Histogram; JobOutcome::ALL.len()],
    candidates: Histogram,
    fetches: [AtomicU64; FetchSource::ALL.len()],
    fetch_bytes: AtomicU64,
    /// By provider (`openai`, `anthropic`): names this crate gives, never a run's text.
    llm: Mutex<BTreeMap<String, LlmTotals>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            submitted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            attempts_succeeded: AtomicU64::new(0),
            attempts_failed: AtomicU64::new(0),
            jobs: Default::default(),
            sandbox: Histogram::new(&BUCKETS),
            stages: STAGES.map(|_| Histogram::new(&BUCKETS)),
            job_seconds: JobOutcome::ALL.map(|_| Histogram::new(&BUCKETS)),
            candidates: Histogram::new(&CANDIDATE_BUCKETS),
            fetches: Default::default(),
            fetch_bytes: AtomicU64::new(0),
            llm: Mutex::new(BTreeMap::new()),
        }
    }
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

    /// A job's run on this process ended with `outcome`, `elapsed` after it was claimed.
    pub fn job(&self, outcome: JobOutcome, elapsed: Duration) {
        let index = JobOutcome::ALL
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or(0);
        self.jobs[index].fetch_add(1, Ordering::Relaxed);
        self.job_seconds[index].observe(elapsed.as_secs_f64());
    }

    /// A sandbox run took `elapsed`.
    pub fn sandbox_run(&self, elapsed: Duration) {
        self.sandbox.observe(elapsed.as_secs_f64());
    }

    /// A stage of a job ended well after `elapsed`.
    pub fn stage(&self, stage: Stage, elapsed: Duration) {
        if let Some(index) = STAGES.iter().position(|s| *s == stage) {
            self.stages[index].observe(elapsed.as_secs_f64());
        }
    }

    /// A job's run on this process tried `count` candidates (attempts of generated code).
    pub fn candidates(&self, count: u32) {
        self.candidates.observe(f64::from(count));
    }

    /// A competition's files were ready, from `source`, after downloading `bytes`.
    pub fn fetched(&self, source: FetchSource, bytes: u64) {
        let index = FetchSource::ALL
            .iter()
            .position(|s| *s == source)
            .unwrap_or(0);
        self.fetches[index].fetch_add(1, Ordering::Relaxed);
        self.fetch_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// `provider` replied to a request for code.
    pub fn llm_call(&self, provider: &str, call: LlmCall) {
        let mut totals = self
            .llm
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = totals.entry(provider.to_owned()).or_default();
        entry.calls += 1;
        entry.input = entry.input.saturating_add(call.input_tokens);
        entry.output = entry.output.saturating_add(call.output_tokens);
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
        self.sandbox
            .render(&mut out, "ks_sandbox_duration_seconds", "");
        header(
            &mut out,
            "ks_stage_duration_seconds",
            "histogram",
            "Time of each stage of a job that ended well, by stage.",
        );
        for (stage, histogram) in STAGES.iter().zip(&self.stages) {
            let labels = format!("stage=\"{stage}\"");
            histogram.render(&mut out, "ks_stage_duration_seconds", &labels);
        }
        header(
            &mut out,
            "ks_job_duration_seconds",
            "histogram",
            "Time from claim to report of job runs on this process, by outcome.",
        );
        for (outcome, histogram) in JobOutcome::ALL.iter().zip(&self.job_seconds) {
            let labels = format!("outcome=\"{}\"", outcome.label());
            histogram.render(&mut out, "ks_job_duration_seconds", &labels);
        }
        header(
            &mut out,
            "ks_job_candidates",
            "histogram",
            "Candidates (attempts of generated code) tried per job run on this process.",
        );
        self.candidates.render(&mut out, "ks_job_candidates", "");
        header(
            &mut out,
            "ks_fetches_total",
            "counter",
            "Competitions made ready for a job, by where the files came from (cache = a hit).",
        );
        for (source, counter) in FetchSource::ALL.iter().zip(&self.fetches) {
            let _ = writeln!(
                out,
                "ks_fetches_total{{source=\"{}\"}} {}",
                source.label(),
                load(counter)
            );
        }
        header(
            &mut out,
            "ks_fetch_bytes_total",
            "counter",
            "Bytes of competition data downloaded by this process.",
        );
        let _ = writeln!(out, "ks_fetch_bytes_total {}", load(&self.fetch_bytes));
        let llm = self
            .llm
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        header(
            &mut out,
            "ks_llm_calls_total",
            "counter",
            "Replies of LLM providers to requests for code, by provider.",
        );
        for (provider, totals) in &llm {
            let _ = writeln!(
                out,
                "ks_llm_calls_total{{provider=\"{provider}\"}} {}",
                totals.calls
            );
        }
        header(
            &mut out,
            "ks_llm_tokens_total",
            "counter",
            "Tokens LLM providers counted in their replies' usage, by provider and direction.",
        );
        for (provider, totals) in &llm {
            for (kind, n) in [("input", totals.input), ("output", totals.output)] {
                let _ = writeln!(
                    out,
                    "ks_llm_tokens_total{{provider=\"{provider}\",kind=\"{kind}\"}} {n}"
                );
            }
        }
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
        metrics.job(JobOutcome::Lost, Duration::from_secs(2));
        metrics.stage(Stage::Generate, Duration::from_millis(300));
        metrics.candidates(3);
        metrics.fetched(FetchSource::Cache, 0);
        metrics.fetched(FetchSource::Download, 1234);
        let call = LlmCall {
            input_tokens: 100,
            output_tokens: 20,
        };
        metrics.llm_call("openai", call);
        metrics.llm_call("openai", call);
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
            "ks_stage_duration_seconds_bucket{stage=\"generate\",le=\"0.25\"} 0",
            "ks_stage_duration_seconds_bucket{stage=\"generate\",le=\"0.5\"} 1",
            "ks_stage_duration_seconds_count{stage=\"fetch\"} 0",
            "ks_stage_duration_seconds_sum{stage=\"generate\"} 0.3",
            "ks_job_duration_seconds_count{outcome=\"lost\"} 1",
            "ks_job_duration_seconds_bucket{outcome=\"lost\",le=\"1\"} 0",
            "ks_job_duration_seconds_bucket{outcome=\"lost\",le=\"2.5\"} 1",
            "ks_job_candidates_bucket{le=\"2\"} 0",
            "ks_job_candidates_bucket{le=\"3\"} 1",
            "ks_job_candidates_sum 3",
            "ks_fetches_total{source=\"cache\"} 1",
            "ks_fetches_total{source=\"download\"} 1",
            "ks_fetch_bytes_total 1234",
            "ks_llm_calls_total{provider=\"openai\"} 2",
            "ks_llm_tokens_total{provider=\"openai\",kind=\"input\"} 200",
            "ks_llm_tokens_total{provider=\"openai\",kind=\"output\"} 40",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        assert!(!metrics.render(None).contains("ks_queue_depth"));
    }
}
