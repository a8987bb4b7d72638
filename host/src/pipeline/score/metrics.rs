//! The competition metrics, computed by the host.
//!
//! A candidate's own printed score is a claim made by code we do not trust; the host scores
//! its submission itself with these. Each function follows scikit-learn's definition and agrees
//! with the vendored graders in `tools/eval/` (the integration tests run both on the same
//! inputs). Inputs are already parsed and aligned by row; a metric that is undefined on its
//! inputs (an AUC over one class, a correlation with a constant) is an error, never a number.

/// Probabilities are clipped to `[EPS, 1 - EPS]` before a logarithm, as Kaggle and the
/// graders do.
pub const EPS: f64 = 1e-15;

/// Why a metric has no value on these inputs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricError {
    /// Nothing to score.
    #[error("no rows to score")]
    Empty,
    /// Truth and predictions differ in length (a caller's bug, reported rather than hidden).
    #[error("{truth} answers but {predicted} predictions")]
    Length {
        /// Rows of truth.
        truth: usize,
        /// Rows of predictions.
        predicted: usize,
    },
    /// The metric is not defined on these values.
    #[error("{0}")]
    Undefined(&'static str),
}

/// A sum with Neumaier's compensation, so long columns sum as exactly as Python's `fsum`.
pub fn fsum(values: impl IntoIterator<Item = f64>) -> f64 {
    let (mut sum, mut carry) = (0.0_f64, 0.0_f64);
    for v in values {
        let t = sum + v;
        if sum.abs() >= v.abs() {
            carry += (sum - t) + v;
        } else {
            carry += (v - t) + sum;
        }
        sum = t;
    }
    sum + carry
}

fn check<T, U>(truth: &[T], predicted: &[U]) -> Result<usize, MetricError> {
    if truth.len() != predicted.len() {
        return Err(MetricError::Length {
            truth: truth.len(),
            predicted: predicted.len(),
        });
    }
    if truth.is_empty() {
        return Err(MetricError::Empty);
    }
    Ok(truth.len())
}

/// Share of rows whose prediction equals the truth.
pub fn accuracy<T: PartialEq>(truth: &[T], predicted: &[T]) -> Result<f64, MetricError> {
    let n = check(truth, predicted)?;
    let hits = truth.iter().zip(predicted).filter(|(t, p)| t == p).count();
    Ok(hits as f64 / n as f64)
}

/// Per-class F1 counts: (true positives, false positives, false negatives).
fn counts<T: PartialEq>(truth: &[T], predicted: &[T], class: &T) -> (usize, usize, usize) {
    let (mut tp, mut fp, mut fn_) = (0, 0, 0);
    for (t, p) in truth.iter().zip(predicted) {
        match (t == class, p == class) {
            (true, true) => tp += 1,
            (false, true) => fp += 1,
            (true, false) => fn_ += 1,
            (false, false) => {}
        }
    }
    (tp, fp, fn_)
}

fn f1_of((tp, fp, fn_): (usize, usize, usize)) -> f64 {
    let denom = 2 * tp + fp + fn_;
    if denom == 0 {
        0.0
    } else {
        2.0 * tp as f64 / denom as f64
    }
}

/// Unweighted mean of per-class F1 over the classes in the truth or the predictions
/// (`f1_score(average="macro", zero_division=0)`).
pub fn macro_f1<T: PartialEq + Clone>(truth: &[T], predicted: &[T]) -> Result<f64, MetricError> {
    check(truth, predicted)?;
    let mut classes: Vec<T> = Vec::new();
    for v in truth.iter().chain(predicted) {
        if !classes.contains(v) {
            classes.push(v.clone());
        }
    }
    let f1s = classes.iter().map(|c| f1_of(counts(truth, predicted, c)));
    Ok(fsum(f1s) / classes.len() as f64)
}

