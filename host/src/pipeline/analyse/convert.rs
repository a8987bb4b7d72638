//! Spreadsheets as CSV: a competition that ships `train.xlsx` (or `.xls`, `.xlsm`, `.xlsb`,
//! `.ods`) is solved from a folder where each sheet is a CSV table.
//!
//! The analysis, the holdout view and the baseline all read CSV; converting once on the host
//! keeps them on one format, and it matters for the holdout: a view that linked the original
//! `train.xlsx` beside a filtered `train.csv` would hand the holdout rows' answers to the code.
//! So the converted folder holds every other file linked as it is and each spreadsheet only as
//! its CSV sheets. A workbook's first sheet becomes `<stem>.csv`, each further non-empty sheet
//! `<stem>.<sheet>.csv`. Cells are written as pandas would read them back: whole numbers
//! without a fraction, dates in ISO form, errors and empty cells as empty fields.
//!
//! Parquet and feather are not converted: the guest has no pyarrow to read them and the host no
//! parquet reader (see [`unreadable_table`]), so a competition whose tables are only in those
//! formats fails at analysis with a message saying so.

use std::path::{Path, PathBuf};

use calamine::{Data, Reader};

use super::{AnalyseError, list_files};

/// Spreadsheet extensions calamine reads.
const SPREADSHEETS: &[&str] = &["xlsx", "xlsm", "xlsb", "xls", "ods"];
/// Table formats neither the guest nor the host reads.
const UNREADABLE: &[&str] = &["parquet", "feather", "arrow"];
/// Largest spreadsheet file converted: its sheets are read whole into memory.
pub(crate) const MAX_SPREADSHEET_BYTES: u64 = 200 * 1024 * 1024;
/// Most cells of one sheet converted.
const MAX_SHEET_CELLS: usize = 50_000_000;

/// A competition folder with its spreadsheets as CSV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    /// The folder.
    pub dir: PathBuf,
    /// Each spreadsheet (relative path) and the CSV tables made of it.
    pub tables: Vec<(String, String)>,
}

fn extension(path: &str) -> String {
    Path::new(path)
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default()
}

/// Builds in `dest` (which must not exist) the folder of `source` with its spreadsheets as CSV
/// sheets and every other file linked (copied where a link is refused); `None` when `source`
/// has no spreadsheet, and nothing is made.
///
/// # Errors
/// When a spreadsheet cannot be read or is too large, or a file cannot be linked or written.
pub fn convert_spreadsheets(source: &Path, dest: &Path) -> Result<Option<Converted>, AnalyseError> {
    let files = list_files(source)?;
    let (sheets, others): (Vec<_>, Vec<_>) = files
        .iter()
        .partition(|f| SPREADSHEETS.contains(&extension(&f.path).as_str()));
    if sheets.is_empty() {
        return Ok(None);
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| AnalyseError::Write { path, source }
    };
    for file in &others {
        let (from, to) = (source.join(&file.path), dest.join(&file.path));
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        if std::fs::hard_link(&from, &to).is_err() {
            std::fs::copy(&from, &to).map_err(io(&to))?;
        }
    }
    let mut tables = Vec::new();
    for file in sheets {
        if file.bytes > MAX_SPREADSHEET_BYTES {
            return Err(AnalyseError::Invalid(format!(
                "{} is a spreadsheet of {} bytes, more than the {MAX_SPREADSHEET_BYTES} the host \
                 converts to CSV; convert it to CSV before solving",
                file.path, file.bytes
            )));
        }
        for (sheet, csv) in convert_one(source, dest, &file.path, &others)? {
            tracing::info!(spreadsheet = %file.path, %sheet, table = %csv, "spreadsheet sheet converted to CSV");
            tables.push((file.path.clone(), csv));
        }
    }
    Ok(Some(Converted {
        dir: dest.to_path_buf(),
        tables,
    }))
}

