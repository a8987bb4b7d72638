//! Orchestration of one job: analyse → (generate → run → validate) per attempt → store.
//!
//! A failure of the generated code (a crash, a cap, an invalid submission) or a reply without
//! code uses one attempt and is fed back to the generator; anything else (the sandbox, the generator's service, storage)
//! ends the solve with an error that says whether retrying later may help.
//!
//! Each solve works in its claim's own folder (see `workdir`), and leaves nothing there: an
//! attempt's folder goes when the attempt ends, the claim's when the solve does. The
//! submission is stored only after the caller's fence confirms that this claim still owns the
//! job. Parts: `types` (stages, events, records, errors), `job` (what a caller hands in),
//! `route` (which backends the data allows), `single` (the single shot), `candidate` (one
//! candidate of a search), `run` (running code on a folder, validating and storing what it
//! wrote) and `blend` (the host's blend of the best candidates).
//!
//! When the policy asks for several candidates, the job is a search instead: each candidate
//! runs in a holdout view of the competition (training rows the host set aside, their answers
//! kept out of the sandbox), the host scores what it writes, and the best by that score is
//! re-run on the full data to write the submission (the next best if that run fails). The
//! search's decisions are `search`'s; this module runs them.

mod blend;
mod candidate;
mod job;
mod route;
mod run;
mod search;
mod single;
mod types;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ks_policies::Policy;
use ks_sandbox_fallback::owner::Owner;
use tracing::Instrument as _;

pub use job::{FenceError, FenceVerdict, PreparedCompetition, SolveJob, StoreFence, Unleased};
use search::{Ask, SearchState, Tried};
pub use types::{
    AttemptFailure, AttemptRecord, CandidateRecord, SearchEnd, SearchSummary, SolveError,
    SolveEvent, SolveReport, Stage, ValidationSource,
};

use super::analyse::{AnalyseError, CompetitionAnalysis, CompetitionText, analyse, convert};
use super::generate::DynGenerator;
use super::score::{
    Answers, HOLDOUT_FRACTION, HoldoutError, HoldoutSpec, Split, build_view, compare, holdout_spec,
    job_seed,
};
use super::workdir::{ClaimDir, WorkDirError, sweep};
use crate::sandbox::{Backend, BackendChoice, DynSandbox, SelectError, select_backend};
use crate::storage::DynStore;
use crate::text::quote;

/// A job's holdout: a view per fold, every fold's answers together (what a candidate's joined
/// fold submissions are scored against), and how its rows were chosen.
struct Holdout {
    folds: Vec<PathBuf>,
    answers: Answers,
    split: String,
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
        let started = Instant::now();
        let (analysis, converted) = timed(job, Stage::Analyse, 0, {
            let (dir, slug, text) = (
                competition.dir.clone(),
                competition.slug.clone(),
                competition.text.clone(),
            );
            let dest = claim.converted_tables();
            let span = tracing::Span::current();
            async move {
                tokio::task::spawn_blocking(move || {
                    span.in_scope(|| analyse_converted(&dir, &dest, &slug, &text))
                })
                .await
                .map_err(|e| SolveError::Internal(e.to_string()))?
                .map_err(SolveError::Analyse)
            }
        })
        .await?;
        // With spreadsheets or parquet, every later step reads the folder where they are CSV.
        let prepared;
        let competition = match converted {
            Some(dir) => {
                prepared = PreparedCompetition {
                    slug: competition.slug.clone(),
                    dir,
                    text: competition.text.clone(),
                    pin: competition.pin.clone(),
                };
                &prepared
            }
            None => competition,
        };
        let routed = match route::route(&analysis, job.policy, &self.sandboxes.available()) {
            Ok(route::Route::AsIs) => None,
            Ok(route::Route::DockerOnly(policy)) => Some(policy),
            Err(error) => return Err(SolveError::Analyse(error)),
        };
        let routed_job = routed.as_deref().map(|policy| SolveJob {
            id: job.id.clone(),
            claim: job.claim.clone(),
            policy,
            cancel: job.cancel.clone(),
            stop: job.stop.clone(),
            events: job.events,
            fence: job.fence,
        });
        let job = routed_job.as_ref().unwrap_or(job);

