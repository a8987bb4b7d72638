//! The object store behind submissions, against a real `s3s-fs` (see `s3_server`), which
//! checks every request's signature:
//! - put, get (streamed, with its size), replace, delete of a submission, in the objects
//!   the server keeps on disk; the API serving one with `Content-Length`;
//! - a wrong secret refused by the check at start, in the library and by `worker`, `serve`
//!   and `solve`, with a message that says what to fix; a store that is down is unavailable
//!   (retryable) and answers again once it is back;
//! - the deployment: an API process and two workers, each with its own `--data-dir`, sharing
//!   only Redis and the store (`service`-style cluster, 20 jobs), and the store going away
//!   mid-job (`store::cluster`);
//! - `/readyz`: 200 while Redis and the store answer, 503 with a fixed reason otherwise;
//! - the job logs in Redis, bounded and deleted with their record (`store::logs`);
//! - the competitions mirror (`KS_COMPETITIONS_URL`): a competition copied from the bucket
//!   into the cache once, under the caps and checks of a download.

mod cluster;
mod logs;

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use kaggle_solver::host::Host;
use kaggle_solver::pipeline::fetch::{
    CompetitionRef, CredentialsSource, EnvLookup, ExtractError, FetchConfig, FetchError,
    FetchOrigin, Fetcher, ObjectMirror,
};
use kaggle_solver::queue::{Completion, JobResult, WorkerId};
use kaggle_solver::storage::{self, DynStore, StoreError, StoreKind};
use tower::ServiceExt;

use crate::s3_server::{BUCKET, S3Server};

/// The store `s3://ks-test/<prefix>` on `server`.
fn s3_store(server: &S3Server, prefix: &str) -> Result<DynStore> {
    Ok(storage::open(
        Some(&format!("s3://{BUCKET}/{prefix}")),
        "/nonexistent",
        server.lookup(),
    )?)
}

#[tokio::test]
async fn puts_gets_streams_replaces_and_deletes_in_s3s_fs() -> Result<()> {
    let server = S3Server::start();
    let store = s3_store(&server, "runs/a")?;
    store.check().await?;
    let key = uuid::Uuid::new_v4().to_string();
    let stored = store.put(&key, b"id,y\n1,2\n").await?;
    ensure!(stored.source == StoreKind::S3, "{stored:?}");
    ensure!(
        stored.path == format!("s3://{BUCKET}/runs/a/{key}/submission.csv"),
        "{stored:?}"
    );
    // The object is where the URL says, on the server's disk.
    let on_disk = server.root().join(BUCKET).join("runs/a").join(&key);
    ensure!(std::fs::read(on_disk.join("submission.csv"))? == b"id,y\n1,2\n");
    let read = store.get(&key).await?.context("stored")?;
    ensure!(read.size == 9, "{read:?}");
    ensure!(read.bytes().await? == b"id,y\n1,2\n");

    // A large one comes back whole, in more than one chunk.
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| b"0123456789,\n"[(i % 12) as usize])
        .collect();
    store.put(&key, &big).await?;
    let mut read = store.get(&key).await?.context("replaced")?;
    ensure!(read.size == big.len() as u64);
    let (mut chunks, mut all) = (0, Vec::new());
    while let Some(chunk) = futures_util::StreamExt::next(&mut read.body).await {
        all.extend_from_slice(&chunk?);
        chunks += 1;
    }
    ensure!(
        all == big && chunks > 1,
        "{chunks} chunk(s), {} bytes",
        all.len()
    );

    ensure!(store.get("no-such-key").await?.is_none());
    store.delete(&key).await?;
    ensure!(store.get(&key).await?.is_none());
    store.delete(&key).await?;
    let bad = store.put("../escape", b"x").await;
    ensure!(matches!(bad, Err(StoreError::InvalidKey(_))), "{bad:?}");
    Ok(())
}

#[tokio::test]
async fn a_wrong_secret_is_refused_and_an_outage_is_retryable() -> Result<()> {
    let mut server = S3Server::start();
    let env = server.env_with_secret("not-the-secret");
    let wrong = storage::open(Some(&format!("s3://{BUCKET}/p")), "/x", move |name| {
        env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    })?;
    let error = wrong.check().await.expect_err("a wrong secret");
    let text = error.to_string();
    ensure!(
        matches!(error, StoreError::Refused { .. }) && text.contains("AWS_SECRET_ACCESS_KEY"),
        "{text}"
    );
    let put = wrong.put("job-1", b"x").await.expect_err("refused");
    ensure!(matches!(put, StoreError::Refused { .. }), "{put}");

    let missing = storage::open(Some("s3://no-such-bucket/p"), "/x", server.lookup())?;
    let error = missing.check().await.expect_err("no bucket");
    ensure!(
        error.to_string().contains("does the bucket exist"),
        "{error}"
    );

    let store = s3_store(&server, "p")?;
    server.kill();
    let down = store.put("job-1", b"x").await.expect_err("down");
    ensure!(
        matches!(down, StoreError::Unavailable { .. }) && down.is_retryable(),
        "{down}"
    );
    ensure!(store.check().await.is_err());
    server.restart();
    store.check().await?;
    store.put("job-1", b"x").await?;
    Ok(())
}

