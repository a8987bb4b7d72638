//! `kaggle-solver solve`: the embedded one-shot. Runs the whole pipeline in this process (no
//! Redis), shows progress per stage, and writes `submission.csv` to `--out`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use super::{CliError, PolicyArgs};
use crate::host::Host;
use crate::pipeline::fetch::{Caller, CompetitionRef, EnvLookup, FetchConfig, Fetcher};
use crate::pipeline::generate::{GeneratorKind, generator_from_env};
use crate::pipeline::solve::{PreparedCompetition, SolveEvent, SolveJob, Unleased};

#[derive(Debug, clap::Args)]
pub(crate) struct SolveArgs {
    /// A Kaggle competition URL, or a folder laid out like a Kaggle download.
    competition: String,
    /// Where to write submission.csv (and solution.py, the code that produced it).
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
        let started = Instant::now();
        let policy = self.policy.resolve()?;
        let source = CompetitionRef::parse(&self.competition)?;
        // Checked before any work, so a wrong secret is an error at once.
        let store = match &self.store {
            Some(url) => Some(super::store::open_store(url).await?),
            None => None,
        };
        let env = EnvLookup::process();
        let fetcher = Fetcher::new(FetchConfig::from_env(&env, Caller::Cli)?);
        super::progress("fetch ...");
        let fetch_started = Instant::now();
        let fetched = fetcher.fetch(&source).await?;
        super::progress(format!(
            "  fetch done in {:.1}s: {} from {}",
            fetch_started.elapsed().as_secs_f64(),
            fetched.slug,
            fetched.dir.display()
        ));
        let competition = PreparedCompetition::from(fetched);
        let generator = generator_from_env(self.generator, |name| std::env::var(name).ok())?;
        super::progress(format!("generator: {}", generator.name()));
        let mut builder = Host::builder()
            .generator(generator)
            .setup_progress(super::runtime::print_event);
        if let Some(store) = &store {
            builder = builder.store(store.clone());
        }
        let solver = builder.build_solver().await?;
        match solver.sweep_abandoned().await {
            Ok(swept) if swept.is_empty() => {}
            Ok(swept) => super::progress(format!(
                "removed {} work folder(s) of runs that died",
                swept.len()
            )),
            Err(error) => super::progress(format!("dead runs' work folders not swept: {error}")),
        }
        let job_id = uuid::Uuid::new_v4().to_string();
        let job = SolveJob {
            id: job_id.clone(),
            claim: SolveJob::new_claim(),
            policy: &policy,
            cancel: tokio_util::sync::CancellationToken::new(),
            events: &print_event,
            fence: &Unleased,
        };
        let cancel = job.cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                super::progress("interrupted: stopping");
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
        if let Some(last) = report.attempts.last() {
            let code = self.out.join("solution.py");
            std::fs::write(&code, &last.code)
                .map_err(|e| CliError::io(format!("writing {}", code.display()), e))?;
        }
        let score = report
            .validation_score
            .map(|s| format!(", validation score {s:.5}"))
            .unwrap_or_default();
        super::progress(format!(
            "wrote {} in {:.1}s after {} attempt(s){score}",
            target.display(),
            started.elapsed().as_secs_f64(),
            report.attempts.len()
        ));
        Ok(ExitCode::SUCCESS)
    }
}

fn print_event(event: SolveEvent) {
    match event {
        SolveEvent::StageStarted { stage, attempt: 0 } => super::progress(format!("{stage} ...")),
        SolveEvent::StageStarted { stage, attempt } => {
            super::progress(format!("attempt {attempt}: {stage} ..."))
        }
        SolveEvent::StageFinished { stage, millis, .. } => {
            super::progress(format!("  {stage} done in {:.1}s", millis as f64 / 1000.0));
        }
        SolveEvent::AttemptFailed { attempt, reason } => {
            super::progress(format!("attempt {attempt} failed: {reason}"));
        }
        // Its failure was printed as it came; the record is for logs.
        SolveEvent::AttemptEnded { .. } => {}
    }
}
