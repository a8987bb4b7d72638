//! A generic on-disk cache of expensive build products, created at most once per machine.
//!
//! Compiling the 100 MB interpreter module takes many seconds, and parallel test processes and
//! workers all want it. [`CompileCache::get_or_create`] hands out `dir/<key>.cwasm` if it exists;
//! otherwise it takes an exclusive file lock on `dir/<key>.lock`, checks again, lets the caller
//! write a temporary file in the same directory, syncs it and renames it into place. Readers never
//! see a partial entry, and a failed creation leaves no entry and no temporary file behind. The
//! `.lock` files are kept: deleting a lock file while others wait on it would break the mutual
//! exclusion.
//!
//! The cache does not interpret keys; callers build them from everything the product depends on
//! (e.g. the engine's configuration and the module's SHA-256).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// File name extension of cache entries.
pub const ENTRY_EXTENSION: &str = "cwasm";
/// Longest accepted key.
pub const MAX_KEY_LEN: usize = 128;

/// A directory of cache entries named by key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileCache {
    dir: PathBuf,
}

/// One existing cache entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CacheEntry {
    /// The entry's key.
    pub key: String,
    /// Its file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
}

/// Why a cache entry could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum CacheError<E> {
    /// The key has characters or a length the cache does not accept.
    #[error(
        "invalid cache key {key:?}: use 1-{MAX_KEY_LEN} characters of [A-Za-z0-9_-] \
         (e.g. a hex digest)"
    )]
    InvalidKey {
        /// The rejected key.
        key: String,
    },
    /// A filesystem operation on the cache failed.
    #[error("compile cache: {action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The caller's `create` function failed; nothing was cached.
    #[error("creating cache entry {key} failed")]
    Create {
        /// The entry's key.
        key: String,
        /// The caller's error.
        #[source]
        source: E,
    },
    /// `create` returned success but left the temporary file empty; nothing was cached.
    #[error("creating cache entry {key} produced an empty file; nothing was cached")]
    Empty {
        /// The entry's key.
        key: String,
    },
}

