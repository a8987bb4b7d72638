//! Spreadsheets and parquet as CSV: a competition that ships `train.xlsx` (or `.xls`, `.xlsm`,
//! `.xlsb`, `.ods`) or `train.parquet` is solved from a folder where each is a CSV table.
//!
//! The analysis, the holdout view and the baseline all read CSV, and the guest's pandas cannot
//! read parquet at all (it has no pyarrow); converting once on the host keeps everything on one
//! format, and it matters for the holdout: a view that linked the original `train.xlsx` beside
//! a filtered `train.csv` would hand the holdout rows' answers to the code. So the converted
//! folder holds every other file linked as it is and each converted file only as its CSV
//! tables. A workbook's first sheet becomes `<stem>.csv`, each further non-empty sheet
//! `<stem>.<sheet>.csv`; a parquet file `<stem>.csv`. Cells are written as pandas would read them
//! back: whole numbers without a fraction, dates in ISO form, errors, nulls and empty cells as
//! empty fields.
//!
//! Feather and Arrow IPC files are not converted (see [`unreadable_table`]): a competition
//! whose tables are only in those formats fails at analysis with a message saying so.

use std::path::{Path, PathBuf};

use calamine::{Data, Reader};

use super::{AnalyseError, list_files};

/// Spreadsheet extensions calamine reads.
const SPREADSHEETS: &[&str] = &["xlsx", "xlsm", "xlsb", "xls", "ods"];
/// Parquet, read with the `parquet` crate's row API.
const PARQUET: &str = "parquet";
/// Table formats neither the guest nor the host reads.
const UNREADABLE: &[&str] = &["feather", "arrow"];
/// Largest spreadsheet file converted: its sheets are read whole into memory.
pub(crate) const MAX_SPREADSHEET_BYTES: u64 = 200 * 1024 * 1024;
/// Most cells of one sheet or parquet file converted.
const MAX_SHEET_CELLS: usize = 100_000_000;

/// A competition folder with its spreadsheets and parquet files as CSV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    /// The folder.
    pub dir: PathBuf,
    /// Each converted file (relative path) and the CSV tables made of it.
    pub tables: Vec<(String, String)>,
}

fn extension(path: &str) -> String {
    Path::new(path)
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default()
}

