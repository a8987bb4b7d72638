//! The prompt the LLM generators send: a system message that states the guest contract, and a
//! user message that carries the competition's analysis and, on a retry, the last attempt.
//!
//! Both providers send the same words, so what the model is told lives in one place. The
//! contract is spelled out precisely because a script that breaks it (a network call, an
//! unavailable library, a wrong path) fails in the sandbox and costs a whole attempt.

use std::fmt::Write as _;

use super::GenerationRequest;
use crate::pipeline::analyse::{
    CompetitionAnalysis, ImageSet, Metric, PredictionKind, SubmissionShape, TaskKind,
};
use crate::sandbox::{Backend, WANTED_NOT_IN_GUEST, backend_modules};
use crate::text::{ERROR_TAIL_CHARS, head, tail};

/// How much of the previous attempt's code goes into a retry prompt (its head).
pub const PREVIOUS_CODE_CHARS: usize = 40_000;
/// The analysis JSON past which examples and long descriptions are left out.
const MAX_ANALYSIS_JSON_CHARS: usize = 40_000;
/// Columns listed by name in the summary, per table.
const SUMMARY_COLUMNS: usize = 40;

/// The system message's opening: what to reply with.
const SYSTEM_HEAD: &str = "\
You write Python 3 scripts that solve Kaggle competitions. Your script runs once, unattended, \
in a sandbox, and nobody reads your prose: reply with exactly one complete Python script in a \
single ```python fenced block.

The sandbox:
";

/// The system message after the list of modules: the rest of the guest contract and the shape
/// of the script.
const SYSTEM_TAIL: &str = "\
- No network: no downloads, no pretrained models, no Kaggle API. No subprocess, os.system or \
multiprocessing, and no thread-based parallelism: use n_jobs=1 everywhere (or leave it unset).
- Files: the competition's files are under /input, read-only, at the paths given below (e.g. \
/input/train.csv). Write exactly one file: /output/submission.csv. Use /tmp for scratch files. \
Nothing else on the file system is reachable.
- The run has a strict time and memory budget. Prefer fast, robust models \
(HistGradientBoostingClassifier/Regressor, LogisticRegression, Ridge, or a RandomForest with \
at most a few hundred trees); subsample very large training tables; avoid large grid searches \
and deep cross-validation.

The script must:
1. Read the training table, the test table and the sample submission from /input with pandas.
2. Preprocess robustly: impute missing values, encode categorical columns, drop or simply \
encode free text, never use the target or the id column as a feature, and give test exactly \
the training features.
3. Hold out a validation split, compute the competition's metric on it and print it on one \
line, e.g. `validation roc_auc: 0.8731`.
4. Refit on all the training data and predict the test table.
5. Write /output/submission.csv with exactly the sample submission's columns in the same \
order, one row per id in the same order as the sample submission (the simplest way: read it \
and fill in its prediction columns), no index column and no missing values. Labels use the \
values and type of the training target; probabilities are floats in [0, 1].
6. Print little else: a few progress lines at most.
Do not catch and hide exceptions: a failure's traceback is reported back to you for a fix.";

/// The words that introduce the guest's module list; the list runs to the next `.`.
pub const GUEST_LIST_INTRO: &str = "exactly these third-party modules (by import name): ";
/// The words that introduce the Docker image's module list, when the prompt has one.
pub const DOCKER_LIST_INTRO: &str = "whose third-party modules are exactly: ";

/// The system message: the guest contract and the shape of the reply. The modules it names are
/// the backends' own lists (see `sandbox::backend_modules`), each tested against its backend;
/// `docker` says whether code may run on the Docker backend too (the policy allows it and this
/// host has it), and then the prompt says what the image has.
pub fn system_prompt(docker: bool) -> String {
    let guest = backend_modules(Backend::Wasm);
    let image = backend_modules(Backend::Docker);
    let (on_docker, nowhere): (Vec<&str>, Vec<&str>) = WANTED_NOT_IN_GUEST
        .into_iter()
        .partition(|name| docker && image.contains(name));
    let mut s = String::from(SYSTEM_HEAD);
    let _ = writeln!(
        s,
        "- CPython 3 compiled for WebAssembly (WASI) on one core, several times slower than \
         native. Available: the standard library and {GUEST_LIST_INTRO}{}. Nothing can be \
         installed (no pip). Not available: {}, or any other package; pandas cannot read or \
         write parquet or feather files (no pyarrow).",
        guest.join(", "),
        WANTED_NOT_IN_GUEST.join(", "),
    );
    if docker {
        let absent: Vec<&str> = guest
            .iter()
            .filter(|name| !image.contains(name))
            .copied()
            .collect();
        let _ = writeln!(
            s,
            "- A script that imports {} runs instead in a native Linux container (CPython 3.11, \
             the same limits and files) {DOCKER_LIST_INTRO}{}. The guest's other modules ({}) \
             are not there, so such a script imports only the standard library and these. Not \
             available anywhere: {}.",
            on_docker.join(" or "),
            image.join(", "),
            absent.join(", "),
            nowhere.join(", "),
        );
    }
    s.push_str(SYSTEM_TAIL);
    s
}

