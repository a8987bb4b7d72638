//! The on-disk cache of downloaded competitions, filled once per competition.
//!
//! Many jobs may ask for the same competition at once, in one service process or in several,
//! and each download can be gigabytes. So a fill is single-flight: callers in one process queue
//! on a per-slug `tokio::sync::Mutex`, processes on an exclusive file lock
//! (`competitions/<slug>.fill.lock`), and every caller re-checks the cache after getting in
//! line. The fill lock is a file of its own, apart from the pins' lock: a fill waiting behind
//! the jobs that use the entry would wait for as long as they run.
//! A fill works in a private staging folder inside the cache and becomes visible by a rename;
//! the marker `competitions/<slug>.complete.json`, written last, is what makes an entry count,
//! so a crash at any point leaves either a complete entry or one that is redone. The cache is
//! capped in size, the least recently used entries going first, never one in use (`lru`).
//!
//! ```text
//! <root>/competitions/<slug>/                 the data, as unpacked
//! <root>/competitions/<slug>.complete.json    the marker and the competition's metadata
//! <root>/competitions/<slug>.fill.lock        the fill lock (exclusive)
//! <root>/competitions/<slug>.lock             jobs' pins (shared), eviction (exclusive)
//! <root>/competitions/<slug>.used             its modification time: the entry's last use
//! <root>/competitions/.staging-<slug>/        a fill in progress (removed when it ends)
//! <root>/competitions/.partial-<slug>/        a download a failed fill may resume (kept
//!                                             until a fill succeeds, fails for good, or a
//!                                             day passes)
//! <root>/competitions/.evict.lock             held by the one eviction running
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::FetchError;
use super::url::validate_slug;

mod lru;

pub use lru::{CachePin, DEFAULT_CACHE_MAX};

/// Markers bigger than this are ignored (they are a few kilobytes).
const MAX_MARKER_BYTES: u64 = 4 << 20;
/// How often a fetch fills again when evictions keep removing its entry before it is pinned.
const PIN_TRIES: usize = 3;

/// What the cache remembers about a competition, stored in its marker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheEntry {
    /// The competition's title.
    pub title: Option<String>,
    /// Its description.
    pub description: Option<String>,
    /// Its evaluation metric's name.
    pub evaluation_metric: Option<String>,
    /// Files unpacked.
    pub files: usize,
    /// Bytes unpacked.
    pub bytes: u64,
}

/// A fill's private folders: `dir` for scratch, `data` for the unpacked files, `keep` for what
/// a retry may reuse.
#[derive(Debug, Clone)]
pub struct Staging {
    /// The staging root, removed when the fill ends.
    pub dir: PathBuf,
    /// The folder that becomes the cached data (exists, empty).
    pub data: PathBuf,
    /// A folder that outlives a fill which fails in a way a retry may get past (exists): the
    /// next fill of the slug finds what this one left there, such as a partial download.
    pub keep: PathBuf,
}

