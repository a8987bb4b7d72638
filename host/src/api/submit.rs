//! Accepting a job: the checks a submission passes before anything is enqueued, shared by
//! `POST /run` and `Host::submit`.
//!
//! Everything a client can get wrong is caught here, so that a job in the queue can only fail
//! for reasons outside the client's request: the source must be a Kaggle competition URL (or
//! an allowed local folder), the policy a preset the operator offers (`KS_API_POLICIES`, so a
//! client cannot pick the largest preset on the disk), and any caps the request sets must only
//! lower the preset's. Checking a preset reads its file, so presets found valid are remembered
//! for a few seconds to keep `/run` cheap.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ks_policies::{
    DEFAULT_POLICY_NAME, LimitOverrides, Policy, PolicyDir, PolicyError, is_valid_preset_name,
};

use crate::pipeline::fetch::{CompetitionRef, LocalPolicy, SourceError};
use crate::queue::{DynQueue, JobRecord, NewJob, QueueError};

/// How long a preset found valid is trusted without reading its file again.
const POLICY_TTL: Duration = Duration::from_secs(5);

/// The presets a request may pick unless the operator says otherwise (`KS_API_POLICIES`).
pub const DEFAULT_API_POLICIES: [&str; 2] = [DEFAULT_POLICY_NAME, "small"];

/// Why a submission was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The competition source is not a Kaggle competition URL or an allowed local folder.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The policy is not a preset (or its file does not load).
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The policy is a valid name but not one this server offers.
    #[error(
        "the policy `{name}` is not offered by this server; pick one of: {} (the server's \
         KS_API_POLICIES)",
        allowed.join(", ")
    )]
    NotAllowed {
        /// The name asked for.
        name: String,
        /// The names that may be asked for.
        allowed: Vec<String>,
    },
    /// A cap the request set raises the preset's, or is out of bounds, or does not parse.
    #[error(transparent)]
    Overrides(PolicyError),
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
    allowed: Vec<String>,
    known_policies: Mutex<HashMap<String, (Instant, Policy)>>,
}

impl Submitter {
    /// A submitter putting jobs on `queue`, with presets from `policies` and local folders
    /// allowed by `local` (the REST API uses `UnderRoot(KS_COMPETITIONS_DIR)` or `Deny`).
    /// Requests may pick the presets of [`DEFAULT_API_POLICIES`].
    pub fn new(queue: DynQueue, policies: PolicyDir, local: LocalPolicy) -> Self {
        Self {
            queue,
            policies,
            local,
            allowed: DEFAULT_API_POLICIES.map(str::to_owned).to_vec(),
            known_policies: Mutex::new(HashMap::new()),
        }
    }

    /// Lets requests pick only the presets `names` (blank names are dropped; none left means
    /// `default` alone). A request that names no policy gets the first of them.
    #[must_use]
    pub fn allow_policies<S: AsRef<str>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        let mut allowed: Vec<String> = Vec::new();
        for name in names {
            let name = name.as_ref().trim();
            if !name.is_empty() && !allowed.iter().any(|a| a == name) {
                allowed.push(name.to_owned());
            }
        }
        if allowed.is_empty() {
            allowed.push(DEFAULT_POLICY_NAME.to_owned());
        }
        self.allowed = allowed;
        self
    }

    /// The presets requests may pick; the first is the one a request gets without asking.
    pub fn allowed_policies(&self) -> &[String] {
        &self.allowed
    }

    /// The queue jobs go to.
    pub fn queue(&self) -> &DynQueue {
        &self.queue
    }

    /// Checks `source` and `policy` (default: the first allowed preset) and enqueues the job.
    ///
    /// # Errors
    /// See [`Submitter::submit_with`].
    pub async fn submit(
        &self,
        source: &str,
        policy: Option<&str>,
    ) -> Result<JobRecord, SubmitError> {
        self.submit_with(source, policy, LimitOverrides::default())
            .await
    }

    /// [`Submitter::submit`] with caps lowered for this job by `overrides`, which travel with
    /// the job to the worker.
    ///
    /// # Errors
    /// [`SubmitError::Source`], [`SubmitError::Policy`], [`SubmitError::NotAllowed`] or
    /// [`SubmitError::Overrides`] for a bad request (nothing is enqueued);
    /// [`SubmitError::Queue`] when the queue is full or fails.
    pub async fn submit_with(
        &self,
        source: &str,
        policy: Option<&str>,
        overrides: LimitOverrides,
    ) -> Result<JobRecord, SubmitError> {
        let source = self.check_source(source).await?;
        let first = self
            .allowed
            .first()
            .map_or(DEFAULT_POLICY_NAME, String::as_str);
        let name = policy.unwrap_or(first);
        let preset = self.check_policy(name).await?;
        preset
            .lowered_by(&overrides)
            .map_err(SubmitError::Overrides)?;
        Ok(self
            .queue
            .enqueue(NewJob {
                source,
                policy: name.to_owned(),
                overrides,
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

    /// The preset `name`, if requests may pick it and it loads.
    async fn check_policy(&self, name: &str) -> Result<Policy, SubmitError> {
        if !is_valid_preset_name(name) {
            return Err(PolicyError::InvalidName {
                name: name.to_owned(),
            }
            .into());
        }
        // Before the file system is asked, so the answer never tells which presets exist.
        if !self.allowed.iter().any(|a| a == name) {
            return Err(SubmitError::NotAllowed {
                name: name.to_owned(),
                allowed: self.allowed.clone(),
            });
        }
        let now = Instant::now();
        {
            let known = self
                .known_policies
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((at, policy)) = known.get(name)
                && now.duration_since(*at) < POLICY_TTL
            {
                return Ok(policy.clone());
            }
        }
        let (dir, owned) = (self.policies.clone(), name.to_owned());
        let policy = tokio::task::spawn_blocking(move || dir.resolve_preset(&owned))
            .await
            .map_err(|e| SubmitError::Internal(e.to_string()))??;
        // Only allowed names that resolved are remembered, so the map is bounded by the list.
        self.known_policies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_owned(), (now, policy.clone()));
        Ok(policy)
    }
}
