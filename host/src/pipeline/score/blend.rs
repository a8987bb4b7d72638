//! Blending the search's best candidates: their holdout predictions combined with weights the
//! host chooses on the holdout by the competition's metric, kept only when the weights hold up
//! on holdout rows they were not chosen on.
//!
//! Candidates that model the data differently make different mistakes, so a weighted mean of
//! their predictions (or a weighted vote of their labels) often scores better than the best of
//! them. Weights chosen on the same rows they are judged on flatter the blend, so a blend is
//! accepted only by a two-fold check: weights chosen on one half of the holdout, scored on the
//! other, against the candidate that would be submitted alone, chosen and scored the same way,
//! and then only if it beats that candidate on the paired resamples of `compare` as surely as a
//! candidate must to displace it. The grid is coarse (tenths) for the same reason.

use super::compare::{RESAMPLES, SURE_WIN, paired_wins};
use super::submission::Submission;
use super::{Answers, HostScore, ScoreError, score_submission};
use crate::pipeline::analyse::{CompetitionAnalysis, Metric, PredictionKind, TaskKind};
use crate::text::quote;

/// Most candidates a blend takes, best first.
pub const MAX_MEMBERS: usize = 3;
/// Weights are multiples of 1 / `STEPS`.
const STEPS: u32 = 10;

/// How a blend combines its members' cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    /// A weighted mean: values and probabilities (rows of class probabilities stay summing
    /// to 1, since the weights do).
    Mean,
    /// A weighted vote: labels; a tie goes to the member of the largest weight.
    Vote,
}

impl Combine {
    /// How a competition's predictions blend, or `None` when they do not (ranked label
    /// lists for MAP@K).
    pub fn of(analysis: &CompetitionAnalysis) -> Option<Self> {
        match (analysis.scored_metric(), analysis.task, analysis.prediction) {
            (Metric::MapAtK { .. }, ..) => None,
            (_, TaskKind::Regression, _) | (_, _, PredictionKind::Probability) => Some(Self::Mean),
            _ => Some(Self::Vote),
        }
    }
}

/// Why candidates' submissions could not be blended.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BlendError {
    /// A submission is not a table of the expected columns and rows.
    #[error("cannot blend the submissions: {0}")]
    Shape(String),
    /// A cell to average is not a number.
    #[error("cannot average {}: not a number", quote(.0))]
    NotNumber(String),
}

/// `members` combined with `weights` (one per member, summing to 1), as a CSV with the first
/// member's header, rows and other columns.
///
/// # Errors
/// See [`BlendError`].
pub fn blend(
    members: &[&Submission],
    weights: &[f64],
    combine: Combine,
) -> Result<Vec<u8>, BlendError> {
    let Some(first) = members.first() else {
        return Err(BlendError::Shape("no members".into()));
    };
    let mut writer = csv::Writer::from_writer(Vec::new());
    let write = |e: csv::Error| BlendError::Shape(e.to_string());
    writer.write_record(&first.header).map_err(write)?;
    for row in &first.rows {
        let id = row.get(first.id_at).map_or("", String::as_str);
        let mut out = row.clone();
        let others: Vec<&Vec<String>> = members
            .iter()
            .map(|m| {
                m.row(id)
                    .ok_or_else(|| BlendError::Shape(format!("no row for id {}", quote(id))))
            })
            .collect::<Result<_, _>>()?;
        for (j, &at) in first.at.iter().enumerate() {
            let cells: Vec<&str> = members
                .iter()
                .zip(&others)
                .map(|(m, r)| r.get(m.at[j]).map_or("", String::as_str))
                .collect();
            out[at] = combine_cells(&cells, weights, combine)?;
        }
        writer.write_record(&out).map_err(write)?;
    }
    writer
        .into_inner()
        .map_err(|e| BlendError::Shape(e.to_string()))
}

