//! The solving pipeline end to end in-process: the baseline on the bundled demo competition,
//! and the attempt loop feeding a failure back to the generator (through a fake LLM server
//! and through a scripted generator), all on the real WASI sandbox.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, ensure};
use async_trait::async_trait;
use kaggle_solver::pipeline::analyse::CompetitionText;
use kaggle_solver::pipeline::generate::{
    BaselineGenerator, DynGenerator, GenerateError, GeneratedCode, GenerationRequest, Generator,
};
use kaggle_solver::pipeline::solve::{
    PreparedCompetition, Sandboxes, SolveError, SolveJob, SolveReport, Solver, Unleased,
};
use kaggle_solver::storage::LocalStore;
use ks_policies::Policy;
use tokio_util::sync::CancellationToken;

use crate::llm::fake::{Fake, Provider, ok};
use crate::support::wasm_sandbox;
use kaggle_solver::storage::StoreKind;

pub(crate) const DEMO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../examples/competitions/penguins"
);
const DEMO_ANSWERS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tools/eval/demo-answers/penguins/private/answers.csv"
);

/// Writes a valid submission for the demo: the most common species for every id.
const GOOD: &str = "import pandas as pd\n\
train = pd.read_csv('/input/train.csv')\n\
sub = pd.read_csv('/input/sample_submission.csv')\n\
sub['species'] = train['species'].mode()[0]\n\
sub.to_csv('/output/submission.csv', index=False)\n";

pub(crate) fn demo() -> PreparedCompetition {
    PreparedCompetition {
        slug: "penguins".into(),
        dir: DEMO.into(),
        text: CompetitionText {
            description: std::fs::read_to_string(Path::new(DEMO).join("description.md")).ok(),
            evaluation_metric: None,
        },
        pin: None,
    }
}

/// The default policy as a single shot: these tests are not about the search.
pub(crate) fn single_shot() -> Policy {
    let mut policy = Policy::default();
    policy.search.candidates = 1;
    policy
}

pub(crate) struct Harness {
    pub(crate) solver: Solver,
    _work: tempfile::TempDir,
}

pub(crate) fn harness(generator: DynGenerator) -> Harness {
    let work = tempfile::tempdir().expect("tempdir");
    let solver = Solver::new(
        generator,
        Sandboxes {
            wasm: Some(Arc::new(wasm_sandbox())),
            docker: None,
        },
        Arc::new(LocalStore::new(work.path().join("store"))),
        work.path().join("work"),
    );
    Harness {
        solver,
        _work: work,
    }
}

async fn solve(harness: &Harness, policy: &Policy) -> Result<SolveReport, SolveError> {
    solve_competition(harness, policy, &demo()).await
}

pub(crate) async fn solve_competition(
    harness: &Harness,
    policy: &Policy,
    competition: &PreparedCompetition,
) -> Result<SolveReport, SolveError> {
    let job = SolveJob {
        id: "job-1".into(),
        claim: SolveJob::new_claim(),
        policy,
        cancel: CancellationToken::new(),
        stop: CancellationToken::new(),
        events: &|_| {},
        fence: &Unleased,
    };
    harness.solver.solve(&job, competition).await
}

/// Plays canned code, one per attempt, and records what each request carried.
#[derive(Debug, Default)]
pub(crate) struct Scripted {
    codes: Mutex<VecDeque<String>>,
    pub(crate) previous_errors: Mutex<Vec<Option<String>>>,
}

#[async_trait]
impl Generator for Scripted {
    fn name(&self) -> String {
        "scripted".into()
    }

    async fn generate(
        &self,
        request: &GenerationRequest<'_>,
    ) -> Result<GeneratedCode, GenerateError> {
        self.previous_errors
            .lock()
            .expect("lock")
            .push(request.previous.as_ref().map(|p| p.error.clone()));
        let code = self
            .codes
            .lock()
            .expect("lock")
            .pop_front()
            .ok_or(GenerateError::NoCode {
                provider: "scripted".into(),
                llm: None,
            })?;
        Ok(GeneratedCode {
            code,
            generator: self.name(),
            llm: None,
        })
    }
}

pub(crate) fn scripted(codes: &[&str]) -> Arc<Scripted> {
    Arc::new(Scripted {
        codes: Mutex::new(codes.iter().map(|c| (*c).to_owned()).collect()),
        ..Scripted::default()
    })
}

/// The share of ids whose label matches the demo's private answers.
pub(crate) fn accuracy(submission: &Path) -> Result<f64> {
    let read = |path: &Path| -> Result<HashMap<String, String>> {
        let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
        text.lines()
            .skip(1)
            .map(|line| {
                let (id, value) = line.split_once(',').context("two columns")?;
                Ok((id.to_owned(), value.to_owned()))
            })
            .collect()
    };
    let truth = read(Path::new(DEMO_ANSWERS))?;
    let ours = read(submission)?;
    ensure!(truth.len() == ours.len(), "row counts differ");
    let right = truth
        .iter()
        .filter(|(id, v)| ours.get(*id) == Some(*v))
        .count();
    Ok(right as f64 / truth.len() as f64)
}

