//! Reading the submission's shape: which training columns the sample submission's prediction
//! columns come from, and what each holds (one label or value, one probability per class,
//! several values, several 0/1 probabilities, an ordinal label).
//!
//! A shape the files do not settle is an error that names the columns, never a guess: a
//! wrong guess ends as a submission that validates but scores like constants.

use std::path::Path;

use super::types::{
    ColumnProfile, ColumnType, Metric, PredictionKind, SubmissionShape, TableProfile, TaskKind,
};
use super::{AnalyseError, MAX_CLASSES, profile};
use crate::text::quote_list;

/// Column names a message lists.
const LISTED: usize = 20;
/// Most distinct values a whole-number target may have to be read as classes when no metric
/// says which it is.
const INTEGER_CLASSES: usize = 20;

/// The shape with what follows from it for the models.
#[derive(Debug)]
pub(crate) struct Found {
    pub shape: SubmissionShape,
    pub reason: String,
    pub task: TaskKind,
    pub prediction: PredictionKind,
    pub classes: Vec<String>,
}

/// The three tables the shape is read from, profiled, and the competition folder.
pub(crate) struct Tables<'a> {
    pub dir: &'a Path,
    pub train: &'a TableProfile,
    pub test: &'a TableProfile,
    pub sample: &'a TableProfile,
    pub id_column: &'a str,
}

impl Tables<'_> {
    fn train_column(&self, name: &str) -> Option<&ColumnProfile> {
        self.train.columns.iter().find(|c| c.name == name)
    }

    fn in_test(&self, name: &str) -> bool {
        self.test.columns.iter().any(|c| c.name == name)
    }

    /// Training columns the test table lacks, other than the id: where a target can be.
    fn train_only(&self) -> Vec<&ColumnProfile> {
        self.train
            .columns
            .iter()
            .filter(|c| c.name != self.id_column && !self.in_test(&c.name))
            .collect()
    }

    fn sorted_values(&self, column: &str) -> Result<Vec<String>, AnalyseError> {
        let mut values = profile::column_values(self.dir, &self.train.path, column, usize::MAX)?;
        values.sort();
        values.dedup();
        Ok(values)
    }
}

fn list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    quote_list(names, LISTED)
}

/// The shape of a submission whose prediction columns are `columns`.
pub(crate) fn infer(
    tables: &Tables<'_>,
    columns: &[String],
    metric: Option<Metric>,
) -> Result<Found, AnalyseError> {
    if let [column] = columns {
        return single(tables, column, metric);
    }
    let in_train: Vec<&str> = columns
        .iter()
        .map(String::as_str)
        .filter(|c| tables.train_column(c).is_some())
        .collect();
    if in_train.len() == columns.len() {
        return several_targets(tables, columns, metric);
    }
    if !in_train.is_empty() {
        let absent = columns
            .iter()
            .map(String::as_str)
            .filter(|c| !in_train.contains(c));
        return Err(AnalyseError::Invalid(format!(
            "cannot tell the submission's shape: of its prediction columns, {} are columns of {} but {} are not; expected either every one to be a training column (several targets) or none (one probability column per class)",
            list(in_train.iter().copied()),
            tables.train.path,
            list(absent),
        )));
    }
    class_probabilities(tables, columns, metric)
}

