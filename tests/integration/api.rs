//! The REST API through its router (`tower::ServiceExt::oneshot`, no sockets) over the
//! in-memory queue: the bad-input table (each answer's status and `{error, detail}`, and that
//! nothing was enqueued), accepted submissions and the `StatusResponse` shape, auth on and
//! off, `/healthz`, `/metrics`, `/openapi.json`, cancel of a pending job, a completed job's
//! submission and logs, and a running job's cancel winning over its completion (driven by hand
//! through the queue, without a worker). The abuse controls (cross-site refusal, the queue cap,
//! the policy allow-list, lowered caps, expiry) are in `api/abuse.rs`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use kaggle_solver::host::{Host, HostBuilder};
use kaggle_solver::logs::{FileLogs, JobLogs, LogEvent};
use kaggle_solver::pipeline::fetch::{FetchConfig, Fetcher, LocalPolicy};
use kaggle_solver::policies::PolicyDir;
use kaggle_solver::queue::{Completion, JobId, JobResult, QueueStats, WorkerId};
use kaggle_solver::storage::{LocalStore, SubmissionStore};
use serde_json::Value;
use tempfile::TempDir;
use tower::ServiceExt;

mod abuse;
mod bad_input;

pub(crate) const PENGUINS: &str = "https://www.kaggle.com/competitions/penguins";

/// A host over an in-memory queue with no workers, a policy folder holding `quick` (which,
/// with `default`, requests may pick), and local folders allowed under `<tmp>/competitions`
/// only.
pub(crate) struct Api {
    pub(crate) host: Host,
    pub(crate) dir: TempDir,
}

impl Api {
    pub(crate) async fn new(token: Option<&str>) -> Result<Self> {
        Self::with(token, |builder| {
            builder.allowed_policies(["default", "quick"])
        })
        .await
    }

    /// [`Api::new`] with `adjust` applied to the host's builder (which offers the default
    /// allow-list until `adjust` says otherwise).
    pub(crate) async fn with(
        token: Option<&str>,
        adjust: impl FnOnce(HostBuilder) -> HostBuilder,
    ) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().join("competitions");
        std::fs::create_dir_all(root.join("penguins"))?;
        std::fs::create_dir_all(dir.path().join("outside"))?;
        std::fs::create_dir_all(dir.path().join("policies"))?;
        std::fs::write(
            dir.path().join("policies/quick.toml"),
            "[attempts]\nmax = 1\n[search]\ncandidates = 1\n",
        )?;
        let mut config = FetchConfig::new(dir.path().join("cache"));
        config.competitions_dir = Some(root.clone());
        config.local_policy = LocalPolicy::UnderRoot(root);
        let builder = Host::builder()
            .policies(PolicyDir::new(dir.path().join("policies")))
            .fetcher(Arc::new(Fetcher::new(config)))
            .data_dir(dir.path().join("data"))
            .api_token(token);
        let host = adjust(builder).build().await?;
        Ok(Self { host, dir })
    }

    pub(crate) fn path(&self, rel: &str) -> String {
        self.dir.path().join(rel).display().to_string()
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
    ) -> Result<(StatusCode, Vec<u8>)> {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let response = self
            .host
            .router()
            .oneshot(request.body(Body::empty())?)
            .await?;
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 22).await?;
        Ok((status, body.to_vec()))
    }

    /// A request with `headers`: the status, the headers and the body as JSON.
    pub(crate) async fn send(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
    ) -> Result<(StatusCode, header::HeaderMap, Value)> {
        let mut request = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .host
            .router()
            .oneshot(request.body(Body::empty())?)
            .await?;
        let (status, headers) = (response.status(), response.headers().clone());
        let body = axum::body::to_bytes(response.into_body(), 1 << 22).await?;
        let json = serde_json::from_slice(&body)
            .with_context(|| format!("{uri}: not JSON: {}", String::from_utf8_lossy(&body)))?;
        Ok((status, headers, json))
    }

    pub(crate) async fn json(&self, method: Method, uri: &str) -> Result<(StatusCode, Value)> {
        let (status, body) = self.call(method, uri, None).await?;
        let json = serde_json::from_slice(&body)
            .with_context(|| format!("{uri}: not JSON: {}", String::from_utf8_lossy(&body)))?;
        Ok((status, json))
    }

    pub(crate) async fn stats(&self) -> Result<QueueStats> {
        Ok(self.host.queue().stats().await?)
    }

    pub(crate) async fn submit(&self, query: &str) -> Result<String> {
        let (status, body) = self.json(Method::POST, &format!("/run?{query}")).await?;
        ensure!(status == StatusCode::ACCEPTED, "{query}: {status} {body}");
        let id = body["job_id"].as_str().context("job_id")?.to_owned();
        ensure!(JobId::parse(&id).is_some(), "{id} is a UUID");
        Ok(id)
    }
}

