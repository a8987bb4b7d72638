//! Orchestration of one job: analyse → (generate → run → validate) per attempt → store.
//!
//! A failure of the generated code (a crash, a cap, an invalid submission) uses one attempt and
//! is fed back to the generator; anything else (the sandbox, the generator's service, storage)
//! ends the solve with an error that says whether retrying later may help.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ks_policies::Policy;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::analyse::{AnalyseError, CompetitionAnalysis, CompetitionText, analyse};
use super::generate::{DynGenerator, GenerateError, GenerationRequest, PreviousAttempt};
use super::validate::{InvalidSubmission, validate_submission};
use crate::sandbox::{
    Backend, BackendChoice, DynSandbox, Outcome, OutputFileError, SandboxError, SandboxRequest,
    SelectError, read_regular, select_backend,
};
use crate::storage::{DynStore, StoreError, StoredSubmission};
use crate::text::{ERROR_TAIL_CHARS, tail};

/// A stage of the pipeline, for progress and status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Getting the competition's files.
    Fetch,
    /// Analysing them.
    Analyse,
    /// Writing code.
    Generate,
    /// Running it in a sandbox.
    Run,
    /// Checking the submission.
    Validate,
    /// Storing it.
    Store,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Fetch => "fetch",
            Self::Analyse => "analyse",
            Self::Generate => "generate",
            Self::Run => "run",
            Self::Validate => "validate",
            Self::Store => "store",
        })
    }
}

