//! `kaggle-solver stress`: the original design's `stresstest.py`, in Rust. Submits `--jobs`
//! jobs from `--clients` concurrent clients, polls each to a terminal state, and prints ONE
//! JSON line: how many were submitted, completed, failed and lost, submit latency p50/p99,
//! submits per second and end-to-end jobs per second. `--submit-only` skips the polling, to
//! measure the API alone (with no workers running).

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Mutex;

use super::CliError;

#[derive(Debug, clap::Args)]
pub(crate) struct StressArgs {
    /// The service's base URL (with any path prefix it is mounted under).
    #[arg(long, env = "KS_STRESS_URL", default_value = "http://127.0.0.1:8000")]
    url: String,
    /// Concurrent clients.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Jobs to submit in all.
    #[arg(long, default_value_t = 50)]
    jobs: usize,
    /// The competition every job asks for.
    #[arg(long, default_value = "https://www.kaggle.com/competitions/penguins")]
    competition: String,
    /// The policy preset every job asks for (default: the server's default).
    #[arg(long)]
    policy: Option<String>,
    /// The server's bearer token.
    #[arg(long, env = "KS_API_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Only submit: do not wait for the jobs to end.
    #[arg(long)]
    submit_only: bool,
    /// Stop waiting after this long; jobs not ended by then count as lost.
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// The pause between two polls of the same job.
    #[arg(long, default_value = "250ms", value_parser = humantime::parse_duration)]
    poll: Duration,
}

/// The one line printed.
#[derive(Debug, Serialize)]
struct Report {
    clients: usize,
    jobs: usize,
    submitted: usize,
    submit_errors: usize,
    completed: usize,
    failed: usize,
    lost: usize,
    submit_p50_ms: f64,
    submit_p99_ms: f64,
    submit_max_ms: f64,
    submits_per_s: f64,
    jobs_per_s: Option<f64>,
    elapsed_s: f64,
}

#[derive(Debug, Default)]
struct Tally {
    latencies: Vec<Duration>,
    ids: Vec<String>,
    errors: usize,
}

