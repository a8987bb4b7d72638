//! The pre-warmed guest: the same results as the plain module, fresh randomness and
//! a fresh `/tmp` in every run, the run's own argv, environment and mounts, modules outside the
//! image still importable, and a clear error for a memory cap below the image.

use std::collections::BTreeMap;

use kaggle_solver::sandbox::wasm::GuestImage::{Plain, Prewarmed};
use kaggle_solver::sandbox::{RunLimits, Sandbox, SandboxError, SandboxRequest};

use crate::support::{generous, prewarmed_sandbox, run_guest, tabular_input};

const PIPELINE: &str = r#"
import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold
from sklearn.metrics import roc_auc_score

train = pd.read_csv("/input/train.csv")
test = pd.read_csv("/input/test.csv")
features = ["x1", "x2"]
X, y = train[features], train["target"]
scores = []
for fit, val in StratifiedKFold(n_splits=3, shuffle=True, random_state=0).split(X, y):
    m = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(X.iloc[fit], y.iloc[fit])
    scores.append(roc_auc_score(y.iloc[val], m.predict_proba(X.iloc[val])[:, 1]))
model = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(X, y)
pd.DataFrame({"id": test["id"], "target": model.predict_proba(test[features])[:, 1]}).to_csv(
    "/output/submission.csv", index=False)
print("cv", round(float(np.mean(scores)), 6))
"#;

#[tokio::test(flavor = "multi_thread")]
async fn the_same_pipeline_gives_the_same_submission_on_both_modules() {
    let input = tabular_input(400);
    let mut submissions = Vec::new();
    for guest in [Plain, Prewarmed] {
        let ran = run_guest(guest, PIPELINE, Some(input.path()), generous()).await;
        assert!(ran.outcome.succeeded(), "{guest}: {:#?}", ran.outcome);
        let csv = std::fs::read_to_string(ran.output.path().join("submission.csv"))
            .expect("the pipeline wrote /output/submission.csv");
        assert_eq!(csv.lines().count(), 101);
        submissions.push((ran.outcome.stdout, csv));
    }
    assert_eq!(submissions[0], submissions[1]);
}

const DRAWS: &str = r#"
import json, os, random
import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
rng = np.random.RandomState(0)
X = rng.normal(size=(600, 4))
y = (X[:, 0] + rng.normal(size=600) > 0).astype(int)
clf = HistGradientBoostingClassifier(random_state=None, early_stopping=True, max_iter=15).fit(X, y)
print(json.dumps({
    "os.urandom": os.urandom(16).hex(),
    "default_rng": int(np.random.default_rng().integers(1 << 62)),
    "random.random": random.random(),
    "numpy.random.rand": float(np.random.rand()),
    "unseeded HGB": float(clf.predict_proba(X[:50])[:, 1].sum()),
}))
"#;

async fn draws(
    guest: kaggle_solver::sandbox::wasm::GuestImage,
) -> BTreeMap<String, serde_json::Value> {
    let ran = run_guest(guest, DRAWS, None, generous()).await;
    assert!(ran.outcome.succeeded(), "{guest}: {:#?}", ran.outcome);
    serde_json::from_str(ran.outcome.stdout.trim()).expect("one JSON line")
}