#[tokio::test]
async fn the_baseline_solves_the_demo_competition() -> Result<()> {
    let harness = harness(Arc::new(BaselineGenerator));
    let report = solve(&harness, &single_shot()).await?;
    ensure!(report.attempts.len() == 1, "{:?}", report.attempts);
    ensure!(report.submission.source == StoreKind::Local);
    let accuracy = accuracy(Path::new(&report.submission.path))?;
    ensure!(accuracy >= 0.9, "accuracy {accuracy}");
    ensure!(
        report.validation_score.is_some(),
        "the baseline prints a validation score"
    );
    Ok(())
}

#[tokio::test]
async fn a_crashing_first_attempt_is_fixed_after_the_llm_sees_the_error() -> Result<()> {
    let crashing =
        "import pandas as pd\ntrain = pd.read_csv('/input/train.csv')\nprint(train['speceis'])\n";
    let fake = Fake::start(
        Provider::OpenAi,
        vec![
            ok(
                Provider::OpenAi,
                &format!("Here you go:\n```python\n{crashing}```"),
            ),
            ok(
                Provider::OpenAi,
                &format!("Fixed the typo:\n```python\n{GOOD}```"),
            ),
        ],
    )
    .await?;
    let harness = harness(fake.generator()?);
    let report = solve(&harness, &single_shot()).await?;
    ensure!(report.attempts.len() == 2, "{:#?}", report.attempts);
    let first = report.attempts[0].error.clone().unwrap_or_default();
    ensure!(first.contains("KeyError"), "{first}");
    let seen = fake.seen();
    ensure!(seen.len() == 2, "two LLM requests, got {}", seen.len());
    let retry_prompt = seen[1].1.to_string();
    ensure!(
        retry_prompt.contains("speceis"),
        "the retry carries the failed code"
    );
    ensure!(
        retry_prompt.contains("KeyError"),
        "the retry carries the error"
    );
    ensure!(accuracy(Path::new(&report.submission.path))? > 0.3);
    Ok(())
}

#[tokio::test]
async fn an_invalid_submission_is_fed_back_with_its_reason() -> Result<()> {
    let wrong_columns = "import pandas as pd\n\
sub = pd.read_csv('/input/sample_submission.csv')\n\
sub.rename(columns={'species': 'label'}).to_csv('/output/submission.csv', index=False)\n";
    let generator = scripted(&[wrong_columns, GOOD]);
    let harness = harness(generator.clone());
    let report = solve(&harness, &single_shot()).await?;
    ensure!(report.attempts.len() == 2);
    let errors = generator.previous_errors.lock().expect("lock").clone();
    ensure!(
        errors[0].is_none(),
        "the first request has no previous attempt"
    );
    let fed_back = errors[1].clone().unwrap_or_default();
    ensure!(fed_back.contains("columns must be exactly"), "{fed_back}");
    Ok(())
}