impl StressArgs {
    pub(crate) async fn run(self) -> Result<ExitCode, CliError> {
        let clients = self.clients.max(1);
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(clients)
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| CliError::Internal(format!("building the HTTP client: {e}")))?;
        let base = self.url.trim_end_matches('/').to_owned();
        let started = Instant::now();
        let tally = self.submit_all(&http, &base, clients).await;
        let submit_elapsed = started.elapsed();
        let (completed, failed, lost, last_end) = if self.submit_only {
            (0, 0, 0, None)
        } else {
            self.wait_all(&http, &base, clients, &tally.ids, started)
                .await
        };
        let mut latencies = tally.latencies;
        latencies.sort();
        let ms = |d: Option<&Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1e3);
        let ended = completed + failed;
        let report = Report {
            clients,
            jobs: self.jobs,
            submitted: tally.ids.len(),
            submit_errors: tally.errors,
            completed,
            failed,
            lost,
            submit_p50_ms: ms(percentile(&latencies, 0.50)),
            submit_p99_ms: ms(percentile(&latencies, 0.99)),
            submit_max_ms: ms(latencies.last()),
            submits_per_s: tally.ids.len() as f64 / submit_elapsed.as_secs_f64().max(1e-9),
            jobs_per_s: last_end.map(|end| ended as f64 / end.as_secs_f64().max(1e-9)),
            elapsed_s: started.elapsed().as_secs_f64(),
        };
        super::print_json(&report)?;
        let clean = report.submit_errors == 0
            && report.lost == 0
            && (self.submit_only || report.completed == report.submitted);
        Ok(if clean {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }

    fn request(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    async fn submit_all(&self, http: &reqwest::Client, base: &str, clients: usize) -> Tally {
        let next = Arc::new(AtomicUsize::new(0));
        let tally = Arc::new(Mutex::new(Tally::default()));
        let mut query = vec![("url", self.competition.clone())];
        if let Some(policy) = &self.policy {
            query.push(("policy", policy.clone()));
        }
        let run = format!("{base}/run");
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..clients {
            let (next, tally, jobs) = (next.clone(), tally.clone(), self.jobs);
            let request = self.request(http.post(&run).query(&query));
            tasks.spawn(async move {
                let (mut latencies, mut ids, mut errors) = (Vec::new(), Vec::new(), 0);
                while next.fetch_add(1, Ordering::Relaxed) < jobs {
                    let Some(request) = request.try_clone() else {
                        errors += 1;
                        continue;
                    };
                    let sent = Instant::now();
                    match submit(request).await {
                        Ok(id) => {
                            latencies.push(sent.elapsed());
                            ids.push(id);
                        }
                        Err(error) => {
                            if errors == 0 {
                                eprintln!("kaggle-solver: submit failed: {error}");
                            }
                            errors += 1;
                        }
                    }
                }
                let mut tally = tally.lock().await;
                tally.latencies.extend(latencies);
                tally.ids.extend(ids);
                tally.errors += errors;
            });
        }
        while tasks.join_next().await.is_some() {}
        let mut tally = tally.lock().await;
        std::mem::take(&mut *tally)
    }

    /// Polls every job until it ends or the timeout: (completed, failed, lost, when the last
    /// one ended, from `started`).
    async fn wait_all(
        &self,
        http: &reqwest::Client,
        base: &str,
        clients: usize,
        ids: &[String],
        started: Instant,
    ) -> (usize, usize, usize, Option<Duration>) {
        let deadline = started + self.timeout;
        let mut tasks = tokio::task::JoinSet::new();
        for chunk in 0..clients {
            let mine: Vec<String> = ids.iter().skip(chunk).step_by(clients).cloned().collect();
            let requests: Vec<_> = mine
                .iter()
                .map(|id| self.request(http.get(format!("{base}/status/{id}"))))
                .collect();
            let poll = self.poll;
            tasks.spawn(async move {
                let (mut completed, mut failed, mut gone, mut last_end) = (0, 0, 0, None);
                let mut pending: Vec<_> = requests.into_iter().collect();
                while !pending.is_empty() && Instant::now() < deadline {
                    let mut still = Vec::with_capacity(pending.len());
                    for request in pending {
                        match poll_once(&request).await {
                            Some(status) if status == "completed" || status == "failed" => {
                                if status == "completed" {
                                    completed += 1;
                                } else {
                                    failed += 1;
                                }
                                last_end = Some(started.elapsed());
                            }
                            Some(status) if status == "lost" => gone += 1,
                            _ => still.push(request),
                        }
                    }
                    pending = still;
                    if !pending.is_empty() {
                        tokio::time::sleep(poll).await;
                    }
                }
                (completed, failed, gone + pending.len(), last_end)
            });
        }
        let (mut completed, mut failed, mut lost, mut last_end) = (0, 0, 0, None);
        while let Some(Ok((c, f, l, end))) = tasks.join_next().await {
            completed += c;
            failed += f;
            lost += l;
            last_end = last_end.max(end);
        }
        (completed, failed, lost, last_end)
    }
}

async fn submit(request: reqwest::RequestBuilder) -> Result<String, String> {
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.map_err(|e| e.to_string())?;
    match body.get("job_id").and_then(|v| v.as_str()) {
        Some(id) if status == reqwest::StatusCode::ACCEPTED => Ok(id.to_owned()),
        _ => Err(format!("{status}: {body}")),
    }
}

/// The job's `status` (`lost` for an unknown job), or `None` when the poll failed (it is
/// tried again).
async fn poll_once(request: &reqwest::RequestBuilder) -> Option<String> {
    let response = request.try_clone()?.send().await.ok()?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Some("lost".to_owned());
    }
    if !response.status().is_success() {
        return None;
    }
    let body: serde_json::Value = response.json().await.ok()?;
    body.get("status")?.as_str().map(str::to_owned)
}

/// The `q`-quantile of sorted `values` (nearest rank).
fn percentile(values: &[Duration], q: f64) -> Option<&Duration> {
    if values.is_empty() {
        return None;
    }
    let rank = (q * values.len() as f64).ceil() as usize;
    values.get(rank.clamp(1, values.len()) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<_> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&values, 0.5), Some(&Duration::from_millis(50)));
        assert_eq!(percentile(&values, 0.99), Some(&Duration::from_millis(99)));
        assert_eq!(
            percentile(&values[..1], 0.99),
            Some(&Duration::from_millis(1))
        );
        assert_eq!(percentile(&[], 0.5), None);
    }
}