/// One prediction column: a label, a value or a probability of one training column.
fn single(
    tables: &Tables<'_>,
    column: &str,
    metric: Option<Metric>,
) -> Result<Found, AnalyseError> {
    let (target, why) = if tables.train_column(column).is_some() {
        (
            column.to_owned(),
            format!(
                "one prediction column {column:?}, a column of {}",
                tables.train.path
            ),
        )
    } else {
        match tables.train_only().as_slice() {
            [only] => (
                only.name.clone(),
                format!(
                    "one prediction column {column:?}, not in {}; its only column that {} lacks is {:?}",
                    tables.train.path, tables.test.path, only.name
                ),
            ),
            [] => {
                return Err(AnalyseError::Invalid(format!(
                    "cannot tell which column of {} is the target: the prediction column {column:?} is not in it and every other column is also in {}",
                    tables.train.path, tables.test.path
                )));
            }
            several => {
                return Err(AnalyseError::Invalid(format!(
                    "cannot tell which column of {} is the target: the prediction column {column:?} is not in it, and {} columns are absent from {}: {}",
                    tables.train.path,
                    several.len(),
                    tables.test.path,
                    list(several.iter().map(|c| c.name.as_str())),
                )));
            }
        }
    };
    let profile = tables
        .train_column(&target)
        .ok_or_else(|| AnalyseError::Invalid(format!("no column {target:?}")))?;
    let classification = is_classification(profile, metric);
    if !classification {
        return Ok(Found {
            shape: SubmissionShape::Single { target },
            reason: format!("{why}, numeric: a value per row"),
            task: TaskKind::Regression,
            prediction: PredictionKind::Label,
            classes: Vec::new(),
        });
    }
    let classes = tables.sorted_values(&target)?;
    if classes.len() > MAX_CLASSES {
        return Err(AnalyseError::Invalid(format!(
            "the target {target:?} has {} classes; at most {MAX_CLASSES} are supported",
            classes.len()
        )));
    }
    let ordered = classes.iter().all(|c| c.parse::<i64>().is_ok());
    if metric == Some(Metric::QuadraticWeightedKappa) && ordered && classes.len() > 2 {
        return Ok(Found {
            shape: SubmissionShape::Ordinal { target },
            reason: format!(
                "{why}, {} whole-number labels scored by quadratic weighted kappa: an ordered label per row",
                classes.len()
            ),
            task: TaskKind::Multiclass,
            prediction: PredictionKind::Label,
            classes,
        });
    }
    let task = if classes.len() <= 2 {
        TaskKind::Binary
    } else {
        TaskKind::Multiclass
    };
    let prediction = infer_prediction(tables, column, metric, &classes)?;
    let holds = match prediction {
        PredictionKind::Label => "a class label per row",
        PredictionKind::Probability => "the positive class's probability per row",
    };
    Ok(Found {
        shape: SubmissionShape::Single { target },
        reason: format!("{why}, {} classes: {holds}", classes.len()),
        task,
        prediction,
        classes,
    })
}

/// Whether a target column holds classes rather than values.
fn is_classification(profile: &ColumnProfile, metric: Option<Metric>) -> bool {
    let classification_metric = metric.is_some_and(Metric::is_classification);
    let regression_metric = metric.is_some_and(|m| !m.is_classification());
    match profile.dtype {
        ColumnType::Float => classification_metric && (profile.distinct as usize) <= MAX_CLASSES,
        ColumnType::Integer => {
            classification_metric
                || !regression_metric && (profile.distinct as usize) <= INTEGER_CLASSES
        }
        _ => true,
    }
}

/// Labels or probabilities, from the metric and the sample's values.
fn infer_prediction(
    tables: &Tables<'_>,
    column: &str,
    metric: Option<Metric>,
    classes: &[String],
) -> Result<PredictionKind, AnalyseError> {
    match metric {
        Some(Metric::RocAuc | Metric::LogLoss | Metric::MeanColumnRocAuc) => {
            return Ok(PredictionKind::Probability);
        }
        Some(
            Metric::Accuracy
            | Metric::F1
            | Metric::MacroF1
            | Metric::QuadraticWeightedKappa
            | Metric::MapAtK { .. },
        ) => {
            return Ok(PredictionKind::Label);
        }
        _ => {}
    }
    let values = profile::column_values(tables.dir, &tables.sample.path, column, 1_000)?;
    let fractional = values
        .iter()
        .filter_map(|v| v.parse::<f64>().ok())
        .any(|x| (0.0..=1.0).contains(&x) && x.fract() != 0.0);
    Ok(
        if fractional && !values.iter().all(|v| classes.contains(v)) {
            PredictionKind::Probability
        } else {
            PredictionKind::Label
        },
    )
}

