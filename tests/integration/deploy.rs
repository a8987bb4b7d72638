//! The service as its images and compose file run it: the file is valid and names the images
//! the offline recipe builds, and the stack (Redis, the S3-compatible server, the API and two
//! workers, sharing nothing but Redis and the store) solves the bundled demo competition from
//! its local mirror and stores the submission in the object store.
//!
//! Needs `docker-compose` and the images of `deploy/build-offline.sh` (`scripts/test` installs
//! and builds both); without them the tests fail and say so.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

/// The repository's `deploy/` folder.
fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn tag() -> Result<String> {
    Ok(std::fs::read_to_string(deploy_dir().join("TAG"))?
        .trim()
        .to_owned())
}

/// `docker-compose -f deploy/compose.yaml` as project `project`, with `env` set.
fn compose(project: &str, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new("docker-compose");
    command
        .arg("--project-name")
        .arg(project)
        .arg("--file")
        .arg(deploy_dir().join("compose.yaml"))
        .envs(env.iter().copied());
    command
}

fn run(mut command: Command, what: &str) -> Result<Output> {
    let output = command.output().with_context(|| {
        format!("{what}: cannot start it (scripts/test installs docker-compose)")
    })?;
    ensure!(
        output.status.success(),
        "{what} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(output)
}

#[test]
fn the_compose_file_is_valid_and_names_the_images_the_recipe_builds() -> Result<()> {
    let example = deploy_dir().join("ks.env.example");
    let example = example.to_str().context("path")?;
    let mut command = compose("ksconfig", &[("KS_ENV_FILE", example)]);
    command.arg("config");
    let output = run(command, "docker-compose config")?;
    let config = String::from_utf8(output.stdout)?;
    let tag = tag()?;
    for image in ["redis", "s3", "service"] {
        let name = format!("image: kaggle-solver/{image}:{tag}");
        ensure!(config.contains(&name), "{name} is not in:\n{config}");
    }
    ensure!(
        !config.contains("docker.sock"),
        "no container gets the host's Docker socket"
    );
    Ok(())
}

/// Stops and removes the stack (volumes included) when the test ends, however it ends, after
/// printing the services' last lines if it failed.
struct Stack {
    project: String,
    env: Vec<(String, String)>,
}

impl Stack {
    fn env(&self) -> Vec<(&str, &str)> {
        self.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut logs = compose(&self.project, &self.env());
            logs.args(["logs", "--no-color", "--tail", "60"]);
            if let Ok(output) = logs.output() {
                eprintln!("{}", String::from_utf8_lossy(&output.stdout));
            }
        }
        let mut down = compose(&self.project, &self.env());
        down.args(["down", "--volumes", "--remove-orphans", "--timeout", "5"]);
        let _ = down.output();
        let _ = Command::new("docker")
            .args(["volume", "rm", "--force"])
            .arg(format!("{}_ks-compiled", self.project))
            .output();
    }
}

