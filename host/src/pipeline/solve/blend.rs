//! The solver's side of the host's blend: after the search, the best candidates' holdout
//! submissions are weighed together (`score::blend` chooses the weights and checks them on
//! holdout rows they were not chosen on); when a blend is worth it and its members' full-data
//! runs fit in the budget, each member is re-run on the full data and their submissions are
//! combined with the same weights into the one stored.
//!
//! Kept apart from the search loop: the loop decides which candidates exist, this decides
//! whether several of them make a better submission than the best alone.

use std::collections::HashMap;
use std::time::Instant;

use super::search::{SearchState, Tried};
use super::types::BlendMember;
use super::{AttemptRecord, Holdout, PreparedCompetition, SolveError, SolveEvent, SolveJob};
use super::{ClaimDir, Solver, ended};
use crate::pipeline::analyse::CompetitionAnalysis;
use crate::pipeline::score::blend::{self, Combine, MAX_MEMBERS};
use crate::pipeline::score::job_seed;
use crate::pipeline::score::submission::Submission;
use crate::pipeline::validate::validate_submission;
use crate::storage::StoredSubmission;

/// A blend the search chose: its members (indices into the ranked candidates, best first)
/// with their weights, and its host score on the holdout.
#[derive(Debug, Clone)]
pub(super) struct Chosen {
    pub members: Vec<(usize, f64)>,
    pub score: f64,
}

impl Chosen {
    /// The members as the journal names them.
    pub(super) fn journal(&self, ranked: &[Tried]) -> Vec<BlendMember> {
        self.members
            .iter()
            .map(|&(i, weight)| BlendMember {
                candidate: ranked[i].record.candidate,
                weight,
            })
            .collect()
    }
}

impl Solver {
    /// Chooses a blend of the best of `ranked` (the search's submission order), or `None`
    /// when none beats the first alone, the predictions do not blend, or the members'
    /// full-data runs would not fit in the budget.
    pub(super) async fn choose_blend(
        &self,
        job: &SolveJob<'_>,
        state: &SearchState,
        ranked: &[Tried],
        holdout: &Holdout,
        analysis: &CompetitionAnalysis,
        started: Instant,
    ) -> Result<Option<Chosen>, SolveError> {
        let scored: Vec<usize> = (0..ranked.len())
            .filter(|&i| ranked[i].submission.is_some())
            .take(MAX_MEMBERS)
            .collect();
        if scored.len() < 2 || scored[0] != 0 || Combine::of(analysis).is_none() {
            return Ok(None);
        }
        let submissions: Vec<_> = scored
            .iter()
            .filter_map(|&i| ranked[i].submission.clone())
            .collect();
        let (answers, analysis_copy, seed) =
            (holdout.answers.clone(), analysis.clone(), job_seed(&job.id));
        let chosen = tokio::task::spawn_blocking(move || {
            let tables = read_all(submissions.iter().map(|s| s.as_slice()), &analysis_copy)?;
            let refs: Vec<&Submission> = tables.iter().collect();
            blend::choose(&refs, &answers, &analysis_copy, seed).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| SolveError::Internal(e.to_string()))?;
        let choice = match chosen {
            Ok(Some(choice)) => choice,
            Ok(None) => return Ok(None),
            Err(reason) => {
                tracing::warn!(job = %job.id, %reason, "the best candidates cannot be blended");
                return Ok(None);
            }
        };
        let members: Vec<(usize, f64)> = scored
            .iter()
            .zip(&choice.weights)
            .filter(|(_, w)| **w > 0.0)
            .map(|(&i, &w)| (i, w))
            .collect();
        let tried: Vec<&Tried> = members.iter().map(|&(i, _)| &ranked[i]).collect();
        if !state.blend_fits(&tried, started.elapsed()) {
            tracing::info!(job = %job.id, "a blend would score better, but its runs do not fit in the budget");
            return Ok(None);
        }
        let chosen = Chosen {
            members,
            score: choice.score.value,
        };
        (job.events)(SolveEvent::BlendChosen {
            members: chosen.journal(ranked),
            score: chosen.score,
            alone: ranked[0].score.map_or(f64::NAN, |s| s.value),
        });
        Ok(Some(chosen))
    }

    /// Re-runs each member of `chosen` on the full data, blends their submissions and stores
    /// the blend. `None` when a member fails there (its record says why) or the blend does not
    /// validate: the caller then submits the best alone, reusing the full-data submissions in
    /// `made`.
    #[allow(clippy::too_many_arguments)] // the search's whole ending, as `search` has it
    pub(super) async fn submit_blend(
        &self,
        job: &SolveJob<'_>,
        claim: &ClaimDir,
        competition: &PreparedCompetition,
        analysis: &CompetitionAnalysis,
        ranked: &[Tried],
        chosen: &Chosen,
        run: &mut u32,
        finals: &mut Vec<AttemptRecord>,
        made: &mut HashMap<u32, Vec<u8>>,
    ) -> Result<Option<StoredSubmission>, SolveError> {
        for &(i, _) in &chosen.members {
            let member = &ranked[i];
            let candidate = member.record.candidate;
            *run += 1;
            let mut record = AttemptRecord {
                attempt: *run,
                generator: member.record.generator.clone(),
                code: member.record.code.clone(),
                backend: None,
                outcome: None,
                error: None,
                candidate: Some(candidate),
            };
            match self
                .full_run(job, claim, competition, analysis, *run, &mut record)
                .await?
            {
                Ok(submission) => {
                    ended(job, &record, member.score.map(|s| s.value));
                    finals.push(record);
                    made.insert(candidate, submission);
                }
                Err(failure) => {
                    let reason =
                        format!("candidate {candidate} failed on the full data: {failure}");
                    (job.events)(SolveEvent::AttemptFailed {
                        attempt: *run,
                        reason: failure,
                    });
                    record.error = Some(reason);
                    ended(job, &record, None);
                    finals.push(record);
                    return Ok(None);
                }
            }
        }
        let parts: Vec<(Vec<u8>, f64)> = chosen
            .members
            .iter()
            .filter_map(|&(i, w)| Some((made.get(&ranked[i].record.candidate)?.clone(), w)))
            .collect();
        let (dir, analysis) = (competition.dir.clone(), analysis.clone());
        let blended = tokio::task::spawn_blocking(move || {
            let combine = Combine::of(&analysis).ok_or("the predictions do not blend")?;
            let tables = read_all(parts.iter().map(|(s, _)| s.as_slice()), &analysis)?;
            let weights: Vec<f64> = parts.iter().map(|(_, w)| *w).collect();
            let refs: Vec<&Submission> = tables.iter().collect();
            let bytes = blend::blend(&refs, &weights, combine).map_err(|e| e.to_string())?;
            validate_submission(&bytes, &dir, &analysis).map_err(|e| e.to_string())?;
            Ok::<_, String>(bytes)
        })
        .await
        .map_err(|e| SolveError::Internal(e.to_string()))?;
        match blended {
            Ok(bytes) => Ok(Some(self.store(job, *run, &bytes).await?)),
            Err(reason) => {
                tracing::warn!(job = %job.id, %reason, "the blend is not a valid submission");
                Ok(None)
            }
        }
    }
}

/// Each submission read with the competition's id and prediction columns.
fn read_all<'a>(
    submissions: impl Iterator<Item = &'a [u8]>,
    analysis: &CompetitionAnalysis,
) -> Result<Vec<Submission>, String> {
    submissions
        .map(|s| Submission::read(s, &analysis.id_column, &analysis.target_columns))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}
