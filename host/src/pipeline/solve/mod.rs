//! Orchestration of one job: analyse → (generate → run → validate) per attempt → store.
//!
//! A failure of the generated code (a crash, a cap, an invalid submission) or a reply without
//! code uses one attempt and is fed back to the generator; anything else (the sandbox, the generator's service, storage)
//! ends the solve with an error that says whether retrying later may help.
//!
//! Each solve works in its claim's own folder (see `workdir`), and leaves nothing there: an
//! attempt's folder goes when the attempt ends, the claim's when the solve does. The
//! submission is stored only after the caller's fence confirms that this claim still owns the
//! job. Parts: `types` (stages, events, records, errors) and `job` (what a caller hands in).

mod job;
mod types;

use std::path::PathBuf;
use std::time::Instant;

use ks_policies::Policy;
use ks_sandbox_fallback::owner::Owner;
use tracing::Instrument as _;

pub use job::{FenceError, FenceVerdict, PreparedCompetition, SolveJob, StoreFence, Unleased};
use types::printed_score;
pub use types::{AttemptFailure, AttemptRecord, SolveError, SolveEvent, SolveReport, Stage};

use super::analyse::{CompetitionAnalysis, analyse};
use super::generate::{DynGenerator, GenerateError, GenerationRequest, PreviousAttempt};
use super::validate::validate_submission;
use super::workdir::{AttemptDir, ClaimDir, WorkDirError, sweep};
use crate::sandbox::{
    Backend, BackendChoice, DynSandbox, OutputFileError, SandboxRequest, SelectError, read_regular,
    select_backend,
};
use crate::storage::{DynStore, StoredSubmission};
use crate::text::{ERROR_TAIL_CHARS, tail};

/// The sandboxes a solver may use; a missing one is unavailable on this host.
#[derive(Debug, Clone, Default)]
pub struct Sandboxes {
    /// The WASI sandbox.
    pub wasm: Option<DynSandbox>,
    /// The Docker sandbox.
    pub docker: Option<DynSandbox>,
}

impl Sandboxes {
    /// The backends present on this host.
    pub fn available(&self) -> Vec<Backend> {
        [(&self.wasm, Backend::Wasm), (&self.docker, Backend::Docker)]
            .into_iter()
            .filter_map(|(sandbox, backend)| sandbox.as_ref().map(|_| backend))
            .collect()
    }

    /// The sandbox for `code` under `policy`: the first allowed backend that is present and
    /// has the modules the code imports.
    fn choose(&self, policy: &Policy, code: &str) -> Result<&DynSandbox, SelectError> {
        let backend = select_backend(
            BackendChoice::Auto,
            &policy.sandbox.backends,
            &self.available(),
            code,
        )?;
        let sandbox = match backend {
            Backend::Wasm => self.wasm.as_ref(),
            Backend::Docker => self.docker.as_ref(),
        };
        // `available` lists only present sandboxes, so this is always found.
        sandbox.ok_or_else(|| SelectError::NoneAvailable {
            allowed: backend.to_string(),
        })
    }
}

/// Runs jobs: the generator, the sandboxes and the store it uses, and where it works.
#[derive(Debug, Clone)]
pub struct Solver {
    generator: DynGenerator,
    sandboxes: Sandboxes,
    store: DynStore,
    work_dir: PathBuf,
    /// This process, as claim folders name their owner; `None` where `/proc` cannot say.
    owner: Option<Owner>,
}

impl Solver {
    /// A solver writing attempts' outputs under `work_dir`.
    pub fn new(
        generator: DynGenerator,
        sandboxes: Sandboxes,
        store: DynStore,
        work_dir: impl Into<PathBuf>,
    ) -> Self {
        let owner = match Owner::current() {
            Ok(owner) => Some(owner),
            Err(error) => {
                tracing::warn!(%error, "work folders cannot be marked with their owner: a \
                               crashed run's folder will not be swept");
                None
            }
        };
        Self {
            generator,
            sandboxes,
            store,
            work_dir: work_dir.into(),
            owner,
        }
    }

    /// The sandbox backends this solver can run code in on this host.
    pub fn backends(&self) -> Vec<Backend> {
        self.sandboxes.available()
    }

