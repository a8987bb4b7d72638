//! The host-held holdout: part of the training rows set aside where generated code cannot
//! reach their answers.
//!
//! A candidate first runs in a *holdout view* of the competition: a folder in the same layout
//! whose training table holds only the fit rows, whose test table holds the holdout rows
//! without their targets, and whose sample submission lists those rows' ids. The holdout's
//! answers stay in the host's memory ([`Answers`]) and score what the candidate writes. Side
//! tables keyed by the row id are filtered the way the training table is (see `side`). Every
//! other file of the competition is linked into the view unchanged, unless it carries a target
//! column next to the id: then the answers would leak through it, and the split is refused
//! (the job runs single-shot instead). Which rows a view holds out, one fold of several, is
//! `rows`' choice.
//!
//! For an image competition the holdout rows' pictures move to the test folder under new,
//! meaningless names (`holdout-17.png`, also their ids in the view), so neither a file name
//! nor a folder says what they show; the real test pictures stay out of the view.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

pub use super::pictures::ImageRoles;
use super::pictures::Pictures;
use super::rows::held_out;
pub use super::rows::{MIN_ROWS, Split};

/// How deep below the competition folder other files are linked into the view.
const MAX_DEPTH: usize = 4;

/// The competition's tables and columns the split needs, by name.
#[derive(Debug, Clone)]
pub struct HoldoutSpec {
    /// The training table, relative to the competition folder.
    pub train: String,
    /// The test table, relative to the competition folder.
    pub test: String,
    /// The sample submission, relative to the competition folder.
    pub sample: String,
    /// The id column of the test table and the submission.
    pub id_column: String,
    /// The training columns that hold the answers.
    pub targets: Vec<String>,
    /// How to choose the holdout rows.
    pub split: Split,
    /// Share of the training rows held out when there is one fold, in (0, 1).
    pub fraction: f64,
    /// How many folds the rows are dealt into: each view holds out one, so that together the
    /// views score a candidate on every row. 1 holds out `fraction` of them once.
    pub folds: usize,
    /// The fold this view holds out, below `folds`.
    pub fold: usize,
    /// Seeds every random choice, so a job's split is the same on every attempt and worker.
    pub seed: u64,
    /// Where the rows' pictures are, for an image competition.
    pub images: Option<ImageRoles>,
    /// Side tables keyed by the id column, relative to the competition folder: filtered in
    /// the view the way the training table is (see `side`).
    pub row_tables: Vec<String>,
}

/// The holdout rows' answers, by id, in the order of the view's test table.
#[derive(Debug, Clone, PartialEq)]
pub struct Answers {
    /// The id column's name.
    pub id_column: String,
    /// The answer columns' names, as the training table calls them.
    pub columns: Vec<String>,
    /// Each holdout row's id and answers.
    pub rows: Vec<(String, Vec<String>)>,
}

/// Why no holdout view was made.
#[derive(Debug, thiserror::Error)]
pub enum HoldoutError {
    /// The training rows cannot be split without a holdout that measures nothing; the job
    /// runs single-shot.
    #[error("the training rows cannot be split for a holdout: {0}")]
    Unsafe(String),
    /// The tables do not have the columns the split needs.
    #[error("{0}")]
    Columns(String),
    /// A table could not be read or written.
    #[error("{context}: {source}")]
    Csv {
        /// What was being done.
        context: String,
        /// The parser's error.
        #[source]
        source: csv::Error,
    },
    /// A file could not be read, linked or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> HoldoutError {
    let context = context.into();
    move |source| HoldoutError::Io { context, source }
}

fn csv_err(context: impl Into<String>) -> impl FnOnce(csv::Error) -> HoldoutError {
    let context = context.into();
    move |source| HoldoutError::Csv { context, source }
}

/// A CSV table read whole, as text.
pub(crate) struct Table {
    pub(crate) header: csv::StringRecord,
    pub(crate) rows: Vec<csv::StringRecord>,
}

