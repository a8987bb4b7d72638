//! The stages of a job, named alike by the pipeline that goes through them, the queue that
//! records the current one, the API that shows it and the logs; a leaf, so that none of them
//! has to import another for the name.

use serde::{Deserialize, Serialize};

/// A stage of the pipeline, for progress and status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Getting the competition's files.
    Fetch,
    /// Analysing them.
    Analyse,
    /// Writing code.
    Generate,
    /// Running it in a sandbox.
    Run,
    /// Checking the submission.
    Validate,
    /// Storing it.
    Store,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Fetch => "fetch",
            Self::Analyse => "analyse",
            Self::Generate => "generate",
            Self::Run => "run",
            Self::Validate => "validate",
            Self::Store => "store",
        })
    }
}
