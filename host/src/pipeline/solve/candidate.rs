//! One candidate of a search: its code asked for (draft, improve or debug), run in the holdout
//! view, and scored by the host against answers the code never saw. A stop halts it while it is
//! written or run; the search loop decides what to ask for and what to keep.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::search::{Ask, Tried};
use super::types::printed_score;
use super::{
    AttemptFailure, AttemptRecord, CandidateRecord, ClaimDir, Holdout, SolveError, SolveEvent,
    SolveJob, Solver, Stage, ended, timed,
};
use crate::pipeline::analyse::CompetitionAnalysis;
use crate::pipeline::generate::{GenerateError, GeneratedCode, GenerationRequest, LlmUsage};
use crate::pipeline::score::submission::join;
use crate::pipeline::score::{ScoreError, score_submission};
use crate::text::{ERROR_TAIL_CHARS, tail};

/// A candidate's host score and the holdout submission it was computed from.
type Scored = (crate::pipeline::score::HostScore, Arc<Vec<u8>>);

impl Solver {
    /// Generates, runs and scores one candidate, `run` the number of its folder and stages,
    /// each run capped at `wall_time`.
    #[allow(clippy::too_many_arguments)] // one candidate's whole context
    pub(super) async fn try_candidate(
        &self,
        job: &SolveJob<'_>,
        claim: &ClaimDir,
        holdout: &Holdout,
        analysis: &CompetitionAnalysis,
        ask: &Ask,
        run: u32,
        wall_time: Duration,
        docker: bool,
        halt: &CancellationToken,
    ) -> Result<Tried, SolveError> {
        let begun = Instant::now();
        (job.events)(SolveEvent::CandidateStarted {
            candidate: ask.number,
            kind: ask.kind,
            parent: ask.parent,
        });
        let request = GenerationRequest {
            analysis,
            attempt: run,
            previous: ask.previous.clone(),
            docker,
            candidate: ask.number,
            improve: ask.improve.clone(),
        };
        let (generated, tokens) = tokio::select! {
            generated = self.generate(job, &request, run) => generated?,
            () = halt.cancelled(), if !job.cancel.is_cancelled() => {
                (Err(AttemptFailure::Stopped), None)
            }
        };
        let mut record = CandidateRecord {
            candidate: ask.number,
            kind: ask.kind,
            parent: ask.parent,
            generator: self.generator.name(),
            code: String::new(),
            backend: None,
            millis: 0,
            run_millis: None,
            fuel_used: None,
            tokens: None,
            host_score: None,
            printed_score: None,
            error: None,
        };
        // A reply without code cost its tokens too: they count against the budget.
        record.tokens = tokens;
        let (scored, outcome) = match generated {
            Ok(generated) => {
                record.generator = generated.generator;
                record.code = generated.code;
                self.candidate(
                    job,
                    claim,
                    holdout,
                    analysis,
                    run,
                    &mut record,
                    wall_time,
                    halt,
                )
                .await?
            }
            Err(failure) => (Err(failure), None),
        };
        record.millis = u64::try_from(begun.elapsed().as_millis()).unwrap_or(u64::MAX);
        let host_score = scored.as_ref().ok().map(|s| s.0.value);
        // The candidate's log as it ends, like an attempt's: its code, output and error.
        let attempt = AttemptRecord {
            attempt: run,
            generator: record.generator.clone(),
            code: record.code.clone(),
            backend: record.backend,
            outcome: outcome.clone(),
            error: scored.as_ref().err().map(ToString::to_string),
            candidate: Some(ask.number),
        };
        ended(job, &attempt, host_score);
        // The final run is reckoned from one fold's run, not from all of them together.
        let folds = u64::try_from(holdout.folds.len()).unwrap_or(1).max(1);
        let run = record
            .run_millis
            .map(|ms| Duration::from_millis(ms / folds));
        Ok(match scored {
            Ok((score, submission)) => {
                record.host_score = Some(score.value);
                Tried {
                    run,
                    record,
                    score: Some(score),
                    failure: None,
                    outcome,
                    submission: Some(submission),
                }
            }
            Err(failure) => {
                let reason = failure.to_string();
                let stderr = outcome
                    .as_ref()
                    .map(|o| tail(&o.stderr, ERROR_TAIL_CHARS))
                    .unwrap_or_default();
                (job.events)(SolveEvent::CandidateFailed {
                    candidate: ask.number,
                    kind: ask.kind,
                    reason: failure,
                    millis: record.millis,
                });
                record.error = Some(reason.clone());
                Tried {
                    run,
                    record,
                    score: None,
                    failure: Some(if stderr.is_empty() {
                        reason
                    } else {
                        format!("{reason}\n\nstderr (tail):\n{stderr}")
                    }),
                    outcome,
                    submission: None,
                }
            }
        })
    }

