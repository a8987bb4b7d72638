//! The submission validator against three small competitions (labels, per-class probabilities,
//! regression) analysed by the library itself: submissions that only look different (order,
//! quoting, line endings, a BOM, spacing, `10.0` for `10`) are accepted, each way of breaking
//! one is refused with a short message naming the problem, and arbitrary bytes never panic.

use std::path::Path;

use kaggle_solver::pipeline::analyse::{
    CompetitionAnalysis, CompetitionText, PredictionKind, TaskKind, analyse,
};
use kaggle_solver::pipeline::validate::{InvalidSubmission, ValidSubmission, validate_submission};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;

use super::{check, clip};

/// The longest message accepted for inputs whose cells are at most a few hundred bytes.
const MAX_MESSAGE_BYTES: usize = 4096;
/// Stands for a byte that is not UTF-8 (0xFF) until the text is written out; `\PC` strategies
/// never produce this private-use character.
const NOT_UTF8: char = '\u{E000}';

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Task {
    Labels,
    Probabilities,
    Regression,
}

impl Task {
    fn header(self) -> &'static [&'static str] {
        match self {
            Task::Labels => &["id", "label"],
            Task::Probabilities => &["key", "cat", "dog", "eel"],
            Task::Regression => &["id", "price"],
        }
    }

    fn ids(self) -> &'static [&'static str] {
        match self {
            Task::Labels | Task::Regression => &["10", "11", "12", "13", "14"],
            Task::Probabilities => &["a1", "b-2", "c 3", "d,4", "e\"5"],
        }
    }

    fn numeric_ids(self) -> bool {
        self != Task::Probabilities
    }
}

struct Competition {
    dir: tempfile::TempDir,
    analysis: CompetitionAnalysis,
}

fn competition(task: Task) -> Competition {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect(name);
    let ids = task.ids();
    let quoted = |id: &str| format!("\"{}\"", id.replace('"', "\"\""));
    let rows = |f: &dyn Fn(&str) -> String| ids.iter().map(|id| f(id) + "\n").collect::<String>();
    match task {
        Task::Labels => {
            write("train.csv", "id,x,label\n1,1,a\n2,2,b\n3,3,a\n4,4,b\n");
            write(
                "test.csv",
                &format!("id,x\n{}", rows(&|id| format!("{id},1"))),
            );
            write(
                "sample_submission.csv",
                &format!("id,label\n{}", rows(&|id| format!("{id},a"))),
            );
        }
        Task::Probabilities => {
            write("train.csv", "key,x,species\nz1,1,cat\nz2,2,dog\nz3,3,eel\n");
            let test = rows(&|id| format!("{},1", quoted(id)));
            write("test.csv", &format!("key,x\n{test}"));
            let sample = rows(&|id| format!("{},0.25,0.25,0.5", quoted(id)));
            write(
                "sample_submission.csv",
                &format!("key,cat,dog,eel\n{sample}"),
            );
        }
        Task::Regression => {
            write(
                "train.csv",
                "id,x,price\n1,1,0.5\n2,2,1.5\n3,3,2.25\n4,4,8.125\n",
            );
            write(
                "test.csv",
                &format!("id,x\n{}", rows(&|id| format!("{id},1"))),
            );
            write(
                "sample_submission.csv",
                &format!("id,price\n{}", rows(&|id| format!("{id},0"))),
            );
        }
    }
    let analysis = analyse(dir.path(), "fuzz", &CompetitionText::default()).expect("analysis");
    let expected = match task {
        Task::Labels => (TaskKind::Binary, PredictionKind::Label),
        Task::Probabilities => (TaskKind::Multiclass, PredictionKind::Probability),
        Task::Regression => (TaskKind::Regression, PredictionKind::Label),
    };
    assert_eq!((analysis.task, analysis.prediction), expected, "{task:?}");
    Competition { dir, analysis }
}

fn validate(comp: &Competition, bytes: &[u8]) -> Result<ValidSubmission, InvalidSubmission> {
    validate_submission(bytes, comp.dir.path(), &comp.analysis)
}

/// A row of predictions the competition accepts, each written in one of the ways that mean it.
fn valid_row(task: Task, columns: usize) -> BoxedStrategy<Vec<String>> {
    let value = match task {
        Task::Labels => prop::sample::select(vec!["a", "b", "A", "B", " a", "b ", "\ta"])
            .prop_map(str::to_owned)
            .boxed(),
        Task::Probabilities => return probability_row(),
        Task::Regression => prop_oneof![
            any::<f64>()
                .prop_filter("finite", |x| x.is_finite())
                .prop_map(|x| x.to_string()),
            (-1e6f64..1e6).prop_map(|x| format!("{x:e}")),
            prop::sample::select(vec!["3e2", "-0", "1E5", "+7", "0.125 ", "-1.5e-300", "42"])
                .prop_map(str::to_owned),
        ]
        .boxed(),
    };
    prop::collection::vec(value, columns).boxed()
}

