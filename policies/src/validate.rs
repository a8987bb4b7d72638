//! Range checks that run after a policy parses.
//!
//! Serde only proves a value has the right type. A memory cap of 1 KiB or a zero attempt budget
//! is well-typed but would make every job fail in a confusing way, so each value is checked here
//! against bounds, and the error names the key path and the allowed range.

use std::ops::RangeInclusive;
use std::time::Duration;

use crate::{ByteSize, DockerPolicy, Limits, Policy, PolicyError, SandboxPolicy, Search};

/// Allowed `limits.wall-time`.
pub(crate) const WALL_TIME: RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(24 * 60 * 60);
/// Allowed `limits.memory`.
pub(crate) const MEMORY: RangeInclusive<ByteSize> = ByteSize::mib(64)..=ByteSize::gib(64);
/// Smallest `limits.fuel`.
pub(crate) const MIN_FUEL: u64 = 1_000_000;
/// Allowed `limits.output`.
pub(crate) const OUTPUT: RangeInclusive<ByteSize> = ByteSize::kib(1)..=ByteSize::gib(4);
/// Allowed `limits.disk`.
pub(crate) const DISK: RangeInclusive<ByteSize> = ByteSize::mib(1)..=ByteSize::gib(1024);
/// Allowed `attempts.max`.
pub(crate) const ATTEMPTS: RangeInclusive<u32> = 1..=20;
/// Largest `docker.cpus` (the smallest is anything above zero).
pub(crate) const MAX_CPUS: f64 = 64.0;
/// Allowed `docker.pids`.
pub(crate) const PIDS: RangeInclusive<u32> = 16..=65_536;
/// Allowed `search.candidates`.
pub(crate) const CANDIDATES: RangeInclusive<u32> = 1..=64;
/// Allowed `search.time-budget`.
pub(crate) const TIME_BUDGET: RangeInclusive<Duration> =
    Duration::from_secs(10)..=Duration::from_secs(48 * 60 * 60);
/// Allowed `search.folds`.
pub(crate) const FOLDS: RangeInclusive<u32> = 1..=10;
/// Allowed `search.parallel`.
pub(crate) const PARALLEL: RangeInclusive<u32> = 1..=64;
/// Smallest `search.max-tokens`.
pub(crate) const MIN_TOKENS: u64 = 1_000;

/// Checks a whole policy.
pub(crate) fn policy(p: &Policy, origin: &str) -> Result<(), PolicyError> {
    limits(&p.limits, origin)?;
    in_range(origin, "attempts.max", p.attempts.max, &ATTEMPTS, |v| {
        v.to_string()
    })?;
    sandbox(&p.sandbox, origin)?;
    docker(&p.docker, origin)?;
    search(&p.search, origin)
}

fn search(s: &Search, origin: &str) -> Result<(), PolicyError> {
    in_range(
        origin,
        "search.candidates",
        s.candidates,
        &CANDIDATES,
        |v| v.to_string(),
    )?;
    in_range(
        origin,
        "search.time-budget",
        s.time_budget,
        &TIME_BUDGET,
        crate::duration::show,
    )?;
    in_range(origin, "search.folds", s.folds, &FOLDS, |v| v.to_string())?;
    if let Some(parallel) = s.parallel {
        in_range(origin, "search.parallel", parallel, &PARALLEL, |v| {
            v.to_string()
        })?;
    }
    match s.max_tokens {
        Some(tokens) if tokens < MIN_TOKENS => Err(invalid(
            origin,
            "search.max-tokens",
            format!(
                "is {}, below the minimum of {} tokens",
                group(tokens),
                group(MIN_TOKENS)
            ),
        )),
        _ => Ok(()),
    }
}

