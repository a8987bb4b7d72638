//! The single shot (`[search] candidates = 1`): attempts on the full data until one writes a
//! valid submission, each failure fed back to the generator; the score is the one the script
//! printed, its own claim.

use super::types::printed_score;
use super::{
    AttemptFailure, AttemptRecord, ClaimDir, PreparedCompetition, SolveError, SolveEvent, SolveJob,
    SolveReport, Solver, Stage, ValidationSource, ended, runtime, timed,
};
use crate::pipeline::analyse::CompetitionAnalysis;
use crate::pipeline::generate::{GenerateError, GenerationRequest, PreviousAttempt};
use crate::text::{ERROR_TAIL_CHARS, tail};

impl Solver {
    /// Today's single shot: attempts on the full data until one writes a valid submission.
    pub(super) async fn single_shot(
        &self,
        job: &SolveJob<'_>,
        competition: &PreparedCompetition,
        analysis: CompetitionAnalysis,
        claim: &ClaimDir,
        docker: bool,
    ) -> Result<SolveReport, SolveError> {
        let max = job.policy.attempts.max.max(1);
        let mut records = Vec::new();
        let mut previous = None;
        for attempt in 1..=max {
            if job.cancel.is_cancelled() {
                return Err(SolveError::Cancelled);
            }
            let request = GenerationRequest {
                analysis: &analysis,
                attempt,
                previous: previous.take(),
                docker,
                candidate: 1,
                improve: None,
            };
            // A reply without code is the generator's failed attempt, like code that crashes;
            // any other generator failure (unreachable, refused) ends the job.
            let generated = timed(job, Stage::Generate, attempt, async {
                match self.generator.generate(&request).await {
                    Ok(code) => {
                        tracing::info!(
                            generator = %code.generator,
                            chars = code.code.len(),
                            "code generated"
                        );
                        (job.events)(SolveEvent::Generated {
                            attempt,
                            llm: code.llm.clone(),
                        });
                        Ok(Ok(code))
                    }
                    Err(GenerateError::NoCode { provider, llm }) => {
                        tracing::info!(%provider, "the reply held no code");
                        (job.events)(SolveEvent::Generated { attempt, llm });
                        Ok(Err(AttemptFailure::NoCode { provider }))
                    }
                    Err(error) => Err(SolveError::Generate(error)),
                }
            })
            .await?;
            let generated = match generated {
                Ok(generated) => generated,
                Err(failure) => {
                    let reason = failure.to_string();
                    (job.events)(SolveEvent::AttemptFailed {
                        attempt,
                        reason: failure,
                    });
                    previous = Some(PreviousAttempt {
                        code: String::new(),
                        error: reason.clone(),
                    });
                    let record = AttemptRecord {
                        attempt,
                        generator: self.generator.name(),
                        code: String::new(),
                        backend: None,
                        outcome: None,
                        error: Some(reason),
                        candidate: None,
                    };
                    ended(job, &record, None);
                    records.push(record);
                    continue;
                }
            };
            let mut record = AttemptRecord {
                attempt,
                generator: generated.generator.clone(),
                code: generated.code.clone(),
                backend: None,
                outcome: None,
                error: None,
                candidate: None,
            };
            match self
                .attempt(job, claim, competition, &analysis, attempt, &mut record)
                .await?
            {
                Ok(submission) => {
                    let validation_score = record
                        .outcome
                        .as_ref()
                        .and_then(|o| printed_score(&o.stdout));
                    ended(job, &record, validation_score);
                    let runtime = runtime(record.backend, job.policy);
                    records.push(record);
                    return Ok(SolveReport {
                        slug: competition.slug.clone(),
                        submission,
                        analysis,
                        attempts: records,
                        validation_score,
                        validation_score_source: validation_score.map(|_| ValidationSource::Script),
                        search: None,
                        runtime,
                        seed: None,
                    });
                }
                Err(failure) => {
                    let reason = failure.to_string();
                    (job.events)(SolveEvent::AttemptFailed {
                        attempt,
                        reason: failure,
                    });
                    let stderr = record
                        .outcome
                        .as_ref()
                        .map(|o| tail(&o.stderr, ERROR_TAIL_CHARS))
                        .unwrap_or_default();
                    previous = Some(PreviousAttempt {
                        code: record.code.clone(),
                        error: if stderr.is_empty() {
                            reason.clone()
                        } else {
                            format!("{reason}\n\nstderr (tail):\n{stderr}")
                        },
                    });
                    record.error = Some(reason);
                    ended(job, &record, None);
                    records.push(record);
                }
            }
        }
        let last_error = records
            .last()
            .and_then(|r| r.error.clone())
            .unwrap_or_default();
        Err(SolveError::AttemptsExhausted {
            attempts: max,
            last_error,
            records,
        })
    }
}
