//! The pipeline benchmark: time per stage and in total for the bundled demo
//! competition, solved in-process with the baseline generator on the WASI sandbox, and the
//! same generated script run natively with CPython, as a ratio.
//!
//! ```sh
//! cargo bench -p kaggle-solver --bench pipeline      # KS_BENCH_RUNS=3
//! ```
//!
//! Native pandas and scikit-learn are installed with pip into a venv cached under
//! `target/bench-native/` (the same major versions the guest has, as far as PyPI serves them
//! for the host's Python). The native run gets the script with `/input/` and `/output/`
//! rewritten to host folders, and runs single-threaded (`OMP_NUM_THREADS=1`) like the guest.
//! Prints a table and one JSON line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use kaggle_solver::pipeline::analyse::CompetitionText;
use kaggle_solver::pipeline::generate::BaselineGenerator;
use kaggle_solver::pipeline::solve::{
    PreparedCompetition, Sandboxes, SolveEvent, SolveJob, Solver, Unleased,
};
use kaggle_solver::sandbox::wasm::WasmSandbox;
use kaggle_solver::storage::LocalStore;
use ks_policies::Policy;
use serde_json::json;
use tokio_util::sync::CancellationToken;

const DEMO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../examples/competitions/penguins"
);
const NATIVE_VENV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/bench-native");

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn native_python() -> PathBuf {
    let venv = Path::new(NATIVE_VENV);
    let python = venv.join("bin/python");
    let ready = venv.join(".ready");
    if !ready.exists() {
        eprintln!(
            "installing native pandas + scikit-learn into {}",
            venv.display()
        );
        let status = Command::new("python3")
            .args(["-m", "venv"])
            .arg(venv)
            .status()
            .expect("python3 runs");
        assert!(status.success(), "python3 -m venv failed");
        let status = Command::new(venv.join("bin/pip"))
            .args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "pandas",
                "scikit-learn",
            ])
            .status()
            .expect("pip runs");
        assert!(status.success(), "pip install pandas scikit-learn failed");
        std::fs::write(&ready, "").expect("mark the venv ready");
    }
    python
}

fn main() {
    let runs: usize = std::env::var("KS_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let sandbox = WasmSandbox::builder()
        .build()
        .expect("the WASI sandbox builds");
    let work = tempfile::tempdir().expect("tempdir");
    let solver = Solver::new(
        Arc::new(BaselineGenerator),
        Sandboxes {
            wasm: Some(Arc::new(sandbox)),
            docker: None,
        },
        Arc::new(LocalStore::new(work.path().join("store"))),
        work.path().join("work"),
    );
    let policy = Policy::default();
    let competition = PreparedCompetition {
        slug: "penguins".into(),
        dir: DEMO.into(),
        text: CompetitionText {
            description: std::fs::read_to_string(Path::new(DEMO).join("description.md")).ok(),
            evaluation_metric: None,
        },
        pin: None,
    };

    let mut stages: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut totals = Vec::new();
    let mut code = String::new();
    for run in 0..=runs {
        let seen: Arc<Mutex<Vec<(String, f64)>>> = Arc::default();
        let record = seen.clone();
        let events = move |event: SolveEvent| {
            if let SolveEvent::StageFinished { stage, millis, .. } = event {
                record
                    .lock()
                    .expect("lock")
                    .push((stage.to_string(), millis as f64));
            }
        };
        let job = SolveJob {
            id: format!("bench-{run}"),
            claim: SolveJob::new_claim(),
            policy: &policy,
            cancel: CancellationToken::new(),
            stop: CancellationToken::new(),
            events: &events,
            fence: &Unleased,
        };
        let started = Instant::now();
        let report = runtime
            .block_on(solver.solve(&job, &competition))
            .expect("the demo solves");
        let total = started.elapsed().as_secs_f64() * 1000.0;
        if run == 0 {
            continue; // warm-up
        }
        totals.push(total);
        for (stage, millis) in seen.lock().expect("lock").iter() {
            stages.entry(stage.clone()).or_default().push(*millis);
        }
        code = report.attempts.last().expect("an attempt").code.clone();
    }

    let python = native_python();
    let out = tempfile::tempdir().expect("tempdir");
    let native_code = code
        .replace("\"/input/\"", &format!("{:?}", format!("{DEMO}/")))
        .replace("/output/", &format!("{}/", out.path().display()));
    let script = out.path().join("solution.py");
    std::fs::write(&script, native_code).expect("write the native script");
    let mut native = Vec::new();
    for run in 0..=runs {
        let started = Instant::now();
        let output = Command::new(&python)
            .arg(&script)
            .output()
            .expect("native python runs");
        assert!(
            output.status.success(),
            "native run failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        if run > 0 {
            native.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let wasm_run = median(stages.get("run").cloned().unwrap_or_default());
    let native_run = median(native);

    println!("pipeline on the demo competition (penguins), median of {runs} runs after a warm-up");
    println!("{:<10} {:>10}", "stage", "ms");
    let mut figures = serde_json::Map::new();
    for (stage, values) in &stages {
        let m = median(values.clone());
        println!("{stage:<10} {m:>10.1}");
        figures.insert(format!("{stage}_ms"), json!(m));
    }
    let total = median(totals);
    println!("{:<10} {total:>10.1}", "total");
    println!(
        "same script natively with CPython: {native_run:.1} ms; sandbox run / native = {:.2}x",
        wasm_run / native_run
    );
    figures.insert("total_ms".into(), json!(total));
    figures.insert("native_run_ms".into(), json!(native_run));
    figures.insert("run_over_native".into(), json!(wasm_run / native_run));
    println!("{}", serde_json::Value::Object(figures));
}
