//! Unit tests for the prompt: the contract is stated, the analysis is carried, and a retry
//! carries the previous attempt, bounded.

use super::*;
use crate::pipeline::analyse::{ColumnProfile, ColumnType, DataFile, TableProfile};
use crate::pipeline::generate::PreviousAttempt;

fn column(name: &str, dtype: ColumnType) -> ColumnProfile {
    ColumnProfile {
        name: name.to_owned(),
        dtype,
        missing_fraction: 0.0,
        distinct: 10,
        examples: vec!["1".to_owned(), "2".to_owned()],
    }
}

fn analysis() -> CompetitionAnalysis {
    let table = |path: &str, rows, names: &[&str]| TableProfile {
        path: path.to_owned(),
        rows,
        columns: names
            .iter()
            .map(|n| column(n, ColumnType::Integer))
            .collect(),
    };
    CompetitionAnalysis {
        slug: "titanic".to_owned(),
        files: vec![
            DataFile {
                path: "train.csv".to_owned(),
                bytes: 61_194,
            },
            DataFile {
                path: "test.csv".to_owned(),
                bytes: 28_629,
            },
            DataFile {
                path: "gender_submission.csv".to_owned(),
                bytes: 3_258,
            },
            DataFile {
                path: "extra/notes.txt".to_owned(),
                bytes: 12,
            },
        ],
        train: table(
            "train.csv",
            891,
            &["PassengerId", "Pclass", "Age", "Survived"],
        ),
        test: table("test.csv", 418, &["PassengerId", "Pclass", "Age"]),
        sample_submission: table("gender_submission.csv", 418, &["PassengerId", "Survived"]),
        id_column: "PassengerId".to_owned(),
        target_columns: vec!["Survived".to_owned()],
        train_target: "Survived".to_owned(),
        task: TaskKind::Binary,
        prediction: PredictionKind::Label,
        metric: Some(Metric::Accuracy),
        classes: vec!["0".to_owned(), "1".to_owned()],
        description: Some("Predict survival on the Titanic.".to_owned()),
    }
}

fn request(
    analysis: &CompetitionAnalysis,
    previous: Option<PreviousAttempt>,
) -> GenerationRequest<'_> {
    GenerationRequest {
        analysis,
        attempt: if previous.is_some() { 2 } else { 1 },
        previous,
    }
}

#[test]
fn the_system_prompt_states_the_guest_contract() {
    let system = build_prompt(&request(&analysis(), None)).system;
    for needle in [
        "WASI",
        "numpy",
        "pandas",
        "scipy",
        "scikit-learn",
        "statsmodels",
        "No network",
        "No subprocess",
        "n_jobs=1",
        "xgboost",
        "lightgbm",
        "catboost",
        "torch",
        "/input",
        "read-only",
        "/output/submission.csv",
        "/tmp",
        "validation",
        "time and memory budget",
        "```python",
        "one complete Python script",
    ] {
        assert!(
            system.contains(needle),
            "the system prompt lacks {needle:?}"
        );
    }
}

#[test]
fn the_user_prompt_carries_the_analysis_and_a_summary() {
    let analysis = analysis();
    let user = build_prompt(&request(&analysis, None)).user;
    let json = serde_json::to_string(&analysis).expect("the analysis serialises");
    assert!(user.contains(&json), "the compact JSON is in the prompt");
    for needle in [
        "Competition: titanic",
        "binary classification",
        "accuracy (higher is better)",
        "predicted class label",
        "Id column: `PassengerId`",
        "`Survived`",
        "/input/train.csv (59.8 KB): the training table, 891 rows",
        "/input/test.csv (28.0 KB): the table to predict, 418 rows",
        "/input/gender_submission.csv (3.2 KB): the sample submission",
        "/input/extra/notes.txt (12 B)",
        "the 418 ids of /input/gender_submission.csv",
        "Write the complete script.",
    ] {
        assert!(
            user.contains(needle),
            "the user prompt lacks {needle:?}:\n{user}"
        );
    }
    assert!(!user.contains("previous script"));
}