#[tokio::test]
async fn attempts_run_out_with_the_last_error() -> Result<()> {
    let mut policy = single_shot();
    policy.attempts.max = 2;
    let generator = scripted(&[
        "raise ValueError('first')\n",
        "raise ValueError('second')\n",
    ]);
    let harness = harness(generator);
    match solve(&harness, &policy).await {
        Err(SolveError::AttemptsExhausted {
            attempts,
            last_error,
            records,
        }) => {
            ensure!(attempts == 2 && records.len() == 2);
            ensure!(
                last_error.contains("ValueError") && last_error.contains("second"),
                "{last_error}"
            );
        }
        other => anyhow::bail!("expected exhausted attempts, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn code_that_needs_xgboost_fails_its_attempt_without_docker() -> Result<()> {
    let generator = scripted(&["import xgboost\n", GOOD]);
    let harness = harness(generator.clone());
    let report = solve(&harness, &single_shot()).await?;
    let first = report.attempts[0].error.clone().unwrap_or_default();
    ensure!(
        first.contains("xgboost") && first.contains("scikit-learn"),
        "{first}"
    );
    ensure!(report.attempts[0].outcome.is_none(), "it never ran");
    Ok(())
}

/// Replies without code first (as an LLM that only talks does), then with good code.
#[derive(Debug, Default)]
struct Talker {
    calls: Mutex<Vec<Option<String>>>,
}

#[async_trait]
impl Generator for Talker {
    fn name(&self) -> String {
        "talker".into()
    }

    async fn generate(
        &self,
        request: &GenerationRequest<'_>,
    ) -> Result<GeneratedCode, GenerateError> {
        let mut calls = self.calls.lock().expect("lock");
        calls.push(request.previous.as_ref().map(|p| p.error.clone()));
        if calls.len() == 1 {
            return Err(GenerateError::NoCode {
                provider: self.name(),
                llm: None,
            });
        }
        Ok(GeneratedCode {
            code: GOOD.into(),
            generator: self.name(),
            llm: None,
        })
    }
}

#[tokio::test]
async fn a_reply_without_code_uses_an_attempt_and_the_next_one_is_told() -> Result<()> {
    let talker = Arc::new(Talker::default());
    let harness = harness(talker.clone());
    let report = solve(&harness, &single_shot()).await?;
    ensure!(report.attempts.len() == 2, "{:?}", report.attempts);
    let first = report.attempts[0].error.clone().unwrap_or_default();
    ensure!(
        first.contains("talker replied without any Python code"),
        "{first}"
    );
    let told = talker.calls.lock().expect("lock")[1]
        .clone()
        .unwrap_or_default();
    ensure!(told.contains("without any Python code"), "{told}");
    Ok(())
}

/// A competition of three sound clips labelled in `train.csv`, with a `test.csv` or not; the
/// folder lives as long as the returned guard.
pub(crate) fn birdsong(with_test: bool) -> Result<(tempfile::TempDir, PreparedCompetition)> {
    let data = tempfile::tempdir()?;
    let mut files = vec![
        ("train.csv", "clip,label\na.wav,dog\nb.wav,cat\n"),
        ("sample_submission.csv", "clip,label\nc.wav,dog\n"),
        ("a.wav", "RIFF"),
        ("b.wav", "RIFF"),
        ("c.wav", "RIFF"),
    ];
    if with_test {
        files.push(("test.csv", "clip\nc.wav\n"));
    }
    for (name, body) in files {
        std::fs::write(data.path().join(name), body)?;
    }
    let competition = PreparedCompetition {
        slug: "birdsong".into(),
        dir: data.path().to_path_buf(),
        text: CompetitionText::default(),
        pin: None,
    };
    Ok((data, competition))
}

#[tokio::test]
async fn an_audio_competition_fails_with_the_baseline_before_any_attempt() -> Result<()> {
    let (_data, competition) = birdsong(true)?;
    let harness = harness(Arc::new(BaselineGenerator));
    match solve_competition(&harness, &single_shot(), &competition).await {
        Err(SolveError::Generate(error)) => {
            let message = error.to_string();
            ensure!(message.contains("3 audio files"), "{message}");
            ensure!(message.contains("may still try"), "{message}");
        }
        other => anyhow::bail!("expected the baseline to refuse, got {other:?}"),
    }
    Ok(())
}

/// A competition of two numeric targets, `t1` and `t2`, both varying with `x`.
fn two_targets(dir: &Path) -> PreparedCompetition {
    let train: String = (0..60)
        .map(|i| format!("{i},{i},{}.5,{}\n", i % 7, 3 * i + 1))
        .collect();
    let test: String = (100..125).map(|i| format!("{i},{}\n", i - 100)).collect();
    let sample: String = (100..125).map(|i| format!("{i},0,0\n")).collect();
    for (name, body) in [
        ("train.csv", format!("id,x,t1,t2\n{train}")),
        ("test.csv", format!("id,x\n{test}")),
        ("sample_submission.csv", format!("id,t1,t2\n{sample}")),
    ] {
        std::fs::write(dir.join(name), body).expect("write");
    }
    PreparedCompetition {
        slug: "two-targets".into(),
        dir: dir.to_path_buf(),
        text: CompetitionText {
            description: Some("Scored by MCRMSE, mean columnwise root mean squared error.".into()),
            evaluation_metric: None,
        },
        pin: None,
    }
}

#[tokio::test]
async fn a_multi_target_job_cannot_complete_with_a_constant_column() -> Result<()> {
    // The first column predicted, the second left as the sample's zeros: what a shape read as
    // one target used to write.
    let one_column = "import pandas as pd\n\
test = pd.read_csv('/input/test.csv')\n\
sub = pd.read_csv('/input/sample_submission.csv')\n\
sub['t1'] = test['x'].values * 0.1\n\
sub.to_csv('/output/submission.csv', index=False)\n";
    let data = tempfile::tempdir()?;
    let competition = two_targets(data.path());
    let mut policy = single_shot();
    policy.attempts.max = 1;
    let harness = harness(scripted(&[one_column]));
    match solve_competition(&harness, &policy, &competition).await {
        Err(SolveError::AttemptsExhausted { last_error, .. }) => {
            ensure!(
                last_error.contains("\"t2\" holds 0 in all 25 rows"),
                "{last_error}"
            );
        }
        other => anyhow::bail!("expected the constant column refused, got {other:?}"),
    }
    Ok(())
}
