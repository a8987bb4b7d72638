//! The Docker backend on a real daemon: the shared conformance cases, each Docker-only cap as an
//! obeyed/violated pair, the hardening as `docker inspect` shows it, and the reaper.
//!
//! Nothing here is skipped when Docker is missing: `support::docker_sandbox` fails loudly.

use std::process::Command;
use std::time::{Duration, Instant};

use kaggle_solver::sandbox::{DockerSandbox, LimitHit, RunLimits, Sandbox, SandboxRequest};
use serde_json::Value;

use crate::llm::fake::{Fake, Provider, ok};
use crate::sandbox::conformance;
use crate::support::{binary, docker_sandbox, generous, run_in, tabular_input};

/// `docker …` output, failing the test when the CLI fails.
fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI runs");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Ids of the containers, running or not, carrying `label`.
fn containers_with(label: &str) -> Vec<String> {
    docker(&["ps", "-aq", "--filter", &format!("label={label}")])
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Waits until a container with `label` runs, and returns its id.
async fn wait_for_container(label: &str) -> String {
    let started = Instant::now();
    loop {
        if let Some(id) = containers_with(label).into_iter().next() {
            return id;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no container with {label} appeared"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn with_job(script: &str, output: &std::path::Path, limits: RunLimits) -> (SandboxRequest, String) {
    let job = format!("test-{}", uuid::Uuid::new_v4());
    let mut request = SandboxRequest::new(script, output, limits);
    request.job = Some(job.clone());
    (request, format!("io.kaggle-solver.job={job}"))
}

#[tokio::test]
async fn docker_conformance() {
    let sandbox = docker_sandbox().await;
    conformance::fits_a_model_and_writes_a_submission(&sandbox).await;
    conformance::reports_a_script_error(&sandbox).await;
    conformance::passes_on_the_exit_status(&sandbox).await;
    conformance::stops_at_the_wall_clock(&sandbox).await;
    conformance::caps_output(&sandbox).await;
    conformance::has_no_submission_when_the_script_writes_none(&sandbox).await;
}

#[tokio::test]
async fn an_xgboost_script_writes_a_submission() {
    let sandbox = docker_sandbox().await;
    let input = tabular_input(400);
    let script = r#"
import pandas as pd
import xgboost as xgb
train = pd.read_csv("/input/train.csv")
test = pd.read_csv("/input/test.csv")
features = ["x1", "x2"]
model = xgb.XGBClassifier(n_estimators=20, max_depth=3).fit(train[features], train["target"])
pd.DataFrame({"id": test["id"], "target": model.predict(test[features])}).to_csv(
    "/output/submission.csv", index=False)
print("xgboost", xgb.__version__)
"#;
    let ran = run_in(&sandbox, script, Some(input.path()), generous()).await;
    assert!(ran.outcome.succeeded(), "{:#?}", ran.outcome);
    assert!(
        ran.outcome.stdout.starts_with("xgboost "),
        "{}",
        ran.outcome.stdout
    );
    let submission =
        std::fs::read_to_string(ran.output.path().join("submission.csv")).expect("written");
    assert_eq!(submission.lines().next(), Some("id,target"));
    assert_eq!(submission.lines().count(), 101);
}

const ALLOCATE_300_MB: &str = "block = bytearray(300 * 1024 * 1024)\nprint(len(block))\n";

#[tokio::test]
async fn memory_obeyed() {
    let limits = RunLimits {
        memory_bytes: 1 << 30,
        ..generous()
    };
    let ran = run_in(&docker_sandbox().await, ALLOCATE_300_MB, None, limits).await;
    assert!(ran.outcome.succeeded(), "{:#?}", ran.outcome);
    assert_eq!(ran.outcome.stdout, format!("{}\n", 300 << 20));
}

#[tokio::test]
async fn memory_violated_is_an_oom_kill() {
    let limits = RunLimits {
        memory_bytes: 128 << 20,
        ..generous()
    };
    let ran = run_in(&docker_sandbox().await, ALLOCATE_300_MB, None, limits).await;
    assert_eq!(
        ran.outcome.limit,
        Some(LimitHit::Memory),
        "{:#?}",
        ran.outcome
    );
    assert_eq!(ran.outcome.exit_code, None);
    assert_eq!(
        ran.outcome.trap.as_deref(),
        Some("killed by the kernel: out of memory")
    );
}

#[tokio::test]
async fn sleeping_past_the_deadline_is_killed_and_the_container_removed() {
    let sandbox = docker_sandbox().await;
    let output = tempfile::tempdir().expect("tempdir");
    let limits = RunLimits {
        wall_time: Duration::from_secs(3),
        ..generous()
    };
    let (request, label) = with_job("import time\ntime.sleep(600)\n", output.path(), limits);
    let outcome = sandbox.run(request).await.expect("runs");
    assert_eq!(outcome.limit, Some(LimitHit::WallTime), "{outcome:#?}");
    assert_eq!(outcome.exit_code, None);
    assert!(
        (3000..15_000).contains(&outcome.wall_ms),
        "{}",
        outcome.wall_ms
    );
    assert_eq!(containers_with(&label), Vec::<String>::new(), "removed");
}

const COUNT_FORKS: &str = r#"
import os, time
children = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        children += 1
except OSError as e:
    print("refused after", children, type(e).__name__)
"#;

#[tokio::test]
async fn forks_within_the_pids_limit_succeed() {
    let sandbox = docker_sandbox().await;
    let output = tempfile::tempdir().expect("tempdir");
    let script = "import os\nkids = []\nfor _ in range(3):\n    pid = os.fork()\n    if pid == 0:\n        os._exit(0)\n    kids.append(pid)\nfor k in kids:\n    os.waitpid(k, 0)\nprint('forked', len(kids))\n";
    let mut request = SandboxRequest::new(script, output.path(), generous());
    request.docker.pids = 32;
    let outcome = sandbox.run(request).await.expect("runs");
    assert!(outcome.succeeded(), "{outcome:#?}");
    assert_eq!(outcome.stdout, "forked 3\n");
}

#[tokio::test]
async fn a_fork_bomb_is_contained_by_the_pids_limit() {
    let sandbox = docker_sandbox().await;
    let output = tempfile::tempdir().expect("tempdir");
    let mut request = SandboxRequest::new(COUNT_FORKS, output.path(), generous());
    request.docker.pids = 32;
    let outcome = sandbox.run(request).await.expect("runs");
    assert!(outcome.succeeded(), "{outcome:#?}");
    let children: usize = outcome
        .stdout
        .split_whitespace()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{outcome:#?}"));
    assert!(
        (16..32).contains(&children),
        "the 32-process cap (init and python included) stopped it: {children}"
    );
    assert!(
        outcome.stdout.ends_with("BlockingIOError\n"),
        "{}",
        outcome.stdout
    );

    // The real thing: every process forks forever. It must end at the deadline, taking every
    // process with it, and leave the host alone.
    let output = tempfile::tempdir().expect("tempdir");
    let limits = RunLimits {
        wall_time: Duration::from_secs(5),
        ..generous()
    };
    let bomb =
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n";
    let (mut request, label) = with_job(bomb, output.path(), limits);
    request.docker.pids = 32;
    let outcome = sandbox.run(request).await.expect("runs");
    assert_eq!(outcome.limit, Some(LimitHit::WallTime), "{outcome:#?}");
    assert_eq!(containers_with(&label), Vec::<String>::new(), "removed");
}

#[tokio::test]
async fn the_network_is_unreachable() {
    let script = "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=5)\n";
    let ran = run_in(&docker_sandbox().await, script, None, generous()).await;
    assert_eq!(ran.outcome.exit_code, Some(1), "{:#?}", ran.outcome);
    let error = ran.outcome.error.expect("an error");
    assert_eq!(error.kind, "OSError", "{error:?}");
    assert!(error.message.contains("unreachable"), "{error:?}");
}

#[tokio::test]
async fn the_root_filesystem_is_read_only_and_tmp_is_not_executable() {
    let script = r##"
import os, subprocess
open("/tmp/x.sh", "w").write("#!/bin/sh\necho ran\n")
os.chmod("/tmp/x.sh", 0o755)
try:
    subprocess.run(["/tmp/x.sh"], check=True)
    print("executed")
except PermissionError:
    print("noexec")
open("/evil", "w").write("x")
"##;
    let ran = run_in(&docker_sandbox().await, script, None, generous()).await;
    assert_eq!(ran.outcome.stdout, "noexec\n", "{:#?}", ran.outcome);
    let error = ran.outcome.error.expect("an error");
    assert_eq!(error.kind, "OSError", "{error:?}");
    assert!(error.message.contains("Read-only file system"), "{error:?}");
}

#[tokio::test]
async fn links_in_output_are_deleted_not_followed() {
    let secret = tempfile::NamedTempFile::new().expect("a host file");
    std::fs::write(secret.path(), "host secret").expect("write");
    let script = format!(
        "import os\nos.symlink({:?}, '/output/submission.csv')\nos.symlink('/', '/output/root')\n\
         os.mkfifo('/output/pipe')\nopen('/output/real.txt', 'w').write('ok')\n",
        secret.path().display().to_string()
    );
    let ran = run_in(&docker_sandbox().await, &script, None, generous()).await;
    assert!(ran.outcome.succeeded(), "{:#?}", ran.outcome);
    let out = ran.output.path();
    let mut left: Vec<_> = std::fs::read_dir(out)
        .expect("readable")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();
    left.sort();
    assert_eq!(left, ["real.txt"]);
    assert!(ran.outcome.stderr.contains("submission.csv from /output"));
    assert_eq!(
        std::fs::read_to_string(secret.path()).expect("intact"),
        "host secret"
    );
}

#[tokio::test]
async fn a_running_sandbox_shows_every_hardening_flag() {
    let sandbox = docker_sandbox().await;
    let output = tempfile::tempdir().expect("tempdir");
    let input = tabular_input(10);
    let (mut request, label) =
        with_job("import time\ntime.sleep(120)\n", output.path(), generous());
    request = request.with_input(input.path());
    request.docker.pids = 100;
    request.docker.cpus = 0.5;
    let cancel = request.cancel.clone();
    let run = tokio::spawn(async move { sandbox.run(request).await });
    let id = wait_for_container(&label).await;
    let inspect: Value =
        serde_json::from_str(&docker(&["inspect", &id])).expect("docker inspect prints JSON");
    let c = &inspect[0];
    let host = &c["HostConfig"];
    assert_eq!(c["State"]["Running"], true);
    assert_eq!(host["NetworkMode"], "none");
    assert_eq!(c["Config"]["NetworkDisabled"], true);
    assert_eq!(host["ReadonlyRootfs"], true);
    assert_eq!(host["CapDrop"], serde_json::json!(["ALL"]));
    assert_eq!(
        host["SecurityOpt"],
        serde_json::json!(["no-new-privileges"])
    );
    assert_eq!(c["Config"]["User"], "65534:65534");
    assert_eq!(host["PidsLimit"], 100);
    assert_eq!(host["Memory"], 2_i64 << 30);
    assert_eq!(host["MemorySwap"], host["Memory"]);
    assert_eq!(host["NanoCpus"], 500_000_000);
    assert_eq!(host["Init"], true);
    assert_eq!(host["LogConfig"]["Type"], "none");
    let tmp = host["Tmpfs"]["/tmp"].as_str().expect("a /tmp tmpfs");
    assert!(tmp.contains("noexec") && tmp.contains("size="), "{tmp}");
    let ulimits = host["Ulimits"].to_string();
    assert!(
        ulimits.contains("nofile") && ulimits.contains("core"),
        "{ulimits}"
    );
    let mounts = c["Mounts"].as_array().expect("mounts");
    let rw = |dest: &str| {
        mounts
            .iter()
            .find(|m| m["Destination"] == dest)
            .map(|m| m["RW"].clone())
    };
    assert_eq!(rw("/input"), Some(Value::Bool(false)));
    assert_eq!(rw("/ks"), Some(Value::Bool(false)));
    assert_eq!(rw("/output"), Some(Value::Bool(true)));
    assert_eq!(mounts.len(), 3, "nothing else of the host: {mounts:?}");
    let env = c["Config"]["Env"].to_string();
    assert!(!env.contains("KS_") && !env.contains("KEY"), "{env}");
    assert!(c["Config"]["Labels"]["io.kaggle-solver.owner"].is_string());

    cancel.cancel();
    let outcome = run.await.expect("joins").expect("runs");
    assert!(outcome.cancelled, "{outcome:#?}");
    assert_eq!(containers_with(&label), Vec::<String>::new(), "removed");
}

#[tokio::test]
async fn the_next_start_reaps_a_killed_hosts_container() {
    docker_sandbox().await; // fails loudly without a daemon or the image
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("sleep.py");
    std::fs::write(&script, "import time\ntime.sleep(300)\n").expect("write");
    let mut child = Command::new(binary())
        .args(["sandbox", "run", "--backend", "docker"])
        .arg(&script)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("kaggle-solver starts");
    let label = format!("io.kaggle-solver.owner-pid={}", child.id());
    let id = wait_for_container(&label).await;
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped by us");
    assert_eq!(
        docker(&["inspect", "--format", "{{.State.Running}}", &id]),
        "true",
        "the orphan outlives its killed host"
    );
    // Any new Docker sandbox start reaps; ours, in this live process, are left alone.
    docker_sandbox().await;
    assert_eq!(containers_with(&label), Vec::<String>::new(), "reaped");
}

#[test]
fn sandbox_run_picks_docker_for_native_imports() {
    for (script, printed) in [
        ("import xgboost\nprint(xgboost.__name__)\n", "xgboost\n"),
        // Two statements on one line: both are read.
        (
            "import xgboost; import os\nprint(xgboost.__name__, os.name)\n",
            "xgboost posix\n",
        ),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("script.py");
        std::fs::write(&path, script).expect("write");
        let output = Command::new(binary())
            .args(["sandbox", "run"])
            .arg(&path)
            .output()
            .expect("kaggle-solver runs");
        let json: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&output.stderr));
        });
        assert_eq!(json["backend"], "docker", "{json}");
        assert_eq!(json["stdout"], printed, "{json}");
        assert_eq!(output.status.code(), Some(0));
    }
}

