//! The WASI sandbox: the shared conformance cases, each cap as an obeyed/violated pair, and
//! the isolation promises of the guest contract.

use std::time::Duration;

use kaggle_solver::sandbox::{LimitHit, RunLimits, Sandbox, SandboxRequest};

use crate::support::{generous, run_in, run_wasm, tabular_input, wasm_sandbox};

/// Cases every `Sandbox` implementation must pass with the same outcome.
pub(crate) mod conformance {
    use super::*;

    pub async fn fits_a_model_and_writes_a_submission(sandbox: &dyn Sandbox) {
        let input = tabular_input(400);
        let script = r#"
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
train = pd.read_csv("/input/train.csv")
test = pd.read_csv("/input/test.csv")
features = ["x1", "x2"]
model = HistGradientBoostingClassifier(max_iter=20).fit(train[features], train["target"])
pd.DataFrame({"id": test["id"], "target": model.predict(test[features])}).to_csv(
    "/output/submission.csv", index=False)
print("rows", len(test))
"#;
        let ran = run_in(sandbox, script, Some(input.path()), generous()).await;
        assert!(ran.outcome.succeeded(), "{:#?}", ran.outcome);
        assert_eq!(ran.outcome.stdout, "rows 100\n");
        let submission = std::fs::read_to_string(ran.output.path().join("submission.csv"))
            .expect("the script wrote /output/submission.csv");
        assert_eq!(submission.lines().next(), Some("id,target"));
        assert_eq!(submission.lines().count(), 101);
    }

    pub async fn reports_a_script_error(sandbox: &dyn Sandbox) {
        let ran = run_in(
            sandbox,
            "x = 1\nraise KeyError('no such column')\n",
            None,
            generous(),
        )
        .await;
        assert_eq!(ran.outcome.exit_code, Some(1));
        assert_eq!(ran.outcome.limit, None);
        let error = ran.outcome.error.as_ref().expect("a structured error");
        assert_eq!(error.kind, "KeyError");
        assert_eq!(error.line, Some(2));
        assert!(
            ran.outcome.stderr.contains("Traceback"),
            "{}",
            ran.outcome.stderr
        );
    }

    pub async fn passes_on_the_exit_status(sandbox: &dyn Sandbox) {
        let ran = run_in(sandbox, "import sys\nsys.exit(3)\n", None, generous()).await;
        assert_eq!(ran.outcome.exit_code, Some(3));
        assert_eq!(ran.outcome.error, None);
    }

    pub async fn stops_at_the_wall_clock(sandbox: &dyn Sandbox) {
        let limits = RunLimits {
            wall_time: Duration::from_secs(2),
            ..generous()
        };
        let ran = run_in(sandbox, "while True:\n    pass\n", None, limits).await;
        assert_eq!(
            ran.outcome.limit,
            Some(LimitHit::WallTime),
            "{:#?}",
            ran.outcome
        );
        assert_eq!(ran.outcome.exit_code, None);
        assert!(
            ran.outcome.wall_ms >= 2000 && ran.outcome.wall_ms < 10_000,
            "{}",
            ran.outcome.wall_ms
        );
    }

    pub async fn caps_output(sandbox: &dyn Sandbox) {
        let limits = RunLimits {
            output_bytes: 64 * 1024,
            ..generous()
        };
        let ran = run_in(
            sandbox,
            "print('x' * 200_000)\nprint('the end')\n",
            None,
            limits,
        )
        .await;
        assert_eq!(ran.outcome.limit, Some(LimitHit::Output));
        assert!(ran.outcome.stdout_truncated);
        assert_eq!(ran.outcome.stdout.len(), 64 * 1024);
        assert!(
            ran.outcome.stdout.ends_with("the end\n"),
            "the tail is kept"
        );
    }

    pub async fn has_no_submission_when_the_script_writes_none(sandbox: &dyn Sandbox) {
        let ran = run_in(sandbox, "print('forgot to write it')\n", None, generous()).await;
        assert!(ran.outcome.succeeded());
        assert!(!ran.output.path().join("submission.csv").exists());
    }
}