        let docker = job.policy.sandbox.backends.contains(&Backend::Docker)
            && self.sandboxes.available().contains(&Backend::Docker);
        if !job.policy.search.is_single_shot() {
            match self.holdout(job, competition, &analysis, claim).await? {
                Ok(holdout) => {
                    (job.events)(SolveEvent::HoldoutReady {
                        split: holdout.split.clone(),
                    });
                    return self
                        .search(job, competition, analysis, claim, &holdout, docker, started)
                        .await;
                }
                Err(reason) => {
                    tracing::warn!(job = %job.id, %reason, "no holdout: the job runs a single shot");
                    (job.events)(SolveEvent::SearchSkipped { reason });
                }
            }
        }
        self.single_shot(job, competition, analysis, claim, docker)
            .await
    }

    /// Builds the job's holdout view in the claim's folder. The inner error says why the job
    /// cannot have one (too few rows, a single group, a side file carrying a target, tables
    /// the split cannot read): the job then runs a single shot.
    async fn holdout(
        &self,
        job: &SolveJob<'_>,
        competition: &PreparedCompetition,
        analysis: &CompetitionAnalysis,
        claim: &ClaimDir,
    ) -> Result<Result<Holdout, String>, SolveError> {
        let (dir, root) = (competition.dir.clone(), claim.holdout_view());
        let (analysis, seed) = (analysis.clone(), job_seed(&job.id));
        let folds = usize::try_from(job.policy.search.folds).unwrap_or(1);
        let built = timed(job, Stage::Analyse, 0, async move {
            tokio::task::spawn_blocking(move || {
                let spec = holdout_spec(&analysis, &dir, seed, folds)?;
                let mut answers = Answers {
                    id_column: spec.id_column.clone(),
                    columns: spec.targets.clone(),
                    rows: Vec::new(),
                };
                let mut views = Vec::new();
                for fold in 0..spec.folds {
                    let view = root.join(format!("fold-{}", fold + 1));
                    let spec = HoldoutSpec {
                        fold,
                        ..spec.clone()
                    };
                    let held = build_view(&dir, &view, &spec)?;
                    answers.rows.extend(held.rows.iter().cloned());
                    views.push(view);
                }
                Ok::<_, HoldoutError>(Holdout {
                    split: describe(&spec.split, spec.folds, analysis.train.rows),
                    folds: views,
                    answers,
                })
            })
            .await
            .map_err(|e| SolveError::Internal(e.to_string()))
        })
        .await?;
        Ok(built.map_err(|e| e.to_string()))
    }

    /// The search: candidates on the holdout within the budget, then the best on the full
    /// data (the next best when a final run fails).
    #[allow(clippy::too_many_arguments)] // the job's whole context, as `solve_in` has it
    async fn search(
        &self,
        job: &SolveJob<'_>,
        competition: &PreparedCompetition,
        analysis: CompetitionAnalysis,
        claim: &ClaimDir,
        holdout: &Holdout,
        docker: bool,
        started: Instant,
    ) -> Result<SolveReport, SolveError> {
        let metric = analysis.scored_metric();
        let mut state = SearchState::new(&job.policy.search, job.policy.attempts.max, metric)
            .with_folds(holdout.folds.len());
        let mut run = 0;
        // Unset, one candidate at a time: a worker's share of a small machine.
        let width = job.policy.search.parallel.unwrap_or(1).max(1);
        let end = loop {
            // Asked to stop: keep the best, once there is one to keep.
            if job.stop.is_cancelled() && state.best_score().is_some() {
                break SearchEnd::Stopped;
            }
            let asks = match state.next_batch(started.elapsed(), width) {
                Ok(asks) => asks,
                Err(end) => break end,
            };
            if job.cancel.is_cancelled() {
                return Err(SolveError::Cancelled);
            }
            let wall = state.run_wall_time(job.policy.limits.wall_time, started.elapsed());
            let batch: Vec<(Ask, u32)> = asks
                .into_iter()
                .map(|ask| {
                    run += 1;
                    (ask, run)
                })
                .collect();
            // A stop halts the batch's candidates when a best is already kept; before that,
            // the batch runs on, so that the job has something to submit.
            let halt = job.cancel.child_token();
            let all = futures_util::future::join_all(batch.iter().map(|(ask, run)| {
                // Every line of the candidate's stages carries its number and kind.
                let span =
                    tracing::info_span!("candidate", candidate = ask.number, kind = %ask.kind);
                self.try_candidate(
                    job, claim, holdout, &analysis, ask, *run, wall, docker, &halt,
                )
                .instrument(span)
            }));
            tokio::pin!(all);
            let tried = if state.best_score().is_some() {
                tokio::select! {
                    tried = &mut all => tried,
                    () = job.stop.cancelled() => {
                        halt.cancel();
                        all.await
                    }
                }
            } else {
                all.await
            };
            for tried in tried {
                let tried = tried?;
                let (number, kind, score, millis) = (
                    tried.record.candidate,
                    tried.record.kind,
                    tried.score,
                    tried.record.millis,
                );
                state.tried.push(tried);
                if let (Some(score), Some(best_score)) = (score, state.best_score()) {
                    (job.events)(SolveEvent::CandidateScored {
                        candidate: number,
                        kind,
                        metric,
                        score: score.value,
                        best_score,
                        candidates_tried: state.tried_count(),
                        millis,
                    });
                }
            }
        };
        (job.events)(SolveEvent::SearchEnded {
            end,
            best_score: state.best_score(),
            candidates_tried: state.tried_count(),
            tokens: state.tokens(),
        });
        if end == SearchEnd::OutOfBudget {
            tracing::warn!(job = %job.id, "out of time budget: the best candidate so far is submitted");
        }

        let wins = |top: &Tried, first: &Tried| match (&top.submission, &first.submission) {
            (Some(a), Some(b)) => compare::paired_wins(
                a,
                b,
                &holdout.answers,
                &analysis,
                compare::RESAMPLES,
                job_seed(&job.id),
            )
            .unwrap_or_else(|e| {
                // Both were scored already, so this is not expected; the first keeps its place.
                tracing::warn!(job = %job.id, error = %e, "could not compare two candidates");
                0.0
            }),
            _ => 0.0,
        };
        let ranked: Vec<Tried> = state.submission_order(wins).into_iter().cloned().collect();
        let mut finals = Vec::new();
        // Full-data submissions already made (a blend's members), by candidate.
        let mut made: HashMap<u32, Vec<u8>> = HashMap::new();
        let summary = |state: &SearchState, submitted, blend| SearchSummary {
            holdout: holdout.split.clone(),
            metric,
            submitted,
            best_score: state.best_score().unwrap_or_default(),
            candidates_tried: state.tried_count(),
            end,
            tokens: state.tokens(),
            candidates: state.tried.iter().map(|t| t.record.clone()).collect(),
            blend,
        };
        if let Some(chosen) = self
            .choose_blend(job, &state, &ranked, holdout, &analysis, started)
            .await?
        {
            let stored = self
                .submit_blend(
                    job,
                    claim,
                    competition,
                    &analysis,
                    &ranked,
                    &chosen,
                    &mut run,
                    &mut finals,
                    &mut made,
                )
                .await?;
            if let Some(submission) = stored {
                let runtime = runtime(finals.last().and_then(|r| r.backend), job.policy);
                return Ok(SolveReport {
                    slug: competition.slug.clone(),
                    submission,
                    analysis,
                    attempts: finals,
                    validation_score: Some(chosen.score),
                    validation_score_source: Some(ValidationSource::Host),
                    search: Some(summary(
                        &state,
                        ranked[0].record.candidate,
                        Some(chosen.journal(&ranked)),
                    )),
                    runtime,
                    seed: Some(job_seed(&job.id)),
                });
            }
        }
        for best in &ranked {
            let candidate = best.record.candidate;
            let score = best.score.map(|s| s.value);
            // Already run on the full data as a member of a blend that did not hold.
            if let Some(made) = made.remove(&candidate) {
                let submission = self.store(job, run, &made).await?;
                let backend = finals
                    .iter()
                    .rev()
                    .find(|r| r.candidate == Some(candidate))
                    .and_then(|r| r.backend);
                return Ok(SolveReport {
                    slug: competition.slug.clone(),
                    submission,
                    analysis,
                    attempts: finals,
                    validation_score: score,
                    validation_score_source: Some(ValidationSource::Host),
                    search: Some(summary(&state, candidate, None)),
                    runtime: runtime(backend, job.policy),
                    seed: Some(job_seed(&job.id)),
                });
            }
            run += 1;
            let mut record = AttemptRecord {
                attempt: run,
                generator: best.record.generator.clone(),
                code: best.record.code.clone(),
                backend: None,
                outcome: None,
                error: None,
                candidate: Some(candidate),
            };
            match self
                .attempt(job, claim, competition, &analysis, run, &mut record)
                .await?
            {
                Ok(submission) => {
                    ended(job, &record, score);
                    let runtime = runtime(record.backend, job.policy);
                    finals.push(record);
                    return Ok(SolveReport {
                        slug: competition.slug.clone(),
                        submission,
                        analysis,
                        attempts: finals,
                        validation_score: score,
                        validation_score_source: Some(ValidationSource::Host),
                        search: Some(summary(&state, candidate, None)),
                        runtime,
                        seed: Some(job_seed(&job.id)),
                    });
                }
                Err(failure) => {
                    let reason = format!(
                        "candidate {} failed on the full data: {failure}",
                        best.record.candidate
                    );
                    (job.events)(SolveEvent::AttemptFailed {
                        attempt: run,
                        reason: failure,
                    });
                    record.error = Some(reason);
                    ended(job, &record, None);
                    finals.push(record);
                }
            }
        }
        // Nothing to submit: every candidate failed, on the holdout or on the full data.
        let mut records: Vec<AttemptRecord> = state
            .tried
            .iter()
            .filter(|t| t.score.is_none())
            .map(|t| AttemptRecord {
                attempt: t.record.candidate,
                generator: t.record.generator.clone(),
                code: t.record.code.clone(),
                backend: t.record.backend,
                outcome: t.outcome.clone(),
                error: t.record.error.clone(),
                candidate: Some(t.record.candidate),
            })
            .collect();
        records.extend(finals);
        let last_error = records
            .last()
            .and_then(|r| r.error.clone())
            .unwrap_or_else(|| end.to_string());
        Err(SolveError::AttemptsExhausted {
            attempts: u32::try_from(records.len()).unwrap_or(u32::MAX),
            last_error,
            records,
        })
    }
}

