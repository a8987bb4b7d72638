//! Analysis: what a competition's files say about the task, before any code is written.
//!
//! The result, [`CompetitionAnalysis`], is a typed summary that goes into the job's logs, the
//! baseline generator's choices, and the LLM prompt.

mod types;

pub use types::{
    ColumnProfile, ColumnType, CompetitionAnalysis, DataFile, Metric, PredictionKind, TableProfile,
    TaskKind,
};
