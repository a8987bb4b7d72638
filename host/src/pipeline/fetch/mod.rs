//! Fetch: from a competition source to a folder of competition files on this machine.
//!
//! The pipeline's first stage. A [`CompetitionRef`] (parsed from a URL or path by
//! [`CompetitionRef::parse`]) becomes a [`FetchedCompetition`]: the folder to mount at `/input`
//! and what is known about the competition. In order of preference:
//! - a local mirror `KS_COMPETITIONS_DIR/<slug>/`, used as is;
//! - the cache (below), filled from the object-store mirror `KS_COMPETITIONS_URL`
//!   (`s3://BUCKET/PREFIX/<slug>/`, see [`mirror`]) when it has the competition;
//! - the cache (`$KS_HOME/competitions/<slug>/`), filled once per competition, capped in size
//!   (`KS_CACHE_MAX`) and pinned while a job uses it;
//! - Kaggle: metadata, file list, then the data zip, streamed, checked and unpacked safely.
//!
//! A folder holding `public/` (the MLE-bench layout) yields `public/` as the data folder, and a
//! `description.md` there (or beside it) becomes the description.
//!
//! Parts: [`url`] (sources and the local-folder policy), [`credentials`], [`kaggle`] (the
//! API client), [`extract`] (safe unzip) and [`cache`] (single-flight cache).

pub mod cache;
pub mod credentials;
pub mod kaggle;
pub mod mirror;
pub mod url;

/// Safe unzip, shared with the runtime installer (which unpacks matplotlib's data with it).
pub use ks_guest_runtime::unzip as extract;

mod config;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub use cache::{CacheEntry, CachePin, CompetitionCache, DEFAULT_CACHE_MAX};
pub use config::{
    CACHE_MAX_ENV, COMPETITIONS_DIR_ENV, Caller, CredentialsSource, FetchConfig, MAX_DATA_BYTES_ENV,
};
pub use credentials::{Credentials, CredentialsError, EnvLookup};
pub use extract::{ExtractError, ExtractLimits};
pub use kaggle::{DownloadProgress, KaggleClient, KaggleError, RetryPolicy};
pub use mirror::{COMPETITIONS_URL_ENV, ObjectMirror};

use kaggle::CompetitionInfo;
pub use url::{CompetitionRef, LocalPolicy, SourceError};

/// Descriptions bigger than this are cut.
pub(crate) const MAX_DESCRIPTION_BYTES: usize = 1 << 20;

/// A competition ready to solve.
#[derive(Debug)]
pub struct FetchedCompetition {
    /// The Kaggle slug, or the local folder's name.
    pub slug: String,
    /// The data folder (to mount at `/input`).
    pub dir: PathBuf,
    /// The title, when known.
    pub title: Option<String>,
    /// The description: `description.md` when present, else Kaggle's.
    pub description: Option<String>,
    /// The evaluation metric's name, when Kaggle gave one.
    pub evaluation_metric: Option<String>,
    /// Where the files came from.
    pub origin: FetchOrigin,
    /// The bytes this call downloaded (0 unless `origin` is [`FetchOrigin::Download`]).
    pub downloaded_bytes: u64,
    /// For a cached competition, keeps it from eviction while held (drop it when the job
    /// ends); `None` for local folders and the mirror, which the cache does not manage.
    pub pin: Option<CachePin>,
}

/// Where a [`FetchedCompetition`]'s files came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchOrigin {
    /// A folder the caller named.
    Local,
    /// `KS_COMPETITIONS_DIR/<slug>/`.
    Mirror,
    /// The cache, filled earlier.
    Cache,
    /// Downloaded by this call (from Kaggle, or copied from the object-store mirror).
    Download,
}

