//! The policy's typed sections, one struct per TOML table.
//!
//! These types are the contract between policy files and the sandbox: `deny_unknown_fields`
//! turns a typo into an error instead of a silently ignored cap, and every field has a default
//! (the values in `default.toml`) so a file may give any subset of keys.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use crate::ByteSize;

/// Caps on one run of generated code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
#[serde(expecting = "a `[limits]` table")]
pub struct Limits {
    /// Wall-clock deadline for one run (`wall-time = "30m"`).
    #[serde(with = "crate::duration")]
    pub wall_time: Duration,
    /// Memory cap: the WASI guest's linear memory, or the container's memory (and memory-swap).
    pub memory: ByteSize,
    /// Instruction budget ("fuel") for the WASI guest.
    #[serde(deserialize_with = "count::deserialize")]
    pub fuel: u64,
    /// Cap on captured stdout and on stderr (each), and on the size of `/output`.
    pub output: ByteSize,
    /// Cap on what `/tmp` and `/output` hold together (apparent sizes: a sparse file counts
    /// what it claims).
    pub disk: ByteSize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            wall_time: Duration::from_secs(30 * 60),
            memory: ByteSize::gib(4),
            fuel: 20_000_000_000_000,
            output: ByteSize::mib(64),
            disk: ByteSize::gib(4),
        }
    }
}

/// How often a job may try generated code before it fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
#[serde(expecting = "an `[attempts]` table")]
pub struct Attempts {
    /// Maximum number of attempts, the first included.
    #[serde(deserialize_with = "count::deserialize")]
    pub max: u32,
}

impl Default for Attempts {
    fn default() -> Self {
        Self { max: 3 }
    }
}

/// How a job searches for its submission (`[search]`): several candidates, each scored by the
/// host on training rows held back from the code, the best re-run on all the data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
#[serde(expecting = "a `[search]` table")]
pub struct Search {
    /// Candidates tried on the holdout; 1 is a single shot: one run on the full data, no
    /// holdout and no host score.
    #[serde(deserialize_with = "count::deserialize")]
    pub candidates: u32,
    /// Wall-clock budget for the whole job, the final full-data run included.
    #[serde(with = "crate::duration")]
    pub time_budget: Duration,
    /// Folds of the training rows each candidate is scored on: it runs once per fold, fitted
    /// on the other folds, so the host scores it on every training row. 1 holds out a fifth
    /// once (faster, noisier).
    #[serde(deserialize_with = "count::deserialize")]
    pub folds: u32,
    /// Candidates run at once; unset means one per worker (its CPU share on a small machine).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_count"
    )]
    pub parallel: Option<u32>,
    /// Cap on the LLM tokens one job may use; unset means no cap.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_count"
    )]
    pub max_tokens: Option<u64>,
}

impl Default for Search {
    fn default() -> Self {
        Self {
            candidates: 4,
            time_budget: Duration::from_secs(30 * 60),
            folds: 3,
            parallel: None,
            max_tokens: None,
        }
    }
}

impl Search {
    /// Whether this is today's single shot: no holdout, no host score.
    pub fn is_single_shot(&self) -> bool {
        self.candidates <= 1
    }
}

/// Deserializes a present count with [`count`]'s message.
fn optional_count<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    count::deserialize(d).map(Some)
}

/// Which sandbox backends a job may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
#[serde(expecting = "a `[sandbox]` table")]
pub struct SandboxPolicy {
    /// Allowed backends, in order of preference.
    #[serde(deserialize_with = "backends")]
    pub backends: Vec<Backend>,
    /// Which guest module the WASI backend starts each run from.
    pub guest: GuestImage,
}

impl Default for SandboxPolicy {
    fn default() -> Self {
        Self {
            backends: vec![Backend::Wasm, Backend::Docker],
            guest: GuestImage::default(),
        }
    }
}

/// The module a WASI run starts from (`[sandbox] guest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GuestImage {
    /// The runtime's own snapshot: the interpreter initialised, nothing of the scientific stack
    /// imported (each run pays about 3 s to import pandas and scikit-learn).
    Plain,
    /// An image built once per machine with numpy, pandas, scipy and scikit-learn already
    /// imported, reseeded on every run. If it cannot be built, runs use `plain` and say why.
    #[default]
    Prewarmed,
}

impl GuestImage {
    /// The name used in policy files and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            GuestImage::Plain => "plain",
            GuestImage::Prewarmed => "prewarmed",
        }
    }
}

