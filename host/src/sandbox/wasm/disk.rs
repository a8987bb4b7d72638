//! The scratch-disk cap of a WASI run: what `/tmp` and `/output` hold together, enforced while
//! the guest writes.
//!
//! Both mounts are host folders, so a guest that writes without end fills the host's disk. Two
//! checks hold it to `[limits] disk`:
//! - every `fd_write` and `fd_pwrite` the guest makes to a file is charged, before it happens,
//!   against what the mounts were last measured to hold; a write that would pass the cap is
//!   refused and stops the run. So the data written can never exceed the cap, and the host's
//!   disk grows by at most the cap.
//! - every [`POLL`] the mounts are measured by apparent size (a sparse file counts what it
//!   claims, so `truncate` or a seek past the end counts too), which resets the charge to the
//!   truth; a measurement past the cap stops the run at the next epoch tick. The walk is the
//!   one the Docker backend measures `/output` with, links neither followed nor counted; a
//!   folder of more than `ks_sandbox_fallback::output::MAX_ENTRIES` entries cannot be
//!   measured (empty files cost the host inodes).
//!
//! A measurement that fails counts as over the cap: a run whose mounts cannot be measured
//! cannot be held to one.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// How often the mounts are measured while a run goes on.
pub(crate) const POLL: Duration = Duration::from_millis(100);

/// A run's disk budget, shared by the guest's write calls and the measuring task.
#[derive(Debug)]
pub(crate) struct DiskQuota {
    cap: u64,
    /// Apparent bytes at the last measurement.
    measured: AtomicU64,
    /// Bytes charged by writes since then.
    pending: AtomicU64,
    exceeded: AtomicBool,
}

/// The error that stops a guest at the cap; the run's outcome names `disk`.
#[derive(Debug, thiserror::Error)]
#[error("the run passed its disk cap of {cap} bytes")]
pub(crate) struct DiskCapExceeded {
    pub(crate) cap: u64,
}

impl DiskQuota {
    pub(crate) fn new(cap: u64) -> Arc<Self> {
        Arc::new(Self {
            cap,
            measured: AtomicU64::new(0),
            pending: AtomicU64::new(0),
            exceeded: AtomicBool::new(false),
        })
    }

    /// Charges a write of `bytes`; `false` (and the quota marked exceeded) if it would pass
    /// the cap, in which case the write must not happen.
    pub(crate) fn charge(&self, bytes: u64) -> bool {
        if self.exceeded() {
            return false;
        }
        let pending = self.pending.fetch_add(bytes, Ordering::SeqCst) + bytes;
        let total = self.measured.load(Ordering::SeqCst).saturating_add(pending);
        if total > self.cap {
            self.exceeded.store(true, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Records a measurement taken while `charged_before` bytes were pending: those are in the
    /// measurement now, later charges are not.
    fn measured(&self, bytes: u64, charged_before: u64) {
        self.measured.store(bytes, Ordering::SeqCst);
        self.pending.fetch_sub(charged_before, Ordering::SeqCst);
        if bytes > self.cap {
            self.exceeded.store(true, Ordering::SeqCst);
        }
    }

    /// Whether the run went past the cap.
    pub(crate) fn exceeded(&self) -> bool {
        self.exceeded.load(Ordering::SeqCst)
    }

    pub(crate) fn cap(&self) -> u64 {
        self.cap
    }

    /// Measures `dirs` now and records their total; each one's apparent bytes, or `None` (and
    /// the quota exceeded) when one could not be measured.
    pub(crate) fn measure(&self, dirs: &[PathBuf]) -> Option<Vec<u64>> {
        let before = self.pending.load(Ordering::SeqCst);
        let sizes: std::io::Result<Vec<u64>> = dirs
            .iter()
            .map(|dir| ks_sandbox_fallback::output::regular_file_bytes(dir))
            .collect();
        match sizes {
            Ok(sizes) => {
                self.measured(sizes.iter().fold(0, |a, b| a.saturating_add(*b)), before);
                Some(sizes)
            }
            Err(error) => {
                tracing::warn!(%error, "a run's mounts could not be measured; stopping it");
                self.exceeded.store(true, Ordering::SeqCst);
                None
            }
        }
    }
}

/// Measures `dirs` every [`POLL`] until `done` is cancelled.
pub(crate) async fn watch(
    quota: Arc<DiskQuota>,
    dirs: Vec<PathBuf>,
    done: tokio_util::sync::CancellationToken,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            () = done.cancelled() => return,
        }
        let (quota, dirs) = (quota.clone(), dirs.clone());
        let _ = tokio::task::spawn_blocking(move || quota.measure(&dirs)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_charged_until_the_cap() {
        let quota = DiskQuota::new(100);
        assert!(quota.charge(60));
        assert!(quota.charge(40), "exactly the cap is allowed");
        assert!(!quota.charge(1), "one byte more is not");
        assert!(quota.exceeded());
        assert!(!quota.charge(0), "nothing more once exceeded");
    }

    #[test]
    fn a_measurement_replaces_what_was_charged_before_it() {
        let quota = DiskQuota::new(100);
        assert!(quota.charge(90));
        // The 90 bytes were a rewrite of the same 10: the folder holds 10.
        quota.measured(10, 90);
        assert!(quota.charge(85));
        assert!(!quota.exceeded());
    }

    #[test]
    fn sparse_files_count_what_they_claim() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = std::fs::File::create(dir.path().join("sparse")).expect("create");
        file.set_len(10 << 20).expect("extend");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("sub/a"), b"12345").expect("write");
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).expect("link");
        let dirs = [dir.path().to_path_buf()];
        let roomy = DiskQuota::new(11 << 20);
        assert_eq!(roomy.measure(&dirs), Some(vec![(10 << 20) + 5]));
        assert!(!roomy.exceeded());
        let tight = DiskQuota::new(1 << 20);
        tight.measure(&dirs);
        assert!(tight.exceeded());
    }

    #[test]
    fn a_failed_measurement_is_over_the_cap() {
        let quota = DiskQuota::new(1 << 30);
        quota.measure(&[PathBuf::from("/nonexistent/ks-disk-test")]);
        assert!(quota.exceeded());
    }
}
