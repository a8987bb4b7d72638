//! A competition of free text solved end to end by the baseline in the real WASI guest, and
//! graded against the TF-IDF and logistic regression reference (`tools/eval/reference_tfidf.py`)
//! run in the same guest on the same files.
//!
//! The fixture is built here with a fixed seed: each review's class is told by a stem spelled
//! with a suffix of its own, among filler words, so whole words seldom repeat and the
//! reference's word unigrams see little of what character n-grams see.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, ensure};
use kaggle_solver::pipeline::analyse::CompetitionText;
use kaggle_solver::pipeline::generate::BaselineGenerator;
use kaggle_solver::pipeline::solve::PreparedCompetition;
use kaggle_solver::sandbox::{Sandbox, SandboxRequest};

use crate::pipeline::{harness, single_shot, solve_competition};
use crate::support::{generous, wasm_sandbox};

const REFERENCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tools/eval/reference_tfidf.py"
);
const STEMS: [&str; 3] = ["garden", "engine", "violin"];
const FILLER: [&str; 10] = [
    "the", "a", "of", "and", "with", "some", "very", "today", "there", "we",
];
const TRAIN_ROWS: usize = 300;
const TEST_ROWS: usize = 100;

/// A small deterministic generator (xorshift64*), so the fixture needs no crate.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }
}

/// Writes train.csv, test.csv, sample_submission.csv and description.md into `dir`; returns
/// the test labels by id.
fn write_fixture(dir: &Path) -> Result<HashMap<String, String>> {
    let mut rng = Rng(20_240_601);
    let mut train = String::from("id,review,label\n");
    let mut test = String::from("id,review\n");
    let mut sample = String::from("id,label\n");
    let mut answers = HashMap::new();
    for id in 0..TRAIN_ROWS + TEST_ROWS {
        // Classes 3:2:1, so the rare one weighs on macro F1.
        let label = [0, 0, 0, 1, 1, 2][rng.below(6)];
        let mut words: Vec<String> = (0..6).map(|_| FILLER[rng.below(10)].to_owned()).collect();
        let suffix: String = (0..3)
            .map(|_| ['x', 'y', 'z', 'q', 'w', 'k'][rng.below(6)])
            .collect();
        words.insert(rng.below(7), format!("{}{suffix}", STEMS[label]));
        if rng.below(10) < 3 {
            words.push(format!("{}s", STEMS[rng.below(3)])); // a misleading stem
        }
        let review = words.join(" ");
        if id < TRAIN_ROWS {
            train.push_str(&format!("{id},{review},c{label}\n"));
        } else {
            test.push_str(&format!("{id},{review}\n"));
            sample.push_str(&format!("{id},c0\n"));
            answers.insert(id.to_string(), format!("c{label}"));
        }
    }
    std::fs::write(dir.join("train.csv"), train)?;
    std::fs::write(dir.join("test.csv"), test)?;
    std::fs::write(dir.join("sample_submission.csv"), sample)?;
    std::fs::write(dir.join("description.md"), DESCRIPTION)?;
    Ok(answers)
}

const DESCRIPTION: &str = "# Review topics\n\nPredict the `label` of each review.\n\n\
## Evaluation\n\nSubmissions are evaluated using the macro F1 score.\n";

/// scikit-learn's macro F1 of a submission's `label` column against `answers`.
fn macro_f1(submission: &Path, answers: &HashMap<String, String>) -> Result<f64> {
    let text = std::fs::read_to_string(submission).context("the submission")?;
    let mut confusion: HashMap<(String, String), usize> = HashMap::new();
    let mut rows = 0;
    for line in text.lines().skip(1) {
        let (id, label) = line.split_once(',').context("two columns")?;
        let truth = answers
            .get(id)
            .with_context(|| format!("unknown id {id}"))?;
        *confusion
            .entry((truth.clone(), label.to_owned()))
            .or_default() += 1;
        rows += 1;
    }
    ensure!(
        rows == answers.len(),
        "{rows} rows for {} ids",
        answers.len()
    );
    let mut classes: Vec<&String> = confusion.keys().flat_map(|(t, p)| [t, p]).collect();
    classes.sort();
    classes.dedup();
    let count = |f: &dyn Fn(&str, &str) -> bool| -> usize {
        confusion
            .iter()
            .filter(|((t, p), _)| f(t, p))
            .map(|(_, n)| n)
            .sum()
    };
    let scores: Vec<f64> = classes
        .iter()
        .map(|c| {
            let hit = count(&|t, p| t == c.as_str() && p == c.as_str());
            let either = count(&|t, _| t == c.as_str()) + count(&|_, p| p == c.as_str());
            2.0 * hit as f64 / either as f64
        })
        .collect();
    Ok(scores.iter().sum::<f64>() / scores.len() as f64)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_baseline_beats_tfidf_and_logistic_regression_on_free_text() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let answers = write_fixture(dir.path())?;
    let competition = PreparedCompetition {
        slug: "review-topics".into(),
        dir: dir.path().into(),
        text: CompetitionText {
            description: Some(DESCRIPTION.into()),
            evaluation_metric: None,
        },
        pin: None,
    };
    let harness = harness(Arc::new(BaselineGenerator));
    let report = solve_competition(&harness, &single_shot(), &competition).await?;
    let stdout = report
        .attempts
        .last()
        .and_then(|a| a.outcome.as_ref())
        .map(|o| o.stdout.clone())
        .unwrap_or_default();
    ensure!(stdout.contains("text features: "), "{stdout}");
    ensure!(stdout.contains("out-of-fold text: macro_f1 "), "{stdout}");
    let ours = macro_f1(Path::new(&report.submission.path), &answers)?;

    let output = tempfile::tempdir()?;
    let script = std::fs::read_to_string(REFERENCE)?;
    let request = SandboxRequest::new(&script, output.path(), generous()).with_input(dir.path());
    let outcome = wasm_sandbox().run(request).await?;
    ensure!(outcome.succeeded(), "reference: {}", outcome.stderr);
    let reference = macro_f1(&output.path().join("submission.csv"), &answers)?;

    eprintln!("macro F1 on {TEST_ROWS} test rows: baseline {ours:.3}, TF-IDF + LR {reference:.3}");
    ensure!(ours >= 0.85, "the baseline's macro F1 {ours:.3}\n{stdout}");
    ensure!(
        ours >= reference + 0.1,
        "the baseline {ours:.3} against the reference {reference:.3}\n{stdout}"
    );
    Ok(())
}

#[test]
fn macro_f1_is_scikit_learns() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("s.csv");
    std::fs::write(&path, "id,label\n1,a\n2,a\n3,b\n4,c\n")?;
    let answers: HashMap<String, String> = [("1", "a"), ("2", "b"), ("3", "b"), ("4", "b")]
        .into_iter()
        .map(|(i, l)| (i.to_owned(), l.to_owned()))
        .collect();
    // f1_score(["a","b","b","b"], ["a","a","b","c"], average="macro"): a 2/3, b 1/2, c 0.
    let expected = (2.0 / 3.0 + 0.5 + 0.0) / 3.0;
    ensure!((macro_f1(&path, &answers)? - expected).abs() < 1e-12);
    Ok(())
}