/// F1 of the positive class (`f1_score(average="binary", zero_division=0)`).
pub fn binary_f1(truth: &[bool], predicted: &[bool]) -> Result<f64, MetricError> {
    check(truth, predicted)?;
    Ok(f1_of(counts(truth, predicted, &true)))
}

/// Cohen's kappa with quadratic weights on ratings `0..classes`
/// (`cohen_kappa_score(weights="quadratic", labels=range(classes))`).
pub fn quadratic_weighted_kappa(
    truth: &[usize],
    predicted: &[usize],
    classes: usize,
) -> Result<f64, MetricError> {
    let n = check(truth, predicted)?;
    if truth.iter().chain(predicted).any(|&r| r >= classes) {
        return Err(MetricError::Undefined("a rating is outside the label set"));
    }
    let mut observed = vec![vec![0_u64; classes]; classes];
    for (&t, &p) in truth.iter().zip(predicted) {
        observed[t][p] += 1;
    }
    let hist_truth: Vec<f64> = observed
        .iter()
        .map(|r| r.iter().sum::<u64>() as f64)
        .collect();
    let hist_pred: Vec<f64> = (0..classes)
        .map(|j| observed.iter().map(|r| r[j]).sum::<u64>() as f64)
        .collect();
    let (mut num, mut den) = (Vec::new(), Vec::new());
    for i in 0..classes {
        for j in 0..classes {
            let w = (i as f64 - j as f64).powi(2);
            num.push(w * observed[i][j] as f64);
            den.push(w * hist_truth[i] * hist_pred[j] / n as f64);
        }
    }
    let (num, den) = (fsum(num), fsum(den));
    if den == 0.0 {
        // Every rating, true and predicted, is the same one: no disagreement is possible.
        return Ok(if num == 0.0 { 1.0 } else { 0.0 });
    }
    Ok(1.0 - num / den)
}

/// Area under the ROC curve: the Mann-Whitney statistic with average ranks for ties.
pub fn roc_auc(truth: &[bool], scores: &[f64]) -> Result<f64, MetricError> {
    let n = check(truth, scores)?;
    if scores.iter().any(|s| s.is_nan()) {
        return Err(MetricError::Undefined("a score is not a number"));
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut ranks = vec![0.0; n];
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let average = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = average;
        }
        i = j + 1;
    }
    let positives = truth.iter().filter(|&&t| t).count();
    let negatives = n - positives;
    if positives == 0 || negatives == 0 {
        return Err(MetricError::Undefined(
            "ROC AUC needs both classes in the answers",
        ));
    }
    let rank_sum = fsum(
        ranks
            .iter()
            .zip(truth)
            .filter(|(_, t)| **t)
            .map(|(r, _)| *r),
    );
    let p = positives as f64;
    Ok((rank_sum - p * (p + 1.0) / 2.0) / (p * negatives as f64))
}

/// Mean over target columns of the ROC AUC; columns are given one slice each.
pub fn mean_column_auc(truth: &[Vec<bool>], scores: &[Vec<f64>]) -> Result<f64, MetricError> {
    check(truth, scores)?;
    let aucs = truth
        .iter()
        .zip(scores)
        .map(|(t, s)| roc_auc(t, s))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(fsum(aucs) / truth.len() as f64)
}

fn clip(p: f64) -> f64 {
    p.clamp(EPS, 1.0 - EPS)
}

/// Binary log loss of `P(positive)`.
pub fn log_loss(truth: &[bool], probabilities: &[f64]) -> Result<f64, MetricError> {
    let n = check(truth, probabilities)?;
    let terms = truth.iter().zip(probabilities).map(|(&t, &p)| {
        let p = clip(p);
        if t { -p.ln() } else { -(1.0 - p).ln() }
    });
    Ok(fsum(terms) / n as f64)
}