impl Table {
    pub(crate) fn read(path: &Path) -> Result<Self, HoldoutError> {
        let shown = path.display().to_string();
        let mut reader = csv::ReaderBuilder::new()
            .flexible(false)
            .from_path(path)
            .map_err(csv_err(format!("cannot open {shown}")))?;
        let header = reader
            .headers()
            .map_err(csv_err(format!("cannot read the header of {shown}")))?
            .clone();
        let rows = reader
            .records()
            .collect::<Result<Vec<_>, _>>()
            .map_err(csv_err(format!("cannot read {shown}")))?;
        Ok(Self { header, rows })
    }

    pub(crate) fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }
}

pub(crate) fn write(
    path: &Path,
    header: &csv::StringRecord,
    rows: &[Vec<String>],
) -> Result<(), HoldoutError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io(format!("cannot create {}", parent.display())))?;
    }
    let shown = path.display().to_string();
    let mut writer =
        csv::Writer::from_path(path).map_err(csv_err(format!("cannot create {shown}")))?;
    writer
        .write_record(header)
        .map_err(csv_err(format!("cannot write {shown}")))?;
    for row in rows {
        writer
            .write_record(row)
            .map_err(csv_err(format!("cannot write {shown}")))?;
    }
    writer.flush().map_err(io(format!("cannot write {shown}")))
}

