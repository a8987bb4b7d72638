//! The typed result of analysing a competition.

use serde::{Deserialize, Serialize};

/// The kind of learning task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskKind {
    /// Two classes.
    Binary,
    /// More than two classes.
    Multiclass,
    /// A continuous target.
    Regression,
}

/// What the submission holds for the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PredictionKind {
    /// The predicted class (or value, for regression).
    Label,
    /// The probability of the positive class (or one column per class).
    Probability,
}

/// The evaluation metric, as far as the description or metadata tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Metric {
    /// Share of correct labels.
    Accuracy,
    /// Area under the ROC curve.
    RocAuc,
    /// Logarithmic loss.
    LogLoss,
    /// Root mean squared error.
    Rmse,
    /// Root mean squared logarithmic error.
    Rmsle,
    /// Mean absolute error.
    Mae,
    /// F1 as Kaggle names it without an average: of the positive class on a binary task (the
    /// baseline picks the decision threshold for it out of fold), macro-F1 on more classes.
    F1,
    /// F1 averaged over classes.
    MacroF1,
}

impl Metric {
    /// Whether the metric scores class predictions (labels or probabilities).
    pub fn is_classification(self) -> bool {
        matches!(
            self,
            Self::Accuracy | Self::RocAuc | Self::LogLoss | Self::F1 | Self::MacroF1
        )
    }
}

/// A column's inferred type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ColumnType {
    /// Whole numbers.
    Integer,
    /// Real numbers.
    Float,
    /// true/false values.
    Boolean,
    /// Few distinct strings.
    Categorical,
    /// Free text (many distinct, long strings).
    Text,
    /// Dates or timestamps.
    Datetime,
}

/// One column's profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnProfile {
    /// The header.
    pub name: String,
    /// The inferred type.
    pub dtype: ColumnType,
    /// Share of empty cells, 0 to 1.
    pub missing_fraction: f64,
    /// Distinct non-empty values seen (capped at the sample).
    pub distinct: u64,
    /// A few example values.
    pub examples: Vec<String>,
}

/// One CSV table's profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableProfile {
    /// Path relative to the competition folder (what the guest sees under `/input`).
    pub path: String,
    /// Data rows.
    pub rows: u64,
    /// The columns in file order.
    pub columns: Vec<ColumnProfile>,
}

/// A file of the competition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFile {
    /// Path relative to the competition folder.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// Everything the analysis found out about a competition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompetitionAnalysis {
    /// The competition's slug.
    pub slug: String,
    /// Every file, relative to the competition folder.
    pub files: Vec<DataFile>,
    /// The training table.
    pub train: TableProfile,
    /// The table to predict.
    pub test: TableProfile,
    pub sample_submission: TableProfile,
    /// The id column shared by test and submission.
    pub id_column: String,
    /// The submission's prediction columns (one, or one per class for probabilities).
    pub target_columns: Vec<String>,
    /// The training column that holds the target.
    pub train_target: String,
    /// The kind of task.
    pub task: TaskKind,
    /// Labels or probabilities.
    pub prediction: PredictionKind,
    /// The metric, when the description or metadata name one.
    pub metric: Option<Metric>,
    /// The class labels seen in training, for classification, in sorted order.
    pub classes: Vec<String>,
    /// The start of the competition's description, if it has one.
    pub description: Option<String>,
}