#[tokio::test]
async fn wasm_conformance() {
    let sandbox = wasm_sandbox();
    conformance::fits_a_model_and_writes_a_submission(&sandbox).await;
    conformance::reports_a_script_error(&sandbox).await;
    conformance::passes_on_the_exit_status(&sandbox).await;
    conformance::stops_at_the_wall_clock(&sandbox).await;
    conformance::caps_output(&sandbox).await;
    conformance::has_no_submission_when_the_script_writes_none(&sandbox).await;
}

const BUSY: &str = "total = 0\nfor i in range(3_000_000):\n    total += i\nprint(total)\n";

#[tokio::test]
async fn fuel_obeyed() {
    let ran = run_wasm(BUSY, None, generous()).await;
    assert!(ran.outcome.succeeded(), "{:#?}", ran.outcome);
    let used = ran.outcome.fuel_used.expect("fuel is reported");
    assert!(
        used > 10_000_000 && used < generous().fuel,
        "fuel used: {used}"
    );
}

#[tokio::test]
async fn fuel_violated() {
    let limits = RunLimits {
        fuel: 50_000_000,
        ..generous()
    };
    let ran = run_wasm(BUSY, None, limits).await;
    assert_eq!(
        ran.outcome.limit,
        Some(LimitHit::Fuel),
        "{:#?}",
        ran.outcome
    );
    assert_eq!(ran.outcome.exit_code, None);
    assert_eq!(ran.outcome.fuel_used, Some(50_000_000));
}

const ALLOCATE_300_MB: &str = "block = bytearray(300 * 1024 * 1024)\nprint(len(block))\n";

#[tokio::test]
async fn memory_obeyed() {
    let limits = RunLimits {
        memory_bytes: 1 << 30,
        ..generous()
    };
    let ran = run_wasm(ALLOCATE_300_MB, None, limits).await;
    assert!(ran.outcome.succeeded(), "{:#?}", ran.outcome);
    let peak = ran
        .outcome
        .peak_memory_bytes
        .expect("peak memory is reported");
    assert!(peak > 300 << 20 && peak <= 1 << 30, "peak {peak}");
}

#[tokio::test]
async fn memory_violated() {
    let limits = RunLimits {
        memory_bytes: 256 << 20,
        ..generous()
    };
    let ran = run_wasm(ALLOCATE_300_MB, None, limits).await;
    assert_eq!(
        ran.outcome.limit,
        Some(LimitHit::Memory),
        "{:#?}",
        ran.outcome
    );
    assert_eq!(ran.outcome.exit_code, Some(1));
    assert_eq!(
        ran.outcome.error.as_ref().map(|e| e.kind.as_str()),
        Some("MemoryError")
    );
    assert!(ran.outcome.peak_memory_bytes.expect("peak") <= 256 << 20);
}

#[tokio::test]
async fn memory_cap_below_the_module_is_a_clear_error() {
    let output = tempfile::tempdir().expect("tempdir");
    let limits = RunLimits {
        memory_bytes: 1 << 20,
        ..generous()
    };
    let error = wasm_sandbox()
        .run(SandboxRequest::new("print(1)", output.path(), limits))
        .await
        .expect_err("a 1 MiB cap cannot hold the interpreter");
    assert!(
        error
            .to_string()
            .contains("below what the guest module needs"),
        "{error}"
    );
}

#[tokio::test]
async fn wall_time_busy_loop_obeyed() {
    let limits = RunLimits {
        wall_time: Duration::from_secs(30),
        ..generous()
    };
    let ran = run_wasm(BUSY, None, limits).await;
    assert!(ran.outcome.succeeded(), "{:#?}", ran.outcome);
}

#[tokio::test]
async fn wall_time_busy_loop_violated() {
    let limits = RunLimits {
        wall_time: Duration::from_millis(1500),
        ..generous()
    };
    let ran = run_wasm("while True:\n    pass\n", None, limits).await;
    assert_eq!(
        ran.outcome.limit,
        Some(LimitHit::WallTime),
        "{:#?}",
        ran.outcome
    );
    assert_eq!(ran.outcome.exit_code, None);
}