/// Whether a profiled column holds only 0 and 1 (or true and false).
fn is_zero_one(profile: &ColumnProfile) -> bool {
    let numeric = matches!(
        profile.dtype,
        ColumnType::Integer | ColumnType::Float | ColumnType::Boolean
    );
    // With at most two distinct values, the examples are all of them.
    numeric
        && profile.distinct <= 2
        && profile.examples.iter().all(|v| {
            matches!(
                v.to_ascii_lowercase().as_str(),
                "0" | "1" | "0.0" | "1.0" | "true" | "false"
            )
        })
}

/// Every prediction column is a training column: several numeric targets, or several 0/1
/// labels.
fn several_targets(
    tables: &Tables<'_>,
    columns: &[String],
    metric: Option<Metric>,
) -> Result<Found, AnalyseError> {
    let profiles: Vec<&ColumnProfile> = columns
        .iter()
        .filter_map(|c| tables.train_column(c))
        .collect();
    let not_numeric: Vec<&str> = profiles
        .iter()
        .filter(|p| {
            !matches!(
                p.dtype,
                ColumnType::Integer | ColumnType::Float | ColumnType::Boolean
            )
        })
        .map(|p| p.name.as_str())
        .collect();
    if !not_numeric.is_empty() {
        return Err(AnalyseError::Invalid(format!(
            "cannot tell the submission's shape: its {} prediction columns are columns of {}, but {} hold text labels; several targets must each be numeric (values) or 0/1 (labels)",
            columns.len(),
            tables.train.path,
            list(not_numeric),
        )));
    }
    let targets = columns.to_vec();
    let names = list(columns.iter().map(String::as_str));
    let all_binary = profiles.iter().all(|p| is_zero_one(p));
    let regression_metric = metric.is_some_and(|m| !m.is_classification());
    if all_binary && !regression_metric {
        let prediction = match metric {
            Some(Metric::Accuracy | Metric::F1 | Metric::MacroF1) => PredictionKind::Label,
            _ => PredictionKind::Probability,
        };
        let holds = match prediction {
            PredictionKind::Label => "a 0/1 label per row and column",
            PredictionKind::Probability => "the probability of 1 per row and column",
        };
        return Ok(Found {
            shape: SubmissionShape::MultiLabel { targets },
            reason: format!(
                "{} prediction columns {names}, each a 0/1 column of {}: several binary labels, {holds}",
                columns.len(),
                tables.train.path
            ),
            task: TaskKind::Binary,
            prediction,
            classes: vec!["0".to_owned(), "1".to_owned()],
        });
    }
    Ok(Found {
        shape: SubmissionShape::MultiTarget { targets },
        reason: format!(
            "{} prediction columns {names}, each a numeric column of {}: several targets, a value per row and column",
            columns.len(),
            tables.train.path
        ),
        task: TaskKind::Regression,
        prediction: PredictionKind::Label,
        classes: Vec::new(),
    })
}