/// The two messages of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// The system message ([`SYSTEM_PROMPT`]).
    pub system: String,
    /// The user message: the analysis, and on a retry the previous attempt.
    pub user: String,
}

/// Builds the prompt for one attempt.
pub fn build_prompt(request: &GenerationRequest<'_>) -> Prompt {
    let analysis = request.analysis;
    let mut user = summary(analysis);
    user.push_str("\nThe full analysis, as JSON:\n");
    user.push_str(&analysis_json(analysis));
    user.push('\n');
    match (&request.previous, &request.improve) {
        (None, None) => user.push_str("\nWrite the complete script.\n"),
        (None, Some(parent)) => {
            let code = head(parent.code.trim_end(), PREVIOUS_CODE_CHARS);
            let direction = if parent.higher_is_better {
                "higher is better"
            } else {
                "lower is better"
            };
            let others: Vec<String> = parent
                .others
                .iter()
                .map(|(n, score)| format!("candidate {n}: {score:.6}"))
                .collect();
            let _ = write!(
                user,
                "\nThis is candidate {candidate} of a search. The host scored every candidate \
                 on training rows it held back ({metric}, {direction}); a score the script \
                 prints is not used. Scores so far: {others}. The best, candidate {parent_n} \
                 with {score:.6}, is below. Write a script that scores better on unseen rows: \
                 better features, another model or tuned hyper-parameters, an ensemble; keep \
                 what works and keep within the time and memory limits. Reply with the \
                 complete script (not a diff) in one ```python block.\n\n\
                 {cf}python\n{code}\n{cf}\n",
                candidate = request.candidate,
                metric = parent.metric,
                others = others.join(", "),
                parent_n = parent.candidate,
                score = parent.score,
                cf = fence_for(&code),
            );
        }
        (Some(previous), _) => {
            let error = tail(previous.error.trim_end(), ERROR_TAIL_CHARS);
            let code = head(previous.code.trim_end(), PREVIOUS_CODE_CHARS);
            let _ = write!(
                user,
                "\nThis is attempt {attempt}. The previous script failed. Its error report \
                 (the end of it):\n{ef}text\n{error}\n{ef}\n\nThe previous script:\n\
                 {cf}python\n{code}\n{cf}\n\nFind the cause and fix it; if it was a \
                 missing module or a time or memory limit, change the approach. Reply with the \
                 complete corrected script (not a diff) in one ```python block.\n",
                attempt = request.attempt,
                ef = fence_for(&error),
                cf = fence_for(&code),
            );
        }
    }
    Prompt {
        system: system_prompt(request.docker),
        user,
    }
}

/// What the prompt says of an image competition's pictures: where each row's is, how to read
/// it, and where the rows to predict come from.
fn images_text(a: &CompetitionAnalysis, images: &ImageSet) -> String {
    let rows = if a.has_test_table() {
        format!("the rows of {}", a.test.path)
    } else {
        format!(
            "the ids of {} (there is no test table)",
            a.sample_submission.path
        )
    };
    format!(
        "Images: {images}. Each training row's picture is /input/{}<{}>{}; the rows to predict \
         are {rows}, each picture /input/{}<{}>{}. Read them with Pillow (PIL); numpy, pandas \
         and scikit-learn are there, no deep-learning library.",
        folder_prefix(&images.train.folder),
        images.train.column,
        images.train.suffix,
        folder_prefix(&images.test.folder),
        images.test.column,
        images.test.suffix,
    )
}

fn folder_prefix(folder: &str) -> String {
    if folder.is_empty() {
        String::new()
    } else {
        format!("{folder}/")
    }
}

/// Whether `path` is one of the pictures the images line already describes: thousands of
/// them would crowd out everything else.
fn is_listed_picture(a: &CompetitionAnalysis, path: &str) -> bool {
    a.images.as_ref().is_some_and(|images| {
        let folder = path.rsplit_once('/').map_or("", |(folder, _)| folder);
        folder == images.train.folder || folder == images.test.folder
    })
}