fn combine_cells(cells: &[&str], weights: &[f64], combine: Combine) -> Result<String, BlendError> {
    match combine {
        Combine::Mean => {
            let mut total = 0.0;
            for (cell, w) in cells.iter().zip(weights) {
                let value: f64 = cell
                    .parse()
                    .ok()
                    .filter(|v: &f64| v.is_finite())
                    .ok_or_else(|| BlendError::NotNumber((*cell).to_owned()))?;
                total += w * value;
            }
            Ok(total.to_string())
        }
        Combine::Vote => {
            let mut votes: Vec<(&str, f64, f64)> = Vec::new();
            for (cell, &w) in cells.iter().zip(weights) {
                match votes.iter_mut().find(|(c, ..)| c == cell) {
                    Some(vote) => {
                        vote.1 += w;
                        vote.2 = vote.2.max(w);
                    }
                    None => votes.push((cell, w, w)),
                }
            }
            let best = votes
                .iter()
                .max_by(|a, b| a.1.total_cmp(&b.1).then(a.2.total_cmp(&b.2)))
                .map_or("", |v| v.0);
            Ok(best.to_owned())
        }
    }
}

/// A blend the holdout supports: the weight of each member (best first; a member of weight 0
/// is left out) and its score on the whole holdout.
#[derive(Debug, Clone, PartialEq)]
pub struct BlendChoice {
    /// One weight per candidate given, summing to 1.
    pub weights: Vec<f64>,
    /// The blend's host score on the whole holdout.
    pub score: HostScore,
    /// The two-fold check: the blend's and the lone candidate's mean score on the halves.
    pub checked: (f64, f64),
}

/// Chooses weights for `members` (holdout submissions, best first; the first is the one that
/// would be submitted alone) on `answers`, or `None` when no blend of two or more beats the
/// first on holdout rows its weights were not chosen on. `seed` splits the holdout in halves.
///
/// # Errors
/// A member that does not fit the answers.
pub fn choose(
    members: &[&Submission],
    answers: &Answers,
    analysis: &CompetitionAnalysis,
    seed: u64,
) -> Result<Option<BlendChoice>, ScoreError> {
    let Some(combine) = Combine::of(analysis) else {
        return Ok(None);
    };
    let members = &members[..members.len().min(MAX_MEMBERS)];
    if members.len() < 2 || answers.rows.len() < 4 {
        return Ok(None);
    }
    let metric = analysis.scored_metric();
    let grid = grid(members.len());
    let score = |weights: &[f64], rows: &Answers| -> Result<Option<f64>, ScoreError> {
        let Ok(bytes) = blend(members, weights, combine) else {
            return Ok(None);
        };
        score_submission(&bytes, rows, analysis).map(|s| Some(s.value))
    };
    let better = |a: f64, b: f64| {
        if metric.higher_is_better() {
            a > b
        } else {
            a < b
        }
    };
    let best_on = |rows: &Answers| -> Result<Option<(Vec<f64>, f64)>, ScoreError> {
        let mut best: Option<(Vec<f64>, f64)> = None;
        for weights in &grid {
            if let Some(value) = score(weights, rows)?
                && best.as_ref().is_none_or(|(_, b)| better(value, *b))
            {
                best = Some((weights.clone(), value));
            }
        }
        Ok(best)
    };
    let lone = lone(members.len());
    let (left, right) = halves(answers, seed);
    let mut checked = (0.0, 0.0);
    for (chosen_on, judged_on) in [(&left, &right), (&right, &left)] {
        let Some((weights, _)) = best_on(chosen_on)? else {
            return Ok(None);
        };
        let (Some(blended), Some(alone)) = (score(&weights, judged_on)?, score(&lone, judged_on)?)
        else {
            return Ok(None);
        };
        checked.0 += blended / 2.0;
        checked.1 += alone / 2.0;
    }
    if !better(checked.0, checked.1) {
        return Ok(None);
    }
    let Some((weights, value)) = best_on(answers)? else {
        return Ok(None);
    };
    if weights == lone {
        return Ok(None);
    }
    // Weights chosen on the holdout flatter it; on top of the two-fold check, the blend must win
    // against the lone first as surely as a candidate that would take its place.
    let (Ok(blended), Ok(first)) = (
        blend(members, &weights, combine),
        blend(members, &lone, combine),
    ) else {
        return Ok(None);
    };
    if paired_wins(&blended, &first, answers, analysis, RESAMPLES, seed)? < SURE_WIN {
        return Ok(None);
    }
    Ok(Some(BlendChoice {
        weights,
        score: HostScore { metric, value },
        checked,
    }))
}