#[test]
fn prediction_kinds_are_worded_for_the_model() {
    let mut a = analysis();
    a.prediction = PredictionKind::Probability;
    assert!(prediction_text(&a).contains("probability of the positive class (`1`)"));
    a.task = TaskKind::Multiclass;
    a.target_columns = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
    assert!(prediction_text(&a).contains("one probability per class"));
    a.task = TaskKind::Regression;
    a.target_columns = vec!["SalePrice".to_owned()];
    assert_eq!(prediction_text(&a), "the predicted value in `SalePrice`");
    assert!(metric_text(Some(Metric::Rmsle)).contains("lower is better"));
    assert!(metric_text(None).contains("not stated"));
}

#[test]
fn a_retry_carries_the_previous_code_and_the_error_tail() {
    let analysis = analysis();
    let previous = PreviousAttempt {
        code: "import pandas as pd\nprint(pd.read_csv('/input/train.csv').shape)\n".to_owned(),
        error: "Traceback ...\nKeyError: 'Cabin'\n__KS_ERROR__ {\"type\": \"KeyError\"}".to_owned(),
    };
    let user = build_prompt(&request(&analysis, Some(previous.clone()))).user;
    assert!(user.contains("attempt 2"));
    assert!(user.contains(&previous.code));
    assert!(user.contains(&previous.error));
    assert!(user.contains("complete corrected script"));
    assert!(!user.contains("Write the complete script."));
}

#[test]
fn long_errors_keep_their_end_and_long_code_its_start() {
    let analysis = analysis();
    let error = format!("{}THE-END", "noise line\n".repeat(5_000));
    let code = format!("START{}", "x = 1\n".repeat(20_000));
    let user = build_prompt(&request(&analysis, Some(PreviousAttempt { code, error }))).user;
    assert!(user.contains("THE-END"));
    assert!(user.contains("[... earlier output cut ...]"));
    assert!(user.contains("START"));
    assert!(user.contains("[... cut ...]"));
    assert!(
        user.len() < ERROR_TAIL_CHARS + PREVIOUS_CODE_CHARS + 10_000,
        "{}",
        user.len()
    );
}

#[test]
fn fences_in_the_previous_attempt_cannot_close_the_prompts_own() {
    assert_eq!(fence_for("plain"), "```");
    assert_eq!(fence_for("a ``` b"), "````");
    assert_eq!(fence_for("`````"), "``````");
    let analysis = analysis();
    let previous = PreviousAttempt {
        code: "doc = '''\n```\n'''\n".to_owned(),
        error: "boom".to_owned(),
    };
    let user = build_prompt(&request(&analysis, Some(previous))).user;
    assert!(
        user.contains("````python\ndoc = '''\n```\n'''\n````"),
        "{user}"
    );
}

#[test]
fn a_huge_analysis_is_slimmed() {
    let mut a = analysis();
    a.train.columns = (0..3_000)
        .map(|i| ColumnProfile {
            examples: vec!["a long example value".repeat(3); 5],
            ..column(&format!("feature_{i}"), ColumnType::Float)
        })
        .collect();
    a.description = Some("d".repeat(50_000));
    let json = analysis_json(&a);
    assert!(json.len() <= MAX_ANALYSIS_JSON_CHARS + 20);
    assert!(!json.contains("a long example value"));
    let summary = summary(&a);
    assert!(summary.contains("and 2960 more"));
}

#[test]
fn cutting_respects_character_boundaries() {
    assert_eq!(tail("ééé", 5), "ééé");
    assert_eq!(tail("aébc", 2), "[... earlier output cut ...]\nbc");
    assert_eq!(head("éaé", 2), "éa\n[... cut ...]");
    assert_eq!(size_text(1023), "1023 B");
    assert_eq!(size_text(1536), "1.5 KB");
    assert_eq!(size_text(5 << 30), "5.0 GB");
}
