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

/// How the sample submission's prediction columns relate to the training table: which
/// training columns are the targets and what each submission column holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SubmissionShape {
    /// One column: a label, a value, or the positive class's probability of `target`.
    Single {
        /// The training column predicted.
        target: String,
    },
    /// One probability column per class of `target`; each row's probabilities sum to 1.
    ClassProbabilities {
        /// The training column whose classes the columns name.
        target: String,
        /// The class each submission prediction column holds, in the submission's order.
        classes: Vec<String>,
    },
    /// Several numeric training columns, each predicted as a value in its own column.
    MultiTarget {
        /// The training columns, in the submission's order (named as in the submission).
        targets: Vec<String>,
    },
    /// Several 0/1 training columns, each predicted as the probability of 1 (or as 0/1 for a
    /// label metric).
    MultiLabel {
        /// The training columns, in the submission's order (named as in the submission).
        targets: Vec<String>,
    },
    /// One column of ordered whole-number labels, scored by quadratic weighted kappa: a
    /// prediction near the truth is worth more than one far from it.
    Ordinal {
        /// The training column predicted.
        target: String,
    },
}

impl SubmissionShape {
    /// The training columns the models fit, in the submission's order.
    pub fn train_targets(&self) -> Vec<&str> {
        match self {
            Self::Single { target }
            | Self::ClassProbabilities { target, .. }
            | Self::Ordinal { target } => vec![target.as_str()],
            Self::MultiTarget { targets } | Self::MultiLabel { targets } => {
                targets.iter().map(String::as_str).collect()
            }
        }
    }

    /// The shape's name as the configuration and the prompt spell it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Single { .. } => "single",
            Self::ClassProbabilities { .. } => "class-probabilities",
            Self::MultiTarget { .. } => "multi-target",
            Self::MultiLabel { .. } => "multi-label",
            Self::Ordinal { .. } => "ordinal",
        }
    }

    /// Whether the submission has several prediction columns a model must each fit.
    pub fn is_multi_column(&self) -> bool {
        !matches!(self, Self::Single { .. } | Self::Ordinal { .. })
    }
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
    /// Quadratic weighted kappa between ordered labels: rewards predictions near the truth.
    QuadraticWeightedKappa,
    /// The mean over the target columns of each column's RMSE.
    Mcrmse,
    /// The mean over the label columns of each column's ROC AUC.
    MeanColumnRocAuc,
    /// The coefficient of determination, R².
    R2,
    /// Symmetric mean absolute percentage error, in percent.
    Smape,
    /// Pearson's correlation between predictions and truth.
    Pearson,
    /// Mean average precision at `k`: up to `k` labels per row, best first, space-separated;
    /// a row scores 1/rank of its true label among them (0 when absent).
    MapAtK {
        /// How many labels a row may list.
        k: u32,
    },
}

impl Metric {
    /// Whether a larger value is a better score.
    pub fn higher_is_better(self) -> bool {
        !matches!(
            self,
            Self::LogLoss | Self::Rmse | Self::Rmsle | Self::Mae | Self::Mcrmse | Self::Smape
        )
    }

    /// Whether the metric scores class predictions (labels or probabilities).
    pub fn is_classification(self) -> bool {
        matches!(
            self,
            Self::Accuracy
                | Self::RocAuc
                | Self::LogLoss
                | Self::F1
                | Self::MacroF1
                | Self::QuadraticWeightedKappa
                | Self::MeanColumnRocAuc
                | Self::MapAtK { .. }
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
    /// The first few data rows, each cell cut short, so a reader sees the table as it is.
    #[serde(default)]
    pub head: Vec<Vec<String>>,
}

/// A file of the competition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFile {
    /// Path relative to the competition folder.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// A kind of data file the baseline cannot read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MediaKind {
    /// Sound recordings (`.wav`, `.mp3`, `.flac`, ...).
    Audio,
    /// Moving pictures (`.mp4`, `.avi`, `.mov`, ...).
    Video,
}

/// Files of a kind the baseline cannot read, as found among the competition's files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaFiles {
    /// What they are.
    pub kind: MediaKind,
    /// How many there are.
    pub count: usize,
    /// A few of their paths.
    pub examples: Vec<String>,
}

impl std::fmt::Display for MediaFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
        };
        write!(
            f,
            "{} {kind} files (e.g. {})",
            self.count,
            crate::text::quote_list(self.examples.iter().map(String::as_str), 3)
        )
    }
}

/// Where one role's images are and how a row names its file: the file of a row whose `column`
/// holds `v` is `folder/v` + `suffix`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageFolder {
    /// The folder, relative to the competition folder (`""` for the folder itself).
    pub folder: String,
    /// The column whose values name the files (the id column for the rows to predict, unless
    /// a test table has the training rows' file column).
    pub column: String,
    /// What follows a value to make the file name: `""` when the values are file names, else
    /// the extension with its dot (`.png`).
    pub suffix: String,
    /// Images in the folder.
    pub count: usize,
}

/// The images a competition's rows name, one folder per role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSet {
    /// The training rows' images.
    pub train: ImageFolder,
    /// The images of the rows to predict.
    pub test: ImageFolder,
    /// The training images' extension, lowercase (`png`).
    pub extension: String,
    /// Width and height of a few training images.
    pub sizes: Vec<[u32; 2]>,
}