/// Why one attempt's code failed: fed back to the generator, and the next attempt runs.
#[derive(Debug, thiserror::Error)]
pub enum AttemptFailure {
    /// No sandbox the policy allows can run the code on this host.
    #[error(transparent)]
    Backend(#[from] SelectError),
    /// The code crashed, exited non-zero or broke a cap.
    #[error("{summary}")]
    Run {
        /// The sandbox outcome's one-line summary.
        summary: String,
    },
    /// The code ran but left no readable `/output/submission.csv` (none, or a link, a
    /// folder or a special file in its place).
    #[error("invalid submission: {0}")]
    Unreadable(#[from] OutputFileError),
    /// The code ran but its submission does not match the sample.
    #[error(transparent)]
    Invalid(#[from] InvalidSubmission),
}

impl Serialize for AttemptFailure {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Something that happened during a solve.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum SolveEvent {
    /// A stage began (`attempt` is 0 outside the attempt loop).
    StageStarted {
        stage: Stage,
        /// The attempt it belongs to.
        attempt: u32,
    },
    /// A stage ended well.
    StageFinished {
        stage: Stage,
        /// The attempt it belongs to.
        attempt: u32,
        /// How long it took.
        millis: u64,
    },
    /// An attempt failed; the reason goes to the generator.
    AttemptFailed {
        attempt: u32,
        /// Why.
        reason: AttemptFailure,
    },
}

/// One attempt's record, for the job's logs.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptRecord {
    /// 1-based.
    pub attempt: u32,
    /// Which generator wrote the code.
    pub generator: String,
    pub code: String,
    /// The backend that ran it, if it ran.
    pub backend: Option<Backend>,
    /// The sandbox outcome, if it ran.
    pub outcome: Option<Outcome>,
    /// Why the attempt failed, if it did.
    pub error: Option<String>,
}

/// What a successful solve produced.
#[derive(Debug, Clone, Serialize)]
pub struct SolveReport {
    /// The competition.
    pub slug: String,
    /// Where the submission is.
    pub submission: StoredSubmission,
    /// The analysis the code was written from.
    pub analysis: CompetitionAnalysis,
    /// Every attempt, the last one successful.
    pub attempts: Vec<AttemptRecord>,
    /// The validation score the script printed, if it printed a finite one: its own claim,
    /// not checked by the host.
    pub validation_score: Option<f64>,
}

/// Why a solve ended without a submission.
#[derive(Debug, thiserror::Error)]
pub enum SolveError {
    /// The competition's files do not make a task.
    #[error("cannot analyse the competition: {0}")]
    Analyse(#[source] AnalyseError),
    /// The generator could not produce code.
    #[error("cannot generate code: {0}")]
    Generate(#[source] GenerateError),
    /// The sandbox could not run the code.
    #[error("cannot run the code: {0}")]
    Sandbox(#[source] SandboxError),
    /// The submission could not be stored.
    #[error("cannot store the submission: {0}")]
    Store(#[source] StoreError),
    /// Every attempt's code failed.
    #[error("all {attempts} attempts failed; the last: {last_error}")]
    AttemptsExhausted {
        /// How many attempts ran.
        attempts: u32,
        /// The last attempt's failure.
        last_error: String,
        /// Every attempt.
        records: Vec<AttemptRecord>,
    },
    /// The job was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// A host-side failure (a blocking task panicked, a folder could not be made).
    #[error("internal error: {0}")]
    Internal(String),
}

impl SolveError {
    /// Whether the same job may succeed if run again later (an infrastructure hiccup), as opposed
    /// to a failure that will recur.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Generate(e) => e.is_retryable(),
            Self::Sandbox(e) => e.is_retryable(),
            Self::Store(e) => e.is_retryable(),
            Self::Internal(_) => true,
            Self::Analyse(_) | Self::AttemptsExhausted { .. } | Self::Cancelled => false,
        }
    }
}

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

/// A competition whose files are on disk.
#[derive(Debug, Clone)]
pub struct PreparedCompetition {
    /// Its slug.
    pub slug: String,
    /// The folder holding its files (mounted at `/input`).
    pub dir: PathBuf,
    /// What its page says.
    pub text: CompetitionText,
    /// Keeps a cached competition from being evicted while this job has it mounted; `None`
    /// for folders the cache does not manage.
    pub pin: Option<std::sync::Arc<super::fetch::CachePin>>,
}

impl From<super::fetch::FetchedCompetition> for PreparedCompetition {
    fn from(fetched: super::fetch::FetchedCompetition) -> Self {
        Self {
            slug: fetched.slug,
            dir: fetched.dir,
            text: CompetitionText {
                description: fetched.description,
                evaluation_metric: fetched.evaluation_metric,
            },
            pin: fetched.pin.map(std::sync::Arc::new),
        }
    }
}

/// One job's identity and controls.
pub struct SolveJob<'a> {
    /// The job id: the storage key and the work folder's name.
    pub id: String,
    /// The policy it runs under.
    pub policy: &'a Policy,
    /// Cancelling stops the job between and during attempts.
    pub cancel: CancellationToken,
    /// Receives progress.
    pub events: &'a (dyn Fn(SolveEvent) + Send + Sync),
}

impl std::fmt::Debug for SolveJob<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SolveJob")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Runs jobs: the generator, the sandboxes and the store it uses, and where it works.
#[derive(Debug, Clone)]
pub struct Solver {
    generator: DynGenerator,
    sandboxes: Sandboxes,
    store: DynStore,
    work_dir: PathBuf,
}

impl Solver {
    /// A solver writing attempts' outputs under `work_dir`.
    pub fn new(
        generator: DynGenerator,
        sandboxes: Sandboxes,
        store: DynStore,
        work_dir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            generator,
            sandboxes,
            store,
            work_dir: work_dir.into(),
        }
    }

    /// The sandbox backends this solver can run code in on this host.
    pub fn backends(&self) -> Vec<Backend> {
        self.sandboxes.available()
    }

    /// Solves a competition already on disk.
    ///
    /// # Errors
    /// See [`SolveError`]; its `is_retryable` tells a queue what to do.
    pub async fn solve(
        &self,
        job: &SolveJob<'_>,
        competition: &PreparedCompetition,
    ) -> Result<SolveReport, SolveError> {
        let analysis = timed(job, Stage::Analyse, 0, {
            let (dir, slug, text) = (
                competition.dir.clone(),
                competition.slug.clone(),
                competition.text.clone(),
            );
            async move {
                tokio::task::spawn_blocking(move || analyse(&dir, &slug, &text))
                    .await
                    .map_err(|e| SolveError::Internal(e.to_string()))?
                    .map_err(SolveError::Analyse)
            }
        })
        .await?;

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
            };
            let generated = timed(job, Stage::Generate, attempt, async {
                self.generator
                    .generate(&request)
                    .await
                    .map_err(SolveError::Generate)
            })
            .await?;
            let mut record = AttemptRecord {
                attempt,
                generator: generated.generator.clone(),
                code: generated.code.clone(),
                backend: None,
                outcome: None,
                error: None,
            };
            match self
                .attempt(job, competition, &analysis, attempt, &mut record)
                .await?
            {
                Ok(submission) => {
                    let validation_score = record
                        .outcome
                        .as_ref()
                        .and_then(|o| printed_score(&o.stdout));
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

    /// Runs and validates one attempt's code. The outer error ends the solve; the inner one is
    /// the code's failure, fed back to the generator.
    async fn attempt(
        &self,
        job: &SolveJob<'_>,
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
        let output = self
            .work_dir
            .join(&job.id)
            .join(format!("attempt-{attempt}"));
        recreate_dir(&output).await?;
        let mut request = SandboxRequest::from_policy(record.code.clone(), &output, job.policy)
            .with_input(&competition.dir);
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
        let validated = timed(job, Stage::Validate, attempt, async {
            let (output, dir, analysis) =
                (output.clone(), competition.dir.clone(), analysis.clone());
            tokio::task::spawn_blocking(move || {
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
        .await?;
        let submission = match validated {
            Ok(contents) => contents,
            Err(failure) => return Ok(Err(failure)),
        };
        let stored = timed(job, Stage::Store, attempt, async {
            self.store
                .put(&job.id, &submission)
                .await
                .map_err(SolveError::Store)
        })
        .await?;
        Ok(Ok(stored))
    }
}

async fn timed<T>(
    job: &SolveJob<'_>,
    stage: Stage,
    attempt: u32,
    work: impl Future<Output = Result<T, SolveError>>,
) -> Result<T, SolveError> {
    (job.events)(SolveEvent::StageStarted { stage, attempt });
    let started = Instant::now();
    let result = tokio::select! {
        result = work => result?,
        () = job.cancel.cancelled() => return Err(SolveError::Cancelled),
    };
    (job.events)(SolveEvent::StageFinished {
        stage,
        attempt,
        millis: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    });
    Ok(result)
}

async fn recreate_dir(dir: &Path) -> Result<(), SolveError> {
    if tokio::fs::try_exists(dir).await.unwrap_or(false) {
        tokio::fs::remove_dir_all(dir)
            .await
            .map_err(|e| SolveError::Internal(format!("clearing {}: {e}", dir.display())))?;
    }
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| SolveError::Internal(format!("creating {}: {e}", dir.display())))
}

/// The score from a line like `validation accuracy: 0.93412 ...` that the baseline prints.
fn printed_score(stdout: &str) -> Option<f64> {
    stdout.lines().rev().find_map(|line| {
        let rest = line.trim().strip_prefix("validation ")?;
        let (_, value) = rest.split_once(':')?;
        value
            .split_whitespace()
            .next()?
            .parse()
            .ok()
            .filter(|x: &f64| x.is_finite())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_printed_validation_score() {
        assert_eq!(
            printed_score("fit\nvalidation rmse: 0.12500 over 3 hold-outs\nwrote\n"),
            Some(0.125)
        );
        assert_eq!(printed_score("nothing here\n"), None);
        assert_eq!(printed_score("validation auc: NaN\n"), None);
        assert_eq!(printed_score("validation auc: inf\n"), None);
    }
}
