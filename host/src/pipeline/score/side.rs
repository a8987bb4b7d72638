//! Side tables keyed by the row id, in a holdout view: filtered the way the training table is.
//!
//! A table of extra columns per row (`train_meta.csv` beside `train.csv`, or one `details.csv`
//! for training and test rows alike) would undo the split if it were linked as it is: the
//! holdout rows' side rows would sit among the fit rows', and a label column in it would hand
//! over their answers. So in the view the fit rows keep their side rows, the holdout rows'
//! side rows move to the test role (the test side table of a train/test pair, or stay in a
//! table shared by both roles), and a side table carrying a target keeps the fit rows only.
//! The real test rows' side rows are dropped: the view has no such rows.

use std::collections::HashSet;
use std::path::Path;

use super::holdout::{HoldoutError, Table, write};
use crate::pipeline::analyse::tables::train_name;

/// The rows of the competition's training table by role in the view, as row ids.
pub(crate) struct RowIds<'a> {
    /// Ids of the rows the view trains on.
    pub fit: HashSet<&'a str>,
    /// Ids of the holdout rows, in the view's test role.
    pub held: HashSet<&'a str>,
}

/// Writes each of `paths` (tables of `source` keyed by `id_column`) into `view`, filtered by
/// `ids`; `targets` are the columns that hold the answers.
///
/// # Errors
/// When a table cannot be read or written, or lacks the id column.
pub(crate) fn write_row_tables(
    source: &Path,
    view: &Path,
    paths: &[String],
    id_column: &str,
    targets: &[String],
    ids: &RowIds<'_>,
) -> Result<(), HoldoutError> {
    let mut tables = Vec::new();
    for path in paths {
        let table = Table::read(&source.join(path))?;
        let key = table.column(id_column).ok_or_else(|| {
            HoldoutError::Columns(format!(
                "the side table {path} has no column {id_column:?} to filter it by"
            ))
        })?;
        // A table none of whose rows is a training row belongs to the test role.
        let test_only = !table.rows.iter().any(|r| {
            r.get(key)
                .is_some_and(|v| ids.fit.contains(v) || ids.held.contains(v))
        });
        tables.push((path.as_str(), table, key, test_only));
    }
    let paired: Vec<Option<usize>> = tables
        .iter()
        .map(|(path, _, _, test_only)| {
            let wanted = train_name(path).filter(|_| *test_only)?;
            tables.iter().position(|(p, _, _, t)| !t && *p == wanted)
        })
        .collect();
    for (i, (path, table, key, test_only)) in tables.iter().enumerate() {
        let carries_target: Vec<usize> = targets.iter().filter_map(|t| table.column(t)).collect();
        let rows: Vec<Vec<String>> = if *test_only {
            match paired[i] {
                // The holdout rows' side rows, from the training side, in this table's columns;
                // an answer column is left empty.
                Some(from) => {
                    let (_, train_side, train_key, _) = &tables[from];
                    let columns: Vec<Option<usize>> = table
                        .header
                        .iter()
                        .enumerate()
                        .map(|(c, name)| {
                            (!carries_target.contains(&c))
                                .then(|| train_side.column(name))
                                .flatten()
                        })
                        .collect();
                    train_side
                        .rows
                        .iter()
                        .filter(|r| r.get(*train_key).is_some_and(|v| ids.held.contains(v)))
                        .map(|r| {
                            columns
                                .iter()
                                .map(|c| c.and_then(|c| r.get(c)).unwrap_or("").to_owned())
                                .collect()
                        })
                        .collect()
                }
                None => {
                    tracing::info!(
                        table = %path,
                        "a test-side table without a training-side pair: the holdout rows have \
                         no side rows in the view"
                    );
                    Vec::new()
                }
            }
        } else {
            let is_pair = paired.contains(&Some(i));
            let keep_held = !is_pair && carries_target.is_empty();
            table
                .rows
                .iter()
                .filter(|r| {
                    r.get(*key)
                        .is_some_and(|v| ids.fit.contains(v) || (keep_held && ids.held.contains(v)))
                })
                .map(|r| r.iter().map(str::to_owned).collect())
                .collect()
        };
        write(&view.join(path), &table.header, &rows)?;
    }
    Ok(())
}