/// Builds the holdout view of the competition in `source` into `view` (which must not exist)
/// and returns the holdout's answers.
///
/// # Errors
/// [`HoldoutError::Unsafe`] when the rows cannot be split or a side file carries a target
/// next to the id; column, CSV and I/O errors otherwise.
pub fn build_view(source: &Path, view: &Path, spec: &HoldoutSpec) -> Result<Answers, HoldoutError> {
    if !(spec.fraction > 0.0 && spec.fraction < 1.0) {
        return Err(HoldoutError::Columns(format!(
            "a holdout fraction must be between 0 and 1, not {}",
            spec.fraction
        )));
    }
    let train = Table::read(&source.join(&spec.train))?;
    // Without a test table the sample submission alone names the rows to predict.
    let separate_test = spec.test != spec.sample;
    let sample = Table::read(&source.join(&spec.sample))?;
    let test = if separate_test {
        Table::read(&source.join(&spec.test))?
    } else {
        Table {
            header: csv::StringRecord::from(vec![spec.id_column.as_str()]),
            rows: sample
                .rows
                .iter()
                .map(|r| r.iter().take(1).collect())
                .collect(),
        }
    };
    let target_at: Vec<usize> = spec
        .targets
        .iter()
        .map(|t| {
            train.column(t).ok_or_else(|| {
                HoldoutError::Columns(format!("the training table has no target column {t:?}"))
            })
        })
        .collect::<Result<_, _>>()?;
    let train_id = train.column(&spec.id_column);
    // Test columns come from the training rows; one training lacks (other than the id) means
    // the view's test table cannot be made.
    let test_from: Vec<Option<usize>> = test
        .header
        .iter()
        .map(|h| {
            if h == spec.id_column {
                Ok(None)
            } else {
                train.column(h).map(Some).ok_or_else(|| {
                    HoldoutError::Columns(format!(
                        "the test table's column {h:?} is not in the training table"
                    ))
                })
            }
        })
        .collect::<Result<_, _>>()?;
    if sample.column(&spec.id_column) != Some(0) {
        return Err(HoldoutError::Columns(format!(
            "the sample submission does not start with the id column {:?}",
            spec.id_column
        )));
    }

    let chosen = held_out(&train, spec)?;
    let held: HashSet<usize> = chosen.iter().copied().collect();
    let pictures = spec
        .images
        .as_ref()
        .map(|roles| Pictures::plan(roles, &train, &test, &chosen, &spec.id_column))
        .transpose()?;
    // Without an id in training, holdout rows are named by their row number; pictures' rows
    // by their new file names.
    let id_of = |i: usize| match (&pictures, train_id) {
        (Some(p), _) => p.view_id(i),
        (None, Some(c)) => train.rows[i].get(c).unwrap_or("").to_owned(),
        (None, None) => format!("holdout-{i}"),
    };

    check_side_files(source, spec)?;
    fs::create_dir_all(view).map_err(io(format!("cannot create {}", view.display())))?;
    let left_out = pictures.as_ref().map(|p| &p.left_out);
    link_others(source, view, spec, left_out)?;
    if let Some(pictures) = &pictures {
        pictures.link(source, view)?;
    }

    let fit: Vec<Vec<String>> = (0..train.rows.len())
        .filter(|i| !held.contains(i))
        .map(|i| train.rows[i].iter().map(str::to_owned).collect())
        .collect();
    write(&view.join(&spec.train), &train.header, &fit)?;

    let test_rows: Vec<Vec<String>> = chosen
        .iter()
        .map(|&i| {
            test_from
                .iter()
                .zip(test.header.iter())
                .map(|(from, name)| match from {
                    _ if pictures.as_ref().is_some_and(|p| p.names_files(name)) => pictures
                        .as_ref()
                        .map_or_else(String::new, |p| p.view_value(i)),
                    Some(c) => train.rows[i].get(*c).unwrap_or("").to_owned(),
                    None => id_of(i),
                })
                .collect()
        })
        .collect();
    if separate_test {
        write(&view.join(&spec.test), &test.header, &test_rows)?;
    }

    let placeholder: Vec<String> = sample
        .rows
        .first()
        .map(|r| r.iter().skip(1).map(str::to_owned).collect())
        .unwrap_or_else(|| vec![String::new(); sample.header.len().saturating_sub(1)]);
    let sample_rows: Vec<Vec<String>> = chosen
        .iter()
        .map(|&i| {
            std::iter::once(id_of(i))
                .chain(placeholder.iter().cloned())
                .collect()
        })
        .collect();
    write(&view.join(&spec.sample), &sample.header, &sample_rows)?;

    if !spec.row_tables.is_empty() {
        if train_id.is_none() {
            return Err(HoldoutError::Columns(format!(
                "side tables are keyed by {:?}, which the training table lacks",
                spec.id_column
            )));
        }
        let ids: Vec<String> = (0..train.rows.len()).map(id_of).collect();
        let row_ids = super::side::RowIds {
            fit: (0..ids.len())
                .filter(|i| !held.contains(i))
                .map(|i| ids[i].as_str())
                .collect(),
            held: chosen.iter().map(|&i| ids[i].as_str()).collect(),
        };
        super::side::write_row_tables(
            source,
            view,
            &spec.row_tables,
            &spec.id_column,
            &spec.targets,
            &row_ids,
        )?;
    }

    Ok(Answers {
        id_column: spec.id_column.clone(),
        columns: spec.targets.clone(),
        rows: chosen
            .iter()
            .map(|&i| {
                let row = &train.rows[i];
                let answers = target_at
                    .iter()
                    .map(|&c| row.get(c).unwrap_or("").to_owned());
                (id_of(i), answers.collect())
            })
            .collect(),
    })
}

fn is_table(spec: &HoldoutSpec, relative: &Path) -> bool {
    [&spec.train, &spec.test, &spec.sample]
        .into_iter()
        .chain(&spec.row_tables)
        .any(|t| Path::new(t.as_str()) == relative)
}

/// Refuses the split when another CSV holds a target column beside the id column: the
/// holdout rows' answers would be readable there.
fn check_side_files(source: &Path, spec: &HoldoutSpec) -> Result<(), HoldoutError> {
    for relative in walk(source, Path::new(""), 0)? {
        if is_table(spec, &relative) || !relative.to_string_lossy().to_lowercase().ends_with(".csv")
        {
            continue;
        }
        let path = source.join(&relative);
        let mut reader = csv::Reader::from_path(&path)
            .map_err(csv_err(format!("cannot open {}", relative.display())))?;
        let header = reader.headers().map_err(csv_err(format!(
            "cannot read the header of {}",
            relative.display()
        )))?;
        let has = |name: &str| header.iter().any(|h| h == name);
        if let Some(target) = spec.targets.iter().find(|t| has(t)) {
            return Err(HoldoutError::Unsafe(format!(
                "{} has the target column {target:?}; its rows would show the holdout's answers",
                relative.display()
            )));
        }
    }
    Ok(())
}

