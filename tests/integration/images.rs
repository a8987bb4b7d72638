//! Image competitions end to end on the real WASI sandbox: pictures named by their rows' ids,
//! no test table, the baseline's pixel features, and the search's holdout view of the folders.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, ensure};
use kaggle_solver::pipeline::analyse::CompetitionText;
use kaggle_solver::pipeline::generate::BaselineGenerator;
use kaggle_solver::pipeline::solve::{PreparedCompetition, SolveError, ValidationSource};

use crate::pipeline::{harness, single_shot, solve_competition};

/// An 8-bit grey PNG of `side` x `side` `pixels`.
fn png(side: u32, pixels: &[u8]) -> Result<Vec<u8>> {
    let mut raw = Vec::new();
    for row in pixels.chunks(side as usize) {
        raw.push(0);
        raw.extend_from_slice(row);
    }
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    zlib.write_all(&raw)?;
    let mut header = Vec::new();
    header.extend_from_slice(&side.to_be_bytes());
    header.extend_from_slice(&side.to_be_bytes());
    header.extend_from_slice(&[8, 0, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, body) in [
        (&b"IHDR"[..], header),
        (&b"IDAT"[..], zlib.finish()?),
        (&b"IEND"[..], Vec::new()),
    ] {
        out.extend_from_slice(&u32::try_from(body.len())?.to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(&body);
        out.extend_from_slice(kind);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    }
    Ok(out)
}

/// A bar across (`horizontal`) or down (`vertical`) an 8x8 dark picture, at a place and with
/// a speckle that `seed` chooses.
fn bar(horizontal: bool, seed: u64) -> Result<Vec<u8>> {
    let mut rng = xorshift(seed);
    let at = 1 + (rng() % 6) as usize;
    let mut pixels = [0u8; 64];
    for (i, p) in pixels.iter_mut().enumerate() {
        let (row, column) = (i / 8, i % 8);
        let on = if horizontal { row == at } else { column == at };
        *p = if on { 220 } else { (rng() % 50) as u8 };
    }
    png(8, &pixels)
}

/// A small deterministic generator (xorshift), so the fixture needs no crate of its own.
fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

/// 80 training pictures and 24 to predict, named `<id>.png` by their ids, labels in
/// `train.csv`, the rows to predict only in `sample_submission.csv`. Returns the competition
/// and the answers by id.
fn bars(dir: &Path) -> Result<(PreparedCompetition, HashMap<String, String>)> {
    std::fs::create_dir_all(dir.join("train"))?;
    std::fs::create_dir_all(dir.join("test"))?;
    let (mut train, mut sample, mut answers) = (
        String::from("id,label\n"),
        String::from("id,label\n"),
        HashMap::new(),
    );
    for i in 0..104u64 {
        let horizontal = (i * 7) % 3 != 0;
        let label = if horizontal { "horizontal" } else { "vertical" };
        let id = format!("img{:04x}", i * 2_654_435_761 % 65_521);
        let picture = bar(horizontal, i)?;
        if i < 80 {
            std::fs::write(dir.join(format!("train/{id}.png")), picture)?;
            train.push_str(&format!("{id},{label}\n"));
        } else {
            std::fs::write(dir.join(format!("test/{id}.png")), picture)?;
            sample.push_str(&format!("{id},horizontal\n"));
            answers.insert(id, label.to_owned());
        }
    }
    std::fs::write(dir.join("train.csv"), train)?;
    std::fs::write(dir.join("sample_submission.csv"), sample)?;
    let competition = PreparedCompetition {
        slug: "bars".into(),
        dir: dir.to_path_buf(),
        text: CompetitionText {
            description: Some("Submissions are evaluated on accuracy.".into()),
            evaluation_metric: None,
        },
        pin: None,
    };
    Ok((competition, answers))
}

fn accuracy(submission: &Path, answers: &HashMap<String, String>) -> Result<f64> {
    let text = std::fs::read_to_string(submission).context("the stored submission")?;
    let mut right = 0usize;
    let mut rows = 0usize;
    for line in text.lines().skip(1) {
        let (id, label) = line.split_once(',').context("two columns")?;
        ensure!(answers.contains_key(id), "unknown id {id}");
        rows += 1;
        right += usize::from(answers[id] == label);
    }
    ensure!(
        rows == answers.len(),
        "{rows} rows for {} ids",
        answers.len()
    );
    Ok(right as f64 / rows as f64)
}

#[tokio::test]
async fn the_baseline_solves_pictures_named_by_id_without_a_test_table() -> Result<()> {
    let data = tempfile::tempdir()?;
    let (competition, answers) = bars(data.path())?;
    let harness = harness(Arc::new(BaselineGenerator));
    let report = solve_competition(&harness, &single_shot(), &competition).await?;
    let images = report.analysis.images.clone().context("images found")?;
    ensure!(images.train.folder == "train" && images.test.folder == "test");
    ensure!(!report.analysis.has_test_table());
    ensure!(report.attempts.len() == 1, "{:?}", report.attempts);
    let accuracy = accuracy(Path::new(&report.submission.path), &answers)?;
    ensure!(accuracy >= 0.9, "accuracy {accuracy}");
    Ok(())
}

#[tokio::test]
async fn the_search_scores_pictures_on_a_holdout_of_moved_pictures() -> Result<()> {
    let data = tempfile::tempdir()?;
    let (competition, answers) = bars(data.path())?;
    let harness = harness(Arc::new(BaselineGenerator));
    let mut policy = single_shot();
    policy.search.candidates = 2;
    let report = solve_competition(&harness, &policy, &competition).await?;
    let search = report.search.clone().context("a search ran")?;
    ensure!(search.candidates_tried == 2, "{search:?}");
    ensure!(
        report.validation_score_source == Some(ValidationSource::Host),
        "{:?}",
        report.validation_score_source
    );
    let host = report.validation_score.context("a host score")?;
    ensure!(host >= 0.8, "holdout accuracy {host}");
    ensure!(accuracy(Path::new(&report.submission.path), &answers)? >= 0.9);
    Ok(())
}

#[tokio::test]
async fn audio_without_a_test_table_fails_at_analysis_before_any_attempt() -> Result<()> {
    let (_data, competition) = crate::pipeline::birdsong(false)?;
    let harness = harness(Arc::new(BaselineGenerator));
    match solve_competition(&harness, &single_shot(), &competition).await {
        Err(SolveError::Analyse(error)) => {
            let message = error.to_string();
            ensure!(message.contains("3 audio files"), "{message}");
            ensure!(message.contains("cannot read"), "{message}");
        }
        other => anyhow::bail!("expected the analysis to refuse, got {other:?}"),
    }
    Ok(())
}
