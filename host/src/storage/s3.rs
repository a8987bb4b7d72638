//! Submissions in an S3-compatible object store: `s3://BUCKET/PREFIX/<key>/submission.csv`,
//! through the `object_store` crate. Configured as the AWS tools are, by `AWS_ENDPOINT_URL`,
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION` and `AWS_ALLOW_HTTP` (for a
//! plain-http endpoint), read through an injected lookup so a test or an embedding program
//! can give its own.
//!
//! An S3 PUT is atomic (an object appears whole or not at all), so a put needs no temporary
//! name. The client retries a failed request a few times within seconds only: a longer outage
//! is the worker's to retry, as an infrastructure failure, so a job waits it out without
//! holding a request open. The connection set-up here is shared with the competition mirror
//! (`KS_COMPETITIONS_URL`), which reads objects the same way.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, PutPayload, RetryConfig};

use super::{
    StoreError, StoreKind, StoredSubmission, SubmissionStore, SubmissionStream, check_key,
};

/// The variables read to reach the store (those the AWS tools read), besides the URL.
pub const AWS_VARIABLES: &[&str] = &[
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ALLOW_HTTP",
    "AWS_VIRTUAL_HOSTED_STYLE_REQUEST",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_ENDPOINT_URL_STS",
];

/// How long connecting to the store may take before a request fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one request may take, body included (a competition file read from a mirror is
/// the largest).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// A bucket and a prefix in it, as `s3://BUCKET/PREFIX` names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    /// The bucket.
    pub bucket: String,
    /// The prefix inside it, without slashes at either end (may be empty).
    pub prefix: String,
}

impl S3Location {
    /// Parses `s3://BUCKET[/PREFIX]`. The bucket is S3's bucket name (3 to 63 lowercase
    /// letters, digits, `-` and `.`); the prefix's segments are plain names (no `.` or `..`,
    /// no empty segment).
    ///
    /// # Errors
    /// [`StoreError::InvalidUrl`] saying what is wrong.
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let invalid = |reason: &str| StoreError::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| invalid("it must start with s3://"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        if !bucket_ok {
            return Err(invalid(
                "the bucket must be 3 to 63 lowercase letters, digits, '-' or '.'",
            ));
        }
        let prefix = prefix.trim_end_matches('/');
        let segments_ok = prefix.is_empty()
            || prefix.split('/').all(|s| {
                !s.is_empty()
                    && s != "."
                    && s != ".."
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            });
        if !segments_ok {
            return Err(invalid(
                "the prefix's segments must be letters, digits, '-', '_' or '.' (not . or ..)",
            ));
        }
        Ok(Self {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }

    /// The object path of `rest` (slash-separated) under the prefix.
    pub fn path(&self, rest: &str) -> ObjectPath {
        let full = match (self.prefix.is_empty(), rest.is_empty()) {
            (true, _) => rest.to_owned(),
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}/{rest}", self.prefix),
        };
        ObjectPath::from(full)
    }

    /// `s3://BUCKET/PATH` of an object path.
    pub fn url_of(&self, path: &ObjectPath) -> String {
        format!("s3://{}/{path}", self.bucket)
    }
}

impl std::fmt::Display for S3Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}", self.bucket)?;
        if !self.prefix.is_empty() {
            write!(f, "/{}", self.prefix)?;
        }
        Ok(())
    }
}

/// A client for the location's bucket, configured from the `AWS_*` variables `env` gives.
/// Nothing is contacted yet.
///
/// # Errors
/// [`StoreError::InvalidUrl`] when a variable holds an unusable value.
pub fn client(
    location: &S3Location,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Arc<dyn ObjectStore>, StoreError> {
    let options = ClientOptions::new()
        .with_connect_timeout(CONNECT_TIMEOUT)
        .with_timeout(REQUEST_TIMEOUT);
    let retry = RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: 3,
        retry_timeout: Duration::from_secs(10),
    };
    let mut builder = AmazonS3Builder::new()
        .with_client_options(options)
        .with_retry(retry)
        .with_bucket_name(&location.bucket);
    for name in AWS_VARIABLES {
        if let Some(value) = env(name).filter(|v| !v.is_empty()) {
            let key: AmazonS3ConfigKey =
                name.to_ascii_lowercase()
                    .parse()
                    .map_err(|e| StoreError::InvalidUrl {
                        url: location.to_string(),
                        reason: format!("{name}: {e}"),
                    })?;
            builder = builder.with_config(key, value);
        }
    }
    let store = builder.build().map_err(|e| StoreError::InvalidUrl {
        url: location.to_string(),
        reason: e.to_string(),
    })?;
    Ok(Arc::new(store))
}

/// An object store error as a store error: refused credentials apart from the rest.
pub fn classify(context: String, source: object_store::Error) -> StoreError {
    if refused(&source) {
        StoreError::Refused { context, source }
    } else {
        StoreError::Unavailable { context, source }
    }
}