/// Reports the end of an attempt with its record.
fn ended(job: &SolveJob<'_>, record: &AttemptRecord, score: Option<f64>) {
    (job.events)(SolveEvent::AttemptEnded {
        record: Box::new(record.clone()),
        score,
    });
}

/// What runs code on `backend` under `policy`, with its version, for a submission's
/// provenance.
fn runtime(backend: Option<Backend>, policy: &Policy) -> String {
    match backend {
        Some(Backend::Wasm) => {
            let lock = ks_guest_runtime::RuntimeLock::pinned();
            format!("wasi {} {}", lock.package(), lock.version())
        }
        Some(Backend::Docker) => format!("docker {}", policy.docker.image),
        None => "none".to_owned(),
    }
}

/// How a holdout's rows were chosen, for the logs.
fn describe(split: &Split, folds: usize, rows: u64) -> String {
    let how = match split {
        Split::Random => "at random".to_owned(),
        Split::Stratified(column) => format!("stratified by {}", quote(column)),
        Split::Group(column) => format!("by whole groups of {}", quote(column)),
        Split::Time(column) => format!("the latest by {}", quote(column)),
    };
    if folds > 1 {
        return format!(
            "{rows} training rows dealt into {folds} folds {how}, each held out once: every \
             row scores each candidate"
        );
    }
    format!(
        "{:.0}% of {rows} training rows held out, {how}",
        HOLDOUT_FRACTION * 100.0
    )
}

/// Converts the spreadsheets and parquet files of the competition in `dir` into `dest` (see
/// `convert`) and
/// analyses the result; the converted folder, if one was made, is returned with the analysis.
fn analyse_converted(
    dir: &Path,
    dest: &Path,
    slug: &str,
    text: &CompetitionText,
) -> Result<(CompetitionAnalysis, Option<PathBuf>), AnalyseError> {
    let converted = convert::convert_tables(dir, dest)?;
    let at = converted.as_ref().map_or(dir, |c| c.dir.as_path());
    let mut analysis = analyse(at, slug, text)?;
    if let Some(converted) = &converted {
        analysis.tables.converted.clone_from(&converted.tables);
    }
    Ok((analysis, converted.map(|c| c.dir)))
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
