//! A Kaggle API client speaking what the official `kaggle` 2.x client (kagglesdk) speaks.
//!
//! kagglesdk calls every method as `POST <endpoint>/v1/<service>/<Method>` with a camelCase
//! JSON body of the request's non-default fields, `Content-Type: application/json`, and Basic
//! (API key) or Bearer (access token) authorization; errors come back as JSON
//! `{"code": 403, "message": "..."}` (a `code` of 400 or more in the body counts as an error
//! even under a 2xx status). Downloads answer with a 302 to the file, which is followed as a
//! GET. The base comes from `KS_KAGGLE_API` (default `https://api.kaggle.com`, the official
//! client's production endpoint, where methods live at `{base}/v1/...`), so tests point it at
//! a fake server; for any other base the endpoint is `{base}/api`, as kagglesdk does.

mod download;
mod error;
mod retry;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

pub use download::Download;
pub use error::KaggleError;
pub use retry::RetryPolicy;

use super::credentials::Credentials;
use error::Failure;

/// The variable that overrides the API base URL.
pub const API_BASE_ENV: &str = "KS_KAGGLE_API";
/// The API base URL used when `KS_KAGGLE_API` is unset: the official client's production
/// endpoint, which serves `/v1/<service>/<Method>`.
pub const DEFAULT_API_BASE: &str = "https://api.kaggle.com";
/// The host the official client calls in production, which serves `/v1/...` without `/api`.
pub const PRODUCTION_API_HOST: &str = "api.kaggle.com";
/// The kagglesdk service that holds the competition methods.
pub const COMPETITION_SERVICE: &str = "competitions.CompetitionApiService";

/// Listings stop after this many pages, whatever `nextPageToken` says.
const MAX_PAGES: usize = 1000;
/// JSON replies bigger than this are refused.
const MAX_JSON_BYTES: usize = 16 << 20;

/// A competition's metadata, from `GetCompetition`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CompetitionInfo {
    /// The competition's reference (its slug or URL, depending on the server).
    #[serde(rename = "ref")]
    pub reference: String,
    pub title: Option<String>,
    /// The short description.
    pub description: Option<String>,
    /// The evaluation metric's name, e.g. `Categorization Accuracy`.
    pub evaluation_metric: Option<String>,
    /// The competition page.
    pub url: Option<String>,
    /// A code competition: Kaggle takes its submissions only from notebooks it runs itself,
    /// against a test set it never lets anyone download.
    pub is_kernels_submissions_only: bool,
}

/// One data file, from `ListDataFiles`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DataFile {
    /// The file's name (a path inside the competition's data).
    pub name: String,
    /// Its size in bytes.
    pub total_bytes: u64,
    /// When it was created, as Kaggle formats it.
    pub creation_date: Option<String>,
}

/// Told, as a download's body arrives, its bytes so far and its total when the server gave
/// one (for a progress bar).
#[derive(Clone)]
pub struct DownloadProgress(Arc<dyn Fn(u64, Option<u64>) + Send + Sync>);

impl DownloadProgress {
    /// Calls `report(bytes_so_far, total)` as the body arrives.
    pub fn new(report: impl Fn(u64, Option<u64>) + Send + Sync + 'static) -> Self {
        Self(Arc::new(report))
    }

    pub(crate) fn report(&self, bytes: u64, total: Option<u64>) {
        (self.0)(bytes, total);
    }
}

impl std::fmt::Debug for DownloadProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DownloadProgress")
    }
}

/// A client for one set of credentials and one base URL.
#[derive(Debug, Clone)]
pub struct KaggleClient {
    http: reqwest::Client,
    api: url::Url,
    credentials: Credentials,
    retry: RetryPolicy,
    progress: Option<DownloadProgress>,
}

impl KaggleClient {
    /// A client for `base` (e.g. `https://www.kaggle.com` or a test server's URL).
    pub fn new(
        base: &str,
        credentials: Credentials,
        retry: RetryPolicy,
    ) -> Result<KaggleClient, KaggleError> {
        let base = url::Url::parse(base).map_err(|e| KaggleError::Setup {
            reason: format!("the API base URL {base:?} is not a URL: {e}"),
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(KaggleError::Setup {
                reason: format!("the API base URL {base} is not an http(s) URL"),
            });
        }
        let mut api = base.clone();
        // As kagglesdk: production (api.kaggle.com) serves `/v1/...`, every other endpoint
        // `/api/v1/...`.
        let prefix = if base.host_str() == Some(PRODUCTION_API_HOST) {
            "v1"
        } else {
            "api/v1"
        };
        let path = format!("{}/{prefix}/", base.path().trim_end_matches('/'));
        api.set_path(&path);
        api.set_query(None);
        api.set_fragment(None);
        let http = reqwest::Client::builder()
            .user_agent(concat!("kaggle-solver/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(120))
            .redirect(reqwest::redirect::Policy::limited(10))
            .build()
            .map_err(|e| KaggleError::Setup {
                reason: e.to_string(),
            })?;
        Ok(KaggleClient {
            http,
            api,
            credentials,
            retry,
            progress: None,
        })
    }

    /// This client, telling `progress` how its downloads advance.
    #[must_use]
    pub fn with_progress(mut self, progress: DownloadProgress) -> Self {
        self.progress = Some(progress);
        self
    }

    /// The credentials in use.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// `GetCompetition`: the competition's title, description and metric.
    pub async fn get_competition(&self, slug: &str) -> Result<CompetitionInfo, KaggleError> {
        self.call(slug, "GetCompetition", json!({ "competitionName": slug }))
            .await
    }

    /// `ListDataFiles`, every page.
    pub async fn list_data_files(&self, slug: &str) -> Result<Vec<DataFile>, KaggleError> {
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "camelCase", default)]
        struct Page {
            files: Vec<DataFile>,
            next_page_token: Option<String>,
        }
        let mut files = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            // As the official client does, `pageToken` is sent on the first page too, empty.
            let body = json!({
                "competitionName": slug,
                "pageSize": 200,
                "pageToken": token.as_deref().unwrap_or(""),
            });
            let page: Page = self.call(slug, "ListDataFiles", body).await?;
            files.extend(page.files);
            token = page.next_page_token.filter(|t| !t.is_empty());
            if token.is_none() {
                return Ok(files);
            }
        }
        Err(KaggleError::InvalidResponse {
            what: "ListDataFiles".into(),
            reason: format!("more than {MAX_PAGES} pages"),
        })
    }

