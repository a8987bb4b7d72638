//! Nothing left behind: a finished job keeps its submission and its logs and nothing else,
//! however it ended (completed, failed by its code, failed by the host, cancelled mid-run), and
//! the work folder of a worker process that was SIGKILLed mid-run is removed by the next
//! worker to start.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use async_trait::async_trait;
use kaggle_solver::host::Host;
use kaggle_solver::pipeline::generate::{
    GenerateError, GeneratedCode, GenerationRequest, Generator,
};
use kaggle_solver::pipeline::solve::Sandboxes;
use kaggle_solver::policies::PolicyDir;
use kaggle_solver::queue::{JobId, JobRecord, JobStatus};
use kaggle_solver::worker::WorkerConfig;
use tokio_util::sync::CancellationToken;

use super::cluster::{Cluster, PENGUINS, QUICK, slow};
use super::inproc::mirror_fetcher;
use crate::support::wasm_sandbox;

/// Hands out whatever code the test set last.
#[derive(Debug, Default)]
struct Settable(Mutex<String>);

impl Settable {
    fn set(&self, code: &str) {
        *self.0.lock().expect("the code") = code.to_owned();
    }
}

#[async_trait]
impl Generator for Settable {
    fn name(&self) -> String {
        "settable".into()
    }

    async fn generate(&self, _: &GenerationRequest<'_>) -> Result<GeneratedCode, GenerateError> {
        Ok(GeneratedCode {
            code: self.0.lock().expect("the code").clone(),
            generator: self.name(),
            llm: None,
        })
    }
}

/// Every file and every empty folder (with a trailing `/`) under `root`, relative to it.
fn files(root: &Path) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let mut empty = true;
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            empty = false;
            if entry.file_type()?.is_dir() {
                pending.push(entry.path());
            } else {
                out.insert(entry.path().strip_prefix(root)?.display().to_string());
            }
        }
        if empty {
            out.insert(format!("{}/", dir.strip_prefix(root)?.display()));
        }
    }
    Ok(out)
}

