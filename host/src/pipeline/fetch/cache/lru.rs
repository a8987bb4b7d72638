//! The cache's size cap (`KS_CACHE_MAX`): competitions are evicted least recently used first,
//! and never while a job has one mounted.
//!
//! Each hand-out of an entry records its use as the modification time of `<slug>.used`. A job
//! holds its competition through a [`CachePin`], a shared `flock` on the entry's lock file
//! (`<slug>.lock`, the one fills take exclusively) for as long as the job has it mounted.
//! Eviction takes that lock exclusively without waiting, so an entry in use (or being filled)
//! is skipped; the kernel drops the locks of a process that dies, so a crashed job pins
//! nothing. One eviction runs at a time per cache (`.evict.lock`), so processes sharing the
//! cache never evict twice for the same excess. An entry goes marker first, so it stops
//! counting at once, and a crash midway leaves data that the next fill redoes.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{
    CacheEntry, CompetitionCache, MAX_MARKER_BYTES, fill_lock_path, lock_path, marker_path,
    remove_dir_all,
};
use crate::pipeline::fetch::FetchError;
use crate::pipeline::fetch::url::validate_slug;

/// The default cap on the cache's unpacked bytes: 50 GiB.
pub const DEFAULT_CACHE_MAX: u64 = 50 << 30;

const MARKER_SUFFIX: &str = ".complete.json";

/// Keeps a cached competition from being evicted while held; dropping it lets go.
#[derive(Debug)]
pub struct CachePin {
    slug: String,
    /// Holds the shared lock; closing it releases the lock.
    _lock: File,
}

impl CachePin {
    /// The competition pinned.
    pub fn slug(&self) -> &str {
        &self.slug
    }
}

impl CompetitionCache {
    /// Pins `slug`'s entry, waiting while a fill or an eviction of it runs. The caller checks
    /// that the entry still exists once pinned: an eviction may have come first.
    pub async fn pin(&self, slug: &str) -> Result<CachePin, FetchError> {
        validate_slug(slug)?;
        let path = lock_path(&self.competitions_dir(), slug);
        let context = format!("pinning {}", path.display());
        let opened = tokio::task::spawn_blocking(move || {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)?;
            file.lock_shared()?;
            Ok::<_, std::io::Error>(file)
        })
        .await
        .map_err(|e| FetchError::io(context.clone(), std::io::Error::other(e)))?;
        Ok(CachePin {
            slug: slug.to_owned(),
            _lock: opened.map_err(|e| FetchError::io(context, e))?,
        })
    }

    /// Records that `slug` was used now.
    pub fn touch(&self, slug: &str) -> Result<(), FetchError> {
        touch_at(&self.competitions_dir(), slug, SystemTime::now())
    }

    /// Evicts unpinned entries, least recently used first, until the cache holds at most its
    /// cap; returns the slugs evicted, oldest first. Blocking: call on a blocking thread.
    pub fn evict_over_cap(&self) -> Result<Vec<String>, FetchError> {
        evict(&self.competitions_dir(), self.max_bytes)
    }
}

/// Sets `slug`'s use time to `at`.
fn touch_at(dir: &Path, slug: &str, at: SystemTime) -> Result<(), FetchError> {
    let path = used_path(dir, slug);
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .and_then(|file| file.set_modified(at))
        .map_err(|e| FetchError::io(format!("recording the use of {}", path.display()), e))
}

fn used_path(dir: &Path, slug: &str) -> PathBuf {
    dir.join(format!("{slug}.used"))
}

/// A complete entry, as eviction sees it.
#[derive(Debug)]
struct Entry {
    slug: String,
    bytes: u64,
    used: SystemTime,
}

/// The complete entries in `dir`, least recently used first.
fn entries(dir: &Path) -> Result<Vec<Entry>, FetchError> {
    let listing = match std::fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(FetchError::io(format!("listing {}", dir.display()), e)),
    };
    let mut out = Vec::new();
    for item in listing.flatten() {
        let name = item.file_name().to_string_lossy().into_owned();
        let Some(slug) = name.strip_suffix(MARKER_SUFFIX) else {
            continue;
        };
        if validate_slug(slug).is_err() || !dir.join(slug).is_dir() {
            continue;
        }
        let Some(entry) = read_marker(&item.path()) else {
            continue;
        };
        let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let used = modified(&used_path(dir, slug))
            .or_else(|| modified(&item.path()))
            .unwrap_or(SystemTime::UNIX_EPOCH);
        out.push(Entry {
            slug: slug.to_owned(),
            bytes: entry.bytes,
            used,
        });
    }
    out.sort_by(|a, b| a.used.cmp(&b.used).then_with(|| a.slug.cmp(&b.slug)));
    Ok(out)
}

