//! The service end to end: jobs submitted over HTTP, run by workers, on the real pipeline and
//! the real WASI sandbox (only the LLM is scripted, see `service/cluster.rs`).
//!
//! - Embedded: one process, in-memory queue, workers inside the [`Host`].
//! - Deployed: a real `redis-server`, `kaggle-solver serve --workers 0` and worker processes:
//!   the demo solved by the built-in baseline generator (the one job here that writes its
//!   own code, ~10 s); 50 concurrent submissions through the stress tool (50 completed,
//!   0 failed, 0 lost); a job
//!   that outlives its lease stays with its heartbeating worker; a SIGKILLed worker's job
//!   completes on the other worker, stored once; cancel reaches a running sandbox; SIGTERM
//!   drains; Redis SIGKILLed and restarted (AOF) mid-run: every accepted job completes.
//! - Races at a job's end: a worker whose lease lapsed changes nothing of the new holder's
//!   (`service/stale.rs`); a cancel that races the end always fails the job as cancelled
//!   (`service/cancel.rs`).
//! - Clean-up (`service/cleanup.rs`): a finished job keeps its submission and logs only; a
//!   SIGKILLed worker's folder is swept by the next worker to start.

mod cancel;
mod cleanup;
pub(crate) mod cluster;
mod inproc;
mod stale;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
pub(crate) use cluster::{Cluster, PENGUINS, QUICK, binary, repo, slow};
use kaggle_solver::host::Host;
use kaggle_solver::pipeline::fetch::{FetchConfig, Fetcher, LocalPolicy};
use kaggle_solver::pipeline::generate::{
    GenerateError, GeneratedCode, GenerationRequest, Generator,
};
use kaggle_solver::pipeline::solve::Sandboxes;
use kaggle_solver::policies::PolicyDir;
use kaggle_solver::queue::{JobQueue, QueueStats};
use kaggle_solver::worker::WorkerConfig;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::support::wasm_sandbox;

/// Writes [`QUICK`] for every request.
#[derive(Debug)]
struct Quick;

#[async_trait]
impl Generator for Quick {
    fn name(&self) -> String {
        "quick".into()
    }

    async fn generate(&self, _: &GenerationRequest<'_>) -> Result<GeneratedCode, GenerateError> {
        Ok(GeneratedCode {
            code: QUICK.to_owned(),
            generator: self.name(),
            llm: None,
        })
    }
}