#[tokio::test]
async fn wall_time_sleep_obeyed() {
    let limits = RunLimits {
        wall_time: Duration::from_secs(30),
        ..generous()
    };
    let ran = run_wasm(
        "import time\ntime.sleep(0.2)\nprint('woke')\n",
        None,
        limits,
    )
    .await;
    assert!(ran.outcome.succeeded(), "{:#?}", ran.outcome);
    assert_eq!(ran.outcome.stdout, "woke\n");
}

#[tokio::test]
async fn wall_time_sleep_violated() {
    let limits = RunLimits {
        wall_time: Duration::from_millis(1500),
        ..generous()
    };
    let ran = run_wasm("import time\ntime.sleep(1000)\n", None, limits).await;
    assert_eq!(
        ran.outcome.limit,
        Some(LimitHit::WallTime),
        "{:#?}",
        ran.outcome
    );
    assert_eq!(ran.outcome.exit_code, None);
    assert!(
        ran.outcome.wall_ms < 10_000,
        "stopped near the deadline: {}",
        ran.outcome.wall_ms
    );
}

#[tokio::test]
async fn output_obeyed() {
    let limits = RunLimits {
        output_bytes: 64 * 1024,
        ..generous()
    };
    let ran = run_wasm("print('x' * 1000)\n", None, limits).await;
    assert!(ran.outcome.succeeded(), "{:#?}", ran.outcome);
    assert!(!ran.outcome.stdout_truncated);
    assert_eq!(ran.outcome.stdout.len(), 1001);
}

#[tokio::test]
async fn output_violated_on_stderr() {
    let limits = RunLimits {
        output_bytes: 64 * 1024,
        ..generous()
    };
    let ran = run_wasm(
        "import sys\nsys.stderr.write('e' * 100_000)\n",
        None,
        limits,
    )
    .await;
    assert_eq!(ran.outcome.limit, Some(LimitHit::Output));
    assert!(ran.outcome.stderr_truncated);
    assert!(!ran.outcome.stdout_truncated);
}

#[tokio::test]
async fn output_folder_over_the_cap_is_flagged() {
    let limits = RunLimits {
        output_bytes: 64 * 1024,
        ..generous()
    };
    let ran = run_wasm(
        "open('/output/big.bin', 'wb').write(b'0' * 100_000)\n",
        None,
        limits,
    )
    .await;
    assert_eq!(ran.outcome.limit, Some(LimitHit::Output));
    assert_eq!(ran.outcome.exit_code, Some(0));
}

/// Each probe tries one way out of the sandbox and prints `name: blocked` or `name: ESCAPED`.
const ESCAPES: &str = r#"
import os, json
results = {}
def probe(name, attempt):
    try:
        attempt()
        results[name] = "ESCAPED"
    except BaseException as e:
        results[name] = "blocked: " + type(e).__name__
def read(path):
    return lambda: open(path).read()
def write(path):
    return lambda: open(path, "w").write("pwned")
def sock():
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.connect(("127.0.0.1", 80))
def spawn():
    import subprocess
    subprocess.run(["/bin/sh", "-c", "true"])
def fork():
    os.fork()
def secret():
    if any(k in os.environ for k in ("PATH", "USER", "KS_API_TOKEN", "CARGO_MANIFEST_DIR")):
        return
    raise PermissionError("not visible")
probe("read /etc/passwd", read("/etc/passwd"))
probe("read a host file by its host path", read("HOST_FILE"))
probe("dotdot out of /input", read("/input/../../etc/passwd"))
probe("dotdot inside /input root", read("/input/../etc/hostname"))
probe("symlink in /input to a host file", read("/input/link-to-host"))
probe("write into /input", write("/input/new.txt"))
probe("write to /", write("/pwned.txt"))
probe("write to the stdlib mount", write("/usr/local/lib/pwned.txt"))
probe("write to matplotlib's data", write("/usr/local/lib/python315.zip/matplotlib/mpl-data/x"))
probe("socket", sock)
probe("subprocess", spawn)
probe("fork", fork)
probe("host secret in env", secret)
print(json.dumps(results))
"#;

