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

/// Whether the competition in `dir` has a spreadsheet to convert.
///
/// # Errors
/// When the folder cannot be listed.
pub fn has_spreadsheets(dir: &Path) -> Result<bool, AnalyseError> {
    Ok(list_files(dir)?
        .iter()
        .any(|f| SPREADSHEETS.contains(&extension(&f.path).as_str())))
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
pub(crate) mod tests {
    use std::io::Write as _;

    use super::*;

    /// A cell reference's column letters: 0 is `A`, 26 is `AA`.
    fn column_letters(mut index: usize) -> String {
        let mut letters = Vec::new();
        loop {
            letters.push(char::from(
                b'A' + u8::try_from(index % 26).expect("a letter"),
            ));
            if index < 26 {
                break;
            }
            index = index / 26 - 1;
        }
        letters.iter().rev().collect()
    }

    fn escape(text: &str) -> String {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    }

    /// The bytes of an `.xlsx` workbook of `sheets` (name, rows of cells); a cell that parses
    /// as a number is stored as one, any other as an inline string, an empty one left out.
    pub(crate) fn xlsx(sheets: &[(&str, Vec<Vec<&str>>)]) -> Vec<u8> {
        const MAIN: &str = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
        const RELS: &str = "http://schemas.openxmlformats.org/package/2006/relationships";
        const DOC: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
        let mut overrides = String::new();
        let (mut listed, mut rels) = (String::new(), String::new());
        let mut parts = Vec::new();
        for (n, (name, rows)) in sheets.iter().enumerate() {
            let n = n + 1;
            overrides.push_str(&format!(
                "<Override PartName=\"/xl/worksheets/sheet{n}.xml\" ContentType=\"application/\
                 vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml\"/>"
            ));
            listed.push_str(&format!(
                "<sheet name=\"{}\" sheetId=\"{n}\" r:id=\"rId{n}\"/>",
                escape(name)
            ));
            rels.push_str(&format!(
                "<Relationship Id=\"rId{n}\" Type=\"{DOC}/worksheet\" \
                 Target=\"worksheets/sheet{n}.xml\"/>"
            ));
            let mut data = String::new();
            for (r, row) in rows.iter().enumerate() {
                data.push_str(&format!("<row r=\"{}\">", r + 1));
                for (c, cell) in row.iter().enumerate() {
                    let at = format!("{}{}", column_letters(c), r + 1);
                    if cell.is_empty() {
                        continue;
                    } else if cell.parse::<f64>().is_ok() {
                        data.push_str(&format!("<c r=\"{at}\"><v>{cell}</v></c>"));
                    } else {
                        data.push_str(&format!(
                            "<c r=\"{at}\" t=\"inlineStr\"><is><t>{}</t></is></c>",
                            escape(cell)
                        ));
                    }
                }
                data.push_str("</row>");
            }
            parts.push((
                format!("xl/worksheets/sheet{n}.xml"),
                format!("<worksheet xmlns=\"{MAIN}\"><sheetData>{data}</sheetData></worksheet>"),
            ));
        }
        parts.push((
            "[Content_Types].xml".into(),
            format!(
                "<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\
                 <Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-\
                 package.relationships+xml\"/><Default Extension=\"xml\" \
                 ContentType=\"application/xml\"/><Override PartName=\"/xl/workbook.xml\" \
                 ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.\
                 sheet.main+xml\"/>{overrides}</Types>"
            ),
        ));
        parts.push((
            "_rels/.rels".into(),
            format!(
                "<Relationships xmlns=\"{RELS}\"><Relationship Id=\"rId1\" \
                 Type=\"{DOC}/officeDocument\" Target=\"xl/workbook.xml\"/></Relationships>"
            ),
        ));
        parts.push((
            "xl/workbook.xml".into(),
            format!(
                "<workbook xmlns=\"{MAIN}\" xmlns:r=\"{DOC}\"><sheets>{listed}</sheets></workbook>"
            ),
        ));
        parts.push((
            "xl/_rels/workbook.xml.rels".into(),
            format!("<Relationships xmlns=\"{RELS}\">{rels}</Relationships>"),
        ));
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (path, body) in parts {
            zip.start_file(path, zip::write::SimpleFileOptions::default())
                .expect("zip entry");
            zip.write_all(body.as_bytes()).expect("zip write");
        }
        zip.finish().expect("zip").into_inner()
    }

    fn folder(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (path, body) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, body).expect("write");
        }
        dir
    }

    #[test]
    fn each_sheet_becomes_a_csv_and_the_workbook_is_not_linked() {
        let book = xlsx(&[
            (
                "train",
                vec![
                    vec!["id", "size", "colour", "y"],
                    vec!["1", "1.5", "red", "0"],
                    vec!["2", "", "blue", "1"],
                    vec!["3", "3", "a, \"quoted\" one", "1"],
                ],
            ),
            (
                "notes & more",
                vec![vec!["key", "note"], vec!["k1", "first"]],
            ),
            ("empty", vec![]),
        ]);
        let source = folder(&[
            ("data/train.xlsx", &book),
            ("test.csv", b"id,size,colour\n4,2,red\n"),
            ("sample_submission.csv", b"id,y\n4,0\n"),
        ]);
        let out = tempfile::tempdir().expect("tempdir");
        let dest = out.path().join("tables");
        let converted = convert_spreadsheets(source.path(), &dest)
            .expect("converted")
            .expect("a spreadsheet was there");
        assert_eq!(
            converted.tables,
            [
                ("data/train.xlsx".to_owned(), "data/train.csv".to_owned()),
                (
                    "data/train.xlsx".to_owned(),
                    "data/train.notes___more.csv".to_owned()
                ),
            ]
        );
        assert_eq!(
            std::fs::read_to_string(dest.join("data/train.csv")).expect("csv"),
            "id,size,colour,y\n1,1.5,red,0\n2,,blue,1\n3,3,\"a, \"\"quoted\"\" one\",1\n"
        );
        assert_eq!(
            std::fs::read_to_string(dest.join("data/train.notes___more.csv")).expect("csv"),
            "key,note\nk1,first\n"
        );
        assert!(!dest.join("data/train.xlsx").exists());
        assert_eq!(
            std::fs::read(dest.join("test.csv")).expect("linked"),
            b"id,size,colour\n4,2,red\n"
        );
        // The analysis reads the converted folder as any other.
        let a = super::super::analyse(&dest, "x", &super::super::CompetitionText::default())
            .expect("analysis");
        assert_eq!(a.train.path, "data/train.csv");
        assert_eq!(a.train.rows, 3);
        assert_eq!(a.tables.side[0].table.path, "data/train.notes___more.csv");
        // Without a spreadsheet nothing is made.
        let plain = folder(&[("train.csv", b"id,y\n1,0\n")]);
        assert_eq!(
            convert_spreadsheets(plain.path(), &out.path().join("none")).expect("listed"),
            None
        );
        assert!(!out.path().join("none").exists());
    }

    #[test]
    fn a_broken_or_empty_spreadsheet_is_a_clear_error() {
        let source = folder(&[("train.xlsx", b"not a zip at all")]);
        let out = tempfile::tempdir().expect("tempdir");
        let error = convert_spreadsheets(source.path(), &out.path().join("t"))
            .expect_err("unreadable")
            .to_string();
        assert!(
            error.starts_with("cannot read the spreadsheet train.xlsx: "),
            "{error}"
        );
        let source = folder(&[("train.xlsx", &xlsx(&[("only", vec![])]))]);
        let error = convert_spreadsheets(source.path(), &out.path().join("u"))
            .expect_err("empty")
            .to_string();
        assert_eq!(
            error,
            "cannot read the spreadsheet train.xlsx: every sheet is empty"
        );
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
