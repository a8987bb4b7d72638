//! The queue conformance suite: one set of tests, each run against both implementations (the
//! in-memory queue and the Redis queue on a real `redis-server` of its own), so that the two
//! keep the same semantics. Bounds (the cap on waiting jobs, expiry, the dead list) are in
//! `queue/bounds.rs`, listings in `queue/listing.rs`. Redis-only properties (durability across a SIGKILL of Redis,
//! errors when it is unreachable, key prefixes) are in `queue/redis_only.rs`.

mod basic;
mod bounds;
mod leases;
mod listing;
mod redis_only;

use std::sync::Arc;
use std::time::Duration;

use kaggle_solver::queue::{
    DynQueue, JobId, JobRecord, MemoryQueue, NewJob, QueueConfig, RedisQueue, WorkerId,
};

use crate::redis_server::RedisServer;

/// The infrastructure-retry cap of every queue under test.
const MAX_INFRA_RETRIES: u32 = 2;
/// The cap on waiting jobs of every queue under test (above the 200 of the concurrency tests).
pub const MAX_QUEUED: u64 = 300;
/// The dead list's length of every queue under test.
pub const MAX_DEAD: u64 = 2;

/// A queue under test, with what it needs kept alive.
#[derive(Debug)]
pub struct Subject {
    /// The queue, as the service sees it.
    pub queue: DynQueue,
    /// The Redis queue's server, kept alive until the test ends.
    _server: Option<RedisServer>,
}

fn config() -> QueueConfig {
    QueueConfig {
        max_infra_retries: MAX_INFRA_RETRIES,
        max_queued: MAX_QUEUED,
        max_dead: MAX_DEAD,
        ..QueueConfig::with_prefix("kst:")
    }
}

impl Subject {
    /// A fresh in-memory queue.
    pub async fn memory() -> Self {
        Self {
            queue: Arc::new(MemoryQueue::new(config())),
            _server: None,
        }
    }

    /// A Redis queue on a fresh `redis-server`.
    pub async fn redis() -> Self {
        let server = RedisServer::start();
        let queue = RedisQueue::connect(&server.url(), config())
            .await
            .expect("the queue connects to the test's redis-server");
        Self {
            queue: Arc::new(queue),
            _server: Some(server),
        }
    }

    /// The ids on the dead list, newest first.
    pub async fn dead(&self) -> anyhow::Result<Vec<JobId>> {
        let dead = self.queue.dead_letters().await?;
        Ok(dead.into_iter().map(|record| record.id).collect())
    }
}

/// A job for tests.
pub fn job(n: usize) -> NewJob {
    NewJob {
        source: format!("https://www.kaggle.com/competitions/test-{n}"),
        policy: "small".into(),
        overrides: Default::default(),
    }
}

/// A worker id for tests.
pub fn worker(name: &str) -> WorkerId {
    WorkerId(format!("test-{name}-{}", JobId::new()))
}

/// The record of a job that must exist.
pub async fn record(subject: &Subject, id: &JobId) -> anyhow::Result<JobRecord> {
    subject
        .queue
        .get(id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("job {id} is gone"))
}

/// A lease long enough never to expire during a test.
pub const LONG: Duration = Duration::from_secs(60);

/// Generates one `#[tokio::test]` per backend for each conformance test.
macro_rules! conformance {
    ($($module:ident :: $name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> anyhow::Result<()> {
                    super::$module::$name(&super::Subject::memory().await).await
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> anyhow::Result<()> {
                    super::$module::$name(&super::Subject::redis().await).await
                }
            )*
        }
    };
}

conformance! {
    basic::enqueue_then_get_pending,
    basic::claim_is_fifo,
    basic::claim_on_empty_is_none,
    basic::complete_by_holder,
    basic::non_holder_is_refused_and_changes_nothing,
    basic::abort_fails_with_message,
    basic::release_puts_back_in_line,
    basic::cancel_pending_is_never_claimed,
    basic::cancel_processing_asks_the_holder,
    basic::stop_flags_the_search_and_a_cancel_still_wins,
    basic::cancel_then_complete_fails_as_cancelled,
    basic::stats_count_by_state,
    leases::lease_expiry_hands_job_on,
    leases::heartbeat_keeps_the_job,
    leases::retry_waits_its_delay_then_buries,
    leases::expired_cancelled_job_is_not_requeued,
    leases::concurrent_enqueues,
    leases::concurrent_claims_each_job_once,
    bounds::enqueue_past_the_cap_is_refused,
    bounds::finished_jobs_expire_after_the_ttl,
    bounds::the_dead_list_keeps_the_newest_and_requeues,
    listing::listing_pages_newest_first_with_every_job_once,
    listing::listing_filters_by_state_and_the_dead_list,
}
