//! Where finished submissions are kept. Pluggable (`Arc<dyn SubmissionStore>`): a local folder
//! ([`LocalStore`], `source: local`) or an S3-compatible object store ([`S3Store`],
//! `source: s3`), chosen by a store URL ([`open`]: `s3://BUCKET/PREFIX`, `file://DIR`, or none
//! for the default folder).
//!
//! The trait promises no local path: a submission is read as a stream of known length, so the
//! API serves it from whichever store holds it, and API and workers on different machines
//! share nothing but the store. Writes are atomic in both: a reader sees the old object or
//! the new one, never half of one.

mod local;
pub mod s3;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use serde::{Deserialize, Serialize};

pub use local::LocalStore;
pub use s3::{S3Location, S3Store};

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
    /// Where in that store: a file path for `local`, `s3://BUCKET/KEY` for `s3`.
    pub path: String,
}

/// A stored submission being read: its length, then its bytes.
pub struct SubmissionStream {
    /// The submission's length in bytes (what `Content-Length` says).
    pub size: u64,
    /// The bytes, in chunks.
    pub body: BoxStream<'static, Result<Bytes, StoreError>>,
}

impl std::fmt::Debug for SubmissionStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubmissionStream")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl SubmissionStream {
    /// Reads the whole submission into memory (for small ones and tests).
    ///
    /// # Errors
    /// When the store fails midway.
    pub async fn bytes(self) -> Result<Vec<u8>, StoreError> {
        use futures_util::TryStreamExt;
        let capacity = usize::try_from(self.size).unwrap_or(0).min(1 << 24);
        self.body
            .try_fold(Vec::with_capacity(capacity), |mut all, chunk| async move {
                all.extend_from_slice(&chunk);
                Ok(all)
            })
            .await
    }
}

/// Why a submission could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The key is not a safe name.
    #[error("invalid submission key {0:?}")]
    InvalidKey(String),
    /// The store URL cannot be used.
    #[error("invalid store {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given (it holds no secret: credentials come from variables).
        url: String,
        /// What is wrong, and what to give instead.
        reason: String,
    },
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The object store could not be reached or failed (an outage, a timeout, a 5xx).
    #[error("the object store failed {context}: {source}")]
    Unavailable {
        /// What was being done, with the object's URL.
        context: String,
        /// The underlying error.
        #[source]
        source: object_store::Error,
    },
    /// The object store refused the credentials (a wrong key or secret, no permission).
    #[error(
        "the object store refused {context}: {source}; check AWS_ACCESS_KEY_ID, \
         AWS_SECRET_ACCESS_KEY and the bucket's permissions"
    )]
    Refused {
        /// What was being done, with the object's URL.
        context: String,
        /// The underlying error.
        #[source]
        source: object_store::Error,
    },
}

impl StoreError {
    /// Storage hiccups (a full disk, a store outage) may pass, and so may refused credentials
    /// once an operator fixes them (a job retried until then, or found on the dead list); a bad
    /// key or URL will not.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Io { .. } | Self::Unavailable { .. } | Self::Refused { .. } => true,
            Self::InvalidKey(_) | Self::InvalidUrl { .. } => false,
        }
    }
}

/// Keeps submissions by key (a job id).
#[async_trait]
pub trait SubmissionStore: Send + Sync + std::fmt::Debug {
    /// Stores `contents` under `key`, replacing any earlier one at once (a reader sees the
    /// old or the new submission, never a mix).
    async fn put(&self, key: &str, contents: &[u8]) -> Result<StoredSubmission, StoreError>;

    /// The submission stored under `key`, streamed, if there is one.
    async fn get(&self, key: &str) -> Result<Option<SubmissionStream>, StoreError>;

    /// Deletes the submission stored under `key` (its job expired); deleting one that is not
    /// there is not an error, so a sweep that is repeated or races another one succeeds.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// Whether the store answers, with the credentials given (for start-up and `/readyz`).
    async fn check(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A shared, type-erased store.
pub type DynStore = Arc<dyn SubmissionStore>;

/// The store a URL names: `s3://BUCKET/PREFIX` (configured by the standard `AWS_*` variables,
/// read through `env`), `file://DIR`, or, with none, a local folder at `default_root`.
///
/// # Errors
/// [`StoreError::InvalidUrl`] for another scheme or an unusable S3 URL. Nothing is contacted:
/// call [`SubmissionStore::check`] to know whether the store answers.
pub fn open(
    url: Option<&str>,
    default_root: impl Into<PathBuf>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<DynStore, StoreError> {
    let Some(url) = url.map(str::trim).filter(|u| !u.is_empty()) else {
        return Ok(Arc::new(LocalStore::new(default_root)));
    };
    if let Some(dir) = url.strip_prefix("file://") {
        if dir.is_empty() {
            return Err(StoreError::InvalidUrl {
                url: url.to_owned(),
                reason: "file:// needs a folder, e.g. file:///srv/submissions".to_owned(),
            });
        }
        return Ok(Arc::new(LocalStore::new(dir)));
    }
    if url.starts_with("s3://") {
        let location = S3Location::parse(url)?;
        return Ok(Arc::new(S3Store::connect(location, env)?));
    }
    Err(StoreError::InvalidUrl {
        url: url.to_owned(),
        reason: "a store is s3://BUCKET/PREFIX or file://DIR".to_owned(),
    })
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_names_the_store() {
        let none = |_: &str| None;
        let local = open(None, "/tmp/x", none).expect("default");
        assert!(format!("{local:?}").contains("/tmp/x"));
        let file = open(Some("file:///srv/subs"), "/tmp/x", none).expect("file");
        assert!(format!("{file:?}").contains("/srv/subs"));
        let s3 = open(Some("s3://bucket/some/prefix"), "/tmp/x", none).expect("s3");
        assert!(
            format!("{s3:?}").contains("s3://bucket/some/prefix"),
            "{s3:?}"
        );
        for bad in ["http://x/y", "file://", "s3://", "s3://ab", "ftp://a"] {
            let error = open(Some(bad), "/tmp/x", none).expect_err(bad);
            assert!(
                matches!(error, StoreError::InvalidUrl { .. }) && !error.is_retryable(),
                "{bad}: {error}"
            );
        }
    }
}
