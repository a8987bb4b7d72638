//! `kaggle-solver solve`: the embedded one-shot. Runs the whole pipeline in this process (no
//! Redis), shows progress per stage, and writes `submission.csv` to `--out`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use super::{CliError, PolicyArgs};
use crate::pipeline::analyse::CompetitionText;
use crate::pipeline::generate::{BaselineGenerator, DynGenerator};
use crate::pipeline::solve::{PreparedCompetition, Sandboxes, SolveEvent, SolveJob, Solver};
use crate::sandbox::wasm::WasmSandbox;
use crate::storage::LocalStore;

/// Which code generator writes the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum GeneratorChoice {
    /// The built-in, offline, deterministic pandas + scikit-learn pipeline.
    #[default]
    Baseline,
}

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
    #[arg(long, value_enum, env = "KS_GENERATOR", default_value = "baseline")]
    generator: GeneratorChoice,
}

impl SolveArgs {
    pub(crate) async fn run(self) -> Result<ExitCode, CliError> {
        let started = Instant::now();
        let policy = self.policy.resolve()?;
        let competition = prepare_local(Path::new(&self.competition))?;
        super::progress(format!(
            "competition {} from {}",
            competition.slug,
            competition.dir.display()
        ));
        let home = ks_guest_runtime::RuntimeHome::from_env()
            .map_err(|e| CliError::Internal(e.to_string()))?;
        let wasm = tokio::task::spawn_blocking(|| {
            WasmSandbox::builder()
                .progress(super::runtime::print_event)
                .build()
        })
        .await
        .map_err(|e| CliError::Internal(e.to_string()))??;
        let generator: DynGenerator = match self.generator {
            GeneratorChoice::Baseline => Arc::new(BaselineGenerator),
        };
        let solver = Solver::new(
            generator,
            Sandboxes {
                wasm: Some(Arc::new(wasm)),
                docker: None,
            },
            Arc::new(LocalStore::new(home.root().join("submissions"))),
            home.root().join("work"),
        );
        let job = SolveJob {
            id: uuid::Uuid::new_v4().to_string(),
            policy: &policy,
            cancel: tokio_util::sync::CancellationToken::new(),
            events: &print_event,
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
        std::fs::copy(&report.submission.path, &target)
            .map_err(|e| CliError::io(format!("writing {}", target.display()), e))?;
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
    }
}

/// A competition folder on this machine: a Kaggle download (files at the top) or the MLE-bench
/// layout (files under `public/`), with its description from `description.md` if present.
fn prepare_local(path: &Path) -> Result<PreparedCompetition, CliError> {
    let dir = std::fs::canonicalize(path)
        .map_err(|e| CliError::io(format!("opening {}", path.display()), e))?;
    let data = if dir.join("public").is_dir() {
        dir.join("public")
    } else {
        dir.clone()
    };
    let slug = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "competition".to_owned());
    let description = std::fs::read_to_string(data.join("description.md")).ok();
    Ok(PreparedCompetition {
        slug,
        dir: data,
        text: CompetitionText {
            description,
            evaluation_metric: None,
        },
    })
}
