//! How a job's holdout is drawn, decided from the analysis and the training table: which rows
//! a candidate may fit and which the host keeps to score it.
//!
//! A holdout only measures what the leaderboard will if it is drawn the way the test set was:
//! the latest rows when the test set is later in time, whole groups when the test rows belong
//! to keys that training never saw (patients, users, sessions), the classes' shares for a
//! classification, else rows at random. The split is seeded by the job, so every candidate and
//! every worker of the job sees the same one.

use std::collections::HashSet;
use std::path::Path;

use super::holdout::{HoldoutError, HoldoutSpec, ImageRoles, Split};
use crate::pipeline::analyse::{ColumnType, CompetitionAnalysis, SubmissionShape, TaskKind};

/// Share of the training rows a job holds out.
pub const HOLDOUT_FRACTION: f64 = 0.2;

/// Words that mark a column as a key shared by several rows (a patient, a user, a group).
const GROUP_WORDS: [&str; 8] = [
    "group",
    "user",
    "patient",
    "customer",
    "session",
    "subject",
    "household",
    "store",
];
/// Words that mark a column as a time.
const TIME_WORDS: [&str; 5] = ["date", "time", "timestamp", "year", "day"];

/// The holdout of `analysis`'s competition (files under `dir`), seeded by `seed`, dealt into
/// `folds` folds where the split allows (its first fold's view; the others differ only in
/// `fold`). A split by time has one fold, the latest rows: earlier folds would be predicted
/// from later rows, which the test set never is. A split by groups has no more folds than
/// groups.
///
/// # Errors
/// When the training or test table cannot be read.
pub fn holdout_spec(
    analysis: &CompetitionAnalysis,
    dir: &Path,
    seed: u64,
    folds: usize,
) -> Result<HoldoutSpec, HoldoutError> {
    let train = Columns::read(&dir.join(&analysis.train.path))?;
    let test = Columns::read(&dir.join(&analysis.test.path))?;
    let split = time_split(analysis, &train, &test)
        .or_else(|| group_split(analysis, &train, &test))
        .unwrap_or_else(|| class_split(analysis));
    let folds = match &split {
        Split::Time(_) => 1,
        Split::Group(column) => {
            let keys: HashSet<&str> = train
                .values(column)
                .unwrap_or_default()
                .into_iter()
                .collect();
            folds.clamp(1, keys.len().max(1))
        }
        Split::Random | Split::Stratified(_) => folds.max(1),
    };
    Ok(HoldoutSpec {
        train: analysis.train.path.clone(),
        test: analysis.test.path.clone(),
        sample: analysis.sample_submission.path.clone(),
        id_column: analysis.id_column.clone(),
        targets: analysis
            .shape
            .train_targets()
            .into_iter()
            .map(str::to_owned)
            .collect(),
        split,
        fraction: HOLDOUT_FRACTION,
        folds,
        fold: 0,
        seed,
        images: analysis.images.as_ref().map(|i| ImageRoles {
            train: i.train.clone(),
            test: i.test.clone(),
        }),
        row_tables: analysis
            .tables
            .side
            .iter()
            .filter(|t| t.link.as_ref().is_some_and(|l| l.row_id))
            .map(|t| t.table.path.clone())
            .collect(),
    })
}