async fn body_json(response: axum::response::Response) -> Result<Value> {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 22).await?;
    Ok(serde_json::from_slice(&bytes)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_host_runs_jobs_in_process() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mirror = repo().join("examples/competitions");
    let mut fetch = FetchConfig::new(dir.path().join("cache"));
    fetch.competitions_dir = Some(mirror.clone());
    fetch.local_policy = LocalPolicy::UnderRoot(mirror);
    let host = Host::builder()
        .policies(PolicyDir::new(repo().join("policies")))
        .fetcher(Arc::new(Fetcher::new(fetch)))
        .sandboxes(Sandboxes {
            wasm: Some(Arc::new(wasm_sandbox())),
            docker: None,
        })
        .generator(Arc::new(Quick))
        .data_dir(dir.path())
        .workers(2)
        .worker_config(WorkerConfig::with_lease(Duration::from_secs(5)))
        .build()
        .await?;
    let shutdown = CancellationToken::new();
    let workers = tokio::spawn(host.run_workers(shutdown.clone()));
    let router = host.router();
    let mut ids = Vec::new();
    for source in [PENGUINS, "penguins", PENGUINS] {
        let uri = format!("/run?url={source}&policy=small");
        let response = router
            .clone()
            .oneshot(Request::post(uri).body(Body::empty())?)
            .await?;
        ensure!(response.status() == StatusCode::ACCEPTED);
        ids.push(
            body_json(response).await?["job_id"]
                .as_str()
                .context("id")?
                .to_owned(),
        );
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    for id in &ids {
        let status = loop {
            let request = Request::get(format!("/status/{id}")).body(Body::empty())?;
            let status = body_json(router.clone().oneshot(request).await?).await?;
            if status["status"] == "completed" || status["status"] == "failed" {
                break status;
            }
            ensure!(Instant::now() < deadline, "{id} never ended: {status}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        ensure!(status["status"] == "completed", "{status}");
        ensure!(
            status["source"] == "local" && status["validation_score"] == 0.44,
            "{status}"
        );
        ensure!(
            status["attempt"] == 1 && status["max_attempts"] == 2,
            "{status}"
        );
        let request = Request::get(format!("/jobs/{id}/submission")).body(Body::empty())?;
        let response = router.clone().oneshot(request).await?;
        ensure!(response.status() == StatusCode::OK);
        let csv = axum::body::to_bytes(response.into_body(), 1 << 20).await?;
        ensure!(csv.starts_with(b"id,species\n"), "{csv:?}");
        let request = Request::get(format!("/jobs/{id}/logs")).body(Body::empty())?;
        let logs = body_json(router.clone().oneshot(request).await?).await?;
        ensure!(logs["attempts"][0]["code"] == QUICK, "{logs}");
        ensure!(logs["attempts"][0]["backend"] == "wasm", "{logs}");
        ensure!(
            logs["attempts"][0]["stdout_tail"] == "validation accuracy: 0.44\n",
            "{logs}"
        );
        let events: Vec<&str> = logs["events"]
            .as_array()
            .context("events")?
            .iter()
            .filter_map(|e| e["message"].as_str())
            .collect();
        for event in ["started", "fetch", "analyse", "attempt 1: run", "completed"] {
            ensure!(events.contains(&event), "{event} in {events:?}");
        }
    }
    let request = Request::get("/metrics").body(Body::empty())?;
    let response = router.clone().oneshot(request).await?;
    let text = String::from_utf8(
        axum::body::to_bytes(response.into_body(), 1 << 20)
            .await?
            .to_vec(),
    )?;
    ensure!(
        text.contains("ks_attempts_total{outcome=\"succeeded\"} 3"),
        "{text}"
    );
    ensure!(
        text.contains("ks_sandbox_duration_seconds_count 3"),
        "{text}"
    );
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), workers).await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_submissions_complete_on_two_worker_processes() -> Result<()> {
    let cluster = Cluster::start(2, "5s", QUICK).await?;
    let output = tokio::process::Command::new(binary())
        .args([
            "stress",
            "--url",
            &cluster.base,
            "--clients",
            "50",
            "--jobs",
            "50",
        ])
        .args(["--competition", PENGUINS, "--policy", "quick"])
        .args(["--timeout", "4m", "--poll", "100ms"])
        .env_remove("KS_API_TOKEN")
        .output()
        .await?;
    let line = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(line.trim())
        .with_context(|| format!("stress printed {line:?}\n{}", cluster.logs()))?;
    eprintln!("stress: {report}");
    for (key, want) in [
        ("submitted", 50),
        ("completed", 50),
        ("failed", 0),
        ("lost", 0),
    ] {
        ensure!(report[key] == want, "{key}: {report}\n{}", cluster.logs());
    }
    ensure!(report["submit_errors"] == 0, "{report}");
    ensure!(
        output.status.success(),
        "stress exit status {}",
        output.status
    );
    let stats = cluster.queue.stats().await?;
    ensure!(
        stats
            == QueueStats {
                pending: 0,
                processing: 0,
                completed: 50,
                failed: 0
            },
        "{stats:?}"
    );
    let stored = std::fs::read_dir(cluster.submissions())?.count();
    ensure!(stored == 50, "{stored} submissions stored");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_process_solves_the_demo_with_the_baseline() -> Result<()> {
    let mut cluster = Cluster::start(0, "10s", QUICK).await?;
    cluster
        .add_worker_with(&["--generator", "baseline"])
        .await?;
    let id = cluster.submit().await?;
    let done = cluster
        .wait_for(&id, Duration::from_secs(240), |s| {
            s["status"] == "completed" || s["status"] == "failed"
        })
        .await?;
    ensure!(done["status"] == "completed", "{done}\n{}", cluster.logs());
    let score = done["validation_score"]
        .as_f64()
        .context("a validation score")?;
    ensure!(score > 0.8, "the baseline scores {score} on the demo");
    let csv = cluster
        .http
        .get(format!("{}/jobs/{id}/submission", cluster.base))
        .send()
        .await?;
    ensure!(csv.status() == 200);
    ensure!(
        csv.headers()["content-type"]
            .to_str()?
            .starts_with("text/csv")
    );
    ensure!(csv.text().await?.starts_with("id,species\n"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_outliving_its_lease_stays_with_its_worker() -> Result<()> {
    let cluster = Cluster::start(2, "2s", &slow(6)).await?;
    let id = cluster.submit().await?;
    let done = cluster
        .wait_for(&id, Duration::from_secs(90), |s| {
            s["status"] != "pending" && s["status"] != "processing"
        })
        .await?;
    ensure!(done["status"] == "completed", "{done}\n{}", cluster.logs());
    let logs: Value = cluster
        .http
        .get(format!("{}/jobs/{id}/logs", cluster.base))
        .send()
        .await?
        .json()
        .await?;
    let starts = logs["events"]
        .as_array()
        .context("events")?
        .iter()
        .filter(|e| e["message"] == "started")
        .count();
    ensure!(starts == 1, "handed to another worker: {logs}");
    ensure!(cluster.record(&id).await?.infra_retries == 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_workers_job_completes_on_the_other_once() -> Result<()> {
    let mut cluster = Cluster::start(2, "3s", &slow(4)).await?;
    let id = cluster.submit().await?;
    cluster
        .wait_for(&id, Duration::from_secs(60), |s| s["stage"] == "run")
        .await?;
    let record = cluster.record(&id).await?;
    let holder = cluster
        .holder(&record)
        .context("a worker process holds the job")?;
    cluster.workers[holder].child.kill()?;
    cluster.workers[holder].child.wait()?;
    let done = cluster
        .wait_for(&id, Duration::from_secs(90), |s| {
            s["status"] != "pending" && s["status"] != "processing"
        })
        .await?;
    ensure!(done["status"] == "completed", "{done}\n{}", cluster.logs());
    let record = cluster.record(&id).await?;
    ensure!(record.infra_retries == 1, "{record:?}");
    let stored: Vec<_> = std::fs::read_dir(cluster.submissions())?
        .flatten()
        .collect();
    ensure!(
        stored.len() == 1 && stored[0].file_name() == id.as_str(),
        "{stored:?}"
    );
    ensure!(stored[0].path().join("submission.csv").is_file());
    let stats = cluster.queue.stats().await?;
    ensure!(stats.completed == 1 && stats.failed == 0, "{stats:?}");
    let logs: Value = cluster
        .http
        .get(format!("{}/jobs/{id}/logs", cluster.base))
        .send()
        .await?
        .json()
        .await?;
    let starters: Vec<&str> = logs["events"]
        .as_array()
        .context("events")?
        .iter()
        .filter(|e| e["message"] == "started")
        .filter_map(|e| e["worker"].as_str())
        .collect();
    ensure!(starters.len() == 2 && starters[0] != starters[1], "{logs}");
    ensure!(
        logs["attempts"].as_array().is_some_and(|a| a.len() == 1),
        "{logs}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_running_sandbox_and_sigterm_drains() -> Result<()> {
    let mut cluster = Cluster::start(1, "3s", &slow(120)).await?;
    let id = cluster.submit().await?;
    cluster
        .wait_for(&id, Duration::from_secs(60), |s| s["stage"] == "run")
        .await?;
    let asked = Instant::now();
    let response = cluster
        .http
        .delete(format!("{}/jobs/{id}", cluster.base))
        .send()
        .await?;
    ensure!(response.status() == 202, "{}", response.status());
    let done = cluster
        .wait_for(&id, Duration::from_secs(30), |s| s["status"] == "failed")
        .await?;
    ensure!(done["message"] == "cancelled", "{done}");
    ensure!(
        asked.elapsed() < Duration::from_secs(10),
        "took {:?}",
        asked.elapsed()
    );

    // The worker is free again; SIGTERM lets its running job finish and claims nothing new.
    cluster.script.set(&slow(3));
    let running = cluster.submit().await?;
    cluster
        .wait_for(&running, Duration::from_secs(60), |s| s["stage"] == "run")
        .await?;
    cluster.workers[0].signal("TERM")?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let waiting = cluster.submit().await?;
    let exited_cleanly = cluster.workers[0].wait_exit(Duration::from_secs(60))?;
    ensure!(
        exited_cleanly,
        "the worker exits 0 after draining\n{}",
        cluster.logs()
    );
    ensure!(cluster.status(&running).await?["status"] == "completed");
    ensure!(cluster.status(&waiting).await?["status"] == "pending");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_mid_run_loses_no_accepted_job() -> Result<()> {
    let mut cluster = Cluster::start(2, "3s", &slow(3)).await?;
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(cluster.submit().await?);
    }
    cluster
        .wait_for(&ids[0], Duration::from_secs(60), |s| s["stage"] == "run")
        .await?;
    cluster.redis.kill();
    // While Redis is down the API says so, and accepts nothing it could lose.
    let refused = cluster
        .http
        .post(format!("{}/run", cluster.base))
        .query(&[("url", PENGUINS), ("policy", "quick")])
        .send()
        .await?;
    ensure!(
        refused.status() == StatusCode::SERVICE_UNAVAILABLE,
        "submit with Redis down: {}",
        refused.status()
    );
    // Sandboxes finish while Redis is away; their results must wait for it, not vanish.
    tokio::time::sleep(Duration::from_secs(4)).await;
    cluster.redis.restart();
    for id in &ids {
        let done = cluster
            .wait_for(id, Duration::from_secs(180), |s| {
                s["status"] == "completed" || s["status"] == "failed"
            })
            .await?;
        ensure!(done["status"] == "completed", "{done}\n{}", cluster.logs());
    }
    // The test's own connection heals on its next use after the restart.
    let stats = match cluster.queue.stats().await {
        Ok(stats) => stats,
        Err(_) => cluster.queue.stats().await?,
    };
    ensure!(
        stats
            == QueueStats {
                pending: 0,
                processing: 0,
                completed: 8,
                failed: 0
            },
        "{stats:?}"
    );
    let stored = std::fs::read_dir(cluster.submissions())?.count();
    ensure!(stored == 8, "{stored} submissions stored");
    Ok(())
}
