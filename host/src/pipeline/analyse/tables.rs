//! Side tables: every table of a competition beyond train, test and sample submission, with
//! its id-like columns and how it joins the training table.
//!
//! Kaggle ships many competitions as several tables (a table of stores beside the sales, one
//! of past loans per applicant). Their columns only help a model once they are joined onto the
//! training and test rows, and a join is only right when its kind is: a lookup (each training
//! row matches at most one side row) joins as it is, a one-to-many table needs aggregates. The
//! kind is read from the data, never the names: the key's values are counted on both sides.

use std::collections::HashSet;
use std::path::Path;

use super::profile::{self, is_missing};
use super::types::{ColumnType, DataFile, LinkKind, SideTable, TableLink, TableProfile, Tables};

/// Side tables profiled at most; more are listed as files only.
pub(crate) const MAX_SIDE_TABLES: usize = 20;
/// Key values read per column when counting matches and repeats.
const MAX_KEY_VALUES: usize = 5_000_000;

/// Whether `name` reads as an identifier: `id`, `..._id`, `id_...`, `PassengerId`, `SK_ID_CURR`.
pub(crate) fn id_like_name(name: &str) -> bool {
    let trimmed = name.trim();
    let lower = trimmed.to_lowercase();
    let words = || lower.split(|c: char| !c.is_ascii_alphanumeric());
    lower == "id"
        || words().any(|w| w == "id" || w == "key")
        || trimmed.ends_with("Id")
        || trimmed.ends_with("ID")
}

/// The training-side table a test-side table is the pair of: `train_meta.csv` for
/// `test_meta.csv`, by the same name with "train" for "test" in any case.
pub(crate) fn train_name(path: &str) -> Option<String> {
    let swapped = path
        .replace("test", "train")
        .replace("Test", "Train")
        .replace("TEST", "TRAIN");
    (swapped != path).then_some(swapped)
}

/// The id-like columns of `table`: named like an identifier and holding whole numbers or
/// short codes (never real numbers or free text).
pub(crate) fn keys(table: &TableProfile) -> Vec<String> {
    table
        .columns
        .iter()
        .filter(|c| id_like_name(&c.name))
        .filter(|c| matches!(c.dtype, ColumnType::Integer | ColumnType::Categorical))
        .map(|c| c.name.clone())
        .collect()
}

/// Reads every side table among `files` (CSV files other than `skip`) and how each joins
/// `train`; a side table that cannot be read is logged and left out, since the task does not
/// depend on it.
pub(crate) fn find(
    dir: &Path,
    files: &[DataFile],
    skip: &[&str],
    train: &TableProfile,
    test: &TableProfile,
    id_column: &str,
) -> Tables {
    let mut side = Vec::new();
    let candidates = files
        .iter()
        .filter(|f| f.path.to_lowercase().ends_with(".csv"))
        .filter(|f| !skip.contains(&f.path.as_str()));
    for file in candidates {
        if side.len() == MAX_SIDE_TABLES {
            tracing::info!(
                file = %file.path,
                "more than {MAX_SIDE_TABLES} side tables: the rest are not profiled"
            );
            break;
        }
        match side_table(dir, &file.path, train, test, id_column) {
            Ok(table) => {
                log(&table);
                side.push(table);
            }
            Err(error) => {
                tracing::warn!(file = %file.path, %error, "side table left out: it cannot be read");
            }
        }
    }
    Tables {
        train_keys: keys(train),
        test_keys: keys(test),
        side,
        converted: Vec::new(),
    }
}