/// Checks the `[limits]` table; also used for limits lowered by a request.
pub(crate) fn limits(l: &Limits, origin: &str) -> Result<(), PolicyError> {
    in_range(
        origin,
        "limits.wall-time",
        l.wall_time,
        &WALL_TIME,
        crate::duration::show,
    )?;
    in_range(origin, "limits.memory", l.memory, &MEMORY, |v| {
        v.to_string()
    })?;
    if l.fuel < MIN_FUEL {
        return Err(invalid(
            origin,
            "limits.fuel",
            format!(
                "is {}, below the minimum of {} instructions",
                group(l.fuel),
                group(MIN_FUEL)
            ),
        ));
    }
    in_range(origin, "limits.output", l.output, &OUTPUT, |v| {
        v.to_string()
    })?;
    in_range(origin, "limits.disk", l.disk, &DISK, |v| v.to_string())
}

fn sandbox(s: &SandboxPolicy, origin: &str) -> Result<(), PolicyError> {
    let key = "sandbox.backends";
    if s.backends.is_empty() {
        return Err(invalid(
            origin,
            key,
            "is empty; list at least one of \"wasm\", \"docker\"",
        ));
    }
    for (i, b) in s.backends.iter().enumerate() {
        if s.backends[..i].contains(b) {
            return Err(invalid(
                origin,
                key,
                format!("lists \"{b}\" more than once; give each backend at most once"),
            ));
        }
    }
    Ok(())
}

fn docker(d: &DockerPolicy, origin: &str) -> Result<(), PolicyError> {
    let example = "such as \"kaggle-solver/native:latest\"";
    if d.image.is_empty() {
        return Err(invalid(
            origin,
            "docker.image",
            format!("is empty; give an image reference {example}"),
        ));
    }
    if d.image.chars().any(char::is_whitespace) {
        return Err(invalid(
            origin,
            "docker.image",
            format!(
                "is {:?}, which contains whitespace; give an image reference {example}",
                d.image
            ),
        ));
    }
    if !(d.cpus.is_finite() && d.cpus > 0.0 && d.cpus <= MAX_CPUS) {
        return Err(invalid(
            origin,
            "docker.cpus",
            format!(
                "is {}, but must be greater than 0 and at most {MAX_CPUS}",
                d.cpus
            ),
        ));
    }
    in_range(origin, "docker.pids", d.pids, &PIDS, |v| v.to_string())
}

/// Checks `value` against `range`, naming `key` and showing values with `show`.
pub(crate) fn in_range<T: PartialOrd>(
    origin: &str,
    key: &str,
    value: T,
    range: &RangeInclusive<T>,
    show: impl Fn(&T) -> String,
) -> Result<(), PolicyError> {
    let (min, max) = (range.start(), range.end());
    let allowed = format!("(allowed: {} to {})", show(min), show(max));
    let reason = if value < *min {
        format!(
            "is {}, below the minimum of {} {allowed}",
            show(&value),
            show(min)
        )
    } else if value > *max {
        format!(
            "is {}, above the maximum of {} {allowed}",
            show(&value),
            show(max)
        )
    } else {
        return Ok(());
    };
    Err(invalid(origin, key, reason))
}

pub(crate) fn invalid(origin: &str, key: &str, reason: impl Into<String>) -> PolicyError {
    PolicyError::Invalid {
        origin: origin.to_owned(),
        key: key.to_owned(),
        reason: reason.into(),
    }
}