/// Builds in `dest` (which must not exist) the folder of `source` with its spreadsheets and
/// parquet files as CSV tables and every other file linked (copied where a link is refused);
/// `None` when `source` has neither, and nothing is made.
///
/// # Errors
/// When a spreadsheet or parquet file cannot be read or is too large, or a file cannot be
/// linked or written.
pub fn convert_tables(source: &Path, dest: &Path) -> Result<Option<Converted>, AnalyseError> {
    let files = list_files(source)?;
    let (sheets, others): (Vec<_>, Vec<_>) = files.iter().partition(|f| {
        let extension = extension(&f.path);
        SPREADSHEETS.contains(&extension.as_str()) || extension == PARQUET
    });
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
        if extension(&file.path) == PARQUET {
            let csv = convert_parquet(source, dest, &file.path, &others)?;
            tracing::info!(parquet = %file.path, table = %csv, "parquet file converted to CSV");
            tables.push((file.path.clone(), csv));
            continue;
        }
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

/// Writes the parquet file `relative` as `<stem>.csv`; returns the CSV's path.
fn convert_parquet(
    source: &Path,
    dest: &Path,
    relative: &str,
    others: &[&super::DataFile],
) -> Result<String, AnalyseError> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let unreadable = |message: String| {
        AnalyseError::Invalid(format!(
            "cannot read the parquet file {relative}: {message}"
        ))
    };
    let stem = relative.strip_suffix(".parquet").unwrap_or(relative);
    let name = format!("{stem}.csv");
    if others.iter().any(|f| f.path == name) {
        return Err(AnalyseError::Invalid(format!(
            "{relative} and {name} are both there: which one is the table is not clear; keep one"
        )));
    }
    let file = std::fs::File::open(source.join(relative)).map_err(|e| unreadable(e.to_string()))?;
    let reader = SerializedFileReader::new(file).map_err(|e| unreadable(e.to_string()))?;
    let meta = reader.metadata().file_metadata();
    let header: Vec<String> = meta
        .schema_descr()
        .root_schema()
        .get_fields()
        .iter()
        .map(|f| f.name().to_owned())
        .collect();
    let rows = usize::try_from(meta.num_rows()).unwrap_or(usize::MAX);
    if rows.saturating_mul(header.len()) > MAX_SHEET_CELLS {
        return Err(unreadable(format!(
            "{rows} rows x {} columns, more than {MAX_SHEET_CELLS} cells",
            header.len()
        )));
    }
    let path = dest.join(&name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| AnalyseError::Write {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    let mut writer = csv::Writer::from_path(&path).map_err(|e| AnalyseError::csv(&name, e))?;
    writer
        .write_record(&header)
        .map_err(|e| AnalyseError::csv(&name, e))?;
    let rows = reader
        .get_row_iter(None)
        .map_err(|e| unreadable(e.to_string()))?;
    for row in rows {
        let row = row.map_err(|e| unreadable(e.to_string()))?;
        writer
            .write_record(row.get_column_iter().map(|(_, field)| field_text(field)))
            .map_err(|e| AnalyseError::csv(&name, e))?;
    }
    writer.flush().map_err(|source| AnalyseError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(name)
}

/// A parquet value as text pandas reads back as the same value.
fn field_text(field: &parquet::record::Field) -> String {
    use parquet::record::Field;
    match field {
        Field::Null => String::new(),
        Field::Bool(b) => if *b { "True" } else { "False" }.to_owned(),
        Field::Byte(v) => v.to_string(),
        Field::Short(v) => v.to_string(),
        Field::Int(v) => v.to_string(),
        Field::Long(v) => v.to_string(),
        Field::UByte(v) => v.to_string(),
        Field::UShort(v) => v.to_string(),
        Field::UInt(v) => v.to_string(),
        Field::ULong(v) => v.to_string(),
        Field::Float16(v) => finite(f64::from(v.to_f32())),
        Field::Float(v) => finite(f64::from(*v)),
        Field::Double(v) => finite(*v),
        Field::Str(s) => s.clone(),
        Field::Bytes(b) => String::from_utf8_lossy(b.data()).into_owned(),
        // Dates, times, timestamps and decimals as the crate writes them (ISO dates).
        other => other.to_string(),
    }
}

/// A float as text; NaN (parquet's other missing value) as an empty field.
fn finite(value: f64) -> String {
    if value.is_nan() {
        String::new()
    } else {
        value.to_string()
    }
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
         with pandas and pyarrow: pd.read_feather(path).to_csv(...)) and solve the folder",
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

    /// Writes a parquet file of an id, a float and a text column (zstd-compressed), with nulls.
    fn write_parquet(path: &Path) {
        use parquet::basic::{Compression, ZstdLevel};
        use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
        use parquet::file::properties::WriterProperties;
        use parquet::file::writer::SerializedFileWriter;
        use parquet::schema::parser::parse_message_type;
        use std::sync::Arc;
        let schema = "message t { REQUIRED INT64 id; OPTIONAL DOUBLE x; \
                      OPTIONAL BYTE_ARRAY colour (UTF8); }";
        let schema = Arc::new(parse_message_type(schema).expect("schema"));
        let properties = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .build();
        let file = std::fs::File::create(path).expect("create");
        let mut writer =
            SerializedFileWriter::new(file, schema, Arc::new(properties)).expect("writer");
        let mut group = writer.next_row_group().expect("row group");
        let mut column = group.next_column().expect("id").expect("id");
        column
            .typed::<Int64Type>()
            .write_batch(&[1, 2, 3], None, None)
            .expect("ids");
        column.close().expect("close");
        let mut column = group.next_column().expect("x").expect("x");
        column
            .typed::<DoubleType>()
            .write_batch(&[1.5, 3.0], Some(&[1, 0, 1]), None)
            .expect("x");
        column.close().expect("close");
        let mut column = group.next_column().expect("colour").expect("colour");
        let colours = [ByteArray::from("red"), ByteArray::from("a, b")];
        column
            .typed::<ByteArrayType>()
            .write_batch(&colours, Some(&[1, 1, 0]), None)
            .expect("colour");
        column.close().expect("close");
        group.close().expect("close");
        writer.close().expect("close");
    }

    #[test]
    fn a_parquet_table_becomes_a_csv_and_is_not_linked() {
        let source = folder(&[
            ("test.csv", b"id,x,colour\n4,2,red\n"),
            ("sample_submission.csv", b"id,y\n4,0\n"),
        ]);
        write_parquet(&source.path().join("train.parquet"));
        let out = tempfile::tempdir().expect("tempdir");
        let dest = out.path().join("tables");
        let converted = super::convert_tables(source.path(), &dest)
            .expect("converted")
            .expect("a parquet file was there");
        assert_eq!(
            converted.tables,
            [("train.parquet".to_owned(), "train.csv".to_owned())]
        );
        assert_eq!(
            std::fs::read_to_string(dest.join("train.csv")).expect("csv"),
            "id,x,colour\n1,1.5,red\n2,,\"a, b\"\n3,3,\n"
        );
        assert!(!dest.join("train.parquet").exists());
        assert!(dest.join("test.csv").exists());
        // Not parquet after all: a clear error.
        let broken = folder(&[("train.parquet", b"PAR1 but not really")]);
        let error = super::convert_tables(broken.path(), &out.path().join("b"))
            .expect_err("broken")
            .to_string();
        assert!(
            error.starts_with("cannot read the parquet file train.parquet: "),
            "{error}"
        );
    }

    #[test]
    fn a_feather_training_table_fails_at_analysis_saying_why() {
        let source = folder(&[
            ("train.feather", b"ARROW1.."),
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
                "the training table is train.feather, a feather file: the WASI \
                               guest's pandas cannot read it (it has no pyarrow)"
            ),
            "{error}"
        );
    }
}