/// Why a competition could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The source was refused.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// No usable credentials.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// Kaggle refused or failed.
    #[error(transparent)]
    Kaggle(#[from] KaggleError),
    /// The archive was refused.
    #[error("the data of {slug:?} was refused: {source}")]
    Extract {
        /// The competition.
        slug: String,
        /// Why.
        #[source]
        source: ExtractError,
    },
    /// Kaggle lists more data than the size cap allows.
    #[error("the data of {slug:?} is {bytes} bytes, over the cap of {max} bytes")]
    TooLarge {
        /// The competition.
        slug: String,
        /// The size Kaggle lists.
        bytes: u64,
        /// The cap.
        max: u64,
    },
    /// A code competition: there is no test set to predict and no file to submit.
    #[error(
        "{slug:?} is a code competition: Kaggle takes its submissions only from notebooks it \
         runs itself, on a test set it never lets anyone download, so no submission.csv made \
         here can be scored; choose a competition that accepts file submissions"
    )]
    CodeCompetition {
        /// The competition.
        slug: String,
    },
    /// The object-store mirror failed or refused the credentials.
    #[error("the competitions mirror: {0}")]
    Mirror(#[source] crate::storage::StoreError),
    /// The configuration is unusable (e.g. no home folder for the cache).
    #[error("invalid fetch configuration: {0}")]
    Config(String),
    /// A local file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl FetchError {
    /// Whether the same fetch may succeed later without any change (network trouble, 429,
    /// 5xx). Everything else needs the user to act.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Kaggle(e) => e.is_retryable(),
            Self::Mirror(e) => e.is_retryable(),
            Self::Source(_)
            | Self::Credentials(_)
            | Self::Extract { .. }
            | Self::TooLarge { .. }
            | Self::CodeCompetition { .. }
            | Self::Config(_)
            | Self::Io { .. } => false,
        }
    }

    pub(crate) fn io(context: String, source: std::io::Error) -> FetchError {
        FetchError::Io { context, source }
    }
}

/// Fetches competitions per a [`FetchConfig`]. Share one per process: it holds the cache's
/// in-process single-flight locks.
#[derive(Debug)]
pub struct Fetcher {
    config: FetchConfig,
    cache: CompetitionCache,
    progress: Option<DownloadProgress>,
}

impl Fetcher {
    /// A fetcher with `config`.
    pub fn new(config: FetchConfig) -> Fetcher {
        let cache = CompetitionCache::new(config.cache_root.clone()).with_max(config.cache_max);
        Fetcher {
            config,
            cache,
            progress: None,
        }
    }

