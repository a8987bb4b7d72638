//! Scoring by the host: a candidate's submission against answers the candidate never saw.
//!
//! `holdout` sets the answers aside and builds the view the candidate runs in; `metrics`
//! computes each competition metric; this module joins a validated submission to the answers
//! by id and reads each shape's columns the way the metric needs them. The number a script
//! prints about itself is never used for anything.

pub mod blend;
pub mod compare;
pub mod holdout;
pub mod metrics;
mod pictures;
pub mod plan;
mod rows;
mod side;
pub mod submission;

pub use holdout::{Answers, HoldoutError, HoldoutSpec, Split, build_view};
pub use metrics::MetricError;
pub use plan::{HOLDOUT_FRACTION, holdout_spec, job_seed};
use submission::Submission;

use super::analyse::{CompetitionAnalysis, Metric, PredictionKind, SubmissionShape, TaskKind};
use super::validate::known_class;
use crate::text::quote;

/// A host-computed score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HostScore {
    /// The metric it was computed with.
    pub metric: Metric,
    /// Its value.
    pub value: f64,
}

impl HostScore {
    /// Whether this score beats `other` (both of the same metric).
    pub fn beats(&self, other: &HostScore) -> bool {
        if self.metric.higher_is_better() {
            self.value > other.value
        } else {
            self.value < other.value
        }
    }
}

/// Why a submission could not be scored.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScoreError {
    /// The metric is undefined on these rows (an AUC over a holdout of one class).
    #[error("the holdout cannot be scored by {metric:?}: {source}")]
    Metric {
        /// The metric.
        metric: Metric,
        /// Why.
        #[source]
        source: MetricError,
    },
    /// The metric does not score this kind of prediction.
    #[error("{metric:?} does not score a {shape} submission of {prediction:?} ({task:?})")]
    Unsupported {
        /// The metric.
        metric: Metric,
        /// The shape's name.
        shape: &'static str,
        /// Labels or probabilities.
        prediction: PredictionKind,
        /// The task.
        task: TaskKind,
    },
    /// The submission does not fit the answers (validation should have refused it).
    #[error("the submission does not fit the holdout: {0}")]
    Mismatch(String),
}

/// Scores `submission` (validated against the holdout view's sample) against `answers`.
///
/// # Errors
/// See [`ScoreError`].
pub fn score_submission(
    submission: &[u8],
    answers: &Answers,
    analysis: &CompetitionAnalysis,
) -> Result<HostScore, ScoreError> {
    let metric = analysis.scored_metric();
    let predicted = aligned(submission, answers, &analysis.target_columns)?;
    let value = compute(metric, analysis, &Rows::of(answers, &predicted)).map_err(|e| match e {
        Failure::Metric(source) => ScoreError::Metric { metric, source },
        Failure::Unsupported => ScoreError::Unsupported {
            metric,
            shape: analysis.shape.name(),
            prediction: analysis.prediction,
            task: analysis.task,
        },
        Failure::Mismatch(m) => ScoreError::Mismatch(m),
    })?;
    Ok(HostScore { metric, value })
}

/// Each holdout row's answers and the submission's predictions, in the answers' order.
struct Rows<'a> {
    truth: Vec<&'a [String]>,
    predicted: Vec<&'a [String]>,
}

impl<'a> Rows<'a> {
    /// `answers`' rows beside `predicted` (from [`aligned`] on the same answers).
    fn of(answers: &'a Answers, predicted: &'a [Vec<String>]) -> Self {
        Self {
            truth: answers.rows.iter().map(|(_, t)| t.as_slice()).collect(),
            predicted: predicted.iter().map(Vec::as_slice).collect(),
        }
    }
}

/// The submission's predictions for each of `answers`' rows, in their order.
fn aligned(
    submission: &[u8],
    answers: &Answers,
    columns: &[String],
) -> Result<Vec<Vec<String>>, ScoreError> {
    let table = Submission::read(submission, &answers.id_column, columns)
        .map_err(|e| ScoreError::Mismatch(e.0))?;
    answers
        .rows
        .iter()
        .map(|(id, _)| {
            table
                .predictions(id.trim())
                .ok_or_else(|| ScoreError::Mismatch(format!("no row for id {}", quote(id))))
        })
        .collect()
}

enum Failure {
    Metric(MetricError),
    Unsupported,
    Mismatch(String),
}

impl From<MetricError> for Failure {
    fn from(e: MetricError) -> Self {
        Self::Metric(e)
    }
}

fn number(value: &str) -> Result<f64, Failure> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| Failure::Mismatch(format!("{} is not a number", quote(value))))
}

