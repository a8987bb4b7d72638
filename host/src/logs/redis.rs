//! Job logs in Redis, next to the job record: `<prefix>job:<id>:events` and
//! `<prefix>job:<id>:attempts`, Lists of JSON entries, and `<prefix>job:<id>:seq`, the
//! counter that numbers the events (one script, `scripts/event.lua`, numbers and appends
//! atomically). Used whenever the queue is in Redis, so
//! an API process and workers on different machines, with nothing shared but Redis and the
//! object store, serve the same logs.
//!
//! Bounded: each entry is cut ([`MAX_EVENT_CHARS`], [`MAX_CODE_CHARS`], the output tails),
//! and each List keeps its newest entries only ([`MAX_EVENTS`], [`MAX_ATTEMPTS`]), trimmed in
//! the same transaction as the push. Expiring with the job: the sweeper deletes a log when it
//! deletes the record, and every write also sets the keys to expire a while after the job's
//! time to live, so a log whose record went some other way (a flushed key, a foreign writer)
//! does not stay for good. An append is one atomic push, so writers never lose each other's
//! entries, which a read-modify-write of one value would.

use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, RedisError, Script};
use async_trait::async_trait;

use super::{AttemptLog, JobLog, JobLogs, LogEvent, LogsError, MAX_EVENTS, OUTPUT_TAIL_CHARS};
use crate::queue::JobId;
use crate::text::{head, tail};

/// Characters of an event's message kept.
pub const MAX_EVENT_CHARS: usize = 2_000;
/// Characters of an attempt's code kept.
pub const MAX_CODE_CHARS: usize = 64_000;
/// Attempts kept per job (the oldest go first).
pub const MAX_ATTEMPTS: usize = 50;

/// Logs in Redis under a key prefix (the queue's).
#[derive(Clone)]
pub struct RedisLogs {
    conn: ConnectionManager,
    prefix: String,
    keep: Duration,
    event_script: std::sync::Arc<Script>,
}

impl std::fmt::Debug for RedisLogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLogs")
            .field("prefix", &self.prefix)
            .field("keep", &self.keep)
            .finish_non_exhaustive()
    }
}

fn redis_error(context: &str) -> impl FnOnce(RedisError) -> LogsError + '_ {
    move |source| LogsError::Redis {
        context: context.to_owned(),
        source,
    }
}

impl RedisLogs {
    /// Connects to the Redis at `url`; keys start with `prefix` (the queue's, e.g. `ks:`).
    /// Every write makes the job's log expire `keep` after it at the latest (give the jobs'
    /// time to live and some: the sweeper deletes logs with their records before that).
    ///
    /// # Errors
    /// [`LogsError::Redis`] when the URL is invalid or Redis does not answer within `timeout`.
    pub async fn connect(
        url: &str,
        prefix: &str,
        keep: Duration,
        timeout: Duration,
    ) -> Result<Self, LogsError> {
        let client = Client::open(url).map_err(redis_error("opening the Redis URL"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(redis_error("connecting to Redis"))?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
            keep,
            event_script: std::sync::Arc::new(Script::new(include_str!("scripts/event.lua"))),
        })
    }

    fn keys(&self, id: &JobId) -> Result<(String, String), LogsError> {
        self.all_keys(id)
            .map(|(events, attempts, _)| (events, attempts))
    }

    /// The events List, the attempts List and the events' counter.
    fn all_keys(&self, id: &JobId) -> Result<(String, String, String), LogsError> {
        // Ids come from the queue, but a foreign writer could store anything: keep to UUIDs.
        let id = JobId::parse(&id.0).ok_or_else(|| LogsError::Corrupt {
            path: self.prefix.clone().into(),
            reason: format!("{:?} is not a job id", id.0),
        })?;
        let job = format!("{}job:{}", self.prefix, id.0);
        Ok((
            format!("{job}:events"),
            format!("{job}:attempts"),
            format!("{job}:seq"),
        ))
    }