    /// Asks the generator for code, with the LLM tokens the reply cost. A reply without code
    /// is the candidate's failure, like code that crashes; any other generator failure
    /// (unreachable, refused) ends the job.
    pub(super) async fn generate(
        &self,
        job: &SolveJob<'_>,
        request: &GenerationRequest<'_>,
        run: u32,
    ) -> Result<(Result<GeneratedCode, AttemptFailure>, Option<u64>), SolveError> {
        timed(job, Stage::Generate, run, async {
            match self.generator.generate(request).await {
                Ok(code) => {
                    (job.events)(SolveEvent::Generated {
                        attempt: run,
                        llm: code.llm.clone(),
                    });
                    let tokens = code.tokens();
                    Ok((Ok(code), tokens))
                }
                Err(GenerateError::NoCode { provider, llm }) => {
                    let tokens = llm.as_ref().map(LlmUsage::tokens);
                    (job.events)(SolveEvent::Generated { attempt: run, llm });
                    Ok((Err(AttemptFailure::NoCode { provider }), tokens))
                }
                Err(error) => Err(SolveError::Generate(error)),
            }
        })
        .await
    }

    /// Runs one candidate in each fold's holdout view and scores what it wrote in all of them
    /// against their answers. The outer error ends the solve; the inner one is the candidate's
    /// failure.
    #[allow(clippy::too_many_arguments)] // one run's whole context; a struct would only rename it
    pub(super) async fn candidate(
        &self,
        job: &SolveJob<'_>,
        claim: &ClaimDir,
        holdout: &Holdout,
        analysis: &CompetitionAnalysis,
        run: u32,
        candidate: &mut CandidateRecord,
        wall_time: Duration,
        halt: &CancellationToken,
    ) -> Result<
        (
            Result<Scored, AttemptFailure>,
            Option<crate::sandbox::Outcome>,
        ),
        SolveError,
    > {
        let sandbox = match self.sandboxes.choose(job.policy, &candidate.code) {
            Ok(sandbox) => sandbox,
            Err(reason) => return Ok((Err(reason.into()), None)),
        };
        candidate.backend = Some(sandbox.backend());
        let mut record = AttemptRecord {
            attempt: run,
            generator: candidate.generator.clone(),
            code: candidate.code.clone(),
            backend: candidate.backend,
            outcome: None,
            error: None,
            candidate: Some(candidate.candidate),
        };
        // One run per fold, each fitted on the other folds' rows; together they cost the
        // candidate's wall time, and the first failure is the candidate's.
        let begun = Instant::now();
        let mut parts = Vec::with_capacity(holdout.folds.len());
        for view in &holdout.folds {
            let dir = claim.attempt(run).await?;
            let left = wall_time
                .saturating_sub(begun.elapsed())
                .max(Duration::from_secs(1));
            let ran = self
                .run_and_validate(job, &dir, sandbox, view, analysis, &mut record, left, halt)
                .await;
            dir.remove().await;
            if let Some(outcome) = &record.outcome {
                candidate.run_millis = Some(candidate.run_millis.unwrap_or(0) + outcome.wall_ms);
                candidate.fuel_used = match (candidate.fuel_used, outcome.fuel_used) {
                    (Some(a), Some(b)) => Some(a.saturating_add(b)),
                    (a, b) => a.or(b),
                };
                if candidate.printed_score.is_none() {
                    candidate.printed_score = printed_score(&outcome.stdout);
                }
            }
            match ran? {
                Ok(contents) => parts.push(contents),
                Err(failure) => return Ok((Err(failure), record.outcome)),
            }
        }
        let contents = match parts.as_slice() {
            [one] => one.clone(),
            _ => {
                let parts: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
                match join(&parts) {
                    Ok(joined) => joined,
                    Err(e) => {
                        let failure = AttemptFailure::Score(ScoreError::Mismatch(e.0));
                        return Ok((Err(failure), record.outcome));
                    }
                }
            }
        };
        let contents = Arc::new(contents);
        let scored = timed(job, Stage::Validate, run, async {
            let (answers, analysis, submission) = (
                holdout.answers.clone(),
                analysis.clone(),
                Arc::clone(&contents),
            );
            tokio::task::spawn_blocking(move || score_submission(&submission, &answers, &analysis))
                .await
                .map_err(|e| SolveError::Internal(e.to_string()))
        })
        .await?;
        let scored = scored.map(|score| (score, contents));
        Ok((scored.map_err(AttemptFailure::Score), record.outcome))
    }
}