/// Code for the demo competition that only the Docker backend can run.
const XGBOOST_PIPELINE: &str = r#"
import pandas as pd
import xgboost as xgb
train = pd.read_csv("/input/train.csv")
test = pd.read_csv("/input/test.csv")
sub = pd.read_csv("/input/sample_submission.csv")
features = [c for c in train.columns if c not in ("id", "species")]
X = pd.get_dummies(pd.concat([train[features], test[features]]), dtype=float)
classes = sorted(train["species"].unique())
y = train["species"].map({c: i for i, c in enumerate(classes)})
model = xgb.XGBClassifier(n_estimators=100, max_depth=3).fit(X[: len(train)], y)
predicted = model.predict(X[len(train):])
sub["species"] = [classes[i] for i in predicted]
sub.to_csv("/output/submission.csv", index=False)
"#;

/// The same pipeline with LightGBM.
const LIGHTGBM_PIPELINE: &str = r#"
import pandas as pd
from lightgbm import LGBMClassifier
train = pd.read_csv("/input/train.csv")
test = pd.read_csv("/input/test.csv")
sub = pd.read_csv("/input/sample_submission.csv")
features = [c for c in train.columns if c not in ("id", "species")]
X = pd.get_dummies(pd.concat([train[features], test[features]]), dtype=float)
model = LGBMClassifier(n_estimators=50, num_leaves=7, n_jobs=1, verbose=-1)
model.fit(X[: len(train)], train["species"])
sub["species"] = model.predict(X[len(train):])
sub.to_csv("/output/submission.csv", index=False)
"#;