/// A short human summary: task, metric, columns, prediction kind and files.
fn summary(a: &CompetitionAnalysis) -> String {
    let mut s = String::new();
    let task = match a.task {
        TaskKind::Binary => "binary classification",
        TaskKind::Multiclass => "multiclass classification",
        TaskKind::Regression => "regression",
    };
    let _ = writeln!(s, "Competition: {}", a.slug);
    let _ = writeln!(s, "Task: {task}. Metric: {}.", metric_text(a.metric));
    let _ = writeln!(s, "Predict: {}.", prediction_text(a));
    let _ = writeln!(
        s,
        "Submission shape: {} ({}).",
        a.shape.name(),
        a.shape_reason
    );
    let targets: Vec<String> = a
        .shape
        .train_targets()
        .iter()
        .map(|t| (*t).to_owned())
        .collect();
    let _ = writeln!(
        s,
        "Id column: `{}`. Target column{} in the training table: {}.",
        a.id_column,
        if targets.len() == 1 { "" } else { "s" },
        quoted(&targets)
    );
    if !a.classes.is_empty() {
        let _ = writeln!(s, "Classes (sorted): {}.", quoted(&a.classes));
    }
    if let Some(line) = free_text_line(a) {
        s.push_str(&line);
    }
    if let Some(media) = &a.media {
        let _ = writeln!(
            s,
            "The data includes {media}: read them with the standard library if the task needs \
             them (no audio or video libraries are available)."
        );
    }
    if let Some(images) = &a.images {
        let _ = writeln!(s, "{}", images_text(a, images));
    }
    s.push_str("Files, read-only under /input:\n");
    for file in a.files.iter().filter(|f| !is_listed_picture(a, &f.path)) {
        let role = if file.path == a.train.path {
            table_text("the training table", &a.train)
        } else if file.path == a.test.path {
            table_text("the table to predict", &a.test)
        } else if file.path == a.sample_submission.path {
            table_text("the sample submission", &a.sample_submission)
        } else if let Some(side) = a.tables.side.iter().find(|t| t.table.path == file.path) {
            side_table_text(side)
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "- /input/{} ({}){role}",
            file.path,
            size_text(file.bytes)
        );
    }
    let columns: Vec<String> = a
        .sample_submission
        .columns
        .iter()
        .map(|c| c.name.clone())
        .collect();
    let _ = writeln!(
        s,
        "The submission: /output/submission.csv with the columns {} in this order, and the {} \
         ids of /input/{} in their order.",
        quoted(&columns),
        a.sample_submission.rows,
        a.sample_submission.path
    );
    for (role, table) in [
        ("training table", &a.train),
        ("table to predict", &a.test),
        ("sample submission", &a.sample_submission),
    ] {
        rows_text(&mut s, role, table);
    }
    for side in &a.tables.side {
        rows_text(&mut s, "side table", &side.table);
    }
    for (original, converted) in &a.tables.converted {
        let _ = writeln!(
            s,
            "/input/{converted} is /input/{original} converted to CSV by the host: read the CSV."
        );
    }
    s
}

/// What a side table is and how it joins the training rows, typed per column.
fn side_table_text(side: &crate::pipeline::analyse::SideTable) -> String {
    let typed: Vec<String> = side
        .table
        .columns
        .iter()
        .take(SUMMARY_COLUMNS)
        .map(|c| {
            format!(
                "`{}` ({})",
                c.name,
                crate::pipeline::analyse::tables::dtype_name(c.dtype)
            )
        })
        .collect();
    let more = side.table.columns.len().saturating_sub(SUMMARY_COLUMNS);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    let join = match &side.link {
        Some(link) => format!(
            "; joins the training table on {key}{row_id}, {kind} ({}; {:.0}% of training rows \
             and {:.0}% of test rows have a match)",
            if link.kind.is_lookup() {
                "at most one side row per training row: merge it as it is"
            } else {
                "several side rows per training row: aggregate them per key before merging"
            },
            link.train_matched * 100.0,
            link.test_matched * 100.0,
            key = format_args!("`{}`", link.key),
            row_id = if link.row_id { " (the row id)" } else { "" },
            kind = link.kind.name(),
        ),
        None => "; shares no id-like column with the training table".to_owned(),
    };
    format!(
        ": a side table, {} rows, columns {}{more}{join}",
        side.table.rows,
        typed.join(", ")
    )
}

