//! `kaggle-solver dead list|requeue ID`: the operator's view of the dead list, the jobs that ran
//! out of infrastructure retries (a Kaggle outage, a full disk) rather than failing on their own
//! code. Once the cause is fixed, requeueing gives such a job its retries back; nothing else
//! takes a job off the list but expiry.

use std::process::ExitCode;

use super::CliError;
use crate::queue::{JobId, JobQueue, QueueConfig, RedisQueue};

/// Dead-list commands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum DeadCommand {
    /// Print the dead list, newest first, as one JSON line: `{"dead": [record, ...]}`.
    List(DeadArgs),
    /// Put a dead job back in line with fresh retries; prints `{"requeued": record}`.
    Requeue {
        /// The job's id.
        id: String,
        #[command(flatten)]
        args: DeadArgs,
    },
}

/// Where the queue is.
#[derive(Debug, clap::Args)]
pub(crate) struct DeadArgs {
    /// The Redis URL of the queue, e.g. redis://127.0.0.1:6379.
    #[arg(long, env = "KS_REDIS_URL")]
    redis: String,
    /// The prefix of the queue's Redis keys.
    #[arg(long, env = "KS_REDIS_PREFIX", default_value = QueueConfig::DEFAULT_PREFIX)]
    redis_prefix: String,
}

impl DeadArgs {
    async fn queue(&self) -> Result<RedisQueue, CliError> {
        Ok(RedisQueue::connect(&self.redis, QueueConfig::with_prefix(&self.redis_prefix)).await?)
    }
}

impl DeadCommand {
    pub(crate) async fn run(self) -> Result<ExitCode, CliError> {
        match self {
            Self::List(args) => {
                let dead = args.queue().await?.dead_letters().await?;
                super::print_json(&serde_json::json!({ "dead": dead }))?;
            }
            Self::Requeue { id, args } => {
                let job = JobId::parse(&id).ok_or_else(|| CliError::NotDead {
                    id: id.clone(),
                    reason: "that is not a job id (a UUID, as `dead list` prints them)".into(),
                })?;
                let queue = args.queue().await?;
                let Some(record) = queue.requeue_dead(&job).await? else {
                    let reason = match queue.get(&job).await? {
                        Some(record) => format!("it is {}", status_name(&record)),
                        None => "there is no such job (or it expired)".to_owned(),
                    };
                    return Err(CliError::NotDead { id, reason });
                };
                super::print_json(&serde_json::json!({ "requeued": record }))?;
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// The record's status as `/status` names it.
fn status_name(record: &crate::queue::JobRecord) -> String {
    serde_json::to_value(record.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{:?}", record.status))
}
