//! kaggle-solver: takes a Kaggle competition and, unattended, produces a `submission.csv`.
//!
//! The library holds everything; the `kaggle-solver` binary only parses its command line and
//! calls [`cli::Cli::run`]. The parts:
//! - [`sandbox`]: the [`sandbox::Sandbox`] trait and its WASI backend, where generated Python
//!   runs under fuel, memory, wall-clock and output caps.
//! - [`cli`]: the command line.
//! - [`api`]: the REST API (an axum router over the queue).
//! - [`worker`]: the workers that take jobs from the queue and run the pipeline.
//! - [`host`]: the library API, [`host::Host::builder`], that assembles all of it.

pub mod api;
pub mod cli;
pub mod host;
pub mod pipeline;
pub mod queue;
pub mod sandbox;
pub mod storage;
pub mod worker;

pub use ks_guest_runtime as runtime;
pub use ks_policies as policies;
