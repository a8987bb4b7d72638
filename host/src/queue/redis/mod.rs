//! The Redis queue: durable (with AOF on) and shared by worker processes on many machines.
//!
//! Layout, every key under the configured prefix (default `ks:`):
//! - `waiting`: a List of the ids ready to run, oldest first;
//! - `job:{id}`: a Hash per job: `record` (the [`JobRecord`] as JSON) plus `status`, `worker`
//!   and `cancel` for fast checks;
//! - `leases`: a sorted set of the jobs in flight, scored by their lease deadline (ms, by the
//!   Redis server's clock); the holder is the job hash's `worker`;
//! - `delayed`: a sorted set of jobs waiting out a retry delay, scored by when they may run;
//! - `dead`: a List of the jobs that ran out of infrastructure retries, newest last, trimmed
//!   to `max_dead` by each sweep;
//! - `counts`: a Hash counting `completed` and `failed` jobs, for `/metrics`;
//! - `finished`: a sorted set of the finished jobs, scored by when they finished (ms, server
//!   clock), from which the sweep expires them;
//! - `swept`: a Set of ids whose records a sweep removed and whose files are not yet confirmed
//!   deleted;
//! - `created`: a sorted set of every recorded job, scored by its acceptance number (from the
//!   `accepted` counter), which listings page through newest first.
//!
//! Every state change is one Lua script (in `scripts/`, sent by EVALSHA and reloaded
//! automatically after a Redis restart), so it is atomic. A new record is stored as the host
//! wrote it (only its timestamps set by the server); later changes update the record JSON in
//! the scripts with cjson, which keeps numbers to 14 significant digits (a validation score of
//! more digits is rounded). A [`ConnectionManager`] reconnects after a connection drops; while
//! Redis is unreachable every call fails with [`QueueError::Unavailable`].

mod layout;

use std::time::Duration;

use ::redis::Client;
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use async_trait::async_trait;

use self::layout::{BATCH, Keys, Scripts, lease_state, parse_record, to_json, unavailable};
use super::config::{REQUEUED, millis};
use super::{
    CancelOutcome, Completion, Failure, JobId, JobPage, JobQueue, JobRecord, JobResult, LIST_SCAN,
    LeaseState, ListCursor, ListState, MAX_PAGE, NewJob, Progress, QueueConfig, QueueError,
    QueueStats, StopOutcome, WorkerId,
};

/// A queue in Redis. Cheap to clone: clones share one multiplexed, self-healing connection.
#[derive(Clone)]
pub struct RedisQueue {
    conn: ConnectionManager,
    keys: std::sync::Arc<Keys>,
    scripts: std::sync::Arc<Scripts>,
    max_infra_retries: u32,
    max_queued: u64,
    max_dead: u64,
}

impl std::fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue")
            .field("prefix", &self.keys.waiting.trim_end_matches("waiting"))
            .field("max_infra_retries", &self.max_infra_retries)
            .field("max_queued", &self.max_queued)
            .field("max_dead", &self.max_dead)
            .finish_non_exhaustive()
    }
}

impl RedisQueue {
    /// Connects to the Redis at `url` (`redis://[:password@]host:port[/db]`). Fails with
    /// [`QueueError::Unavailable`] if the URL is invalid or Redis cannot be reached within
    /// `config.timeout` (after a few quick retries).
    pub async fn connect(url: &str, config: QueueConfig) -> Result<Self, QueueError> {
        let client = Client::open(url)
            .map_err(|e| QueueError::Unavailable(format!("invalid Redis URL: {e}")))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_with_config(client, manager_config)
            .await
            .map_err(unavailable)?;
        Ok(Self {
            conn,
            keys: std::sync::Arc::new(Keys::new(&config.prefix)),
            scripts: std::sync::Arc::new(Scripts::new()),
            max_infra_retries: config.max_infra_retries,
            max_queued: config.max_queued,
            max_dead: config.max_dead,
        })
    }

    /// Answers once Redis answers a PING (a readiness check).
    pub async fn ping(&self) -> Result<(), QueueError> {
        ::redis::cmd("PING")
            .query_async::<String>(&mut self.conn.clone())
            .await
            .map(drop)
            .map_err(unavailable)
    }
}

#[async_trait]
impl JobQueue for RedisQueue {
    async fn enqueue(&self, job: NewJob) -> Result<JobRecord, QueueError> {
        // Redis stamps the times with its own clock.
        let record = JobRecord::pending(job, 0);
        let stored: Option<String> = self
            .scripts
            .enqueue
            .key(self.keys.job(&record.id))
            .key(&self.keys.waiting)
            .key(&self.keys.delayed)
            .key(&self.keys.created)
            .key(&self.keys.accepted)
            .arg(to_json(&record)?)
            .arg(self.max_queued)
            .arg(&record.id.0)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        let stored = stored.ok_or(QueueError::Full {
            limit: self.max_queued,
        })?;
        parse_record(&record.id.0, &stored)
    }

