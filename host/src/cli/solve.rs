//! `kaggle-solver solve`: the embedded one-shot. Runs the whole pipeline in this process (no
//! Redis), shows progress per stage, and writes `submission.csv` to `--out`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use tracing::Instrument as _;

use super::progress::Progress;
use super::{CliError, PolicyArgs};
use crate::host::Host;
use crate::pipeline::fetch::{
    Caller, CompetitionRef, DownloadProgress, EnvLookup, FetchConfig, Fetcher,
};
use crate::pipeline::generate::{GeneratorKind, generator_from_env};
use crate::pipeline::solve::{
    PreparedCompetition, SolveEvent, SolveJob, Stage, Unleased, ValidationSource,
};

#[derive(Debug, clap::Args)]
pub(crate) struct SolveArgs {
    /// A Kaggle competition URL, or a folder laid out like a Kaggle download.
    competition: String,
    /// Where to write submission.csv (and solution.py, the code that produced it; after a
    /// search, search.json, its journal).
    #[arg(long, default_value = ".")]
    out: PathBuf,
    #[command(flatten)]
    policy: PolicyArgs,
    /// Which generator writes the code.
    #[arg(long, value_enum, env = "KS_GENERATOR", default_value = "auto")]
    generator: GeneratorKind,
    /// Where the submission is also kept: `s3://BUCKET/PREFIX` (with the `AWS_*` variables),
    /// `file://DIR`, or by default `$KS_HOME/submissions`.
    #[arg(long, env = "KS_STORE")]
    store: Option<String>,
}

impl SolveArgs {
    pub(crate) async fn run(self) -> Result<ExitCode, CliError> {
        let id = uuid::Uuid::new_v4().to_string();
        let span = tracing::info_span!("job", job = %id, slug = tracing::field::Empty);
        self.solve(id).instrument(span).await
    }

    async fn solve(self, id: String) -> Result<ExitCode, CliError> {
        let progress = Progress::new();
        let solved = self.solve_with(id, &progress).await;
        if solved.is_err() {
            progress.abandon();
        }
        solved
    }

