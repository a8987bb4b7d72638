//! Watching the service work, as an operator and a user do: a real `kaggle-solver serve` with
//! its embedded worker solves the demo (the code from a fake OpenAI-compatible server, run in
//! the real WASI sandbox), and then
//! - its JSON log lines (`--log-format json`) parse one by one, and the job's fetch, generation
//!   and sandbox lines all carry the job's id (and the stage and attempt) in their spans;
//! - `/metrics` shows the job's stage durations, the LLM call and its tokens, the fetch, the
//!   candidates tried and the job's duration by outcome;
//! - the command-line client (`submit`, `status`, `wait`, `download`) drives it, with and
//!   without a token, and says why when it cannot;
//! - `solve` off a terminal prints plain progress lines, no escape codes.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;
use tempfile::TempDir;

use crate::llm::fake::{INPUT_TOKENS, KEY, MODEL, OUTPUT_TOKENS};
use crate::service::cluster::{PENGUINS, QUICK, ScriptServer, binary, repo};

/// A `serve` process with one embedded worker and an in-memory queue, killed on drop.
struct Served {
    child: Child,
    base: String,
    dir: TempDir,
    _script: ScriptServer,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    /// Starts `serve` with `token` (if any), the code of `script` for every job, JSON logs
    /// at info level into `serve.log` in its folder.
    async fn start(script: &str, token: Option<&str>) -> Result<Self> {
        tokio::task::spawn_blocking(crate::support::wasm_sandbox).await?;
        let script = ScriptServer::start(script).await?;
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join("policies"))?;
        std::fs::write(
            dir.path().join("policies/quick.toml"),
            "[limits]\nwall-time = \"2m\"\n[attempts]\nmax = 1\n[sandbox]\nbackends = [\"wasm\"]\n\
             [search]\ncandidates = 1\n",
        )?;
        let log = std::fs::File::create(dir.path().join("serve.log"))?;
        let mut command = Command::new(binary());
        command
            .args(["serve", "--bind", "127.0.0.1:0", "--workers", "1"])
            .args(["--log-format", "json"])
            .current_dir(repo())
            .env("KS_DATA_DIR", dir.path().join("data"))
            .env("KS_POLICY_DIR", dir.path().join("policies"))
            .env("KS_API_POLICIES", "quick")
            .env("KS_COMPETITIONS_DIR", repo().join("examples/competitions"))
            .env("OPENAI_BASE_URL", format!("http://{}/v1", script.addr))
            .env("OPENAI_API_KEY", KEY)
            .env("KS_MODEL", MODEL)
            .env("KS_GENERATOR", "openai")
            .env("KS_LOG", "kaggle_solver=info")
            .env_remove("KS_REDIS_URL")
            .env_remove("KS_BIND")
            .env_remove("KS_LOG_FORMAT")
            .env_remove("KS_API_TOKEN")
            .env_remove("ANTHROPIC_API_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        if let Some(token) = token {
            command.env("KS_API_TOKEN", token);
        }
        let mut child = command.spawn().context("spawning serve")?;
        let stdout = child.stdout.take().context("stdout")?;
        let read = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).map(|_| line)
        });
        let line = match tokio::time::timeout(Duration::from_secs(120), read).await {
            Ok(line) => line??,
            Err(_) => {
                let _ = child.kill();
                bail!("serve printed nothing within 2 minutes");
            }
        };
        let first: Value =
            serde_json::from_str(&line).with_context(|| format!("serve's first line {line:?}"))?;
        let listening = first["listening"].as_str().context("listening")?;
        Ok(Self {
            child,
            base: format!("http://{listening}"),
            dir,
            _script: script,
        })
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    /// `kaggle-solver ARGS --server BASE`, with `token` as `KS_API_TOKEN`.
    async fn client(&self, args: &[&str], token: Option<&str>) -> Result<Output> {
        let mut command = tokio::process::Command::new(binary());
        command
            .args(args)
            .args(["--server", &self.base])
            .current_dir(self.dir.path())
            .env_remove("KS_API_TOKEN")
            .env_remove("KS_SERVER")
            .stdin(Stdio::null());
        if let Some(token) = token {
            command.env("KS_API_TOKEN", token);
        }
        let output = tokio::time::timeout(Duration::from_secs(180), command.output())
            .await
            .context("the client hung")??;
        Ok(output)
    }

    async fn submit(&self, token: Option<&str>) -> Result<String> {
        let output = self
            .client(&["submit", PENGUINS, "--policy", "quick"], token)
            .await?;
        ensure!(output.status.success(), "submit: {}", text(&output.stderr));
        let json: Value = serde_json::from_slice(&output.stdout)
            .with_context(|| format!("submit's stdout: {}", text(&output.stdout)))?;
        Ok(json["job_id"].as_str().context("job_id")?.to_owned())
    }

    async fn metrics(&self) -> Result<String> {
        Ok(reqwest::get(format!("{}/metrics", self.base))
            .await?
            .text()
            .await?)
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The value of the sample `line` (name and labels exactly as rendered) in `metrics`.
fn sample(metrics: &str, line: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(line)?.strip_prefix(' ')?.parse().ok())
}

