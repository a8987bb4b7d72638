//! Which side tables the baseline joins onto train and test, and the feature columns each adds.
//!
//! Only a table the analysis found sharing a key with both train and test is joined, and only
//! by a join its kind allows: a lookup's columns as they are, a one-to-many table's numbers as
//! per-key mean, minimum and maximum plus a row count. A column that names a target, and the
//! key columns themselves, never become features: a table of labels beside the training rows
//! would otherwise hand the model its own answers, and the test rows have none.

use serde_json::json;

use crate::pipeline::analyse::tables::train_name;
use crate::pipeline::analyse::{ColumnType, CompetitionAnalysis, SideTable};

/// Side columns one table adds at most.
const MAX_SIDE_COLUMNS: usize = 40;

/// The joins (the template's `CONFIG["joins"]`) and the feature columns they add, with their
/// types, in order.
pub(crate) fn plan(
    analysis: &CompetitionAnalysis,
) -> (Vec<serde_json::Value>, Vec<(String, ColumnType)>) {
    let side = &analysis.tables.side;
    let targets = analysis.shape.train_targets();
    let has = |table: &crate::pipeline::analyse::TableProfile, name: &str| {
        table.columns.iter().any(|c| c.name == name)
    };
    let mut taken: Vec<String> = analysis
        .train
        .columns
        .iter()
        .chain(&analysis.test.columns)
        .map(|c| c.name.clone())
        .collect();
    let (mut joins, mut added) = (Vec::new(), Vec::new());
    for table in side {
        let Some(link) = &table.link else { continue };
        // A test-side table joins with its training-side pair, as one table.
        if is_test_side_of_a_pair(table, side) || !has(&analysis.test, &link.key) {
            continue;
        }
        if link.train_matched <= 0.0 {
            continue;
        }
        let pair = pair_of(table, side);
        let stem = stem(&table.table.path);
        let usable = table
            .table
            .columns
            .iter()
            .filter(|c| c.name != link.key && !table.keys.contains(&c.name))
            .filter(|c| {
                !targets.contains(&c.name.as_str()) && !analysis.target_columns.contains(&c.name)
            })
            .filter(|c| {
                link.kind.is_lookup()
                    || matches!(
                        c.dtype,
                        ColumnType::Integer | ColumnType::Float | ColumnType::Boolean
                    )
            })
            .take(MAX_SIDE_COLUMNS);
        let mut columns = serde_json::Map::new();
        for column in usable {
            let mut name = if link.kind.is_lookup() {
                column.name.clone()
            } else {
                format!("{stem}_{}", column.name)
            };
            if taken.contains(&name) {
                name = format!("{stem}_{}", column.name);
            }
            if taken.contains(&name) {
                continue;
            }
            taken.push(name.clone());
            if link.kind.is_lookup() {
                added.push((name.clone(), column.dtype));
            } else {
                for stat in ["mean", "min", "max"] {
                    added.push((format!("{name}_{stat}"), ColumnType::Float));
                }
            }
            columns.insert(column.name.clone(), json!(name));
        }
        let count = format!("{stem}_count");
        if columns.is_empty() && link.kind.is_lookup() {
            continue;
        }
        let tables: Vec<&str> = std::iter::once(table.table.path.as_str())
            .chain(pair.map(|p| p.table.path.as_str()))
            .collect();
        let mut join = json!({
            "tables": tables,
            "key": link.key,
            "kind": if link.kind.is_lookup() { "lookup" } else { "aggregate" },
            "columns": columns,
        });
        if !link.kind.is_lookup() {
            added.push((count.clone(), ColumnType::Integer));
            join["count"] = json!(count);
        }
        joins.push(join);
    }
    (joins, added)
}

/// The test-side table paired with `table` (`test_x.csv` for `train_x.csv`), on the same key.
fn pair_of<'a>(table: &SideTable, side: &'a [SideTable]) -> Option<&'a SideTable> {
    side.iter().find(|other| {
        train_name(&other.table.path).as_deref() == Some(table.table.path.as_str())
            && other.link.as_ref().map(|l| &l.key) == table.link.as_ref().map(|l| &l.key)
    })
}

fn is_test_side_of_a_pair(table: &SideTable, side: &[SideTable]) -> bool {
    side.iter()
        .any(|other| pair_of(other, side).is_some_and(|p| std::ptr::eq(p, table)))
}

/// A file's stem as a column-name prefix: letters, digits and `_` only.
fn stem(path: &str) -> String {
    let stem = std::path::Path::new(path)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    stem.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::analyse::{CompetitionText, analyse};

    #[test]
    fn lookups_join_as_they_are_one_to_many_as_aggregates_and_labels_never() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (path, body) in [
            (
                "train.csv",
                "id,store_id,x,y\n1,s1,1.5,0\n2,s2,2.5,1\n3,s1,3.5,1\n",
            ),
            ("test.csv", "id,store_id,x\n4,s2,1.0\n"),
            ("sample_submission.csv", "id,y\n4,0\n"),
            ("stores.csv", "store_id,x,city\ns1,10,a\ns2,20,b\n"),
            ("visits.csv", "id,minutes,page\n1,3,a\n1,4,b\n4,5,c\n"),
            (
                "train_meta.csv",
                "id,colour,y\n1,red,0\n2,blue,1\n3,red,1\n",
            ),
            ("test_meta.csv", "id,colour\n4,red\n"),
        ] {
            std::fs::write(dir.path().join(path), body).expect("write");
        }
        let analysis = analyse(dir.path(), "s", &CompetitionText::default()).expect("analysis");
        let (joins, added) = plan(&analysis);
        assert_eq!(
            serde_json::Value::Array(joins),
            json!([
                {"tables": ["stores.csv"], "key": "store_id", "kind": "lookup",
                 "columns": {"x": "stores_x", "city": "city"}},
                {"tables": ["train_meta.csv", "test_meta.csv"], "key": "id", "kind": "lookup",
                 "columns": {"colour": "colour"}},
                {"tables": ["visits.csv"], "key": "id", "kind": "aggregate",
                 "columns": {"minutes": "visits_minutes"}, "count": "visits_count"},
            ])
        );
        let names: Vec<&str> = added.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "stores_x",
                "city",
                "colour",
                "visits_minutes_mean",
                "visits_minutes_min",
                "visits_minutes_max",
                "visits_count"
            ]
        );
    }
}