/// Column `j` of every row, as numbers.
fn numbers(rows: &[impl AsRef<[String]>], j: usize) -> Result<Vec<f64>, Failure> {
    rows.iter()
        .map(|r| number(r.as_ref().get(j).map_or("", String::as_str)))
        .collect()
}

/// The index of each value's class in `classes`.
fn class_indices(
    classes: &[String],
    values: impl Iterator<Item = impl AsRef<str>>,
) -> Result<Vec<usize>, Failure> {
    values
        .map(|v| {
            known_class(classes, v.as_ref())
                .and_then(|c| classes.iter().position(|k| k == c))
                .ok_or_else(|| Failure::Mismatch(format!("{} is not a class", quote(v.as_ref()))))
        })
        .collect()
}

/// Column-wise metric over several numeric columns, averaged.
fn per_column<T>(
    rows: &Rows<'_>,
    columns: usize,
    read_truth: impl Fn(&Rows<'_>, usize) -> Result<Vec<T>, Failure>,
    metric: impl Fn(&[T], &[f64]) -> Result<f64, MetricError>,
) -> Result<f64, Failure> {
    let mut each = Vec::with_capacity(columns);
    for j in 0..columns {
        each.push(metric(
            &read_truth(rows, j)?,
            &numbers(&rows.predicted, j)?,
        )?);
    }
    if each.is_empty() {
        return Err(Failure::Mismatch("no prediction columns".into()));
    }
    Ok(metrics::fsum(each.iter().copied()) / each.len() as f64)
}

fn compute(metric: Metric, a: &CompetitionAnalysis, rows: &Rows<'_>) -> Result<f64, Failure> {
    use metrics as m;
    let first = |v: &[String]| v.first().cloned().unwrap_or_default();
    let truth_labels: Vec<String> = rows.truth.iter().map(|t| first(t)).collect();
    let predicted_labels: Vec<String> = rows.predicted.iter().map(|p| first(p)).collect();
    let positive = a.classes.last().map(String::as_str);
    let is_positive = |v: &str| known_class(&a.classes, v) == positive && positive.is_some();
    match (&a.shape, a.task, a.prediction, metric) {
        (SubmissionShape::MultiTarget { targets }, ..) => {
            let truth = |r: &Rows<'_>, j| numbers(&r.truth, j);
            let n = targets.len();
            match metric {
                Metric::Mcrmse | Metric::Rmse => Ok(per_column(rows, n, truth, m::rmse)?),
                Metric::Mae => Ok(per_column(rows, n, truth, m::mae)?),
                Metric::R2 => Ok(per_column(rows, n, truth, m::r2)?),
                _ => Err(Failure::Unsupported),
            }
        }
        (SubmissionShape::MultiLabel { targets }, ..) => {
            let truth = |r: &Rows<'_>, j: usize| -> Result<Vec<bool>, Failure> {
                numbers(&r.truth, j).map(|v| v.into_iter().map(|x| x == 1.0).collect())
            };
            let n = targets.len();
            match metric {
                Metric::MeanColumnRocAuc | Metric::RocAuc => {
                    Ok(per_column(rows, n, truth, m::roc_auc)?)
                }
                Metric::LogLoss => Ok(per_column(rows, n, truth, m::log_loss)?),
                _ => Err(Failure::Unsupported),
            }
        }
        (SubmissionShape::ClassProbabilities { classes, .. }, _, _, Metric::LogLoss) => {
            let truth = class_indices(classes, truth_labels.iter())?;
            let probabilities = rows
                .predicted
                .iter()
                .map(|r| r.iter().map(|v| number(v)).collect::<Result<Vec<_>, _>>())
                .collect::<Result<Vec<_>, _>>()?;
            Ok(m::multiclass_log_loss(&truth, &probabilities)?)
        }
        (SubmissionShape::Ordinal { .. }, ..) | (_, _, _, Metric::QuadraticWeightedKappa) => {
            // Ordered labels rank by their numeric order, not the classes' text order.
            let mut ordered = a.classes.clone();
            ordered.sort_by(|x, y| match (x.parse::<f64>(), y.parse::<f64>()) {
                (Ok(x), Ok(y)) => x.total_cmp(&y),
                _ => x.cmp(y),
            });
            let truth = class_indices(&ordered, truth_labels.iter())?;
            let predicted = class_indices(&ordered, predicted_labels.iter())?;
            Ok(m::quadratic_weighted_kappa(
                &truth,
                &predicted,
                ordered.len(),
            )?)
        }
        (SubmissionShape::Single { .. }, TaskKind::Regression, ..) => {
            let truth = numbers(&rows.truth, 0)?;
            let predicted = numbers(&rows.predicted, 0)?;
            let f = match metric {
                Metric::Rmse | Metric::Mcrmse => m::rmse,
                Metric::Rmsle => m::rmsle,
                Metric::Mae => m::mae,
                Metric::R2 => m::r2,
                Metric::Smape => m::smape,
                Metric::Pearson => m::pearson,
                _ => return Err(Failure::Unsupported),
            };
            Ok(f(&truth, &predicted)?)
        }
        (SubmissionShape::Single { .. }, _, PredictionKind::Probability, _) => {
            let truth: Vec<bool> = truth_labels.iter().map(|t| is_positive(t)).collect();
            let predicted = numbers(&rows.predicted, 0)?;
            match metric {
                Metric::LogLoss => Ok(m::log_loss(&truth, &predicted)?),
                Metric::RocAuc | Metric::MeanColumnRocAuc => Ok(m::roc_auc(&truth, &predicted)?),
                _ => Err(Failure::Unsupported),
            }
        }
        (SubmissionShape::Single { .. }, task, PredictionKind::Label, _) => {
            let truth = class_indices(&a.classes, truth_labels.iter())?;
            match metric {
                Metric::MapAtK { k } => {
                    let ranked = rows
                        .predicted
                        .iter()
                        .map(|p| class_indices(&a.classes, first(p).split_whitespace()))
                        .collect::<Result<Vec<_>, _>>()?;
                    let relevant: Vec<Vec<usize>> = truth.iter().map(|&t| vec![t]).collect();
                    Ok(m::map_at_k(&relevant, &ranked, k as usize)?)
                }
                _ => {
                    let predicted = class_indices(&a.classes, predicted_labels.iter())?;
                    match metric {
                        Metric::Accuracy => Ok(m::accuracy(&truth, &predicted)?),
                        Metric::MacroF1 => Ok(m::macro_f1(&truth, &predicted)?),
                        Metric::F1 if task == TaskKind::Binary => {
                            let last = a.classes.len().saturating_sub(1);
                            let t: Vec<bool> = truth.iter().map(|&c| c == last).collect();
                            let p: Vec<bool> = predicted.iter().map(|&c| c == last).collect();
                            Ok(m::binary_f1(&t, &p)?)
                        }
                        Metric::F1 => Ok(m::macro_f1(&truth, &predicted)?),
                        _ => Err(Failure::Unsupported),
                    }
                }
            }
        }
        _ => Err(Failure::Unsupported),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::analyse::{CompetitionText, analyse};

    /// Analyses a competition of `train`, `test` and `sample` with `description` naming the
    /// metric.
    pub(super) fn analysis(
        train: &str,
        test: &str,
        sample: &str,
        description: &str,
    ) -> CompetitionAnalysis {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, body) in [
            ("train.csv", train),
            ("test.csv", test),
            ("sample_submission.csv", sample),
        ] {
            std::fs::write(dir.path().join(name), body).expect("write");
        }
        let text = CompetitionText {
            description: Some(description.into()),
            evaluation_metric: None,
        };
        analyse(dir.path(), "t", &text).expect("analysis")
    }

    fn answers(columns: &[&str], rows: &[(&str, &[&str])]) -> Answers {
        Answers {
            id_column: "id".into(),
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows: rows
                .iter()
                .map(|(id, v)| {
                    (
                        (*id).to_owned(),
                        v.iter().map(|x| (*x).to_owned()).collect(),
                    )
                })
                .collect(),
        }
    }

    fn rows(n: usize, row: impl Fn(usize) -> String) -> String {
        (0..n).map(row).collect()
    }

    #[test]
    fn binary_probabilities_score_the_last_class_by_auc_and_log_loss() {
        let train = format!(
            "id,x,y\n{}",
            rows(40, |i| format!("{i},{i},{}\n", ["no", "yes"][i % 2]))
        );
        let a = analysis(
            &train,
            "id,x\n100,1\n",
            "id,y\n100,0.5\n",
            "Submissions are evaluated on area under the ROC curve.",
        );
        assert_eq!(a.scored_metric(), Metric::RocAuc);
        let truth = answers(&["y"], &[("1", &["yes"]), ("2", &["no"]), ("3", &["yes"])]);
        let perfect = score_submission(b"id,y\n2,0.1\n1,0.9\n3,0.8\n", &truth, &a).expect("score");
        assert_eq!(perfect.value, 1.0);
        let reversed = score_submission(b"id,y\n1,0.1\n2,0.9\n3,0.2\n", &truth, &a).expect("score");
        assert_eq!(reversed.value, 0.0);
        assert!(perfect.beats(&reversed));
        let missing = score_submission(b"id,y\n1,0.1\n2,0.9\n", &truth, &a);
        assert!(
            matches!(&missing, Err(ScoreError::Mismatch(m)) if m.contains("\"3\"")),
            "{missing:?}"
        );
    }

    #[test]
    fn labels_score_by_accuracy_and_class_probabilities_by_multiclass_log_loss() {
        let train = format!(
            "id,x,y\n{}",
            rows(60, |i| format!("{i},{i},{}\n", ["a", "b", "c"][i % 3]))
        );
        let labels = analysis(
            &train,
            "id,x\n100,1\n",
            "id,y\n100,a\n",
            "Scored by accuracy.",
        );
        let truth = answers(
            &["y"],
            &[("1", &["a"]), ("2", &["b"]), ("3", &["c"]), ("4", &["c"])],
        );
        let score =
            score_submission(b"id,y\n1,a\n2,b\n3,c\n4,A\n", &truth, &labels).expect("score");
        assert_eq!((score.metric, score.value), (Metric::Accuracy, 0.75));
        // A label written in another case names the same class.
        let cased =
            score_submission(b"id,y\n1,A\n2,B\n3,C\n4,c\n", &truth, &labels).expect("score");
        assert_eq!(cased.value, 1.0);

        let probabilities = analysis(
            &train,
            "id,x\n100,1\n",
            "id,a,b,c\n100,0.3,0.3,0.4\n",
            "Evaluated with the multi-class logarithmic loss.",
        );
        let sure = score_submission(
            b"id,a,b,c\n1,1,0,0\n2,0,1,0\n3,0,0,1\n4,0,0,1\n",
            &truth,
            &probabilities,
        )
        .expect("score");
        assert!(sure.value < 1e-12, "{sure:?}");
        let even = score_submission(
            b"id,a,b,c\n1,0.25,0.25,0.5\n2,0.25,0.25,0.5\n3,0.25,0.25,0.5\n4,0.25,0.25,0.5\n",
            &truth,
            &probabilities,
        )
        .expect("score");
        let expected = -(2.0 * 0.25_f64.ln() + 2.0 * 0.5_f64.ln()) / 4.0;
        assert!((even.value - expected).abs() < 1e-12);
        assert!(sure.beats(&even) && !even.beats(&sure));
    }

    #[test]
    fn several_targets_average_their_columns_and_ordinals_score_by_kappa() {
        let train = format!(
            "id,x,t1,t2\n{}",
            rows(40, |i| format!("{i},{i},{}.5,{}\n", i, i * 2))
        );
        let a = analysis(
            &train,
            "id,x\n100,1\n",
            "id,t1,t2\n100,0,0\n",
            "Scored by MCRMSE.",
        );
        let truth = answers(&["t1", "t2"], &[("1", &["1", "10"]), ("2", &["3", "20"])]);
        let score = score_submission(b"id,t1,t2\n1,2,10\n2,3,24\n", &truth, &a).expect("score");
        // Column RMSEs sqrt(1/2) and sqrt(16/2), averaged.
        let expected = (0.5_f64.sqrt() + 8.0_f64.sqrt()) / 2.0;
        assert_eq!(score.metric, Metric::Mcrmse);
        assert!((score.value - expected).abs() < 1e-12);

        let train = format!(
            "id,x,grade\n{}",
            rows(60, |i| format!("{i},{i},{}\n", 1 + i % 10))
        );
        let a = analysis(
            &train,
            "id,x\n100,1\n",
            "id,grade\n100,1\n",
            "Submissions are scored based on the quadratic weighted kappa.",
        );
        // Ten grades: ranked 1..10 by number, not as text (where "10" sorts before "2").
        let truth = answers(&["grade"], &[("1", &["2"]), ("2", &["10"]), ("3", &["9"])]);
        let score = score_submission(b"id,grade\n1,2\n2,10\n3,9\n", &truth, &a).expect("score");
        assert_eq!(
            (score.metric, score.value),
            (Metric::QuadraticWeightedKappa, 1.0)
        );
        let off = score_submission(b"id,grade\n1,3\n2,9\n3,10\n", &truth, &a).expect("score");
        assert!(off.value < 1.0 && off.value > 0.0, "{off:?}");
    }

    #[test]
    fn an_undefined_metric_is_an_error_not_a_number() {
        let train = format!("id,x,y\n{}", rows(40, |i| format!("{i},{i},{}\n", i % 2)));
        let a = analysis(
            &train,
            "id,x\n100,1\n",
            "id,y\n100,0.5\n",
            "Submissions are evaluated on area under the ROC curve.",
        );
        let truth = answers(&["y"], &[("1", &["1"]), ("2", &["1"])]);
        let score = score_submission(b"id,y\n1,0.2\n2,0.9\n", &truth, &a);
        assert!(
            matches!(
                score,
                Err(ScoreError::Metric {
                    metric: Metric::RocAuc,
                    ..
                })
            ),
            "{score:?}"
        );
    }
}
