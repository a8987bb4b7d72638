//! Reading the evaluation metric from a competition's description or metadata, the way a person
//! would: by the names Kaggle's evaluation pages use.

use super::types::Metric;

/// Phrases that name each metric, most specific first (so "root mean squared logarithmic error"
/// is found before "root mean squared error", and "log loss" before "loss").
const PHRASES: &[(&str, Metric)] = &[
    ("quadratic weighted kappa", Metric::QuadraticWeightedKappa),
    (
        "quadratic weighted cohen s kappa",
        Metric::QuadraticWeightedKappa,
    ),
    ("weighted kappa", Metric::QuadraticWeightedKappa),
    ("qwk", Metric::QuadraticWeightedKappa),
    ("mcrmse", Metric::Mcrmse),
    ("mean columnwise root mean squared error", Metric::Mcrmse),
    ("mean column-wise root mean squared error", Metric::Mcrmse),
    ("mean column wise root mean squared error", Metric::Mcrmse),
    ("mean columnwise roc auc", Metric::MeanColumnRocAuc),
    ("mean column-wise roc auc", Metric::MeanColumnRocAuc),
    ("mean column wise roc auc", Metric::MeanColumnRocAuc),
    ("mean columnwise auc", Metric::MeanColumnRocAuc),
    ("mean column-wise auc", Metric::MeanColumnRocAuc),
    ("root mean squared logarithmic error", Metric::Rmsle),
    ("root mean square logarithmic error", Metric::Rmsle),
    ("rmsle", Metric::Rmsle),
    ("mean squared log error", Metric::Rmsle),
    ("root mean squared error", Metric::Rmse),
    ("root mean square error", Metric::Rmse),
    ("rmse", Metric::Rmse),
    ("symmetric mean absolute percentage error", Metric::Smape),
    ("smape", Metric::Smape),
    ("mean absolute error", Metric::Mae),
    ("mae", Metric::Mae),
    ("coefficient of determination", Metric::R2),
    ("r2", Metric::R2),
    ("r-squared", Metric::R2),
    ("r squared", Metric::R2),
    ("pearson correlation", Metric::Pearson),
    ("pearson s correlation", Metric::Pearson),
    ("pearson r", Metric::Pearson),
    ("area under the roc curve", Metric::RocAuc),
    (
        "area under receiver operating characteristic",
        Metric::RocAuc,
    ),
    (
        "area under the receiver operating characteristic",
        Metric::RocAuc,
    ),
    ("roc curve", Metric::RocAuc),
    ("roc auc", Metric::RocAuc),
    ("auc", Metric::RocAuc),
    ("multi-class logarithmic loss", Metric::LogLoss),
    ("multiclass log loss", Metric::LogLoss),
    ("logarithmic loss", Metric::LogLoss),
    ("log loss", Metric::LogLoss),
    ("logloss", Metric::LogLoss),
    ("cross-entropy", Metric::LogLoss),
    ("macro f1", Metric::MacroF1),
    ("macro-f1", Metric::MacroF1),
    ("macro-averaged f1", Metric::MacroF1),
    ("macro averaged f1", Metric::MacroF1),
    ("mean f1", Metric::MacroF1),
    ("f1 score", Metric::F1),
    ("f1-score", Metric::F1),
    ("categorization accuracy", Metric::Accuracy),
    ("classification accuracy", Metric::Accuracy),
    ("accuracy", Metric::Accuracy),
];

/// Most labels a MAP@K row may list.
const MAX_K: u32 = 100;

/// The metric a text names, if any. Matches whole words only (so "mae" does not match "maestro").
pub(crate) fn metric_from_text(text: &str) -> Option<Metric> {
    let lower = text.to_lowercase();
    if let Some(k) = map_at_k(&lower) {
        return Some(Metric::MapAtK { k });
    }
    let words = normalise(&lower);
    PHRASES
        .iter()
        .find(|(phrase, _)| contains_words(&words, &normalise(phrase)))
        .map(|(_, metric)| *metric)
}

