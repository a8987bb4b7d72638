//! The Docker backend benchmark: what a run costs in a hardened container next to the
//! WASI guest, in one run, in-process through the same `Sandbox` trait.
//!
//! ```sh
//! cargo bench -p kaggle-solver --bench docker    # KS_BENCH_RUNS=7
//! ```
//!
//! For `print('hi')` (the per-run overhead: create, attach, start, wait, inspect, remove) and a
//! pandas + scikit-learn fit (10k rows, HistGradientBoosting, predict, CSV write), each backend
//! runs the snippet `KS_BENCH_RUNS` times after one discarded warm-up; the bench prints the
//! medians of the whole `Sandbox::run` call and of the script's own wall time, and the ratio
//! Docker / WASI. Both run under the default policy's caps (Docker: 1 CPU). A run that fails
//! aborts the bench. Last, one JSON line has every figure.

use std::time::Instant;

use kaggle_solver::sandbox::wasm::WasmSandbox;
use kaggle_solver::sandbox::{DockerSandbox, RunLimits, Sandbox, SandboxRequest};
use serde_json::json;

struct Snippet {
    name: &'static str,
    code: &'static str,
    stdout: &'static str,
}

const SNIPPETS: [Snippet; 2] = [
    Snippet {
        name: "print",
        code: "print('hi')\n",
        stdout: "hi\n",
    },
    Snippet {
        name: "pandas+sklearn fit",
        code: "\
import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

rng = np.random.default_rng(0)
X = rng.normal(size=(10_000, 8))
y = (X[:, 0] + X[:, 1] * X[:, 2] + rng.normal(scale=0.5, size=10_000) > 0).astype(int)
model = HistGradientBoostingClassifier(random_state=0).fit(X, y)
pd.DataFrame({'id': range(len(X)), 'target': model.predict(X)}).to_csv(
    '/output/submission.csv', index=False)
print(sum(1 for _ in open('/output/submission.csv')))
",
        stdout: "10001\n",
    },
];

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let runs: usize = std::env::var("KS_BENCH_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(7);
    let policy = ks_policies::Policy::from_toml_str(ks_policies::DEFAULT_POLICY_TOML, "default")
        .expect("the built-in policy parses");
    let limits = RunLimits::from(&policy.limits);
    let wasm = tokio::task::spawn_blocking(|| WasmSandbox::builder().build())
        .await
        .expect("joins")
        .unwrap_or_else(|e| abort(format!("the WASI sandbox: {e}")));
    let docker = DockerSandbox::connect()
        .await
        .unwrap_or_else(|e| abort(format!("the Docker sandbox: {e} (run scripts/docker-up)")));
    if docker
        .ensure_image()
        .await
        .unwrap_or_else(|e| abort(e.to_string()))
    {
        println!("built the Docker image first");
    }
    println!(
        "Docker vs WASI, {runs} runs each after a warm-up, medians (cores: {})",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!(
        "{:<20} {:>14} {:>14} {:>14} {:>14} {:>8}",
        "snippet", "docker call", "docker script", "wasm call", "wasm script", "d/w call"
    );
    let mut figures = Vec::new();
    for snippet in &SNIPPETS {
        let d = measure(&docker, snippet, &policy, limits, runs).await;
        let w = measure(&wasm, snippet, &policy, limits, runs).await;
        let ratio = d.0 / w.0;
        println!(
            "{:<20} {:>11.1} ms {:>11.1} ms {:>11.1} ms {:>11.1} ms {:>7.2}x",
            snippet.name, d.0, d.1, w.0, w.1, ratio
        );
        figures.push(json!({
            "snippet": snippet.name,
            "docker_call_ms": round(d.0), "docker_script_ms": round(d.1),
            "docker_overhead_ms": round(d.0 - d.1),
            "wasm_call_ms": round(w.0), "wasm_script_ms": round(w.1),
            "docker_over_wasm": round(ratio * 100.0) / 100.0,
        }));
    }
    if let Some(print) = figures.first() {
        println!(
            "Docker per-run overhead (call minus the script's own time, print): {} ms",
            print["docker_overhead_ms"]
        );
    }
    println!(
        "{}",
        json!({ "bench": "docker", "runs": runs, "figures": figures })
    );
}

/// Medians of (the whole `Sandbox::run` call, the script's own wall time), in milliseconds.
async fn measure(
    sandbox: &dyn Sandbox,
    snippet: &Snippet,
    policy: &ks_policies::Policy,
    limits: RunLimits,
    runs: usize,
) -> (f64, f64) {
    let mut calls = Vec::new();
    let mut scripts = Vec::new();
    for i in 0..=runs {
        let output = tempfile::tempdir().unwrap_or_else(|e| abort(e.to_string()));
        let mut request = SandboxRequest::new(snippet.code, output.path(), limits);
        request.docker = policy.docker.clone();
        let started = Instant::now();
        let outcome = sandbox
            .run(request)
            .await
            .unwrap_or_else(|e| abort(format!("{}: {e}", snippet.name)));
        let call = started.elapsed().as_secs_f64() * 1000.0;
        if !outcome.succeeded() || outcome.stdout != snippet.stdout {
            abort(format!(
                "{} on {}: {outcome:#?}",
                snippet.name,
                sandbox.backend()
            ));
        }
        if i > 0 {
            calls.push(call);
            scripts.push(outcome.wall_ms as f64);
        }
    }
    (median(calls), median(scripts))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn abort(message: String) -> ! {
    eprintln!("\ndocker bench aborted: {message}");
    std::process::exit(1);
}
