//! Where a claim of a job works, and how nothing is left there once it ends.
//!
//! Every claim of a job (each time a worker takes it, or one `solve`) gets a folder of its own,
//! so a worker that lost its lease and the new holder never write in the same place. An
//! attempt's folder is removed when the attempt ends and the claim's when the solve ends,
//! whatever ended it. A process that dies mid-solve cannot clean up, so each claim folder
//! names its owner process (`hostname/pid/start-time`, the [`Owner`] that labels the Docker
//! sandbox's containers), and the next worker or `solve` to start on this host removes the
//! folders whose owner is gone ([`sweep`]). Folders owned from another host are left alone:
//! this host cannot tell whether their owner lives.
//!
//! ```text
//! <work>/<job>/<claim>/owner                 who works here
//! <work>/<job>/<claim>/attempt-N/output/     mounted at /output
//! <work>/<job>/<claim>/attempt-N/<tmp>/      the WASI run's /tmp
//! <work>/<job>/logs.json                     the job's logs, which stay
//! ```

use std::io::Read;
use std::path::{Path, PathBuf};

use ks_sandbox_fallback::owner::Owner;

/// The file in a claim folder that names its owner.
const OWNER_FILE: &str = "owner";
/// An owner file is one short line; anything longer is not one.
const MAX_OWNER_BYTES: u64 = 1024;
/// How often making a claim folder is tried while another claim's end removes the (empty)
/// job folder it goes in.
const CREATE_TRIES: usize = 3;

/// Why a work folder could not be made or listed.
#[derive(Debug, thiserror::Error)]
pub enum WorkDirError {
    /// A job id or claim id that is no safe folder name (a bug of the caller: not retried).
    #[error("the {kind} {name:?} is not a safe folder name (letters, digits, '-' and '_')")]
    InvalidName {
        /// Which id.
        kind: &'static str,
        /// The id.
        name: String,
    },
    /// A file operation failed (a full disk, permissions): may pass.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl WorkDirError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Io { .. })
    }

    pub(crate) fn io(context: String) -> impl FnOnce(std::io::Error) -> Self {
        move |source| Self::Io { context, source }
    }
}

/// One claim's folder. [`ClaimDir::remove`] removes it; if the solve is dropped before that
/// (its task aborted, a panic), dropping this removes it.
#[derive(Debug)]
pub(crate) struct ClaimDir {
    path: PathBuf,
    job_dir: PathBuf,
    armed: bool,
}

/// One attempt's folder: `output` is mounted at `/output`, the run's `/tmp` is made in `root`.
#[derive(Debug)]
pub(crate) struct AttemptDir {
    pub(crate) number: u32,
    pub(crate) root: PathBuf,
    pub(crate) output: PathBuf,
}

impl ClaimDir {
    /// Makes `<work>/<job>/<claim>/` and marks it with `owner` (when this process can name
    /// itself).
    pub(crate) async fn create(
        work: &Path,
        job: &str,
        claim: &str,
        owner: Option<&Owner>,
    ) -> Result<Self, WorkDirError> {
        check_name("job id", job)?;
        check_name("claim id", claim)?;
        let job_dir = work.join(job);
        let path = job_dir.join(claim);
        let marker = owner.map(ToString::to_string);
        let at = path.clone();
        blocking(move || {
            make_dir(&at)?;
            if let Some(marker) = marker {
                let file = at.join(OWNER_FILE);
                std::fs::write(&file, marker)
                    .map_err(WorkDirError::io(format!("writing {}", file.display())))?;
            }
            Ok(())
        })
        .await?;
        Ok(Self {
            path,
            job_dir,
            armed: true,
        })
    }

    /// Makes attempt `number`'s folder.
    pub(crate) async fn attempt(&self, number: u32) -> Result<AttemptDir, WorkDirError> {
        let root = self.path.join(format!("attempt-{number}"));
        let output = root.join("output");
        let at = output.clone();
        blocking(move || make_dir(&at)).await?;
        Ok(AttemptDir {
            number,
            root,
            output,
        })
    }

    /// Where the claim's holdout view goes (made by whoever builds it; removed with the claim).
    pub(crate) fn holdout_view(&self) -> PathBuf {
        self.path.join("holdout")
    }

    /// Where the claim's copy of the competition with its spreadsheets as CSV goes.
    pub(crate) fn converted_tables(&self) -> PathBuf {
        self.path.join("tables")
    }