#[tokio::test]
async fn isolation_every_escape_is_blocked_and_the_host_is_untouched() {
    let input = tempfile::tempdir().expect("tempdir");
    let host_secret_file = tempfile::NamedTempFile::new().expect("tempfile");
    std::fs::write(host_secret_file.path(), "host-only").expect("write");
    std::fs::write(input.path().join("data.csv"), "a\n1\n").expect("write");
    std::os::unix::fs::symlink(host_secret_file.path(), input.path().join("link-to-host"))
        .expect("symlink");
    let host_file = host_secret_file.path().to_str().expect("utf-8 temp path");
    let script = ESCAPES.replace("HOST_FILE", host_file);
    let ran = run_wasm(&script, Some(input.path()), generous()).await;
    assert!(ran.outcome.succeeded(), "{:#?}", ran.outcome);
    let results: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(ran.outcome.stdout.trim()).expect("the probe prints JSON");
    assert_eq!(results.len(), 13);
    for (probe, result) in &results {
        let result = result.as_str().unwrap_or_default();
        assert!(result.starts_with("blocked"), "{probe}: {result}");
    }
    assert_eq!(
        std::fs::read_to_string(host_secret_file.path()).expect("read"),
        "host-only"
    );
    let mut names: Vec<_> = std::fs::read_dir(input.path())
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["data.csv", "link-to-host"],
        "nothing was written into /input"
    );
    assert!(!std::path::Path::new("/pwned.txt").exists());
}

#[tokio::test]
async fn the_guest_sees_only_its_own_environment() {
    let ran = run_wasm(
        "import os, json\nprint(json.dumps(sorted(os.environ)))\n",
        None,
        generous(),
    )
    .await;
    assert!(ran.outcome.succeeded(), "{:#?}", ran.outcome);
    let names: Vec<String> = serde_json::from_str(ran.outcome.stdout.trim()).expect("json");
    for name in &names {
        assert!(
            [
                "HOME",
                "TMPDIR",
                "PYTHONTZPATH",
                "MPLBACKEND",
                "MPLCONFIGDIR"
            ]
            .contains(&name.as_str()),
            "{name} leaked"
        );
    }
    assert!(
        std::env::var_os("PATH").is_some(),
        "the host has variables the guest must not see"
    );
    assert!(!names.iter().any(|n| n == "PATH"));
}

#[tokio::test]
async fn two_runs_at_once_do_not_see_each_others_files() {
    let script = |me: &str, other: &str| {
        format!(
            "import os, time\nopen('/tmp/{me}', 'w').write('x')\nopen('/output/{me}', 'w').write('x')\n\
             time.sleep(0.5)\nprint(sorted(os.listdir('/tmp')), sorted(os.listdir('/output')), \
             os.path.exists('/tmp/{other}'))\n"
        )
    };
    let (script_a, script_b) = (script("a", "b"), script("b", "a"));
    let (a, b) = tokio::join!(
        run_wasm(&script_a, None, generous()),
        run_wasm(&script_b, None, generous())
    );
    assert_eq!(a.outcome.stdout, "['a'] ['a'] False\n", "{:#?}", a.outcome);
    assert_eq!(b.outcome.stdout, "['b'] ['b'] False\n", "{:#?}", b.outcome);
}

#[tokio::test]
async fn cancel_stops_a_running_guest() {
    let output = tempfile::tempdir().expect("tempdir");
    let request = SandboxRequest::new("while True:\n    pass\n", output.path(), generous());
    let cancel = request.cancel.clone();
    let sandbox = wasm_sandbox();
    let run = tokio::spawn(async move { sandbox.run(request).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    cancel.cancel();
    let outcome = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the run stops soon after cancel")
        .expect("the task completes")
        .expect("the sandbox reports an outcome");
    assert!(outcome.cancelled, "{outcome:#?}");
    assert_eq!(outcome.limit, None);
    assert!(!outcome.succeeded());
}
