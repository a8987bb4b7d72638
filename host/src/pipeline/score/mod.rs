//! Scoring by the host: a candidate's submission against answers the candidate never saw.

pub mod holdout;
pub mod metrics;
