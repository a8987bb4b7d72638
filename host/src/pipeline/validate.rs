//! Checking a submission against `sample_submission.csv` before it is stored: same columns,
//! the same ids once each, no missing values, values of the right kind, and the rules of the
//! submission's shape (per-class probabilities that sum to 1 in each row; several predicted
//! columns that each vary where a fitted model's would). A failure says
//! exactly what is wrong, because it is fed back to the code generator; every value it quotes
//! from the submission is bounded, since the submission is the generated code's output and a
//! 20 MB header must not become a 20 MB message in the logs, Redis and the next prompt.

use std::collections::HashSet;
use std::path::Path;

use crate::text::{MESSAGE_CHARS, head, quote, quote_list};

use super::analyse::profile::is_missing;
use super::analyse::{CompetitionAnalysis, Metric, PredictionKind, SubmissionShape, TaskKind};

/// Why a submission is not valid. The message is written for the code generator to act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid submission: {0}")]
pub struct InvalidSubmission(pub String);

/// What a valid submission holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidSubmission {
    /// Data rows.
    pub rows: usize,
}

/// How many column names a message lists.
const LISTED_COLUMNS: usize = 20;
/// How far a row's class probabilities may sum from 1: room for values written to three or
/// four decimals over up to a hundred classes, far less than a class left at 0 or a row of
/// unnormalised scores.
const PROBABILITY_SUM_TOLERANCE: f64 = 0.01;
/// Rows from which one continuous prediction repeated in every row means the model learned
/// nothing. With fewer rows a fitted model can put every test row in the same leaf.
const ROWS_THAT_MUST_VARY: usize = 20;

/// Validates `submission` (the bytes of `/output/submission.csv`) against the competition's
/// sample submission in `data_dir`.
///
/// # Errors
/// [`InvalidSubmission`] with the first problem found, at most [`MESSAGE_CHARS`] long.
pub fn validate_submission(
    submission: &[u8],
    data_dir: &Path,
    analysis: &CompetitionAnalysis,
) -> Result<ValidSubmission, InvalidSubmission> {
    check(submission, data_dir, analysis)
        .map_err(|message| InvalidSubmission(head(&message, MESSAGE_CHARS)))
}

fn check(
    submission: &[u8],
    data_dir: &Path,
    analysis: &CompetitionAnalysis,
) -> Result<ValidSubmission, String> {
    let sample_path = data_dir.join(&analysis.sample_submission.path);
    let sample = std::fs::File::open(&sample_path)
        .map_err(csv::Error::from)
        .and_then(read_csv)
        .map_err(|e| format!("cannot read the sample submission: {e}"))?;
    let ours = read_csv(submission)
        .map_err(|e| format!("/output/submission.csv is not a readable CSV: {e}"))?;

    if ours.header != sample.header {
        let missing: Vec<_> = sample
            .header
            .iter()
            .filter(|c| !ours.header.contains(c))
            .collect();
        let extra: Vec<_> = ours
            .header
            .iter()
            .filter(|c| !sample.header.contains(c))
            .collect();
        let list = |names: &[&String]| quote_list(names.iter().map(|s| s.as_str()), LISTED_COLUMNS);
        return Err(format!(
            "the columns must be exactly {} in that order; got {} (missing {}, unexpected {})",
            list(&sample.header.iter().collect::<Vec<_>>()),
            list(&ours.header.iter().collect::<Vec<_>>()),
            list(&missing),
            list(&extra),
        ));
    }
    if ours.rows.len() != sample.rows.len() {
        return Err(format!(
            "expected {} data rows (one per id in the sample submission), got {}",
            sample.rows.len(),
            ours.rows.len()
        ));
    }
    let expected_ids: HashSet<&str> = sample.rows.iter().map(|r| r[0].as_str()).collect();
    let mut seen = HashSet::new();
    for (line, row) in ours.rows.iter().enumerate() {
        let id = row[0].as_str();
        if !seen.insert(id) {
            return Err(format!(
                "line {}: the id {} appears twice",
                line + 2,
                quote(id)
            ));
        }
        if !expected_ids.contains(id) && !expected_ids.contains(normalise_number(id).as_str()) {
            return Err(format!(
                "line {}: the id {} is not in the sample submission (ids must be the test ids)",
                line + 2,
                quote(id)
            ));
        }
        for (column, value) in sample.header.iter().zip(row).skip(1) {
            check_value(analysis, column, value.trim()).map_err(|why| {
                format!(
                    "line {}: {} for id {} {why}",
                    line + 2,
                    quote(column),
                    quote(id)
                )
            })?;
        }
    }
    check_shape(analysis, &sample.header, &ours.rows)?;
    Ok(ValidSubmission {
        rows: ours.rows.len(),
    })
}

