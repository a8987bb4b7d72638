//! The baseline template's own unit tests (`baseline_template_test.py`), run in the real WASI
//! guest with the numpy, pandas and scikit-learn that jobs use: every one of them must pass.

use std::path::Path;
use std::time::Duration;

use kaggle_solver::sandbox::{RunLimits, Sandbox, SandboxRequest};

use crate::support::{generous, prewarmed_sandbox};

const GENERATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../host/src/pipeline/generate");
const TESTS: &str = "baseline_template_test.py";

/// The number from unittest's `Ran N tests in ...s` line.
fn tests_ran(stderr: &str) -> Option<usize> {
    stderr.lines().find_map(|line| {
        let rest = line.strip_prefix("Ran ")?;
        let (count, rest) = rest.split_once(' ')?;
        rest.starts_with("test").then(|| count.parse().ok())?
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_baseline_templates_unit_tests_pass_in_the_guest() {
    let folder = Path::new(GENERATE);
    let source = std::fs::read_to_string(folder.join(TESTS)).expect("the template's tests");
    // Every test method is counted, so a test that unittest never collects fails here too.
    let defined = source
        .lines()
        .filter(|line| line.starts_with("    def test_"))
        .count();
    assert!(defined >= 40, "only {defined} tests in {TESTS}");

    let output = tempfile::tempdir().expect("a temporary folder");
    let limits = RunLimits {
        wall_time: Duration::from_secs(300),
        ..generous()
    };
    // The test file finds the template beside it under /input.
    let mut request = SandboxRequest::new(&source, output.path(), limits).with_input(folder);
    request.script_name = TESTS.into();
    let outcome = prewarmed_sandbox()
        .run(request)
        .await
        .expect("the sandbox runs the tests");

    let stderr = &outcome.stderr;
    assert!(
        outcome.succeeded(),
        "the template's tests failed ({:?}, limit {:?}):\n{stderr}",
        outcome.exit_code,
        outcome.limit
    );
    assert_eq!(tests_ran(stderr), Some(defined), "{stderr}");
    assert_eq!(stderr.trim_end().lines().last(), Some("OK"), "{stderr}");
    eprintln!(
        "{defined} template tests passed in the guest in {:.1} s",
        outcome.wall_ms as f64 / 1000.0
    );
}

#[test]
fn the_summary_line_is_read() {
    assert_eq!(tests_ran("...\nRan 48 tests in 9.267s\n\nOK\n"), Some(48));
    assert_eq!(tests_ran("Ran 1 test in 0.001s\n"), Some(1));
    assert_eq!(tests_ran("Ran out of ideas\n"), None);
    assert_eq!(tests_ran("nothing\n"), None);
}
