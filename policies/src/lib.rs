//! Policy files: the per-job resource caps of kaggle-solver.
//!
//! A policy says how long, how large and how often generated code may run, and on which sandbox
//! backends. This crate exists so that every entry point (CLI, REST API, workers) reads policies
//! the same way: one schema ([`Policy`]), one set of bounds ([`Policy::validate`]), one lookup of
//! named presets ([`PolicyDir`]), and one rule for request overrides ([`Policy::lowered_by`]).
//!
//! `default.toml` (next to this crate's `Cargo.toml`) is embedded as [`DEFAULT_POLICY_TOML`] and
//! documents every key.
//!
//! ```
//! use ks_policies::{ByteSize, Policy};
//!
//! let p = Policy::from_toml_str("[limits]\nmemory = \"1GiB\"\n", "example.toml")?;
//! assert_eq!(p.limits.memory, ByteSize::gib(1));
//! assert_eq!(p.attempts.max, 3); // everything not given keeps its default
//! # Ok::<(), ks_policies::PolicyError>(())
//! ```

mod dir;
mod duration;
mod fixtures;
mod overrides;
mod schema;
mod size;
mod validate;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

pub use dir::{PolicyDir, is_valid_preset_name};
pub use fixtures::fixture_report;
pub use overrides::LimitOverrides;
pub use schema::{
    Attempts, Backend, DockerPolicy, GuestImage, Limits, ParseBackendError, SandboxPolicy, Search,
};
pub use size::{ByteSize, ParseByteSizeError};

/// The built-in policy, `policies/default.toml`, as embedded in the binary.
pub const DEFAULT_POLICY_TOML: &str = include_str!("../default.toml");

/// Name of the built-in policy, as given to `--policy` or `policy=`.
pub const DEFAULT_POLICY_NAME: &str = "default";

/// A complete, validated policy.
///
/// Every section and key is optional in a file; missing ones take the built-in defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Policy {
    /// Resource caps for one run of generated code.
    #[serde(default)]
    pub limits: Limits,
    /// Retry budget for generated code.
    #[serde(default)]
    pub attempts: Attempts,
    /// Allowed sandbox backends.
    #[serde(default)]
    pub sandbox: SandboxPolicy,
    /// Settings for the Docker backend.
    #[serde(default)]
    pub docker: DockerPolicy,
    /// How many candidates a job tries, and within what budget.
    #[serde(default)]
    pub search: Search,
}

impl Policy {
    /// Parses and validates policy TOML.
    ///
    /// `origin` names the text in error messages: a file path, or a name such as `"default"`.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Policy, PolicyError> {
        let policy: Policy = toml::from_str(text).map_err(|e| PolicyError::Toml {
            origin: origin.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        policy.validate(origin)?;
        Ok(policy)
    }

    /// Reads, parses and validates a policy file. Errors name the file by its path.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Policy, PolicyError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Io {
            path: path.to_owned(),
            source,
        })?;
        Policy::from_toml_str(&text, &path.display().to_string())
    }

    /// Checks every value against its allowed range; the error names the first bad key.
    ///
    /// Parsing already validates; call this after building or changing a policy in code.
    pub fn validate(&self, origin: &str) -> Result<(), PolicyError> {
        validate::policy(self, origin)
    }
}

impl Default for Policy {
    /// The embedded `default.toml`, parsed once.
    fn default() -> Self {
        static DEFAULT: OnceLock<Policy> = OnceLock::new();
        DEFAULT
            .get_or_init(|| {
                Policy::from_toml_str(DEFAULT_POLICY_TOML, DEFAULT_POLICY_NAME)
                    .expect("the embedded default.toml is valid (checked by a unit test)")
            })
            .clone()
    }
}

/// Everything that can go wrong when loading a policy or applying a request's overrides.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A policy file could not be read.
    #[error("cannot read policy file {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid TOML, or a value has the wrong type, or a key is unknown.
    #[error("cannot parse policy {origin}: {message}")]
    Toml {
        /// The file or name the text came from.
        origin: String,
        /// The toml crate's message, with line, column and a snippet.
        message: String,
    },
    /// A value is well-typed but outside its allowed range.
    #[error("invalid value in {origin}: `{key}` {reason}")]
    Invalid {
        /// The file or name the policy came from.
        origin: String,
        /// The dotted key path, e.g. `limits.memory`.
        key: String,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// A policy name is neither a preset in the policy directory nor `default`.
    #[error(
        "unknown policy `{name}`: there is no {name}.toml in {} (available: {})",
        dir.display(),
        available.join(", ")
    )]
    UnknownPreset {
        /// The name asked for.
        name: String,
        /// The policy directory searched.
        dir: PathBuf,
        /// The names that do exist, sorted.
        available: Vec<String>,
    },
    /// A policy name that is not a file path contains characters a preset name cannot have.
    #[error(
        "invalid policy name {name:?}: a preset name is 1 to 64 lowercase letters, digits, `-` or \
         `_`, starting with a letter or digit; to load a file instead, give a path that contains \
         `/` or ends in `.toml`"
    )]
    InvalidName {
        /// The rejected name.
        name: String,
    },
    /// A request tried to raise a cap above the policy's value.
    #[error(
        "request raises `{key}` to {requested}, above the policy's cap of {cap}; a request may \
         only lower caps"
    )]
    RaisesCap {
        /// The dotted key path, e.g. `limits.memory`.
        key: String,
        /// The value the request asked for.
        requested: String,
        /// The policy's value.
        cap: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_parses_and_equals_serde_defaults() {
        let parsed = Policy::from_toml_str(DEFAULT_POLICY_TOML, "default.toml").expect("parses");
        let serde_defaults = Policy {
            limits: Limits::default(),
            attempts: Attempts::default(),
            sandbox: SandboxPolicy::default(),
            docker: DockerPolicy::default(),
            search: Search::default(),
        };
        assert_eq!(parsed, serde_defaults);
        assert_eq!(Policy::default(), serde_defaults);
        let empty = Policy::from_toml_str("", "empty.toml").expect("empty parses");
        assert_eq!(empty, serde_defaults);
    }

    #[test]
    fn default_toml_documents_every_key() {
        let keys = [
            "wall-time",
            "memory",
            "fuel",
            "output",
            "max",
            "backends",
            "image",
            "cpus",
            "pids",
            "candidates",
            "time-budget",
            "folds",
        ];
        let lines: Vec<&str> = DEFAULT_POLICY_TOML.lines().collect();
        for key in keys {
            let at = lines
                .iter()
                .position(|l| l.starts_with(&format!("{key} =")))
                .unwrap_or_else(|| panic!("default.toml sets {key}"));
            assert!(
                at > 0 && lines[at - 1].starts_with('#'),
                "default.toml has a comment line above {key}"
            );
        }
    }

    #[test]
    fn json_round_trip() {
        let p = Policy::default();
        let json = serde_json::to_string(&p).expect("json");
        let back: Policy = serde_json::from_str(&json).expect("back");
        assert_eq!(back, p);
    }

    #[test]
    fn from_file_errors_name_the_path() {
        let err = Policy::from_file("/nonexistent/dir/p.toml").expect_err("missing");
        assert_eq!(
            err.to_string(),
            "cannot read policy file /nonexistent/dir/p.toml"
        );
        assert!(std::error::Error::source(&err).is_some());

        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "[attempts]\nmax = 0\n").expect("write");
        let err = Policy::from_file(&path).expect_err("invalid");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        assert!(err.to_string().contains("`attempts.max`"), "{err}");
    }
}