/// The rules of the submission's shape over whole rows and columns (every value is already
/// known to be of the right kind).
fn check_shape(
    analysis: &CompetitionAnalysis,
    header: &[String],
    rows: &[Vec<String>],
) -> Result<(), String> {
    let number = |value: &str| value.trim().parse::<f64>().unwrap_or(f64::NAN);
    if matches!(analysis.shape, SubmissionShape::ClassProbabilities { .. }) {
        for (line, row) in rows.iter().enumerate() {
            let sum: f64 = row.iter().skip(1).map(|v| number(v)).sum();
            if (sum - 1.0).abs() > PROBABILITY_SUM_TOLERANCE {
                return Err(format!(
                    "line {}: the class probabilities for id {} sum to {sum:.6}, not 1; each row's probabilities must sum to 1",
                    line + 2,
                    quote(&row[0])
                ));
            }
        }
    }
    if !must_vary(analysis) || rows.len() < ROWS_THAT_MUST_VARY {
        return Ok(());
    }
    for (index, column) in header.iter().enumerate().skip(1) {
        if !trained_on_varying(analysis, column) {
            continue;
        }
        let first = number(&rows[0][index]);
        if rows.iter().all(|row| number(&row[index]) == first) {
            return Err(format!(
                "{} holds {first} in all {} rows: every target column must be predicted by a model fitted on it, not filled with a constant",
                quote(column),
                rows.len()
            ));
        }
    }
    Ok(())
}

/// Whether the shape's columns are continuous predictions of several fitted targets, where one
/// value in every row can only be a constant filled in. A single column (a label, or a value
/// of a weak model) and 0/1 labels may honestly repeat one value.
fn must_vary(analysis: &CompetitionAnalysis) -> bool {
    match analysis.shape {
        SubmissionShape::MultiTarget { .. } | SubmissionShape::ClassProbabilities { .. } => true,
        SubmissionShape::MultiLabel { .. } => analysis.prediction == PredictionKind::Probability,
        SubmissionShape::Single { .. } | SubmissionShape::Ordinal { .. } => false,
    }
}

/// Whether the training column behind a submission column varies: a target that never does
/// is honestly predicted by a constant.
fn trained_on_varying(analysis: &CompetitionAnalysis, column: &str) -> bool {
    match &analysis.shape {
        SubmissionShape::ClassProbabilities { .. } => true,
        _ => analysis
            .train
            .columns
            .iter()
            .find(|c| c.name == column)
            .is_some_and(|c| c.distinct > 1),
    }
}

fn check_value(analysis: &CompetitionAnalysis, column: &str, value: &str) -> Result<(), String> {
    if is_missing(value) || value.eq_ignore_ascii_case("nan") {
        return Err(format!(
            "is missing ({}); every row needs a prediction",
            quote(value)
        ));
    }
    let number = || value.parse::<f64>().ok().filter(|x| x.is_finite());
    match (analysis.task, analysis.prediction) {
        (TaskKind::Regression, _) => {
            number().ok_or_else(|| format!("is {}, not a finite number", quote(value)))?;
        }
        (_, PredictionKind::Probability) => {
            let p = number().ok_or_else(|| format!("is {}, not a probability", quote(value)))?;
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("is {p}, outside [0, 1]"));
            }
        }
        (_, PredictionKind::Label) => {
            let labels: Vec<&str> = match analysis.metric {
                Some(Metric::MapAtK { k }) => {
                    let labels: Vec<&str> = value.split_whitespace().collect();
                    if labels.len() > k as usize {
                        return Err(format!(
                            "lists {} labels; MAP@{k} takes at most {k}, best first",
                            labels.len()
                        ));
                    }
                    labels
                }
                _ => vec![value],
            };
            for label in labels {
                check_label(analysis, label)?;
            }
            let _ = column;
        }
    }
    Ok(())
}