impl<'de> Deserialize<'de> for GuestImage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;

        impl Visitor<'_> for V {
            type Value = GuestImage;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a guest name, \"plain\" or \"prewarmed\"")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<GuestImage, E> {
                [GuestImage::Plain, GuestImage::Prewarmed]
                    .into_iter()
                    .find(|g| g.as_str() == v)
                    .ok_or_else(|| {
                        E::custom(format!(
                            "unknown guest {v:?}; expected \"plain\" or \"prewarmed\""
                        ))
                    })
            }
        }

        d.deserialize_str(V)
    }
}

impl fmt::Display for GuestImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str()) // honours width, for tables
    }
}

/// Settings for the Docker fallback backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
#[serde(expecting = "a `[docker]` table")]
pub struct DockerPolicy {
    /// Image that runs native Python code.
    pub image: String,
    /// CPU quota, in CPUs (fractions allowed).
    #[serde(deserialize_with = "cpus")]
    pub cpus: f64,
    /// Maximum number of processes and threads in the container.
    #[serde(deserialize_with = "count::deserialize")]
    pub pids: u32,
}

impl Default for DockerPolicy {
    fn default() -> Self {
        Self {
            image: "kaggle-solver/native:latest".to_owned(),
            cpus: 1.0,
            pids: 256,
        }
    }
}

/// A sandbox backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// wasmtime running the WASI Python guest.
    Wasm,
    /// A hardened Docker container running native Python.
    Docker,
}

impl Backend {
    /// Every backend, in the default order of preference.
    pub const ALL: [Backend; 2] = [Backend::Wasm, Backend::Docker];

    /// The name used in policy files, flags and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Backend::Wasm => "wasm",
            Backend::Docker => "docker",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no [`Backend`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown backend {0:?}; expected \"wasm\" or \"docker\"")]
pub struct ParseBackendError(pub String);

impl FromStr for Backend {
    type Err = ParseBackendError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Backend::ALL
            .into_iter()
            .find(|b| b.as_str() == s)
            .ok_or_else(|| ParseBackendError(s.to_owned()))
    }
}

impl<'de> Deserialize<'de> for Backend {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;

        impl Visitor<'_> for V {
            type Value = Backend;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a backend name, \"wasm\" or \"docker\"")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Backend, E> {
                v.parse().map_err(E::custom)
            }
        }

        d.deserialize_str(V)
    }
}

/// Deserializes `sandbox.backends`, saying "list" where serde would say "sequence".
fn backends<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Backend>, D::Error> {
    struct V;

    impl<'de> Visitor<'de> for V {
        type Value = Vec<Backend>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of backends such as [\"wasm\", \"docker\"]")
        }

        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Backend>, A::Error> {
            let mut out = Vec::new();
            while let Some(b) = seq.next_element()? {
                out.push(b);
            }
            Ok(out)
        }
    }

    d.deserialize_seq(V)
}

/// Deserializes `docker.cpus` from an integer or a float, saying "number" where serde says "f64".
fn cpus<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    struct V;

    impl Visitor<'_> for V {
        type Value = f64;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number of CPUs such as 1.0 or 0.5")
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
            Ok(v)
        }

        #[allow(clippy::cast_precision_loss)] // CPU counts are far below 2^52
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
            Ok(v as f64)
        }

        #[allow(clippy::cast_precision_loss)]
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }
    }

    d.deserialize_any(V)
}

/// Deserializes a non-negative integer with a message users understand.
///
/// Serde's own message for `fuel = -5` is "expected u64", which is jargon in a config file.
mod count {
    use std::fmt;

    use serde::de::{self, Deserializer, Visitor};

    pub(super) fn deserialize<'de, D, T>(d: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: TryFrom<u64>,
    {
        let v = d.deserialize_any(CountVisitor)?;
        T::try_from(v).map_err(|_| de::Error::custom(format!("integer `{v}` is too large")))
    }

    struct CountVisitor;

    impl Visitor<'_> for CountVisitor {
        type Value = u64;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a non-negative integer")
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_names() {
        for b in Backend::ALL {
            assert_eq!(b.to_string().parse::<Backend>(), Ok(b));
        }
        let err = "podman".parse::<Backend>().expect_err("podman");
        assert_eq!(
            err.to_string(),
            "unknown backend \"podman\"; expected \"wasm\" or \"docker\""
        );
        assert_eq!(
            serde_json::to_string(&Backend::Docker).expect("json"),
            "\"docker\""
        );
    }
}
