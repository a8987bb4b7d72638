//! Whether one candidate is better than another on the holdout, or only luckier.
//!
//! Two candidates of one search are scored on the same holdout rows and mostly get the same
//! rows right or wrong, so the difference of their scores is far steadier than either score.
//! A paired bootstrap measures that: the holdout's rows are resampled with replacement, both
//! submissions are scored on each resample, and the share of resamples one wins is how sure
//! the holdout is that it is better. It works for every metric, the ones that are no mean over
//! rows (AUC, F1, kappa) included.

use super::{Answers, CompetitionAnalysis, Failure, Rows, ScoreError, aligned, compute};

/// Resamples of a comparison.
pub const RESAMPLES: usize = 200;
/// Least share of resamples a challenger must win to be taken for better: a later candidate
/// displacing the first one, or a blend displacing it. A better score by luck does not pass, a
/// steady gain does, however small.
pub const SURE_WIN: f64 = 0.9;

/// A fixed, dependency-free random sequence (xorshift64): only its reproducibility matters.
pub(super) struct Sequence(u64);

impl Sequence {
    pub(super) fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    /// A number in `0..n` (`n` above 0).
    pub(super) fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % (n as u64)).unwrap_or(0)
    }
}

/// The share of `resamples` bootstrap resamples of the holdout's rows on which `challenger`
/// scores better than `incumbent` (ties count half; a resample the metric cannot score, such
/// as an AUC over one class, is not counted). `seed` fixes the resamples.
///
/// # Errors
/// A submission that does not fit the answers.
pub fn paired_wins(
    challenger: &[u8],
    incumbent: &[u8],
    answers: &Answers,
    analysis: &CompetitionAnalysis,
    resamples: usize,
    seed: u64,
) -> Result<f64, ScoreError> {
    let columns = &analysis.target_columns;
    let (a, b) = (
        aligned(challenger, answers, columns)?,
        aligned(incumbent, answers, columns)?,
    );
    let (a, b) = (Rows::of(answers, &a), Rows::of(answers, &b));
    let n = answers.rows.len();
    if n == 0 {
        return Ok(0.0);
    }
    let metric = analysis.scored_metric();
    let mut sequence = Sequence::new(seed);
    let (mut wins, mut counted) = (0.0, 0_u32);
    for _ in 0..resamples {
        let picks: Vec<usize> = (0..n).map(|_| sequence.below(n)).collect();
        let score = |rows: &Rows<'_>| -> Result<Option<f64>, ScoreError> {
            let sample = Rows {
                truth: picks.iter().map(|&i| rows.truth[i]).collect(),
                predicted: picks.iter().map(|&i| rows.predicted[i]).collect(),
            };
            match compute(metric, analysis, &sample) {
                Ok(value) => Ok(Some(value)),
                Err(Failure::Metric(_)) => Ok(None),
                Err(Failure::Mismatch(m)) => Err(ScoreError::Mismatch(m)),
                Err(Failure::Unsupported) => Err(ScoreError::Unsupported {
                    metric,
                    shape: analysis.shape.name(),
                    prediction: analysis.prediction,
                    task: analysis.task,
                }),
            }
        };
        let (Some(x), Some(y)) = (score(&a)?, score(&b)?) else {
            continue;
        };
        counted += 1;
        let better = if metric.higher_is_better() {
            x > y
        } else {
            x < y
        };
        #[allow(clippy::float_cmp)] // an exact tie is what counts half
        if better {
            wins += 1.0;
        } else if x == y {
            wins += 0.5;
        }
    }
    Ok(if counted == 0 {
        0.0
    } else {
        wins / f64::from(counted)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::analyse::Metric;

    /// A regression competition scored by `metric` (RMSE or R2).
    fn analysis(metric: Metric) -> CompetitionAnalysis {
        let train: String = (0..40).map(|i| format!("{i},{i},{}.5\n", i * 3)).collect();
        let wording = match metric {
            Metric::R2 => "Submissions are scored on the coefficient of determination (R2).",
            _ => "Submissions are scored on the root mean squared error.",
        };
        let a = super::super::tests::analysis(
            &format!("id,x,y\n{train}"),
            "id,x\n100,1\n",
            "id,y\n100,0\n",
            wording,
        );
        assert_eq!(a.scored_metric(), metric);
        a
    }

    fn answers(values: &[f64]) -> Answers {
        Answers {
            id_column: "id".into(),
            columns: vec!["y".into()],
            rows: values
                .iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), vec![v.to_string()]))
                .collect(),
        }
    }

    fn submission(values: impl Iterator<Item = f64>) -> Vec<u8> {
        let mut out = String::from("id,y\n");
        for (i, v) in values.enumerate() {
            out.push_str(&format!("{i},{v}\n"));
        }
        out.into_bytes()
    }

    #[test]
    fn a_steady_small_gain_is_sure_and_a_lucky_one_is_not() {
        let truth: Vec<f64> = (0..400).map(f64::from).collect();
        let a = analysis(Metric::Rmse);
        let noise = |i: usize| if i.is_multiple_of(2) { 3.0 } else { -3.0 };
        let incumbent = submission(truth.iter().enumerate().map(|(i, t)| t + noise(i)));
        // Every row a little closer: a small gain, but on every row, so every resample sees it.
        let steady = submission(truth.iter().enumerate().map(|(i, t)| t + 0.9 * noise(i)));
        let share =
            paired_wins(&steady, &incumbent, &answers(&truth), &a, RESAMPLES, 7).expect("scored");
        assert!((share - 1.0).abs() < f64::EPSILON, "{share}");
        // As good on the whole but by other mistakes: right on some rows, worse on others.
        let other = submission(truth.iter().enumerate().map(|(i, t)| {
            if i % 4 < 2 {
                *t
            } else {
                t + std::f64::consts::SQRT_2 * noise(i)
            }
        }));
        let share =
            paired_wins(&other, &incumbent, &answers(&truth), &a, RESAMPLES, 7).expect("scored");
        assert!((0.2..0.8).contains(&share), "{share}");
        // The same submission never wins: every resample is a tie.
        let share = paired_wins(&incumbent, &incumbent, &answers(&truth), &a, RESAMPLES, 7)
            .expect("scored");
        assert!((share - 0.5).abs() < f64::EPSILON, "{share}");
    }

    #[test]
    fn the_direction_follows_the_metric_and_a_misfit_is_an_error() {
        let truth = [1.0, 2.0, 3.0, 4.0];
        let close = submission(truth.iter().copied());
        let far = submission(truth.iter().map(|t| t * 3.0));
        let share = paired_wins(&far, &close, &answers(&truth), &analysis(Metric::R2), 50, 1)
            .expect("scored");
        assert!(share.abs() < f64::EPSILON, "a worse R2 never wins: {share}");
        let missing = b"id,y\n0,1\n".to_vec();
        assert!(matches!(
            paired_wins(
                &missing,
                &close,
                &answers(&truth),
                &analysis(Metric::Rmse),
                5,
                1
            ),
            Err(ScoreError::Mismatch(_))
        ));
    }
}
