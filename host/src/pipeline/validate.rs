//! Checking a submission against `sample_submission.csv` before it is stored: same columns,
//! the same ids once each, no missing values, and values of the right kind. A failure says
//! exactly what is wrong, because it is fed back to the code generator.

use std::collections::HashSet;
use std::path::Path;

use super::analyse::profile::is_missing;
use super::analyse::{CompetitionAnalysis, PredictionKind, TaskKind};

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

/// Validates `submission` against the competition's sample submission in `data_dir`.
///
/// # Errors
/// [`InvalidSubmission`] with the first problem found.
pub fn validate_submission(
    submission: &Path,
    data_dir: &Path,
    analysis: &CompetitionAnalysis,
) -> Result<ValidSubmission, InvalidSubmission> {
    let invalid = |message: String| InvalidSubmission(message);
    if !submission.is_file() {
        return Err(invalid(
            "the script did not write /output/submission.csv".into(),
        ));
    }
    let sample = read_csv(&data_dir.join(&analysis.sample_submission.path))
        .map_err(|e| invalid(format!("cannot read the sample submission: {e}")))?;
    let ours = read_csv(submission)
        .map_err(|e| invalid(format!("/output/submission.csv is not a readable CSV: {e}")))?;

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
        return Err(invalid(format!(
            "the columns must be exactly {:?} in that order; got {:?} (missing {missing:?}, unexpected {extra:?})",
            sample.header, ours.header
        )));
    }
    if ours.rows.len() != sample.rows.len() {
        return Err(invalid(format!(
            "expected {} data rows (one per id in the sample submission), got {}",
            sample.rows.len(),
            ours.rows.len()
        )));
    }
    let expected_ids: HashSet<&str> = sample.rows.iter().map(|r| r[0].as_str()).collect();
    let mut seen = HashSet::new();
    for (line, row) in ours.rows.iter().enumerate() {
        let id = row[0].as_str();
        if !seen.insert(id) {
            return Err(invalid(format!(
                "line {}: the id {id:?} appears twice",
                line + 2
            )));
        }
        if !expected_ids.contains(id) && !expected_ids.contains(normalise_number(id).as_str()) {
            return Err(invalid(format!(
                "line {}: the id {id:?} is not in the sample submission (ids must be the test ids)",
                line + 2
            )));
        }
        for (column, value) in sample.header.iter().zip(row).skip(1) {
            check_value(analysis, column, value.trim()).map_err(|why| {
                invalid(format!("line {}: {column} for id {id:?} {why}", line + 2))
            })?;
        }
    }
    Ok(ValidSubmission {
        rows: ours.rows.len(),
    })
}

fn check_value(analysis: &CompetitionAnalysis, column: &str, value: &str) -> Result<(), String> {
    if is_missing(value) || value.eq_ignore_ascii_case("nan") {
        return Err(format!(
            "is missing ({value:?}); every row needs a prediction"
        ));
    }
    let number = || value.parse::<f64>().ok().filter(|x| x.is_finite());
    match (analysis.task, analysis.prediction) {
        (TaskKind::Regression, _) => {
            number().ok_or_else(|| format!("is {value:?}, not a finite number"))?;
        }
        (_, PredictionKind::Probability) => {
            let p = number().ok_or_else(|| format!("is {value:?}, not a probability"))?;
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("is {p}, outside [0, 1]"));
            }
        }
        (_, PredictionKind::Label) => {
            let known = analysis.classes.iter().any(|c| {
                c == value
                    || normalise_number(c) == normalise_number(value)
                    || c.eq_ignore_ascii_case(value)
            });
            if !analysis.classes.is_empty() && !known {
                return Err(format!(
                    "is {value:?}, which is not one of the classes {:?}",
                    analysis.classes
                ));
            }
            let _ = column;
        }
    }
    Ok(())
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

fn read_csv(path: &Path) -> Result<Table, csv::Error> {
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_path(path)?;
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
mod tests;