/// How long a failed fill's partial download waits for a retry before the next fill drops it.
const KEEP_FOR: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// The cache under a root folder (usually `$KS_HOME`).
#[derive(Debug)]
pub struct CompetitionCache {
    root: PathBuf,
    /// The cap on the entries' unpacked bytes.
    max_bytes: u64,
    flights: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl CompetitionCache {
    /// A cache in `<root>/competitions/` capped at [`DEFAULT_CACHE_MAX`]; nothing is created
    /// until the first fill.
    pub fn new(root: impl Into<PathBuf>) -> CompetitionCache {
        CompetitionCache {
            root: root.into(),
            max_bytes: DEFAULT_CACHE_MAX,
            flights: Mutex::new(HashMap::new()),
        }
    }

    /// The same cache capped at `max_bytes` of unpacked data.
    #[must_use]
    pub fn with_max(mut self, max_bytes: u64) -> CompetitionCache {
        self.max_bytes = max_bytes;
        self
    }

    /// `<root>/competitions`.
    pub fn competitions_dir(&self) -> PathBuf {
        self.root.join("competitions")
    }

    /// Where the data of `slug` lives once cached.
    pub fn data_dir(&self, slug: &str) -> PathBuf {
        self.competitions_dir().join(slug)
    }

    fn marker_path(&self, slug: &str) -> PathBuf {
        marker_path(&self.competitions_dir(), slug)
    }

    fn fill_lock_path(&self, slug: &str) -> PathBuf {
        fill_lock_path(&self.competitions_dir(), slug)
    }

    /// The cached entry of `slug`, if its fill completed.
    pub fn lookup(&self, slug: &str) -> Option<CacheEntry> {
        let marker = self.marker_path(slug);
        let meta = std::fs::metadata(&marker).ok()?;
        if meta.len() > MAX_MARKER_BYTES || !self.data_dir(slug).is_dir() {
            return None;
        }
        let text = std::fs::read(&marker).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// The cached entry of `slug`, filling it with `fill` first if needed; `true` with the
    /// entry when this call filled it. Concurrent callers, in this process or others, wait for
    /// one fill. A failed fill leaves nothing behind, and the next caller tries again.
    pub async fn get_or_fill<F, Fut>(
        &self,
        slug: &str,
        fill: F,
    ) -> Result<(CacheEntry, bool), FetchError>
    where
        F: FnOnce(Staging) -> Fut,
        Fut: Future<Output = Result<CacheEntry, FetchError>>,
    {
        validate_slug(slug)?;
        if let Some(entry) = self.lookup(slug) {
            return Ok((entry, false));
        }
        let flight = self.flight(slug);
        let result = {
            let _in_process = flight.lock().await;
            self.fill_locked(slug, fill).await
        };
        self.land(slug, flight);
        result
    }

    /// [`CompetitionCache::get_or_fill`], with the entry pinned for the caller (see
    /// [`CachePin`]), its use recorded, and the cache then brought back under its cap. A fill
    /// may run again if an eviction elsewhere removed the entry before it was pinned.
    pub async fn get_pinned<F, Fut>(
        &self,
        slug: &str,
        fill: F,
    ) -> Result<(CacheEntry, bool, CachePin), FetchError>
    where
        F: Fn(Staging) -> Fut,
        Fut: Future<Output = Result<CacheEntry, FetchError>>,
    {
        let mut filled = false;
        for _ in 0..PIN_TRIES {
            let (_, did_fill) = self.get_or_fill(slug, &fill).await?;
            filled |= did_fill;
            let pin = self.pin(slug).await?;
            let Some(entry) = self.lookup(slug) else {
                continue;
            };
            if let Err(error) = self.touch(slug) {
                tracing::warn!(%error, "the cache's use order may be off");
            }
            let dir = self.competitions_dir();
            let max = self.max_bytes;
            let span = tracing::Span::current();
            match tokio::task::spawn_blocking(move || span.in_scope(|| lru::evict(&dir, max))).await
            {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => tracing::warn!(%error, "the cache stays over its cap"),
                Err(error) => tracing::warn!(%error, "cache eviction panicked"),
            }
            return Ok((entry, filled, pin));
        }
        Err(FetchError::Config(format!(
            "the cached data of {slug:?} was evicted {PIN_TRIES} times before this job could \
             use it: raise KS_CACHE_MAX"
        )))
    }

    async fn fill_locked<F, Fut>(
        &self,
        slug: &str,
        fill: F,
    ) -> Result<(CacheEntry, bool), FetchError>
    where
        F: FnOnce(Staging) -> Fut,
        Fut: Future<Output = Result<CacheEntry, FetchError>>,
    {
        if let Some(entry) = self.lookup(slug) {
            return Ok((entry, false));
        }
        let competitions = self.competitions_dir();
        create_dir_all(&competitions)?;
        let _cross_process = lock_file(self.fill_lock_path(slug)).await?;
        if let Some(entry) = self.lookup(slug) {
            return Ok((entry, false));
        }
        // Whatever is here without a marker is left from a fill that died.
        let data = self.data_dir(slug);
        remove_dir_all(&data)?;
        let staging_dir = competitions.join(format!(".staging-{slug}"));
        remove_dir_all(&staging_dir)?;
        let keep = competitions.join(format!(".partial-{slug}"));
        let stale = std::fs::metadata(&keep)
            .and_then(|m| m.modified())
            .is_ok_and(|at| at.elapsed().is_ok_and(|age| age > KEEP_FOR));
        if stale {
            remove_dir_all(&keep)?;
        }
        let staging = Staging {
            data: staging_dir.join("data"),
            dir: staging_dir.clone(),
            keep: keep.clone(),
        };
        create_dir_all(&staging.data)?;
        create_dir_all(&staging.keep)?;

        let outcome = match fill(staging.clone()).await {
            Ok(entry) => self.publish(slug, &staging, &entry).map(|()| (entry, true)),
            Err(err) => Err(err),
        };
        if let Err(err) = remove_dir_all(&staging_dir) {
            tracing::warn!(%err, "cannot remove the staging folder");
        }
        let settled =
            outcome.as_ref().is_ok() || outcome.as_ref().is_err_and(|e| !e.is_retryable());
        if settled && let Err(err) = remove_dir_all(&keep) {
            tracing::warn!(%err, "cannot remove the partial download's folder");
        }
        outcome
    }

    /// Moves the staged data into place, then writes the marker.
    fn publish(&self, slug: &str, staging: &Staging, entry: &CacheEntry) -> Result<(), FetchError> {
        let data = self.data_dir(slug);
        std::fs::rename(&staging.data, &data)
            .map_err(|e| FetchError::io(format!("moving the data into {}", data.display()), e))?;
        let marker = self.marker_path(slug);
        let tmp = staging.dir.join("marker.json");
        let json = serde_json::to_vec_pretty(entry).map_err(|e| {
            FetchError::io(
                "serialising the cache marker".into(),
                std::io::Error::other(e),
            )
        })?;
        std::fs::write(&tmp, json)
            .and_then(|()| std::fs::rename(&tmp, &marker))
            .map_err(|e| FetchError::io(format!("writing {}", marker.display()), e))
    }

    fn flight(&self, slug: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        flights.entry(slug.to_owned()).or_default().clone()
    }

    /// Forgets the slug's in-process lock once no caller holds it.
    fn land(&self, slug: &str, flight: Arc<tokio::sync::Mutex<()>>) {
        let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        // One reference in the map, one here: nobody else is waiting.
        if Arc::strong_count(&flight) == 2 {
            flights.remove(slug);
        }
    }
}

fn marker_path(dir: &Path, slug: &str) -> PathBuf {
    dir.join(format!("{slug}.complete.json"))
}

fn lock_path(dir: &Path, slug: &str) -> PathBuf {
    dir.join(format!("{slug}.lock"))
}

/// The lock a fill of `slug` holds, here or in another process.
fn fill_lock_path(dir: &Path, slug: &str) -> PathBuf {
    dir.join(format!("{slug}.fill.lock"))
}

/// Takes the exclusive lock on `path` (created if missing), waiting on a blocking thread.
async fn lock_file(path: PathBuf) -> Result<std::fs::File, FetchError> {
    let context = format!("locking {}", path.display());
    let locked = tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        file.lock()?;
        Ok::<_, std::io::Error>(file)
    })
    .await
    .map_err(|e| FetchError::io(context.clone(), std::io::Error::other(e)))?;
    locked.map_err(|e| FetchError::io(context, e))
}

