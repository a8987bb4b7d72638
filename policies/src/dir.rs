//! Finding a policy by name: the policy directory and its presets.
//!
//! `--policy` and `policy=` take either a preset name (`small`, a file `small.toml` in the policy
//! directory) or a file path. This module decides which is which, and makes sure a name can never
//! smuggle a path (`../../etc/x`) into a file lookup: names are checked against a strict pattern
//! before they are joined onto the directory.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::{DEFAULT_POLICY_NAME, Policy, PolicyError};

/// Longest preset name, in bytes.
const MAX_NAME_LEN: usize = 64;

/// True if `name` can name a preset: `^[a-z0-9][a-z0-9_-]{0,63}$`.
pub fn is_valid_preset_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    let Some(first) = bytes.next() else {
        return false;
    };
    name.len() <= MAX_NAME_LEN
        && (first.is_ascii_lowercase() || first.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// True if `--policy` should treat `value` as a file path rather than a preset name.
fn is_path_like(value: &str) -> bool {
    value.contains('/') || value.chars().any(std::path::is_separator) || value.ends_with(".toml")
}

/// A directory of policy presets (`KS_POLICY_DIR`, by default `policies/`).
///
/// The directory need not exist: then only the embedded `default` policy is available.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDir {
    dir: PathBuf,
}

impl PolicyDir {
    /// A policy directory at `dir`. Nothing is read until a policy is resolved.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory searched for presets.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Resolves a `--policy` value: a preset name, `default`, or a file path.
    ///
    /// A value that contains a path separator or ends in `.toml` is read as a file (relative to
    /// the current directory); anything else is a preset name, see [`PolicyDir::resolve_preset`].
    /// Use `resolve_preset` instead for untrusted input (such as the REST API's `policy=`), which
    /// must not name arbitrary files.
    pub fn resolve(&self, name_or_path: &str) -> Result<Policy, PolicyError> {
        if is_path_like(name_or_path) {
            Policy::from_file(name_or_path)
        } else {
            self.resolve_preset(name_or_path)
        }
    }

