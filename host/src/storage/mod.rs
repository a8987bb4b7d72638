//! Where finished submissions are kept. Pluggable (`Arc<dyn SubmissionStore>`): local disk
//! today (`source: local`), an object store later behind the same trait.

mod local;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use local::LocalStore;

/// The kind of store a submission is in, as `/status` names it in `source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// A file on this machine's disk (or a shared volume).
    Local,
    /// An object in an S3-compatible store.
    S3,
}

impl std::fmt::Display for StoreKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Local => "local",
            Self::S3 => "s3",
        })
    }
}

/// Where a stored submission is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSubmission {
    /// The kind of store.
    pub source: StoreKind,
    /// Where in that store: a file path for `local`.
    pub path: String,
}

/// Why a submission could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The key is not a safe name.
    #[error("invalid submission key {0:?}")]
    InvalidKey(String),
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// Storage hiccups (a full disk, a network store) may pass; a bad key will not.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Io { .. })
    }
}

/// Keeps submissions by key (a job id).
#[async_trait]
pub trait SubmissionStore: Send + Sync + std::fmt::Debug {
    /// Stores `contents` under `key`, replacing any earlier one at once (a reader sees the
    /// old or the new submission, never a mix).
    async fn put(&self, key: &str, contents: &[u8]) -> Result<StoredSubmission, StoreError>;

    /// A local path to read the submission stored under `key`, if there is one.
    async fn get(&self, key: &str) -> Result<Option<PathBuf>, StoreError>;

    /// Deletes the submission stored under `key` (its job expired); deleting one that is not
    /// there is not an error, so a sweep that is repeated or races another one succeeds.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
}

/// A shared, type-erased store.
pub type DynStore = Arc<dyn SubmissionStore>;

/// Keys are job ids or slugs: letters, digits, `-` and `_`, so they are safe file names.
pub(crate) fn check_key(key: &str) -> Result<(), StoreError> {
    let ok = !key.is_empty()
        && key.len() <= 128
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidKey(key.to_owned()))
    }
}