    /// `DownloadDataFiles`: the whole data set as one zip, streamed into `dest`.
    pub async fn download_data_files(
        &self,
        slug: &str,
        dest: &Path,
    ) -> Result<Download, KaggleError> {
        let body = json!({ "competitionName": slug });
        download::run(self, slug, "DownloadDataFiles", body, dest).await
    }

    /// `DownloadDataFile`: one file, streamed into `dest`.
    pub async fn download_data_file(
        &self,
        slug: &str,
        file_name: &str,
        dest: &Path,
    ) -> Result<Download, KaggleError> {
        let body = json!({ "competitionName": slug, "fileName": file_name });
        download::run(self, slug, "DownloadDataFile", body, dest).await
    }

    fn method_url(&self, service: &str, method: &str) -> Result<url::Url, KaggleError> {
        self.api
            .join(&format!("{service}/{method}"))
            .map_err(|e| KaggleError::Setup {
                reason: format!("cannot build the URL of {method}: {e}"),
            })
    }

    /// The POST that starts every call, with body and credentials.
    fn post(&self, method: &str, body: &Value) -> Result<reqwest::RequestBuilder, KaggleError> {
        let url = self.method_url(COMPETITION_SERVICE, method)?;
        Ok(self.credentials.apply(self.http.post(url).json(body)))
    }

    fn failure(&self, what: &str, slug: &str, response: &ResponseParts<'_>) -> KaggleError {
        Failure {
            what,
            slug,
            origin: self.credentials.origin(),
            status: response.status,
            headers: response.headers,
            body: response.body,
        }
        .into_error()
    }

    /// One JSON call, retried per the policy.
    async fn call<T: DeserializeOwned>(
        &self,
        slug: &str,
        method: &str,
        body: Value,
    ) -> Result<T, KaggleError> {
        self.retry
            .run(method, |_| async {
                let response = self
                    .post(method, &body)?
                    .send()
                    .await
                    .map_err(|e| KaggleError::transport(method, e))?;
                let status = response.status();
                let headers = response.headers().clone();
                let bytes = read_limited(response, method).await?;
                let parts = ResponseParts {
                    status,
                    headers: &headers,
                    body: &bytes,
                };
                if !status.is_success() || error::parse_error_body(&bytes).0.is_some() {
                    return Err(self.failure(method, slug, &parts));
                }
                serde_json::from_slice(&bytes).map_err(|e| KaggleError::InvalidResponse {
                    what: method.to_owned(),
                    reason: e.to_string(),
                })
            })
            .await
    }
}

/// A response's status, headers and (error or JSON) body.
struct ResponseParts<'a> {
    status: reqwest::StatusCode,
    headers: &'a reqwest::header::HeaderMap,
    body: &'a [u8],
}

/// Reads a small body, refusing more than [`MAX_JSON_BYTES`].
async fn read_limited(mut response: reqwest::Response, what: &str) -> Result<Vec<u8>, KaggleError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| KaggleError::transport(what, e))?
    {
        if body.len() + chunk.len() > MAX_JSON_BYTES {
            return Err(KaggleError::InvalidResponse {
                what: what.to_owned(),
                reason: format!("reply larger than {MAX_JSON_BYTES} bytes"),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_urls_follow_kagglesdk() {
        let credentials = Credentials::bearer("t", "test");
        for (base, want) in [
            (
                "https://www.kaggle.com",
                "https://www.kaggle.com/api/v1/s/M",
            ),
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/api/v1/s/M"),
            ("http://proxy/kaggle?x=1", "http://proxy/kaggle/api/v1/s/M"),
            ("https://api.kaggle.com", "https://api.kaggle.com/v1/s/M"),
            (DEFAULT_API_BASE, "https://api.kaggle.com/v1/s/M"),
        ] {
            let client = KaggleClient::new(base, credentials.clone(), RetryPolicy::default())
                .expect("client");
            let url = client.method_url("s", "M").expect("url");
            assert_eq!(url.as_str(), want, "{base}");
        }
        for bad in ["ftp://x", "not a url", "mailto:a@b"] {
            assert!(KaggleClient::new(bad, credentials.clone(), RetryPolicy::default()).is_err());
        }
    }
}