#[tokio::test(flavor = "multi_thread")]
async fn randomness_differs_between_runs_as_on_the_plain_module() {
    for guest in [Prewarmed, Plain] {
        let (first, second) = (draws(guest).await, draws(guest).await);
        assert_eq!(first.len(), 5);
        for (source, value) in &first {
            assert_ne!(
                Some(value),
                second.get(source),
                "{guest}: {source} repeated"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_in_tmp_does_not_outlive_its_run() {
    let script = r#"
import os
print(sorted(os.listdir("/tmp")))
open("/tmp/left-behind", "w").write("x")
"#;
    for _ in 0..2 {
        let ran = run_guest(Prewarmed, script, None, generous()).await;
        assert!(ran.outcome.succeeded(), "{:#?}", ran.outcome);
        assert_eq!(ran.outcome.stdout, "[]\n");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn argv_environment_and_mounts_are_the_runs_own() {
    let script = r#"
import os, sys
print(sys.argv)
print(sorted(os.environ.items()))
print(os.getenv("HOME"))
print(open("/input/train.csv").readline().strip(), len(open("/input/train.csv").readlines()))
open("/output/mine.txt", "w").write("ok")
"#;
    for rows in [12, 20] {
        let input = tabular_input(rows);
        let ran = run_guest(Prewarmed, script, Some(input.path()), generous()).await;
        assert!(ran.outcome.succeeded(), "{:#?}", ran.outcome);
        let expected = format!(
            "['pipeline.py']\n[('HOME', '/tmp'), ('MPLBACKEND', 'Agg'), \
             ('MPLCONFIGDIR', '/tmp/matplotlib'), ('PYTHONTZPATH', ''), ('TMPDIR', '/tmp')]\n/tmp\n\
             id,x1,x2,colour,target {}\n",
            rows + 1
        );
        assert_eq!(ran.outcome.stdout, expected);
        let written = std::fs::read_to_string(ran.output.path().join("mine.txt"));
        assert_eq!(written.expect("the run's /output is its own folder"), "ok");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_module_outside_the_image_still_imports() {
    let script = "import statsmodels.api as sm\nprint(sm.__name__)\n";
    let ran = run_guest(Prewarmed, script, None, generous()).await;
    assert!(ran.outcome.succeeded(), "{:#?}", ran.outcome);
    assert_eq!(ran.outcome.stdout, "statsmodels.api\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_imports_cost_a_fraction_of_the_plain_modules_fuel() {
    let script = "import pandas, sklearn\nprint('ok')\n";
    let mut fuel = Vec::new();
    for guest in [Plain, Prewarmed] {
        let ran = run_guest(guest, script, None, generous()).await;
        assert!(ran.outcome.succeeded(), "{guest}: {:#?}", ran.outcome);
        fuel.push(ran.outcome.fuel_used.expect("fuel is reported"));
    }
    assert!(
        fuel[1] * 20 < fuel[0],
        "plain {} vs pre-warmed {}",
        fuel[0],
        fuel[1]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_memory_cap_below_the_image_is_a_clear_error() {
    let sandbox = prewarmed_sandbox();
    let output = tempfile::tempdir().expect("a temporary folder");
    let limits = RunLimits {
        memory_bytes: 100 << 20,
        ..generous()
    };
    let mut request = SandboxRequest::new("print(1)", output.path(), limits);
    request.guest = Prewarmed;
    let error = sandbox.run(request).await.expect_err("below the image");
    let message = error.to_string();
    assert!(
        matches!(error, SandboxError::InvalidRequest(_)),
        "{message}"
    );
    assert!(
        message.contains("raise `limits.memory` to at least 1"),
        "{message}"
    );
    assert!(message.contains("guest = \"plain\""), "{message}");
    // The plain module starts under the same cap.
    let mut request = SandboxRequest::new("print(1)", output.path(), limits);
    request.guest = Plain;
    let ran = sandbox.run(request).await.expect("plain runs");
    assert!(ran.succeeded(), "{ran:#?}");
}

/// A home that shares the machine's runtime and plain compiled module but has no pre-warmed
/// image, and a record that its build failed.
fn home_where_the_build_failed() -> (tempfile::TempDir, ks_guest_runtime::RuntimeHome) {
    let machine = ks_guest_runtime::RuntimeHome::from_env().expect("$KS_HOME");
    prewarmed_sandbox(); // the machine's image exists, so its record names the current key
    let built = ks_guest_runtime::PrewarmRecord::read(machine.root()).expect("a record");
    let dir = tempfile::tempdir().expect("a temporary home");
    std::os::unix::fs::symlink(machine.runtime_root(), dir.path().join("runtime"))
        .expect("link the runtime");
    std::fs::create_dir(dir.path().join("compiled")).expect("compiled/");
    for entry in std::fs::read_dir(machine.compiled_dir()).expect("compiled dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        if name.starts_with("module-") && name.ends_with(".cwasm") {
            std::os::unix::fs::symlink(&path, dir.path().join("compiled").join(&name))
                .expect("link a compiled module");
        }
    }
    let failed = ks_guest_runtime::PrewarmRecord {
        key: built.key,
        state: ks_guest_runtime::PrewarmState::Failed,
        detail: "the audit refused the image (test)".into(),
        initial_memory_bytes: None,
    };
    failed.write(dir.path()).expect("write the record");
    let home = ks_guest_runtime::RuntimeHome::at(dir.path());
    (dir, home)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_build_leaves_the_plain_module_in_use_and_says_why() {
    let (_dir, home) = home_where_the_build_failed();
    let sandbox = tokio::task::spawn_blocking(move || {
        kaggle_solver::sandbox::wasm::WasmSandbox::builder()
            .home(home)
            .build()
    })
    .await
    .expect("join")
    .expect("the sandbox builds on the plain module");
    assert_eq!(
        sandbox.prewarm_state(),
        None,
        "not tried before the first run"
    );
    let output = tempfile::tempdir().expect("a temporary folder");
    let mut request = SandboxRequest::new(
        "import sys\nprint('_ks_prewarm' in sys.modules)\n",
        output.path(),
        generous(),
    );
    request.guest = Prewarmed;
    let outcome = sandbox
        .run(request)
        .await
        .expect("runs on the plain module");
    assert!(outcome.succeeded(), "{outcome:#?}");
    assert_eq!(outcome.stdout, "False\n");
    let reason = sandbox
        .prewarm_state()
        .expect("tried")
        .expect_err("unavailable");
    assert!(
        reason.contains("an earlier build failed (the audit refused the image (test))"),
        "{reason}"
    );
    assert!(reason.contains("runtime install"), "{reason}");
}