/// One row of class probabilities that sum to 1, each written in one of the ways that mean
/// it (the validator refuses a row that does not sum to 1).
fn probability_row() -> BoxedStrategy<Vec<String>> {
    let spelled = |a: f64, b: f64, c: f64, style: usize| {
        [a, b, c]
            .iter()
            .map(|p| match style % 4 {
                0 => p.to_string(),
                1 => format!(" {p} "),
                2 => format!("{p:e}"),
                _ => format!("+{p}"),
            })
            .collect::<Vec<_>>()
    };
    prop_oneof![
        (0.0f64..=1.0, 0.0f64..=1.0, 0usize..4).prop_map(move |(u, v, style)| {
            let b = (1.0 - u) * v;
            spelled(u, b, (1.0 - u - b).max(0.0), style)
        }),
        prop::sample::select(vec![
            ["0.25", "0.25", "0.5"],
            [".5", "0.5 ", "0"],
            ["1", "0", "0."],
            ["+0.25", "0.7", "5e-2"],
            ["1.0", "0", "0"],
            ["0.3333", "0.3333", "0.3334"],
            ["0.5000", "1e-3", "0.499"],
            [" 0.7 ", "0.", ".3"],
        ])
        .prop_map(|row| row.iter().map(|v| (*v).to_owned()).collect()),
    ]
    .boxed()
}

/// A value the competition refuses, with the words the refusal must contain.
fn invalid_value(task: Task) -> BoxedStrategy<(String, &'static str)> {
    let missing = prop::sample::select(vec!["", "NA", "NaN", "nan", "null", " ", "None", "n/a"])
        .prop_map(|v| (v.to_owned(), "is missing"));
    let specific = match task {
        Task::Labels => prop_oneof![
            prop::sample::select(vec!["c", "ab", "a b", "0", "a\nb", "\u{430}", "true"])
                .prop_map(str::to_owned),
            "[c-z]{1,300}",
            "\\PC{1,40}".prop_filter("not a class", |v| {
                let v = v.trim();
                !v.eq_ignore_ascii_case("a") && !v.eq_ignore_ascii_case("b")
            }),
        ]
        .prop_filter("not missing", |v| !is_missing_like(v))
        .prop_map(|v| (v, "not one of the classes"))
        .boxed(),
        Task::Probabilities => prop_oneof![
            prop::sample::select(vec![
                "inf", "-inf", "Infinity", "x", "0.\n5", "1e400", "0x1", "50%"
            ])
            .prop_map(|v| (v.to_owned(), "not a probability")),
            prop::sample::select(vec!["-0.1", "1.0001", "2", "-1e-9", "1e300"])
                .prop_map(|v| (v.to_owned(), "outside [0, 1]")),
        ]
        .boxed(),
        Task::Regression => prop::sample::select(vec![
            "inf", "-inf", "Infinity", "x", "1e400", "1,5", "--1", "1.2.3", "0x10", "1_000", "7\n",
        ])
        .prop_filter("a newline is trimmed away", |v| {
            v.trim() == *v || v.trim().parse::<f64>().is_err()
        })
        .prop_map(|v| (v.to_owned(), "not a finite number"))
        .boxed(),
    };
    prop_oneof![1 => missing, 3 => specific].boxed()
}

fn is_missing_like(v: &str) -> bool {
    let v = v.trim();
    matches!(
        v,
        "" | "NA" | "N/A" | "NaN" | "nan" | "NULL" | "null" | "None" | "#N/A" | "-NaN" | "n/a"
    ) || v.eq_ignore_ascii_case("nan")
}

/// Whether the validator must take `id` for one of the sample's ids (`10.0` is `10`).
fn names_an_id(task: Task, id: &str) -> bool {
    task.ids().contains(&id)
        || (task.numeric_ids()
            && id
                .parse::<f64>()
                .is_ok_and(|x| task.ids().contains(&x.to_string().as_str())))
}

/// Ways of writing the same table that must not matter.
#[derive(Debug, Clone)]
struct Style {
    crlf: bool,
    bom: bool,
    quote_all: bool,
    final_newline: bool,
    blank_lines: Vec<Index>,
    padded_header: bool,
    /// `10.0` for `10`, on numeric ids.
    float_ids: Vec<Index>,
}