/// Writes the non-empty sheets of `relative`; returns (sheet, CSV path) of each written.
fn convert_one(
    source: &Path,
    dest: &Path,
    relative: &str,
    others: &[&super::DataFile],
) -> Result<Vec<(String, String)>, AnalyseError> {
    let unreadable = |message: String| {
        AnalyseError::Invalid(format!("cannot read the spreadsheet {relative}: {message}"))
    };
    let mut workbook = calamine::open_workbook_auto(source.join(relative))
        .map_err(|e| unreadable(e.to_string()))?;
    let stem = match relative.rfind('.') {
        Some(dot) => &relative[..dot],
        None => relative,
    };
    let mut written = Vec::new();
    for (index, sheet) in workbook.sheet_names().into_iter().enumerate() {
        let range = workbook
            .worksheet_range(&sheet)
            .map_err(|e| unreadable(format!("sheet {sheet:?}: {e}")))?;
        let (rows, columns) = range.get_size();
        if rows == 0 || columns == 0 {
            continue;
        }
        if rows.saturating_mul(columns) > MAX_SHEET_CELLS {
            return Err(unreadable(format!(
                "sheet {sheet:?} has {rows} x {columns} cells, more than {MAX_SHEET_CELLS}"
            )));
        }
        let name = if index == 0 {
            format!("{stem}.csv")
        } else {
            let clean: String = sheet
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .take(60)
                .collect();
            format!("{stem}.{clean}.csv")
        };
        // A CSV the competition ships under that name wins: it is the original.
        if others.iter().any(|f| f.path == name) || written.iter().any(|(_, w)| *w == name) {
            tracing::info!(spreadsheet = relative, %sheet, table = %name, "sheet not converted: the CSV exists");
            continue;
        }
        let path = dest.join(&name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| AnalyseError::Write {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let mut writer = csv::Writer::from_path(&path).map_err(|e| AnalyseError::csv(&name, e))?;
        for row in range.rows() {
            if row.iter().all(|c| matches!(c, Data::Empty)) {
                continue;
            }
            writer
                .write_record(row.iter().map(cell_text))
                .map_err(|e| AnalyseError::csv(&name, e))?;
        }
        writer.flush().map_err(|source| AnalyseError::Write {
            path: path.clone(),
            source,
        })?;
        written.push((sheet, name));
    }
    if written.is_empty() {
        return Err(unreadable("every sheet is empty".to_owned()));
    }
    Ok(written)
}

/// A cell as text pandas reads back as the same value.
fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty | Data::Error(_) => String::new(),
        Data::Int(i) => i.to_string(),
        // Spreadsheets store every number as a float: 3.0 was most likely typed as 3.
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Bool(b) => if *b { "True" } else { "False" }.to_owned(),
        Data::DateTime(d) => {
            let (year, month, day, hour, minute, second, milli) = d.to_ymd_hms_milli();
            if (hour, minute, second, milli) == (0, 0, 0, 0) {
                format!("{year:04}-{month:02}-{day:02}")
            } else {
                format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}")
            }
        }
    }
}

/// The message for a competition whose `role` table (e.g. "training table") is only in a
/// format nothing here reads, if `files` show one.
pub(crate) fn unreadable_table(
    files: &[super::DataFile],
    names: &[&str],
    role: &str,
) -> Option<String> {
    let found = files.iter().find(|f| {
        let stem = Path::new(&f.path)
            .file_stem()
            .map(|s| s.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        UNREADABLE.contains(&extension(&f.path).as_str())
            && names
                .iter()
                .any(|n| stem.starts_with(n) || stem.ends_with(n))
    })?;
    Some(format!(
        "the {role} is {path}, a {kind} file: the WASI guest's pandas cannot read it (it has no \
         pyarrow) and the host does not convert {kind} to CSV; convert it to CSV (for example \
         with pandas and pyarrow: pd.read_parquet(path).to_csv(...)) and solve the folder",
        path = found.path,
        kind = extension(&found.path),
    ))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn folder(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (path, body) in files {
            std::fs::write(dir.path().join(Path::new(path)), body).expect("write");
        }
        dir
    }

    #[test]
    fn a_parquet_training_table_fails_at_analysis_saying_why() {
        let source = folder(&[
            ("train.parquet", b"PAR1...."),
            ("test.csv", b"id,x\n2,1\n"),
            ("sample_submission.csv", b"id,y\n2,0\n"),
        ]);
        let error = super::super::analyse(
            source.path(),
            "p",
            &super::super::CompetitionText::default(),
        )
        .expect_err("parquet")
        .to_string();
        assert!(
            error.starts_with(
                "the training table is train.parquet, a parquet file: the WASI \
                               guest's pandas cannot read it (it has no pyarrow)"
            ),
            "{error}"
        );
    }
}