/// `k` of a mean average precision named as `MAP@3`, `map@k` or "mean average precision @ 5"
/// (0 when the text does not say how many: the sample submission then tells).
fn map_at_k(lower: &str) -> Option<u32> {
    for name in [
        "map@",
        "map @",
        "mean average precision @",
        "mean average precision at ",
    ] {
        let mut rest = lower;
        while let Some(at) = rest.find(name) {
            let before = rest[..at].chars().next_back();
            let after = rest[at + name.len()..].trim_start();
            rest = &rest[at + name.len()..];
            if before.is_some_and(char::is_alphanumeric) {
                continue;
            }
            let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
            return Some(digits.parse::<u32>().map_or(0, |k| k.min(MAX_K)));
        }
    }
    let words = normalise(lower);
    contains_words(&words, " mean average precision ").then_some(0)
}

/// Lowercase words separated by single spaces, with punctuation other than `-` dropped.
fn normalise(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' {
                c
            } else {
                ' '
            }
        })
        .collect();
    let words: Vec<&str> = cleaned.split_whitespace().collect();
    format!(" {} ", words.join(" "))
}

fn contains_words(haystack: &str, needle: &str) -> bool {
    haystack.contains(needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_metric_kaggle_names() {
        let cases = [
            (
                "Submissions are evaluated on area under the ROC curve between the predicted probability and the observed target.",
                Some(Metric::RocAuc),
            ),
            (
                "Submissions are scored on the Root Mean Squared Logarithmic Error.",
                Some(Metric::Rmsle),
            ),
            (
                "evaluated on Root-Mean-Squared-Error (RMSE)",
                Some(Metric::Rmse),
            ),
            (
                "The evaluation metric is the macro F1 score.",
                Some(Metric::MacroF1),
            ),
            (
                "Your score is the percentage of passengers you correctly predict. This is known as accuracy.",
                Some(Metric::Accuracy),
            ),
            (
                "Submissions are evaluated using the multi-class logarithmic loss.",
                Some(Metric::LogLoss),
            ),
            (
                "Mean Absolute Error (MAE) between predicted and actual",
                Some(Metric::Mae),
            ),
            (
                "Submissions are scored based on the quadratic weighted kappa, which measures the agreement between two ratings.",
                Some(Metric::QuadraticWeightedKappa),
            ),
            (
                "Submissions are scored using MCRMSE, mean columnwise root mean squared error:",
                Some(Metric::Mcrmse),
            ),
            (
                "scored on the mean column-wise root mean squared error",
                Some(Metric::Mcrmse),
            ),
            (
                "Submissions are now evaluated on the mean column-wise ROC AUC. In other words, the score is the average of the individual AUCs of each predicted column.",
                Some(Metric::MeanColumnRocAuc),
            ),
            (
                "Area Under Receiver Operating Characteristic Curve",
                Some(Metric::RocAuc),
            ),
            (
                "Submissions are evaluated on the R2 score (coefficient of determination).",
                Some(Metric::R2),
            ),
            (
                "The metric is the coefficient of determination.",
                Some(Metric::R2),
            ),
            (
                "Submissions are evaluated on SMAPE between forecasts and actual values.",
                Some(Metric::Smape),
            ),
            (
                "scored by the symmetric mean absolute percentage error",
                Some(Metric::Smape),
            ),
            (
                "Submissions are evaluated on the Pearson correlation coefficient between the predicted and the actual values.",
                Some(Metric::Pearson),
            ),
            (
                "Submissions are evaluated according to the Mean Average Precision @ 3 (MAP@3):",
                Some(Metric::MapAtK { k: 3 }),
            ),
            ("scored by MAP@12", Some(Metric::MapAtK { k: 12 })),
            ("evaluated on map@k", Some(Metric::MapAtK { k: 0 })),
            ("the mean average precision", Some(Metric::MapAtK { k: 0 })),
            ("a bitmap@2 image", None),
            ("Our maestro maps data.", None),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(metric_from_text(text), expected, "{text}");
        }
    }
}