/// A seed for job `id`, the same on every worker and every release (FNV-1a).
pub fn job_seed(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A table's columns by name, as text.
struct Columns {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Columns {
    fn read(path: &Path) -> Result<Self, HoldoutError> {
        let shown = path.display().to_string();
        let csv = |context: String| move |source| HoldoutError::Csv { context, source };
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_path(path)
            .map_err(csv(format!("cannot open {shown}")))?;
        let header = reader
            .headers()
            .map_err(csv(format!("cannot read the header of {shown}")))?
            .iter()
            .map(str::to_owned)
            .collect();
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record.map_err(csv(format!("cannot read {shown}")))?;
            rows.push(record.iter().map(str::to_owned).collect());
        }
        Ok(Self { header, rows })
    }

    fn values(&self, name: &str) -> Option<Vec<&str>> {
        let at = self.header.iter().position(|h| h == name)?;
        Some(
            self.rows
                .iter()
                .map(|r| r.get(at).map_or("", String::as_str).trim())
                .filter(|v| !v.is_empty())
                .collect(),
        )
    }
}

fn is_target(analysis: &CompetitionAnalysis, name: &str) -> bool {
    name == analysis.id_column
        || analysis.shape.train_targets().contains(&name)
        || analysis.target_columns.iter().any(|t| t == name)
}

/// The latest rows, when a time column of both tables shows the test rows come after most
/// training rows (their earliest is past the training's 90th percentile).
fn time_split(analysis: &CompetitionAnalysis, train: &Columns, test: &Columns) -> Option<Split> {
    analysis
        .train
        .columns
        .iter()
        .filter(|c| !is_target(analysis, &c.name))
        .filter(|c| {
            let lower = c.name.to_lowercase();
            c.dtype == ColumnType::Datetime || TIME_WORDS.iter().any(|w| lower == *w)
        })
        .find(|c| {
            let (Some(fit), Some(predict)) = (train.values(&c.name), test.values(&c.name)) else {
                return false;
            };
            later(&fit, &predict)
        })
        .map(|c| Split::Time(c.name.clone()))
}

/// Whether the earliest of `predict` is past the 90th percentile of `fit` (numbers compared as
/// numbers, anything else as text, which orders ISO dates).
fn later(fit: &[&str], predict: &[&str]) -> bool {
    if fit.len() < 2 || predict.is_empty() {
        return false;
    }
    let numbers = |v: &[&str]| -> Option<Vec<f64>> { v.iter().map(|x| x.parse().ok()).collect() };
    match (numbers(fit), numbers(predict)) {
        (Some(mut fit), Some(predict)) => {
            fit.sort_by(f64::total_cmp);
            let cut = fit[fit.len() * 9 / 10];
            predict.iter().copied().fold(f64::INFINITY, f64::min) > cut
        }
        _ => {
            let mut fit = fit.to_vec();
            fit.sort_unstable();
            let cut = fit[fit.len() * 9 / 10];
            predict.iter().min().is_some_and(|first| *first > cut)
        }
    }
}

/// Whole groups, when an id-like column of both tables repeats in training and the test rows'
/// keys are mostly ones training never saw.
fn group_split(analysis: &CompetitionAnalysis, train: &Columns, test: &Columns) -> Option<Split> {
    analysis
        .train
        .columns
        .iter()
        .filter(|c| !is_target(analysis, &c.name))
        .filter(|c| matches!(c.dtype, ColumnType::Integer | ColumnType::Categorical))
        .filter(|c| looks_like_key(&c.name))
        .find(|c| {
            let (Some(fit), Some(predict)) = (train.values(&c.name), test.values(&c.name)) else {
                return false;
            };
            let keys: HashSet<&str> = fit.iter().copied().collect();
            let repeats = keys.len() >= 2 && keys.len() < fit.len();
            let unseen = predict.iter().filter(|v| !keys.contains(*v)).count();
            repeats && !predict.is_empty() && unseen * 2 > predict.len()
        })
        .map(|c| Split::Group(c.name.clone()))
}

fn looks_like_key(name: &str) -> bool {
    let lower = name.to_lowercase();
    lower.ends_with("_id")
        || lower.ends_with("id") && name.len() > 2 && name.ends_with("Id")
        || name.ends_with("ID") && name.len() > 2
        || GROUP_WORDS.iter().any(|w| lower.contains(w))
}

/// The classes' shares for a classification of one target, else rows at random.
fn class_split(analysis: &CompetitionAnalysis) -> Split {
    match (&analysis.shape, analysis.task) {
        (_, TaskKind::Regression) | (SubmissionShape::MultiLabel { .. }, _) => Split::Random,
        (SubmissionShape::MultiTarget { .. }, _) => Split::Random,
        (
            SubmissionShape::Single { target }
            | SubmissionShape::ClassProbabilities { target, .. }
            | SubmissionShape::Ordinal { target },
            _,
        ) => Split::Stratified(target.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_later_in_time_is_seen() {
        assert!(later(
            &["2020-01-01", "2020-06-01", "2020-12-31"],
            &["2021-01-05"]
        ));
        assert!(!later(
            &["2020-01-01", "2020-06-01", "2020-12-31"],
            &["2020-03-01"]
        ));
        assert!(later(&["1", "2", "3", "10"], &["11", "12"]));
        // Numbers compare as numbers: "9" is not after "10".
        assert!(!later(&["1", "5", "10"], &["9"]));
        assert!(!later(&["1"], &["2"]));
    }

    #[test]
    fn key_names() {
        for key in ["patient_id", "UserId", "groupName", "SessionID", "store"] {
            assert!(looks_like_key(key), "{key}");
        }
        for other in ["age", "paid", "void", "id"] {
            assert!(!looks_like_key(other), "{other}");
        }
    }

    #[test]
    fn seeds_are_stable_and_differ_by_job() {
        assert_eq!(job_seed("job-1"), job_seed("job-1"));
        assert_ne!(job_seed("job-1"), job_seed("job-2"));
        assert_eq!(job_seed(""), 0xcbf2_9ce4_8422_2325);
    }
}
