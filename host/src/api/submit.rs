//! Accepting a job: the checks a submission passes before anything is enqueued, shared by
//! `POST /run` and `Host::submit`.
//!
//! Everything a client can get wrong is caught here, so that a job in the queue can only fail
//! for reasons outside the client's request: the source must be a Kaggle competition URL (or
//! an allowed local folder), the policy an existing preset name. Checking a preset reads its
//! file, so names found valid are remembered for a few seconds to keep `/run` cheap.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ks_policies::{DEFAULT_POLICY_NAME, PolicyDir, PolicyError};

use crate::pipeline::fetch::{CompetitionRef, LocalPolicy, SourceError};
use crate::queue::{DynQueue, JobRecord, NewJob, QueueError};

/// How long a preset name found valid is trusted without reading its file again.
const POLICY_TTL: Duration = Duration::from_secs(5);

/// Why a submission was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The competition source is not a Kaggle competition URL or an allowed local folder.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The policy is not a preset (or its file does not load).
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The queue did not take the job.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// A host-side failure (a blocking task panicked).
    #[error("internal error: {0}")]
    Internal(String),
}

/// Checks submissions and enqueues the valid ones.
#[derive(Debug)]
pub struct Submitter {
    queue: DynQueue,
    policies: PolicyDir,
    local: LocalPolicy,
    known_policies: Mutex<HashMap<String, Instant>>,
}

impl Submitter {
    /// A submitter putting jobs on `queue`, with presets from `policies` and local folders
    /// allowed by `local` (the REST API uses `UnderRoot(KS_COMPETITIONS_DIR)` or `Deny`).
    pub fn new(queue: DynQueue, policies: PolicyDir, local: LocalPolicy) -> Self {
        Self {
            queue,
            policies,
            local,
            known_policies: Mutex::new(HashMap::new()),
        }
    }

    /// The queue jobs go to.
    pub fn queue(&self) -> &DynQueue {
        &self.queue
    }

    /// Checks `source` and `policy` (default `default`) and enqueues the job.
    ///
    /// # Errors
    /// [`SubmitError::Source`] or [`SubmitError::Policy`] for a bad request (nothing is
    /// enqueued), [`SubmitError::Queue`] when the queue fails.
    pub async fn submit(
        &self,
        source: &str,
        policy: Option<&str>,
    ) -> Result<JobRecord, SubmitError> {
        let source = self.check_source(source).await?;
        let policy = policy.unwrap_or(DEFAULT_POLICY_NAME);
        self.check_policy(policy).await?;
        Ok(self
            .queue
            .enqueue(NewJob {
                source,
                policy: policy.to_owned(),
            })
            .await?)
    }

    /// The source as it is stored: a Kaggle URL in its canonical form, a local folder as given.
    async fn check_source(&self, source: &str) -> Result<String, SubmitError> {
        match CompetitionRef::parse(source)? {
            CompetitionRef::Kaggle { slug } => {
                Ok(format!("https://www.kaggle.com/competitions/{slug}"))
            }
            CompetitionRef::Local(path) => {
                self.check_local(&path).await?;
                Ok(source.trim().to_owned())
            }
        }
    }

    async fn check_local(&self, path: &Path) -> Result<(), SubmitError> {
        // An absolute path outside the root is refused before the file system is asked, so the
        // answer never tells whether such a path exists.
        let outside = match &self.local {
            LocalPolicy::UnderRoot(root) => {
                path.is_absolute()
                    && !path.starts_with(root)
                    && !std::path::absolute(root).is_ok_and(|root| path.starts_with(root))
            }
            LocalPolicy::AnyPath | LocalPolicy::Deny => false,
        };
        if outside {
            return Err(SourceError::LocalNotAllowed {
                path: path.to_owned(),
                reason: "only folders inside the server's competitions folder \
                         (KS_COMPETITIONS_DIR) may be used"
                    .to_owned(),
            }
            .into());
        }
        let (local, path) = (self.local.clone(), path.to_owned());
        tokio::task::spawn_blocking(move || local.resolve(&path))
            .await
            .map_err(|e| SubmitError::Internal(e.to_string()))??;
        Ok(())
    }

    async fn check_policy(&self, name: &str) -> Result<(), SubmitError> {
        let now = Instant::now();
        {
            let known = self
                .known_policies
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if known
                .get(name)
                .is_some_and(|at| now.duration_since(*at) < POLICY_TTL)
            {
                return Ok(());
            }
        }
        let (dir, owned) = (self.policies.clone(), name.to_owned());
        tokio::task::spawn_blocking(move || dir.resolve_preset(&owned))
            .await
            .map_err(|e| SubmitError::Internal(e.to_string()))??;
        // Only names that resolved are remembered, so the map is bounded by the presets.
        self.known_policies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_owned(), now);
        Ok(())
    }
}
