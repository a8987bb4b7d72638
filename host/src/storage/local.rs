//! Submissions on local disk: `<root>/<key>/submission.csv`, written to a temporary name of
//! its own and renamed, so a reader never sees half a file and two writers of one key (a
//! worker that lost its lease and the new holder) never write through the same file.

use std::path::PathBuf;

use async_trait::async_trait;

use super::{
    StoreError, StoreKind, StoredSubmission, SubmissionStore, SubmissionStream, check_key,
};

/// A store in a local folder.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// A store rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn path_for(&self, key: &str) -> PathBuf {
        self.root.join(key).join("submission.csv")
    }
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> StoreError {
    move |source| StoreError::Io { context, source }
}

#[async_trait]
impl SubmissionStore for LocalStore {
    async fn put(&self, key: &str, contents: &[u8]) -> Result<StoredSubmission, StoreError> {
        check_key(key)?;
        let target = self.path_for(key);
        let folder = target.parent().unwrap_or(&self.root).to_path_buf();
        tokio::fs::create_dir_all(&folder)
            .await
            .map_err(io(format!("creating {}", folder.display())))?;
        let partial = folder.join(format!(
            ".submission.csv.{}.partial",
            uuid::Uuid::new_v4().simple()
        ));
        tokio::fs::write(&partial, contents)
            .await
            .map_err(io(format!("writing {}", partial.display())))?;
        tokio::fs::rename(&partial, &target)
            .await
            .map_err(io(format!(
                "moving the submission into {}",
                target.display()
            )))?;
        let path = std::path::absolute(&target).unwrap_or(target);
        Ok(StoredSubmission {
            source: StoreKind::Local,
            path: path.to_string_lossy().into_owned(),
        })
    }

    async fn get(&self, key: &str) -> Result<Option<SubmissionStream>, StoreError> {
        use futures_util::TryStreamExt;
        check_key(key)?;
        let path = self.path_for(key);
        let file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(format!("opening {}", path.display()))(e)),
        };
        // The length of the file opened, which a later `put` (a rename) cannot change.
        let size = file
            .metadata()
            .await
            .map_err(io(format!("reading {}", path.display())))?
            .len();
        let context = format!("reading {}", path.display());
        let body = tokio_util::io::ReaderStream::new(file).map_err(move |source| StoreError::Io {
            context: context.clone(),
            source,
        });
        Ok(Some(SubmissionStream {
            size,
            body: Box::pin(body),
        }))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        check_key(key)?;
        // The key's folder holds only what `put` wrote: the submission and a partial copy.
        let folder = self.root.join(key);
        match tokio::fs::remove_dir_all(&folder).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(io(format!("deleting {}", folder.display()))(e))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stores_and_finds_by_key_and_refuses_unsafe_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = b"id,y\n1,2\n";
        let store = LocalStore::new(dir.path().join("store"));
        let stored = store.put("job-1", source).await.expect("stored");
        assert_eq!(stored.source, StoreKind::Local);
        assert_eq!(
            std::fs::read_to_string(&stored.path).expect("read"),
            "id,y\n1,2\n"
        );
        let read = store.get("job-1").await.expect("get").expect("stored");
        assert_eq!(read.size, source.len() as u64);
        assert_eq!(read.bytes().await.expect("read"), source);
        assert!(store.get("job-2").await.expect("get").is_none());
        store.delete("job-1").await.expect("deleted");
        assert!(store.get("job-1").await.expect("get").is_none());
        assert!(!dir.path().join("store/job-1").exists());
        store.delete("job-1").await.expect("deleting again is fine");
        store.put("job-3", source).await.expect("stored");
        assert!(
            store.get("job-3").await.expect("get").is_some(),
            "others stay"
        );
        for key in ["../escape", "a/b", "", "x y"] {
            assert!(
                matches!(store.put(key, source).await, Err(StoreError::InvalidKey(_))),
                "{key}"
            );
            assert!(
                matches!(store.delete(key).await, Err(StoreError::InvalidKey(_))),
                "{key}"
            );
        }
        assert!(
            dir.path().join("store").is_dir(),
            "an unsafe key deletes nothing"
        );
    }
}