    async fn solve_with(self, id: String, progress: &Arc<Progress>) -> Result<ExitCode, CliError> {
        let started = Instant::now();
        let policy = self.policy.resolve()?;
        let source = CompetitionRef::parse(&self.competition)?;
        // Checked before any work, so a wrong secret is an error at once.
        let store = match &self.store {
            Some(url) => Some(super::store::open_store(url).await?),
            None => None,
        };
        let env = EnvLookup::process();
        let bar = progress.clone();
        let fetcher = Fetcher::new(FetchConfig::from_env(&env, Caller::Cli)?)
            .with_download_progress(DownloadProgress::new(move |bytes, total| {
                bar.position(bytes, total)
            }));
        progress.step(Stage::Fetch.to_string());
        let fetched = fetcher
            .fetch(&source)
            .instrument(tracing::info_span!("stage", stage = %Stage::Fetch, attempt = 0))
            .await?;
        tracing::Span::current().record("slug", fetched.slug.as_str());
        progress.done();
        progress.line(format!("{} from {}", fetched.slug, fetched.dir.display()));
        let competition = PreparedCompetition::from(fetched);
        let generator = generator_from_env(self.generator, |name| std::env::var(name).ok())?;
        progress.line(format!("generator: {}", generator.name()));
        let setup = progress.clone();
        let mut builder = Host::builder()
            .generator(generator)
            .setup_progress(move |event| super::runtime::show_event(&setup, event));
        if let Some(store) = &store {
            builder = builder.store(store.clone());
        }
        let solver = builder.build_solver().await?;
        progress.done();
        match solver.sweep_abandoned().await {
            Ok(swept) if swept.is_empty() => {}
            Ok(swept) => progress.line(format!(
                "removed {} work folder(s) of runs that died",
                swept.len()
            )),
            Err(error) => progress.line(format!("dead runs' work folders not swept: {error}")),
        }
        let job_id = id.clone();
        let shown = progress.clone();
        let events = move |event| show_event(&shown, event);
        let job = SolveJob {
            id,
            claim: SolveJob::new_claim(),
            policy: &policy,
            cancel: tokio_util::sync::CancellationToken::new(),
            stop: tokio_util::sync::CancellationToken::new(),
            events: &events,
            fence: &Unleased,
        };
        let (cancel, stop) = (job.cancel.clone(), job.stop.clone());
        let interrupted = progress.clone();
        let searching = !policy.search.is_single_shot();
        // A search's first Ctrl-C ends it and keeps the best candidate; the next one (or a
        // single shot's first) cancels the job.
        tokio::spawn(async move {
            if searching && tokio::signal::ctrl_c().await.is_ok() {
                interrupted.line(
                    "interrupted: the search ends and submits its best candidate \
                     (Ctrl-C again to cancel)",
                );
                stop.cancel();
            }
            if tokio::signal::ctrl_c().await.is_ok() {
                interrupted.line("interrupted: stopping");
                cancel.cancel();
            }
        });
        let report = solver
            .solve(&job, &competition)
            .await
            .map_err(CliError::Solve)?;
        std::fs::create_dir_all(&self.out)
            .map_err(|e| CliError::io(format!("creating {}", self.out.display()), e))?;
        let target = self.out.join("submission.csv");
        match &store {
            Some(store) => super::store::copy_submission(store, &job_id, &target).await?,
            None => {
                std::fs::copy(&report.submission.path, &target)
                    .map_err(|e| CliError::io(format!("writing {}", target.display()), e))?;
            }
        }
        let write = |path: &std::path::Path, bytes: &[u8]| {
            std::fs::write(path, bytes)
                .map_err(|e| CliError::io(format!("writing {}", path.display()), e))
        };
        if let Some(last) = report.attempts.last() {
            write(&self.out.join("solution.py"), last.code.as_bytes())?;
        }
        // The journal a service keeps in the job's logs: every candidate's code, host score,
        // time and error, beside the one submitted. A single shot has none, and an earlier
        // search's journal must not sit beside this submission as if it were its own.
        let journal = self.out.join("search.json");
        match &report.search {
            Some(search) => {
                let text = serde_json::to_vec_pretty(search)
                    .map_err(|e| CliError::Internal(e.to_string()))?;
                write(&journal, &text)?;
            }
            None => match std::fs::remove_file(&journal) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(CliError::io(format!("removing {}", journal.display()), e));
                }
                _ => {}
            },
        }
        let source = match report.validation_score_source {
            Some(ValidationSource::Host) => " (host, on the holdout)",
            _ => " (printed by the script)",
        };
        let score = report
            .validation_score
            .map(|s| format!(", validation score {s:.5}{source}"))
            .unwrap_or_default();
        progress.line(format!(
            "wrote {} in {:.1}s after {} attempt(s){score}",
            target.display(),
            started.elapsed().as_secs_f64(),
            report.attempts.len()
        ));
        Ok(ExitCode::SUCCESS)
    }
}

/// Shows a solve's event: each stage a step of its own, failures and replies as lines.
fn show_event(progress: &Progress, event: SolveEvent) {
    match event {
        SolveEvent::StageStarted { stage, attempt: 0 } => progress.step(stage.to_string()),
        SolveEvent::StageStarted { stage, attempt } => {
            progress.step(format!("attempt {attempt}: {stage}"));
        }
        SolveEvent::StageFinished { .. } => progress.done(),
        SolveEvent::Generated {
            attempt,
            llm: Some(llm),
        } => progress.line(format!(
            "attempt {attempt}: {} replied ({} tokens in, {} out)",
            llm.provider, llm.input_tokens, llm.output_tokens
        )),
        SolveEvent::Generated { llm: None, .. } => {}
        SolveEvent::AttemptFailed { attempt, reason } => {
            progress.abandon();
            progress.line(format!("attempt {attempt} failed: {reason}"));
        }
        // Its failure was printed as it came; the record is for logs.
        SolveEvent::AttemptEnded { .. } => {}
        SolveEvent::CandidateStarted { .. } => {}
        SolveEvent::CandidateFailed { .. } => {
            progress.abandon();
            if let Some(line) = event.journal_line() {
                progress.line(line);
            }
        }
        other => {
            if let Some(line) = other.journal_line() {
                progress.line(line);
            }
        }
    }
}