fn create_dir_all(path: &Path) -> Result<(), FetchError> {
    std::fs::create_dir_all(path)
        .map_err(|e| FetchError::io(format!("creating {}", path.display()), e))
}

/// Removes a folder tree; a missing one is fine.
fn remove_dir_all(path: &Path) -> Result<(), FetchError> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(FetchError::io(format!("removing {}", path.display()), e))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(title: &str) -> CacheEntry {
        CacheEntry {
            title: Some(title.into()),
            ..CacheEntry::default()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fill_does_not_wait_for_the_jobs_that_pin_the_slug() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cache = CompetitionCache::new(tmp.path());
        std::fs::create_dir_all(cache.competitions_dir()).expect("mkdir");
        // A job of another process pins the slug (its shared lock) while this one must fill,
        // as when it looked before the other's fill had published.
        let pin = cache.pin("comp").await.expect("pin");
        let fill = cache.get_or_fill("comp", |staging| async move {
            std::fs::write(staging.data.join("train.csv"), "id\n").expect("write");
            Ok(entry("T"))
        });
        let (_, filled) = tokio::time::timeout(std::time::Duration::from_secs(20), fill)
            .await
            .expect("the fill went ahead beside the pin")
            .expect("fill");
        assert!(filled);
        drop(pin);
    }

    #[tokio::test]
    async fn failed_fills_leave_nothing_and_stale_data_is_redone() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cache = CompetitionCache::new(tmp.path());
        std::fs::create_dir_all(cache.data_dir("comp").join("stale")).expect("mkdir");

        let failed = cache
            .get_or_fill("comp", |staging| async move {
                std::fs::write(staging.data.join("half.csv"), "x").expect("write");
                Err(FetchError::Config("boom".into()))
            })
            .await;
        assert!(failed.is_err());
        assert!(!cache.data_dir("comp").exists(), "stale data is removed");
        assert!(!cache.competitions_dir().join(".staging-comp").exists());
        assert_eq!(cache.lookup("comp"), None);

        let (got, filled) = cache
            .get_or_fill("comp", |staging| async move {
                std::fs::write(staging.data.join("train.csv"), "id\n").expect("write");
                Ok(entry("T"))
            })
            .await
            .expect("fill");
        assert!(filled);
        assert_eq!(got, entry("T"));
        assert!(cache.data_dir("comp").join("train.csv").is_file());
        assert!(!cache.data_dir("comp").join("stale").exists());

        let (again, filled) = cache
            .get_or_fill("comp", |_| async {
                Err(FetchError::Config("not called".into()))
            })
            .await
            .expect("hit");
        assert!(!filled);
        assert_eq!(again, entry("T"));

        let bad = cache
            .get_or_fill("../escape", |_| async { Ok(entry("x")) })
            .await;
        assert!(matches!(bad, Err(FetchError::Source(_))));
    }
}