/// Regular files below `dir` (relative paths), not following links.
fn walk(root: &Path, dir: &Path, depth: usize) -> Result<Vec<PathBuf>, HoldoutError> {
    let mut found = Vec::new();
    if depth > MAX_DEPTH {
        return Ok(found);
    }
    let here = root.join(dir);
    for entry in fs::read_dir(&here).map_err(io(format!("cannot list {}", here.display())))? {
        let entry = entry.map_err(io(format!("cannot list {}", here.display())))?;
        let kind = entry
            .file_type()
            .map_err(io(format!("cannot inspect {}", entry.path().display())))?;
        let relative = dir.join(entry.file_name());
        if kind.is_dir() {
            found.extend(walk(root, &relative, depth + 1)?);
        } else if kind.is_file() {
            found.push(relative);
        }
    }
    Ok(found)
}

/// Links every file but the three tables (and `left_out`) into the view.
fn link_others(
    source: &Path,
    view: &Path,
    spec: &HoldoutSpec,
    left_out: Option<&HashSet<PathBuf>>,
) -> Result<(), HoldoutError> {
    for relative in walk(source, Path::new(""), 0)? {
        if is_table(spec, &relative) || left_out.is_some_and(|l| l.contains(&relative)) {
            continue;
        }
        link(&source.join(&relative), &view.join(&relative), &relative)?;
    }
    Ok(())
}