#[tokio::test]
async fn worker_serve_and_solve_refuse_to_start_with_a_wrong_secret() -> Result<()> {
    let server = S3Server::start();
    let redis = crate::redis_server::RedisServer::start();
    for args in [
        vec!["worker", "--redis", redis.url().as_str()],
        vec!["serve", "--bind", "127.0.0.1:0", "--workers", "0"],
        vec!["solve", "examples/competitions/penguins"],
    ] {
        let mut command = std::process::Command::new(crate::support::binary());
        command
            .args(&args)
            .args(["--store", &format!("s3://{BUCKET}/p")])
            .current_dir(crate::service::cluster::repo())
            .envs(server.env_with_secret("not-the-secret"))
            .env("KS_HOME", tempfile::tempdir()?.keep())
            .env("KS_GENERATOR", "baseline")
            .env_remove("KS_STORE")
            .stdin(std::process::Stdio::null());
        let output = tokio::time::timeout(
            Duration::from_secs(60),
            tokio::task::spawn_blocking(move || command.output()),
        )
        .await
        .context("it stops at once")???;
        let stderr = String::from_utf8_lossy(&output.stderr);
        ensure!(!output.status.success(), "{args:?} started: {stderr}");
        ensure!(
            stderr.contains("refused") && stderr.contains("AWS_SECRET_ACCESS_KEY"),
            "{args:?}: {stderr}"
        );
        ensure!(
            output.stdout.is_empty(),
            "nothing listened or claimed: {args:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn the_api_streams_a_submission_from_s3_with_its_length() -> Result<()> {
    let server = S3Server::start();
    let store = s3_store(&server, "api")?;
    let dir = tempfile::tempdir()?;
    let host = Host::builder()
        .data_dir(dir.path())
        .store(store.clone())
        .build()
        .await?;
    let queue = host.queue();
    let id = host
        .submit("https://www.kaggle.com/competitions/penguins", None)
        .await?;
    let worker = WorkerId::for_this_process();
    queue
        .claim(&worker, Duration::from_secs(30))
        .await?
        .context("claimed")?;
    let csv: Vec<u8> = b"id,species\n"
        .iter()
        .copied()
        .chain((0..50_000).flat_map(|i| format!("{i},Adelie\n").into_bytes()))
        .collect();
    let stored = store.put(&id.0, &csv).await?;
    let result = JobResult {
        submission_source: stored.source,
        submission_path: stored.path.clone(),
        validation_score: None,
        validation_score_source: None,
        attempts: 1,
    };
    ensure!(queue.complete(&worker, &id, result).await? == Completion::Completed);
    let get = |uri: String| {
        let router = host.router();
        async move {
            let response = router
                .oneshot(Request::get(uri).body(Body::empty())?)
                .await?;
            let status = response.status();
            let length = response.headers().get(header::CONTENT_LENGTH).cloned();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
            anyhow::Ok((status, length, body))
        }
    };
    let (status, _, body) = get(format!("/status/{id}")).await?;
    let body: serde_json::Value = serde_json::from_slice(&body)?;
    ensure!(status == StatusCode::OK, "{body}");
    ensure!(
        body["source"] == "s3" && body["path"] == format!("s3://{BUCKET}/api/{id}/submission.csv"),
        "{body}"
    );
    let (status, length, body) = get(format!("/jobs/{id}/submission")).await?;
    ensure!(status == StatusCode::OK, "{status}");
    ensure!(length.and_then(|l| l.to_str().ok().map(str::to_owned)) == Some(csv.len().to_string()));
    ensure!(body == csv, "{} bytes", body.len());

    // The object gone from the store: a clear 404 naming where it was.
    store.delete(&id.0).await?;
    let (status, _, body) = get(format!("/jobs/{id}/submission")).await?;
    ensure!(
        status == StatusCode::NOT_FOUND
            && String::from_utf8_lossy(&body).contains(&format!(
                "stored at s3://{BUCKET}/api/{id}/submission.csv, source s3"
            )),
        "{status} {}",
        String::from_utf8_lossy(&body)
    );
    Ok(())
}

/// The demo competition laid into the bucket as `mirror/<slug>/` (s3s-fs serves the files
/// under its root as objects).
fn mirror_demo(server: &S3Server, slug: &str) -> Result<std::path::PathBuf> {
    let demo = crate::service::cluster::repo().join("examples/competitions/penguins");
    let into = server.root().join(BUCKET).join("mirror").join(slug);
    std::fs::create_dir_all(into.join("extra"))?;
    for entry in std::fs::read_dir(&demo)? {
        let entry = entry?;
        std::fs::copy(entry.path(), into.join(entry.file_name()))?;
    }
    std::fs::write(into.join("extra/notes.txt"), "a nested file\n")?;
    Ok(demo)
}

fn mirror_config(server: &S3Server, cache: &std::path::Path, secret: &str) -> Result<FetchConfig> {
    let mut config = FetchConfig::new(cache);
    // Nothing may come from Kaggle: a fetch that tried would fail on these.
    config.api_base = "http://127.0.0.1:9".to_owned();
    config.credentials =
        CredentialsSource::Discover(EnvLookup::from_pairs(Vec::<(&str, &str)>::new()));
    let env = server.env_with_secret(secret);
    config.mirror = Some(ObjectMirror::new(
        &format!("s3://{BUCKET}/mirror"),
        move |name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
    )?);
    Ok(config)
}

#[tokio::test]
async fn a_competition_comes_from_the_object_store_mirror_once_per_machine() -> Result<()> {
    let server = S3Server::start();
    let demo = mirror_demo(&server, "penguins")?;
    let cache = tempfile::tempdir()?;
    let fetcher = Fetcher::new(mirror_config(
        &server,
        cache.path(),
        crate::s3_server::SECRET_KEY,
    )?);
    let source = CompetitionRef::kaggle("penguins")?;
    let first = fetcher.fetch(&source).await?;
    ensure!(first.origin == FetchOrigin::Download, "{:?}", first.origin);
    ensure!(
        first.dir == cache.path().join("competitions/penguins"),
        "{:?}",
        first.dir
    );
    for name in [
        "train.csv",
        "test.csv",
        "sample_submission.csv",
        "description.md",
    ] {
        ensure!(
            std::fs::read(first.dir.join(name))? == std::fs::read(demo.join(name))?,
            "{name}"
        );
    }
    ensure!(std::fs::read_to_string(first.dir.join("extra/notes.txt"))? == "a nested file\n");
    ensure!(
        first
            .description
            .as_deref()
            .is_some_and(|d| d.contains("enguin")),
        "{:?}",
        first.description
    );
    drop(first);
    // Once per machine: the next fetch is the cache's, even with the mirror gone.
    let mut server = server;
    server.kill();
    let again = fetcher.fetch(&source).await?;
    ensure!(again.origin == FetchOrigin::Cache, "{:?}", again.origin);
    drop(again);

    // Down, for a competition not cached yet: a retryable failure of the mirror.
    let error = fetcher
        .fetch(&CompetitionRef::kaggle("other")?)
        .await
        .expect_err("the mirror is down");
    ensure!(
        matches!(error, FetchError::Mirror(_)) && error.is_retryable(),
        "{error}"
    );
    server.restart();
    // Not in the mirror: on to Kaggle, which needs credentials this test has none of.
    let error = fetcher
        .fetch(&CompetitionRef::kaggle("other")?)
        .await
        .expect_err("no credentials");
    ensure!(matches!(error, FetchError::Credentials(_)), "{error}");
    Ok(())
}

#[tokio::test]
async fn the_mirror_is_held_to_the_caps_and_checks_of_a_download() -> Result<()> {
    let server = S3Server::start();
    mirror_demo(&server, "penguins")?;
    let demo = crate::service::cluster::repo().join("examples/competitions/penguins");
    let mut total = "a nested file\n".len() as u64;
    for entry in std::fs::read_dir(&demo)? {
        total += entry?.metadata()?.len();
    }

    let cache = tempfile::tempdir()?;
    let mut config = mirror_config(&server, cache.path(), crate::s3_server::SECRET_KEY)?;
    config.limits.max_total_bytes = total - 1;
    let error = Fetcher::new(config)
        .fetch(&CompetitionRef::kaggle("penguins")?)
        .await
        .expect_err("over the byte cap");
    ensure!(
        matches!(error, FetchError::TooLarge { bytes, max, .. } if bytes == total && max == total - 1),
        "{error}"
    );
    ensure!(!cache.path().join("competitions/penguins").exists());

    let mut config = mirror_config(&server, cache.path(), crate::s3_server::SECRET_KEY)?;
    config.limits.max_total_bytes = total;
    config.limits.max_entries = 5;
    let error = Fetcher::new(config)
        .fetch(&CompetitionRef::kaggle("penguins")?)
        .await
        .expect_err("over the entry cap");
    ensure!(
        matches!(
            error,
            FetchError::Extract {
                source: ExtractError::TooManyEntries { count: 6, max: 5 },
                ..
            }
        ),
        "{error}"
    );
    ensure!(!cache.path().join("competitions/penguins").exists());

    let config = mirror_config(&server, cache.path(), "not-the-secret")?;
    let error = Fetcher::new(config)
        .fetch(&CompetitionRef::kaggle("penguins")?)
        .await
        .expect_err("a wrong secret");
    ensure!(
        matches!(error, FetchError::Mirror(StoreError::Refused { .. }))
            && error.to_string().contains("AWS_SECRET_ACCESS_KEY"),
        "{error}"
    );

    // Exactly at the caps, it is copied.
    let mut config = mirror_config(&server, cache.path(), crate::s3_server::SECRET_KEY)?;
    config.limits.max_total_bytes = total;
    config.limits.max_entries = 6;
    let fetched = Fetcher::new(config)
        .fetch(&CompetitionRef::kaggle("penguins")?)
        .await?;
    ensure!(fetched.dir.join("train.csv").is_file());
    Ok(())
}

#[tokio::test]
async fn readyz_is_ready_while_redis_and_the_store_answer_and_503_otherwise() -> Result<()> {
    let mut server = S3Server::start();
    let mut redis = crate::redis_server::RedisServer::start();
    let queue = kaggle_solver::queue::RedisQueue::connect(
        &redis.url(),
        kaggle_solver::queue::QueueConfig::default(),
    )
    .await?;
    let dir = tempfile::tempdir()?;
    let host = Host::builder()
        .data_dir(dir.path())
        .queue(std::sync::Arc::new(queue))
        .store(s3_store(&server, "ready")?)
        .api_token(Some("sekret"))
        .build()
        .await?;
    // No token needed, as for /healthz.
    let ready = || {
        let router = host.router();
        async move {
            let response = router
                .oneshot(Request::get("/readyz").body(Body::empty())?)
                .await?;
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), 4096).await?;
            anyhow::Ok((status, serde_json::from_slice::<serde_json::Value>(&body)?))
        }
    };
    let (status, body) = ready().await?;
    ensure!(
        status == StatusCode::OK && body["status"] == "ready",
        "{status} {body}"
    );
    ensure!(body.get("reason").is_none(), "{body}");

    server.kill();
    let (status, body) = ready().await?;
    ensure!(
        status == StatusCode::SERVICE_UNAVAILABLE
            && body["status"] == "unready"
            && body["reason"] == "the submission store does not answer or refuses the credentials",
        "{status} {body}"
    );
    server.restart();
    ensure!(ready().await?.0 == StatusCode::OK);

    redis.kill();
    let (status, body) = ready().await?;
    ensure!(
        status == StatusCode::SERVICE_UNAVAILABLE
            && body["reason"] == "the job queue (Redis) does not answer",
        "{status} {body}"
    );
    redis.restart();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while ready().await?.0 != StatusCode::OK {
        ensure!(std::time::Instant::now() < deadline, "not ready again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

#[tokio::test]
async fn solve_with_an_s3_store_keeps_the_submission_there_and_writes_it_out() -> Result<()> {
    let server = S3Server::start();
    let llm = crate::service::cluster::ScriptServer::start(crate::service::cluster::QUICK).await?;
    let out = tempfile::tempdir()?;
    let mut command =
        crate::support::solve_with_llm(&format!("http://{}/v1", llm.addr), out.path());
    command
        .args(["--store", &format!("s3://{BUCKET}/solo")])
        .envs(server.env())
        .env_remove("KS_STORE")
        .stdin(std::process::Stdio::null());
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(output.status.success(), "{stderr}");
    let written = std::fs::read(out.path().join("submission.csv"))?;
    ensure!(
        written.starts_with(b"id,species\n"),
        "{}",
        String::from_utf8_lossy(&written)
    );
    let stored = server.root().join(BUCKET).join("solo");
    let objects: Vec<_> = std::fs::read_dir(&stored)?
        .flatten()
        .map(|job| job.path().join("submission.csv"))
        .collect();
    ensure!(objects.len() == 1, "{objects:?}");
    ensure!(std::fs::read(&objects[0])? == written);
    Ok(())
}
