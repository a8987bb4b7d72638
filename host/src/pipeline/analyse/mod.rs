//! Analysis: what a competition's files say about the task, before any code is written.
//!
//! It finds the train, test and sample-submission tables (also in sub-folders and under other
//! common names), profiles their columns, infers the id and target columns from the sample
//! submission, the submission's shape (which training columns its prediction columns come from
//! and what they hold), the task from the target, labels versus probabilities from the sample's
//! values, and the metric from the description. The result, [`CompetitionAnalysis`], goes into the
//! job's logs, the baseline generator's choices and the LLM prompt.

pub mod convert;
mod images;
mod metric;
pub(crate) mod profile;
mod shape;
pub(crate) mod tables;
mod types;

use std::path::{Path, PathBuf};

pub use types::{
    ColumnProfile, ColumnType, CompetitionAnalysis, DataFile, ImageFolder, ImageSet, LinkKind,
    MediaFiles, MediaKind, Metric, PredictionKind, SideTable, SubmissionShape, TableLink,
    TableProfile, Tables, TaskKind,
};

/// Most distinct target values a classification task may have.
pub(crate) const MAX_CLASSES: usize = 200;
/// How deep below the competition folder files are looked for.
const MAX_DEPTH: usize = 3;
/// Characters of the description kept for the prompt.
const DESCRIPTION_CHARS: usize = 4_000;

