//! A submission read once for the host's use: its rows by id and where its id and prediction
//! columns are. Scoring joins it to the holdout's answers by id; a blend combines several by id.

use std::collections::HashMap;

use crate::text::quote;

/// Why a submission could not be read as a table of the expected columns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReadError(pub String);

/// A submission's header, rows (cells trimmed), and where the id and the prediction columns
/// are.
#[derive(Debug, Clone)]
pub struct Submission {
    pub(super) header: Vec<String>,
    pub(super) rows: Vec<Vec<String>>,
    pub(super) id_at: usize,
    pub(super) at: Vec<usize>,
    pub(super) by_id: HashMap<String, usize>,
}

impl Submission {
    /// Reads a validated submission with its `id_column` and prediction `columns`.
    ///
    /// # Errors
    /// [`ReadError`] when it is not CSV or lacks a column.
    pub fn read(bytes: &[u8], id_column: &str, columns: &[String]) -> Result<Self, ReadError> {
        let csv_error = |e: csv::Error| ReadError(e.to_string());
        let mut reader = csv::Reader::from_reader(bytes);
        let header: Vec<String> = reader
            .headers()
            .map_err(csv_error)?
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').trim().to_owned())
            .collect();
        let find = |name: &str| {
            header
                .iter()
                .position(|h| h == name)
                .ok_or_else(|| ReadError(format!("no column {}", quote(name))))
        };
        let id_at = find(id_column)?;
        let at = columns
            .iter()
            .map(|c| find(c))
            .collect::<Result<Vec<_>, _>>()?;
        let mut rows = Vec::new();
        let mut by_id = HashMap::new();
        for record in reader.records() {
            let row: Vec<String> = record
                .map_err(csv_error)?
                .iter()
                .map(|c| c.trim().to_owned())
                .collect();
            let id = row.get(id_at).cloned().unwrap_or_default();
            by_id.insert(id, rows.len());
            rows.push(row);
        }
        Ok(Self {
            header,
            rows,
            id_at,
            at,
            by_id,
        })
    }

    /// The row of `id`, if the submission has one.
    pub(super) fn row(&self, id: &str) -> Option<&Vec<String>> {
        self.by_id.get(id).and_then(|&i| self.rows.get(i))
    }

    /// The prediction cells of the row of `id`, in the columns' order.
    pub(super) fn predictions(&self, id: &str) -> Option<Vec<String>> {
        let row = self.row(id)?;
        Some(
            self.at
                .iter()
                .map(|&i| row.get(i).cloned().unwrap_or_default())
                .collect(),
        )
    }
}