    /// Resolves a preset name only; never reads a file outside the policy directory.
    ///
    /// `default` is `<dir>/default.toml` if that file exists, else the embedded default policy.
    /// Any other name must match `^[a-z0-9][a-z0-9_-]{0,63}$` and is read from `<dir>/<name>.toml`.
    pub fn resolve_preset(&self, name: &str) -> Result<Policy, PolicyError> {
        if !is_valid_preset_name(name) {
            return Err(PolicyError::InvalidName {
                name: name.to_owned(),
            });
        }
        let path = self.dir.join(format!("{name}.toml"));
        match std::fs::read_to_string(&path) {
            Ok(text) => Policy::from_toml_str(&text, &path.display().to_string()),
            Err(e) if e.kind() == ErrorKind::NotFound && name == DEFAULT_POLICY_NAME => {
                Ok(Policy::default())
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Err(PolicyError::UnknownPreset {
                name: name.to_owned(),
                dir: self.dir.clone(),
                available: self
                    .presets()
                    .unwrap_or_else(|_| vec![DEFAULT_POLICY_NAME.to_owned()]),
            }),
            Err(source) => Err(PolicyError::Io { path, source }),
        }
    }

    /// The preset names that [`PolicyDir::resolve_preset`] accepts, sorted; always includes
    /// `default`.
    ///
    /// Files whose stem is not a valid preset name are skipped. A missing directory is not an
    /// error (only `default` is listed).
    pub fn presets(&self) -> Result<Vec<String>, PolicyError> {
        let mut names = vec![DEFAULT_POLICY_NAME.to_owned()];
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(names),
            Err(source) => {
                return Err(PolicyError::Io {
                    path: self.dir.clone(),
                    source,
                });
            }
        };
        for entry in entries {
            let entry = entry.map_err(|source| PolicyError::Io {
                path: self.dir.clone(),
                source,
            })?;
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str().and_then(|n| n.strip_suffix(".toml")) else {
                continue;
            };
            // `metadata` follows symlinks, so a linked preset counts; directories do not.
            let is_file = std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file());
            if is_file && is_valid_preset_name(name) {
                names.push(name.to_owned());
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ByteSize;

    #[test]
    fn preset_names() {
        for ok in ["a", "0", "small", "gpu-2x", "a_b", &"x".repeat(64)] {
            assert!(is_valid_preset_name(ok), "{ok}");
        }
        let long = "x".repeat(65);
        for bad in [
            "", "-a", "_a", "A", "Small", "a b", "a.b", "../x", "a/b", "é", &long,
        ] {
            assert!(!is_valid_preset_name(bad), "{bad}");
        }
    }

    #[test]
    fn resolves_presets_paths_and_default() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = PolicyDir::new(tmp.path());
        std::fs::write(
            tmp.path().join("tiny.toml"),
            "[limits]\nmemory = \"128MiB\"\n",
        )
        .expect("write");
        std::fs::write(tmp.path().join("Not-A-Name.toml"), "").expect("write");
        std::fs::write(tmp.path().join("notes.txt"), "").expect("write");
        std::fs::create_dir(tmp.path().join("sub.toml")).expect("mkdir");

        assert_eq!(dir.presets().expect("list"), ["default", "tiny"]);
        assert_eq!(dir.resolve("default").expect("default"), Policy::default());
        let tiny = dir.resolve("tiny").expect("tiny");
        assert_eq!(tiny.limits.memory, ByteSize::mib(128));

        let file = tmp.path().join("tiny.toml");
        assert_eq!(
            dir.resolve(&file.display().to_string()).expect("path"),
            tiny
        );

        // A dir/default.toml replaces the embedded default.
        std::fs::write(tmp.path().join("default.toml"), "[attempts]\nmax = 7\n").expect("write");
        assert_eq!(dir.resolve("default").expect("default").attempts.max, 7);
    }

    #[test]
    fn unknown_and_invalid_names() {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::write(tmp.path().join("small.toml"), "").expect("write");
        let dir = PolicyDir::new(tmp.path());

        let err = dir.resolve("huge").expect_err("unknown");
        assert_eq!(
            err.to_string(),
            format!(
                "unknown policy `huge`: there is no huge.toml in {} (available: default, small)",
                tmp.path().display()
            )
        );
        let err = dir.resolve("Huge").expect_err("invalid");
        assert!(matches!(err, PolicyError::InvalidName { .. }), "{err}");
        assert!(
            err.to_string()
                .starts_with("invalid policy name \"Huge\": "),
            "{err}"
        );

        // Path-like values never go through the name lookup, and names never become paths.
        assert!(matches!(
            dir.resolve("../small").expect_err("path"),
            PolicyError::Io { .. }
        ));
        assert!(matches!(
            dir.resolve_preset("../small").expect_err("not a name"),
            PolicyError::InvalidName { .. }
        ));
    }

    #[test]
    fn missing_dir_still_has_default() {
        let dir = PolicyDir::new("/nonexistent/ks-policies");
        assert_eq!(dir.presets().expect("list"), ["default"]);
        assert_eq!(dir.resolve("default").expect("default"), Policy::default());
        let err = dir.resolve("small").expect_err("unknown");
        assert!(err.to_string().ends_with("(available: default)"), "{err}");
    }

    #[test]
    fn shipped_presets_are_valid() {
        let dir = PolicyDir::new(env!("CARGO_MANIFEST_DIR"));
        assert_eq!(dir.presets().expect("list"), ["default", "large", "small"]);
        let small = dir.resolve("small").expect("small");
        let large = dir.resolve("large").expect("large");
        let default = dir.resolve("default").expect("default");
        assert_eq!(default, Policy::default());
        assert!(small.limits.memory < default.limits.memory);
        assert!(large.limits.memory > default.limits.memory);
    }
}
