//! The API's abuse controls through its router, each as an obeyed/violated pair with the exact
//! answer: state changes sent by another site's page are refused (`403 cross_site`) and the
//! server's own origin and scripts pass; a full queue answers `429` with `Retry-After`; only
//! the offered presets may be picked; a request may lower caps but not raise them, and the
//! job carries what it lowered to the worker, which runs with it; finished jobs expire with
//! their files.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use axum::http::{Method, StatusCode, header};
use kaggle_solver::logs::{FileLogs, JobLogs, LogEvent};
use kaggle_solver::pipeline::solve::Sandboxes;
use kaggle_solver::policies::{ByteSize, LimitOverrides, PolicyDir};
use kaggle_solver::queue::{Completion, JobId, JobResult, MemoryQueue, QueueConfig, WorkerId};
use kaggle_solver::storage::{LocalStore, SubmissionStore};
use kaggle_solver::worker::WorkerConfig;
use tokio_util::sync::CancellationToken;

use super::{Api, PENGUINS, encode};

fn run_uri(extra: &str) -> String {
    format!("/run?url={}{extra}", encode(PENGUINS))
}

#[tokio::test]
async fn a_cross_site_request_cannot_change_state_and_the_servers_own_can() -> Result<()> {
    let api = Api::new(None).await?;
    let host = ("host", "127.0.0.1:8000");
    let refused: &[(Method, &[(&str, &str)])] = &[
        (Method::GET, &[host, ("origin", "https://evil.example")]),
        (Method::GET, &[host, ("sec-fetch-site", "cross-site")]),
        (Method::GET, &[host, ("sec-fetch-site", "same-site")]),
        (Method::POST, &[host, ("origin", "http://127.0.0.1:3000")]),
        (Method::POST, &[host, ("origin", "null")]),
    ];
    for (method, headers) in refused {
        let (status, _, body) = api.send(method.clone(), &run_uri(""), headers).await?;
        ensure!(
            status == StatusCode::FORBIDDEN && body["error"] == "cross_site",
            "{method} {headers:?}: {status} {body}"
        );
        let detail = body["detail"].as_str().unwrap_or_default();
        ensure!(detail.contains("another site's page"), "{detail}");
    }
    ensure!(
        api.stats().await?.pending == 0,
        "a refused request enqueued"
    );

    let accepted: &[(Method, &[(&str, &str)])] = &[
        (Method::GET, &[]),
        (Method::POST, &[host]),
        (
            Method::GET,
            &[
                host,
                ("origin", "http://127.0.0.1:8000"),
                ("sec-fetch-site", "same-origin"),
            ],
        ),
        (Method::GET, &[host, ("sec-fetch-site", "none")]),
    ];
    let mut ids = Vec::new();
    for (method, headers) in accepted {
        let (status, _, body) = api.send(method.clone(), &run_uri(""), headers).await?;
        ensure!(
            status == StatusCode::ACCEPTED,
            "{method} {headers:?}: {status} {body}"
        );
        ids.push(body["job_id"].as_str().context("job_id")?.to_owned());
    }
    ensure!(api.stats().await?.pending == accepted.len() as u64);

    // Cancelling is a state change too; reading is not.
    let job = format!("/jobs/{}", ids[0]);
    let evil = [host, ("origin", "https://evil.example")];
    let (status, _, body) = api.send(Method::DELETE, &job, &evil).await?;
    ensure!(
        status == StatusCode::FORBIDDEN && body["error"] == "cross_site",
        "{body}"
    );
    let (status, _, body) = api
        .send(Method::GET, &format!("/status/{}", ids[0]), &evil)
        .await?;
    ensure!(
        status == StatusCode::OK && body["status"] == "pending",
        "{body}"
    );
    let own = [host, ("origin", "http://127.0.0.1:8000")];
    let (status, _, body) = api.send(Method::DELETE, &job, &own).await?;
    ensure!(
        status == StatusCode::OK && body["outcome"] == "cancelled",
        "{body}"
    );
    Ok(())
}

