//! The `--store` option of `serve`, `worker` and `solve`: opening the store a URL names and
//! checking at start that it answers, so a wrong secret or an unreachable endpoint is an error
//! at once rather than a failure of the first job.

use std::path::Path;

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::CliError;
use crate::storage::{self, DynStore};

/// The store `url` names (`s3://BUCKET/PREFIX` with the `AWS_*` variables, or `file://DIR`),
/// checked to answer.
pub(crate) async fn open_store(url: &str) -> Result<DynStore, CliError> {
    // With a URL given, the default folder is never used.
    let store = storage::open(Some(url), "", |name| std::env::var(name).ok())?;
    store.check().await?;
    super::progress(format!("submissions are stored in {url}"));
    Ok(store)
}

/// Writes the submission stored under `key` to `target`, streamed.
pub(crate) async fn copy_submission(
    store: &DynStore,
    key: &str,
    target: &Path,
) -> Result<(), CliError> {
    let write = |e| CliError::io(format!("writing {}", target.display()), e);
    let mut stream = store
        .get(key)
        .await?
        .ok_or_else(|| CliError::Internal(format!("the store holds no submission under {key}")))?;
    let mut file = tokio::fs::File::create(target).await.map_err(write)?;
    while let Some(chunk) = stream.body.next().await {
        file.write_all(&chunk?).await.map_err(write)?;
    }
    file.flush().await.map_err(write)
}
