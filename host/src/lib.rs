//! kaggle-solver: takes a Kaggle competition and, unattended, produces a `submission.csv`.
//!
//! The library holds everything; the `kaggle-solver` binary only parses its command line and
//! calls [`cli::Cli::run`]. Data flows one way through the modules, each listed after the ones
//! it builds on:
//! - [`text`]: bounding text taken from a run before it is shown, stored or sent (a leaf).
//! - [`stage`]: the names of a job's stages (a leaf).
//! - [`sandbox`]: the [`sandbox::Sandbox`] trait and its backends, the WASI guest on wasmtime
//!   and the hardened Docker container, where generated Python runs under caps.
//! - [`storage`]: where finished submissions are kept ([`storage::SubmissionStore`]).
//! - [`pipeline`]: one job's way from a competition to a stored submission: fetch, analyse,
//!   generate, run, validate, store.
//! - [`queue`]: the durable job queue ([`queue::JobQueue`]: in memory or on Redis).
//! - [`metrics`]: the counters `/metrics` shows; workers update them, the API renders them.
//! - [`logs`]: each job's attempts and timeline; workers write them, the API reads them.
//! - [`api`]: the REST API (an axum router over the queue, the store and the logs).
//! - [`worker`]: the workers that take jobs from the queue and run the pipeline on them.
//! - [`sweep`]: expiry of finished jobs with their submissions and logs, which workers run.
//! - [`host`]: the library API, [`host::Host::builder`], that assembles all of it; the only
//!   module that sees both the API and the workers.
//! - [`cli`]: the command line, over [`host`] and the parts.
//!
//! [`runtime`] (the pinned guest runtime) and [`policies`] (the policy files) are the
//! workspace's own crates, re-exported.

pub mod api;
pub mod cli;
pub mod host;
pub mod logs;
pub mod metrics;
pub mod pipeline;
pub mod queue;
pub mod sandbox;
pub mod stage;
pub mod storage;
pub mod sweep;
pub mod text;
pub mod worker;

#[cfg(test)]
mod layering;

pub use ks_guest_runtime as runtime;
pub use ks_policies as policies;