/// The same pipeline with CatBoost, its categorical columns given as they are.
const CATBOOST_PIPELINE: &str = r#"
import pandas as pd
import catboost
train = pd.read_csv("/input/train.csv")
test = pd.read_csv("/input/test.csv")
sub = pd.read_csv("/input/sample_submission.csv")
features = [c for c in train.columns if c not in ("id", "species")]
categorical = [c for c in features if not pd.api.types.is_numeric_dtype(train[c])]
def prepare(frame):
    frame = frame[features].copy()
    frame[categorical] = frame[categorical].fillna("missing").astype(str)
    return frame
model = catboost.CatBoostClassifier(
    iterations=50, depth=4, thread_count=1, verbose=0, train_dir="/tmp/catboost"
)
model.fit(prepare(train), train["species"], cat_features=categorical)
sub["species"] = model.predict(prepare(test)).ravel()
sub.to_csv("/output/submission.csv", index=False)
"#;

/// `kaggle-solver solve` of the demo with a fake LLM that replies `code`, on the image this
/// build pins (a policy file naming it: `latest` may point elsewhere on a shared daemon); checks
/// the submission and returns the code the solve kept.
async fn solve_on_docker(code: &str) -> String {
    docker_sandbox().await; // fails loudly without a daemon or the image
    let reply = format!("```python\n{code}```");
    let fake = Fake::start(Provider::OpenAi, vec![ok(Provider::OpenAi, &reply)])
        .await
        .expect("the fake LLM starts");
    let out = tempfile::tempdir().expect("tempdir");
    let policy = out.path().join("pinned.toml");
    let default = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../policies/default.toml"
    ))
    .expect("the default policy");
    let image = format!("image = \"{}\"", DockerSandbox::pinned_image());
    let pinned = default.replace("image = \"kaggle-solver/native:latest\"", &image);
    assert_ne!(pinned, default, "the default policy names the latest image");
    // A single shot: the search has its own tests.
    let pinned = pinned.replace("candidates = 4", "candidates = 1");
    assert!(
        pinned.contains("candidates = 1"),
        "the default policy sets candidates"
    );
    std::fs::write(&policy, pinned).expect("write the policy");
    let base = format!("http://{}/v1", fake.addr);
    let out_dir = out.path().join("out");
    let run_dir = out_dir.clone();
    let output = tokio::task::spawn_blocking(move || {
        crate::support::solve_with_llm(&base, &run_dir)
            .arg("--policy")
            .arg(&policy)
            .output()
            .expect("kaggle-solver runs")
    })
    .await
    .expect("joins");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("after 1 attempt(s)"), "{stderr}");
    let submission =
        std::fs::read_to_string(out_dir.join("submission.csv")).expect("submission.csv");
    let sample = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/competitions/penguins/sample_submission.csv"
    ))
    .expect("the sample");
    assert_eq!(submission.lines().count(), sample.lines().count());
    assert_eq!(submission.lines().next(), Some("id,species"));
    std::fs::read_to_string(out_dir.join("solution.py")).expect("solution.py")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_solve_whose_code_needs_xgboost_runs_on_docker() {
    let code = solve_on_docker(XGBOOST_PIPELINE).await;
    assert!(code.contains("import xgboost"), "{code}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_solve_whose_code_needs_lightgbm_runs_on_docker() {
    let code = solve_on_docker(LIGHTGBM_PIPELINE).await;
    assert!(code.contains("from lightgbm import"), "{code}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_solve_whose_code_needs_catboost_runs_on_docker() {
    let code = solve_on_docker(CATBOOST_PIPELINE).await;
    assert!(code.contains("import catboost"), "{code}");
}