/// Kaggle's multi-class log loss: each probability clipped, each row divided by its sum, then
/// the mean negative log of the true class's probability.
pub fn multiclass_log_loss(truth: &[usize], rows: &[Vec<f64>]) -> Result<f64, MetricError> {
    let n = check(truth, rows)?;
    let mut terms = Vec::with_capacity(n);
    for (&t, row) in truth.iter().zip(rows) {
        let Some(&p_true) = row.get(t) else {
            return Err(MetricError::Undefined(
                "a true class has no probability column",
            ));
        };
        let total = fsum(row.iter().map(|&p| clip(p)));
        terms.push(-(clip(p_true) / total).ln());
    }
    Ok(fsum(terms) / n as f64)
}

/// Root mean squared error.
pub fn rmse(truth: &[f64], predicted: &[f64]) -> Result<f64, MetricError> {
    let n = check(truth, predicted)?;
    let squares = truth.iter().zip(predicted).map(|(t, p)| (p - t).powi(2));
    Ok((fsum(squares) / n as f64).sqrt())
}

/// Root mean squared logarithmic error; values at or below -1 have no logarithm.
pub fn rmsle(truth: &[f64], predicted: &[f64]) -> Result<f64, MetricError> {
    let n = check(truth, predicted)?;
    if truth.iter().chain(predicted).any(|&v| v <= -1.0) {
        return Err(MetricError::Undefined("RMSLE needs values above -1"));
    }
    let squares = truth
        .iter()
        .zip(predicted)
        .map(|(t, p)| (p.ln_1p() - t.ln_1p()).powi(2));
    Ok((fsum(squares) / n as f64).sqrt())
}

/// Mean absolute error.
pub fn mae(truth: &[f64], predicted: &[f64]) -> Result<f64, MetricError> {
    let n = check(truth, predicted)?;
    Ok(fsum(truth.iter().zip(predicted).map(|(t, p)| (p - t).abs())) / n as f64)
}

/// Mean over target columns of the RMSE; columns are given one slice each.
pub fn mcrmse(truth: &[Vec<f64>], predicted: &[Vec<f64>]) -> Result<f64, MetricError> {
    check(truth, predicted)?;
    let each = truth
        .iter()
        .zip(predicted)
        .map(|(t, p)| rmse(t, p))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(fsum(each) / truth.len() as f64)
}

/// Coefficient of determination (`r2_score`, with its finite values for constant truth).
pub fn r2(truth: &[f64], predicted: &[f64]) -> Result<f64, MetricError> {
    let n = check(truth, predicted)?;
    let mean = fsum(truth.iter().copied()) / n as f64;
    let residual = fsum(truth.iter().zip(predicted).map(|(t, p)| (t - p).powi(2)));
    let total = fsum(truth.iter().map(|t| (t - mean).powi(2)));
    if total == 0.0 {
        return Ok(if residual == 0.0 { 1.0 } else { 0.0 });
    }
    Ok(1.0 - residual / total)
}

/// Symmetric mean absolute percentage error in percent, as Kaggle defines it (a row where
/// both values are 0 counts 0).
pub fn smape(truth: &[f64], predicted: &[f64]) -> Result<f64, MetricError> {
    let n = check(truth, predicted)?;
    let terms = truth.iter().zip(predicted).map(|(t, p)| {
        let denom = t.abs() + p.abs();
        if denom == 0.0 {
            0.0
        } else {
            2.0 * (p - t).abs() / denom
        }
    });
    Ok(100.0 * fsum(terms) / n as f64)
}

/// Pearson's correlation coefficient.
pub fn pearson(truth: &[f64], predicted: &[f64]) -> Result<f64, MetricError> {
    let n = check(truth, predicted)? as f64;
    let mean_t = fsum(truth.iter().copied()) / n;
    let mean_p = fsum(predicted.iter().copied()) / n;
    let cov = fsum(
        truth
            .iter()
            .zip(predicted)
            .map(|(t, p)| (t - mean_t) * (p - mean_p)),
    );
    let var_t = fsum(truth.iter().map(|t| (t - mean_t).powi(2)));
    let var_p = fsum(predicted.iter().map(|p| (p - mean_p).powi(2)));
    if var_t == 0.0 || var_p == 0.0 {
        return Err(MetricError::Undefined(
            "a correlation with a constant column is not defined",
        ));
    }
    Ok(cov / (var_t.sqrt() * var_p.sqrt()))
}