fn log(table: &SideTable) {
    let columns: Vec<String> = table
        .table
        .columns
        .iter()
        .map(|c| format!("{}:{}", c.name, dtype_name(c.dtype)))
        .collect();
    match &table.link {
        Some(link) => tracing::info!(
            table = %table.table.path,
            rows = table.table.rows,
            columns = %crate::text::clip(&columns.join(","), 400),
            key = %link.key,
            kind = link.kind.name(),
            row_id = link.row_id,
            train_matched = link.train_matched,
            test_matched = link.test_matched,
            "side table joins the training table"
        ),
        None => tracing::info!(
            table = %table.table.path,
            rows = table.table.rows,
            columns = %crate::text::clip(&columns.join(","), 400),
            keys = ?table.keys,
            "side table shares no id-like column with the training table"
        ),
    }
}

/// A column type's name as the configuration spells it.
pub(crate) fn dtype_name(dtype: ColumnType) -> &'static str {
    match dtype {
        ColumnType::Integer => "integer",
        ColumnType::Float => "float",
        ColumnType::Boolean => "boolean",
        ColumnType::Categorical => "categorical",
        ColumnType::Text => "text",
        ColumnType::Datetime => "datetime",
    }
}

fn side_table(
    dir: &Path,
    path: &str,
    train: &TableProfile,
    test: &TableProfile,
    id_column: &str,
) -> Result<SideTable, super::AnalyseError> {
    let table = profile::profile_table(dir, path)?;
    let keys = keys(&table);
    let in_train = |name: &str| train.columns.iter().any(|c| c.name == name);
    // The row id first: a table keyed by it is the most direct join there is.
    let mut shared: Vec<&String> = keys.iter().filter(|k| in_train(k)).collect();
    shared.sort_by_key(|k| k.as_str() != id_column);
    let link = match shared.first() {
        Some(key) => Some(link(dir, &table, train, test, key, id_column)?),
        None => None,
    };
    Ok(SideTable { table, keys, link })
}

fn link(
    dir: &Path,
    side: &TableProfile,
    train: &TableProfile,
    test: &TableProfile,
    key: &str,
    id_column: &str,
) -> Result<TableLink, super::AnalyseError> {
    let side_values = profile::column_values(dir, &side.path, key, MAX_KEY_VALUES)?;
    let train_values = profile::column_values(dir, &train.path, key, MAX_KEY_VALUES)?;
    let side_set: HashSet<&str> = side_values.iter().map(String::as_str).collect();
    let side_unique = side_set.len() == side_values.len();
    let train_unique = train_values.iter().collect::<HashSet<_>>().len() == train_values.len();
    let kind = match (side_unique, train_unique) {
        (false, _) => LinkKind::OneToMany,
        (true, true) => LinkKind::OneToOne,
        (true, false) => LinkKind::ManyToOne,
    };
    let matched = |values: &[String]| {
        let found = values
            .iter()
            .filter(|v| !is_missing(v) && side_set.contains(v.as_str()))
            .count();
        if values.is_empty() {
            0.0
        } else {
            found as f64 / values.len() as f64
        }
    };
    let test_matched = if test.columns.iter().any(|c| c.name == key) {
        matched(&profile::column_values(
            dir,
            &test.path,
            key,
            MAX_KEY_VALUES,
        )?)
    } else {
        0.0
    };
    Ok(TableLink {
        key: key.to_owned(),
        kind,
        row_id: key == id_column,
        train_matched: matched(&train_values),
        test_matched,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_table_pairs_with_its_training_table_by_name() {
        assert_eq!(
            train_name("data/test_meta.csv").as_deref(),
            Some("data/train_meta.csv")
        );
        assert_eq!(
            train_name("TestExtra.csv").as_deref(),
            Some("TrainExtra.csv")
        );
        assert_eq!(train_name("details.csv"), None);
    }

    #[test]
    fn identifier_names() {
        for name in [
            "id",
            "Id",
            "store_id",
            "PassengerId",
            "SK_ID_CURR",
            "item-key",
            "userID",
        ] {
            assert!(id_like_name(name), "{name}");
        }
        for name in ["paid", "valid", "grid", "idea", "width", "kidney"] {
            assert!(!id_like_name(name), "{name}");
        }
    }
}
