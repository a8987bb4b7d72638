//! A whole deployment for one test: a real `redis-server`, a `kaggle-solver serve` process
//! (the API, no embedded workers) and `kaggle-solver worker` processes, all from the built
//! binary, plus a fake OpenAI-compatible server that hands every job the script the test
//! chooses. The jobs run the real pipeline (fetch from the local mirror, analyse, generate,
//! run on the real WASI sandbox, validate, store); only the LLM is scripted, so that a job
//! costs a fraction of a second (or sleeps as long as a test needs it to).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use kaggle_solver::queue::{JobId, JobQueue, JobRecord, QueueConfig, RedisQueue};
use serde_json::Value;
use tempfile::TempDir;

use crate::llm::fake::{KEY, MODEL, Provider, ok};
use crate::redis_server::RedisServer;

pub const PENGUINS: &str = "https://www.kaggle.com/competitions/penguins";

/// A valid submission for the demo with the standard library only: quick in the sandbox.
pub const QUICK: &str = "import csv\n\
rows = list(csv.reader(open('/input/sample_submission.csv')))\n\
with open('/output/submission.csv', 'w', newline='') as f:\n    \
    w = csv.writer(f, lineterminator='\\n')\n    \
    w.writerow(rows[0])\n    \
    for r in rows[1:]:\n        \
        w.writerow([r[0], 'Adelie'])\n\
print('validation accuracy: 0.44')\n";

/// [`QUICK`] after sleeping `seconds` (in the guest: the sandbox is busy that long).
pub fn slow(seconds: u32) -> String {
    format!("import time\ntime.sleep({seconds})\n{QUICK}")
}

/// The workspace root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub use crate::support::binary;

/// An OpenAI-compatible server that answers every request with the current script.
#[derive(Debug, Clone)]
pub struct ScriptServer {
    pub addr: SocketAddr,
    script: Arc<Mutex<String>>,
}