/// Mean average precision at `k` over rows: each row's ranked predictions against its set of
/// relevant items (Kaggle's `mapk`; a repeated prediction counts once; a row with no relevant
/// item scores 0).
pub fn map_at_k<T: PartialEq>(
    relevant: &[Vec<T>],
    ranked: &[Vec<T>],
    k: usize,
) -> Result<f64, MetricError> {
    let n = check(relevant, ranked)?;
    if k == 0 {
        return Err(MetricError::Undefined("MAP@K needs K of at least 1"));
    }
    let per_row = relevant.iter().zip(ranked).map(|(actual, predicted)| {
        if actual.is_empty() {
            return 0.0;
        }
        let predicted = &predicted[..predicted.len().min(k)];
        let (mut hits, mut score) = (0_usize, 0.0);
        for (i, p) in predicted.iter().enumerate() {
            if actual.contains(p) && !predicted[..i].contains(p) {
                hits += 1;
                score += hits as f64 / (i + 1) as f64;
            }
        }
        score / actual.len().min(k) as f64
    });
    Ok(fsum(per_row) / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    // Hand-worked values; where a scikit-learn call is named, its documented result.
    #[test]
    fn classification_metrics_match_their_definitions() {
        let t = ["a", "b", "b", "c"];
        let p = ["a", "b", "c", "c"];
        close(accuracy(&t, &p).expect("defined on these inputs"), 0.75);
        // Per class F1: a 1, b 2/3, c 2/3.
        close(
            macro_f1(&t, &p).expect("defined on these inputs"),
            (1.0 + 2.0 / 3.0 + 2.0 / 3.0) / 3.0,
        );
        close(
            binary_f1(&[true, true, false, false], &[true, false, true, false])
                .expect("defined on these inputs"),
            0.5,
        );
        close(
            binary_f1(&[false, false], &[false, false]).expect("defined on these inputs"),
            0.0,
        );
    }

    #[test]
    fn auc_averages_tied_ranks_and_refuses_one_class() {
        close(
            roc_auc(&[false, false, true, true], &[0.1, 0.4, 0.35, 0.8])
                .expect("defined on these inputs"),
            0.75,
        );
        close(
            roc_auc(&[false, true], &[0.5, 0.5]).expect("defined on these inputs"),
            0.5,
        );
        assert_eq!(
            roc_auc(&[true, true], &[0.1, 0.2]),
            Err(MetricError::Undefined(
                "ROC AUC needs both classes in the answers"
            ))
        );
        let cols = mean_column_auc(
            &[vec![false, true], vec![true, false]],
            &[vec![0.1, 0.9], vec![0.1, 0.9]],
        )
        .expect("defined on these inputs");
        close(cols, 0.5);
    }

    #[test]
    fn log_losses_clip_and_normalise() {
        // sklearn.metrics.log_loss([0, 1], [0.2, 0.7])
        close(
            log_loss(&[false, true], &[0.2, 0.7]).expect("defined on these inputs"),
            -(0.8_f64.ln() + 0.7_f64.ln()) / 2.0,
        );
        assert!(
            log_loss(&[true], &[0.0])
                .expect("defined on these inputs")
                .is_finite()
        );
        // Rows are divided by their sums: [2, 2] is [0.5, 0.5].
        close(
            multiclass_log_loss(&[1], &[vec![0.5, 0.5]]).expect("defined on these inputs"),
            multiclass_log_loss(&[1], &[vec![2.0, 2.0]]).expect("defined on these inputs"),
        );
        assert!(multiclass_log_loss(&[2], &[vec![0.5, 0.5]]).is_err());
    }

    #[test]
    fn kappa_is_one_when_equal_and_penalises_distance() {
        close(
            quadratic_weighted_kappa(&[0, 1, 2], &[0, 1, 2], 3).expect("defined on these inputs"),
            1.0,
        );
        // sklearn.metrics.cohen_kappa_score([0,1,2,2],[0,2,2,1],weights="quadratic") = 0.6363...
        close(
            quadratic_weighted_kappa(&[0, 1, 2, 2], &[0, 2, 2, 1], 3)
                .expect("defined on these inputs"),
            1.0 - 2.0 / 5.5,
        );
        close(
            quadratic_weighted_kappa(&[1, 1], &[1, 1], 3).expect("defined on these inputs"),
            1.0,
        );
        assert!(quadratic_weighted_kappa(&[0], &[3], 3).is_err());
    }

    #[test]
    fn regression_metrics_match_their_definitions() {
        let t = [3.0, -0.5, 2.0, 7.0];
        let p = [2.5, 0.0, 2.0, 8.0];
        close(
            rmse(&t, &p).expect("defined on these inputs"),
            (0.375_f64).sqrt(),
        );
        close(mae(&t, &p).expect("defined on these inputs"), 0.5);
        // sklearn.metrics.r2_score([3, -0.5, 2, 7], [2.5, 0.0, 2, 8]) = 0.9486081370449679
        close(
            r2(&t, &p).expect("defined on these inputs"),
            0.948_608_137_044_967_9,
        );
        close(
            r2(&[1.0, 1.0], &[1.0, 1.0]).expect("defined on these inputs"),
            1.0,
        );
        close(
            rmsle(&[0.0, 1.0], &[0.0, 1.0]).expect("defined on these inputs"),
            0.0,
        );
        assert!(rmsle(&[-1.0], &[0.0]).is_err());
        close(
            mcrmse(&[t.to_vec(), vec![0.0; 4]], &[p.to_vec(), vec![1.0; 4]])
                .expect("defined on these inputs"),
            ((0.375_f64).sqrt() + 1.0) / 2.0,
        );
        close(
            smape(&[0.0, 100.0], &[0.0, 50.0]).expect("defined on these inputs"),
            100.0 * (2.0 * 50.0 / 150.0) / 2.0,
        );
        close(
            pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]).expect("defined on these inputs"),
            1.0,
        );
        close(
            pearson(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]).expect("defined on these inputs"),
            -1.0,
        );
        assert!(pearson(&[1.0, 2.0], &[5.0, 5.0]).is_err());
    }

    #[test]
    fn map_at_k_counts_each_hit_once_within_k() {
        let relevant = vec![vec![1, 2], vec![3]];
        let ranked = vec![vec![1, 4, 2], vec![4, 4, 3]];
        // Row 1: (1/1 + 2/3) / 2; row 2 at k=3: (1/3) / 1; at k=2 nothing.
        close(
            map_at_k(&relevant, &ranked, 3).expect("defined on these inputs"),
            ((1.0 + 2.0 / 3.0) / 2.0 + 1.0 / 3.0) / 2.0,
        );
        close(
            map_at_k(&relevant, &ranked, 2).expect("defined on these inputs"),
            (1.0 / 2.0) / 2.0,
        );
        close(
            map_at_k(&[vec![1]], &[vec![1, 1]], 2).expect("defined on these inputs"),
            1.0,
        );
    }

    #[test]
    fn shapes_and_emptiness_are_errors() {
        assert_eq!(rmse(&[], &[]), Err(MetricError::Empty));
        assert_eq!(
            accuracy(&[1], &[1, 2]),
            Err(MetricError::Length {
                truth: 1,
                predicted: 2
            })
        );
    }

    #[test]
    fn the_compensated_sum_is_exact_where_naive_sums_drift() {
        let values = [1e16, 1.0, -1e16];
        assert_eq!(fsum(values), 1.0);
    }
}