/// The line naming the training table's free-text columns (long, mostly distinct strings), or
/// None when it has none: the model is told to read them as text, not as categories.
fn free_text_line(a: &CompetitionAnalysis) -> Option<String> {
    let texts: Vec<String> = a
        .train
        .columns
        .iter()
        .filter(|c| c.dtype == crate::pipeline::analyse::ColumnType::Text)
        .map(|c| c.name.clone())
        .collect();
    if texts.is_empty() {
        return None;
    }
    Some(format!(
        "Free-text column{} of the training table: {}. Read them as text (e.g. TF-IDF of word \
         and character n-grams into a linear model, its predictions blended with or fed to \
         the models of the other columns), not as categories.\n",
        if texts.len() == 1 { "" } else { "s" },
        quoted(&texts)
    ))
}

/// The header and first rows of a table, as CSV-like lines (cells already bounded by the
/// profile, columns by [`SUMMARY_COLUMNS`]).
fn rows_text(s: &mut String, role: &str, table: &crate::pipeline::analyse::TableProfile) {
    if table.head.is_empty() {
        return;
    }
    let _ = writeln!(s, "The first rows of the {role} /input/{}:", table.path);
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let cells: Vec<String> = cells
            .take(SUMMARY_COLUMNS)
            .map(|c| c.replace(['\n', '\r'], " "))
            .collect();
        cells.join(",")
    };
    let _ = writeln!(
        s,
        "    {}",
        line(&mut table.columns.iter().map(|c| c.name.as_str()))
    );
    for row in &table.head {
        let _ = writeln!(s, "    {}", line(&mut row.iter().map(String::as_str)));
    }
}

fn table_text(role: &str, table: &crate::pipeline::analyse::TableProfile) -> String {
    let names: Vec<String> = table
        .columns
        .iter()
        .take(SUMMARY_COLUMNS)
        .map(|c| c.name.clone())
        .collect();
    let more = table.columns.len().saturating_sub(SUMMARY_COLUMNS);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    format!(
        ": {role}, {} rows, columns {}{more}",
        table.rows,
        quoted(&names)
    )
}

fn metric_text(metric: Option<Metric>) -> String {
    if let Some(Metric::MapAtK { k }) = metric {
        return format!(
            "MAP@{k}, mean average precision: write up to {k} labels per row, best first, \
             separated by spaces (higher is better)"
        );
    }
    let text = match metric {
        Some(Metric::Accuracy) => "accuracy (higher is better)",
        Some(Metric::RocAuc) => "ROC AUC (higher is better)",
        Some(Metric::LogLoss) => "log loss (lower is better)",
        Some(Metric::Rmse) => "RMSE (lower is better)",
        Some(Metric::Rmsle) => "RMSLE (lower is better; predictions must be non-negative)",
        Some(Metric::Mae) => "MAE (lower is better)",
        Some(Metric::F1) => {
            "F1 of the positive class on a binary task, macro-F1 on more classes \
                             (higher is better)"
        }
        Some(Metric::MacroF1) => "macro-averaged F1 (higher is better)",
        Some(Metric::QuadraticWeightedKappa) => {
            "quadratic weighted kappa between predicted and true ordered labels (higher is \
             better; a prediction near the truth scores more than one far from it)"
        }
        Some(Metric::Mcrmse) => {
            "MCRMSE, the mean over the target columns of each column's RMSE (lower is better)"
        }
        Some(Metric::MeanColumnRocAuc) => {
            "the mean over the label columns of each column's ROC AUC (higher is better)"
        }
        Some(Metric::R2) => "R2, the coefficient of determination (higher is better)",
        Some(Metric::Smape) => "SMAPE, symmetric mean absolute percentage error (lower is better)",
        Some(Metric::Pearson) => {
            "Pearson correlation between predictions and truth (higher is better)"
        }
        Some(Metric::MapAtK { .. }) | None => "not stated; validate with one that suits the task",
    };
    text.to_owned()
}

