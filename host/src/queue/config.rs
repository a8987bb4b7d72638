//! The settings both queue implementations take, so that switching between the embedded
//! in-memory queue and Redis changes one constructor call and nothing else; and the few
//! helpers both share (the clock).

use std::time::Duration;

/// How a queue behaves. `QueueConfig::default()` suits most deployments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// The prefix of every Redis key (default `ks:`), so that several deployments can share a
    /// Redis. The in-memory queue ignores it.
    pub prefix: String,
    /// How many infrastructure retries a job gets (a [`super::Failure::Retry`] or an expired
    /// lease each count as one) before it is `failed` and put on the dead list.
    pub max_infra_retries: u32,
    /// How long one Redis call (and one connection attempt) may take before it fails as
    /// unavailable. The in-memory queue ignores it.
    pub timeout: Duration,
    /// The most jobs that may wait (pending, delayed retries included): an enqueue beyond it is
    /// refused with [`super::QueueError::Full`], so a flood of submissions cannot fill the
    /// store faster than workers empty it.
    pub max_queued: u64,
    /// How many jobs the dead list keeps (the newest; at least 1). Older ones stay `failed`
    /// until they expire but can no longer be requeued.
    pub max_dead: u64,
}

impl QueueConfig {
    /// The default prefix of Redis keys.
    pub const DEFAULT_PREFIX: &'static str = "ks:";
    /// The default cap on infrastructure retries.
    pub const DEFAULT_MAX_INFRA_RETRIES: u32 = 5;
    /// The default time limit of one Redis call.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
    /// The default cap on waiting jobs.
    pub const DEFAULT_MAX_QUEUED: u64 = 10_000;
    /// The default length of the dead list.
    pub const DEFAULT_MAX_DEAD: u64 = 1_000;

    /// The defaults with another key prefix.
    pub fn with_prefix(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            ..Self::default()
        }
    }
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            prefix: Self::DEFAULT_PREFIX.to_owned(),
            max_infra_retries: Self::DEFAULT_MAX_INFRA_RETRIES,
            timeout: Self::DEFAULT_TIMEOUT,
            max_queued: Self::DEFAULT_MAX_QUEUED,
            max_dead: Self::DEFAULT_MAX_DEAD,
        }
    }
}

/// The message of a job put back in line from the dead list.
pub(crate) const REQUEUED: &str = "requeued from the dead list";

/// Milliseconds since the Unix epoch by this host's clock (0 if the clock is before 1970).
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A duration in whole milliseconds, saturating.
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
