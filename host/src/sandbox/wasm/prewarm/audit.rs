//! The pre-warm build's audit: refuse an image in which randomness is frozen.
//!
//! Reseeding covers the RNG objects the build found; this checks that nothing was missed. Two
//! images are built with different entropy, A and B. A is restored twice and B once, each
//! through the ordinary run path (harness prelude and its reseed included), running
//! `guest-runtime/prewarm/audit.py`, which fingerprints every RNG object the garbage collector
//! can reach and draws from every source of randomness a pipeline uses. A fingerprint present in
//! both runs of A but not in B's run is entropy frozen at build time: the image is refused, naming
//! the object's owner. One present in all three is seeded with a constant on purpose and allowed.
//! Every draw must differ between A's two runs.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ks_guest_runtime::{AUDIT_LINE_PREFIX, PREWARM_AUDIT_PY};
use serde::Deserialize;
use wasmtime::InstancePre;

use super::error::PrewarmError;
use super::image::Image;
use crate::sandbox::wasm::run;
use crate::sandbox::wasm::store::{GuestState, ReadOnlyMounts};
use crate::sandbox::{RunLimits, SandboxRequest};

/// Bytes of a failed audit run's stderr kept in the error.
const STDERR_TAIL_BYTES: usize = 3_000;

/// What one audit run printed.
#[derive(Debug, Deserialize)]
struct Report {
    /// `[kind, type, owner, fingerprint]` of each RNG object.
    rngs: Vec<[String; 4]>,
    /// Values drawn from each source of randomness, by source.
    draws: BTreeMap<String, String>,
}

impl Report {
    /// Fingerprints by `kind type owner`, as multisets.
    fn by_owner(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for [kind, ty, owner, fp] in &self.rngs {
            out.entry(format!("{kind} {ty} ({owner})"))
                .or_default()
                .push(fp.clone());
        }
        out
    }
}

/// Audits images `a` and `b` (restored into instances of `pre`'s instrumented module); the
/// summary on success, the reasons for refusing the image otherwise.
pub(super) async fn audit(
    pre: &InstancePre<GuestState>,
    read_only: &ReadOnlyMounts,
    a: &Image,
    b: &Image,
) -> Result<String, PrewarmError> {
    let a1 = audit_run(pre, read_only, a).await?;
    let a2 = audit_run(pre, read_only, a).await?;
    let b1 = audit_run(pre, read_only, b).await?;
    judge(&a1, &a2, &b1).map_err(|problems| PrewarmError::Refused { problems })
}

/// Compares three runs: A twice, B once.
fn judge(a1: &Report, a2: &Report, b1: &Report) -> Result<String, Vec<String>> {
    let (a1_rngs, a2_rngs, b1_rngs) = (a1.by_owner(), a2.by_owner(), b1.by_owner());
    let mut problems = Vec::new();
    let (mut fresh, mut constant) = (0, 0);
    for (owner, fps) in &a1_rngs {
        let empty = Vec::new();
        let in_a2: BTreeSet<&String> = a2_rngs.get(owner).unwrap_or(&empty).iter().collect();
        let in_b1: BTreeSet<&String> = b1_rngs.get(owner).unwrap_or(&empty).iter().collect();
        for fp in fps {
            match (in_a2.contains(fp), in_b1.contains(fp)) {
                (false, _) => fresh += 1,
                (true, true) => constant += 1,
                (true, false) => problems.push(format!("{owner} has the same state in every run")),
            }
        }
    }
    for (source, value) in &a1.draws {
        if a2.draws.get(source) == Some(value) {
            problems.push(format!("{source} drew the same value in two runs"));
        }
    }
    if a1.draws.is_empty() {
        problems.push("the audit drew no values".into());
    }
    if problems.is_empty() {
        let sources: Vec<&str> = a1.draws.keys().map(String::as_str).collect();
        Ok(format!(
            "audit passed: {fresh} RNG objects fresh in every run, {constant} seeded with a \
             constant, none frozen; {} differ between runs",
            sources.join(", ")
        ))
    } else {
        problems.sort();
        problems.dedup();
        Err(problems)
    }
}

/// One run of the audit script in a restored image.
async fn audit_run(
    pre: &InstancePre<GuestState>,
    read_only: &ReadOnlyMounts,
    image: &Image,
) -> Result<Report, PrewarmError> {
    let output = tempfile::tempdir().map_err(|source| PrewarmError::Io {
        context: "creating an audit run's /output".into(),
        source,
    })?;
    let limits = RunLimits {
        wall_time: Duration::from_secs(900),
        memory_bytes: 4 << 30,
        fuel: u64::MAX / 2,
        output_bytes: 16 << 20,
        disk_bytes: 1 << 30,
    };
    let mut request = SandboxRequest::new(PREWARM_AUDIT_PY, output.path(), limits);
    request.script_name = "prewarm_audit.py".into();
    let restore = |store: &mut wasmtime::Store<GuestState>, instance: &wasmtime::Instance| {
        image.restore(store, instance)
    };
    let outcome = run::run_prepared(
        pre,
        read_only,
        request,
        ks_guest_runtime::HARNESS_PY,
        restore,
    )
    .await
    .map_err(PrewarmError::Sandbox)?;
    let line = outcome
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix(AUDIT_LINE_PREFIX));
    match (outcome.succeeded(), line) {
        (true, Some(line)) => serde_json::from_str(line).map_err(|e| PrewarmError::AuditRun {
            exit_code: outcome.exit_code,
            trap: Some(format!("its report does not parse: {e}")),
            stderr_tail: String::new(),
        }),
        _ => Err(PrewarmError::AuditRun {
            exit_code: outcome.exit_code,
            trap: outcome.trap.clone(),
            stderr_tail: crate::text::tail_bytes(&outcome.stderr, STDERR_TAIL_BYTES).to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(rngs: &[(&str, &str)], draw: &str) -> Report {
        Report {
            rngs: rngs
                .iter()
                .map(|(owner, fp)| {
                    [
                        "RandomState".into(),
                        "t".into(),
                        (*owner).into(),
                        (*fp).into(),
                    ]
                })
                .collect(),
            draws: [("os.urandom".to_owned(), draw.to_owned())].into(),
        }
    }

    #[test]
    fn fresh_and_constant_pass_frozen_fails() {
        let a1 = report(&[("g", "1"), ("c", "k"), ("?", "x")], "u1");
        let a2 = report(&[("g", "2"), ("c", "k"), ("?", "y")], "u2");
        let b1 = report(&[("g", "3"), ("c", "k"), ("?", "z")], "u3");
        let summary = judge(&a1, &a2, &b1).expect("passes");
        assert!(summary.contains("2 RNG objects fresh"), "{summary}");
        assert!(summary.contains("1 seeded with a constant"), "{summary}");

        let a2 = report(&[("g", "2"), ("c", "k"), ("?", "x")], "u1");
        let problems = judge(&a1, &a2, &b1).expect_err("frozen");
        assert_eq!(
            problems,
            [
                "RandomState t (?) has the same state in every run",
                "os.urandom drew the same value in two runs"
            ]
        );
    }
}
