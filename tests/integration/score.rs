//! The host's metrics against the graders we are judged by: the same inputs through the
//! vendored `tools/eval/grade.py` and `grade_shapes.py` (run by the machine's `python3`) and
//! through `pipeline::score::metrics` agree to 1e-9 on many random cases, ties included.

use std::process::Command;

use kaggle_solver::pipeline::score::metrics;
use serde_json::{Value, json};

/// A small deterministic generator, so a failure names a case that can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1_u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() * n as f64) as usize % n
    }
    /// A score in [0, 1], on a coarse grid one time in three so ties happen.
    fn score(&mut self) -> f64 {
        let v = self.next();
        if self.below(3) == 0 {
            (v * 10.0).round() / 10.0
        } else {
            v
        }
    }
}

fn graders(cases: &Value) -> Vec<f64> {
    let script = r#"
import json, sys
sys.path.insert(0, "tools/eval")
import grade, grade_shapes as gs
out = []
for c in json.load(sys.stdin):
    m, a = c["metric"], c["args"]
    f = {"rmsle": grade.rmsle, "mae": grade.mae}.get(m) or getattr(gs, m)
    out.append(f(*a))
print(json.dumps(out))
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs the graders (install python3)");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(cases.to_string().as_bytes())
            .expect("write cases");
    }
    let out = child.wait_with_output().expect("graders finish");
    assert!(out.status.success(), "graders failed");
    serde_json::from_slice(&out.stdout).expect("graders print a JSON list")
}

#[test]
fn host_metrics_agree_with_the_graders() {
    let mut rng = Lcg(7);
    let mut cases = Vec::new();
    let mut ours = Vec::new();
    for round in 0..40 {
        let n = 2 + rng.below(60);
        // Both classes present, so every AUC is defined.
        let labels: Vec<bool> = (0..n)
            .map(|i| i == 0 || (i != 1 && rng.below(2) == 1))
            .collect();
        let ints: Vec<i64> = labels.iter().map(|&b| i64::from(b)).collect();
        let scores: Vec<f64> = (0..n).map(|_| rng.score()).collect();
        let truth: Vec<f64> = (0..n).map(|_| rng.next() * 50.0).collect();
        let pred: Vec<f64> = (0..n).map(|_| rng.next() * 50.0).collect();
        let k = 2 + rng.below(4);
        let classes: Vec<usize> = (0..n).map(|_| rng.below(k)).collect();
        let guessed: Vec<usize> = (0..n).map(|_| rng.below(k)).collect();
        let names: Vec<String> = classes.iter().map(|c| format!("c{c}")).collect();
        let guessed_names: Vec<String> = guessed.iter().map(|c| format!("c{c}")).collect();
        let rows: Vec<Vec<f64>> = (0..n)
            .map(|_| (0..k).map(|_| rng.next() + 0.01).collect())
            .collect();

        let mut push = |metric: &str, args: Value, value: Result<f64, metrics::MetricError>| {
            cases.push(json!({"metric": metric, "args": args, "round": round}));
            ours.push(value.expect("defined on these inputs"));
        };
        push(
            "accuracy",
            json!([names, guessed_names]),
            metrics::accuracy(&names, &guessed_names),
        );
        push(
            "macro_f1",
            json!([names, guessed_names]),
            metrics::macro_f1(&names, &guessed_names),
        );
        push(
            "quadratic_weighted_kappa",
            json!([classes, guessed, k]),
            metrics::quadratic_weighted_kappa(&classes, &guessed, k),
        );
        push(
            "roc_auc",
            json!([ints, scores]),
            metrics::roc_auc(&labels, &scores),
        );
        push(
            "log_loss",
            json!([ints, scores]),
            metrics::log_loss(&labels, &scores),
        );
        push(
            "multiclass_log_loss",
            json!([classes, rows]),
            metrics::multiclass_log_loss(&classes, &rows),
        );
        push("rmse", json!([truth, pred]), metrics::rmse(&truth, &pred));
        push("rmsle", json!([truth, pred]), metrics::rmsle(&truth, &pred));
        push("mae", json!([truth, pred]), metrics::mae(&truth, &pred));
        let reversed: Vec<bool> = labels.iter().rev().copied().collect();
        let reversed_ints: Vec<i64> = reversed.iter().map(|&b| i64::from(b)).collect();
        push(
            "mean_column_auc",
            json!([
                [ints, reversed_ints],
                [scores, pred.iter().map(|p| p / 50.0).collect::<Vec<_>>()]
            ]),
            metrics::mean_column_auc(
                &[labels.clone(), reversed],
                &[scores.clone(), pred.iter().map(|p| p / 50.0).collect()],
            ),
        );
        push(
            "mcrmse",
            json!([[truth, pred], [pred, truth]]),
            metrics::mcrmse(
                &[truth.clone(), pred.clone()],
                &[pred.clone(), truth.clone()],
            ),
        );
    }
    let theirs = graders(&Value::Array(cases.clone()));
    assert_eq!(theirs.len(), ours.len());
    for ((case, a), b) in cases.iter().zip(&ours).zip(&theirs) {
        assert!(
            (a - b).abs() <= 1e-9 * b.abs().max(1.0),
            "{} round {}: host {a}, grader {b}",
            case["metric"],
            case["round"]
        );
    }
}
