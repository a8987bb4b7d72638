//! The `kaggle-solver` binary as a user runs it: `sandbox run`'s JSON and exit codes, and that
//! nothing of the host's environment reaches the guest. The service's commands (`serve`'s
//! refusal to listen publicly without a token, `dead`) are in `cli/service.rs`.

mod service;

use std::process::{Command, Output};

use crate::support::wasm_sandbox;

fn kaggle_solver() -> Command {
    let exe = crate::support::binary();
    let mut command = Command::new(exe);
    command.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    command
}

fn sandbox_run(script: &str, extra: &[&str]) -> (Output, serde_json::Value) {
    wasm_sandbox(); // install and compile first, once, in-process
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("script.py");
    std::fs::write(&path, script).expect("write script");
    let output = kaggle_solver()
        .args(["sandbox", "run"])
        .args(extra)
        .arg(&path)
        .env("KS_TEST_HOST_SECRET", "hunter2")
        .output()
        .expect("kaggle-solver runs");
    let json = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is one JSON line ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output, json)
}

#[test]
fn sandbox_run_prints_the_fixed_keys_and_succeeds() {
    let (output, json) = sandbox_run("print('hi')\n", &["--backend", "wasm"]);
    assert!(output.status.success(), "{json}");
    for key in [
        "backend",
        "exit_code",
        "limit",
        "fuel_used",
        "peak_memory_bytes",
        "wall_ms",
        "stdout",
        "stderr",
        "stdout_truncated",
        "stderr_truncated",
    ] {
        assert!(json.get(key).is_some(), "missing key {key} in {json}");
    }
    assert_eq!(json["backend"], "wasm");
    assert_eq!(json["exit_code"], 0);
    assert_eq!(json["limit"], serde_json::Value::Null);
    assert_eq!(json["stdout"], "hi\n");
}

#[test]
fn sandbox_run_fails_when_the_script_fails() {
    let (output, json) = sandbox_run("raise ValueError('bad')\n", &[]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(json["exit_code"], 1);
    assert_eq!(json["error"]["type"], "ValueError");
}

#[test]
fn sandbox_run_fails_when_a_limit_stops_the_script() {
    let (output, json) = sandbox_run(
        "while True:\n    pass\n",
        &["--policy", "tests/fixtures/cli/one-second.toml"],
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(json["limit"], "wall-time");
}

#[test]
fn host_environment_never_reaches_the_guest() {
    let (output, json) = sandbox_run(
        "import os\nprint(os.environ.get('KS_TEST_HOST_SECRET', 'absent'))\n",
        &[],
    );
    assert!(output.status.success(), "{json}");
    assert_eq!(json["stdout"], "absent\n");
}

#[test]
fn a_backend_the_policy_forbids_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = dir.path().join("wasm-only.toml");
    std::fs::write(&policy, "[sandbox]\nbackends = [\"wasm\"]\n").expect("write policy");
    let path = dir.path().join("script.py");
    std::fs::write(&path, "import xgboost\n").expect("write");
    for (backend, expected) in [
        ("docker", "does not allow the docker backend"),
        ("auto", "only the docker backend has"),
    ] {
        let output = kaggle_solver()
            .args(["sandbox", "run", "--backend", backend, "--policy"])
            .arg(&policy)
            .arg(&path)
            .output()
            .expect("kaggle-solver runs");
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{backend}: {stderr}");
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn policy_check_reports_each_file() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/policies");
    let valid: Vec<_> = std::fs::read_dir(format!("{fixtures}/valid"))
        .expect("valid fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    let output = kaggle_solver()
        .args(["policy", "check"])
        .args(&valid)
        .output()
        .expect("runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).lines().count(),
        valid.len()
    );

    let bad = format!("{fixtures}/invalid/unknown-key.toml");
    let output = kaggle_solver()
        .args(["policy", "check", "policies/default.toml", &bad])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with("ok: policies/default.toml\nerror: "),
        "{stdout}"
    );
}

#[test]
fn unknown_policy_preset_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("script.py");
    std::fs::write(&path, "print(1)\n").expect("write");
    let output = kaggle_solver()
        .args(["sandbox", "run", "--policy", "no-such-preset"])
        .arg(&path)
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no-such-preset"), "{stderr}");
}

#[test]
fn solve_after_a_search_writes_its_journal_beside_the_submission() {
    wasm_sandbox(); // install and compile first, once, in-process
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = dir.path().join("two.toml");
    std::fs::write(&policy, "[search]\ncandidates = 2\nfolds = 1\n").expect("write the policy");
    let out = dir.path().join("out");
    let output = kaggle_solver()
        .args([
            "solve",
            "examples/competitions/penguins",
            "--generator",
            "baseline",
        ])
        .arg("--policy")
        .arg(&policy)
        .arg("--out")
        .arg(&out)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("kaggle-solver runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let journal: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("search.json")).expect("search.json"))
            .expect("the journal is JSON");
    let candidates = journal["candidates"].as_array().expect("candidates");
    assert_eq!(candidates.len(), 2, "{journal:#}");
    for candidate in candidates {
        assert!(candidate["host_score"].is_f64(), "{candidate:#}");
        assert!(
            candidate["code"]
                .as_str()
                .is_some_and(|c| c.contains("CONFIG")),
            "{candidate:#}"
        );
    }
    // The submitted candidate's code is the solution written beside it.
    let submitted = journal["submitted"].as_u64().expect("submitted");
    let solution = std::fs::read_to_string(out.join("solution.py")).expect("solution.py");
    assert_eq!(
        candidates[usize::try_from(submitted).expect("small") - 1]["code"].as_str(),
        Some(solution.as_str())
    );
    assert!(out.join("submission.csv").is_file());

    // A single shot into the same folder leaves no journal that is not its own.
    let output = kaggle_solver()
        .args([
            "solve",
            "examples/competitions/penguins",
            "--generator",
            "baseline",
            "--policy",
            "small",
        ])
        .arg("--out")
        .arg(&out)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("kaggle-solver runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!out.join("search.json").exists(), "{stderr}");
}