/// An integer with `_` every three digits, as TOML allows: `1_000_000`.
pub(crate) fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() * 4 / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('_');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(p: &Policy) -> Result<(), String> {
        policy(p, "t.toml").map_err(|e| e.to_string())
    }

    #[test]
    fn bounds_are_inclusive() {
        let mut p = Policy::default();
        p.limits.wall_time = *WALL_TIME.start();
        p.limits.memory = *MEMORY.end();
        p.limits.fuel = MIN_FUEL;
        p.limits.output = *OUTPUT.start();
        p.attempts.max = *ATTEMPTS.end();
        p.docker.cpus = MAX_CPUS;
        p.docker.pids = *PIDS.start();
        p.search.candidates = *CANDIDATES.end();
        p.search.time_budget = *TIME_BUDGET.start();
        p.search.parallel = Some(*PARALLEL.start());
        p.search.max_tokens = Some(MIN_TOKENS);
        p.search.folds = *FOLDS.end();
        assert_eq!(check(&p), Ok(()));
        p.search.folds = *FOLDS.start();
        assert_eq!(check(&p), Ok(()));
    }

    #[test]
    fn each_violation_names_its_key() {
        type Change = Box<dyn Fn(&mut Policy)>;
        let cases: Vec<(&str, Change)> = vec![
            (
                "`limits.wall-time` is 999ms, below the minimum of 1s (allowed: 1s to 24h)",
                Box::new(|p| p.limits.wall_time = Duration::from_millis(999)),
            ),
            (
                "`limits.wall-time` is 1day 1s, above",
                Box::new(|p| p.limits.wall_time = Duration::from_secs(86_401)),
            ),
            (
                "`limits.memory` is 63 MiB, below the minimum of 64 MiB (allowed: 64 MiB to 64 GiB)",
                Box::new(|p| p.limits.memory = ByteSize::mib(63)),
            ),
            (
                "`limits.fuel` is 999_999, below the minimum of 1_000_000 instructions",
                Box::new(|p| p.limits.fuel = 999_999),
            ),
            (
                "`limits.output` is 5 GiB, above the maximum of 4 GiB",
                Box::new(|p| p.limits.output = ByteSize::gib(5)),
            ),
            (
                "`attempts.max` is 21, above the maximum of 20 (allowed: 1 to 20)",
                Box::new(|p| p.attempts.max = 21),
            ),
            (
                "`sandbox.backends` is empty",
                Box::new(|p| p.sandbox.backends.clear()),
            ),
            (
                "`docker.image` is empty",
                Box::new(|p| p.docker.image.clear()),
            ),
            (
                "`docker.image` is \"a b\", which contains whitespace",
                Box::new(|p| p.docker.image = "a b".into()),
            ),
            (
                "`docker.cpus` is NaN, but must be greater than 0 and at most 64",
                Box::new(|p| p.docker.cpus = f64::NAN),
            ),
            (
                "`docker.cpus` is inf",
                Box::new(|p| p.docker.cpus = f64::INFINITY),
            ),
            ("`docker.cpus` is -1", Box::new(|p| p.docker.cpus = -1.0)),
            ("`docker.cpus` is 64.5", Box::new(|p| p.docker.cpus = 64.5)),
            (
                "`docker.pids` is 65537, above the maximum of 65536",
                Box::new(|p| p.docker.pids = 65_537),
            ),
            (
                "`search.candidates` is 0, below the minimum of 1",
                Box::new(|p| p.search.candidates = 0),
            ),
            (
                "`search.folds` is 0, below the minimum of 1",
                Box::new(|p| p.search.folds = 0),
            ),
            (
                "`search.folds` is 11, above the maximum of 10",
                Box::new(|p| p.search.folds = 11),
            ),
            (
                "`search.time-budget` is 9s, below the minimum of 10s",
                Box::new(|p| p.search.time_budget = Duration::from_secs(9)),
            ),
            (
                "`search.parallel` is 0, below the minimum of 1",
                Box::new(|p| p.search.parallel = Some(0)),
            ),
            (
                "`search.max-tokens` is 999, below the minimum of 1_000 tokens",
                Box::new(|p| p.search.max_tokens = Some(999)),
            ),
        ];
        for (want, change) in cases {
            let mut p = Policy::default();
            change(&mut p);
            let err = check(&p).expect_err(want);
            assert!(err.starts_with("invalid value in t.toml: "), "{err}");
            assert!(err.contains(want), "want {want:?} in {err:?}");
        }
    }

    #[test]
    fn grouping() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1_000");
        assert_eq!(group(20_000_000_000_000), "20_000_000_000_000");
    }
}