/// Why a competition could not be analysed.
#[derive(Debug, thiserror::Error)]
pub enum AnalyseError {
    /// A required file is not there.
    #[error("no {what} found in {dir}: expected a file such as {expected}")]
    Missing {
        /// What was looked for.
        what: &'static str,
        /// Where.
        dir: PathBuf,
        /// Example names.
        expected: &'static str,
    },
    /// A CSV file could not be read.
    #[error("cannot read {file}: {source}")]
    Csv {
        /// The file, relative to the competition folder.
        file: String,
        /// The parser's error.
        #[source]
        source: csv::Error,
    },
    /// The files do not fit together.
    #[error("{0}")]
    Invalid(String),
    /// The data needs more memory than the WASI guest can address, and the job may not run
    /// on Docker.
    #[error("{sizes}: {fix}")]
    TooLargeForGuest {
        /// The sizes: rows, columns, bytes on disk, the estimate and the guest's limit.
        sizes: String,
        /// What to change.
        fix: String,
    },
    /// A converted table could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The folder could not be listed.
    #[error("cannot list {dir}: {source}")]
    Io {
        /// The folder.
        dir: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl AnalyseError {
    fn csv(file: &str, source: csv::Error) -> Self {
        Self::Csv {
            file: file.to_owned(),
            source,
        }
    }
}

/// What the competition's page says, when known (from the Kaggle API or `description.md`).
#[derive(Debug, Clone, Default)]
pub struct CompetitionText {
    /// The overview / description text.
    pub description: Option<String>,
    /// The metric's name from the metadata, if the API gave one.
    pub evaluation_metric: Option<String>,
}

/// Analyses the competition whose files are in `dir`.
///
/// # Errors
/// When the train, test or sample-submission table is missing or they do not fit together.
pub fn analyse(
    dir: &Path,
    slug: &str,
    text: &CompetitionText,
) -> Result<CompetitionAnalysis, AnalyseError> {
    let files = list_files(dir)?;
    let media = media_files(&files);
    let csvs: Vec<&DataFile> = files
        .iter()
        .filter(|f| f.path.to_lowercase().ends_with(".csv"))
        .collect();
    for (role, names) in [
        ("training table", &["train", "training"][..]),
        ("test table", &["test", "testing"][..]),
        (
            "sample submission",
            &["sample_submission", "submission"][..],
        ),
    ] {
        if pick(&csvs, names).is_none()
            && let Some(message) = convert::unreadable_table(&files, names, role)
        {
            return Err(AnalyseError::Invalid(message));
        }
    }
    let sample_path = pick(
        &csvs,
        &[
            "sample_submission",
            "samplesubmission",
            "sample-submission",
            "submission",
        ],
    )
    .ok_or_else(|| AnalyseError::Missing {
        what: "sample submission",
        dir: dir.to_path_buf(),
        expected: "sample_submission.csv",
    })?;
    let has_images = !images::image_files(&files).is_empty();
    let train_path = pick(&csvs, &["train", "training"])
        // Image competitions often call the table of ids and labels just that.
        .or_else(|| has_images.then(|| pick(&csvs, &["labels"])).flatten())
        .ok_or_else(|| {
            if has_images {
                images::no_labels_table(&files)
            } else {
                AnalyseError::Missing {
                    what: "training table",
                    dir: dir.to_path_buf(),
                    expected: "train.csv",
                }
            }
        })?;
    let test_path = pick(&csvs, &["test", "testing"]);
    if test_path.is_none() && !has_images {
        return Err(no_test_table(dir, &sample_path, media.as_ref()));
    }

    let sample = profile::profile_table(dir, &sample_path)?;
    let train = profile::profile_table(dir, &train_path)?;
    let test_table = match &test_path {
        Some(path) => Some(profile::profile_table(dir, path)?),
        None => None,
    };
    let has = |table: &TableProfile, name: &str| table.columns.iter().any(|c| c.name == name);

    let id_column = sample
        .columns
        .first()
        .map(|c| c.name.clone())
        .ok_or_else(|| AnalyseError::Invalid(format!("{sample_path} has no columns")))?;
    if let Some(test) = &test_table
        && !has(test, &id_column)
    {
        return Err(AnalyseError::Invalid(format!(
            "the sample submission's first column {id_column:?} is not a column of {}",
            test.path
        )));
    }
    let image_set = images::find(
        dir,
        &files,
        &train,
        test_table.as_ref(),
        &sample,
        &id_column,
    )?;
    let test = match test_table {
        Some(test) => test,
        None if image_set.is_some() => ids_to_predict(&sample),
        None => return Err(no_test_table(dir, &sample_path, media.as_ref())),
    };
    let target_columns: Vec<String> = sample
        .columns
        .iter()
        .skip(1)
        .map(|c| c.name.clone())
        .collect();
    if target_columns.is_empty() {
        return Err(AnalyseError::Invalid(format!(
            "{sample_path} has only the id column; it needs at least one prediction column"
        )));
    }
    let metric = text
        .evaluation_metric
        .as_deref()
        .and_then(metric::metric_from_text)
        .or_else(|| {
            text.description
                .as_deref()
                .and_then(metric::metric_from_text)
        })
        .map(|m| match m {
            // MAP@K without its K: as many labels as the sample lists in a row.
            Metric::MapAtK { k: 0 } => Metric::MapAtK {
                k: listed_labels(&sample),
            },
            other => other,
        });
    let tables = shape::Tables {
        dir,
        train: &train,
        test: &test,
        sample: &sample,
        id_column: &id_column,
    };
    let found = shape::infer(&tables, &target_columns, metric)?;
    // The role tables; an image competition may have no test table.
    let roles: Vec<&str> = [
        Some(train_path.as_str()),
        test_path.as_deref(),
        Some(sample_path.as_str()),
    ]
    .into_iter()
    .flatten()
    .collect();
    let side = tables::find(dir, &files, &roles, &train, &test, &id_column);
    let description = text
        .description
        .as_ref()
        .map(|d| d.chars().take(DESCRIPTION_CHARS).collect());
    Ok(CompetitionAnalysis {
        slug: slug.to_owned(),
        files,
        train,
        test,
        sample_submission: sample,
        id_column,
        target_columns,
        shape: found.shape,
        shape_reason: found.reason,
        task: found.task,
        prediction: found.prediction,
        metric,
        classes: found.classes,
        description,
        media,
        images: image_set,
        tables: side,
    })
}

/// Why a competition without a test table cannot be analysed.
fn no_test_table(dir: &Path, sample_path: &str, media: Option<&MediaFiles>) -> AnalyseError {
    match media {
        Some(found) => AnalyseError::Invalid(format!(
            "no test table found in {}, and the data is {found}: the rows to predict are media \
             files, which the built-in baseline cannot read; an LLM generator \
             (--generator openai or anthropic) needs a test table too",
            dir.display()
        )),
        None => AnalyseError::Invalid(format!(
            "no test table found in {}: expected a file such as test.csv; {sample_path} names \
             the rows to predict, but without a test table (or images named by their ids) they \
             have no features to predict them from",
            dir.display()
        )),
    }
}

/// The rows to predict of a competition without a test table: the sample submission's id
/// column, the one column such a table would share with it.
fn ids_to_predict(sample: &TableProfile) -> TableProfile {
    TableProfile {
        path: sample.path.clone(),
        rows: sample.rows,
        columns: sample.columns.iter().take(1).cloned().collect(),
        head: sample
            .head
            .iter()
            .map(|row| row.iter().take(1).cloned().collect())
            .collect(),
    }
}

/// Extensions of the media the baseline cannot read, by kind.
const MEDIA_EXTENSIONS: &[(MediaKind, &[&str])] = &[
    (
        MediaKind::Audio,
        &["wav", "mp3", "flac", "ogg", "aac", "m4a", "aiff", "opus"],
    ),
    (
        MediaKind::Video,
        &["mp4", "avi", "mov", "mkv", "webm", "mpg", "mpeg", "wmv"],
    ),
];

/// The audio or video files among `files` (the more numerous kind), if any.
fn media_files(files: &[DataFile]) -> Option<MediaFiles> {
    MEDIA_EXTENSIONS
        .iter()
        .map(|(kind, extensions)| {
            let found: Vec<&DataFile> = files
                .iter()
                .filter(|f| {
                    Path::new(&f.path).extension().is_some_and(|e| {
                        extensions.contains(&e.to_string_lossy().to_lowercase().as_str())
                    })
                })
                .collect();
            MediaFiles {
                kind: *kind,
                count: found.len(),
                examples: found.iter().take(3).map(|f| f.path.clone()).collect(),
            }
        })
        .filter(|m| m.count > 0)
        .max_by_key(|m| m.count)
}

/// How many space-separated labels the sample submission's first prediction lists.
fn listed_labels(sample: &TableProfile) -> u32 {
    let listed = sample
        .columns
        .get(1)
        .and_then(|c| c.examples.first())
        .map_or(1, |v| v.split_whitespace().count());
    u32::try_from(listed.clamp(1, 100)).unwrap_or(1)
}

/// The best match for a table among `names` (stems, lowercase): exact stem first, then a stem
/// that starts with the name, preferring shallower paths.
fn pick(csvs: &[&DataFile], names: &[&str]) -> Option<String> {
    let stem = |path: &str| {
        Path::new(path)
            .file_stem()
            .map(|s| s.to_string_lossy().to_lowercase())
            .unwrap_or_default()
    };
    let depth = |path: &str| path.matches('/').count();
    for name in names {
        let mut exact: Vec<&&DataFile> = csvs.iter().filter(|f| stem(&f.path) == *name).collect();
        exact.sort_by_key(|f| depth(&f.path));
        if let Some(found) = exact.first() {
            return Some(found.path.clone());
        }
    }
    for name in names {
        let mut loose: Vec<&&DataFile> = csvs
            .iter()
            .filter(|f| {
                let s = stem(&f.path);
                s.starts_with(name) || s.ends_with(name)
            })
            .collect();
        loose.sort_by_key(|f| (depth(&f.path), f.path.len()));
        if let Some(found) = loose.first() {
            return Some(found.path.clone());
        }
    }
    None
}

/// Every regular file under `dir` (not following symlinks), relative, sorted.
pub(crate) fn list_files(dir: &Path) -> Result<Vec<DataFile>, AnalyseError> {
    let mut files = Vec::new();
    let mut pending = vec![(dir.to_path_buf(), 0usize)];
    while let Some((folder, depth)) = pending.pop() {
        let entries = std::fs::read_dir(&folder).map_err(|source| AnalyseError::Io {
            dir: folder.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            if kind.is_dir() && depth < MAX_DEPTH {
                pending.push((path, depth + 1));
            } else if kind.is_file() {
                let relative = path
                    .strip_prefix(dir)
                    .map(|p| p.to_string_lossy().replace('\\', "/"))
                    .unwrap_or(name);
                let bytes = entry.metadata().map(|m| m.len()).unwrap_or(0);
                files.push(DataFile {
                    path: relative,
                    bytes,
                });
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn competition(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (path, content) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, content).expect("write");
        }
        dir
    }

    fn text(description: &str) -> CompetitionText {
        CompetitionText {
            description: Some(description.to_owned()),
            evaluation_metric: None,
        }
    }

    #[test]
    fn binary_with_probabilities_from_the_metric() {
        let dir = competition(&[
            (
                "train.csv",
                "PassengerId,Age,Sex,Survived\n1,22,male,0\n2,38,female,1\n3,,female,1\n",
            ),
            ("test.csv", "PassengerId,Age,Sex\n4,30,male\n"),
            ("sample_submission.csv", "PassengerId,Survived\n4,0\n"),
        ]);
        let a = analyse(
            dir.path(),
            "titanic",
            &text("Scored on area under the ROC curve."),
        )
        .expect("analysis");
        assert_eq!(a.id_column, "PassengerId");
        assert_eq!(
            a.shape,
            SubmissionShape::Single {
                target: "Survived".into()
            }
        );
        assert_eq!(a.task, TaskKind::Binary);
        assert_eq!(a.metric, Some(Metric::RocAuc));
        assert_eq!(a.prediction, PredictionKind::Probability);
        assert_eq!(a.classes, ["0", "1"]);
    }

    #[test]
    fn multiclass_labels_in_a_sub_folder_under_other_names() {
        let dir = competition(&[
            (
                "data/training.csv",
                "id,x,species\n1,1.5,a\n2,2.5,b\n3,3.5,c\n",
            ),
            ("data/testing.csv", "id,x\n9,1.0\n"),
            ("data/sampleSubmission.csv", "id,species\n9,a\n"),
        ]);
        let a = analyse(dir.path(), "s", &CompetitionText::default()).expect("analysis");
        assert_eq!(a.train.path, "data/training.csv");
        assert_eq!(a.task, TaskKind::Multiclass);
        assert_eq!(a.prediction, PredictionKind::Label);
        assert_eq!(a.metric, None);
    }

    #[test]
    fn regression_with_rmsle() {
        let dir = competition(&[
            ("train.csv", "id,x,price\n1,1,10.5\n2,2,20.25\n3,3,30.75\n"),
            ("test.csv", "id,x\n4,4\n"),
            ("sample_submission.csv", "id,price\n4,0\n"),
        ]);
        let a = analyse(
            dir.path(),
            "r",
            &text("Root Mean Squared Logarithmic Error"),
        )
        .expect("analysis");
        assert_eq!(a.task, TaskKind::Regression);
        assert_eq!(a.metric, Some(Metric::Rmsle));
        assert_eq!(a.prediction, PredictionKind::Label);
    }

    #[test]
    fn one_probability_column_per_class() {
        let dir = competition(&[
            (
                "train.csv",
                "id,f,target\n1,1,Class_1\n2,2,Class_2\n3,3,Class_3\n",
            ),
            ("test.csv", "id,f\n4,4\n"),
            (
                "sample_submission.csv",
                "id,Class_1,Class_2,Class_3\n4,1,0,0\n",
            ),
        ]);
        let a =
            analyse(dir.path(), "otto", &text("multi-class logarithmic loss")).expect("analysis");
        assert_eq!(a.target_columns, ["Class_1", "Class_2", "Class_3"]);
        assert_eq!(
            a.shape,
            SubmissionShape::ClassProbabilities {
                target: "target".into(),
                classes: vec!["Class_1".into(), "Class_2".into(), "Class_3".into()],
            }
        );
        assert_eq!(a.task, TaskKind::Multiclass);
        assert_eq!(a.prediction, PredictionKind::Probability);
    }

    #[test]
    fn a_missing_sample_submission_is_a_clear_error() {
        let dir = competition(&[("train.csv", "id,y\n1,0\n"), ("test.csv", "id\n2\n")]);
        let error = analyse(dir.path(), "x", &CompetitionText::default()).expect_err("no sample");
        assert!(
            error.to_string().contains("sample_submission.csv"),
            "{error}"
        );
    }

    #[test]
    fn a_sample_without_a_test_table_is_a_clear_error() {
        let dir = competition(&[
            ("train.csv", "id,x,y\n1,1,0\n"),
            ("sample_submission.csv", "id,y\n2,0\n"),
        ]);
        let error = analyse(dir.path(), "x", &CompetitionText::default())
            .expect_err("no test table")
            .to_string();
        assert!(
            error.contains("expected a file such as test.csv"),
            "{error}"
        );
        assert!(
            error.contains("sample_submission.csv names the rows to predict"),
            "{error}"
        );
    }

    #[test]
    fn an_id_column_missing_from_test_is_a_clear_error() {
        let dir = competition(&[
            ("train.csv", "id,y\n1,0\n"),
            ("test.csv", "key\n2\n"),
            ("sample_submission.csv", "id,y\n2,0\n"),
        ]);
        let error = analyse(dir.path(), "x", &CompetitionText::default()).expect_err("bad id");
        assert!(error.to_string().contains("\"id\""), "{error}");
    }

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    #[test]
    fn class_columns_named_after_numeric_classes_in_another_order() {
        let dir = competition(&[
            ("train.csv", "id,f,kind\n1,1,1\n2,2,2\n3,3,3\n4,3,2\n"),
            ("test.csv", "id,f\n5,4\n"),
            (
                "sample_submission.csv",
                "id,kind_3,kind_1,kind_2\n5,0.2,0.3,0.5\n",
            ),
        ]);
        let a = analyse(dir.path(), "k", &CompetitionText::default()).expect("analysis");
        assert_eq!(
            a.shape,
            SubmissionShape::ClassProbabilities {
                target: "kind".into(),
                classes: strings(&["3", "1", "2"]),
            }
        );
        assert_eq!(a.prediction, PredictionKind::Probability);
        assert!(
            a.shape_reason.contains("one class of its column \"kind\""),
            "{}",
            a.shape_reason
        );
    }

    #[test]
    fn several_numeric_targets_are_a_multi_target_regression() {
        let dir = competition(&[
            (
                "train.csv",
                "id,x,t1,t2,t3\n1,1,0.5,10,3.25\n2,2,1.5,20,4.5\n3,3,2.5,31,5.75\n",
            ),
            ("test.csv", "id,x\n4,4\n"),
            ("sample_submission.csv", "id,t1,t2,t3\n4,0,0,0\n"),
        ]);
        let a = analyse(
            dir.path(),
            "m",
            &text("Submissions are scored using MCRMSE, mean columnwise root mean squared error"),
        )
        .expect("analysis");
        assert_eq!(
            a.shape,
            SubmissionShape::MultiTarget {
                targets: strings(&["t1", "t2", "t3"])
            }
        );
        assert_eq!(a.task, TaskKind::Regression);
        assert_eq!(a.prediction, PredictionKind::Label);
        assert_eq!(a.metric, Some(Metric::Mcrmse));
        assert!(a.classes.is_empty());
        assert!(
            a.shape_reason.contains("several targets"),
            "{}",
            a.shape_reason
        );
    }

    #[test]
    fn several_zero_one_targets_are_a_multi_label_of_probabilities() {
        let dir = competition(&[
            (
                "train.csv",
                "id,x,toxic,insult,threat\n1,1,0,1,0\n2,2,1,0,0\n3,3,1,1,1\n",
            ),
            ("test.csv", "id,x\n4,4\n"),
            (
                "sample_submission.csv",
                "id,toxic,insult,threat\n4,0.5,0.5,0.5\n",
            ),
        ]);
        let a = analyse(
            dir.path(),
            "toxic",
            &text("Submissions are evaluated on the mean column-wise ROC AUC."),
        )
        .expect("analysis");
        assert_eq!(
            a.shape,
            SubmissionShape::MultiLabel {
                targets: strings(&["toxic", "insult", "threat"])
            }
        );
        assert_eq!(a.task, TaskKind::Binary);
        assert_eq!(a.prediction, PredictionKind::Probability);
        assert_eq!(a.metric, Some(Metric::MeanColumnRocAuc));
        assert_eq!(a.classes, ["0", "1"]);
    }

    #[test]
    fn whole_number_labels_scored_by_kappa_are_ordinal() {
        let dir = competition(&[
            (
                "train.csv",
                "id,x,rating\n1,1,0\n2,2,1\n3,3,2\n4,4,3\n5,5,1\n",
            ),
            ("test.csv", "id,x\n6,4\n"),
            ("sample_submission.csv", "id,rating\n6,0\n"),
        ]);
        let a = analyse(
            dir.path(),
            "petfinder",
            &text("Submissions are scored based on the quadratic weighted kappa"),
        )
        .expect("analysis");
        assert_eq!(
            a.shape,
            SubmissionShape::Ordinal {
                target: "rating".into()
            }
        );
        assert_eq!(a.task, TaskKind::Multiclass);
        assert_eq!(a.prediction, PredictionKind::Label);
        assert_eq!(a.classes, ["0", "1", "2", "3"]);
    }

    #[test]
    fn a_single_column_named_otherwise_is_the_one_column_test_lacks() {
        let dir = competition(&[
            ("train.csv", "id,x,price\n1,1,10.5\n2,2,20.25\n"),
            ("test.csv", "id,x\n4,4\n"),
            ("sample_submission.csv", "id,prediction\n4,0\n"),
        ]);
        let a = analyse(dir.path(), "r", &CompetitionText::default()).expect("analysis");
        assert_eq!(
            a.shape,
            SubmissionShape::Single {
                target: "price".into()
            }
        );
        assert!(a.shape_reason.contains("\"price\""), "{}", a.shape_reason);
    }

    #[test]
    fn map_at_k_lists_labels_and_takes_k_from_the_sample_when_unstated() {
        let dir = competition(&[
            ("train.csv", "id,x,place\n1,1,a\n2,2,b\n3,3,c\n4,4,d\n"),
            ("test.csv", "id,x\n6,4\n"),
            ("sample_submission.csv", "id,place\n6,a b\n"),
        ]);
        let a = analyse(dir.path(), "p", &text("scored by MAP@K")).expect("analysis");
        assert_eq!(a.metric, Some(Metric::MapAtK { k: 2 }));
        assert_eq!(a.prediction, PredictionKind::Label);
        assert_eq!(a.task, TaskKind::Multiclass);
        let a = analyse(dir.path(), "p", &text("scored by MAP@3")).expect("analysis");
        assert_eq!(a.metric, Some(Metric::MapAtK { k: 3 }));
    }

    #[test]
    fn audio_files_are_named_and_without_a_test_table_refused_with_them() {
        let dir = competition(&[
            ("train.csv", "clip,label\na.wav,dog\nb.wav,cat\n"),
            ("test.csv", "clip\nc.wav\n"),
            ("sample_submission.csv", "clip,label\nc.wav,dog\n"),
            ("audio/a.wav", "RIFF"),
            ("audio/b.wav", "RIFF"),
            ("audio/c.WAV", "RIFF"),
            ("clips/intro.mp4", "...."),
        ]);
        let a = analyse(dir.path(), "birds", &CompetitionText::default()).expect("analysis");
        let media = a.media.expect("media found");
        assert_eq!((media.kind, media.count), (MediaKind::Audio, 3));
        assert_eq!(
            media.to_string(),
            "3 audio files (e.g. [\"audio/a.wav\", \"audio/b.wav\", \"audio/c.WAV\"])"
        );
        std::fs::remove_file(dir.path().join("test.csv")).expect("remove");
        let error = analyse(dir.path(), "birds", &CompetitionText::default())
            .expect_err("no test table")
            .to_string();
        assert!(error.contains("3 audio files"), "{error}");
    }

    #[test]
    fn side_tables_are_listed_with_their_keys_and_how_they_join() {
        let dir = competition(&[
            (
                "train.csv",
                "id,store_id,x,y\n1,s1,1.5,0\n2,s2,2.5,1\n3,s1,3.5,1\n4,s3,0.5,0\n",
            ),
            ("test.csv", "id,store_id,x\n5,s2,1.0\n6,s9,2.0\n"),
            ("sample_submission.csv", "id,y\n5,0\n6,0\n"),
            // A lookup: one row per store, stores repeat in training.
            (
                "stores.csv",
                "store_id,size,city\ns1,10,a\ns2,20,b\ns3,30,a\n",
            ),
            // One row per training or test row, by the row id.
            (
                "extra/details.csv",
                "id,colour\n1,red\n2,blue\n3,red\n4,green\n5,red\n6,blue\n",
            ),
            // Several rows per row id.
            ("visits.csv", "id,minutes\n1,3\n1,4\n2,5\n5,6\n5,1\n"),
            // Nothing in common with training.
            ("holidays.csv", "day,name\n2020-01-01,new year\n"),
        ]);
        let a = analyse(dir.path(), "shops", &CompetitionText::default()).expect("analysis");
        assert_eq!(a.tables.train_keys, ["id", "store_id"]);
        assert_eq!(a.tables.test_keys, ["id", "store_id"]);
        type Joined<'a> = (&'a str, Option<(&'a str, LinkKind, bool)>);
        let found: Vec<Joined<'_>> = a
            .tables
            .side
            .iter()
            .map(|t| {
                (
                    t.table.path.as_str(),
                    t.link.as_ref().map(|l| (l.key.as_str(), l.kind, l.row_id)),
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                ("extra/details.csv", Some(("id", LinkKind::OneToOne, true))),
                ("holidays.csv", None),
                ("stores.csv", Some(("store_id", LinkKind::ManyToOne, false))),
                ("visits.csv", Some(("id", LinkKind::OneToMany, true))),
            ]
        );
        let stores = a.tables.side.iter().find(|t| t.table.path == "stores.csv");
        let link = stores.and_then(|t| t.link.clone()).expect("stores link");
        // Every training store is there; one of the two test stores is not.
        assert!((link.train_matched - 1.0).abs() < 1e-12);
        assert!((link.test_matched - 0.5).abs() < 1e-12);
        let visits = a.tables.side.iter().find(|t| t.table.path == "visits.csv");
        let link = visits.and_then(|t| t.link.clone()).expect("visits link");
        assert!((link.train_matched - 0.5).abs() < 1e-12);
        assert_eq!(
            a.tables.side[2].table.columns[1].dtype,
            ColumnType::Integer,
            "side columns are typed"
        );
    }

    #[test]
    fn a_side_table_that_cannot_be_read_is_left_out_not_fatal() {
        let dir = competition(&[
            ("train.csv", "id,x,y\n1,1,0\n2,2,1\n"),
            ("test.csv", "id,x\n3,1\n"),
            ("sample_submission.csv", "id,y\n3,0\n"),
            ("broken.csv", "id,a\n1,2,3,4\n"),
            ("fine.csv", "id,a\n1,2\n"),
        ]);
        let a = analyse(dir.path(), "b", &CompetitionText::default()).expect("analysis");
        let paths: Vec<&str> = a
            .tables
            .side
            .iter()
            .map(|t| t.table.path.as_str())
            .collect();
        assert_eq!(paths, ["fine.csv"]);
    }

    /// Each sample the files do not settle, and the columns its error must name.
    #[test]
    fn a_shape_the_files_do_not_settle_is_an_error_naming_the_columns() {
        let cases: [(&str, &str, &str, &[&str]); 5] = [
            // Two columns test lacks, and the single prediction column is neither.
            (
                "id,x,a,b\n1,1,0,5\n2,2,1,6\n",
                "id,prediction\n4,0\n",
                "\"prediction\"",
                &["\"a\"", "\"b\""],
            ),
            // Some prediction columns are training columns, some are not.
            (
                "id,x,t1,y\n1,1,0.5,a\n2,2,1.5,b\n",
                "id,t1,t2\n4,0,0\n",
                "\"t1\"",
                &["\"t2\""],
            ),
            // Class columns that name no class of the target.
            (
                "id,x,y\n1,1,cat\n2,2,dog\n",
                "id,p1,p2\n4,0.5,0.5\n",
                "\"p1\"",
                &["\"p2\"", "\"y\""],
            ),
            // Columns for only some of the classes: the rest would be silently lost.
            (
                "id,x,y\n1,1,cat\n2,2,dog\n3,3,eel\n",
                "id,cat,dog\n4,0.5,0.5\n",
                "\"cat\"",
                &["\"dog\""],
            ),
            // Several text label columns.
            (
                "id,x,colour,size\n1,1,red,big\n2,2,blue,small\n",
                "id,colour,size\n4,red,big\n",
                "\"colour\"",
                &["text labels"],
            ),
        ];
        for (train, sample, first, rest) in cases {
            let dir = competition(&[
                ("train.csv", train),
                ("test.csv", "id,x\n4,4\n"),
                ("sample_submission.csv", sample),
            ]);
            let error = analyse(dir.path(), "x", &CompetitionText::default())
                .expect_err(sample)
                .to_string();
            for needed in std::iter::once(&first).chain(rest) {
                assert!(error.contains(needed), "{sample}: {needed} not in {error}");
            }
        }
    }

    /// A PNG header of `width` x `height`: all the analysis reads of an image.
    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        bytes.extend_from_slice(&width.to_be_bytes());
        bytes.extend_from_slice(&height.to_be_bytes());
        bytes
    }

    fn with_images(dir: &tempfile::TempDir, paths: &[&str]) {
        for path in paths {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, png(28, 28)).expect("write");
        }
    }

    #[test]
    fn ids_that_are_image_stems_without_a_test_table_are_an_image_competition() {
        let dir = competition(&[
            ("train.csv", "id,label\na1,cat\na2,dog\na3,cat\n"),
            ("sample_submission.csv", "id,label\nb1,cat\nb2,cat\n"),
        ]);
        with_images(
            &dir,
            &[
                "train/a1.png",
                "train/a2.png",
                "train/a3.png",
                "test/b1.png",
                "test/b2.png",
            ],
        );
        let a = analyse(dir.path(), "pets", &CompetitionText::default()).expect("analysis");
        let images = a.images.clone().expect("images found");
        assert_eq!(
            images.train,
            ImageFolder {
                folder: "train".into(),
                column: "id".into(),
                suffix: ".png".into(),
                count: 3
            }
        );
        assert_eq!(
            (images.test.folder.as_str(), images.test.column.as_str()),
            ("test", "id")
        );
        assert_eq!(images.extension, "png");
        assert_eq!(images.sizes, [[28, 28]; 3]);
        // The rows to predict are the sample's ids.
        assert!(!a.has_test_table());
        assert_eq!(a.test.path, "sample_submission.csv");
        assert_eq!(a.test.columns.len(), 1);
        assert_eq!(
            a.shape,
            SubmissionShape::Single {
                target: "label".into()
            }
        );
        assert_eq!(a.task, TaskKind::Binary);
        assert_eq!(
            images.to_string(),
            "3 training images train/<id>.png and 2 to predict test/<id>.png (png; sizes 28x28, \
             28x28, 28x28)"
        );
    }

    #[test]
    fn ids_that_restart_in_each_folder_name_the_folder_of_their_role() {
        let dir = competition(&[
            ("train.csv", "id,label\n0,cat\n1,dog\n2,cat\n"),
            ("sample_submission.csv", "id,label\n0,cat\n1,cat\n"),
        ]);
        with_images(
            &dir,
            &[
                "train/0.png",
                "train/1.png",
                "train/2.png",
                "test/0.png",
                "test/1.png",
            ],
        );
        let a = analyse(dir.path(), "restart", &CompetitionText::default()).expect("analysis");
        let images = a.images.expect("images found");
        assert_eq!(
            (images.train.folder.as_str(), images.test.folder.as_str()),
            ("train", "test")
        );
    }

    #[test]
    fn a_column_of_file_names_and_a_labels_table_name_the_images() {
        let dir = competition(&[
            (
                "labels.csv",
                "id,file,has_cactus\n1,x1.jpg,1\n2,x2.jpg,0\n3,x3.jpg,1\n",
            ),
            (
                "sample_submission.csv",
                "id,has_cactus\ny1.jpg,0.5\ny2.jpg,0.5\n",
            ),
        ]);
        with_images(
            &dir,
            &[
                "data/train_images/x1.jpg",
                "data/train_images/x2.jpg",
                "data/train_images/x3.jpg",
                "data/test_images/y1.jpg",
                "data/test_images/y2.jpg",
            ],
        );
        let a = analyse(dir.path(), "cactus", &CompetitionText::default()).expect("analysis");
        let images = a.images.expect("images found");
        assert_eq!(a.train.path, "labels.csv");
        assert_eq!(
            (images.train.folder.as_str(), images.train.column.as_str()),
            ("data/train_images", "file")
        );
        assert_eq!(images.train.suffix, "");
        assert_eq!(
            (images.test.folder.as_str(), images.test.column.as_str()),
            ("data/test_images", "id")
        );
        assert_eq!(images.extension, "jpg");
    }

    #[test]
    fn image_layouts_the_files_do_not_settle_are_errors_naming_what_was_found() {
        // The same pictures in two folders.
        let dir = competition(&[
            ("train.csv", "id,label\na1,cat\na2,dog\n"),
            ("sample_submission.csv", "id,label\nb1,cat\n"),
        ]);
        with_images(
            &dir,
            &[
                "train/a1.png",
                "train/a2.png",
                "train_copy/a1.png",
                "train_copy/a2.png",
                "test/b1.png",
            ],
        );
        let error = analyse(dir.path(), "x", &CompetitionText::default())
            .expect_err("two folders")
            .to_string();
        for needed in ["\"train\"", "\"train_copy\"", "more than one place"] {
            assert!(error.contains(needed), "{needed} not in {error}");
        }

        // Labels held only by class-named folders.
        let dir = competition(&[
            ("train.csv", "file,species\n1.png,cat\n2.png,dog\n"),
            ("sample_submission.csv", "file,species\n3.png,cat\n"),
        ]);
        with_images(&dir, &["train/cat/1.png", "train/dog/2.png", "test/3.png"]);
        let error = analyse(dir.path(), "x", &CompetitionText::default())
            .expect_err("class folders")
            .to_string();
        for needed in ["one folder per class", "\"train/cat\"", "train.csv"] {
            assert!(error.contains(needed), "{needed} not in {error}");
        }

        // Pictures in class-named folders and no table of labels at all.
        let dir = competition(&[("sample_submission.csv", "file,species\n3.png,cat\n")]);
        with_images(&dir, &["train/cat/1.png", "train/dog/2.png", "test/3.png"]);
        let error = analyse(dir.path(), "x", &CompetitionText::default())
            .expect_err("class folders without a table")
            .to_string();
        for needed in [
            "no table of labels",
            "3 pictures",
            "\"train/cat\"",
            "not supported",
        ] {
            assert!(error.contains(needed), "{needed} not in {error}");
        }

        // Images no column names, and no test table.
        let dir = competition(&[
            ("train.csv", "id,label\n1,cat\n2,dog\n"),
            ("sample_submission.csv", "id,label\n3,cat\n"),
        ]);
        with_images(&dir, &["pictures/p1.png", "pictures/p2.png"]);
        let error = analyse(dir.path(), "x", &CompetitionText::default())
            .expect_err("no mapping")
            .to_string();
        for needed in ["no test table", "2 image files", "pictures/p1.png"] {
            assert!(error.contains(needed), "{needed} not in {error}");
        }

        // Training images found, but the sample's ids name none.
        let dir = competition(&[
            ("train.csv", "id,label\na1,cat\na2,dog\n"),
            ("sample_submission.csv", "id,label\nzz,cat\n"),
        ]);
        with_images(&dir, &["train/a1.png", "train/a2.png", "test/b1.png"]);
        let error = analyse(dir.path(), "x", &CompetitionText::default())
            .expect_err("no test images")
            .to_string();
        for needed in [
            "sample_submission.csv name no image folder",
            "test/<id>.png",
        ] {
            assert!(error.contains(needed), "{needed} not in {error}");
        }
    }

    #[test]
    fn images_beside_a_test_table_they_do_not_serve_leave_a_tabular_competition() {
        let dir = competition(&[
            ("train.csv", "id,x,y\n1,1,0\n2,2,1\n"),
            ("test.csv", "id,x\n3,3\n"),
            ("sample_submission.csv", "id,y\n3,0\n"),
        ]);
        with_images(&dir, &["docs/figure.png"]);
        let a = analyse(dir.path(), "t", &CompetitionText::default()).expect("analysis");
        assert_eq!(a.images, None);
        assert!(a.has_test_table());
    }
}