    /// Removes the claim's folder, and the job's if that leaves it empty.
    pub(crate) async fn remove(mut self) {
        self.armed = false;
        let (path, job_dir) = (self.path.clone(), self.job_dir.clone());
        let span = tracing::Span::current();
        if tokio::task::spawn_blocking(move || span.in_scope(|| remove_claim(&path, &job_dir)))
            .await
            .is_err()
        {
            tracing::warn!(folder = %self.path.display(), "removing a claim folder panicked");
        }
    }
}

impl Drop for ClaimDir {
    fn drop(&mut self) {
        if self.armed {
            remove_claim(&self.path, &self.job_dir);
        }
    }
}

impl AttemptDir {
    /// Removes the attempt's folder; a failure is logged, and the claim's removal retries it.
    pub(crate) async fn remove(self) {
        let root = self.root.clone();
        match tokio::task::spawn_blocking(move || remove_tree(&root)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(folder = %self.root.display(), %error, "attempt folder not removed");
            }
            Err(_) => tracing::warn!(folder = %self.root.display(), "removing it panicked"),
        }
    }
}

/// Removes every claim folder under `work` whose owner on this host (`here`'s) is gone, and
/// returns them. Folders without an owner file, with an unreadable one, or owned from another
/// host are left alone.
pub(crate) fn sweep(work: &Path, here: &Owner) -> Result<Vec<PathBuf>, WorkDirError> {
    let jobs = match std::fs::read_dir(work) {
        Ok(jobs) => jobs,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(WorkDirError::io(format!("listing {}", work.display()))(e)),
    };
    let mut removed = Vec::new();
    for job in jobs.flatten() {
        // `file_type` does not follow links: a link is never swept into.
        if !job.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Ok(claims) = std::fs::read_dir(job.path()) else {
            continue;
        };
        let before = removed.len();
        for claim in claims.flatten() {
            if !claim.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let path = claim.path();
            let gone = read_owner(&path.join(OWNER_FILE)).is_some_and(|o| o.is_gone(here));
            if !gone {
                continue;
            }
            match remove_tree(&path) {
                Ok(()) => {
                    tracing::warn!(folder = %path.display(), "removed a dead run's work folder");
                    removed.push(path);
                }
                Err(error) => tracing::warn!(%error, "a dead run's work folder stays"),
            }
        }
        if removed.len() > before {
            // Only succeeds when empty, which leaves the job's logs in place.
            let _ = std::fs::remove_dir(job.path());
        }
    }
    Ok(removed)
}

fn read_owner(file: &Path) -> Option<Owner> {
    let meta = std::fs::symlink_metadata(file).ok()?;
    if !meta.is_file() || meta.len() > MAX_OWNER_BYTES {
        return None;
    }
    let mut text = String::new();
    std::fs::File::open(file)
        .ok()?
        .take(MAX_OWNER_BYTES)
        .read_to_string(&mut text)
        .ok()?;
    Owner::parse(text.trim())
}

fn remove_claim(path: &Path, job_dir: &Path) {
    if let Err(error) = remove_tree(path) {
        tracing::warn!(%error, "claim folder not removed; the next start's sweep retries");
    }
    // Only succeeds when empty: the job's logs, or another claim's folder, keep it.
    let _ = std::fs::remove_dir(job_dir);
}

/// Removes a folder tree, a missing one included. A guest in the Docker sandbox can leave a
/// folder it took its own permissions from; such folders are opened up and the removal tried
/// once more.
fn remove_tree(path: &Path) -> Result<(), WorkDirError> {
    let context = || format!("removing {}", path.display());
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            open_up(path);
            std::fs::remove_dir_all(path).map_err(WorkDirError::io(context()))
        }
        Err(e) => Err(WorkDirError::io(context())(e)),
    }
}

/// Gives the owner full access to every folder under `dir`, never following links.
fn open_up(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            open_up(&entry.path());
        }
    }
}

/// `create_dir_all`, tried again when a parent vanished midway (another claim's end removed
/// the job folder while it was empty).
fn make_dir(path: &Path) -> Result<(), WorkDirError> {
    let mut tries = 0;
    loop {
        match std::fs::create_dir_all(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && tries + 1 < CREATE_TRIES => {
                tries += 1;
            }
            Err(e) => return Err(WorkDirError::io(format!("creating {}", path.display()))(e)),
        }
    }
}

