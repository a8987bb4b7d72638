//! What every request passes before a handler sees it: the bound on the query string and,
//! when a token is configured (`KS_API_TOKEN`), the bearer check.
//!
//! The token is compared in constant time over SHA-256 digests, so neither the content nor
//! the length of the configured token leaks through timing. `/healthz` and `/readyz` are
//! exempt so that load balancers and orchestrators can probe without a secret, and so are the
//! dashboard's page and assets, which hold no data.

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ApiError;

/// The longest query string accepted, in bytes (longer ones get `414`).
pub const MAX_QUERY_BYTES: usize = 4096;

/// The bearer token clients must present, kept only as its digest.
#[derive(Clone)]
pub struct ApiToken {
    digest: [u8; 32],
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

impl ApiToken {
    /// The token `secret`; `None` for an empty or blank one (then no auth is required).
    pub fn new(secret: &str) -> Option<Self> {
        let secret = secret.trim();
        (!secret.is_empty()).then(|| Self {
            digest: Sha256::digest(secret.as_bytes()).into(),
        })
    }

    /// Whether `presented` is the token, in constant time.
    pub fn matches(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.digest.ct_eq(&digest).into()
    }
}

/// Refuses over-long query strings and, if `token` is set, requests without it.
pub(crate) async fn guard(
    State(token): State<Option<ApiToken>>,
    request: Request,
    next: Next,
) -> Response {
    let query = request.uri().query().map_or(0, str::len);
    if query > MAX_QUERY_BYTES {
        return ApiError::client(
            StatusCode::URI_TOO_LONG,
            "query_too_long",
            format!("the query string is {query} bytes, over the {MAX_QUERY_BYTES}-byte limit"),
        )
        .into_response();
    }
    if let Some(token) = &token
        && !matches!(request.uri().path(), "/healthz" | "/readyz")
        && !super::dashboard::is_public(request.method(), request.uri().path())
    {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !presented.is_some_and(|p| token.matches(p.trim())) {
            let mut response = ApiError::client(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this server requires `Authorization: Bearer <token>` (the value of its \
                 KS_API_TOKEN)",
            )
            .into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return response;
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_exactly_and_blank_means_none() {
        let token = ApiToken::new(" s3cret ").expect("a token");
        assert!(token.matches("s3cret"));
        assert!(!token.matches("s3cre"));
        assert!(!token.matches("s3cret2"));
        assert!(!token.matches(""));
        assert!(ApiToken::new("  ").is_none());
        assert!(!format!("{token:?}").contains("s3cret"));
    }
}