    /// Deletes the submission stored for job `id`: one the queue refused because a cancel came
    /// first, which nothing will ever serve.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn discard_submission(&self, id: &str) -> Result<(), crate::storage::StoreError> {
        self.store.delete(id).await
    }

    /// Removes the claim folders under the work folder whose owning process on this host is
    /// gone (it died mid-solve), and returns them. Run when a worker or `solve` starts.
    ///
    /// # Errors
    /// When the work folder cannot be listed; a folder that cannot be removed is logged and
    /// left for the next sweep.
    pub async fn sweep_abandoned(&self) -> Result<Vec<PathBuf>, WorkDirError> {
        let Some(here) = self.owner.clone() else {
            return Ok(Vec::new());
        };
        let work = self.work_dir.clone();
        tokio::task::spawn_blocking(move || sweep(&work, &here))
            .await
            .map_err(|e| {
                WorkDirError::io(format!("sweeping {}", self.work_dir.display()))(
                    std::io::Error::other(e),
                )
            })?
    }

    /// Solves a competition already on disk, in a folder of the claim's own that is removed
    /// when the solve ends, however it ends.
    ///
    /// # Errors
    /// See [`SolveError`]; its `is_retryable` tells a queue what to do.
    pub async fn solve(
        &self,
        job: &SolveJob<'_>,
        competition: &PreparedCompetition,
    ) -> Result<SolveReport, SolveError> {
        let claim =
            ClaimDir::create(&self.work_dir, &job.id, &job.claim, self.owner.as_ref()).await?;
        let solved = self.solve_in(job, competition, &claim).await;
        claim.remove().await;
        solved
    }

    async fn solve_in(
        &self,
        job: &SolveJob<'_>,
        competition: &PreparedCompetition,
        claim: &ClaimDir,
    ) -> Result<SolveReport, SolveError> {
        let analysis = timed(job, Stage::Analyse, 0, {
            let (dir, slug, text) = (
                competition.dir.clone(),
                competition.slug.clone(),
                competition.text.clone(),
            );
            let span = tracing::Span::current();
            async move {
                tokio::task::spawn_blocking(move || span.in_scope(|| analyse(&dir, &slug, &text)))
                    .await
                    .map_err(|e| SolveError::Internal(e.to_string()))?
                    .map_err(SolveError::Analyse)
            }
        })
        .await?;

        let docker = job.policy.sandbox.backends.contains(&Backend::Docker)
            && self.sandboxes.available().contains(&Backend::Docker);
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
                    records.push(record);
                    return Ok(SolveReport {
                        slug: competition.slug.clone(),
                        submission,
                        analysis,
                        attempts: records,
                        validation_score,
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

    /// Runs, validates and (if valid) stores one attempt's code. The outer error ends the
    /// solve; the inner one is the code's failure, fed back to the generator.
    async fn attempt(
        &self,
        job: &SolveJob<'_>,
        claim: &ClaimDir,
        competition: &PreparedCompetition,
        analysis: &CompetitionAnalysis,
        attempt: u32,
        record: &mut AttemptRecord,
    ) -> Result<Result<StoredSubmission, AttemptFailure>, SolveError> {
        let sandbox = match self.sandboxes.choose(job.policy, &record.code) {
            Ok(sandbox) => sandbox,
            Err(reason) => return Ok(Err(reason.into())),
        };
        record.backend = Some(sandbox.backend());
        let dir = claim.attempt(attempt).await?;
        let ran = self
            .run_and_validate(job, &dir, sandbox, competition, analysis, record)
            .await;
        // The submission is in memory now: nothing in the folder is needed any more.
        dir.remove().await;
        let submission = match ran? {
            Ok(contents) => contents,
            Err(failure) => return Ok(Err(failure)),
        };
        // Not raced against the cancel like the other stages: a put dropped midway would
        // leave its partial file behind. A cancel that lands during the put is the queue's to
        // apply: it fails the completion as cancelled.
        let stored = staged(job, Stage::Store, attempt, async {
            if job.cancel.is_cancelled() {
                return Err(SolveError::Cancelled);
            }
            match job.fence.check().await? {
                FenceVerdict::Held => {}
                FenceVerdict::Lost => return Err(SolveError::Lost),
                FenceVerdict::Cancelled => return Err(SolveError::Cancelled),
            }
            self.store
                .put(&job.id, &submission)
                .await
                .map_err(SolveError::Store)
        })
        .await?;
        Ok(Ok(stored))
    }

    /// Runs the code in `dir` and reads and validates the submission it left.
    async fn run_and_validate(
        &self,
        job: &SolveJob<'_>,
        dir: &AttemptDir,
        sandbox: &DynSandbox,
        competition: &PreparedCompetition,
        analysis: &CompetitionAnalysis,
        record: &mut AttemptRecord,
    ) -> Result<Result<Vec<u8>, AttemptFailure>, SolveError> {
        let attempt = dir.number;
        let output = dir.output.clone();
        let mut request = SandboxRequest::from_policy(record.code.clone(), &output, job.policy)
            .with_input(&competition.dir);
        request.scratch = Some(dir.root.clone());
        request.cancel = job.cancel.child_token();
        request.job = Some(job.id.clone());
        let outcome = timed(job, Stage::Run, attempt, async {
            sandbox.run(request).await.map_err(SolveError::Sandbox)
        })
        .await?;
        if outcome.cancelled {
            return Err(SolveError::Cancelled);
        }
        let failure = outcome.failure_summary();
        record.outcome = Some(outcome);
        if let Some(summary) = failure {
            return Ok(Err(AttemptFailure::Run { summary }));
        }
        let cap = job.policy.limits.output.0;
        let replaced = record
            .outcome
            .as_ref()
            .is_some_and(|o| o.removed_from_output.iter().any(|p| p == "submission.csv"));
        timed(job, Stage::Validate, attempt, async {
            let (dir, analysis) = (competition.dir.clone(), analysis.clone());
            let span = tracing::Span::current();
            tokio::task::spawn_blocking(move || {
                let _span = span.enter();
                // Read once, through the run's own folder and never through a link; what is
                // validated is exactly what is stored.
                if replaced {
                    return Err(AttemptFailure::Unreadable(OutputFileError::NotRegular {
                        name: "submission.csv".into(),
                        kind: "link or special file, deleted unread",
                    }));
                }
                let contents = match read_regular(&output, "submission.csv", cap) {
                    Ok(contents) => contents,
                    Err(error) => return Err(AttemptFailure::Unreadable(error)),
                };
                validate_submission(&contents, &dir, &analysis)?;
                Ok(contents)
            })
            .await
            .map_err(|e| SolveError::Internal(e.to_string()))
        })
        .await
    }
}

/// Reports the end of an attempt with its record.
fn ended(job: &SolveJob<'_>, record: &AttemptRecord, score: Option<f64>) {
    (job.events)(SolveEvent::AttemptEnded {
        record: Box::new(record.clone()),
        score,
    });
}

/// Runs `work` as `stage` ([`staged`]), stopping it when the job is cancelled.
async fn timed<T>(
    job: &SolveJob<'_>,
    stage: Stage,
    attempt: u32,
    work: impl Future<Output = Result<T, SolveError>>,
) -> Result<T, SolveError> {
    staged(job, stage, attempt, async {
        tokio::select! {
            result = work => result,
            () = job.cancel.cancelled() => Err(SolveError::Cancelled),
        }
    })
    .await
}

/// Runs `work` as `stage`, in a span of its own (so that every line it logs names the stage
/// and the attempt beside the caller's job), reporting its start and, if it succeeds, its end.
async fn staged<T>(
    job: &SolveJob<'_>,
    stage: Stage,
    attempt: u32,
    work: impl Future<Output = Result<T, SolveError>>,
) -> Result<T, SolveError> {
    (job.events)(SolveEvent::StageStarted { stage, attempt });
    let started = Instant::now();
    let span = tracing::info_span!("stage", %stage, attempt);
    let result = work.instrument(span).await?;
    (job.events)(SolveEvent::StageFinished {
        stage,
        attempt,
        millis: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    });
    Ok(result)
}
