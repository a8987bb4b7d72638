//! The service's guard rails as an operator meets them on the command line: `serve` refuses to
//! listen beyond this machine without a token unless told `--insecure-no-auth` (and listens
//! when it has one, or stays on loopback), and `dead list|requeue` read and requeue a Redis
//! queue's dead list, printing JSON.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use kaggle_solver::queue::{
    DynQueue, Failure, JobStatus, NewJob, QueueConfig, RedisQueue, WorkerId,
};
use serde_json::Value;
use tempfile::TempDir;

use super::kaggle_solver;
use crate::redis_server::RedisServer;

/// `kaggle-solver serve --workers 0` with `args`, in-memory, its data in `dir`, no token
/// unless `token`.
fn serve(dir: &TempDir, args: &[&str], token: Option<&str>) -> Command {
    let mut command = kaggle_solver();
    command
        .args(["serve", "--workers", "0"])
        .args(args)
        .env("KS_DATA_DIR", dir.path())
        .env("KS_HOME", dir.path())
        .env_remove("KS_API_TOKEN")
        .env_remove("KS_REDIS_URL")
        .env_remove("KS_BIND")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(token) = token {
        command.env("KS_API_TOKEN", token);
    }
    command
}

/// Waits for a started `serve` to print where it listens, then stops it; the address.
fn listens(mut child: Child) -> Result<String> {
    let stdout = child.stdout.take().context("stdout")?;
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = send.send(line);
    });
    let line = receive.recv_timeout(Duration::from_secs(60));
    let _ = child.kill();
    let output = child.wait_with_output()?;
    let Ok(line) = line else {
        bail!(
            "serve printed nothing within a minute; stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let json: Value = serde_json::from_str(&line).with_context(|| {
        format!(
            "serve's first line {line:?}; stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    Ok(json["listening"].as_str().context("listening")?.to_owned())
}

#[test]
fn serve_refuses_a_public_address_without_a_token() -> Result<()> {
    let dir = tempfile::tempdir()?;
    for bind in ["0.0.0.0:0", "[::]:0"] {
        let output: Output = serve(&dir, &["--bind", bind], None).output()?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        ensure!(
            output.status.code() == Some(1),
            "{bind}: {:?} {stderr}",
            output.status
        );
        ensure!(output.stdout.is_empty(), "{bind}: it listened");
        let want = format!("error: refusing to serve on {bind} without KS_API_TOKEN");
        ensure!(stderr.contains(&want), "{bind}: {stderr}");
        ensure!(stderr.contains("--insecure-no-auth"), "{stderr}");
    }
    // A blank token is no token.
    let output = serve(&dir, &["--bind", "0.0.0.0:0"], Some("  ")).output()?;
    ensure!(output.status.code() == Some(1));
    Ok(())
}

#[test]
fn serve_listens_publicly_with_a_token_or_when_told_and_on_loopback_without() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let with_token = serve(&dir, &["--bind", "0.0.0.0:0"], Some("s3cret")).spawn()?;
    ensure!(listens(with_token)?.starts_with("0.0.0.0:"));
    let told = serve(&dir, &["--bind", "0.0.0.0:0", "--insecure-no-auth"], None).spawn()?;
    ensure!(listens(told)?.starts_with("0.0.0.0:"));
    let local = serve(&dir, &["--bind", "127.0.0.1:0"], None).spawn()?;
    ensure!(listens(local)?.starts_with("127.0.0.1:"));
    let named = serve(&dir, &["--bind", "localhost:0"], None).spawn()?;
    let addr = listens(named)?;
    ensure!(
        addr.starts_with("127.0.0.1:") || addr.starts_with("[::1]:"),
        "{addr}"
    );
    Ok(())
}

/// `kaggle-solver dead ARGS --redis URL`: exit code and stdout as JSON (or stderr).
fn dead(redis: &str, args: &[String]) -> Result<(Option<i32>, Value, String)> {
    let output = kaggle_solver()
        .arg("dead")
        .args(args)
        .args(["--redis", redis])
        .env_remove("KS_REDIS_PREFIX")
        .output()?;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let json = if output.stdout.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&output.stdout).with_context(|| {
            format!(
                "stdout is JSON: {}",
                String::from_utf8_lossy(&output.stdout)
            )
        })?
    };
    Ok((output.status.code(), json, stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_list_and_requeue_print_json() -> Result<()> {
    let redis = RedisServer::start();
    let config = QueueConfig {
        max_infra_retries: 0,
        ..QueueConfig::default()
    };
    let queue: DynQueue = Arc::new(RedisQueue::connect(&redis.url(), config).await?);
    let job = NewJob {
        source: "https://www.kaggle.com/competitions/titanic".into(),
        policy: "default".into(),
        overrides: Default::default(),
    };
    let id = queue.enqueue(job).await?.id;
    let worker = WorkerId("cli-test".into());
    ensure!(
        queue
            .claim(&worker, Duration::from_secs(60))
            .await?
            .is_some()
    );
    let retry = Failure::Retry {
        message: "the disk is full".into(),
        delay_ms: 0,
    };
    ensure!(queue.fail(&worker, &id, retry).await?);

    let url = redis.url();
    let run = |args: Vec<String>| {
        let url = url.clone();
        async move { tokio::task::spawn_blocking(move || dead(&url, &args)).await? }
    };
    let (code, json, stderr) = run(vec!["list".into()]).await?;
    ensure!(code == Some(0), "{stderr}");
    let listed = json["dead"].as_array().context("a list")?;
    ensure!(
        listed.len() == 1 && listed[0]["id"] == id.0.as_str(),
        "{json}"
    );
    ensure!(listed[0]["status"] == "failed", "{json}");
    ensure!(
        listed[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("the disk is full")),
        "{json}"
    );

    let (code, json, stderr) = run(vec!["requeue".into(), id.0.clone()]).await?;
    ensure!(code == Some(0), "{stderr}");
    ensure!(
        json["requeued"]["id"] == id.0.as_str() && json["requeued"]["status"] == "pending",
        "{json}"
    );
    let record = queue.get(&id).await?.context("the record")?;
    ensure!(record.status == JobStatus::Pending && record.infra_retries == 0);
    let (code, json, _) = run(vec!["list".into()]).await?;
    ensure!(
        code == Some(0) && json == serde_json::json!({ "dead": [] }),
        "{json}"
    );

    // Not on the list, or not a job: an error that says so, and nothing on stdout.
    let (code, json, stderr) = run(vec!["requeue".into(), id.0.clone()]).await?;
    ensure!(code == Some(1) && json.is_null(), "{json}");
    ensure!(
        stderr.contains(&format!("job {id} is not on the dead list: it is pending")),
        "{stderr}"
    );
    let unknown = kaggle_solver::queue::JobId::new();
    let (code, _, stderr) = run(vec!["requeue".into(), unknown.0.clone()]).await?;
    ensure!(code == Some(1), "{stderr}");
    ensure!(stderr.contains("there is no such job"), "{stderr}");
    let (code, _, stderr) = run(vec!["requeue".into(), "42".into()]).await?;
    ensure!(
        code == Some(1) && stderr.contains("not a job id"),
        "{stderr}"
    );
    ensure!(
        queue
            .claim(&worker, Duration::from_secs(60))
            .await?
            .map(|r| r.id)
            == Some(id)
    );
    Ok(())
}
