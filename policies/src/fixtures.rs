//! UI-style fixtures: what a user sees for a given policy file.
//!
//! Error messages are part of the interface, so they are pinned by files rather than by
//! substring asserts: `tests/fixtures/policies/{valid,invalid}/NAME.toml` each has a sibling
//! `NAME.expected` holding [`fixture_report`]'s output. Run the tests with `KS_BLESS=1` to
//! rewrite the `.expected` files after an intended change, then review the diff.

use std::path::Path;

use crate::Policy;

/// What a user sees for the policy file at `path`, as compared against its `.expected` file.
///
/// That is the policy as pretty JSON if it is valid, else the error's `Display` text, followed by
/// one newline. Errors name the file by its file name only (not the full path), so the text does
/// not depend on where the repository is checked out.
pub fn fixture_report(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    let origin = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let report = match std::fs::read_to_string(path) {
        Ok(text) => match Policy::from_toml_str(&text, &origin) {
            Ok(policy) => serde_json::to_string_pretty(&policy)
                .unwrap_or_else(|e| format!("cannot serialize policy {origin}: {e}")),
            Err(e) => e.to_string(),
        },
        Err(e) => format!("cannot read fixture {}: {e}", path.display()),
    };
    report + "\n"
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/policies");

    /// The `.toml` files in `dir`, sorted, plus any `.expected` file without a `.toml` sibling.
    fn cases(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
        let mut tomls = Vec::new();
        let mut orphans = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("dir entry").path();
            match path.extension().and_then(|e| e.to_str()) {
                Some("toml") => tomls.push(path),
                Some("expected") if !path.with_extension("toml").exists() => orphans.push(path),
                _ => {}
            }
        }
        tomls.sort();
        (tomls, orphans)
    }

    #[test]
    fn fixtures_match_expected() {
        let bless = std::env::var_os("KS_BLESS").is_some_and(|v| v == "1");
        let mut failures = Vec::new();
        let mut count = 0;
        for (sub, want_valid, min) in [("valid", true, 5), ("invalid", false, 10)] {
            let dir = Path::new(FIXTURES).join(sub);
            let (tomls, orphans) = cases(&dir);
            assert!(
                tomls.len() >= min,
                "{}: expected at least {min} fixtures",
                dir.display()
            );
            for orphan in orphans {
                failures.push(format!("{}: no matching .toml", orphan.display()));
            }
            for toml in tomls {
                count += 1;
                let text = std::fs::read_to_string(&toml).expect("read fixture");
                let is_valid = Policy::from_toml_str(&text, "fixture").is_ok();
                if is_valid != want_valid {
                    failures.push(format!(
                        "{}: is {} but lives in {sub}/",
                        toml.display(),
                        if is_valid { "valid" } else { "invalid" }
                    ));
                }
                let report = fixture_report(&toml);
                let expected_path = toml.with_extension("expected");
                if bless {
                    std::fs::write(&expected_path, &report).expect("write .expected");
                    continue;
                }
                match std::fs::read_to_string(&expected_path) {
                    Ok(expected) if expected == report => {}
                    Ok(expected) => failures.push(format!(
                        "{}:\n--- expected\n{expected}--- actual\n{report}",
                        toml.display()
                    )),
                    Err(e) => failures.push(format!("{}: {e}", expected_path.display())),
                }
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {count} policy fixtures differ (rerun with KS_BLESS=1 to accept):\n\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn report_is_path_independent() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("x.toml");
        std::fs::write(&path, "[attempts]\nmax = 0\n").expect("write");
        let report = fixture_report(&path);
        assert!(report.starts_with("invalid value in x.toml: "), "{report}");
        assert!(
            report.ends_with(")\n") && !report.ends_with("\n\n"),
            "{report:?}"
        );
    }
}