    /// Pushes `entries` to `key`, keeps its newest `max` and renews its expiry, atomically.
    async fn append(&self, key: &str, entries: Vec<String>, max: usize) -> Result<(), LogsError> {
        if entries.is_empty() {
            return Ok(());
        }
        let keep_ms = u64::try_from(self.keep.as_millis()).unwrap_or(u64::MAX);
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        ::redis::pipe()
            .atomic()
            .cmd("RPUSH")
            .arg(key)
            .arg(entries)
            .ignore()
            .cmd("LTRIM")
            .arg(key)
            .arg(-max)
            .arg(-1)
            .ignore()
            .cmd("PEXPIRE")
            .arg(key)
            .arg(keep_ms)
            .ignore()
            .query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(redis_error("appending to a job log"))
    }
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, LogsError> {
    serde_json::to_string(value).map_err(|e| LogsError::Corrupt {
        path: "(a log entry)".into(),
        reason: e.to_string(),
    })
}

fn parse<T: serde::de::DeserializeOwned>(
    key: &str,
    entries: &[String],
) -> Result<Vec<T>, LogsError> {
    entries
        .iter()
        .map(|entry| {
            serde_json::from_str(entry).map_err(|e| LogsError::Corrupt {
                path: key.into(),
                reason: e.to_string(),
            })
        })
        .collect()
}

/// An attempt cut to what Redis keeps of it. The tails come cut already, with a line saying
/// so: the slack keeps that line from being cut again.
fn bounded(mut attempt: AttemptLog) -> AttemptLog {
    const SLACK: usize = 100;
    attempt.code = head(&attempt.code, MAX_CODE_CHARS);
    attempt.stdout_tail = tail(&attempt.stdout_tail, OUTPUT_TAIL_CHARS + SLACK);
    attempt.stderr_tail = tail(&attempt.stderr_tail, OUTPUT_TAIL_CHARS + SLACK);
    attempt.error = attempt.error.map(|e| head(&e, MAX_EVENT_CHARS));
    attempt.worker = head(&attempt.worker, 200);
    attempt.generator = head(&attempt.generator, 200);
    attempt
}

#[async_trait]
impl JobLogs for RedisLogs {
    async fn event(&self, id: &JobId, mut event: LogEvent) -> Result<u64, LogsError> {
        let (events, _, counter) = self.all_keys(id)?;
        event.seq = 0;
        event.message = head(&event.message, MAX_EVENT_CHARS);
        event.worker = head(&event.worker, 200);
        let keep_ms = u64::try_from(self.keep.as_millis()).unwrap_or(u64::MAX);
        self.event_script
            .key(events)
            .key(counter)
            .arg(json(&event)?)
            .arg(MAX_EVENTS)
            .arg(keep_ms)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(redis_error("appending an event to a job log"))
    }

    async fn events_after(&self, id: &JobId, after: u64) -> Result<Vec<LogEvent>, LogsError> {
        let (events_key, _) = self.keys(id)?;
        let events: Vec<String> = ::redis::cmd("LRANGE")
            .arg(&events_key)
            .arg(0)
            .arg(-1)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(redis_error("reading a job's events"))?;
        let events: Vec<LogEvent> = parse(&events_key, &events)?;
        Ok(events.into_iter().filter(|e| e.seq > after).collect())
    }

    async fn attempts(&self, id: &JobId, attempts: Vec<AttemptLog>) -> Result<(), LogsError> {
        let (_, key) = self.keys(id)?;
        let entries = attempts
            .into_iter()
            .map(|a| json(&bounded(a)))
            .collect::<Result<Vec<_>, _>>()?;
        self.append(&key, entries, MAX_ATTEMPTS).await
    }

    async fn read(&self, id: &JobId) -> Result<Option<JobLog>, LogsError> {
        let (events_key, attempts_key) = self.keys(id)?;
        let (events, attempts): (Vec<String>, Vec<String>) = ::redis::pipe()
            .atomic()
            .cmd("LRANGE")
            .arg(&events_key)
            .arg(0)
            .arg(-1)
            .cmd("LRANGE")
            .arg(&attempts_key)
            .arg(0)
            .arg(-1)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(redis_error("reading a job log"))?;
        if events.is_empty() && attempts.is_empty() {
            return Ok(None);
        }
        Ok(Some(JobLog {
            job_id: id.0.clone(),
            attempts: parse(&attempts_key, &attempts)?,
            events: parse(&events_key, &events)?,
        }))
    }

    async fn delete(&self, id: &JobId) -> Result<(), LogsError> {
        let (events, attempts, counter) = self.all_keys(id)?;
        ::redis::cmd("DEL")
            .arg(events)
            .arg(attempts)
            .arg(counter)
            .query_async::<u64>(&mut self.conn.clone())
            .await
            .map(drop)
            .map_err(redis_error("deleting a job log"))
    }
}
