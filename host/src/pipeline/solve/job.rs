//! What a caller hands the solver for one job: the competition on disk, the job's identity and
//! controls, and the fence the solver asks right before it stores a submission.
//!
//! The fence exists because a queue's lease can lapse while a job runs (a paused process, a
//! stalled heartbeat): another worker may then hold the job and store its own submission. The
//! caller that knows about leases (the worker) answers whether this claim still owns the job;
//! the solver, which knows nothing of queues, stores only when it does.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use ks_policies::Policy;
use tokio_util::sync::CancellationToken;

use super::SolveEvent;
use crate::pipeline::analyse::CompetitionText;
use crate::pipeline::fetch::{CachePin, FetchedCompetition};

/// A competition whose files are on disk.
#[derive(Debug, Clone)]
pub struct PreparedCompetition {
    /// Its slug.
    pub slug: String,
    /// The folder holding its files (mounted at `/input`).
    pub dir: PathBuf,
    /// What its page says.
    pub text: CompetitionText,
    /// Keeps a cached competition from being evicted while this job has it mounted; `None`
    /// for folders the cache does not manage.
    pub pin: Option<Arc<CachePin>>,
}

impl From<FetchedCompetition> for PreparedCompetition {
    fn from(fetched: FetchedCompetition) -> Self {
        Self {
            slug: fetched.slug,
            dir: fetched.dir,
            text: CompetitionText {
                description: fetched.description,
                evaluation_metric: fetched.evaluation_metric,
            },
            pin: fetched.pin.map(Arc::new),
        }
    }
}

/// What a fence says about the claim asking it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FenceVerdict {
    /// The claim still owns the job (and has a fresh lease for the store).
    Held,
    /// Another claim owns the job now: store nothing.
    Lost,
    /// The job was cancelled: store nothing.
    Cancelled,
}

/// Why a fence could not answer (e.g. the queue is unreachable).
#[derive(Debug, thiserror::Error)]
#[error("cannot tell whether this worker still holds the job, so nothing was stored: {message}")]
pub struct FenceError {
    /// What went wrong.
    pub message: String,
    /// Whether asking again later may answer.
    pub retryable: bool,
}

/// Asked right before the submission is stored whether this claim still owns the job.
#[async_trait]
pub trait StoreFence: Send + Sync {
    /// Whether to store; a `Held` answer should also renew the claim, so that the store has a
    /// whole lease period before anyone else could take the job.
    async fn check(&self) -> Result<FenceVerdict, FenceError>;
}

/// The fence of a job that no queue hands out (the one-shot `solve`): nothing else can take it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unleased;

#[async_trait]
impl StoreFence for Unleased {
    async fn check(&self) -> Result<FenceVerdict, FenceError> {
        Ok(FenceVerdict::Held)
    }
}

/// One job's identity and controls.
pub struct SolveJob<'a> {
    /// The job id: the storage key and the job's work folder's name.
    pub id: String,
    /// This claim of the job, unique per claim: names the claim's own work folder, so that a
    /// worker that lost its lease and the new holder never write in the same place.
    pub claim: String,
    /// The policy it runs under.
    pub policy: &'a Policy,
    /// Cancelling stops the job between and during attempts.
    pub cancel: CancellationToken,
    /// Cancelling ends a search early: no new candidate starts, the ones running stop once
    /// one has scored, and the best so far is submitted. A single shot ignores it.
    pub stop: CancellationToken,
    /// Receives progress.
    pub events: &'a (dyn Fn(SolveEvent) + Send + Sync),
    /// Asked right before the submission is stored.
    pub fence: &'a dyn StoreFence,
}

impl SolveJob<'_> {
    /// A fresh claim id.
    pub fn new_claim() -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }
}

impl std::fmt::Debug for SolveJob<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SolveJob")
            .field("id", &self.id)
            .field("claim", &self.claim)
            .finish_non_exhaustive()
    }
}