impl std::fmt::Display for ImageSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sizes: Vec<String> = self.sizes.iter().map(|[w, h]| format!("{w}x{h}")).collect();
        let rule = |role: &ImageFolder| {
            format!(
                "{}/<{}>{}",
                if role.folder.is_empty() {
                    "."
                } else {
                    &role.folder
                },
                role.column,
                role.suffix
            )
        };
        write!(
            f,
            "{} training images {} and {} to predict {} ({}; sizes {})",
            self.train.count,
            rule(&self.train),
            self.test.count,
            rule(&self.test),
            self.extension,
            if sizes.is_empty() {
                "unknown".to_owned()
            } else {
                sizes.join(", ")
            }
        )
    }
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
    /// The table to predict: without a test table (an image competition), the sample
    /// submission's id column, which names the rows to predict.
    pub test: TableProfile,
    pub sample_submission: TableProfile,
    /// The id column shared by test and submission.
    pub id_column: String,
    /// The submission's prediction columns, in its order.
    pub target_columns: Vec<String>,
    /// What the prediction columns hold and which training columns they come from.
    pub shape: SubmissionShape,
    /// Why the analysis read the submission as `shape`, in words for the logs and the prompt.
    pub shape_reason: String,
    /// The kind of task, per target (each of several targets is a regression, each of several
    /// labels binary).
    pub task: TaskKind,
    /// Labels or probabilities.
    pub prediction: PredictionKind,
    /// The metric, when the description or metadata name one.
    pub metric: Option<Metric>,
    /// The class labels seen in training, for classification, in sorted order (`0`, `1` for
    /// several labels).
    pub classes: Vec<String>,
    /// The start of the competition's description, if it has one.
    pub description: Option<String>,
    /// Audio or video files among the data, which the baseline cannot read (an LLM's code
    /// may still use them).
    #[serde(default)]
    pub media: Option<MediaFiles>,
    /// The image files the rows name, for an image competition.
    #[serde(default)]
    pub images: Option<ImageSet>,
    /// The other tables and every table's keys: how side tables join the training rows.
    #[serde(default)]
    pub tables: Tables,
}

impl CompetitionAnalysis {
    /// Whether the competition has a table of rows to predict; without one, `test` is the
    /// sample submission's id column.
    pub fn has_test_table(&self) -> bool {
        self.test.path != self.sample_submission.path
    }

    /// The metric the competition is scored by, or without a named one the one that suits its
    /// shape: RMSE for values (mean column-wise for several), log loss for probabilities of
    /// several columns (a proper score, where accuracy would ignore how sure each one is),
    /// kappa for ordered labels, else accuracy.
    pub fn scored_metric(&self) -> Metric {
        self.metric.unwrap_or(match (&self.shape, self.task) {
            (SubmissionShape::MultiTarget { .. }, _) => Metric::Mcrmse,
            (_, TaskKind::Regression) => Metric::Rmse,
            (
                SubmissionShape::MultiLabel { .. } | SubmissionShape::ClassProbabilities { .. },
                _,
            ) => Metric::LogLoss,
            (SubmissionShape::Ordinal { .. }, _) => Metric::QuadraticWeightedKappa,
            _ => Metric::Accuracy,
        })
    }
}

/// How a side table's rows match the training table's rows on a shared key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkKind {
    /// The key is unique on both sides: at most one side row per training row and back.
    OneToOne,
    /// The key is unique in the side table but repeats in training (a lookup, such as a
    /// table of stores): still at most one side row per training row.
    ManyToOne,
    /// The key repeats in the side table: several side rows per training row, which a model
    /// takes as aggregates.
    OneToMany,
}

impl LinkKind {
    /// The kind as the logs, the prompt and the baseline's configuration spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::OneToOne => "one-to-one",
            Self::ManyToOne => "many-to-one",
            Self::OneToMany => "one-to-many",
        }
    }

    /// Whether each training row matches at most one side row, so the side columns join
    /// onto it as they are.
    pub fn is_lookup(self) -> bool {
        matches!(self, Self::OneToOne | Self::ManyToOne)
    }
}

/// A side table's key shared with the training table, and how the rows match on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableLink {
    /// The column both tables have.
    pub key: String,
    /// How the rows match.
    pub kind: LinkKind,
    /// Whether the key is the competition's row id (the test table's and submission's id).
    pub row_id: bool,
    /// Share of training rows whose key the side table has, 0 to 1.
    pub train_matched: f64,
    /// Share of test rows whose key the side table has, 0 to 1 (0 when test lacks the key).
    pub test_matched: f64,
}

/// A table of the competition other than train, test and sample submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SideTable {
    /// Its profile.
    pub table: TableProfile,
    /// Its id-like columns (by name and type), unique or not.
    pub keys: Vec<String>,
    /// How it joins the training table, if it shares an id-like column with it.
    pub link: Option<TableLink>,
}

/// The competition's tables beyond the three the task is read from, and every table's keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tables {
    /// The id-like columns of the training table.
    pub train_keys: Vec<String>,
    /// The id-like columns of the test table.
    pub test_keys: Vec<String>,
    /// Every other table, in path order.
    pub side: Vec<SideTable>,
    /// Tables converted to CSV by the host before the analysis read them (`train.xlsx` as
    /// `train.csv`), as (original, converted) paths.
    #[serde(default)]
    pub converted: Vec<(String, String)>,
}