#[tokio::test]
async fn a_full_queue_answers_429_with_retry_after_and_takes_jobs_again_once_drained() -> Result<()>
{
    let queue = Arc::new(MemoryQueue::new(QueueConfig {
        max_queued: 2,
        ..QueueConfig::default()
    }));
    let api = Api::with(None, |builder| builder.queue(queue)).await?;
    let first = api.submit(&format!("url={}", encode(PENGUINS))).await?;
    api.submit(&format!("url={}", encode(PENGUINS))).await?;
    let (status, headers, body) = api.send(Method::POST, &run_uri(""), &[]).await?;
    ensure!(status == StatusCode::TOO_MANY_REQUESTS, "{status} {body}");
    ensure!(body["error"] == "queue_full", "{body}");
    ensure!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("2 jobs are already waiting")),
        "{body}"
    );
    let retry_after = headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .context("a Retry-After header")?;
    ensure!(
        retry_after == kaggle_solver::api::QUEUE_FULL_RETRY_AFTER_SECS.to_string(),
        "{retry_after}"
    );
    ensure!(
        api.stats().await?.pending == 2,
        "the refused job was stored"
    );
    let (_, metrics) = api.call(Method::GET, "/metrics", None).await?;
    let metrics = String::from_utf8(metrics)?;
    ensure!(
        metrics.contains("ks_submissions_total{result=\"rejected\"} 1"),
        "{metrics}"
    );

    // A job leaving the line makes room again.
    let (status, _) = api
        .call(Method::DELETE, &format!("/jobs/{first}"), None)
        .await?;
    ensure!(status == StatusCode::OK);
    api.submit(&format!("url={}", encode(PENGUINS))).await?;
    Ok(())
}

#[tokio::test]
async fn only_the_offered_presets_may_be_picked() -> Result<()> {
    // The test's allow-list: default and quick.
    let api = Api::new(None).await?;
    let (status, _, body) = api
        .send(Method::POST, &run_uri("&policy=large"), &[])
        .await?;
    ensure!(status == StatusCode::BAD_REQUEST, "{status} {body}");
    ensure!(body["error"] == "policy_not_allowed", "{body}");
    ensure!(
        body["detail"]
            == "the policy `large` is not offered by this server; pick one of: default, quick \
                (the server's KS_API_POLICIES)",
        "{body}"
    );
    ensure!(api.stats().await?.pending == 0);
    api.submit(&format!("url={}&policy=quick", encode(PENGUINS)))
        .await?;

    // The default list, over the repository's presets: default and small, not large, though
    // large.toml is right there.
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let api = Api::with(None, |builder| builder.policies(PolicyDir::new(&repo))).await?;
    let (status, _, body) = api
        .send(Method::POST, &run_uri("&policy=large"), &[])
        .await?;
    ensure!(
        status == StatusCode::BAD_REQUEST && body["error"] == "policy_not_allowed",
        "{body}"
    );
    ensure!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("pick one of: default, small ")),
        "{body}"
    );
    let small = api
        .submit(&format!("url={}&policy=small", encode(PENGUINS)))
        .await?;
    let record = api.host.status(&JobId(small)).await?.context("record")?;
    ensure!(record.job.policy == "small");

    // A request that names none gets the first offered.
    let api = Api::with(None, |builder| {
        builder
            .policies(PolicyDir::new(&repo))
            .allowed_policies(["small"])
    })
    .await?;
    let id = api.submit(&format!("url={}", encode(PENGUINS))).await?;
    let record = api.host.status(&JobId(id)).await?.context("record")?;
    ensure!(record.job.policy == "small", "{:?}", record.job);
    let (status, _, body) = api
        .send(Method::POST, &run_uri("&policy=default"), &[])
        .await?;
    ensure!(
        status == StatusCode::BAD_REQUEST && body["error"] == "policy_not_allowed",
        "{body}"
    );
    Ok(())
}