/// Maps an I/O error on `path` to [`CacheError::Io`].
fn io<E>(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> CacheError<E> + use<E> {
    let path = path.to_owned();
    move |source| CacheError::Io {
        action,
        path,
        source,
    }
}

/// Whether `key` is acceptable as a cache key.
pub fn is_valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl CompileCache {
    /// A cache in `dir` (created on first use).
    pub fn new(dir: impl Into<PathBuf>) -> CompileCache {
        CompileCache { dir: dir.into() }
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the entry for `key` lives, or `None` if the key is invalid.
    pub fn entry_path(&self, key: &str) -> Option<PathBuf> {
        is_valid_key(key).then(|| self.dir.join(format!("{key}.{ENTRY_EXTENSION}")))
    }

    /// The entry for `key` if it exists.
    pub fn get(&self, key: &str) -> Option<PathBuf> {
        self.entry_path(key).filter(|path| path.is_file())
    }

    /// The entry for `key`, created by `create` if missing.
    ///
    /// `create` receives a path in the cache directory and must write the whole product there
    /// (overwriting the empty file that is there). It runs at most once per key at a time across
    /// all processes sharing the directory, and not at all if the entry exists. To use it with
    /// `anyhow`, pick `E = Box<dyn std::error::Error + Send + Sync>`; `?` converts into it.
    pub fn get_or_create<E>(
        &self,
        key: &str,
        create: impl FnOnce(&Path) -> Result<(), E>,
    ) -> Result<PathBuf, CacheError<E>> {
        let path = self.entry_path(key).ok_or_else(|| CacheError::InvalidKey {
            key: key.to_owned(),
        })?;
        if path.is_file() {
            return Ok(path);
        }
        fs::create_dir_all(&self.dir).map_err(io("cannot create directory", &self.dir))?;
        let lock_path = self.dir.join(format!("{key}.lock"));
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io("cannot open lock file", &lock_path))?;
        lock.lock().map_err(io("cannot lock", &lock_path))?;
        // Another process may have created the entry while this one waited for the lock.
        if path.is_file() {
            return Ok(path);
        }
        // Deleted on drop, i.e. on every early return below.
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{key}."))
            .suffix(".tmp")
            .tempfile_in(&self.dir)
            .map_err(io("cannot create temporary file in", &self.dir))?
            .into_temp_path();
        create(&tmp).map_err(|source| CacheError::Create {
            key: key.to_owned(),
            source,
        })?;
        let file = File::open(&tmp).map_err(io("cannot open", &tmp))?;
        let size = file.metadata().map_err(io("cannot stat", &tmp))?.len();
        if size == 0 {
            return Err(CacheError::Empty {
                key: key.to_owned(),
            });
        }
        file.sync_all().map_err(io("cannot flush", &tmp))?;
        drop(file);
        tmp.persist(&path)
            .map_err(|e| io("cannot rename into place", &path)(e.error))?;
        #[cfg(unix)]
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io("cannot flush directory", &self.dir))?;
        drop(lock);
        Ok(path)
    }

    /// The existing entries, sorted by key; none if the directory does not exist yet.
    pub fn entries(&self) -> io::Result<Vec<CacheEntry>> {
        let dir = match fs::read_dir(&self.dir) {
            Ok(dir) => dir,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut entries = Vec::new();
        for entry in dir {
            let entry = entry?;
            let path = entry.path();
            let is_entry = path.extension().is_some_and(|ext| ext == ENTRY_EXTENSION);
            let key = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            if !is_entry || !is_valid_key(key) {
                continue;
            }
            let meta = entry.metadata()?;
            if meta.is_file() {
                entries.push(CacheEntry {
                    key: key.to_owned(),
                    path: path.clone(),
                    size: meta.len(),
                });
            }
        }
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};

    use super::*;

    #[test]
    fn keys_are_validated() {
        for good in [
            "abc",
            "0123abcdef",
            "wasmtime-48_x",
            &"a".repeat(MAX_KEY_LEN),
        ] {
            assert!(is_valid_key(good), "{good}");
        }
        let long = "a".repeat(MAX_KEY_LEN + 1);
        for bad in ["", "../x", "a/b", "a.b", "é", " ", long.as_str()] {
            assert!(!is_valid_key(bad), "{bad}");
            let cache = CompileCache::new("/nonexistent");
            let err = cache.get_or_create(bad, |_| Ok::<(), io::Error>(()));
            assert!(matches!(err, Err(CacheError::InvalidKey { .. })));
        }
    }

    #[test]
    fn concurrent_callers_create_once() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cache = Arc::new(CompileCache::new(tmp.path().join("compiled")));
        let calls = Arc::new(AtomicUsize::new(0));
        let barrier = Arc::new(Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (cache, calls, barrier) = (cache.clone(), calls.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    cache.get_or_create("deadbeef", |tmp| {
                        calls.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        fs::write(tmp, b"compiled bytes")
                    })
                })
            })
            .collect();
        for thread in threads {
            let path = thread.join().expect("thread").expect("entry");
            assert_eq!(path, cache.dir().join("deadbeef.cwasm"));
            assert_eq!(fs::read(&path).expect("read"), b"compiled bytes");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(cache.get("deadbeef"), cache.entry_path("deadbeef"));
        let entries = cache.entries().expect("entries");
        assert_eq!(entries.len(), 1);
        assert_eq!((entries[0].key.as_str(), entries[0].size), ("deadbeef", 14));
    }

    #[test]
    fn failed_or_empty_creation_leaves_nothing() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cache = CompileCache::new(tmp.path());
        let err = cache
            .get_or_create("k1", |tmp| {
                fs::write(tmp, b"partial")?;
                Err(io::Error::other("compiler crashed"))
            })
            .expect_err("create fails");
        assert!(
            matches!(&err, CacheError::Create { key, .. } if key == "k1"),
            "{err}"
        );
        let err = cache
            .get_or_create("k2", |_| Ok::<(), io::Error>(()))
            .expect_err("empty");
        assert!(matches!(err, CacheError::Empty { .. }), "{err}");
        let mut names: Vec<_> = fs::read_dir(tmp.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["k1.lock", "k2.lock"]);
        assert_eq!(cache.entries().expect("entries"), []);
        assert_eq!(cache.get("k1"), None);

        let path = cache
            .get_or_create("k1", |tmp| fs::write(tmp, b"ok"))
            .expect("retry succeeds");
        assert_eq!(fs::read(path).expect("read"), b"ok");
    }
}
