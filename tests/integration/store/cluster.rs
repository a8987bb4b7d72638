//! A deployment whose processes share nothing but Redis and the object store: `serve` and
//! two `worker` processes, each with its own `--data-dir`, submissions in `s3s-fs`, logs in
//! Redis.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use serde_json::Value;

use crate::s3_server::{BUCKET, S3Server};
use crate::service::cluster::{Cluster, QUICK, Setup, slow};

fn setup(server: &S3Server, prefix: &str) -> Setup {
    let mut env = server.env();
    env.push(("KS_STORE".into(), format!("s3://{BUCKET}/{prefix}")));
    Setup {
        env,
        separate_data: true,
    }
}

/// Every file under `dir` (recursively) whose name is `name`.
fn files_named(dir: &std::path::Path, name: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.file_name().is_some_and(|n| n == name) {
                found.push(path);
            }
        }
    }
    found
}

/// What the API answers about a completed job: status, submission (with its length) and
/// logs, checked to be those of a job run elsewhere and stored in S3; the worker that ran it.
async fn check_completed(cluster: &Cluster, id: &str, prefix: &str) -> Result<String> {
    let status = cluster.status(id).await?;
    ensure!(status["status"] == "completed", "{status}");
    ensure!(status["source"] == "s3", "{status}");
    ensure!(
        status["path"] == format!("s3://{BUCKET}/{prefix}/{id}/submission.csv"),
        "{status}"
    );
    let response = cluster
        .http
        .get(format!("{}/jobs/{id}/submission", cluster.base))
        .send()
        .await?;
    ensure!(response.status() == 200, "{}", response.status());
    let length = response
        .headers()
        .get("content-length")
        .context("Content-Length")?
        .to_str()?
        .to_owned();
    let csv = response.bytes().await?;
    ensure!(length == csv.len().to_string(), "{length} vs {}", csv.len());
    let text = String::from_utf8_lossy(&csv);
    ensure!(
        text.starts_with("id,species\n") && text.lines().skip(1).all(|l| l.ends_with(",Adelie")),
        "{text}"
    );
    let logs: Value = cluster
        .http
        .get(format!("{}/jobs/{id}/logs", cluster.base))
        .send()
        .await?
        .json()
        .await?;
    let events: Vec<&str> = logs["events"]
        .as_array()
        .context("events")?
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    ensure!(
        events.first() == Some(&"started") && events.last() == Some(&"completed"),
        "{logs}"
    );
    let attempts = logs["attempts"].as_array().context("attempts")?;
    ensure!(
        attempts.len() == 1 && attempts[0]["code"] == QUICK && attempts[0]["exit_code"] == 0,
        "{logs}"
    );
    Ok(attempts[0]["worker"].as_str().context("worker")?.to_owned())
}

#[tokio::test]
async fn twenty_jobs_on_machines_sharing_only_redis_and_the_store() -> Result<()> {
    let server = S3Server::start();
    let cluster = Cluster::start_with(2, "10s", QUICK, setup(&server, "deploy")).await?;
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(cluster.submit().await?);
    }
    for id in &ids {
        cluster
            .wait_for(id, Duration::from_secs(240), |s| {
                s["status"] != "pending" && s["status"] != "processing"
            })
            .await?;
    }
    let mut by_worker = std::collections::BTreeMap::new();
    for id in &ids {
        let worker = check_completed(&cluster, id, "deploy").await?;
        let index = cluster
            .workers
            .iter()
            .position(|w| w.first_line["worker"].as_str() == Some(worker.as_str()));
        *by_worker.entry(index).or_insert(0) += 1;
    }
    // Both workers ran jobs, and nothing of a job was left on any machine's disk: the API's
    // data folder holds neither submissions nor logs, and neither do the workers'.
    ensure!(
        by_worker.len() == 2 && !by_worker.contains_key(&None),
        "{by_worker:?}\n{}",
        cluster.logs()
    );
    for name in ["api", "worker-0", "worker-1"] {
        let data = cluster.dir.path().join(format!("{name}-data"));
        let left: Vec<_> = ["submission.csv", "logs.json"]
            .iter()
            .flat_map(|file| files_named(&data, file))
            .collect();
        ensure!(left.is_empty(), "{name} kept {left:?}");
    }
    let stored = files_named(&server.root().join(BUCKET).join("deploy"), "submission.csv");
    ensure!(stored.len() == 20, "{stored:?}");
    Ok(())
}

#[tokio::test]
async fn the_store_going_away_mid_job_is_retried_and_the_job_completes() -> Result<()> {
    let mut server = S3Server::start();
    let cluster = Cluster::start_with(1, "10s", &slow(3), setup(&server, "outage")).await?;
    let id = cluster.submit().await?;
    cluster
        .wait_for(&id, Duration::from_secs(60), |s| s["stage"] == "run")
        .await?;
    // Down before the code ends: the store stage fails, and the worker retries the job.
    server.kill();
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let record = cluster.record(&id).await?;
        if record.infra_retries >= 1 {
            let message = record.message.clone().unwrap_or_default();
            ensure!(message.contains("object store"), "{record:?}");
            break;
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "no retry: {record:?}\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.restart();
    cluster
        .wait_for(&id, Duration::from_secs(180), |s| {
            s["status"] == "completed"
        })
        .await?;
    let logs: Value = cluster
        .http
        .get(format!("{}/jobs/{id}/logs", cluster.base))
        .send()
        .await?
        .json()
        .await?;
    ensure!(
        logs["events"]
            .as_array()
            .context("events")?
            .iter()
            .any(|e| e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("will retry"))),
        "{logs}"
    );
    let response = cluster
        .http
        .get(format!("{}/jobs/{id}/submission", cluster.base))
        .send()
        .await?;
    ensure!(response.status() == 200, "{}", response.status());
    Ok(())
}