/// Whether the submission column `column` names the class `class`: the same text (in any case,
/// or the same number), or the class after a prefix such as `Class_` or `target-`.
fn names_class(column: &str, class: &str) -> bool {
    let column = column.trim().to_lowercase();
    let class = class.trim().to_lowercase();
    let same_number = match (column.parse::<f64>(), class.parse::<f64>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    column == class
        || same_number
        || column
            .strip_suffix(class.as_str())
            .is_some_and(|prefix| prefix.ends_with(['_', '-', ' ', '.']))
}

/// The class each column names, when every column names exactly one class and every class
/// has exactly one column.
fn match_classes(columns: &[String], classes: &[String]) -> Option<Vec<String>> {
    let exact: Vec<Option<&String>> = columns
        .iter()
        .map(|column| {
            let found: Vec<&String> = classes.iter().filter(|c| *c == column).collect();
            if let [one] = found.as_slice() {
                return Some(*one);
            }
            let found: Vec<&String> = classes.iter().filter(|c| names_class(column, c)).collect();
            match found.as_slice() {
                [one] => Some(*one),
                _ => None,
            }
        })
        .collect();
    let matched: Vec<String> = exact
        .into_iter()
        .collect::<Option<Vec<_>>>()?
        .into_iter()
        .cloned()
        .collect();
    let mut distinct = matched.clone();
    distinct.sort();
    distinct.dedup();
    (distinct.len() == matched.len() && distinct.len() == classes.len()).then_some(matched)
}

/// No prediction column is a training column: one probability column per class of the one
/// training column whose classes the columns name.
fn class_probabilities(
    tables: &Tables<'_>,
    columns: &[String],
    metric: Option<Metric>,
) -> Result<Found, AnalyseError> {
    let candidates = tables.train_only();
    let mut fits = Vec::new();
    for candidate in &candidates {
        if candidate.dtype == ColumnType::Text || candidate.distinct as usize > MAX_CLASSES {
            continue;
        }
        let classes = tables.sorted_values(&candidate.name)?;
        if let Some(matched) = match_classes(columns, &classes) {
            fits.push((candidate.name.clone(), classes, matched));
        }
    }
    let names = list(columns.iter().map(String::as_str));
    let candidate_names = list(candidates.iter().map(|c| c.name.as_str()));
    match fits.len() {
        0 => Err(AnalyseError::Invalid(format!(
            "cannot tell the submission's shape: none of its prediction columns {names} is a column of {train}, and no column of {train} that {test} lacks ({candidate_names}) has exactly one class per prediction column",
            train = tables.train.path,
            test = tables.test.path,
        ))),
        1 => {
            let (target, classes, matched) = fits.remove(0);
            if matches!(metric, Some(m) if !m.is_classification()) {
                return Err(AnalyseError::Invalid(format!(
                    "the prediction columns {names} name the classes of {target:?}, but the metric scores values, not class probabilities"
                )));
            }
            Ok(Found {
                reason: format!(
                    "{} prediction columns {names}, not in {}, each named after one class of its column {target:?}: a probability per class, each row summing to 1",
                    columns.len(),
                    tables.train.path
                ),
                shape: SubmissionShape::ClassProbabilities {
                    target,
                    classes: matched,
                },
                task: if classes.len() <= 2 {
                    TaskKind::Binary
                } else {
                    TaskKind::Multiclass
                },
                prediction: PredictionKind::Probability,
                classes,
            })
        }
        _ => Err(AnalyseError::Invalid(format!(
            "cannot tell the submission's shape: the prediction columns {names} name the classes of several columns of {}: {}",
            tables.train.path,
            list(fits.iter().map(|(name, _, _)| name.as_str())),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_column_names_a_class_by_text_number_or_prefix() {
        assert!(names_class("Class_3", "Class_3"));
        assert!(names_class("class_3", "3"));
        assert!(names_class("3.0", "3"));
        assert!(names_class("target-cat", "cat"));
        assert!(!names_class("Class_13", "3"));
        assert!(!names_class("bobcat", "cat"));
    }

    #[test]
    fn classes_match_only_one_to_one() {
        let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let classes = strings(&["1", "2", "3"]);
        assert_eq!(
            match_classes(&strings(&["c_3", "c_1", "c_2"]), &classes),
            Some(strings(&["3", "1", "2"]))
        );
        // A class without a column, a column without a class, a class named twice.
        assert_eq!(match_classes(&strings(&["c_1", "c_2"]), &classes), None);
        assert_eq!(
            match_classes(&strings(&["c_1", "c_2", "c_3", "c_4"]), &classes),
            None
        );
        assert_eq!(
            match_classes(&strings(&["c_1", "d_1", "c_3"]), &classes),
            None
        );
    }
}