impl ScriptServer {
    pub async fn start(script: &str) -> Result<Self> {
        let shared = Arc::new(Mutex::new(script.to_owned()));
        let state = shared.clone();
        let app = axum::Router::new().fallback(move || {
            let script = state.lock().expect("the script").clone();
            async move {
                let reply = ok(Provider::OpenAi, &format!("```python\n{script}```"));
                axum::Json(reply.body)
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self {
            addr,
            script: shared,
        })
    }

    pub fn set(&self, script: &str) {
        *self.script.lock().expect("the script") = script.to_owned();
    }
}

/// A child process with its first stdout line read, killed on drop.
#[derive(Debug)]
pub struct Proc {
    pub child: Child,
    pub first_line: Value,
    _stdout: BufReader<ChildStdout>,
}

impl Proc {
    /// Sends `signal` (e.g. `TERM`) with kill(1).
    pub fn signal(&self, signal: &str) -> Result<()> {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()?;
        anyhow::ensure!(status.success(), "kill -{signal} failed");
        Ok(())
    }

    /// Waits up to `within` for the process to exit; its success.
    pub fn wait_exit(&mut self, within: Duration) -> Result<bool> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status.success());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("still running after {within:?}")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Redis + API + workers + the script server, with their data in one temporary folder.
#[derive(Debug)]
pub struct Cluster {
    pub redis: RedisServer,
    pub script: ScriptServer,
    pub dir: TempDir,
    pub api: Proc,
    pub base: String,
    pub workers: Vec<Proc>,
    pub http: reqwest::Client,
    pub queue: RedisQueue,
    lease: String,
    setup: Setup,
}

/// What a cluster's processes get beyond the defaults.
#[derive(Debug, Clone, Default)]
pub struct Setup {
    /// More variables for every process (e.g. `KS_STORE` and the `AWS_*` ones).
    pub env: Vec<(String, String)>,
    /// Each process gets a data folder of its own (`<name>-data`) instead of the shared `data`.
    pub separate_data: bool,
}

impl Setup {
    fn data_dir(&self, dir: &Path, name: &str) -> PathBuf {
        if self.separate_data {
            dir.join(format!("{name}-data"))
        } else {
            dir.join("data")
        }
    }
}

impl Cluster {
    /// Starts everything with `workers` worker processes on leases of `lease` (e.g. `3s`).
    pub async fn start(workers: usize, lease: &str, script: &str) -> Result<Self> {
        Self::start_with(workers, lease, script, Setup::default()).await
    }

    /// [`Cluster::start`] with `setup`.
    pub async fn start_with(
        workers: usize,
        lease: &str,
        script: &str,
        setup: Setup,
    ) -> Result<Self> {
        // Install and compile the guest runtime once, here, rather than in every worker.
        tokio::task::spawn_blocking(crate::support::wasm_sandbox).await?;
        let redis = RedisServer::start();
        let script = ScriptServer::start(script).await?;
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join("policies"))?;
        std::fs::write(
            dir.path().join("policies/quick.toml"),
            "# One attempt, WASI only: the service tests' jobs.\n[limits]\nwall-time = \"2m\"\n\
             [attempts]\nmax = 1\n[search]\ncandidates = 1\n[sandbox]\nbackends = [\"wasm\"]\n",
        )?;
        let mut cluster = Self {
            api: Proc::spawn_with(
                &redis.url(),
                &script,
                dir.path(),
                lease,
                &["serve", "--bind", "127.0.0.1:0", "--workers", "0"],
                "api",
                &setup,
            )
            .await?,
            queue: RedisQueue::connect(&redis.url(), QueueConfig::default()).await?,
            base: String::new(),
            redis,
            script,
            dir,
            workers: Vec::new(),
            http: reqwest::Client::new(),
            lease: lease.to_owned(),
            setup,
        };
        let listening = cluster.api.first_line["listening"]
            .as_str()
            .context("serve prints where it listens")?;
        cluster.base = format!("http://{listening}");
        for _ in 0..workers {
            cluster.add_worker().await?;
        }
        Ok(cluster)
    }

    /// Starts one more worker process.
    pub async fn add_worker(&mut self) -> Result<()> {
        self.add_worker_with(&[]).await
    }

    /// Starts one more worker process with `extra` arguments.
    pub async fn add_worker_with(&mut self, extra: &[&str]) -> Result<()> {
        let name = format!("worker-{}", self.workers.len());
        let mut args = vec!["worker", "--concurrency", "2"];
        args.extend_from_slice(extra);
        let worker = Proc::spawn_with(
            &self.redis.url(),
            &self.script,
            self.dir.path(),
            &self.lease,
            &args,
            &name,
            &self.setup,
        )
        .await?;
        self.workers.push(worker);
        Ok(())
    }

    /// The index of the worker process holding `record`.
    pub fn holder(&self, record: &JobRecord) -> Option<usize> {
        let held = record.worker.as_ref()?;
        self.workers
            .iter()
            .position(|w| w.first_line["worker"].as_str() == Some(held.0.as_str()))
    }

    /// The submissions folder the workers store into.
    pub fn submissions(&self) -> PathBuf {
        self.dir.path().join("data/submissions")
    }

    /// `POST /run` for the demo with the `quick` policy; the job id.
    pub async fn submit(&self) -> Result<String> {
        let response = self
            .http
            .post(format!("{}/run", self.base))
            .query(&[("url", PENGUINS), ("policy", "quick")])
            .send()
            .await?;
        anyhow::ensure!(response.status() == 202, "submit: {}", response.status());
        let body: Value = response.json().await?;
        Ok(body["job_id"].as_str().context("job_id")?.to_owned())
    }

    /// `GET /status/{id}`'s body.
    pub async fn status(&self, id: &str) -> Result<Value> {
        let url = format!("{}/status/{id}", self.base);
        Ok(self.http.get(url).send().await?.json().await?)
    }

    /// Polls until `done` holds for the status, or fails after `within`.
    pub async fn wait_for(
        &self,
        id: &str,
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        let deadline = Instant::now() + within;
        loop {
            let status = self.status(id).await?;
            if done(&status) {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("{id}: still {status} after {within:?}\n{}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The queue's record.
    pub async fn record(&self, id: &str) -> Result<JobRecord> {
        self.queue
            .get(&JobId(id.to_owned()))
            .await?
            .context("a record")
    }

    /// Every process's stderr, for failure messages.
    pub fn logs(&self) -> String {
        let mut all = String::new();
        for entry in std::fs::read_dir(self.dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "log") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let skip = text.len().saturating_sub(6_000);
                let tail = text.get(skip..).unwrap_or(&text);
                all.push_str(&format!("==> {}\n{tail}\n", path.display()));
            }
        }
        all
    }
}

impl Proc {
    async fn spawn_with(
        redis: &str,
        script: &ScriptServer,
        dir: &Path,
        lease: &str,
        args: &[&str],
        name: &str,
        setup: &Setup,
    ) -> Result<Self> {
        let log = std::fs::File::create(dir.join(format!("{name}.log")))?;
        let mut command = Command::new(binary());
        command
            .args(args)
            .current_dir(repo())
            .env("KS_REDIS_URL", redis)
            .env("KS_DATA_DIR", setup.data_dir(dir, name))
            .env("KS_POLICY_DIR", dir.join("policies"))
            .env("KS_API_POLICIES", "quick")
            .env("KS_COMPETITIONS_DIR", repo().join("examples/competitions"))
            .env("KS_LEASE", lease)
            .env("KS_GRACE", "30s")
            .env("OPENAI_BASE_URL", format!("http://{}/v1", script.addr))
            .env("OPENAI_API_KEY", KEY)
            .env("KS_MODEL", MODEL)
            .env("KS_LOG", "kaggle_solver=info")
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("KS_API_TOKEN")
            .env_remove("KS_GENERATOR")
            .env_remove("KS_STORE")
            .envs(setup.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        let mut child = command.spawn().context("spawning kaggle-solver")?;
        let stdout = child.stdout.take().context("stdout")?;
        let read = tokio::task::spawn_blocking(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            reader.read_line(&mut line).map(|_| (reader, line))
        });
        let (reader, line) = match tokio::time::timeout(Duration::from_secs(120), read).await {
            Ok(read) => read??,
            Err(_) => {
                let _ = child.kill();
                bail!("{name} printed nothing within 2 minutes");
            }
        };
        let first_line = serde_json::from_str(&line).with_context(|| {
            let log = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
            format!("{name}'s first line {line:?}; its log:\n{log}")
        })?;
        Ok(Self {
            child,
            first_line,
            _stdout: reader,
        })
    }
}
