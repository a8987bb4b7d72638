//! Which training rows a holdout view holds out: the rows dealt into folds at random, within
//! each class, by whole groups, or the latest ones by time. Seeded by the job, so every attempt
//! and worker deals the same rows, and each fold's rows are disjoint, so that the views
//! together hold every row out exactly once.

use std::collections::BTreeMap;

use super::holdout::{HoldoutError, HoldoutSpec, Table};

/// Fewest training rows a holdout is taken from.
pub const MIN_ROWS: usize = 20;

/// How the holdout rows are chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Split {
    /// Uniformly at random.
    Random,
    /// At random within each value of this column (the class label), so the holdout keeps the
    /// classes' shares.
    Stratified(String),
    /// Whole groups of this column at once, so rows that share a key are never on both sides.
    Group(String),
    /// The latest rows by this column, when the test set is later in time than training.
    Time(String),
}

/// Chooses the holdout rows of `table` (their indices, ascending): `spec.fraction` of them
/// with one fold, else the rows dealt to fold `spec.fold`.
pub(super) fn held_out(table: &Table, spec: &HoldoutSpec) -> Result<Vec<usize>, HoldoutError> {
    let n = table.rows.len();
    if n < MIN_ROWS {
        return Err(HoldoutError::Unsafe(format!(
            "{n} training rows, fewer than {MIN_ROWS}"
        )));
    }
    let folds = spec.folds;
    if folds == 0 || spec.fold >= folds {
        return Err(HoldoutError::Columns(format!(
            "fold {} of {folds} does not exist",
            spec.fold
        )));
    }
    let mut rng = fastrand::Rng::with_seed(spec.seed);
    let share =
        |count: usize| ((count as f64 * spec.fraction).round() as usize).clamp(1, count - 1);
    // Rows in a shuffled order go round the folds, starting `start` places on, so that the
    // remainders of many small classes do not all fall to the first fold.
    let deal = |order: &[usize], start: usize| -> Vec<usize> {
        if folds == 1 {
            return order[..share(order.len())].to_vec();
        }
        order
            .iter()
            .enumerate()
            .filter(|(at, _)| (at + start) % folds == spec.fold)
            .map(|(_, &row)| row)
            .collect()
    };
    let values = |name: &str| -> Result<Vec<&str>, HoldoutError> {
        let column = table.column(name).ok_or_else(|| {
            HoldoutError::Columns(format!(
                "the training table has no column {name:?} to split by"
            ))
        })?;
        Ok(table
            .rows
            .iter()
            .map(|r| r.get(column).unwrap_or(""))
            .collect())
    };
    let mut chosen = match &spec.split {
        Split::Random => {
            let mut all: Vec<usize> = (0..n).collect();
            rng.shuffle(&mut all);
            deal(&all, 0)
        }
        Split::Stratified(column) => {
            let mut by_class: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
            for (i, v) in values(column)?.into_iter().enumerate() {
                by_class.entry(v).or_default().push(i);
            }
            // A class seen once stays in the fit rows: the holdout could not measure it anyway.
            let mut split: Vec<&mut Vec<usize>> = by_class
                .values_mut()
                .filter(|rows| rows.len() >= 2)
                .collect();
            if split.len() < 2 {
                return Err(HoldoutError::Unsafe(format!(
                    "fewer than two classes of {column:?} have two rows or more"
                )));
            }
            let (mut chosen, mut start) = (Vec::new(), 0);
            for rows in &mut split {
                rng.shuffle(rows);
                chosen.extend(deal(rows, start));
                start += rows.len();
            }
            chosen
        }
        Split::Group(column) => {
            let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
            for (i, v) in values(column)?.into_iter().enumerate() {
                groups.entry(v).or_default().push(i);
            }
            if groups.len() < 2 {
                return Err(HoldoutError::Unsafe(format!(
                    "every row has the same {column:?}, one group"
                )));
            }
            if groups.len() < folds {
                return Err(HoldoutError::Unsafe(format!(
                    "{} groups of {column:?}, fewer than the {folds} folds",
                    groups.len()
                )));
            }
            let mut keys: Vec<&str> = groups.keys().copied().collect();
            rng.shuffle(&mut keys);
            if folds == 1 {
                let want = share(n);
                let mut chosen = Vec::new();
                // Stop before the last group, so the fit rows keep at least one.
                for key in &keys[..keys.len() - 1] {
                    if chosen.len() >= want {
                        break;
                    }
                    chosen.extend_from_slice(&groups[key]);
                }
                chosen
            } else {
                // Each group to the fold with the fewest rows so far, so the folds come out
                // about the same size however unequal the groups.
                let mut sizes = vec![0_usize; folds];
                let mut chosen = Vec::new();
                for key in keys {
                    let fold = (0..folds).min_by_key(|&f| (sizes[f], f)).unwrap_or(0);
                    sizes[fold] += groups[key].len();
                    if fold == spec.fold {
                        chosen.extend_from_slice(&groups[key]);
                    }
                }
                chosen
            }
        }
        Split::Time(column) => {
            if folds > 1 {
                return Err(HoldoutError::Columns(format!(
                    "a split by time holds out the latest rows once, not in {folds} folds"
                )));
            }
            let values = values(column)?;
            let numbers: Option<Vec<f64>> = values.iter().map(|v| v.trim().parse().ok()).collect();
            let mut order: Vec<usize> = (0..n).collect();
            // Numbers compare as numbers; anything else as text, which orders ISO dates.
            match numbers {
                Some(numbers) => order.sort_by(|&a, &b| numbers[a].total_cmp(&numbers[b])),
                None => order.sort_by(|&a, &b| values[a].cmp(values[b])),
            }
            order.split_off(n - share(n))
        }
    };
    if chosen.is_empty() || chosen.len() == n {
        return Err(HoldoutError::Unsafe(format!(
            "fold {} of {folds} would hold out {} of {n} rows",
            spec.fold,
            chosen.len()
        )));
    }
    chosen.sort_unstable();
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::score::holdout::tests::{competition, read, spec};

    #[test]
    fn folds_deal_every_row_to_exactly_one_holdout() {
        let source = competition(70);
        let table = read(&source.path().join("train.csv"));
        for split in [
            Split::Random,
            Split::Stratified("label".into()),
            Split::Group("shop".into()),
        ] {
            let mut seen = vec![0; 70];
            for fold in 0..3 {
                let spec = HoldoutSpec {
                    folds: 3,
                    fold,
                    ..spec(split.clone())
                };
                let chosen = held_out(&table, &spec).expect("a fold");
                // About a third each (the shops' groups are 10 rows).
                assert!(
                    (20..=30).contains(&chosen.len()),
                    "{split:?}: {}",
                    chosen.len()
                );
                for i in chosen {
                    seen[i] += 1;
                }
            }
            assert!(seen.iter().all(|&n| n == 1), "{split:?}: {seen:?}");
        }
        let beyond = HoldoutSpec {
            folds: 3,
            fold: 3,
            ..spec(Split::Random)
        };
        assert!(matches!(
            held_out(&table, &beyond),
            Err(HoldoutError::Columns(_))
        ));
        let by_time = HoldoutSpec {
            folds: 3,
            ..spec(Split::Time("day".into()))
        };
        assert!(
            matches!(held_out(&table, &by_time), Err(HoldoutError::Columns(m)) if m.contains("once"))
        );
        let few_groups = HoldoutSpec {
            folds: 8,
            ..spec(Split::Group("shop".into()))
        };
        assert!(
            matches!(held_out(&table, &few_groups), Err(HoldoutError::Unsafe(m)) if m.contains("7 groups"))
        );
    }
}