    /// This fetcher, telling `progress` how its downloads advance.
    #[must_use]
    pub fn with_download_progress(mut self, progress: DownloadProgress) -> Self {
        self.progress = Some(progress);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &FetchConfig {
        &self.config
    }

    /// The cache.
    pub fn cache(&self) -> &CompetitionCache {
        &self.cache
    }

    /// Brings the competition's files to this machine (see the module doc for the order).
    pub async fn fetch(&self, source: &CompetitionRef) -> Result<FetchedCompetition, FetchError> {
        let fetched = self.fetch_from(source).await?;
        tracing::info!(
            slug = %fetched.slug,
            origin = ?fetched.origin,
            downloaded_bytes = fetched.downloaded_bytes,
            "competition ready"
        );
        Ok(fetched)
    }

    async fn fetch_from(&self, source: &CompetitionRef) -> Result<FetchedCompetition, FetchError> {
        match source {
            CompetitionRef::Local(path) => {
                let dir = self.config.local_policy.resolve(path)?;
                Ok(local_folder(&dir, FetchOrigin::Local).await)
            }
            CompetitionRef::Kaggle { slug } => {
                url::validate_slug(slug)?;
                if let Some(mirror) = &self.config.competitions_dir {
                    let dir = mirror.join(slug);
                    if dir.is_dir() {
                        let mut fetched = local_folder(&dir, FetchOrigin::Mirror).await;
                        fetched.slug.clone_from(slug);
                        return Ok(fetched);
                    }
                }
                self.kaggle_data(slug).await
            }
        }
    }

    async fn kaggle_data(&self, slug: &str) -> Result<FetchedCompetition, FetchError> {
        let received = AtomicU64::new(0);
        let (entry, downloaded, pin) = self
            .cache
            .get_pinned(slug, |staging| self.fill(slug, staging, &received))
            .await?;
        let dir = self.cache.data_dir(slug);
        let description = read_description(&dir).await.or(entry.description);
        Ok(FetchedCompetition {
            slug: slug.to_owned(),
            dir,
            title: entry.title,
            description,
            evaluation_metric: entry.evaluation_metric,
            origin: if downloaded {
                FetchOrigin::Download
            } else {
                FetchOrigin::Cache
            },
            downloaded_bytes: if downloaded {
                received.load(Ordering::Relaxed)
            } else {
                0
            },
            pin: Some(pin),
        })
    }

    /// Fills the staging folder from the object-store mirror if it has the competition, else
    /// from Kaggle.
    async fn fill(
        &self,
        slug: &str,
        staging: cache::Staging,
        received: &AtomicU64,
    ) -> Result<CacheEntry, FetchError> {
        if let Some(mirror) = &self.config.mirror {
            let copied = mirror
                .copy(slug, &staging.data, &self.config.limits)
                .await?;
            if let Some(copied) = copied {
                tracing::info!(
                    slug,
                    files = copied.files,
                    bytes = copied.bytes,
                    mirror = %mirror.location(),
                    "copied from the mirror"
                );
                received.fetch_add(copied.bytes, Ordering::Relaxed);
                return Ok(CacheEntry {
                    title: None,
                    description: copied.description,
                    evaluation_metric: None,
                    files: copied.files,
                    bytes: copied.bytes,
                });
            }
        }
        self.download(slug, staging, received).await
    }

    /// Downloads and unpacks into the staging folder.
    async fn download(
        &self,
        slug: &str,
        staging: cache::Staging,
        received: &AtomicU64,
    ) -> Result<CacheEntry, FetchError> {
        let credentials = self.config.credentials.resolve()?;
        tracing::info!(slug, origin = credentials.origin(), "fetching from Kaggle");
        let mut client = KaggleClient::new(
            &self.config.api_base,
            credentials,
            self.config.retry.clone(),
        )?;
        if let Some(progress) = &self.progress {
            client = client.with_progress(progress.clone());
        }
        // The metadata only adds the title, description and metric name: when the server
        // fails to give it (after the retries), the files' own evidence decides instead. A
        // refusal (401, 403, 404) still ends the fetch, since the files would be refused too.
        let info = match client.get_competition(slug).await {
            Ok(info) => info,
            Err(error) if error.is_server_side() => {
                tracing::warn!(
                    slug,
                    %error,
                    "no competition metadata; going on with the files alone"
                );
                CompetitionInfo::default()
            }
            Err(error) => return Err(error.into()),
        };
        if info.is_kernels_submissions_only {
            return Err(FetchError::CodeCompetition {
                slug: slug.to_owned(),
            });
        }
        let files = client.list_data_files(slug).await?;
        let listed: u64 = files.iter().map(|f| f.total_bytes).sum();
        let max = self.config.limits.max_total_bytes;
        if listed > max {
            return Err(FetchError::TooLarge {
                slug: slug.to_owned(),
                bytes: listed,
                max,
            });
        }
        // Kept past a failed fill, so that a retry continues the download.
        let zip_path = staging.keep.join(format!("{slug}.zip"));
        let download = client.download_data_files(slug, &zip_path).await?;
        tracing::info!(
            slug,
            bytes = download.bytes,
            resumes = download.resumes,
            "downloaded"
        );
        received.fetch_add(download.bytes, Ordering::Relaxed);

        let limits = self.config.limits.clone();
        let data = staging.data.clone();
        // The one place that opens the data folder with ambient authority; everything below
        // it goes through the capability.
        let span = tracing::Span::current();
        let unpack = move || {
            let _span = span.enter();
            let dir = cap_std::fs::Dir::open_ambient_dir(&data, cap_std::ambient_authority())
                .map_err(|e| FetchError::io(format!("opening {}", data.display()), e))?;
            let file = std::fs::File::open(&zip_path)
                .map_err(|e| FetchError::io(format!("opening {}", zip_path.display()), e))?;
            Ok::<_, FetchError>(extract::extract_zip(
                std::io::BufReader::new(file),
                &dir,
                &limits,
            ))
        };
        let extracted = tokio::task::spawn_blocking(unpack)
            .await
            .map_err(|e| FetchError::io("unpacking".into(), std::io::Error::other(e)))??
            .map_err(|source| FetchError::Extract {
                slug: slug.to_owned(),
                source,
            })?;
        Ok(CacheEntry {
            title: info.title,
            description: info.description,
            evaluation_metric: info.evaluation_metric,
            files: extracted.files,
            bytes: extracted.bytes,
        })
    }
}

/// A local competition folder: `public/` inside it if present, and its `description.md`.
async fn local_folder(dir: &Path, origin: FetchOrigin) -> FetchedCompetition {
    let public = dir.join("public");
    let data = if public.is_dir() {
        public
    } else {
        dir.to_owned()
    };
    let mut description = read_description(&data).await;
    if description.is_none() && data != dir {
        description = read_description(dir).await;
    }
    let slug = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    FetchedCompetition {
        slug,
        dir: data,
        title: None,
        description,
        evaluation_metric: None,
        origin,
        downloaded_bytes: 0,
        pin: None,
    }
}

/// `dir/description.md`, cut to [`MAX_DESCRIPTION_BYTES`], if it exists and is text.
async fn read_description(dir: &Path) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let file = tokio::fs::File::open(dir.join("description.md"))
        .await
        .ok()?;
    let mut bytes = Vec::new();
    file.take(MAX_DESCRIPTION_BYTES as u64)
        .read_to_end(&mut bytes)
        .await
        .ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}