fn prediction_text(a: &CompetitionAnalysis) -> String {
    let columns = quoted(&a.target_columns);
    match &a.shape {
        SubmissionShape::MultiTarget { .. } => {
            return format!(
                "one predicted value per target column, in {columns}; fit every one of them \
                 (one model per column, or one multi-output model)"
            );
        }
        SubmissionShape::MultiLabel { .. } => {
            return match a.prediction {
                PredictionKind::Probability => format!(
                    "for each of the 0/1 label columns {columns}, the probability that it is 1 \
                     (one classifier per column; the columns need not sum to 1)"
                ),
                PredictionKind::Label => format!(
                    "for each of the 0/1 label columns {columns}, 0 or 1 (one classifier per \
                     column)"
                ),
            };
        }
        SubmissionShape::ClassProbabilities { target, classes } => {
            let pairs: Vec<String> = a
                .target_columns
                .iter()
                .zip(classes)
                .map(|(column, class)| format!("`{column}` = P({target} = `{class}`)"))
                .collect();
            return format!(
                "one probability per class of `{target}`, in the columns {}; each row's \
                 probabilities sum to 1",
                pairs.join(", ")
            );
        }
        SubmissionShape::Ordinal { target } => {
            return format!(
                "an ordered whole-number label of `{target}` (one of the classes below) in \
                 {columns}: fitting a regression and choosing the cut points between labels \
                 out of fold suits kappa better than a classifier's argmax"
            );
        }
        SubmissionShape::Single { .. } => {}
    }
    match (a.task, a.prediction) {
        (TaskKind::Regression, _) => format!("the predicted value in {columns}"),
        (_, PredictionKind::Label) => {
            format!("the predicted class label (a value of the training target) in {columns}")
        }
        (_, PredictionKind::Probability) => match a.classes.last() {
            Some(positive) if a.classes.len() == 2 => {
                format!("the probability of the positive class (`{positive}`) in {columns}")
            }
            _ => format!("the probability of the positive class in {columns}"),
        },
    }
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn size_text(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KB", "MB", "GB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The analysis as compact JSON; when it is very large, without column examples and with the
/// description cut, so that a wide table does not crowd out the rest of the prompt.
fn analysis_json(analysis: &CompetitionAnalysis) -> String {
    let without_pictures;
    let analysis = if analysis.images.is_some() {
        // The images line says where they are; thousands of paths would fill the budget.
        let mut slim = analysis.clone();
        slim.files.retain(|f| !is_listed_picture(analysis, &f.path));
        without_pictures = slim;
        &without_pictures
    } else {
        analysis
    };
    let full = serde_json::to_string(analysis).unwrap_or_default();
    if full.len() <= MAX_ANALYSIS_JSON_CHARS {
        return full;
    }
    let mut slim = analysis.clone();
    let side = slim.tables.side.iter_mut().map(|t| &mut t.table);
    for table in [&mut slim.train, &mut slim.test, &mut slim.sample_submission]
        .into_iter()
        .chain(side)
    {
        for column in &mut table.columns {
            column.examples.clear();
        }
    }
    slim.description = slim.description.map(|d| head(&d, 2_000));
    let json = serde_json::to_string(&slim).unwrap_or_default();
    head(&json, MAX_ANALYSIS_JSON_CHARS)
}

/// A backtick fence longer than any backtick run inside `text`, so the text cannot close it.
fn fence_for(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

#[cfg(test)]
mod tests {
    // Unit tests for the prompt: the contract is stated, the analysis is carried, and a retry
    // carries the previous attempt, bounded.

    use super::*;
    use crate::pipeline::analyse::{ColumnProfile, ColumnType, DataFile, TableProfile};
    use crate::pipeline::generate::PreviousAttempt;

    fn column(name: &str, dtype: ColumnType) -> ColumnProfile {
        ColumnProfile {
            name: name.to_owned(),
            dtype,
            missing_fraction: 0.0,
            distinct: 10,
            examples: vec!["1".to_owned(), "2".to_owned()],
        }
    }

    fn analysis() -> CompetitionAnalysis {
        let table = |path: &str, rows, names: &[&str]| TableProfile {
            path: path.to_owned(),
            rows,
            columns: names
                .iter()
                .map(|n| column(n, ColumnType::Integer))
                .collect(),
            head: vec![names.iter().map(|n| format!("{n}-1")).collect()],
        };
        CompetitionAnalysis {
            slug: "titanic".to_owned(),
            files: vec![
                DataFile {
                    path: "train.csv".to_owned(),
                    bytes: 61_194,
                },
                DataFile {
                    path: "test.csv".to_owned(),
                    bytes: 28_629,
                },
                DataFile {
                    path: "gender_submission.csv".to_owned(),
                    bytes: 3_258,
                },
                DataFile {
                    path: "extra/notes.txt".to_owned(),
                    bytes: 12,
                },
            ],
            train: table(
                "train.csv",
                891,
                &["PassengerId", "Pclass", "Age", "Survived"],
            ),
            test: table("test.csv", 418, &["PassengerId", "Pclass", "Age"]),
            sample_submission: table("gender_submission.csv", 418, &["PassengerId", "Survived"]),
            id_column: "PassengerId".to_owned(),
            target_columns: vec!["Survived".to_owned()],
            shape: SubmissionShape::Single {
                target: "Survived".to_owned(),
            },
            shape_reason: "one prediction column \"Survived\", a column of train.csv".to_owned(),
            task: TaskKind::Binary,
            prediction: PredictionKind::Label,
            metric: Some(Metric::Accuracy),
            classes: vec!["0".to_owned(), "1".to_owned()],
            description: Some("Predict survival on the Titanic.".to_owned()),
            media: None,
            images: None,
            tables: Default::default(),
        }
    }

    fn request(
        analysis: &CompetitionAnalysis,
        previous: Option<PreviousAttempt>,
    ) -> GenerationRequest<'_> {
        GenerationRequest {
            analysis,
            attempt: if previous.is_some() { 2 } else { 1 },
            previous,
            docker: false,
            candidate: 1,
            improve: None,
        }
    }

    #[test]
    fn an_improve_request_carries_the_parent_and_the_scores() {
        let analysis = analysis();
        let mut request = request(&analysis, None);
        request.candidate = 3;
        request.improve = Some(crate::pipeline::generate::ImproveFrom {
            candidate: 2,
            code: "print('parent')\n".into(),
            metric: "rmse".into(),
            higher_is_better: false,
            score: 0.25,
            others: vec![(1, 0.5), (2, 0.25)],
        });
        assert_eq!(
            request.kind(),
            crate::pipeline::generate::RequestKind::Improve
        );
        let user = build_prompt(&request).user;
        assert!(user.contains("print('parent')"), "{user}");
        assert!(
            user.contains("candidate 1: 0.500000, candidate 2: 0.250000"),
            "{user}"
        );
        assert!(user.contains("rmse, lower is better"), "{user}");
        assert!(!user.contains("previous script failed"), "{user}");
    }

    #[test]
    fn side_tables_are_shown_typed_with_their_join_and_first_rows() {
        use crate::pipeline::analyse::{LinkKind, SideTable, TableLink};
        let mut analysis = analysis();
        analysis.files.push(DataFile {
            path: "cabins.csv".to_owned(),
            bytes: 900,
        });
        let mut cabins = TableProfile {
            path: "cabins.csv".to_owned(),
            rows: 891,
            columns: vec![
                column("PassengerId", ColumnType::Integer),
                column("Deck", ColumnType::Categorical),
            ],
            head: vec![vec!["1".to_owned(), "C".to_owned()]],
        };
        cabins.columns[1].examples = vec!["C".to_owned()];
        analysis.tables.side.push(SideTable {
            table: cabins,
            keys: vec!["PassengerId".to_owned()],
            link: Some(TableLink {
                key: "PassengerId".to_owned(),
                kind: LinkKind::OneToOne,
                row_id: true,
                train_matched: 1.0,
                test_matched: 0.5,
            }),
        });
        analysis.tables.converted = vec![("cabins.xlsx".to_owned(), "cabins.csv".to_owned())];
        let user = build_prompt(&request(&analysis, None)).user;
        assert!(
            user.contains(
                "- /input/cabins.csv (900 B): a side table, 891 rows, columns `PassengerId` \
                 (integer), `Deck` (categorical); joins the training table on `PassengerId` \
                 (the row id), one-to-one (at most one side row per training row: merge it as \
                 it is; 100% of training rows and 50% of test rows have a match)"
            ),
            "{user}"
        );
        assert!(
            user.contains("The first rows of the side table /input/cabins.csv:\n    PassengerId,Deck\n    1,C\n"),
            "{user}"
        );
        assert!(
            user.contains("/input/cabins.csv is /input/cabins.xlsx converted to CSV by the host"),
            "{user}"
        );
    }

    #[test]
    fn the_free_text_columns_are_named() {
        let mut a = analysis();
        assert_eq!(free_text_line(&a), None);
        assert!(!summary(&a).contains("Free-text"));
        a.train.columns[2].dtype = ColumnType::Text;
        a.train.columns.push(column("Review", ColumnType::Text));
        let line = free_text_line(&a).expect("a line");
        assert!(
            line.starts_with("Free-text columns of the training table: `Age`, `Review`."),
            "{line}"
        );
        assert!(summary(&a).contains(&line));
        a.train.columns.pop();
        assert!(
            free_text_line(&a)
                .expect("a line")
                .starts_with("Free-text column of the training table: `Age`.")
        );
    }

    /// The comma-separated list that follows `intro` in `text`, up to the next `.`.
    fn listed_after<'a>(text: &'a str, intro: &str) -> Vec<&'a str> {
        let start = text.find(intro).map(|at| at + intro.len()).expect("intro");
        let end = text[start..].find(". ").expect("end of list") + start;
        text[start..end].split(", ").collect()
    }

    #[test]
    fn the_prompt_names_exactly_the_tested_lists() {
        let plain = system_prompt(false);
        assert_eq!(
            listed_after(&plain, GUEST_LIST_INTRO),
            backend_modules(Backend::Wasm)
        );
        assert!(!plain.contains(DOCKER_LIST_INTRO));
        for absent in ["pyarrow", "xgboost", "lightgbm", "catboost", "parquet"] {
            assert!(plain.contains(absent), "{absent}");
        }
        let with_docker = system_prompt(true);
        assert_eq!(
            listed_after(&with_docker, GUEST_LIST_INTRO),
            backend_modules(Backend::Wasm)
        );
        assert_eq!(
            listed_after(&with_docker, DOCKER_LIST_INTRO),
            backend_modules(Backend::Docker)
        );
        assert!(
            with_docker.contains("imports xgboost or lightgbm or catboost runs instead"),
            "{with_docker}"
        );
        assert!(
            with_docker.contains("Not available anywhere: pyarrow, polars, torch"),
            "{with_docker}"
        );
        let analysis = analysis();
        let mut docker_request = request(&analysis, None);
        docker_request.docker = true;
        assert_eq!(build_prompt(&docker_request).system, with_docker);
    }

    #[test]
    fn the_system_prompt_states_the_guest_contract() {
        let system = build_prompt(&request(&analysis(), None)).system;
        for needle in [
            "WASI",
            "numpy",
            "pandas",
            "scipy",
            "sklearn",
            "statsmodels",
            "matplotlib",
            "seaborn",
            "No network",
            "No subprocess",
            "n_jobs=1",
            "xgboost",
            "lightgbm",
            "catboost",
            "torch",
            "/input",
            "read-only",
            "/output/submission.csv",
            "/tmp",
            "validation",
            "time and memory budget",
            "```python",
            "one complete Python script",
        ] {
            assert!(
                system.contains(needle),
                "the system prompt lacks {needle:?}"
            );
        }
    }

    #[test]
    fn the_user_prompt_carries_the_analysis_and_a_summary() {
        let analysis = analysis();
        let user = build_prompt(&request(&analysis, None)).user;
        let json = serde_json::to_string(&analysis).expect("the analysis serialises");
        assert!(user.contains(&json), "the compact JSON is in the prompt");
        for needle in [
            "Competition: titanic",
            "binary classification",
            "accuracy (higher is better)",
            "predicted class label",
            "Id column: `PassengerId`",
            "`Survived`",
            "/input/train.csv (59.8 KB): the training table, 891 rows",
            "/input/test.csv (28.0 KB): the table to predict, 418 rows",
            "/input/gender_submission.csv (3.2 KB): the sample submission",
            "/input/extra/notes.txt (12 B)",
            "the 418 ids of /input/gender_submission.csv",
            "Submission shape: single (one prediction column",
            "Target column in the training table: `Survived`.",
            "The first rows of the training table /input/train.csv:\n    PassengerId,Pclass,Age,Survived\n    PassengerId-1,Pclass-1,Age-1,Survived-1\n",
            "The first rows of the sample submission /input/gender_submission.csv:",
            "Write the complete script.",
        ] {
            assert!(
                user.contains(needle),
                "the user prompt lacks {needle:?}:\n{user}"
            );
        }
        assert!(!user.contains("previous script"));
    }

    #[test]
    fn prediction_kinds_are_worded_for_the_model() {
        let mut a = analysis();
        a.prediction = PredictionKind::Probability;
        assert!(prediction_text(&a).contains("probability of the positive class (`1`)"));
        a.task = TaskKind::Multiclass;
        a.target_columns = vec!["p_a".to_owned(), "p_b".to_owned(), "p_c".to_owned()];
        a.shape = SubmissionShape::ClassProbabilities {
            target: "kind".to_owned(),
            classes: vec!["a".to_owned(), "b".to_owned(), "c".to_owned()],
        };
        let text = prediction_text(&a);
        assert!(text.contains("one probability per class"), "{text}");
        assert!(text.contains("`p_b` = P(kind = `b`)"), "{text}");
        a.target_columns = vec!["t1".to_owned(), "t2".to_owned()];
        a.shape = SubmissionShape::MultiTarget {
            targets: a.target_columns.clone(),
        };
        assert!(
            prediction_text(&a).contains("one predicted value per target column, in `t1`, `t2`")
        );
        a.shape = SubmissionShape::MultiLabel {
            targets: a.target_columns.clone(),
        };
        assert!(prediction_text(&a).contains("the probability that it is 1"));
        a.shape = SubmissionShape::Ordinal {
            target: "rating".to_owned(),
        };
        assert!(prediction_text(&a).contains("cut points"));
        a.shape = SubmissionShape::Single {
            target: "SalePrice".to_owned(),
        };
        a.task = TaskKind::Regression;
        a.target_columns = vec!["SalePrice".to_owned()];
        assert_eq!(prediction_text(&a), "the predicted value in `SalePrice`");
        assert!(metric_text(Some(Metric::Rmsle)).contains("lower is better"));
        assert!(metric_text(None).contains("not stated"));
    }

    #[test]
    fn a_retry_carries_the_previous_code_and_the_error_tail() {
        let analysis = analysis();
        let previous = PreviousAttempt {
            code: "import pandas as pd\nprint(pd.read_csv('/input/train.csv').shape)\n".to_owned(),
            error: "Traceback ...\nKeyError: 'Cabin'\n__KS_ERROR__ {\"type\": \"KeyError\"}"
                .to_owned(),
        };
        let user = build_prompt(&request(&analysis, Some(previous.clone()))).user;
        assert!(user.contains("attempt 2"));
        assert!(user.contains(&previous.code));
        assert!(user.contains(&previous.error));
        assert!(user.contains("complete corrected script"));
        assert!(!user.contains("Write the complete script."));
    }

    #[test]
    fn long_errors_keep_their_end_and_long_code_its_start() {
        let analysis = analysis();
        let error = format!("{}THE-END", "noise line\n".repeat(5_000));
        let code = format!("START{}", "x = 1\n".repeat(20_000));
        let user = build_prompt(&request(&analysis, Some(PreviousAttempt { code, error }))).user;
        assert!(user.contains("THE-END"));
        assert!(user.contains("earlier characters cut ...]"));
        assert!(user.contains("START"));
        assert!(user.contains("more characters cut ...]"));
        assert!(
            user.len() < ERROR_TAIL_CHARS + PREVIOUS_CODE_CHARS + 10_000,
            "{}",
            user.len()
        );
    }

    #[test]
    fn fences_in_the_previous_attempt_cannot_close_the_prompts_own() {
        assert_eq!(fence_for("plain"), "```");
        assert_eq!(fence_for("a ``` b"), "````");
        assert_eq!(fence_for("`````"), "``````");
        let analysis = analysis();
        let previous = PreviousAttempt {
            code: "doc = '''\n```\n'''\n".to_owned(),
            error: "boom".to_owned(),
        };
        let user = build_prompt(&request(&analysis, Some(previous))).user;
        assert!(
            user.contains("````python\ndoc = '''\n```\n'''\n````"),
            "{user}"
        );
    }

    #[test]
    fn a_huge_analysis_is_slimmed() {
        let mut a = analysis();
        a.train.columns = (0..3_000)
            .map(|i| ColumnProfile {
                examples: vec!["a long example value".repeat(3); 5],
                ..column(&format!("feature_{i}"), ColumnType::Float)
            })
            .collect();
        a.description = Some("d".repeat(50_000));
        let json = analysis_json(&a);
        assert!(json.len() <= MAX_ANALYSIS_JSON_CHARS + 50);
        assert!(!json.contains("a long example value"));
        let summary = summary(&a);
        assert!(summary.contains("and 2960 more"));
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(size_text(1023), "1023 B");
        assert_eq!(size_text(1536), "1.5 KB");
        assert_eq!(size_text(5 << 30), "5.0 GB");
    }

    #[test]
    fn an_image_competition_says_where_the_pictures_are_without_listing_each() {
        let mut a = analysis();
        a.sample_submission.path = "sample_submission.csv".into();
        a.test = a.sample_submission.clone();
        let role = |folder: &str| crate::pipeline::analyse::ImageFolder {
            folder: folder.into(),
            column: "PassengerId".into(),
            suffix: ".png".into(),
            count: 1_000,
        };
        a.images = Some(ImageSet {
            train: role("train"),
            test: role("test"),
            extension: "png".into(),
            sizes: vec![[28, 28]],
        });
        for i in 0..1_000 {
            a.files.push(DataFile {
                path: format!("train/{i}.png"),
                bytes: 300,
            });
        }
        let text = summary(&a);
        assert!(
            text.contains(
                "Images: 1000 training images train/<PassengerId>.png and 1000 to predict \
                 test/<PassengerId>.png (png; sizes 28x28). Each training row's picture is \
                 /input/train/<PassengerId>.png; the rows to predict are the ids of \
                 sample_submission.csv (there is no test table)"
            ),
            "{text}"
        );
        assert!(text.contains("Pillow"), "{text}");
        assert!(!text.contains("train/17.png"), "{text}");
        assert!(!analysis_json(&a).contains("train/17.png"));
    }
}