#[tokio::test]
async fn a_request_may_lower_caps_but_never_raise_them() -> Result<()> {
    let api = Api::new(None).await?;
    // The default policy: wall-time 30m, memory 4 GiB, fuel 20e12, output 64 MiB, 3 attempts;
    // quick: 1 attempt.
    let refused = [
        (
            "&memory=8GiB",
            "raises_cap",
            "request raises `limits.memory` to 8 GiB, above the policy's cap of 4 GiB; a request \
             may only lower caps",
        ),
        (
            "&wall-time=1h",
            "raises_cap",
            "request raises `limits.wall-time` to 1h, above the policy's cap of 30m; a request \
             may only lower caps",
        ),
        (
            "&fuel=20000000000001",
            "raises_cap",
            "request raises `limits.fuel` to 20_000_000_000_001, above the policy's cap of \
             20_000_000_000_000; a request may only lower caps",
        ),
        (
            "&output=1GiB",
            "raises_cap",
            "request raises `limits.output` to 1 GiB, above the policy's cap of 64 MiB; a \
             request may only lower caps",
        ),
        (
            "&attempts=4",
            "raises_cap",
            "request raises `attempts.max` to 4, above the policy's cap of 3; a request may only \
             lower caps",
        ),
        (
            "&policy=quick&attempts=2",
            "raises_cap",
            "request raises `attempts.max` to 2, above the policy's cap of 1; a request may only \
             lower caps",
        ),
        (
            "&memory=1MiB",
            "invalid_limit",
            "invalid value in request: `limits.memory` is 1 MiB, below the minimum of 64 MiB \
             (allowed: 64 MiB to 64 GiB)",
        ),
        (
            "&attempts=0",
            "invalid_limit",
            "invalid value in request: `attempts.max` is 0, below the minimum of 1 (allowed: 1 \
             to 20)",
        ),
        (
            "&fuel=lots",
            "invalid_limit",
            "invalid value in request: `limits.fuel` \"lots\" is not a whole number, e.g. \
             5_000_000",
        ),
    ];
    for (extra, code, detail) in refused {
        let (status, _, body) = api.send(Method::POST, &run_uri(extra), &[]).await?;
        ensure!(
            status == StatusCode::BAD_REQUEST,
            "{extra}: {status} {body}"
        );
        ensure!(
            body["error"] == code && body["detail"] == detail,
            "{extra}: {body}"
        );
    }
    ensure!(
        api.stats().await?.pending == 0,
        "a refused request enqueued"
    );

    // Lowered (or equal) caps are accepted and travel with the job.
    let id = api
        .submit(&format!(
            "url={}&wall-time=5m&memory=1GiB&fuel=5_000_000_000&output=4MiB&attempts=1",
            encode(PENGUINS)
        ))
        .await?;
    let record = api.host.status(&JobId(id)).await?.context("record")?;
    let want = LimitOverrides {
        wall_time: Some(Duration::from_secs(300)),
        memory: Some(ByteSize::gib(1)),
        fuel: Some(5_000_000_000),
        output: Some(ByteSize::mib(4)),
        attempts: Some(1),
    };
    ensure!(record.job.overrides == want, "{:?}", record.job.overrides);
    let id = api
        .submit(&format!("url={}&attempts=3", encode(PENGUINS)))
        .await?;
    let record = api.host.status(&JobId(id)).await?.context("record")?;
    ensure!(record.job.overrides.attempts == Some(3));
    Ok(())
}