/// Links `from` to `to` (a copy where a link is refused), creating `to`'s folder.
pub(super) fn link(from: &Path, to: &Path, shown: &Path) -> Result<(), HoldoutError> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).map_err(io(format!("cannot create {}", parent.display())))?;
    }
    if fs::hard_link(from, to).is_err() {
        fs::copy(from, to).map_err(io(format!("cannot copy {}", shown.display())))?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::pipeline::analyse::ImageFolder;

    /// A competition of `n` rows: id, a group key, a day, a feature and a two-class label.
    pub(crate) fn competition(n: usize) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("test set-up");
        let mut train = String::from("id,shop,day,x,label\n");
        for i in 0..n {
            let label = if i % 3 == 0 { "yes" } else { "no" };
            train.push_str(&format!("r{i},s{},{},{},{label}\n", i % 7, 1000 + i, i * 2));
        }
        fs::write(dir.path().join("train.csv"), train).expect("test set-up");
        fs::write(dir.path().join("test.csv"), "id,shop,day,x\nt1,s1,5000,3\n")
            .expect("test set-up");
        fs::write(
            dir.path().join("sample_submission.csv"),
            "id,label\nt1,no\n",
        )
        .expect("test set-up");
        fs::create_dir(dir.path().join("extra")).expect("test set-up");
        fs::write(dir.path().join("extra/notes.txt"), "about the data").expect("test set-up");
        dir
    }

    pub(crate) fn spec(split: Split) -> HoldoutSpec {
        HoldoutSpec {
            train: "train.csv".into(),
            test: "test.csv".into(),
            sample: "sample_submission.csv".into(),
            id_column: "id".into(),
            targets: vec!["label".into()],
            split,
            fraction: 0.2,
            folds: 1,
            fold: 0,
            seed: 11,
            images: None,
            row_tables: Vec::new(),
        }
    }

    pub(crate) fn read(path: &Path) -> Table {
        Table::read(path).expect("test set-up")
    }

    /// The source and the view's parent folder, the view itself and the answers.
    fn view_of(split: Split, n: usize) -> ([tempfile::TempDir; 2], PathBuf, Answers) {
        let (source, views) = (competition(n), tempfile::tempdir().expect("test set-up"));
        let view = views.path().join("view");
        let answers = build_view(source.path(), &view, &spec(split)).expect("test set-up");
        ([source, views], view, answers)
    }

    #[test]
    fn the_view_holds_no_holdout_answer() {
        let (_source, view, answers) = view_of(Split::Stratified("label".into()), 100);
        let held: HashSet<&str> = answers.rows.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(answers.rows.len(), 20);
        let train = read(&view.join("train.csv"));
        assert_eq!(train.rows.len(), 80);
        assert!(train.rows.iter().all(|r| !held.contains(&r[0])));
        // The test table is the training rows without the label, in the test's own columns.
        let test = read(&view.join("test.csv"));
        assert_eq!(
            test.header,
            csv::StringRecord::from(vec!["id", "shop", "day", "x"])
        );
        let test_ids: Vec<&str> = test
            .rows
            .iter()
            .map(|r| r.get(0).expect("test set-up"))
            .collect();
        let answer_ids: Vec<&str> = answers.rows.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(test_ids, answer_ids);
        let sample = read(&view.join("sample_submission.csv"));
        let sample_ids: Vec<&str> = sample
            .rows
            .iter()
            .map(|r| r.get(0).expect("test set-up"))
            .collect();
        assert_eq!(sample_ids, answer_ids);
        assert!(sample.rows.iter().all(|r| r.get(1) == Some("no")));
        // Every other file is there, and nothing else carries a label column.
        assert_eq!(
            fs::read_to_string(view.join("extra/notes.txt")).expect("test set-up"),
            "about the data"
        );
    }

    /// Every row of every CSV in `view`, with the file's header, by file.
    fn every_table(view: &Path) -> Vec<(PathBuf, Table)> {
        walk(view, Path::new(""), 0)
            .expect("test set-up")
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "csv"))
            .map(|p| {
                let table = read(&view.join(&p));
                (p, table)
            })
            .collect()
    }

    #[test]
    fn side_tables_keyed_by_row_id_are_filtered_and_carry_no_holdout_answer() {
        let source = competition(100);
        let (mut meta, mut details, mut labels) = (
            String::from("id,colour\n"),
            String::from("id,size\n"),
            String::from("id,label,weight\n"),
        );
        for i in 0..100 {
            meta.push_str(&format!("r{i},c{}\n", i % 4));
            details.push_str(&format!("r{i},{}\n", i * 3));
            labels.push_str(&format!(
                "r{i},{},{i}\n",
                if i % 3 == 0 { "yes" } else { "no" }
            ));
        }
        details.push_str("t1,7\n");
        let write_source = |name: &str, body: &str| {
            fs::write(source.path().join(name), body).expect("test set-up");
        };
        write_source("train_meta.csv", &meta);
        write_source("test_meta.csv", "id,colour\nt1,c9\n");
        write_source("details.csv", &details);
        write_source("train_labels.csv", &labels);
        let mut spec = spec(Split::Stratified("label".into()));
        spec.row_tables = [
            "train_meta.csv",
            "test_meta.csv",
            "details.csv",
            "train_labels.csv",
        ]
        .map(String::from)
        .to_vec();
        let views = tempfile::tempdir().expect("test set-up");
        let view = views.path().join("view");
        let answers = build_view(source.path(), &view, &spec).expect("a view");
        let held: HashSet<&str> = answers.rows.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(held.len(), 20);

        let ids = |name: &str| -> Vec<String> {
            read(&view.join(name))
                .rows
                .iter()
                .map(|r| r[0].to_owned())
                .collect()
        };
        let fit_ids = ids("train.csv");
        // The pair: fit rows on the training side, holdout rows on the test side (their own
        // colours, not the real test row's).
        assert_eq!(ids("train_meta.csv"), fit_ids);
        let test_meta = read(&view.join("test_meta.csv"));
        let moved: Vec<(&str, &str)> = test_meta.rows.iter().map(|r| (&r[0], &r[1])).collect();
        let expected: Vec<(String, String)> = answers
            .rows
            .iter()
            .map(|(id, _)| {
                let i: usize = id[1..].parse().expect("test set-up");
                (id.clone(), format!("c{}", i % 4))
            })
            .collect();
        let expected: Vec<(&str, &str)> = expected
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        assert_eq!(moved, expected);
        // The shared table keeps fit and holdout rows, not the real test row.
        let shared = ids("details.csv");
        assert_eq!(shared.len(), 100);
        assert!(!shared.iter().any(|id| id == "t1"));
        // The table of labels keeps the fit rows only.
        assert_eq!(ids("train_labels.csv"), fit_ids);

        // No file of the view pairs a holdout id with a target value.
        let answer_of: BTreeMap<&str, &str> = answers
            .rows
            .iter()
            .map(|(id, a)| (id.as_str(), a[0].as_str()))
            .collect();
        for (path, table) in every_table(&view) {
            let Some(label) = table.column("label") else {
                continue;
            };
            for row in &table.rows {
                for cell in row {
                    if let Some(answer) = answer_of.get(cell) {
                        assert!(
                            row.get(label).is_none_or(
                                |v| v.is_empty() || path == Path::new("sample_submission.csv")
                            ),
                            "{}: holdout row {cell} shows its label (answer {answer})",
                            path.display()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn stratified_keeps_the_class_shares_and_the_seed_decides() {
        let (_s, _view, answers) = view_of(Split::Stratified("label".into()), 90);
        let yes = answers.rows.iter().filter(|(_, a)| a[0] == "yes").count();
        // 30 "yes" and 60 "no": a fifth of each.
        assert_eq!((yes, answers.rows.len() - yes), (6, 12));
        let (_s2, _view2, again) = view_of(Split::Stratified("label".into()), 90);
        assert_eq!(answers, again);
        let (source, views) = (competition(90), tempfile::tempdir().expect("test set-up"));
        let other = views.path().join("reseeded");
        let mut reseeded = spec(Split::Stratified("label".into()));
        reseeded.seed = 12;
        assert_ne!(
            build_view(source.path(), &other, &reseeded).expect("test set-up"),
            answers
        );
    }

    #[test]
    fn a_group_is_never_on_both_sides() {
        let (_s, view, answers) = view_of(Split::Group("shop".into()), 70);
        let test = read(&view.join("test.csv"));
        let held: HashSet<&str> = test
            .rows
            .iter()
            .map(|r| r.get(1).expect("test set-up"))
            .collect();
        let train = read(&view.join("train.csv"));
        assert!(!held.is_empty() && train.rows.iter().all(|r| !held.contains(&r[1])));
        assert!(answers.rows.len() >= 14);
    }

    #[test]
    fn a_time_split_holds_out_the_latest_rows() {
        let (_s, _view, answers) = view_of(Split::Time("day".into()), 50);
        let ids: Vec<&str> = answers.rows.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "r40", "r41", "r42", "r43", "r44", "r45", "r46", "r47", "r48", "r49"
            ]
        );
    }

    #[test]
    fn unsafe_splits_are_refused_with_the_reason() {
        let source = competition(10);
        let err = build_view(
            source.path(),
            &source.path().join("v"),
            &spec(Split::Random),
        );
        assert!(
            matches!(err, Err(HoldoutError::Unsafe(m)) if m == "10 training rows, fewer than 20")
        );

        let source = competition(40);
        let err = build_view(
            source.path(),
            &source.path().join("v"),
            &spec(Split::Group("id".into())),
        )
        .map(|_| ());
        assert!(err.is_ok(), "every row its own group is a fine split");
        let one_group = fs::read_to_string(source.path().join("train.csv"))
            .expect("test set-up")
            .replace(",s1,", ",s0,")
            .replace(",s2,", ",s0,")
            .replace(",s3,", ",s0,")
            .replace(",s4,", ",s0,")
            .replace(",s5,", ",s0,")
            .replace(",s6,", ",s0,");
        fs::write(source.path().join("train.csv"), one_group).expect("test set-up");
        let err = build_view(
            source.path(),
            &source.path().join("w"),
            &spec(Split::Group("shop".into())),
        );
        assert!(matches!(err, Err(HoldoutError::Unsafe(m)) if m.contains("one group")));

        let source = competition(40);
        fs::write(source.path().join("labels.csv"), "id,label\nr1,yes\n").expect("test set-up");
        let err = build_view(
            source.path(),
            &source.path().join("v"),
            &spec(Split::Random),
        );
        assert!(
            matches!(&err, Err(HoldoutError::Unsafe(m)) if m.starts_with("labels.csv has the target column \"label\"")),
            "{err:?}"
        );
        let mut wrong = spec(Split::Random);
        wrong.targets = vec!["price".into()];
        let err = build_view(source.path(), &source.path().join("x"), &wrong);
        assert!(matches!(err, Err(HoldoutError::Columns(m)) if m.contains("\"price\"")));
    }

    fn role(folder: &str, column: &str, suffix: &str) -> ImageFolder {
        ImageFolder {
            folder: folder.into(),
            column: column.into(),
            suffix: suffix.into(),
            count: 0,
        }
    }

    /// An image competition of 60 rows: ids, a label among `cat` and `dog`, each row's picture
    /// `train/<id>.png` (its bytes unique to the row), test pictures named by the sample's ids
    /// and no test table.
    fn picture_competition() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("test set-up");
        let mut train = String::from("id,label\n");
        fs::create_dir_all(dir.path().join("train")).expect("test set-up");
        fs::create_dir_all(dir.path().join("test")).expect("test set-up");
        for i in 0..60 {
            let label = if i % 3 == 0 { "cat" } else { "dog" };
            train.push_str(&format!("p{i},{label}\n"));
            fs::write(dir.path().join(format!("train/p{i}.png")), [0x89, i]).expect("test set-up");
        }
        fs::write(dir.path().join("train.csv"), train).expect("test set-up");
        fs::write(dir.path().join("test/q1.png"), [0x89, 200]).expect("test set-up");
        fs::write(dir.path().join("test/q2.png"), [0x89, 201]).expect("test set-up");
        fs::write(
            dir.path().join("sample_submission.csv"),
            "id,label\nq1,dog\nq2,dog\n",
        )
        .expect("test set-up");
        dir
    }

    /// Every file of `view`, relative, with its bytes.
    fn files_of(view: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        walk(view, Path::new(""), 0)
            .expect("the view lists")
            .into_iter()
            .map(|relative| {
                let bytes = fs::read(view.join(&relative)).expect("the view reads");
                (relative, bytes)
            })
            .collect()
    }

    #[test]
    fn the_holdout_pictures_move_to_the_test_folder_under_names_that_say_nothing() {
        let source = picture_competition();
        let views = tempfile::tempdir().expect("test set-up");
        let view = views.path().join("view");
        let mut spec = spec(Split::Stratified("label".into()));
        spec.test = spec.sample.clone();
        spec.images = Some(ImageRoles {
            train: role("train", "id", ".png"),
            test: role("test", "id", ".png"),
        });
        let answers = build_view(source.path(), &view, &spec).expect("the view is built");
        assert_eq!(answers.rows.len(), 12);
        let files = files_of(&view);

        // The sample lists the holdout rows by their new names, the labels file the fit rows.
        let sample = read(&view.join("sample_submission.csv"));
        let sample_ids: Vec<&str> = sample.rows.iter().map(|r| &r[0]).collect();
        let answer_ids: Vec<&str> = answers.rows.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(sample_ids, answer_ids);
        assert!(answer_ids.iter().all(|id| id.starts_with("holdout-")));
        assert!(!view.join("test.csv").exists(), "no test table was there");
        let train = read(&view.join("train.csv"));
        assert_eq!(train.rows.len(), 48);

        // Each holdout picture is in the test folder under its id, the same bytes as the
        // training row's; it is gone from the training folder, and the real test pictures are
        // not in the view.
        let source_train = read(&source.path().join("train.csv"));
        let fit: HashSet<&str> = train.rows.iter().map(|r| &r[0]).collect();
        let held: Vec<&str> = source_train
            .rows
            .iter()
            .map(|r| &r[0])
            .filter(|id| !fit.contains(id))
            .collect();
        assert_eq!(held.len(), 12);
        let tests: Vec<&PathBuf> = files.keys().filter(|p| p.starts_with("test")).collect();
        assert_eq!(tests.len(), 12);
        for (id, original) in answer_ids.iter().zip(&held) {
            let moved = &files[&PathBuf::from(format!("test/{id}.png"))];
            let from =
                fs::read(source.path().join(format!("train/{original}.png"))).expect("test set-up");
            assert_eq!(moved, &from);
            assert!(!files.contains_key(&PathBuf::from(format!("train/{original}.png"))));
        }
        for id in &fit {
            assert!(files.contains_key(&PathBuf::from(format!("train/{id}.png"))));
        }

        // No holdout answer is in the view: no file's name holds a label or an original id,
        // and no table row names a holdout row beside its label.
        for (path, bytes) in &files {
            let name = path.to_string_lossy();
            for word in ["cat", "dog"].iter().chain(&held) {
                assert!(
                    !name.contains(word) || fit.iter().any(|f| name == format!("train/{f}.png")),
                    "{name} holds {word}"
                );
            }
            if name.ends_with(".csv") {
                let text = String::from_utf8_lossy(bytes);
                if name == "sample_submission.csv" {
                    // The sample's one placeholder in every row, whatever each row's answer.
                    assert!(sample.rows.iter().all(|r| &r[1] == "dog"));
                    continue;
                }
                for (id, answer) in &answers.rows {
                    for line in text.lines().filter(|l| l.split(',').next() == Some(id)) {
                        assert!(!line.contains(&answer[0]), "{name}: {line}");
                    }
                }
                for original in &held {
                    assert!(
                        !text.lines().any(|l| l.split(',').any(|c| c == *original)),
                        "{name} names the holdout row {original}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_test_table_naming_pictures_by_file_gets_the_new_names() {
        let source = picture_competition();
        let mut train = String::from("id,file,label\n");
        for i in 0..60 {
            let label = if i % 3 == 0 { "cat" } else { "dog" };
            train.push_str(&format!("r{i},p{i}.png,{label}\n"));
        }
        fs::write(source.path().join("train.csv"), train).expect("test set-up");
        fs::write(
            source.path().join("test.csv"),
            "id,file\nt1,q1.png\nt2,q2.png\n",
        )
        .expect("test set-up");
        fs::write(
            source.path().join("sample_submission.csv"),
            "id,label\nt1,dog\nt2,dog\n",
        )
        .expect("test set-up");
        let views = tempfile::tempdir().expect("test set-up");
        let view = views.path().join("view");
        let mut spec = spec(Split::Random);
        spec.images = Some(ImageRoles {
            train: role("train", "file", ""),
            test: role("test", "file", ""),
        });
        let answers = build_view(source.path(), &view, &spec).expect("the view is built");
        let test = read(&view.join("test.csv"));
        assert_eq!(test.rows.len(), answers.rows.len());
        for (row, (id, _)) in test.rows.iter().zip(&answers.rows) {
            assert_eq!(&row[0], id);
            assert_eq!(row[1].to_owned(), format!("{id}.png"));
            assert!(view.join("test").join(&row[1]).is_file(), "{}", &row[1]);
        }
        assert!(!view.join("test/q1.png").exists());
    }
}
