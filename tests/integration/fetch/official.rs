//! The official `kaggle` client (2.2.5, on kagglesdk), installed once per target folder into a
//! throwaway venv, and a way to run it against the fake.
//!
//! The client has no endpoint setting. `KAGGLE_API_ENVIRONMENT=LOCALHOST` makes it call
//! `http://localhost/api/v1/...`; `http_proxy` pointing at the fake then makes requests send
//! absolute-form request lines to the fake instead of port 80, so tests run in parallel.
//! A failed install fails the test: it is never skipped.

use std::path::{Path, PathBuf};
use std::process::Output;

const VERSION: &str = "2.2.5";

/// The venv's `kaggle` executable, installing it on first use.
pub fn kaggle_executable() -> PathBuf {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("kaggle-{VERSION}-venv"));
    let exe = venv.join("bin/kaggle");
    let ready = venv.join(".ks-ready");
    if ready.exists() {
        return exe;
    }
    std::fs::create_dir_all(env!("CARGO_TARGET_TMPDIR")).expect("create CARGO_TARGET_TMPDIR");
    let lock_path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("kaggle-{VERSION}.lock"));
    let lock = std::fs::File::create(&lock_path).expect("create the venv lock");
    lock.lock().expect("lock the venv");
    if ready.exists() {
        return exe;
    }
    let _ = std::fs::remove_dir_all(&venv);
    let python = std::env::var("KS_PYTHON").unwrap_or_else(|_| "python3".into());
    run_or_panic(
        std::process::Command::new(&python)
            .args(["-m", "venv"])
            .arg(&venv),
        "create a venv for the official kaggle client",
    );
    // `six` is imported by kaggle 2.2.5 but not declared as a dependency.
    run_or_panic(
        std::process::Command::new(venv.join("bin/pip")).args([
            "install",
            "--disable-pip-version-check",
            "--quiet",
            &format!("kaggle=={VERSION}"),
            "six",
        ]),
        "pip install the official kaggle client (needs PyPI)",
    );
    run_or_panic(
        std::process::Command::new(&exe).arg("--version"),
        "run the freshly installed kaggle client",
    );
    std::fs::write(&ready, VERSION).expect("write the venv marker");
    exe
}

fn run_or_panic(command: &mut std::process::Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot {what}: {e}"));
    assert!(
        output.status.success(),
        "failed to {what}: {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}

/// How the official client authenticates.
pub enum Auth<'a> {
    /// `kaggle.json` in this config folder (HTTP Basic).
    KaggleJson(&'a Path),
    /// `KAGGLE_API_TOKEN` (Bearer, after `IntrospectToken`).
    Token(&'a str, &'a Path),
}

/// Runs `kaggle ARGS` against the fake at `proxy` (`http://127.0.0.1:PORT`), with a clean
/// environment, and asserts it succeeded.
pub async fn kaggle(proxy: &str, auth: Auth<'_>, home: &Path, args: &[&str]) -> Output {
    let exe = tokio::task::spawn_blocking(kaggle_executable)
        .await
        .expect("the install task");
    let mut command = tokio::process::Command::new(exe);
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("KAGGLE_API_ENVIRONMENT", "LOCALHOST")
        .env("http_proxy", proxy)
        .env("HTTP_PROXY", proxy)
        .env("no_proxy", "")
        .env("NO_PROXY", "");
    match auth {
        Auth::KaggleJson(dir) => command.env("KAGGLE_CONFIG_DIR", dir),
        Auth::Token(token, dir) => command
            .env("KAGGLE_API_TOKEN", token)
            .env("KAGGLE_CONFIG_DIR", dir),
    };
    let output = command.output().await.expect("run kaggle");
    assert!(
        output.status.success(),
        "kaggle {args:?} failed: {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    output
}