fn read_marker(path: &Path) -> Option<CacheEntry> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.len() > MAX_MARKER_BYTES {
        return None;
    }
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// See [`CompetitionCache::evict_over_cap`].
pub(super) fn evict(dir: &Path, max: u64) -> Result<Vec<String>, FetchError> {
    let mut evicted = Vec::new();
    let listing = entries(dir)?;
    let mut total: u64 = listing.iter().map(|e| e.bytes).sum();
    if total <= max {
        return Ok(evicted);
    }
    let guard = dir.join(".evict.lock");
    let Some(_evicting) = try_lock(&guard)? else {
        // Another process is evicting this cache right now.
        return Ok(evicted);
    };
    for entry in listing {
        if total <= max {
            break;
        }
        // Neither pinned by a job nor being filled again (a fill publishing while the entry
        // goes would lose its data).
        let Some(_held) = try_lock(&lock_path(dir, &entry.slug))? else {
            continue;
        };
        let Some(_filling) = try_lock(&fill_lock_path(dir, &entry.slug))? else {
            continue;
        };
        let marker = marker_path(dir, &entry.slug);
        match std::fs::remove_file(&marker) {
            Ok(()) => {}
            // Evicted by another process since the listing: it counts no more.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                total = total.saturating_sub(entry.bytes);
                continue;
            }
            Err(e) => return Err(FetchError::io(format!("removing {}", marker.display()), e)),
        }
        total = total.saturating_sub(entry.bytes);
        remove_dir_all(&dir.join(&entry.slug))?;
        let _ = std::fs::remove_file(used_path(dir, &entry.slug));
        tracing::info!(slug = %entry.slug, bytes = entry.bytes, "evicted from the cache");
        evicted.push(entry.slug);
    }
    Ok(evicted)
}

/// The exclusive lock on `path`, or `None` if someone holds a lock on it.
fn try_lock(path: &Path) -> Result<Option<File>, FetchError> {
    let context = || format!("locking {}", path.display());
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| FetchError::io(context(), e))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(FetchError::io(context(), e)),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A cache capped at `max` holding `slugs`, 10 bytes each, used in the order given.
    async fn cache_with(root: &Path, max: u64, slugs: &[&str]) -> CompetitionCache {
        let cache = CompetitionCache::new(root).with_max(max);
        for (n, slug) in slugs.iter().enumerate() {
            cache
                .get_or_fill(slug, |staging| async move {
                    std::fs::write(staging.data.join("train.csv"), "0123456789").expect("write");
                    Ok(CacheEntry {
                        bytes: 10,
                        ..CacheEntry::default()
                    })
                })
                .await
                .expect("fill");
            let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000 + n as u64);
            touch_at(&cache.competitions_dir(), slug, at).expect("touch");
        }
        cache
    }

    fn cached(cache: &CompetitionCache, slugs: &[&str]) -> Vec<bool> {
        slugs.iter().map(|s| cache.lookup(s).is_some()).collect()
    }

    #[tokio::test]
    async fn evicts_least_recently_used_first_down_to_the_cap() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cache = cache_with(tmp.path(), 25, &["a", "b", "c", "d"]).await;
        // Using `a` makes `b` the least recently used.
        cache.touch("a").expect("touch");
        assert_eq!(cache.evict_over_cap().expect("evict"), ["b", "c"]);
        assert_eq!(
            cached(&cache, &["a", "b", "c", "d"]),
            [true, false, false, true]
        );
        assert!(!cache.data_dir("b").exists() && !cache.data_dir("c").exists());
        // At the cap (20 of 25 bytes) nothing more goes.
        assert_eq!(cache.evict_over_cap().expect("evict"), Vec::<String>::new());
        // Exactly at the cap is within it; a byte under it is not.
        let exact = CompetitionCache::new(tmp.path()).with_max(20);
        assert_eq!(exact.evict_over_cap().expect("evict"), Vec::<String>::new());
        let under = CompetitionCache::new(tmp.path()).with_max(19);
        assert_eq!(under.evict_over_cap().expect("evict"), ["d"]);
        assert_eq!(cached(&cache, &["a", "d"]), [true, false]);
    }

    #[tokio::test]
    async fn a_pinned_entry_stays_and_goes_once_let_go() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cache = cache_with(tmp.path(), 20, &["a", "b", "c"]).await;
        let pin = cache.pin("a").await.expect("pin");
        assert_eq!(pin.slug(), "a");
        // `a` is the least recently used but in use: the next one goes instead.
        assert_eq!(cache.evict_over_cap().expect("evict"), ["b"]);
        assert_eq!(cached(&cache, &["a", "b", "c"]), [true, false, true]);
        // Any one pin holds it: a second job's outlives the first's.
        let second = cache.pin("a").await.expect("a second job shares the entry");
        drop(pin);
        let tight = CompetitionCache::new(tmp.path()).with_max(5);
        assert_eq!(tight.evict_over_cap().expect("evict"), ["c"]);
        assert_eq!(cached(&cache, &["a", "c"]), [true, false]);
        drop(second);
        assert_eq!(tight.evict_over_cap().expect("evict"), ["a"]);
        assert_eq!(cached(&cache, &["a"]), [false]);
        assert!(!cache.data_dir("a").exists());
    }

    #[tokio::test]
    async fn a_dead_process_pins_nothing() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cache = cache_with(tmp.path(), 10, &["a", "b"]).await;
        let lock = lock_path(&cache.competitions_dir(), "a");
        // Another process holding `a` the way a job does: a shared flock on its lock file
        // (`--no-fork`: the process holding the lock is the one killed below).
        let mut holder = std::process::Command::new("flock")
            .args(["--shared", "--no-fork"])
            .arg(&lock)
            .args(["sleep", "600"])
            .spawn()
            .expect("flock(1) runs");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while try_lock(&lock).expect("lock").is_some() {
            assert!(
                std::time::Instant::now() < deadline,
                "flock never took the lock"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(cache.evict_over_cap().expect("evict"), ["b"]);
        assert!(cache.lookup("a").is_some(), "a live process's pin holds");
        holder.kill().expect("kill");
        holder.wait().expect("wait");
        cache_with(tmp.path(), 10, &["c"]).await;
        assert_eq!(cache.evict_over_cap().expect("evict"), ["a"]);
        assert_eq!(cached(&cache, &["a", "c"]), [false, true]);
    }
}
