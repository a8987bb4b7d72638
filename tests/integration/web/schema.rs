//! The OpenAPI document tells the truth: schemathesis (pinned, installed by `scripts/test` into
//! `<target>/schemathesis-venv`) runs every phase with every check against `/openapi.json` of
//! a `serve` with no workers and a queue cap no run reaches. The one check excluded, on `/run`
//! only, is in `tests/fixtures/schemathesis.toml` with its reason.

use std::process::Command;

use anyhow::{Result, ensure};

use super::{Served, artefacts, repo, tool};

#[test]
fn schemathesis_finds_no_failure_in_the_openapi_document() -> Result<()> {
    let schemathesis = tool("KS_SCHEMATHESIS", "schemathesis-venv/bin/schemathesis")?;
    let data = tempfile::tempdir()?;
    let served = Served::start(
        data.path(),
        &["--workers", "0"],
        &[
            ("KS_MAX_QUEUED", "10000000"),
            ("KS_HOME", &data.path().display().to_string()),
        ],
    )?;
    let report = artefacts()?.join("schemathesis.xml");
    let output = Command::new(&schemathesis)
        .arg("--config-file")
        .arg(repo().join("tests/fixtures/schemathesis.toml"))
        .arg("run")
        .arg(served.url("/openapi.json"))
        .args(["--max-examples", "60", "--seed", "1", "--no-color"])
        .arg("--report-junit-path")
        .arg(&report)
        .args(["--report", "junit"])
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}\n{stderr}");
    ensure!(
        output.status.success(),
        "schemathesis found failures ({:?}):\n{stdout}\n{stderr}",
        output.status
    );
    // It tested every operation, and said so.
    ensure!(stdout.contains("Tested: "), "{stdout}");
    ensure!(!stdout.contains('❌'), "{stdout}");
    Ok(())
}
