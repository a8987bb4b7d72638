//! Submissions on local disk: `<root>/<key>/submission.csv`, written to a temporary name of
//! its own and renamed, so a reader never sees half a file and two writers of one key (a
//! worker that lost its lease and the new holder) never write through the same file.

use std::path::PathBuf;

use async_trait::async_trait;

use super::{StoreError, StoreKind, StoredSubmission, SubmissionStore, check_key};

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

    async fn get(&self, key: &str) -> Result<Option<PathBuf>, StoreError> {
        check_key(key)?;
        let path = self.path_for(key);
        Ok(tokio::fs::try_exists(&path)
            .await
            .unwrap_or(false)
            .then_some(path))
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
        assert_eq!(
            store.get("job-1").await.expect("get"),
            Some(PathBuf::from(&stored.path))
        );
        assert_eq!(store.get("job-2").await.expect("get"), None);
        for key in ["../escape", "a/b", "", "x y"] {
            assert!(
                matches!(store.put(key, source).await, Err(StoreError::InvalidKey(_))),
                "{key}"
            );
        }
    }
}
