//! Property tests of the parsers that read untrusted input: competition sources, policy files,
//! competition zips and submissions. cargo-fuzz needs a nightly toolchain, so these use proptest
//! on stable: every input a strategy builds must leave the parser without a panic, with an error
//! that is short and says what is wrong, or with a result that obeys the parser's own rules.
//!
//! Each property runs a few hundred cases so the module stays fast in a debug build;
//! `PROPTEST_CASES=5000 cargo test -p ks-tests --test integration -- fuzz::` digs deeper.

mod archive;
mod policy;
mod source;
mod submission;

use proptest::test_runner::{Config, TestRunner};

/// A runner for `cases` cases, or `PROPTEST_CASES` when set. Failures are not persisted to
/// files: a failing case is printed with its shrunk input, and a fixed seed would hide new ones.
fn runner(cases: u32) -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

/// Runs `test` on `strategy`'s values, panicking with proptest's report (the minimal failing
/// input) on the first failure.
fn check<S: proptest::strategy::Strategy>(
    cases: u32,
    strategy: &S,
    test: impl Fn(S::Value) -> Result<(), proptest::test_runner::TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    if let Err(failure) = runner(cases).run(strategy, test) {
        panic!("{failure}");
    }
}

/// `text` cut to `max` characters, for assertion messages about possibly huge values.
fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}… ({} bytes)", &text[..cut], text.len()),
        None => text.to_owned(),
    }
}