fn style() -> impl Strategy<Value = Style> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(any::<Index>(), 0..3),
        any::<bool>(),
        prop::collection::vec(any::<Index>(), 0..3),
    )
        .prop_map(
            |(crlf, bom, quote_all, final_newline, blank_lines, padded_header, float_ids)| Style {
                crlf,
                bom,
                quote_all,
                final_newline,
                blank_lines,
                padded_header,
                float_ids,
            },
        )
}

/// One way of breaking a submission, with the words its refusal must contain.
#[derive(Debug, Clone)]
enum Break {
    RenameColumn(Index, String),
    DropColumn(Index),
    AddColumn(String),
    SwapColumns,
    DropRow(Index),
    AddRow(Index),
    DuplicateId(Index, Index),
    UnknownId(Index, String),
    BadValue(Index, Index, String, &'static str),
    RaggedRow(Index),
    NotUtf8(Index, Index),
}

impl Break {
    fn says(&self) -> &'static str {
        match self {
            Break::RenameColumn(..)
            | Break::DropColumn(_)
            | Break::AddColumn(_)
            | Break::SwapColumns => "the columns must be exactly",
            Break::DropRow(_) | Break::AddRow(_) => "data rows (one per id in the sample",
            Break::DuplicateId(..) => "appears twice",
            Break::UnknownId(..) => "is not in the sample submission",
            Break::BadValue(_, _, _, says) => says,
            Break::RaggedRow(_) | Break::NotUtf8(..) => "is not a readable CSV",
        }
    }
}

fn breaks(task: Task) -> impl Strategy<Value = Break> {
    let column = prop_oneof!["[a-z_]{1,12}", "\\PC{1,20}", "[A-Z]{40,60}"];
    let unknown_id = prop_oneof![
        prop::sample::select(vec![
            "99", "1", "010x", " 10", "10 ", "", "a1 ", "A1", "1\n0", "1e1"
        ])
        .prop_map(str::to_owned),
        "[a-z]{1,300}",
    ]
    .prop_filter("not an id", move |id| !names_an_id(task, id));
    prop_oneof![
        (any::<Index>(), column.clone()).prop_map(|(i, c)| Break::RenameColumn(i, c)),
        any::<Index>().prop_map(Break::DropColumn),
        column.prop_map(Break::AddColumn),
        Just(Break::SwapColumns),
        any::<Index>().prop_map(Break::DropRow),
        any::<Index>().prop_map(Break::AddRow),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Break::DuplicateId(a, b)),
        (any::<Index>(), unknown_id).prop_map(|(i, id)| Break::UnknownId(i, id)),
        (any::<Index>(), any::<Index>(), invalid_value(task))
            .prop_map(|(r, c, (v, says))| Break::BadValue(r, c, v, says)),
        any::<Index>().prop_map(Break::RaggedRow),
        (any::<Index>(), any::<Index>()).prop_map(|(r, c)| Break::NotUtf8(r, c)),
    ]
}

#[derive(Debug, Clone)]
struct Submission {
    task: Task,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    style: Style,
    /// Rows and columns appended by breaks, which later breaks do not remove again (two
    /// breaks must never cancel out into a valid submission).
    added_rows: usize,
    added_columns: usize,
    swapped: bool,
}

/// A valid submission: the sample's ids in any order, each with valid predictions.
fn valid(task: Task) -> impl Strategy<Value = Submission> {
    let ids: Vec<String> = task.ids().iter().map(|s| (*s).to_owned()).collect();
    let columns = task.header().len() - 1;
    let values = prop::collection::vec(valid_row(task, columns), ids.len());
    (Just(ids).prop_shuffle(), values, style()).prop_map(move |(ids, values, style)| {
        let rows = ids
            .into_iter()
            .zip(values)
            .map(|(id, vals)| std::iter::once(id).chain(vals).collect())
            .collect();
        Submission {
            task,
            header: task.header().iter().map(|s| (*s).to_owned()).collect(),
            rows,
            style,
            added_rows: 0,
            added_columns: 0,
            swapped: false,
        }
    })
}

impl Submission {
    fn apply_style_to_ids(&mut self, task: Task) {
        if task.numeric_ids() {
            for i in &self.style.float_ids {
                let n = self.rows.len();
                let id = &mut self.rows[i.index(n)][0];
                if !id.ends_with(".0") {
                    id.push_str(".0");
                }
            }
        }
    }