fn check_label(analysis: &CompetitionAnalysis, value: &str) -> Result<(), String> {
    if !analysis.classes.is_empty() && known_class(&analysis.classes, value).is_none() {
        return Err(format!(
            "is {}, which is not one of the classes {}",
            quote(value),
            quote_list(analysis.classes.iter().map(String::as_str), LISTED_COLUMNS)
        ));
    }
    Ok(())
}

/// The class `value` names: itself, the same number written otherwise (`1.0` for `1`) or
/// the same word in another case.
pub fn known_class<'a>(classes: &'a [String], value: &str) -> Option<&'a str> {
    let value = value.trim();
    classes
        .iter()
        .find(|c| {
            c.as_str() == value
                || normalise_number(c) == normalise_number(value)
                || c.eq_ignore_ascii_case(value)
        })
        .map(String::as_str)
}

/// `1.0` and `1` name the same id or label.
fn normalise_number(value: &str) -> String {
    match value.parse::<f64>() {
        Ok(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{}", x as i64),
        _ => value.to_owned(),
    }
}

struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

fn read_csv(source: impl std::io::Read) -> Result<Table, csv::Error> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(source);
    let header = reader
        .headers()?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').trim().to_owned())
        .collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        rows.push(record?.iter().map(str::to_owned).collect());
    }
    Ok(Table { header, rows })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::analyse::{CompetitionText, analyse};

    struct Case {
        dir: tempfile::TempDir,
        analysis: CompetitionAnalysis,
    }

    fn competition(sample: &str, train: &str) -> Case {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("train.csv"), train).expect("write");
        std::fs::write(dir.path().join("test.csv"), "id,x\n10,1\n11,2\n12,3\n").expect("write");
        std::fs::write(dir.path().join("sample_submission.csv"), sample).expect("write");
        let analysis = analyse(dir.path(), "t", &CompetitionText::default()).expect("analysis");
        Case { dir, analysis }
    }

    fn check(case: &Case, submission: &str) -> Result<ValidSubmission, InvalidSubmission> {
        validate_submission(submission.as_bytes(), case.dir.path(), &case.analysis)
    }

    fn labels() -> Case {
        competition("id,y\n10,a\n11,a\n12,a\n", "id,x,y\n1,1,a\n2,2,b\n")
    }

    #[test]
    fn a_valid_submission_passes_in_any_row_order() {
        assert_eq!(
            check(&labels(), "id,y\n12,b\n10,a\n11,a\n"),
            Ok(ValidSubmission { rows: 3 })
        );
    }

    #[test]
    fn each_invalid_submission_is_caught_with_its_reason() {
        let case = labels();
        let cases = [
            (
                "id,prediction\n10,a\n11,a\n12,a\n",
                "columns must be exactly",
            ),
            ("id\n10\n11\n12\n", "columns must be exactly"),
            ("id,y\n10,a\n11,a\n", "expected 3 data rows"),
            ("id,y\n10,a\n11,a\n99,a\n", "not in the sample submission"),
            ("id,y\n10,a\n10,a\n11,a\n", "appears twice"),
            ("id,y\n10,a\n11,\n12,a\n", "is missing"),
            ("id,y\n10,a\n11,NaN\n12,a\n", "is missing"),
            ("id,y\n10,a\n11,zebra\n12,a\n", "not one of the classes"),
        ];
        for (submission, reason) in cases {
            let error = check(&case, submission).expect_err(submission);
            assert!(error.0.contains(reason), "{submission:?}: {error}");
        }
    }

    #[test]
    fn what_the_submission_says_is_quoted_bounded() {
        let case = labels();
        // A 20 MB header: one huge column name, then thousands of small ones.
        let mut header = "x".repeat(20 << 20);
        for i in 0..5_000 {
            header.push_str(&format!(",c{i}"));
        }
        let error = check(&case, &format!("{header}\n")).expect_err("wrong columns");
        assert!(
            error.to_string().len() < 4_096,
            "{} bytes",
            error.to_string().len()
        );
        assert!(error.0.contains("more characters)"), "{error}");
        assert!(error.0.contains("... and "), "{error}");
        let long_id = "9".repeat(100_000);
        let error = check(&case, &format!("id,y\n{long_id},a\n11,a\n12,a\n")).expect_err("id");
        assert!(
            error.0.len() < 1_000 && error.0.contains("not in the sample"),
            "{error}"
        );
    }

    #[test]
    fn regression_values_must_be_numbers() {
        let case = competition(
            "id,y\n10,0\n11,0\n12,0\n",
            "id,x,y\n1,1,0.5\n2,2,1.5\n3,3,2.25\n",
        );
        assert!(check(&case, "id,y\n10,1.5\n11,2\n12,3e2\n").is_ok());
        let error = check(&case, "id,y\n10,1.5\n11,inf\n12,x\n").expect_err("inf");
        assert!(error.0.contains("not a finite number"), "{error}");
    }

    /// A test table of `rows` ids (0..rows) beside `train` and `sample_header`'s sample.
    fn wide(train: &str, sample_header: &str, rows: usize, text: &str) -> Case {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("train.csv"), train).expect("write");
        let ids: String = (0..rows).map(|i| format!("{i},{i}\n")).collect();
        std::fs::write(dir.path().join("test.csv"), format!("id,x\n{ids}")).expect("write");
        let width = sample_header.split(',').count() - 1;
        let zeros = vec!["0"; width].join(",");
        let sample: String = (0..rows).map(|i| format!("{i},{zeros}\n")).collect();
        std::fs::write(
            dir.path().join("sample_submission.csv"),
            format!("{sample_header}\n{sample}"),
        )
        .expect("write");
        let text = CompetitionText {
            description: Some(text.to_owned()),
            evaluation_metric: None,
        };
        let analysis = analyse(dir.path(), "t", &text).expect("analysis");
        Case { dir, analysis }
    }

    fn rows(header: &str, rows: usize, row: impl Fn(usize) -> String) -> String {
        let body: String = (0..rows).map(|i| format!("{i},{}\n", row(i))).collect();
        format!("{header}\n{body}")
    }

    #[test]
    fn map_at_k_rows_list_up_to_k_known_labels() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, body) in [
            ("train.csv", "id,x,y\n1,1,a\n2,2,b\n3,3,c\n4,4,d\n"),
            ("test.csv", "id,x\n10,1\n11,2\n"),
            ("sample_submission.csv", "id,y\n10,a b c\n11,a b c\n"),
        ] {
            std::fs::write(dir.path().join(name), body).expect("write");
        }
        let text = CompetitionText {
            description: Some("MAP@3".into()),
            evaluation_metric: None,
        };
        let case = Case {
            analysis: analyse(dir.path(), "m", &text).expect("analysis"),
            dir,
        };
        assert!(check(&case, "id,y\n10,d c b\n11,a\n").is_ok());
        let error = check(&case, "id,y\n10,a b c d\n11,a\n").expect_err("four");
        assert!(
            error.0.contains("lists 4 labels; MAP@3 takes at most 3"),
            "{error}"
        );
        let error = check(&case, "id,y\n10,a zz\n11,a\n").expect_err("unknown");
        assert!(
            error.0.contains("\"zz\", which is not one of the classes"),
            "{error}"
        );
    }

    #[test]
    fn class_probabilities_must_sum_to_one_in_every_row() {
        let case = wide(
            "id,x,y\n1,1,a\n2,2,b\n3,3,c\n",
            "id,a,b,c",
            3,
            "multi-class logarithmic loss",
        );
        assert!(matches!(
            case.analysis.shape,
            SubmissionShape::ClassProbabilities { .. }
        ));
        let good = rows("id,a,b,c", 3, |i| match i {
            0 => "0.2,0.3,0.5".into(),
            1 => "0.3333,0.3333,0.3334".into(),
            _ => "1,0,0".into(),
        });
        assert_eq!(check(&case, &good), Ok(ValidSubmission { rows: 3 }));
        for bad in ["0.2,0.3,0.4", "0.5,0.5,0.5", "0.9,0.1,0.0001e3"] {
            let submission = rows("id,a,b,c", 3, |i| {
                if i == 1 {
                    bad.into()
                } else {
                    "0.2,0.3,0.5".into()
                }
            });
            let error = check(&case, &submission).expect_err(bad);
            assert!(
                error
                    .0
                    .contains("line 3: the class probabilities for id \"1\" sum to"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn a_multi_target_submission_with_a_constant_column_is_invalid() {
        let case = wide(
            "id,x,t1,t2\n1,1,0.5,10\n2,2,1.5,20\n3,3,2.5,35\n",
            "id,t1,t2",
            25,
            "MCRMSE",
        );
        assert!(matches!(
            case.analysis.shape,
            SubmissionShape::MultiTarget { .. }
        ));
        let varying = rows("id,t1,t2", 25, |i| format!("{}.5,{}", i % 3, 10 + i));
        assert_eq!(check(&case, &varying), Ok(ValidSubmission { rows: 25 }));
        let constant = rows("id,t1,t2", 25, |i| format!("{}.5,0.0", i % 3));
        let error = check(&case, &constant).expect_err("a constant column");
        assert!(error.0.contains("\"t2\" holds 0 in all 25 rows"), "{error}");
        let text = rows("id,t1,t2", 25, |i| format!("{}.5,big", i % 3));
        assert!(
            check(&case, &text)
                .expect_err("text")
                .0
                .contains("not a finite number")
        );
    }

    #[test]
    fn a_constant_column_on_a_tiny_test_set_or_a_constant_target_passes() {
        let case = wide(
            "id,x,t1,t2\n1,1,0.5,10\n2,2,1.5,10\n3,3,2.5,10\n",
            "id,t1,t2",
            ROWS_THAT_MUST_VARY,
            "MCRMSE",
        );
        // t2 never varies in training, so a constant is the honest prediction.
        let submission = rows("id,t1,t2", ROWS_THAT_MUST_VARY, |i| format!("{i},10"));
        assert!(check(&case, &submission).is_ok());
        let small = wide(
            "id,x,t1,t2\n1,1,0.5,10\n2,2,1.5,20\n3,3,2.5,35\n",
            "id,t1,t2",
            ROWS_THAT_MUST_VARY - 1,
            "MCRMSE",
        );
        let submission = rows("id,t1,t2", ROWS_THAT_MUST_VARY - 1, |i| format!("{i},7"));
        assert!(check(&small, &submission).is_ok());
    }

    #[test]
    fn multi_label_probabilities_are_in_zero_one_and_vary() {
        let case = wide(
            "id,x,a,b\n1,1,0,1\n2,2,1,0\n3,3,1,1\n",
            "id,a,b",
            30,
            "mean column-wise ROC AUC",
        );
        assert!(matches!(
            case.analysis.shape,
            SubmissionShape::MultiLabel { .. }
        ));
        let good = rows("id,a,b", 30, |i| format!("0.{i:02},0.{:02}", 99 - i));
        assert!(check(&case, &good).is_ok());
        let above = rows("id,a,b", 30, |i| format!("0.{i:02},1.5"));
        assert!(
            check(&case, &above)
                .expect_err("1.5")
                .0
                .contains("outside [0, 1]")
        );
        let constant = rows("id,a,b", 30, |i| format!("0.{i:02},0.5"));
        let error = check(&case, &constant).expect_err("constant");
        assert!(
            error.0.contains("\"b\" holds 0.5 in all 30 rows"),
            "{error}"
        );
    }
}
