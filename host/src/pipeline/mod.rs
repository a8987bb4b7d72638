//! The solving pipeline: fetch a competition, analyse it, generate code, run it in a sandbox,
//! validate the submission, store it; `workdir` is where a claim of a job runs its attempts.

pub mod analyse;
pub mod fetch;
pub mod generate;
pub mod score;
pub mod solve;
pub mod validate;
pub mod workdir;