    async fn get(&self, id: &JobId) -> Result<Option<JobRecord>, QueueError> {
        let stored: Option<String> = ::redis::cmd("HGET")
            .arg(self.keys.job(id))
            .arg("record")
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        stored.map(|json| parse_record(&id.0, &json)).transpose()
    }

    async fn claim(
        &self,
        worker: &WorkerId,
        lease: Duration,
    ) -> Result<Option<JobRecord>, QueueError> {
        let claimed: Option<String> = self
            .scripts
            .claim
            .key(&self.keys.waiting)
            .key(&self.keys.leases)
            .key(&self.keys.delayed)
            .arg(&self.keys.job_prefix)
            .arg(&worker.0)
            .arg(millis(lease))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        claimed
            .map(|json| parse_record("(claimed)", &json))
            .transpose()
    }

    async fn heartbeat(
        &self,
        worker: &WorkerId,
        id: &JobId,
        lease: Duration,
    ) -> Result<LeaseState, QueueError> {
        let answer: String = self
            .scripts
            .heartbeat
            .key(self.keys.job(id))
            .key(&self.keys.leases)
            .arg(&worker.0)
            .arg(&id.0)
            .arg(millis(lease))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(lease_state(&answer))
    }

    async fn progress(
        &self,
        worker: &WorkerId,
        id: &JobId,
        progress: Progress,
    ) -> Result<LeaseState, QueueError> {
        let answer: String = self
            .scripts
            .progress
            .key(self.keys.job(id))
            .arg(&worker.0)
            .arg(to_json(&progress)?)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(lease_state(&answer))
    }

    async fn complete(
        &self,
        worker: &WorkerId,
        id: &JobId,
        result: JobResult,
    ) -> Result<Completion, QueueError> {
        let done: i64 = self
            .scripts
            .complete
            .key(self.keys.job(id))
            .key(&self.keys.leases)
            .key(&self.keys.counts)
            .arg(&worker.0)
            .arg(&id.0)
            .arg(to_json(&result)?)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(match done {
            1 => Completion::Completed,
            2 => Completion::Cancelled,
            _ => Completion::NotHeld,
        })
    }

    async fn fail(
        &self,
        worker: &WorkerId,
        id: &JobId,
        failure: Failure,
    ) -> Result<bool, QueueError> {
        let (kind, message, delay_ms) = match failure {
            Failure::Retry { message, delay_ms } => ("retry", message, delay_ms),
            Failure::Abort { message } => ("abort", message, 0),
        };
        let done: i64 = self
            .scripts
            .fail
            .key(self.keys.job(id))
            .key(&self.keys.leases)
            .key(&self.keys.waiting)
            .key(&self.keys.delayed)
            .key(&self.keys.dead)
            .key(&self.keys.counts)
            .arg(&worker.0)
            .arg(&id.0)
            .arg(kind)
            .arg(message)
            .arg(delay_ms)
            .arg(self.max_infra_retries)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(done == 1)
    }

    async fn release(&self, worker: &WorkerId, id: &JobId) -> Result<bool, QueueError> {
        let done: i64 = self
            .scripts
            .release
            .key(self.keys.job(id))
            .key(&self.keys.leases)
            .key(&self.keys.waiting)
            .key(&self.keys.counts)
            .arg(&worker.0)
            .arg(&id.0)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(done == 1)
    }

    async fn cancel(&self, id: &JobId) -> Result<CancelOutcome, QueueError> {
        let answer: String = self
            .scripts
            .cancel
            .key(self.keys.job(id))
            .key(&self.keys.waiting)
            .key(&self.keys.delayed)
            .key(&self.keys.counts)
            .arg(&id.0)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(match answer.as_str() {
            "cancelled" => CancelOutcome::Cancelled,
            "requested" => CancelOutcome::Requested,
            "finished" => CancelOutcome::AlreadyFinished,
            _ => CancelOutcome::NotFound,
        })
    }

    async fn stop(&self, id: &JobId) -> Result<StopOutcome, QueueError> {
        let answer: String = self
            .scripts
            .stop
            .key(self.keys.job(id))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(match answer.as_str() {
            "requested" => StopOutcome::Requested,
            "finished" => StopOutcome::AlreadyFinished,
            _ => StopOutcome::NotFound,
        })
    }

    async fn reap_expired(&self) -> Result<u64, QueueError> {
        let mut total = 0;
        loop {
            let reaped: u64 = self
                .scripts
                .reap
                .key(&self.keys.waiting)
                .key(&self.keys.leases)
                .key(&self.keys.delayed)
                .key(&self.keys.dead)
                .key(&self.keys.counts)
                .arg(&self.keys.job_prefix)
                .arg(self.max_infra_retries)
                .arg(BATCH)
                .invoke_async(&mut self.conn.clone())
                .await
                .map_err(unavailable)?;
            total += reaped;
            if reaped < BATCH {
                return Ok(total);
            }
        }
    }