/// Whether the JSON log line `entry` was logged inside the span of job `id`, and in which
/// stage (the innermost `stage` span around it), if any.
fn job_stage<'a>(entry: &'a Value, id: &str) -> Option<Option<&'a str>> {
    let spans = entry["spans"].as_array()?;
    spans
        .iter()
        .find(|s| s["name"] == "job" && s["job"] == id)?;
    Some(
        spans
            .iter()
            .rev()
            .find(|s| s["name"] == "stage")
            .and_then(|s| s["stage"].as_str()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_is_traced_by_its_id_and_counted_in_the_metrics() -> Result<()> {
    let served = Served::start(QUICK, None).await?;
    let id = served.submit(None).await?;
    let output = served.client(&["wait", &id], None).await?;
    ensure!(
        output.status.success(),
        "wait: {}\n{}",
        text(&output.stderr),
        served.log()
    );
    // A finished job has no search to stop: the client says why and exits non-zero.
    let stopped = served.client(&["stop", &id], None).await?;
    ensure!(
        !stopped.status.success() && text(&stopped.stderr).contains("already ended"),
        "stop: {}",
        text(&stopped.stderr)
    );

    // The worker counts the job's end just after the queue records it.
    let deadline = Instant::now() + Duration::from_secs(20);
    let metrics = loop {
        let metrics = served.metrics().await?;
        let done = "ks_job_duration_seconds_count{outcome=\"completed\"}";
        if sample(&metrics, done) == Some(1.0) || Instant::now() > deadline {
            break metrics;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for (line, want) in [
        ("ks_llm_calls_total{provider=\"openai\"}", 1.0),
        (
            "ks_llm_tokens_total{provider=\"openai\",kind=\"input\"}",
            INPUT_TOKENS as f64,
        ),
        (
            "ks_llm_tokens_total{provider=\"openai\",kind=\"output\"}",
            OUTPUT_TOKENS as f64,
        ),
        ("ks_fetches_total{source=\"mirror\"}", 1.0),
        ("ks_fetches_total{source=\"download\"}", 0.0),
        ("ks_fetch_bytes_total", 0.0),
        ("ks_stage_duration_seconds_count{stage=\"fetch\"}", 1.0),
        ("ks_stage_duration_seconds_count{stage=\"generate\"}", 1.0),
        ("ks_stage_duration_seconds_count{stage=\"run\"}", 1.0),
        ("ks_stage_duration_seconds_count{stage=\"store\"}", 1.0),
        ("ks_job_candidates_count", 1.0),
        ("ks_job_candidates_sum", 1.0),
        ("ks_job_duration_seconds_count{outcome=\"completed\"}", 1.0),
        ("ks_job_duration_seconds_count{outcome=\"failed\"}", 0.0),
    ] {
        ensure!(
            sample(&metrics, line) == Some(want),
            "{line} is not {want} in\n{metrics}"
        );
    }
    let run_seconds = sample(&metrics, "ks_stage_duration_seconds_sum{stage=\"run\"}");
    ensure!(run_seconds.is_some_and(|s| s > 0.0), "{metrics}");

    let log = served.log();
    let mut seen = Vec::new();
    for line in log.lines() {
        let entry: Value = serde_json::from_str(line)
            .with_context(|| format!("a log line that is not JSON: {line:?}"))?;
        ensure!(
            entry["level"].is_string() && entry["target"].is_string(),
            "{entry}"
        );
        if let Some(stage) = job_stage(&entry, &id) {
            let target = entry["target"].as_str().unwrap_or_default().to_owned();
            let message = entry["fields"]["message"].as_str().unwrap_or_default();
            seen.push((target, stage.map(str::to_owned), message.to_owned()));
        }
    }
    let has = |target: &str, stage: &str, message: &str| {
        seen.iter()
            .any(|(t, s, m)| t.starts_with(target) && s.as_deref() == Some(stage) && m == message)
    };
    ensure!(
        has(
            "kaggle_solver::pipeline::fetch",
            "fetch",
            "competition ready"
        ),
        "no fetch line of job {id}: {seen:?}"
    );
    ensure!(
        has(
            "kaggle_solver::pipeline::solve",
            "generate",
            "code generated"
        ),
        "no generation line of job {id}: {seen:?}"
    );
    ensure!(
        has("kaggle_solver::sandbox", "run", "sandbox run ended"),
        "no sandbox line of job {id}: {seen:?}"
    );
    // The attempt is in the stage's span, the slug in the job's.
    let run = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["fields"]["message"] == "sandbox run ended")
        .context("the sandbox line")?;
    ensure!(run["span"]["attempt"] == 1, "{run}");
    ensure!(run["spans"][0]["slug"] == "penguins", "{run}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_submits_waits_and_downloads_with_a_token() -> Result<()> {
    let token = "s3cret-token-for-the-client";
    let served = Served::start(QUICK, Some(token)).await?;

    // Without the token, or with a wrong one: refused, said why, the token never shown.
    for given in [None, Some("wrong-token-value")] {
        let output = served
            .client(&["submit", PENGUINS, "--policy", "quick"], given)
            .await?;
        let stderr = text(&output.stderr);
        ensure!(output.status.code() == Some(1), "{given:?}: {stderr}");
        ensure!(
            output.stdout.is_empty(),
            "{given:?}: {}",
            text(&output.stdout)
        );
        ensure!(
            stderr.contains("the server answered 401") && stderr.contains("KS_API_TOKEN"),
            "{stderr}"
        );
        ensure!(!stderr.contains("wrong-token-value") && !stderr.contains(token));
    }

    let id = served.submit(Some(token)).await?;
    let output = served.client(&["wait", &id], Some(token)).await?;
    let stderr = text(&output.stderr);
    ensure!(output.status.success(), "wait: {stderr}\n{}", served.log());
    let status: Value = serde_json::from_slice(&output.stdout)?;
    ensure!(status["status"] == "completed", "{status}");
    ensure!(!stderr.contains('\u{1b}'), "{stderr:?}");

    let output = served.client(&["status", &id], Some(token)).await?;
    ensure!(output.status.success(), "{}", text(&output.stderr));
    let status: Value = serde_json::from_slice(&output.stdout)?;
    ensure!(
        status["status"] == "completed" && status["attempt"] == 1,
        "{status}"
    );

    let out = served.dir.path().join("got/submission.csv");
    std::fs::create_dir_all(out.parent().context("a folder")?)?;
    let output = served
        .client(
            &["download", &id, "--out", out.to_str().context("utf-8")?],
            Some(token),
        )
        .await?;
    ensure!(output.status.success(), "{}", text(&output.stderr));
    let csv = std::fs::read_to_string(&out)?;
    ensure!(
        csv.starts_with("id,species\n") && csv.contains(",Adelie\n"),
        "{csv}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(out.parent().context("a folder")?)?
        .flatten()
        .map(|e| e.file_name())
        .collect();
    ensure!(leftovers.len() == 1, "{leftovers:?}");

    // Not a job id, or no such job: exit 1, said why, nothing written.
    let output = served
        .client(&["status", "../metrics"], Some(token))
        .await?;
    ensure!(output.status.code() == Some(1));
    ensure!(
        text(&output.stderr).contains("is not a job id"),
        "{}",
        text(&output.stderr)
    );
    let missing = "00000000-0000-4000-8000-000000000000";
    let absent = served.dir.path().join("absent.csv");
    let output = served
        .client(
            &[
                "download",
                missing,
                "--out",
                absent.to_str().context("utf-8")?,
            ],
            Some(token),
        )
        .await?;
    ensure!(output.status.code() == Some(1));
    ensure!(
        text(&output.stderr).contains("the server answered 404"),
        "{}",
        text(&output.stderr)
    );
    ensure!(!absent.exists() && !served.dir.path().join(".absent.csv.partial").exists());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_exits_non_zero_when_the_job_fails_and_a_dead_server_is_named() -> Result<()> {
    let served = Served::start("raise SystemExit(3)\n", None).await?;
    let id = served.submit(None).await?;
    let started = Instant::now();
    let output = served.client(&["wait", &id], None).await?;
    let stderr = text(&output.stderr);
    ensure!(
        output.status.code() == Some(1),
        "{stderr}\n{}",
        served.log()
    );
    let status: Value = serde_json::from_slice(&output.stdout)?;
    ensure!(status["status"] == "failed", "{status}");
    ensure!(stderr.contains(&format!("job {id} failed: ")), "{stderr}");
    ensure!(started.elapsed() < Duration::from_secs(120));

    let base = served.base.clone();
    drop(served);
    let output = tokio::process::Command::new(binary())
        .args(["status", &id, "--server", &base])
        .env("KS_API_TOKEN", "never-printed")
        .output()
        .await?;
    let stderr = text(&output.stderr);
    ensure!(output.status.code() == Some(1), "{stderr}");
    ensure!(stderr.contains("cannot reach the server at"), "{stderr}");
    ensure!(!stderr.contains("never-printed"), "{stderr}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn solve_off_a_terminal_prints_plain_lines() -> Result<()> {
    tokio::task::spawn_blocking(crate::support::wasm_sandbox).await?;
    let script = ScriptServer::start(QUICK).await?;
    let out = tempfile::tempdir()?;
    let base = format!("http://{}/v1", script.addr);
    let mut command = crate::support::solve_with_llm(&base, out.path());
    command.env_remove("KS_LOG").env_remove("KS_LOG_FORMAT");
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    let stderr = text(&output.stderr);
    ensure!(output.status.success(), "{stderr}");
    ensure!(
        !stderr.contains('\u{1b}') && !stderr.contains('\r'),
        "{stderr:?}"
    );
    for want in [
        "kaggle-solver: fetch ...",
        "kaggle-solver:   fetch done in ",
        "kaggle-solver: attempt 1: generate ...",
        &format!(
            "kaggle-solver: attempt 1: openai replied ({INPUT_TOKENS} tokens in, {OUTPUT_TOKENS} out)"
        ),
        "kaggle-solver: attempt 1: run ...",
        "kaggle-solver:   attempt 1: run done in ",
        "kaggle-solver:   attempt 1: validate done in ",
        "kaggle-solver: wrote ",
    ] {
        ensure!(stderr.contains(want), "{want:?} missing in\n{stderr}");
    }
    ensure!(Path::new(&out.path().join("submission.csv")).is_file());
    Ok(())
}

/// A server with an event stream: `wait` prints its events, stops at the terminal one (the
/// stream stays open after it), and asks `/status` once for the verdict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_follows_the_event_stream_when_the_server_has_one() -> Result<()> {
    use axum::body::Body;
    use axum::http::HeaderMap;
    use axum::routing::get;
    use futures_util::StreamExt as _;
    use std::sync::{Arc, Mutex};

    /// Each request: the route, its `authorization` and its `accept`.
    type Asked = Arc<Mutex<Vec<(String, String, String)>>>;
    const ID: &str = "0b6f2c5e-3f1a-4c2e-9d2b-8c1e7f0a9b31";
    let asked: Asked = Arc::default();
    let note = |asked: &Asked, path: &str, h: &HeaderMap| {
        let header = |name: &str| {
            h.get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        asked.lock().expect("lock").push((
            path.to_owned(),
            header("authorization"),
            header("accept"),
        ));
    };
    let (on_events, on_status) = (asked.clone(), asked.clone());
    let app = axum::Router::new()
        .route(
            "/jobs/{id}/events",
            get(move |headers: HeaderMap| async move {
                note(&on_events, "events", &headers);
                let chunks = [
                    ": connected\n\n",
                    "id: 1\nevent: stage\ndata: {\"stage\":\"fetch\"}\n\n",
                    "id: 2\r\nevent: stage\r\ndata: {\"stage\":\"run\",",
                    "\"attempt\":1}\r\n\r\n",
                    "id: 3\nevent: terminal\ndata: {\"status\":\"completed\"}\n\n",
                ];
                let stream = futures_util::stream::iter(
                    chunks.map(|c| Ok::<_, std::io::Error>(bytes_of(c))),
                )
                .chain(futures_util::stream::pending());
                (
                    [("content-type", "text/event-stream")],
                    Body::from_stream(stream),
                )
            }),
        )
        .route(
            "/status/{id}",
            get(move |headers: HeaderMap| async move {
                note(&on_status, "status", &headers);
                axum::Json(serde_json::json!({
                    "status": "completed", "source": "local", "path": "/s.csv",
                    "message": "completed", "attempt": 1
                }))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut command = tokio::process::Command::new(binary());
    command
        .args(["wait", ID, "--server", &base])
        .env("KS_API_TOKEN", "tok-123")
        .stdin(Stdio::null());
    let output = tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .context("wait did not stop at the terminal event")??;
    let stderr = text(&output.stderr);
    ensure!(output.status.success(), "{stderr}");
    for want in [
        "kaggle-solver: [1] stage: {\"stage\":\"fetch\"}\n",
        "kaggle-solver: [2] stage: {\"stage\":\"run\",\"attempt\":1}\n",
        "kaggle-solver: [3] terminal: {\"status\":\"completed\"}\n",
    ] {
        ensure!(stderr.contains(want), "{want:?} in {stderr}");
    }
    let status: Value = serde_json::from_slice(&output.stdout)?;
    ensure!(status["status"] == "completed", "{status}");
    let asked = asked.lock().expect("lock").clone();
    ensure!(asked.len() == 2, "{asked:?}");
    ensure!(
        asked[0].0 == "events" && asked[0].2 == "text/event-stream",
        "{asked:?}"
    );
    ensure!(asked[1].0 == "status", "{asked:?}");
    ensure!(asked.iter().all(|a| a.1 == "Bearer tok-123"), "{asked:?}");
    Ok(())
}

fn bytes_of(text: &'static str) -> axum::body::Bytes {
    axum::body::Bytes::from_static(text.as_bytes())
}

/// Under a pseudo-terminal (util-linux `script`), `solve` draws spinners with the elapsed time
/// and still ends each step with its plain line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn solve_on_a_terminal_shows_spinners() -> Result<()> {
    tokio::task::spawn_blocking(crate::support::wasm_sandbox).await?;
    let script = ScriptServer::start(&crate::service::cluster::slow(2)).await?;
    let out = tempfile::tempdir()?;
    let shell = format!(
        "'{}' solve examples/competitions/penguins --generator openai --out '{}'",
        binary().display(),
        out.path().display()
    );
    let mut command = tokio::process::Command::new("script");
    command
        .args(["-qec", &shell, "/dev/null"])
        .current_dir(repo())
        .env("TERM", "xterm")
        .env("OPENAI_BASE_URL", format!("http://{}/v1", script.addr))
        .env("OPENAI_API_KEY", KEY)
        .env("KS_MODEL", MODEL)
        .env_remove("KS_LOG")
        .env_remove("KS_LOG_FORMAT")
        .stdin(Stdio::null());
    let output = tokio::time::timeout(Duration::from_secs(180), command.output())
        .await
        .context("solve under script hung")?
        .context("util-linux `script` runs (scripts/test installs it)")?;
    let shown = text(&output.stdout);
    ensure!(output.status.success(), "{shown}\n{}", text(&output.stderr));
    // A redrawn spinner line: cleared with ESC[2K, then the step and its elapsed seconds.
    ensure!(shown.contains("\u{1b}[2K"), "{shown:?}");
    ensure!(shown.contains(" attempt 1: run (0s)"), "{shown:?}");
    ensure!(shown.contains(" attempt 1: run (1s)"), "{shown:?}");
    ensure!(
        shown.contains("kaggle-solver:   attempt 1: run done in "),
        "{shown:?}"
    );
    ensure!(out.path().join("submission.csv").is_file());
    Ok(())
}