    fn apply(&mut self, how: &Break) {
        let n = self.rows.len();
        let width = self.header.len();
        match how {
            Break::RenameColumn(i, name) => {
                let i = i.index(width);
                let original = self.task.header().get(i).copied().unwrap_or_default();
                if [self.header[i].trim(), original].contains(&name.trim()) {
                    self.header[i] = format!("{name}_x");
                } else {
                    self.header[i] = name.clone();
                }
            }
            Break::DropColumn(i) if width - self.added_columns > 1 => {
                let i = i.index(width - self.added_columns);
                self.header.remove(i);
                for row in &mut self.rows {
                    row.remove(i);
                }
            }
            Break::DropColumn(_) => {}
            Break::AddColumn(name) => {
                self.header.push(name.clone());
                for row in &mut self.rows {
                    // Missing, so that a column added under a dropped one's name is no repair.
                    row.push(String::new());
                }
                self.added_columns += 1;
            }
            Break::SwapColumns if !self.swapped && width > 1 => {
                self.header.swap(0, width - 1);
                for row in &mut self.rows {
                    row.swap(0, width - 1);
                }
                self.swapped = true;
            }
            Break::SwapColumns => {}
            Break::DropRow(i) => {
                self.rows.remove(i.index(n - self.added_rows));
            }
            Break::AddRow(i) => {
                // Under an id of its own: a copy of a row that a later break drops would
                // restore the table.
                let mut copy = self.rows[i.index(n)].clone();
                copy[0] = "999".into();
                self.rows.push(copy);
                self.added_rows += 1;
            }
            Break::DuplicateId(a, b) => {
                let a = a.index(n);
                let b = (a + 1 + b.index(n - 1)) % n;
                self.rows[b][0] = self.rows[a][0].clone();
            }
            Break::UnknownId(i, id) => self.rows[i.index(n)][0] = id.clone(),
            Break::BadValue(r, c, value, _) if width > 1 => {
                let c = 1 + c.index(width - 1);
                self.rows[r.index(n)][c] = value.clone();
            }
            Break::BadValue(..) => {}
            Break::RaggedRow(i) => self.rows[i.index(n)].push("extra".into()),
            Break::NotUtf8(r, c) => {
                let row = &mut self.rows[r.index(n)];
                let c = c.index(row.len());
                let cell = &mut row[c];
                let middle = cell.chars().count() / 2;
                let at = cell
                    .char_indices()
                    .nth(middle)
                    .map_or(cell.len(), |(at, _)| at);
                cell.insert(at, NOT_UTF8);
            }
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        let end = if self.style.crlf { "\r\n" } else { "\n" };
        let cell = |c: &str| {
            if self.style.quote_all || c.contains([',', '"', '\n', '\r']) || c.is_empty() {
                format!("\"{}\"", c.replace('"', "\"\""))
            } else {
                c.to_owned()
            }
        };
        let line = |cells: &[String]| cells.iter().map(|c| cell(c)).collect::<Vec<_>>().join(",");
        let header: Vec<String> = if self.style.padded_header {
            self.header.iter().map(|h| format!(" {h} ")).collect()
        } else {
            self.header.clone()
        };
        let mut lines = vec![line(&header)];
        lines.extend(self.rows.iter().map(|r| line(r)));
        for i in &self.style.blank_lines {
            // Never before the header, where a blank line would become the header.
            let at = 1 + i.index(lines.len());
            lines.insert(at, String::new());
        }
        let mut text = lines.join(end);
        if self.style.final_newline {
            text.push_str(end);
        }
        if self.style.bom {
            text.insert(0, '\u{feff}');
        }
        let mut bytes = Vec::new();
        let mut buf = [0u8; 4];
        for c in text.chars() {
            if c == NOT_UTF8 {
                bytes.push(0xFF);
            } else {
                bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
        bytes
    }
}

/// The message is short, starts the way every validation error does, and names the problem.
fn is_clear(err: &InvalidSubmission) -> Result<String, TestCaseError> {
    let message = err.to_string();
    prop_assert!(
        message.len() <= MAX_MESSAGE_BYTES,
        "a {}-byte message: {}",
        message.len(),
        clip(&message, 300)
    );
    prop_assert!(message.starts_with("invalid submission: "), "{message}");
    prop_assert!(!err.0.trim().is_empty());
    Ok(message)
}

const TASKS: [Task; 3] = [Task::Labels, Task::Probabilities, Task::Regression];

#[test]
fn valid_looking_submissions_are_accepted() {
    for task in TASKS {
        let comp = competition(task);
        check(128, &valid(task), |mut sub| {
            sub.apply_style_to_ids(task);
            let bytes = sub.to_bytes();
            let result = validate(&comp, &bytes);
            prop_assert_eq!(
                result,
                Ok(ValidSubmission {
                    rows: task.ids().len()
                }),
                "{:?}: {:?}",
                task,
                String::from_utf8_lossy(&bytes)
            );
            Ok(())
        });
    }
}

#[test]
fn broken_submissions_are_refused_with_the_reason() {
    for task in TASKS {
        let comp = competition(task);
        let input = (valid(task), prop::collection::vec(breaks(task), 1..3));
        check(192, &input, |(mut sub, how)| {
            for b in &how {
                sub.apply(b);
            }
            let bytes = sub.to_bytes();
            let shown = clip(&String::from_utf8_lossy(&bytes), 400);
            let err = validate(&comp, &bytes)
                .err()
                .ok_or_else(|| TestCaseError::fail(format!("{task:?} accepted {shown:?}")))?;
            let message = is_clear(&err)?;
            if let [only] = how.as_slice() {
                prop_assert!(
                    message.contains(only.says()),
                    "{:?} after {:?} should say {:?}: {}\n{:?}",
                    task,
                    only,
                    only.says(),
                    message,
                    shown
                );
                if let Break::BadValue(..) | Break::UnknownId(..) | Break::DuplicateId(..) = only {
                    prop_assert!(message.contains("line "), "{message}");
                }
                if let Break::BadValue(r, c, ..) = only {
                    let id = &sub.rows[r.index(sub.rows.len())][0];
                    let column = &sub.header[1 + c.index(sub.header.len() - 1)];
                    prop_assert!(
                        message.contains(&format!("{id:?}")) && message.contains(column.as_str()),
                        "{message} names neither the id {id:?} nor the column {column}"
                    );
                }
            }
            Ok(())
        });
    }
}

#[test]
fn arbitrary_bytes_never_panic() {
    let bytes = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..2048),
        "\\PC{0,400}".prop_map(String::into_bytes),
        // CSV-ish: the right header, then anything made of separators, quotes and ids.
        prop::collection::vec(
            prop::sample::select(vec![
                ",", "\"", "\n", "\r\n", "10", "11", "a", "0.5", "nan", " ", "id", "key",
                "\u{feff}", "\"\"", "inf", "-", "e",
            ]),
            0..80,
        )
        .prop_map(|parts| format!("id,label\n{}", parts.concat()).into_bytes()),
    ];
    for task in TASKS {
        let comp = competition(task);
        check(128, &bytes, |bytes| {
            match validate(&comp, &bytes) {
                Ok(valid) => prop_assert_eq!(valid.rows, task.ids().len()),
                Err(err) => {
                    is_clear(&err)?;
                }
            }
            Ok(())
        });
    }
}

/// Huge headers and cells must not come back whole: before values were bounded a 20 MB
/// header gave a 42 MB message (it is quoted twice), a 1 MB id or value a 1 MB one, and job
/// records, logs and the next prompt carried them.
#[test]
fn huge_headers_and_cells_give_short_messages() {
    let comp = competition(Task::Labels);
    let header = format!("id,{}\n10,a\n", "h".repeat(20 << 20));
    let id = format!(
        "id,label\n{},a\n11,a\n12,a\n13,a\n14,a\n",
        "9".repeat(1 << 20)
    );
    let value = format!(
        "id,label\n10,{}\n11,a\n12,a\n13,a\n14,a\n",
        "z".repeat(1 << 20)
    );
    let sizes: Vec<(&str, usize)> = [("header", header), ("id", id), ("value", value)]
        .into_iter()
        .map(|(what, text)| {
            let err = validate(&comp, text.as_bytes()).expect_err(what);
            (what, err.to_string().len())
        })
        .collect();
    assert!(
        sizes.iter().all(|(_, len)| *len <= MAX_MESSAGE_BYTES),
        "message bytes for a huge header, id and value: {sizes:?}"
    );
}

#[test]
fn an_unreadable_sample_is_named() {
    // A missing submission is refused before validation, by the run's output reader
    // (`sandbox::read_regular`), with its own unit tests.
    let comp = competition(Task::Regression);
    let err = validate_submission(
        b"id,price\n10,1\n",
        Path::new("/nonexistent"),
        &comp.analysis,
    )
    .expect_err("no sample");
    assert!(err.0.contains("cannot read the sample submission"), "{err}");
}