    async fn stats(&self) -> Result<QueueStats, QueueError> {
        // Sweeps count finished jobs down; a count below zero (a foreign writer, a flush of some
        // keys) reads as none rather than failing /metrics.
        let (waiting, delayed, processing, (completed, failed)): (
            u64,
            u64,
            u64,
            (Option<i64>, Option<i64>),
        ) = ::redis::pipe()
            .atomic()
            .cmd("LLEN")
            .arg(&self.keys.waiting)
            .cmd("ZCARD")
            .arg(&self.keys.delayed)
            .cmd("ZCARD")
            .arg(&self.keys.leases)
            .cmd("HMGET")
            .arg(&self.keys.counts)
            .arg("completed")
            .arg("failed")
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(QueueStats {
            pending: waiting + delayed,
            processing,
            completed: completed.map_or(0, |n| n.max(0).unsigned_abs()),
            failed: failed.map_or(0, |n| n.max(0).unsigned_abs()),
        })
    }

    async fn sweep_finished(&self, ttl: Duration, limit: u64) -> Result<Vec<JobId>, QueueError> {
        let ids: Vec<String> = self
            .scripts
            .sweep
            .key(&self.keys.finished)
            .key(&self.keys.swept)
            .key(&self.keys.dead)
            .key(&self.keys.counts)
            .key(&self.keys.created)
            .arg(&self.keys.job_prefix)
            .arg(millis(ttl))
            .arg(limit)
            .arg(self.max_dead)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(ids.into_iter().map(JobId).collect())
    }

    async fn confirm_swept(&self, ids: &[JobId]) -> Result<(), QueueError> {
        if ids.is_empty() {
            return Ok(());
        }
        ::redis::cmd("SREM")
            .arg(&self.keys.swept)
            .arg(ids.iter().map(|id| id.0.as_str()).collect::<Vec<_>>())
            .query_async::<u64>(&mut self.conn.clone())
            .await
            .map(drop)
            .map_err(unavailable)
    }

    async fn dead_letters(&self) -> Result<Vec<JobRecord>, QueueError> {
        let mut conn = self.conn.clone();
        let ids: Vec<String> = ::redis::cmd("LRANGE")
            .arg(&self.keys.dead)
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = ::redis::pipe();
        for id in ids.iter().rev() {
            pipe.cmd("HGET")
                .arg(self.keys.job(&JobId(id.clone())))
                .arg("record");
        }
        let stored: Vec<Option<String>> = pipe.query_async(&mut conn).await.map_err(unavailable)?;
        // A record swept between the two calls is simply no longer dead.
        ids.iter()
            .rev()
            .zip(stored)
            .filter_map(|(id, json)| json.map(|json| parse_record(id, &json)))
            .collect()
    }

    async fn list(
        &self,
        state: Option<ListState>,
        limit: usize,
        cursor: Option<ListCursor>,
    ) -> Result<JobPage, QueueError> {
        let wanted = match state {
            None => "",
            Some(ListState::Pending) => "pending",
            Some(ListState::Processing) => "processing",
            Some(ListState::Completed) => "completed",
            Some(ListState::Failed) => "failed",
            Some(ListState::Dead) => "dead",
        };
        let answer: Vec<String> = self
            .scripts
            .list
            .key(&self.keys.created)
            .key(&self.keys.dead)
            .arg(&self.keys.job_prefix)
            .arg(wanted)
            .arg(limit.clamp(1, MAX_PAGE))
            .arg(cursor.map(|c| c.0.to_string()).unwrap_or_default())
            .arg(LIST_SCAN)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        let mut answer = answer.into_iter();
        let next = answer.next().unwrap_or_default();
        let next = match next.as_str() {
            "" => None,
            n => Some(ListCursor(n.parse().map_err(|_| QueueError::Corrupt {
                id: String::new(),
                reason: format!("the listing's cursor {n:?} is not a number"),
            })?)),
        };
        let jobs = answer
            .map(|json| parse_record("(listed)", &json))
            .collect::<Result<_, _>>()?;
        Ok(JobPage { jobs, next })
    }

    async fn requeue_dead(&self, id: &JobId) -> Result<Option<JobRecord>, QueueError> {
        let stored: Option<String> = self
            .scripts
            .requeue
            .key(self.keys.job(id))
            .key(&self.keys.dead)
            .key(&self.keys.waiting)
            .key(&self.keys.finished)
            .key(&self.keys.counts)
            .arg(&id.0)
            .arg(REQUEUED)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        stored.map(|json| parse_record(&id.0, &json)).transpose()
    }
}