fn check_name(kind: &'static str, name: &str) -> Result<(), WorkDirError> {
    let safe = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if safe {
        Ok(())
    } else {
        Err(WorkDirError::InvalidName {
            kind,
            name: name.to_owned(),
        })
    }
}

async fn blocking(
    work: impl FnOnce() -> Result<(), WorkDirError> + Send + 'static,
) -> Result<(), WorkDirError> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(work))
        .await
        .map_err(|e| WorkDirError::io("a work-folder task".into())(std::io::Error::other(e)))?
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The owner line of a process on this host that has exited (a real child, waited for).
    fn dead_owner() -> String {
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = child.id();
        child.wait().expect("wait");
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
        format!("{}/{pid}/1", host.trim())
    }

    #[tokio::test]
    async fn a_claim_leaves_nothing_and_keeps_the_jobs_logs() {
        let work = tempfile::tempdir().expect("tempdir");
        let me = Owner::current().expect("linux");
        let claim = ClaimDir::create(work.path(), "job-1", "c1", Some(&me))
            .await
            .expect("claim");
        let marker = std::fs::read_to_string(work.path().join("job-1/c1/owner")).expect("owner");
        assert_eq!(Owner::parse(&marker), Some(me.clone()));
        let attempt = claim.attempt(1).await.expect("attempt");
        std::fs::write(attempt.output.join("submission.csv"), "id\n").expect("write");
        assert!(work.path().join("job-1/c1/attempt-1/output").is_dir());
        attempt.remove().await;
        assert!(!work.path().join("job-1/c1/attempt-1").exists());
        std::fs::write(work.path().join("job-1/logs.json"), "{}").expect("logs");
        claim.remove().await;
        assert!(!work.path().join("job-1/c1").exists());
        assert!(work.path().join("job-1/logs.json").is_file(), "logs stay");

        // Without logs the job's folder goes too; a dropped claim cleans up as well.
        let dropped = ClaimDir::create(work.path(), "job-2", "c2", Some(&me)).await;
        drop(dropped.expect("claim"));
        assert!(!work.path().join("job-2").exists());

        for (job, claim) in [("../x", "c"), ("j", "a/b"), ("", "c"), ("j", "")] {
            let refused = ClaimDir::create(work.path(), job, claim, None).await;
            assert!(
                matches!(refused, Err(WorkDirError::InvalidName { .. })),
                "{job:?}/{claim:?}"
            );
        }
    }

    #[test]
    fn the_sweep_removes_only_folders_of_dead_owners_on_this_host() {
        let work = tempfile::tempdir().expect("tempdir");
        let me = Owner::current().expect("linux");
        let claim = |job: &str, claim: &str, owner: Option<&str>| {
            let dir = work.path().join(job).join(claim);
            std::fs::create_dir_all(dir.join("attempt-1/output")).expect("mkdir");
            if let Some(owner) = owner {
                std::fs::write(dir.join(OWNER_FILE), owner).expect("owner");
            }
            dir
        };
        let dead = claim("j1", "dead", Some(&dead_owner()));
        let live = claim("j1", "live", Some(&me.to_string()));
        let elsewhere = claim("j2", "elsewhere", Some("another-host/1/1"));
        let unmarked = claim("j3", "unmarked", None);
        let garbled = claim("j3", "garbled", Some("not an owner"));
        let lone = claim("j4", "dead", Some(&dead_owner()));
        std::fs::write(work.path().join("j4/logs.json"), "{}").expect("logs");
        let lonely = claim("j5", "dead", Some(&dead_owner()));

        let mut removed = sweep(work.path(), &me).expect("sweep");
        removed.sort();
        let mut want = vec![dead.clone(), lone.clone(), lonely.clone()];
        want.sort();
        assert_eq!(removed, want);
        for kept in [&live, &elsewhere, &unmarked, &garbled] {
            assert!(kept.is_dir(), "{} was swept", kept.display());
        }
        assert!(work.path().join("j4/logs.json").is_file(), "logs stay");
        assert!(
            !work.path().join("j5").exists(),
            "an emptied job folder goes"
        );
        assert_eq!(
            sweep(work.path(), &me).expect("again"),
            Vec::<PathBuf>::new()
        );
        assert_eq!(
            sweep(&work.path().join("missing"), &me).expect("no work folder yet"),
            Vec::<PathBuf>::new()
        );
    }
}