async fn wait_for(
    host: &Host,
    id: &JobId,
    within: Duration,
    done: impl Fn(&JobRecord) -> bool,
) -> Result<JobRecord> {
    let deadline = Instant::now() + within;
    loop {
        let record = host.status(id).await?.context("the job's record")?;
        if done(&record) {
            return Ok(record);
        }
        if Instant::now() > deadline {
            bail!("{id}: still {record:?} after {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_jobs_keep_their_submission_and_logs_and_nothing_else() -> Result<()> {
    let wasm = tokio::task::spawn_blocking(wasm_sandbox).await?;
    let dir = tempfile::tempdir()?;
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies)?;
    std::fs::write(
        policies.join("quick.toml"),
        "[attempts]\nmax = 1\n[search]\ncandidates = 1\n[sandbox]\nbackends = [\"wasm\"]\n",
    )?;
    // Below the pre-warmed guest's initial memory: the host refuses to run the code at all.
    std::fs::write(
        policies.join("tiny.toml"),
        "[limits]\nmemory = \"64MiB\"\n[attempts]\nmax = 1\n[search]\ncandidates = 1\n[sandbox]\nbackends = [\"wasm\"]\n",
    )?;
    let code = Arc::new(Settable::default());
    let data = dir.path().join("data");
    let host = Host::builder()
        .policies(PolicyDir::new(&policies))
        .allowed_policies(["quick", "tiny"])
        .fetcher(mirror_fetcher(dir.path()))
        .sandboxes(Sandboxes {
            wasm: Some(Arc::new(wasm)),
            docker: None,
        })
        .generator(code.clone())
        .data_dir(&data)
        .workers(1)
        .worker_config(WorkerConfig::with_lease(Duration::from_secs(10)))
        .build()
        .await?;
    let shutdown = CancellationToken::new();
    let workers = tokio::spawn(host.run_workers(shutdown.clone()));
    let ended = |r: &JobRecord| r.status.is_terminal();
    let within = Duration::from_secs(90);

    code.set(QUICK);
    let completed = host.submit(PENGUINS, Some("quick")).await?;
    let record = wait_for(&host, &completed, within, ended).await?;
    ensure!(record.status == JobStatus::Completed, "{record:?}");

    code.set("import sys\nprint('no model today', file=sys.stderr)\nsys.exit(3)\n");
    let failed = host.submit(PENGUINS, Some("quick")).await?;
    let record = wait_for(&host, &failed, within, ended).await?;
    ensure!(record.status == JobStatus::Failed, "{record:?}");
    ensure!(
        record
            .message
            .as_deref()
            .is_some_and(|m| m.contains("all 1 attempts failed"))
    );

    let refused = host.submit(PENGUINS, Some("tiny")).await?;
    let record = wait_for(&host, &refused, within, ended).await?;
    ensure!(record.status == JobStatus::Failed, "{record:?}");
    ensure!(
        record
            .message
            .as_deref()
            .is_some_and(|m| m.contains("cannot run the code")),
        "{record:?}"
    );

    code.set(&slow(120));
    let cancelled = host.submit(PENGUINS, Some("quick")).await?;
    wait_for(&host, &cancelled, within, |r| {
        r.stage == Some(kaggle_solver::pipeline::solve::Stage::Run)
    })
    .await?;
    // The run is under way: its folder, and its /tmp inside it, exist now.
    let attempt = data.join("work").join(&cancelled.0);
    ensure!(
        files(&attempt)?.iter().any(|f| f.ends_with("/owner")),
        "{:?}",
        files(&attempt)?
    );
    host.cancel(&cancelled).await?;
    let record = wait_for(&host, &cancelled, within, ended).await?;
    ensure!(record.message.as_deref() == Some("cancelled"), "{record:?}");

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), workers).await??;
    let want: BTreeSet<String> = [
        format!("submissions/{completed}/submission.csv"),
        format!("work/{completed}/logs.json"),
        format!("work/{failed}/logs.json"),
        format!("work/{refused}/logs.json"),
        format!("work/{cancelled}/logs.json"),
    ]
    .into_iter()
    .collect();
    ensure!(
        files(&data)? == want,
        "left under the data folder: {:?}",
        files(&data)?
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_worker_sweeps_the_folder_of_a_sigkilled_one() -> Result<()> {
    let mut cluster = Cluster::start(1, "3s", &slow(120)).await?;
    let id = cluster.submit().await?;
    cluster
        .wait_for(&id, Duration::from_secs(60), |s| s["stage"] == "run")
        .await?;
    let job_dir = cluster.dir.path().join("data/work").join(&id);
    let claims: Vec<_> = std::fs::read_dir(&job_dir)?
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.path())
        .collect();
    ensure!(claims.len() == 1, "{claims:?}");
    let claim = claims[0].clone();
    let owner = std::fs::read_to_string(claim.join("owner"))?;
    let pid = cluster.workers[0].child.id().to_string();
    ensure!(
        owner.split('/').nth_back(1) == Some(pid.as_str()),
        "{owner} names pid {pid}"
    );
    ensure!(claim.join("attempt-1/output").is_dir());

    cluster.workers[0].child.kill()?;
    cluster.workers[0].child.wait()?;
    // Nobody is left to clean up after it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    ensure!(
        claim.join("attempt-1/output").is_dir(),
        "removed before any worker started"
    );

    cluster.script.set(QUICK);
    cluster.add_worker().await?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while claim.exists() {
        ensure!(
            Instant::now() < deadline,
            "the dead worker's folder stays\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Its job, reaped, completes on the new worker and leaves nothing behind on disk: with
    // the queue in Redis, its logs are there.
    let done = cluster
        .wait_for(&id, Duration::from_secs(90), |s| {
            s["status"] == "completed" || s["status"] == "failed"
        })
        .await?;
    ensure!(done["status"] == "completed", "{done}\n{}", cluster.logs());
    ensure!(
        !job_dir.exists(),
        "{:?}",
        std::fs::read_dir(&job_dir)?.count()
    );
    let logs: serde_json::Value = cluster
        .http
        .get(format!("{}/jobs/{id}/logs", cluster.base))
        .send()
        .await?
        .json()
        .await?;
    ensure!(
        logs["events"]
            .as_array()
            .and_then(|e| e.last())
            .map(|e| &e["message"])
            == Some(&serde_json::Value::from("completed")),
        "{logs}"
    );
    Ok(())
}
