//! Profiling CSV tables: row count and, per column, type, missing share, cardinality and
//! examples. Reads at most a bounded sample for the profile but counts every row.

use std::collections::HashSet;
use std::path::Path;

use super::AnalyseError;
use super::types::{ColumnProfile, ColumnType, TableProfile};

/// Rows read for column statistics; the row count still covers the whole file.
const SAMPLE_ROWS: usize = 20_000;
/// Distinct values tracked per column before counting stops.
const DISTINCT_CAP: usize = 10_000;
const EXAMPLES: usize = 5;
/// Data rows kept whole (cells cut to [`HEAD_CELL_CHARS`]) for the prompt.
const HEAD_ROWS: usize = 3;
/// Characters kept of one cell of a head row: a long text stays recognisable, not whole.
const HEAD_CELL_CHARS: usize = 60;
/// Cells kept of one head row: a table thousands of columns wide keeps its first ones.
const HEAD_CELLS: usize = 60;

#[derive(Default)]
struct ColumnStats {
    missing: u64,
    seen: u64,
    distinct: HashSet<String>,
    examples: Vec<String>,
    all_int: bool,
    all_float: bool,
    all_bool: bool,
    all_date: bool,
    total_len: u64,
}

impl ColumnStats {
    fn new() -> Self {
        Self {
            all_int: true,
            all_float: true,
            all_bool: true,
            all_date: true,
            ..Self::default()
        }
    }

    fn add(&mut self, raw: &str) {
        let value = raw.trim();
        if is_missing(value) {
            self.missing += 1;
            return;
        }
        self.seen += 1;
        self.total_len += value.len() as u64;
        self.all_int &= value.parse::<i64>().is_ok();
        self.all_float &= value.parse::<f64>().is_ok();
        self.all_bool &= matches!(value.to_ascii_lowercase().as_str(), "true" | "false");
        self.all_date &= looks_like_date(value);
        if self.distinct.len() < DISTINCT_CAP {
            self.distinct.insert(value.to_owned());
        }
        if self.examples.len() < EXAMPLES && !self.examples.iter().any(|e| e == value) {
            self.examples.push(value.to_owned());
        }
    }

    fn dtype(&self) -> ColumnType {
        if self.seen == 0 {
            return ColumnType::Float;
        }
        if self.all_bool {
            ColumnType::Boolean
        } else if self.all_int {
            ColumnType::Integer
        } else if self.all_float {
            ColumnType::Float
        } else if self.all_date {
            ColumnType::Datetime
        } else {
            let mean_len = self.total_len as f64 / self.seen as f64;
            let distinct_share = self.distinct.len() as f64 / self.seen as f64;
            if mean_len > 30.0 && distinct_share > 0.5 {
                ColumnType::Text
            } else {
                ColumnType::Categorical
            }
        }
    }
}

/// The spellings pandas reads as missing by default (the common ones).
pub(crate) fn is_missing(value: &str) -> bool {
    matches!(
        value,
        "" | "NA" | "N/A" | "NaN" | "nan" | "NULL" | "null" | "None" | "#N/A" | "-NaN" | "n/a"
    )
}

fn looks_like_date(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.len() >= 8
        && bytes[..4].iter().all(u8::is_ascii_digit)
        && matches!(bytes[4], b'-' | b'/')
        && bytes[5..7].iter().all(u8::is_ascii_digit)
        && matches!(bytes[7], b'-' | b'/')
}

/// Profiles the CSV at `dir/relative`.
pub(crate) fn profile_table(dir: &Path, relative: &str) -> Result<TableProfile, AnalyseError> {
    let path = dir.join(relative);
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_path(&path)
        .map_err(|e| AnalyseError::csv(relative, e))?;
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| AnalyseError::csv(relative, e))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_owned())
        .collect();
    if headers.is_empty() || headers.iter().all(String::is_empty) {
        return Err(AnalyseError::Invalid(format!(
            "{relative} has no header row"
        )));
    }
    let mut stats: Vec<ColumnStats> = headers.iter().map(|_| ColumnStats::new()).collect();
    let mut rows = 0u64;
    let mut head = Vec::new();
    let mut record = csv::StringRecord::new();
    while reader
        .read_record(&mut record)
        .map_err(|e| AnalyseError::csv(relative, e))?
    {
        if head.len() < HEAD_ROWS {
            head.push(
                record
                    .iter()
                    .take(HEAD_CELLS)
                    .map(|cell| crate::text::clip(cell, HEAD_CELL_CHARS))
                    .collect(),
            );
        }
        if rows < SAMPLE_ROWS as u64 {
            for (column, value) in stats.iter_mut().zip(record.iter()) {
                column.add(value);
            }
        }
        rows += 1;
    }
    let columns = headers
        .into_iter()
        .zip(stats)
        .map(|(name, stats)| {
            let sampled = (stats.seen + stats.missing).max(1);
            ColumnProfile {
                name,
                dtype: stats.dtype(),
                missing_fraction: stats.missing as f64 / sampled as f64,
                distinct: stats.distinct.len() as u64,
                examples: stats.examples,
            }
        })
        .collect();
    Ok(TableProfile {
        path: relative.to_owned(),
        rows,
        columns,
        head,
    })
}

/// Every non-missing value of one column (for the sample submission and the target).
pub(crate) fn column_values(
    dir: &Path,
    relative: &str,
    column: &str,
    limit: usize,
) -> Result<Vec<String>, AnalyseError> {
    let mut reader =
        csv::Reader::from_path(dir.join(relative)).map_err(|e| AnalyseError::csv(relative, e))?;
    let index = reader
        .headers()
        .map_err(|e| AnalyseError::csv(relative, e))?
        .iter()
        .position(|h| h.trim_start_matches('\u{feff}') == column)
        .ok_or_else(|| AnalyseError::Invalid(format!("{relative} has no column {column:?}")))?;
    let mut values = Vec::new();
    for record in reader.records().take(limit) {
        let record = record.map_err(|e| AnalyseError::csv(relative, e))?;
        if let Some(value) = record.get(index).map(str::trim).filter(|v| !is_missing(v)) {
            values.push(value.to_owned());
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infers_types_missing_and_cardinality() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("t.csv"),
            "id,age,name,flag,when,score\n1,3,ann,True,2020-01-01,0.5\n2,,bob,False,2020-01-02,1\n3,5,ann,true,2021/03/04,NA\n",
        )
        .expect("write");
        let table = profile_table(dir.path(), "t.csv").expect("profile");
        assert_eq!(table.rows, 3);
        let kinds: Vec<_> = table.columns.iter().map(|c| c.dtype).collect();
        assert_eq!(
            kinds,
            [
                ColumnType::Integer,
                ColumnType::Integer,
                ColumnType::Categorical,
                ColumnType::Boolean,
                ColumnType::Datetime,
                ColumnType::Float
            ]
        );
        assert!((table.columns[1].missing_fraction - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(table.columns[2].distinct, 2);
        assert_eq!(table.head.len(), 3);
        assert_eq!(table.head[1], ["2", "", "bob", "False", "2020-01-02", "1"]);
    }
}
