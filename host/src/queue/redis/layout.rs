//! The Redis queue's layout: its key names, its Lua scripts (one per atomic operation, each
//! prefixed with the shared helpers of `scripts/common.lua`) and the translation of script
//! answers and errors into the queue's types. Kept apart from the operations in `mod.rs`.

use ::redis::{RedisError, Script};

use crate::queue::{JobId, JobRecord, LeaseState, QueueError};

/// How many expired leases or due retries one script call handles at most.
pub(super) const BATCH: u64 = 500;

/// A script: the shared helpers followed by the operation's own file.
macro_rules! script {
    ($file:literal) => {
        Script::new(concat!(
            include_str!("scripts/common.lua"),
            include_str!($file)
        ))
    };
}

/// The scripts, one per atomic operation.
#[derive(Debug)]
pub(super) struct Scripts {
    pub(super) enqueue: Script,
    pub(super) claim: Script,
    pub(super) heartbeat: Script,
    pub(super) progress: Script,
    pub(super) complete: Script,
    pub(super) fail: Script,
    pub(super) release: Script,
    pub(super) cancel: Script,
    pub(super) stop: Script,
    pub(super) reap: Script,
    pub(super) sweep: Script,
    pub(super) requeue: Script,
    pub(super) list: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Self {
            enqueue: script!("scripts/enqueue.lua"),
            claim: script!("scripts/claim.lua"),
            heartbeat: script!("scripts/heartbeat.lua"),
            progress: script!("scripts/progress.lua"),
            complete: script!("scripts/complete.lua"),
            fail: script!("scripts/fail.lua"),
            release: script!("scripts/release.lua"),
            cancel: script!("scripts/cancel.lua"),
            stop: script!("scripts/stop.lua"),
            reap: script!("scripts/reap.lua"),
            sweep: script!("scripts/sweep.lua"),
            requeue: script!("scripts/requeue.lua"),
            list: script!("scripts/list.lua"),
        }
    }
}

/// The queue's keys.
#[derive(Debug)]
pub(super) struct Keys {
    pub(super) waiting: String,
    pub(super) leases: String,
    pub(super) delayed: String,
    pub(super) dead: String,
    pub(super) counts: String,
    /// Finished jobs by finish time; the scripts name it after `counts` (`finished_key`).
    pub(super) finished: String,
    /// Ids whose records were swept and whose files are not yet confirmed deleted.
    pub(super) swept: String,
    /// Every recorded job scored by its acceptance number, for listings.
    pub(super) created: String,
    /// The count of jobs accepted, which numbers them.
    pub(super) accepted: String,
    /// The prefix of the job hashes' keys.
    pub(super) job_prefix: String,
}

impl Keys {
    pub(super) fn new(prefix: &str) -> Self {
        Self {
            waiting: format!("{prefix}waiting"),
            leases: format!("{prefix}leases"),
            delayed: format!("{prefix}delayed"),
            dead: format!("{prefix}dead"),
            counts: format!("{prefix}counts"),
            finished: format!("{prefix}finished"),
            swept: format!("{prefix}swept"),
            created: format!("{prefix}created"),
            accepted: format!("{prefix}accepted"),
            job_prefix: format!("{prefix}job:"),
        }
    }

    pub(super) fn job(&self, id: &JobId) -> String {
        format!("{}{}", self.job_prefix, id.0)
    }
}

/// A Redis error as a queue error: the store is unavailable (or refused the call).
pub(super) fn unavailable(error: RedisError) -> QueueError {
    QueueError::Unavailable(error.to_string())
}

/// A record read back from Redis.
pub(super) fn parse_record(id: &str, json: &str) -> Result<JobRecord, QueueError> {
    serde_json::from_str(json).map_err(|e| QueueError::Corrupt {
        id: id.to_owned(),
        reason: e.to_string(),
    })
}

/// A value sent to a script as JSON.
pub(super) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, QueueError> {
    serde_json::to_string(value).map_err(|e| QueueError::Corrupt {
        id: String::new(),
        reason: e.to_string(),
    })
}

/// A lease state as a script names it.
pub(super) fn lease_state(answer: &str) -> LeaseState {
    match answer {
        "held" => LeaseState::Held,
        "cancel" => LeaseState::CancelRequested,
        "stop" => LeaseState::StopRequested,
        _ => LeaseState::Lost,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_record_ends_with_the_zero_stamps_enqueue_sets() {
        // enqueue.lua replaces this fixed ending instead of decoding the record.
        let job = crate::queue::NewJob {
            source: "https://www.kaggle.com/competitions/titanic".into(),
            policy: "default".into(),
            overrides: Default::default(),
        };
        let json = to_json(&JobRecord::pending(job, 0)).expect("json");
        assert!(
            json.ends_with(r#","created_at_ms":0,"updated_at_ms":0}"#),
            "{json}"
        );
        assert!(
            include_str!("scripts/enqueue.lua")
                .contains(r#"'"created_at_ms":0,"updated_at_ms":0}'"#)
        );
    }

    #[test]
    fn the_finished_set_is_named_as_the_scripts_derive_it_from_counts() {
        // common.lua's `finished_key` swaps the trailing `counts` of the counts key.
        for prefix in ["ks:", "", "deploy:a:"] {
            let keys = Keys::new(prefix);
            let stem = keys.counts.strip_suffix("counts").expect("counts ends so");
            assert_eq!(keys.finished, format!("{stem}finished"), "{prefix:?}");
        }
    }
}