/// The first member alone.
fn lone(members: usize) -> Vec<f64> {
    let mut weights = vec![0.0; members];
    weights[0] = 1.0;
    weights
}

/// Every weighting of `members` in tenths that sums to 1, the first member's alone included
/// (so a half can prefer it).
fn grid(members: usize) -> Vec<Vec<f64>> {
    fn parts(members: usize, left: u32, into: &mut Vec<Vec<u32>>, prefix: &mut Vec<u32>) {
        if members == 1 {
            prefix.push(left);
            into.push(prefix.clone());
            prefix.pop();
            return;
        }
        // The first member's heaviest weights first: a tie between weightings goes to it.
        for take in (0..=left).rev() {
            prefix.push(take);
            parts(members - 1, left - take, into, prefix);
            prefix.pop();
        }
    }
    let mut all = Vec::new();
    parts(members, STEPS, &mut all, &mut Vec::new());
    all.into_iter()
        .map(|p| {
            p.into_iter()
                .map(|k| f64::from(k) / f64::from(STEPS))
                .collect()
        })
        .collect()
}

/// The holdout's rows in two halves, shuffled by `seed`.
fn halves(answers: &Answers, seed: u64) -> (Answers, Answers) {
    let mut order: Vec<usize> = (0..answers.rows.len()).collect();
    let mut sequence = super::compare::Sequence::new(seed);
    for i in (1..order.len()).rev() {
        order.swap(i, sequence.below(i + 1));
    }
    let half = order.len() / 2;
    let part = |ids: &[usize]| Answers {
        id_column: answers.id_column.clone(),
        columns: answers.columns.clone(),
        rows: ids.iter().map(|&i| answers.rows[i].clone()).collect(),
    };
    (part(&order[..half]), part(&order[half..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(csv: &str) -> Submission {
        Submission::read(csv.as_bytes(), "id", &["y".to_owned()]).expect("a table")
    }

    #[test]
    fn means_weigh_values_and_votes_go_to_the_heavier_side() {
        let a = table("id,y\n1,1.0\n2,3\n");
        let b = table("id,y\n2,5\n1,2.0\n");
        let mean = blend(&[&a, &b], &[0.5, 0.5], Combine::Mean).expect("blend");
        assert_eq!(
            String::from_utf8(mean).expect("utf-8"),
            "id,y\n1,1.5\n2,4\n"
        );
        let a = table("id,y\nx,cat\n");
        let b = table("id,y\nx,dog\n");
        let c = table("id,y\nx,dog\n");
        let vote = |w: &[f64]| {
            String::from_utf8(blend(&[&a, &b, &c], w, Combine::Vote).expect("blend"))
                .expect("utf-8")
        };
        assert_eq!(vote(&[0.6, 0.2, 0.2]), "id,y\nx,cat\n");
        assert_eq!(vote(&[0.4, 0.3, 0.3]), "id,y\nx,dog\n");
        // A tie goes to the side with the heaviest single member.
        assert_eq!(vote(&[0.5, 0.3, 0.2]), "id,y\nx,cat\n");
    }

    #[test]
    fn a_missing_row_or_a_word_to_average_is_an_error() {
        let a = table("id,y\n1,1\n2,2\n");
        let b = table("id,y\n1,1\n");
        assert!(matches!(
            blend(&[&a, &b], &[0.5, 0.5], Combine::Mean),
            Err(BlendError::Shape(_))
        ));
        let c = table("id,y\n1,one\n2,2\n");
        assert_eq!(
            blend(&[&a, &c], &[0.5, 0.5], Combine::Mean),
            Err(BlendError::NotNumber("one".into()))
        );
    }

    /// A regression scored by RMSE, its holdout of 40 rows `y = i`, and submissions of
    /// `y + noise(i)`.
    fn regression() -> (CompetitionAnalysis, Answers) {
        let train: String = (0..40).map(|i| format!("{i},{i},{}\n", i * 2)).collect();
        let analysis = super::super::tests::analysis(
            &format!("id,x,y\n{train}"),
            "id,x\n100,1\n",
            "id,y\n100,0.5\n",
            "Scored by root mean squared error.",
        );
        let answers = Answers {
            id_column: "id".into(),
            columns: vec!["y".into()],
            rows: (0..40)
                .map(|i| (i.to_string(), vec![i.to_string()]))
                .collect(),
        };
        (analysis, answers)
    }

    fn noisy(noise: impl Fn(i32) -> f64) -> Submission {
        let rows: String = (0..40)
            .map(|i| format!("{i},{}\n", f64::from(i) + noise(i)))
            .collect();
        table(&format!("id,y\n{rows}"))
    }

    #[test]
    fn opposite_mistakes_blend_and_equal_ones_do_not() {
        let (analysis, answers) = regression();
        assert_eq!(analysis.scored_metric(), Metric::Rmse);
        let a = noisy(|i| if i % 2 == 0 { 2.0 } else { -2.0 });
        let b = noisy(|i| if i % 2 == 0 { -2.0 } else { 2.2 });
        let choice = choose(&[&a, &b], &answers, &analysis, 3)
            .expect("scored")
            .expect("a blend");
        assert_eq!(choice.weights, vec![0.5, 0.5]);
        assert!(choice.score.value < 0.2, "{choice:?}");
        assert!(choice.checked.0 < choice.checked.1, "{choice:?}");
        // The same mistakes twice: nothing to gain, the first stays alone.
        let same = noisy(|i| if i % 2 == 0 { 2.0 } else { -2.0 });
        assert_eq!(choose(&[&a, &same], &answers, &analysis, 3), Ok(None));
        // A worse second member that errs the same way: no blend either.
        let worse = noisy(|i| if i % 2 == 0 { 4.0 } else { -4.0 });
        assert_eq!(choose(&[&a, &worse], &answers, &analysis, 3), Ok(None));
        // The same mistakes but on three rows of 40: right on one row of each half, a little
        // worse on another. Each half's weights beat the first on the other half, so the
        // two-fold check passes, but three rows are no sure win on the resamples: no blend.
        let (left, right) = halves(&answers, 3);
        let row = |half: &Answers, k: usize| -> i32 { half.rows[k].0.parse().expect("an id") };
        let (better, also, worse) = (row(&left, 0), row(&right, 0), row(&left, 1));
        let three_rows = noisy(|i| {
            let base = if i % 2 == 0 { 2.0 } else { -2.0 };
            if i == better || i == also {
                0.0
            } else if i == worse {
                base * 1.25
            } else {
                base
            }
        });
        assert_eq!(choose(&[&a, &three_rows], &answers, &analysis, 3), Ok(None));
    }

    #[test]
    fn the_grid_is_every_weighting_in_tenths() {
        let two = grid(2);
        assert_eq!(two.len(), 11);
        assert_eq!(grid(3).len(), 66);
        for weights in grid(3) {
            assert!((weights.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        }
        assert_eq!(two[0], lone(2), "ties go to the first member's weight");
    }

    #[test]
    fn halves_split_every_row_once_the_same_way_for_a_seed() {
        let answers = Answers {
            id_column: "id".into(),
            columns: vec!["y".into()],
            rows: (0..9).map(|i| (i.to_string(), vec!["0".into()])).collect(),
        };
        let (a, b) = halves(&answers, 7);
        assert_eq!((a.rows.len(), b.rows.len()), (4, 5));
        let mut ids: Vec<String> = a.rows.iter().chain(&b.rows).map(|r| r.0.clone()).collect();
        ids.sort();
        let mut all: Vec<String> = (0..9).map(|i| i.to_string()).collect();
        all.sort();
        assert_eq!(ids, all);
        assert_eq!(halves(&answers, 7).0.rows, a.rows);
    }
}
