//! The API's one error type and how it becomes a response.
//!
//! A client error (4xx) says exactly what is wrong and what to do; a server error (5xx) is
//! logged with its cause and answered with a generic message, so internals (paths, Redis
//! replies) never reach clients. Every error body is `{"error": code, "detail": text}`. A full
//! queue is the one answer that tells the client when to come back (`429` with `Retry-After`).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ks_policies::PolicyError;

use super::SubmitError;
use super::types::ErrorBody;
use crate::pipeline::fetch::SourceError;
use crate::queue::QueueError;
use crate::storage::StoreError;

/// The seconds a client is told to wait when the queue is full: long enough for workers to
/// take some jobs off the line (most run for tens of seconds), short enough not to idle them.
pub const QUEUE_FULL_RETRY_AFTER_SECS: u64 = 30;

/// Why a request was not served.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The client must change the request (4xx).
    #[error("{status}: {code}: {detail}")]
    Client {
        /// The 4xx status.
        status: StatusCode,
        /// A stable code for programs, e.g. `invalid_url`.
        code: &'static str,
        /// What is wrong and what to do.
        detail: String,
    },
    /// The queue failed; answered 503 (unavailable) or 500 (corrupt record).
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The submission store failed; answered 503 (unreachable) or 500.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else that is the server's fault; answered 500.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A client error with `status`, `code` and a detailed message.
    pub fn client(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self::Client {
            status,
            code,
            detail: detail.into(),
        }
    }

    /// `400` with `code`.
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::client(StatusCode::BAD_REQUEST, code, detail)
    }

    /// `404 not_found`.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::client(StatusCode::NOT_FOUND, "not_found", detail)
    }

    /// The status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Client { status, .. } => *status,
            Self::Queue(QueueError::Full { .. }) => StatusCode::TOO_MANY_REQUESTS,
            Self::Queue(e) if e.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
            Self::Store(e) if e.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
            Self::Queue(_) | Self::Store(_) | Self::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

impl From<SourceError> for ApiError {
    fn from(error: SourceError) -> Self {
        let code = match &error {
            SourceError::TooLong { .. } => "url_too_long",
            SourceError::InvalidUrl { .. } | SourceError::InvalidSlug { .. } => "invalid_url",
            SourceError::LocalNotAllowed { .. } | SourceError::LocalUnusable { .. } => {
                "local_path_not_allowed"
            }
        };
        Self::bad_request(code, error.to_string())
    }
}

impl From<PolicyError> for ApiError {
    fn from(error: PolicyError) -> Self {
        match error {
            PolicyError::UnknownPreset { .. } | PolicyError::InvalidName { .. } => {
                Self::bad_request("unknown_policy", error.to_string())
            }
            // A preset that exists but does not load is the operator's problem, not the client's.
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<SubmitError> for ApiError {
    fn from(error: SubmitError) -> Self {
        match error {
            SubmitError::Source(e) => e.into(),
            SubmitError::Policy(e) => e.into(),
            SubmitError::NotAllowed { .. } => {
                Self::bad_request("policy_not_allowed", error.to_string())
            }
            SubmitError::Overrides(e @ PolicyError::RaisesCap { .. }) => {
                Self::bad_request("raises_cap", e.to_string())
            }
            SubmitError::Overrides(e) => Self::bad_request("invalid_limit", e.to_string()),
            SubmitError::Queue(e) => e.into(),
            SubmitError::Internal(e) => Self::Internal(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut retry_after = None;
        let (code, detail) = match self {
            Self::Client { code, detail, .. } => (code, detail),
            Self::Queue(error @ QueueError::Full { .. }) => {
                retry_after = Some(QUEUE_FULL_RETRY_AFTER_SECS);
                let detail = format!(
                    "{error} (this server's KS_MAX_QUEUED); nothing was enqueued: submit again \
                     after the Retry-After header's {QUEUE_FULL_RETRY_AFTER_SECS} seconds"
                );
                ("queue_full", detail)
            }
            Self::Queue(error) if error.is_retryable() => {
                tracing::error!(%error, "queue unavailable");
                (
                    "unavailable",
                    "the job queue is unavailable; retry in a few seconds".to_owned(),
                )
            }
            Self::Store(error) if error.is_retryable() => {
                tracing::error!(%error, "submission store unavailable");
                (
                    "unavailable",
                    "the submission store is unavailable; retry in a few seconds".to_owned(),
                )
            }
            other => {
                tracing::error!(error = %other, "internal error");
                ("internal", "internal server error".to_owned())
            }
        };
        let body = ErrorBody {
            error: code.to_owned(),
            detail,
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn server_errors_are_generic_and_client_errors_detailed() {
        let body = |error: ApiError| async move {
            let response = error.into_response();
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
                .await
                .expect("body");
            let body: ErrorBody = serde_json::from_slice(&bytes).expect("json");
            (status, body)
        };
        let (status, internal) = body(ApiError::Internal("/secret/path exploded".into())).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!internal.detail.contains("secret"), "{internal:?}");
        let (status, down) = body(QueueError::Unavailable("redis at 10.0.0.1".into()).into()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!down.detail.contains("10.0.0.1"), "{down:?}");
        let (status, client) = body(ApiError::bad_request("invalid_url", "not kaggle")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(client.error, "invalid_url");
        assert_eq!(client.detail, "not kaggle");
    }

    #[tokio::test]
    async fn a_full_queue_answers_429_with_retry_after() {
        let response = ApiError::from(QueueError::Full { limit: 7 }).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            response.headers().get(header::RETRY_AFTER),
            Some(&HeaderValue::from(QUEUE_FULL_RETRY_AFTER_SECS))
        );
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("body");
        let body: ErrorBody = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(body.error, "queue_full");
        assert!(
            body.detail.contains("7 jobs are already waiting"),
            "{body:?}"
        );
        // Other errors name no time to come back.
        let other = ApiError::bad_request("invalid_url", "x").into_response();
        assert!(other.headers().get(header::RETRY_AFTER).is_none());
    }
}
