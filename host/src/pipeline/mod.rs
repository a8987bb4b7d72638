//! The solving pipeline: fetch a competition, analyse it, generate code, run it in a sandbox,
//! validate the submission, store it.

pub mod analyse;
pub mod fetch;
pub mod generate;
pub mod solve;
pub mod validate;