/// Copies this machine's compiled guest modules into the stack's `ks-compiled` volume before
/// it starts. They are the same binary's for the same CPU, so the workers find them instead of
/// spending minutes compiling what `runtime install` compiled already: the start-up path is
/// the same (the cache is read, not built), and CI time goes to what only this test checks.
fn seed_compiled_modules(project: &str, tag: &str) -> Result<()> {
    let home = ks_guest_runtime::RuntimeHome::from_env()?;
    let compiled = home.compiled_dir();
    ensure!(
        compiled.is_dir(),
        "no compiled modules at {}: run `kaggle-solver runtime install` (scripts/test does)",
        compiled.display()
    );
    let volume = format!("{project}_ks-compiled");
    let mut create = Command::new("docker");
    create.args(["volume", "create", &volume]);
    run(create, "docker volume create")?;
    let mut copy = Command::new("docker");
    copy.args([
        "run",
        "--rm",
        "--user",
        "0",
        "--entrypoint",
        "/bin/sh",
        "-v",
    ])
    .arg(format!("{volume}:/dst"))
    .arg("-v")
    .arg(format!("{}:/src:ro", compiled.display()))
    .arg(format!("kaggle-solver/base:{tag}"))
    .args(["-c", "cp /src/*.cwasm /dst/ && chown -R 10001:10001 /dst"]);
    run(copy, "seeding the compiled modules")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compose_stack_solves_the_demo_into_the_object_store() -> Result<()> {
    let tag = tag()?;
    for image in ["redis", "s3", "service"] {
        let name = format!("kaggle-solver/{image}:{tag}");
        let found = Command::new("docker")
            .args(["image", "inspect", &name])
            .output()
            .context("docker")?;
        ensure!(
            found.status.success(),
            "{name} is missing: build it with `bash deploy/build-offline.sh` (scripts/test does)"
        );
    }
    let dir = tempfile::tempdir()?;
    let token = uuid::Uuid::new_v4().simple().to_string();
    let secret = uuid::Uuid::new_v4().simple().to_string();
    let env_file = dir.path().join("ks.env");
    std::fs::write(
        &env_file,
        format!("KS_API_TOKEN={token}\nAWS_ACCESS_KEY_ID=kstest\nAWS_SECRET_ACCESS_KEY={secret}\n"),
    )?;
    let port = crate::support::free_port();
    let stack = Stack {
        project: format!("kstest{}", std::process::id()),
        env: vec![
            (
                "KS_ENV_FILE".into(),
                env_file.to_string_lossy().into_owned(),
            ),
            ("KS_PORT".into(), port.to_string()),
        ],
    };
    {
        // Over a gigabyte of modules: not while a disk test measures the host's disk.
        let _disk = crate::support::HOST_DISK.lock().await;
        seed_compiled_modules(&stack.project, &tag)?;
    }
    let mut up = compose(&stack.project, &stack.env());
    up.args(["up", "--detach", "--scale", "worker=2"]);
    run(up, "docker-compose up")?;

    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let started = Instant::now();
    loop {
        let healthy = http.get(format!("{base}/healthz")).send().await;
        if healthy.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        ensure!(
            started.elapsed() < Duration::from_secs(120),
            "the API did not answer /healthz within two minutes"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // The demo is in the workers' mirror: no Kaggle download. The `small` preset is a single
    // shot: this test is about the deployment, not the search.
    let url = "https://www.kaggle.com/competitions/penguins";
    let submitted: Value = http
        .post(format!("{base}/run"))
        .query(&[("url", url), ("policy", "small")])
        .bearer_auth(&token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let id = submitted["job_id"].as_str().context("job_id")?.to_owned();

    // The first job on a fresh volume also compiles the guest runtime for this CPU.
    let started = Instant::now();
    let status = loop {
        let status: Value = http
            .get(format!("{base}/status/{id}"))
            .bearer_auth(&token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        match status["status"].as_str() {
            Some("completed") => break status,
            Some("failed") => bail!("the job failed: {status}"),
            _ if started.elapsed() > Duration::from_secs(900) => {
                bail!("the job did not end within 15 minutes: {status}")
            }
            _ => tokio::time::sleep(Duration::from_secs(2)).await,
        }
    };
    ensure!(status["source"] == "s3", "{status}");
    let path = status["path"].as_str().context("path")?;
    ensure!(path.starts_with("s3://kaggle-solver/"), "{status}");

    let submission = http
        .get(format!("{base}/jobs/{id}/submission"))
        .bearer_auth(&token)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let sample = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/competitions/penguins/sample_submission.csv"),
    )?;
    ensure!(
        submission.lines().next() == sample.lines().next(),
        "the submission's header is not the sample's: {submission:.200}"
    );
    ensure!(submission.lines().count() == sample.lines().count());

    // Without the token, no data.
    let refused = http.get(format!("{base}/status/{id}")).send().await?;
    ensure!(refused.status() == reqwest::StatusCode::UNAUTHORIZED);
    drop(stack);
    Ok(())
}