pub(crate) fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn accepted_jobs_answer_at_once_and_show_the_status_shape() -> Result<()> {
    let api = Api::new(None).await?;
    let id = api.submit(&format!("url={}", encode(PENGUINS))).await?;
    let (status, body) = api
        .json(
            Method::GET,
            &format!("/run?url={}&policy=quick", encode(PENGUINS)),
        )
        .await?;
    ensure!(status == StatusCode::ACCEPTED, "GET /run: {status} {body}");
    api.submit(&format!("url={}", encode("penguins"))).await?;
    api.submit(&format!(
        "url={}",
        encode(&api.path("competitions/penguins"))
    ))
    .await?;
    api.submit(&format!(
        "url={}",
        encode("kaggle.com/c/titanic/overview?x=1")
    ))
    .await?;
    ensure!(api.stats().await?.pending == 5);

    let (status, body) = api.json(Method::GET, &format!("/status/{id}")).await?;
    ensure!(status == StatusCode::OK, "{status} {body}");
    ensure!(body["status"] == "pending", "{body}");
    for key in ["source", "path"] {
        ensure!(body.get(key).is_some_and(Value::is_null), "{key}: {body}");
    }
    ensure!(body["message"].is_string(), "{body}");
    for key in ["created_at", "updated_at"] {
        let time = body[key].as_str().context("a time")?;
        ensure!(
            time.len() >= 20 && time.ends_with('Z') && time.contains('T'),
            "{time}"
        );
    }
    let record = api
        .host
        .status(&JobId(id.clone()))
        .await?
        .context("the record")?;
    ensure!(record.job.source == PENGUINS, "{:?}", record.job);
    ensure!(record.job.policy == "default");

    let (status, body) = api.json(Method::GET, &format!("/jobs/{id}/logs")).await?;
    ensure!(
        status == StatusCode::OK && body["attempts"] == serde_json::json!([]),
        "{body}"
    );
    let (status, body) = api
        .json(Method::GET, &format!("/jobs/{id}/submission"))
        .await?;
    ensure!(
        status == StatusCode::CONFLICT && body["error"] == "not_completed",
        "{body}"
    );

    let (status, text) = api.call(Method::GET, "/metrics", None).await?;
    let text = String::from_utf8(text)?;
    ensure!(status == StatusCode::OK, "{status}");
    ensure!(text.lines().any(|l| l == "ks_queue_depth 5"), "{text}");
    ensure!(
        text.contains("ks_submissions_total{result=\"accepted\"} 5"),
        "{text}"
    );
    ensure!(
        text.contains("# TYPE ks_sandbox_duration_seconds histogram"),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn a_token_guards_every_route_but_healthz() -> Result<()> {
    let api = Api::new(Some("s3cret-token")).await?;
    let run = format!("/run?url={}", encode(PENGUINS));
    let (status, _) = api.call(Method::GET, "/healthz", None).await?;
    ensure!(status == StatusCode::OK);
    for uri in [run.as_str(), "/openapi.json", "/metrics", "/status/x"] {
        for token in [None, Some("wrong"), Some("s3cret-token2"), Some("")] {
            let (status, body) = api.call(Method::POST, uri, token).await?;
            ensure!(
                status == StatusCode::UNAUTHORIZED,
                "{uri} {token:?}: {status}"
            );
            let body: Value = serde_json::from_slice(&body)?;
            ensure!(body["error"] == "unauthorized", "{body}");
        }
    }
    ensure!(api.stats().await? == QueueStats::default());
    let (status, _) = api.call(Method::POST, &run, Some("s3cret-token")).await?;
    ensure!(status == StatusCode::ACCEPTED, "{status}");
    let (status, _) = api
        .call(Method::GET, "/openapi.json", Some("s3cret-token"))
        .await?;
    ensure!(status == StatusCode::OK);

    // Nested in a larger app, the same rules hold under the prefix.
    let app = axum::Router::new().nest("/solver", api.host.router());
    let get = |uri: &str, token: Option<&str>| {
        let mut request = Request::get(uri);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        app.clone()
            .oneshot(request.body(Body::empty()).expect("a request"))
    };
    ensure!(get("/solver/healthz", None).await?.status() == StatusCode::OK);
    ensure!(get("/solver/metrics", None).await?.status() == StatusCode::UNAUTHORIZED);
    ensure!(get("/solver/metrics", Some("s3cret-token")).await?.status() == StatusCode::OK);

    // Without a token, nothing is asked.
    let open = Api::new(None).await?;
    let (status, _) = open.call(Method::POST, &run, None).await?;
    ensure!(status == StatusCode::ACCEPTED);
    let (status, _) = open.call(Method::GET, "/metrics", None).await?;
    ensure!(status == StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn openapi_json_describes_the_routes() -> Result<()> {
    let api = Api::new(None).await?;
    let (status, doc) = api.json(Method::GET, "/openapi.json").await?;
    ensure!(status == StatusCode::OK);
    ensure!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{doc}"
    );
    for path in [
        "/run",
        "/status/{job_id}",
        "/jobs/{job_id}",
        "/jobs/{job_id}/logs",
        "/jobs/{job_id}/stop",
    ] {
        ensure!(doc["paths"].get(path).is_some(), "{path}");
    }
    let schema = &doc["components"]["schemas"]["StatusResponse"]["properties"];
    for key in [
        "status",
        "source",
        "path",
        "message",
        "stage",
        "attempt",
        "validation_score",
    ] {
        ensure!(schema.get(key).is_some(), "StatusResponse.{key}");
    }
    ensure!(doc["components"]["securitySchemes"].get("bearer").is_some());
    Ok(())
}

#[tokio::test]
async fn a_stop_is_accepted_until_the_job_ends_and_keeps_it_running() -> Result<()> {
    let api = Api::new(None).await?;
    let id = api.submit(&format!("url={}", encode(PENGUINS))).await?;
    let stop = format!("/jobs/{id}/stop");
    let (status, body) = api.json(Method::POST, &stop).await?;
    ensure!(
        status == StatusCode::ACCEPTED
            && body["outcome"] == "stop-requested"
            && body["job_id"] == id.as_str(),
        "{status} {body}"
    );
    let (_, body) = api.json(Method::GET, &format!("/status/{id}")).await?;
    ensure!(body["status"] == "pending", "a stop is no cancel: {body}");
    let (status, _) = api.json(Method::DELETE, &format!("/jobs/{id}")).await?;
    ensure!(status == StatusCode::OK);
    let (status, body) = api.json(Method::POST, &stop).await?;
    ensure!(
        status == StatusCode::CONFLICT && body["error"] == "already_finished",
        "{status} {body}"
    );
    let unknown = uuid::Uuid::new_v4();
    let (status, body) = api
        .json(Method::POST, &format!("/jobs/{unknown}/stop"))
        .await?;
    ensure!(
        status == StatusCode::NOT_FOUND && body["error"] == "not_found",
        "{body}"
    );
    let (status, body) = api.json(Method::POST, "/jobs/42/stop").await?;
    ensure!(
        status == StatusCode::BAD_REQUEST && body["error"] == "invalid_job_id",
        "{body}"
    );
    let (status, _) = api.json(Method::GET, &stop).await?;
    ensure!(status == StatusCode::METHOD_NOT_ALLOWED, "{status}");
    Ok(())
}

#[tokio::test]
async fn a_pending_job_is_cancelled_at_once() -> Result<()> {
    let api = Api::new(None).await?;
    let id = api.submit(&format!("url={}", encode(PENGUINS))).await?;
    let (status, body) = api.json(Method::DELETE, &format!("/jobs/{id}")).await?;
    ensure!(
        status == StatusCode::OK && body["outcome"] == "cancelled",
        "{status} {body}"
    );
    let (_, body) = api.json(Method::GET, &format!("/status/{id}")).await?;
    ensure!(body["status"] == "failed", "{body}");
    ensure!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("cancel")),
        "{body}"
    );
    let (status, body) = api.json(Method::DELETE, &format!("/jobs/{id}")).await?;
    ensure!(
        status == StatusCode::CONFLICT && body["error"] == "already_finished",
        "{body}"
    );
    let (status, body) = api
        .json(Method::GET, &format!("/jobs/{id}/submission"))
        .await?;
    ensure!(
        status == StatusCode::CONFLICT && body["error"] == "job_failed",
        "{body}"
    );
    // Nothing is left for a worker.
    let claimed = api
        .host
        .queue()
        .claim(&WorkerId::for_this_process(), Duration::from_secs(5))
        .await?;
    ensure!(claimed.is_none(), "{claimed:?}");
    Ok(())
}

#[tokio::test]
async fn a_completed_job_serves_its_submission_and_logs() -> Result<()> {
    let api = Api::new(None).await?;
    let id = api.submit(&format!("url={}", encode(PENGUINS))).await?;
    let job = JobId(id.clone());
    // Play a worker by hand: claim, store, log, complete.
    let worker = WorkerId::for_this_process();
    let queue = api.host.queue();
    let record = queue
        .claim(&worker, Duration::from_secs(30))
        .await?
        .context("claimed")?;
    ensure!(record.id == job);
    let stored = LocalStore::new(api.dir.path().join("data/submissions"))
        .put(&id, b"id,species\n1,Adelie\n")
        .await?;
    let logs = FileLogs::new(api.dir.path().join("data/work"));
    logs.event(&job, LogEvent::now(&worker.0, "attempt 1: run"))
        .await?;
    let result = JobResult {
        submission_source: stored.source,
        submission_path: stored.path.clone(),
        validation_score: Some(0.97),
        validation_score_source: None,
        attempts: 1,
    };
    ensure!(queue.complete(&worker, &job, result).await? == Completion::Completed);

    let (status, body) = api.json(Method::GET, &format!("/status/{id}")).await?;
    ensure!(
        status == StatusCode::OK && body["status"] == "completed",
        "{body}"
    );
    ensure!(
        body["source"] == "local" && body["path"] == stored.path.as_str(),
        "{body}"
    );
    ensure!(body["validation_score"] == 0.97, "{body}");
    let (status, csv) = api
        .call(Method::GET, &format!("/jobs/{id}/submission"), None)
        .await?;
    ensure!(status == StatusCode::OK);
    ensure!(
        csv == b"id,species\n1,Adelie\n",
        "{}",
        String::from_utf8_lossy(&csv)
    );
    let (_, log) = api.json(Method::GET, &format!("/jobs/{id}/logs")).await?;
    ensure!(
        log["job_id"] == id.as_str() && log["events"][0]["message"] == "attempt 1: run",
        "{log}"
    );
    ensure!(Path::new(&stored.path).is_file());

    // A cancel answered 202 while the job runs wins over its completion: failed, cancelled,
    // and no submission served.
    let id = api.submit(&format!("url={}", encode(PENGUINS))).await?;
    let job = JobId(id.clone());
    ensure!(
        queue
            .claim(&worker, Duration::from_secs(30))
            .await?
            .map(|r| r.id)
            == Some(job.clone())
    );
    let (status, body) = api.json(Method::DELETE, &format!("/jobs/{id}")).await?;
    ensure!(
        status == StatusCode::ACCEPTED && body["outcome"] == "cancel-requested",
        "{body}"
    );
    let stored = LocalStore::new(api.dir.path().join("data/submissions"))
        .put(&id, b"id,species\n1,Adelie\n")
        .await?;
    let result = JobResult {
        submission_source: stored.source,
        submission_path: stored.path.clone(),
        validation_score: None,
        validation_score_source: None,
        attempts: 1,
    };
    ensure!(queue.complete(&worker, &job, result).await? == Completion::Cancelled);
    let (status, body) = api.json(Method::GET, &format!("/status/{id}")).await?;
    ensure!(
        status == StatusCode::OK && body["status"] == "failed" && body["message"] == "cancelled",
        "{body}"
    );
    let (status, body) = api
        .json(Method::GET, &format!("/jobs/{id}/submission"))
        .await?;
    ensure!(status == StatusCode::CONFLICT, "{status} {body}");
    Ok(())
}