#[tokio::test]
async fn an_expired_job_answers_404_and_its_files_are_gone() -> Result<()> {
    let ttl = Duration::from_millis(400);
    let api = Api::with(None, |builder| {
        builder.allowed_policies(["default"]).job_ttl(ttl)
    })
    .await?;
    let queue = api.host.queue();
    let worker = WorkerId::for_this_process();
    let store = LocalStore::new(api.dir.path().join("data/submissions"));
    let logs = FileLogs::new(api.dir.path().join("data/work"));
    let csv: &[u8] = b"id,species\n1,Adelie\n";
    // Play a worker by hand: claim, store, log, complete.
    let finish = async || -> Result<String> {
        let id = api.submit(&format!("url={}", encode(PENGUINS))).await?;
        let job = JobId(id.clone());
        ensure!(
            queue
                .claim(&worker, Duration::from_secs(30))
                .await?
                .is_some()
        );
        let stored = store.put(&id, csv).await?;
        logs.event(&job, LogEvent::now(&worker.0, "attempt 1: run"))
            .await?;
        let result = JobResult {
            submission_source: stored.source,
            submission_path: stored.path,
            validation_score: Some(0.97),
            validation_score_source: None,
            attempts: 1,
        };
        ensure!(queue.complete(&worker, &job, result).await? == Completion::Completed);
        Ok(id)
    };
    let old = finish().await?;
    for route in ["/status/{}", "/jobs/{}/submission", "/jobs/{}/logs"] {
        let (status, _) = api
            .call(Method::GET, &route.replace("{}", &old), None)
            .await?;
        ensure!(status == StatusCode::OK, "{route} before expiry: {status}");
    }
    ensure!(
        api.host.sweep_expired().await? == 0,
        "swept before its time"
    );
    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    let fresh = finish().await?;
    ensure!(api.host.sweep_expired().await? == 1);

    for route in ["/status/{}", "/jobs/{}/submission", "/jobs/{}/logs"] {
        let (status, body) = api.json(Method::GET, &route.replace("{}", &old)).await?;
        ensure!(
            status == StatusCode::NOT_FOUND && body["error"] == "not_found",
            "{route} after expiry: {status} {body}"
        );
    }
    let data = api.dir.path().join("data");
    ensure!(
        !data.join("submissions").join(&old).exists(),
        "submission left"
    );
    ensure!(!data.join("work").join(&old).exists(), "log left");
    let (status, _) = api
        .call(Method::GET, &format!("/jobs/{fresh}/submission"), None)
        .await?;
    ensure!(status == StatusCode::OK, "the younger job expired too");
    ensure!(data.join("work").join(&fresh).join("logs.json").is_file());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_run_a_job_with_its_lowered_caps_and_expire_it_on_their_own() -> Result<()> {
    let ttl = Duration::from_secs(1);
    // The job's competition folder is empty, so it fails for good at analysis: after the
    // worker has resolved its policy, which is all this needs, and before any sandbox (so no
    // guest runtime is needed).
    let api = Api::with(None, |builder| {
        builder
            .allowed_policies(["default"])
            .sandboxes(Sandboxes {
                wasm: None,
                docker: None,
            })
            .workers(1)
            .worker_config(WorkerConfig {
                poll: Duration::from_millis(20),
                ..WorkerConfig::default()
            })
            .job_ttl(ttl)
    })
    .await?;
    let shutdown = CancellationToken::new();
    let workers = tokio::spawn(api.host.run_workers(shutdown.clone()));
    let local = api.path("competitions/penguins");
    let id = api
        .submit(&format!("url={}&attempts=2", encode(&local)))
        .await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let ended = loop {
        let (status, body) = api.json(Method::GET, &format!("/status/{id}")).await?;
        ensure!(status == StatusCode::OK, "{status} {body}");
        if body["status"] == "failed" || body["status"] == "completed" {
            break body;
        }
        ensure!(Instant::now() < deadline, "never ended: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The default policy allows 3 attempts; the worker ran the job with the 2 it asked for.
    ensure!(ended["max_attempts"] == 2, "{ended}");
    let log = api.dir.path().join("data/work").join(&id).join("logs.json");
    ensure!(log.is_file(), "the worker logged the job");

    // The workers' sweeper expires it, with its log, within the ttl and an interval.
    let deadline = Instant::now() + ttl * 5;
    loop {
        let (status, body) = api.json(Method::GET, &format!("/status/{id}")).await?;
        if status == StatusCode::NOT_FOUND {
            break;
        }
        ensure!(Instant::now() < deadline, "never expired: {status} {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ensure!(!log.exists(), "the expired job's log is left");
    shutdown.cancel();
    workers.await?;
    Ok(())
}
