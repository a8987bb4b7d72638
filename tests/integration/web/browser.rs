//! The dashboard in a real browser: Debian's chromium, headless, driven through chromedriver.
//! On a `serve` with one worker and the built-in baseline generator, the page submits the demo
//! competition through its form, lists the job until it is `completed`, shows its stages, opens
//! its code and downloads its submission; at 1280x800 and at a phone's width the page fits its
//! window. With a token configured, the page without it shows the login prompt and no data.
//! Screenshots go to `<target>/web-artefacts/`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};

use super::webdriver::{Driver, Session};
use super::{Served, artefacts, repo};

/// Whether the page is no wider than its window (nothing pushed off to the side); else the
/// elements that stick out.
async fn fits(session: &Session) -> Result<bool> {
    let out = session
        .script(
            "const w = window.innerWidth;\
             if (document.documentElement.scrollWidth <= w) return [];\
             return [...document.querySelectorAll('body *')]\
               .filter(e => e.getBoundingClientRect().right > w + 1)\
               .slice(0, 8)\
               .map(e => `${e.tagName}#${e.id}.${e.className} ${Math.round(e.getBoundingClientRect().right)} > ${w}`);",
        )
        .await?;
    let out: Vec<String> = serde_json::from_value(out)?;
    if !out.is_empty() {
        eprintln!("sticking out: {out:?}");
    }
    Ok(out.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_submits_follows_and_downloads_a_job_in_chromium() -> Result<()> {
    // The runtime installed and compiled once, here, before the server's worker needs it.
    tokio::task::spawn_blocking(crate::support::wasm_sandbox).await?;
    let data = tempfile::tempdir()?;
    let competitions = repo().join("examples/competitions").display().to_string();
    let served = Served::start(
        data.path(),
        &["--workers", "1", "--generator", "baseline"],
        &[("KS_COMPETITIONS_DIR", &competitions)],
    )?;
    let out = artefacts()?;
    let browser = tempfile::tempdir()?;
    let (profile, downloads) = (
        browser.path().join("profile"),
        browser.path().join("downloads"),
    );
    std::fs::create_dir_all(&profile)?;
    std::fs::create_dir_all(&downloads)?;
    let driver = Driver::start().await?;
    let session = driver.session(&profile, &downloads, (1280, 800)).await?;

    session.goto(&served.url("/")).await?;
    let url = session
        .wait_for("#url", Duration::from_secs(20), |_| true)
        .await?;
    session.type_into(&url, "penguins").await?;
    let policy = session.find("#policy").await?.context("the policy field")?;
    session.type_into(&policy, "small").await?;
    let submit = session
        .find("#submit-form button")
        .await?
        .context("the button")?;
    session.click(&submit).await?;
    let link = session
        .wait_for("#submitted", Duration::from_secs(20), |t| t.len() == 36)
        .await?;
    let id = session.text(&link).await?;
    let row = format!("tr[data-job='{id}'] .state");
    session
        .wait_for(&row, Duration::from_secs(20), |t| {
            ["pending", "processing", "completed"].contains(&t)
        })
        .await?;
    session
        .wait_for(&row, Duration::from_secs(240), |t| {
            t == "completed" || t == "failed"
        })
        .await?;
    let state = session
        .text(&session.find(&row).await?.context("row")?)
        .await?;
    ensure!(state == "completed", "the job ended {state}");
    ensure!(fits(&session).await?, "the list is wider than 1280 px");
    session.screenshot(&out.join("dashboard-list.png")).await?;

    // The job's page: its stages from the event stream, its code, its submission.
    session.goto(&served.url(&format!("/jobs/{id}"))).await?;
    session
        .wait_for("#timeline li.terminal", Duration::from_secs(30), |t| {
            t.contains("completed")
        })
        .await?;
    let stages = session
        .script(
            "return [...document.querySelectorAll('#timeline li[data-kind=stage]')]\
             .map(li => li.dataset.stage);",
        )
        .await?;
    let stages: Vec<String> = serde_json::from_value(stages)?;
    for stage in ["fetch", "analyse", "generate", "run", "validate", "store"] {
        ensure!(
            stages.iter().any(|s| s == stage),
            "{stage} not listed: {stages:?}"
        );
    }
    let state = session
        .wait_for("#job-state", Duration::from_secs(10), |t| t == "completed")
        .await?;
    drop(state);
    let summary = session
        .wait_for("details.attempt summary", Duration::from_secs(10), |t| {
            t.contains("succeeded")
        })
        .await?;
    session.click(&summary).await?;
    let code = session
        .wait_for("details.attempt pre.code", Duration::from_secs(10), |t| {
            t.contains("submission.csv")
        })
        .await?;
    drop(code);
    ensure!(fits(&session).await?, "the job page is wider than 1280 px");
    session.screenshot(&out.join("dashboard-job.png")).await?;
    let download = session
        .find("#download")
        .await?
        .context("the download button")?;
    session.click(&download).await?;
    session
        .wait_for("#action-result", Duration::from_secs(20), |t| {
            t.starts_with("Downloaded")
        })
        .await?;
    let file = downloads.join(format!("submission-{id}.csv"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !file.is_file() {
        ensure!(
            Instant::now() < deadline,
            "{} never arrived",
            file.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let csv = std::fs::read_to_string(&file)?;
    let sample = std::fs::read_to_string(
        repo().join("examples/competitions/penguins/sample_submission.csv"),
    )?;
    ensure!(
        csv.lines().next() == sample.lines().next()
            && csv.lines().count() == sample.lines().count(),
        "the download is not the submission: {csv:.200}"
    );

    // A phone's width: still no sideways scrolling.
    session.resize(390, 844).await?;
    ensure!(fits(&session).await?, "the job page is wider than a phone");
    session
        .screenshot(&out.join("dashboard-job-narrow.png"))
        .await?;
    session.goto(&served.url("/")).await?;
    session
        .wait_for(&row, Duration::from_secs(20), |t| t == "completed")
        .await?;
    ensure!(fits(&session).await?, "the list is wider than a phone");
    session
        .screenshot(&out.join("dashboard-list-narrow.png"))
        .await?;
    session.quit().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_the_dashboard_shows_the_login_prompt_and_no_data() -> Result<()> {
    let data = tempfile::tempdir()?;
    let served = Served::start(
        data.path(),
        &["--workers", "0"],
        &[("KS_API_TOKEN", "browser-secret")],
    )?;
    // A job exists: the page must not show it without the token.
    let client = reqwest::Client::new();
    let accepted = client
        .post(served.url("/run?url=https://www.kaggle.com/competitions/titanic"))
        .bearer_auth("browser-secret")
        .send()
        .await?;
    ensure!(accepted.status() == reqwest::StatusCode::ACCEPTED);

    let browser = tempfile::tempdir()?;
    let driver = Driver::start().await?;
    let session = driver
        .session(&browser.path().join("profile"), browser.path(), (1280, 800))
        .await?;
    session.goto(&served.url("/")).await?;
    session
        .wait_for("#login h1", Duration::from_secs(20), |t| t == "Sign in")
        .await?;
    let shown = session
        .script(
            "return { list: !document.getElementById('list-view').hidden, \
                      job: !document.getElementById('job-view').hidden, \
                      rows: document.querySelectorAll('#jobs tbody tr').length, \
                      text: document.body.innerText };",
        )
        .await?;
    ensure!(
        shown["list"] == false && shown["job"] == false && shown["rows"] == 0,
        "{shown}"
    );
    ensure!(
        !shown["text"]
            .as_str()
            .unwrap_or_default()
            .contains("titanic"),
        "{shown}"
    );
    session
        .screenshot(&artefacts()?.join("dashboard-login.png"))
        .await?;

    // A wrong token is refused; the right one shows the job.
    let token = session.find("#token").await?.context("the token field")?;
    session.type_into(&token, "wrong").await?;
    session
        .click(
            &session
                .find("#login-form button")
                .await?
                .context("button")?,
        )
        .await?;
    session
        .wait_for("#login-error", Duration::from_secs(20), |t| {
            t.contains("refused")
        })
        .await?;
    let token = session.find("#token").await?.context("the token field")?;
    session.type_into(&token, "browser-secret").await?;
    session
        .click(
            &session
                .find("#login-form button")
                .await?
                .context("button")?,
        )
        .await?;
    session
        .wait_for("#jobs tbody td.url", Duration::from_secs(20), |t| {
            t.contains("titanic")
        })
        .await?;
    session.quit().await?;
    Ok(())
}
