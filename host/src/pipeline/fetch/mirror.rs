//! The object-store mirror of competitions (`KS_COMPETITIONS_URL=s3://BUCKET/PREFIX`): a
//! competition `<slug>` is the objects under `PREFIX/<slug>/`, laid out as a local mirror
//! folder is. The fetcher copies them into this machine's cache, once per machine (the
//! cache's single flight), under the caps and checks of a download: at most
//! `max_entries` objects and `max_total_bytes` bytes (counted as listed and again as read,
//! since a listing is only the store's word), and every name checked as an archive entry's
//! is, so no object lands outside the cache's folder.

use std::path::Path;
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};
use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;
use tokio::io::AsyncWriteExt;

use super::{ExtractError, ExtractLimits, FetchError};
use crate::storage::{S3Location, StoreError, s3};

/// The variable naming the object-store mirror.
pub const COMPETITIONS_URL_ENV: &str = "KS_COMPETITIONS_URL";

/// A mirror of competitions in an object store.
#[derive(Debug, Clone)]
pub struct ObjectMirror {
    location: S3Location,
    store: Arc<dyn ObjectStore>,
}

/// What was copied of one competition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Copied {
    /// Files written.
    pub files: usize,
    /// Bytes written.
    pub bytes: u64,
    /// The competition's `description.md`, when the mirror has one beside `public/`.
    pub description: Option<String>,
}

impl ObjectMirror {
    /// The mirror at `url` (`s3://BUCKET/PREFIX`), reached with the `AWS_*` variables of
    /// `env`. Nothing is contacted yet.
    ///
    /// # Errors
    /// When the URL or a variable is unusable.
    pub fn new(url: &str, env: impl Fn(&str) -> Option<String>) -> Result<Self, StoreError> {
        let location = S3Location::parse(url)?;
        let store = s3::client(&location, env)?;
        Ok(Self { location, store })
    }

    /// Where the mirror is.
    pub fn location(&self) -> &S3Location {
        &self.location
    }

    /// Copies `<slug>/` into `data` within `limits`; `None` when the mirror has no such
    /// competition (nothing is written then). With a `public/` folder (the MLE-bench layout)
    /// only that folder is the data, as for a local mirror.
    pub async fn copy(
        &self,
        slug: &str,
        data: &Path,
        limits: &ExtractLimits,
    ) -> Result<Option<Copied>, FetchError> {
        let root = self.location.path(slug);
        let objects = self.list(slug, &root, limits).await?;
        if objects.is_empty() {
            return Ok(None);
        }
        let public = objects.iter().any(|(name, _)| name.starts_with("public/"));
        let mut copied = Copied::default();
        let mut budget = limits.max_total_bytes;
        for (name, path) in &objects {
            let target = match (public, name.strip_prefix("public/")) {
                (false, _) => name.as_str(),
                (true, Some(inside)) => inside,
                (true, None) => {
                    if name == "description.md" {
                        copied.description = self.description(slug, path).await?;
                    }
                    continue;
                }
            };
            let written = self
                .copy_object(
                    slug,
                    path,
                    &data.join(target),
                    budget,
                    limits.max_total_bytes,
                )
                .await?;
            budget -= written;
            copied.files += 1;
            copied.bytes += written;
        }
        Ok(Some(copied))
    }

    /// The objects under `root`, as checked relative names with their paths.
    async fn list(
        &self,
        slug: &str,
        root: &ObjectPath,
        limits: &ExtractLimits,
    ) -> Result<Vec<(String, ObjectPath)>, FetchError> {
        let failed = |e| self.failed(format!("listing {}/", self.location.url_of(root)), e);
        let mut listing = self.store.list(Some(root));
        let (mut objects, mut listed) = (Vec::new(), 0u64);
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(failed)?;
            let Some(parts) = meta.location.prefix_match(root) else {
                continue;
            };
            let raw: Vec<String> = parts.map(|p| p.as_ref().to_owned()).collect();
            let name = ks_guest_runtime::unzip::checked_path(&raw.join("/"))
                .map_err(|source| extract(slug, source))?;
            if name.is_empty() {
                continue;
            }
            listed = listed.saturating_add(meta.size);
            if listed > limits.max_total_bytes {
                return Err(FetchError::TooLarge {
                    slug: slug.to_owned(),
                    bytes: listed,
                    max: limits.max_total_bytes,
                });
            }
            objects.push((name, meta.location));
            if objects.len() > limits.max_entries {
                return Err(extract(
                    slug,
                    ExtractError::TooManyEntries {
                        count: objects.len(),
                        max: limits.max_entries,
                    },
                ));
            }
        }
        Ok(objects)
    }

    /// Streams one object to `target` (a new file), at most `budget` bytes (what is left of
    /// the cap `max`).
    async fn copy_object(
        &self,
        slug: &str,
        path: &ObjectPath,
        target: &Path,
        budget: u64,
        max: u64,
    ) -> Result<u64, FetchError> {
        let url = self.location.url_of(path);
        let io = |e| FetchError::io(format!("writing {}", target.display()), e);
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io)?;
        }
        let mut body = self
            .store
            .get(path)
            .await
            .map_err(|e| self.failed(format!("reading {url}"), e))?
            .into_stream()
            .map_err(|e| self.failed(format!("reading {url}"), e));
        // A new file: a name given twice (`a` and `a/`) is refused rather than overwritten.
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(target)
            .await
            .map_err(io)?;
        let mut written = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            written += chunk.len() as u64;
            if written > budget {
                return Err(extract(slug, ExtractError::TooLarge { entry: url, max }));
            }
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.flush().await.map_err(io)?;
        Ok(written)
    }

    /// A `description.md` beside `public/`, cut to the size descriptions are kept to.
    async fn description(
        &self,
        slug: &str,
        path: &ObjectPath,
    ) -> Result<Option<String>, FetchError> {
        let url = self.location.url_of(path);
        let got = self
            .store
            .get(path)
            .await
            .map_err(|e| self.failed(format!("reading {url}"), e))?;
        if got.meta.size > super::MAX_DESCRIPTION_BYTES as u64 {
            tracing::warn!(slug, "the mirror's description.md is too large; not read");
            return Ok(None);
        }
        let bytes = got
            .bytes()
            .await
            .map_err(|e| self.failed(format!("reading {url}"), e))?;
        let text = String::from_utf8_lossy(&bytes);
        let text = text.trim();
        Ok((!text.is_empty()).then(|| text.to_owned()))
    }

    fn failed(&self, context: String, error: object_store::Error) -> FetchError {
        FetchError::Mirror(s3::classify(context, error))
    }
}

fn extract(slug: &str, source: ExtractError) -> FetchError {
    FetchError::Extract {
        slug: slug.to_owned(),
        source,
    }
}