/// Whether the server answered 401 or 403. Reads and heads say so in the error's variant; a
/// listing's refusal comes wrapped in a generic error whose chain only names the status, in
/// the retry layer's fixed wording ("status code: 403 Forbidden").
fn refused(error: &object_store::Error) -> bool {
    matches!(
        error,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    ) || answered(error, &[401, 403])
}

/// Whether some cause in the chain says the server answered one of `statuses`.
fn answered(error: &object_store::Error, statuses: &[u16]) -> bool {
    let mut cause: Option<&dyn std::error::Error> = Some(error);
    while let Some(now) = cause {
        let text = now.to_string();
        if statuses
            .iter()
            .any(|s| text.contains(&format!("status code: {s} ")))
        {
            return true;
        }
        cause = now.source();
    }
    false
}

/// Submissions as objects under `s3://BUCKET/PREFIX/`.
#[derive(Clone)]
pub struct S3Store {
    location: S3Location,
    store: Arc<dyn ObjectStore>,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store")
            .field("location", &self.location.to_string())
            .finish_non_exhaustive()
    }
}

impl S3Store {
    /// A store at `location`, configured from the `AWS_*` variables `env` gives. Nothing is
    /// contacted: [`SubmissionStore::check`] tells whether the store answers.
    ///
    /// # Errors
    /// [`StoreError::InvalidUrl`] when a variable holds an unusable value.
    pub fn connect(
        location: S3Location,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, StoreError> {
        let store = client(&location, env)?;
        Ok(Self { location, store })
    }

    /// Where the store is.
    pub fn location(&self) -> &S3Location {
        &self.location
    }

    fn object(&self, key: &str) -> Result<ObjectPath, StoreError> {
        check_key(key)?;
        Ok(self.location.path(&format!("{key}/submission.csv")))
    }
}

#[async_trait]
impl SubmissionStore for S3Store {
    async fn put(&self, key: &str, contents: &[u8]) -> Result<StoredSubmission, StoreError> {
        let path = self.object(key)?;
        let url = self.location.url_of(&path);
        let payload = PutPayload::from(bytes::Bytes::copy_from_slice(contents));
        self.store
            .put(&path, payload)
            .await
            .map_err(|e| classify(format!("storing {url}"), e))?;
        Ok(StoredSubmission {
            source: StoreKind::S3,
            path: url,
        })
    }

    async fn get(&self, key: &str) -> Result<Option<SubmissionStream>, StoreError> {
        let path = self.object(key)?;
        let url = self.location.url_of(&path);
        let got = match self.store.get(&path).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(classify(format!("reading {url}"), e)),
        };
        let size = got.meta.size;
        let body = got
            .into_stream()
            .map_err(move |e| classify(format!("reading {url}"), e));
        Ok(Some(SubmissionStream {
            size,
            body: Box::pin(body),
        }))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.object(key)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(classify(
                format!("deleting {}", self.location.url_of(&path)),
                e,
            )),
        }
    }

    /// Lists a prefix that holds nothing: an answer proves the store answers, the bucket
    /// exists and the credentials are accepted, which a wrong secret does not.
    async fn check(&self) -> Result<(), StoreError> {
        use futures_util::StreamExt;
        let probe = self.location.path(".ks-readiness-probe");
        match self.store.list(Some(&probe)).next().await {
            None | Some(Ok(_)) => Ok(()),
            Some(Err(e))
                if matches!(e, object_store::Error::NotFound { .. }) || answered(&e, &[404]) =>
            {
                Err(StoreError::Unavailable {
                    context: format!("listing {} (does the bucket exist?)", self.location),
                    source: e,
                })
            }
            Some(Err(e)) => Err(classify(format!("reaching {}", self.location), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bucket_and_prefix() {
        let at = S3Location::parse("s3://ks-bucket/runs/prod/").expect("parses");
        assert_eq!(at.bucket, "ks-bucket");
        assert_eq!(at.prefix, "runs/prod");
        assert_eq!(at.to_string(), "s3://ks-bucket/runs/prod");
        assert_eq!(
            at.url_of(&at.path("job/submission.csv")),
            "s3://ks-bucket/runs/prod/job/submission.csv"
        );
        let bare = S3Location::parse("s3://bucket").expect("no prefix");
        assert_eq!(bare.prefix, "");
        assert_eq!(bare.url_of(&bare.path("k/x")), "s3://bucket/k/x");
        for bad in [
            "s3://",
            "s3://ab",
            "s3://Upper/x",
            "s3://bucket/a//b",
            "s3://bucket/../x",
            "s3://bucket/a b",
            "http://bucket/x",
        ] {
            assert!(S3Location::parse(bad).is_err(), "{bad}");
        }
    }
}
