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

/// Joins the submissions a candidate wrote in each fold's view into one over every fold's
/// rows, in the first one's column order (a later one may order its columns otherwise).
///
/// # Errors
/// [`ReadError`] when a part is not CSV or lacks a column of the first.
pub fn join(parts: &[&[u8]]) -> Result<Vec<u8>, ReadError> {
    let csv_error = |e: csv::Error| ReadError(e.to_string());
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut header: Option<Vec<String>> = None;
    for (fold, part) in parts.iter().enumerate() {
        let mut reader = csv::Reader::from_reader(*part);
        let names: Vec<String> = reader
            .headers()
            .map_err(csv_error)?
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').trim().to_owned())
            .collect();
        let first = match &header {
            Some(first) => first,
            None => {
                writer.write_record(&names).map_err(csv_error)?;
                header.insert(names.clone())
            }
        };
        let order = first
            .iter()
            .map(|name| {
                names.iter().position(|n| n == name).ok_or_else(|| {
                    ReadError(format!(
                        "the submission of fold {} has no column {}",
                        fold + 1,
                        quote(name)
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        for record in reader.records() {
            let record = record.map_err(csv_error)?;
            writer
                .write_record(order.iter().map(|&at| record.get(at).unwrap_or("")))
                .map_err(csv_error)?;
        }
    }
    writer
        .into_inner()
        .map_err(|e| ReadError(e.error().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_join_in_the_first_ones_column_order() {
        let joined = join(&[
            b"id,a,b\n1,x,0.5\n2,y,0.25\n".as_slice(),
            b"\xef\xbb\xbfb,id,a\n0.75,3,z\n".as_slice(),
        ])
        .expect("joined");
        assert_eq!(
            String::from_utf8(joined).expect("text"),
            "id,a,b\n1,x,0.5\n2,y,0.25\n3,z,0.75\n"
        );
        let read = Submission::read(
            &join(&[b"id,a\n1,x\n".as_slice(), b"a,id\ny,2\n".as_slice()]).expect("joined"),
            "id",
            &["a".to_owned()],
        )
        .expect("read");
        assert_eq!(read.predictions("2"), Some(vec!["y".to_owned()]));
    }

    #[test]
    fn a_fold_without_a_column_is_an_error_that_names_it() {
        let err = join(&[b"id,a\n1,x\n".as_slice(), b"id,b\n2,y\n".as_slice()])
            .expect_err("a column is missing");
        assert_eq!(err.0, "the submission of fold 2 has no column \"a\"");
    }
}
