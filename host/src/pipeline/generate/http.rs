//! HTTP plumbing shared by the LLM generators: one client with time-outs, bounded retries with
//! backoff that honours `retry-after`, bounded reply bodies, and the mapping of failures to
//! [`GenerateError`].
//!
//! Providers fail in the same few ways (rate limits, overload, bad keys), so the policy lives
//! here once: 408, 409, 429, 5xx and connection errors are retried and end as
//! [`GenerateError::Retryable`]; any other non-success status aborts at once with the
//! provider's own message and a hint at the setting to check. Keys go out in headers marked
//! sensitive and are never logged.

use std::error::Error as StdError;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Response, StatusCode};
use serde_json::Value;
use url::Url;

use super::GenerateError;
use super::config::{ConfigError, HttpConfig};

/// The token count at `pointer` in a reply's JSON: 0 when it is missing or not a count.
pub(crate) fn token_count(reply: &Value, pointer: &str) -> u64 {
    reply.pointer(pointer).and_then(Value::as_u64).unwrap_or(0)
}

/// Error messages quoted from a provider are cut to this many characters.
const MAX_MESSAGE_CHARS: usize = 600;
/// Error bodies are read up to this many bytes (what is past it is dropped).
const MAX_ERROR_BODY_BYTES: usize = 64 << 10;

/// What a client needs to know about its provider to word its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProviderInfo {
    /// The short name, e.g. `openai`.
    pub name: &'static str,
    /// The variable that holds the key.
    pub key_var: &'static str,
    /// The variable that holds the base URL.
    pub base_var: &'static str,
}

/// A JSON-over-HTTP client for one provider.
#[derive(Debug, Clone)]
pub(crate) struct HttpClient {
    client: reqwest::Client,
    config: HttpConfig,
    provider: ProviderInfo,
}

/// One try's failure: worth another try or not.
enum Failure {
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
    Fatal(GenerateError),
}

impl HttpClient {
    /// Builds the client.
    ///
    /// # Errors
    /// When the settings are out of range or the TLS stack cannot start.
    pub(crate) fn new(provider: ProviderInfo, config: HttpConfig) -> Result<Self, ConfigError> {
        if config.max_attempts == 0 {
            return Err(ConfigError::Invalid {
                var: "max_attempts",
                reason: "at least one attempt is needed".to_owned(),
            });
        }
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .user_agent(concat!("kaggle-solver/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError::Client(error_chain(&e)))?;
        Ok(Self {
            client,
            config,
            provider,
        })
    }

    /// A header value that holds a secret: marked sensitive, so it never shows in `Debug`.
    ///
    /// # Errors
    /// When the secret has characters that cannot go into a header.
    pub(crate) fn secret_header(&self, value: &str) -> Result<HeaderValue, GenerateError> {
        let mut header = HeaderValue::from_str(value).map_err(|_| {
            self.abort(
                ConfigError::BadKey {
                    var: self.provider.key_var,
                }
                .to_string(),
            )
        })?;
        header.set_sensitive(true);
        Ok(header)
    }

    /// POSTs `body` as JSON to `url` and returns the JSON reply, retrying transient failures.
    ///
    /// # Errors
    /// [`GenerateError::Retryable`] when every attempt failed transiently,
    /// [`GenerateError::Abort`] on a refusal or a reply that is not JSON.
    pub(crate) async fn post_json(
        &self,
        url: &Url,
        headers: &HeaderMap,
        body: &Value,
    ) -> Result<Value, GenerateError> {
        let mut attempt = 1;
        loop {
            let failure = match self.try_once(url, headers, body).await {
                Ok(reply) => return Ok(reply),
                Err(failure) => failure,
            };
            let (message, retry_after) = match failure {
                Failure::Fatal(error) => return Err(error),
                Failure::Transient {
                    message,
                    retry_after,
                } => (message, retry_after),
            };
            if attempt >= self.config.max_attempts {
                return Err(GenerateError::Retryable {
                    provider: self.provider.name.to_owned(),
                    message: format!("{message} (gave up after {attempt} attempts)"),
                });
            }
            let wait = match retry_after {
                Some(asked) => asked.min(self.config.max_retry_after),
                None => backoff(&self.config, attempt),
            };
            tracing::warn!(
                provider = self.provider.name,
                attempt,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                %message,
                "LLM request failed; retrying"
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn try_once(
        &self,
        url: &Url,
        headers: &HeaderMap,
        body: &Value,
    ) -> Result<Value, Failure> {
        let shown = redacted(url);
        let sent = self
            .client
            .post(url.clone())
            .headers(headers.clone())
            .json(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) if e.is_builder() => {
                return Err(Failure::Fatal(self.abort(error_chain(&e.without_url()))));
            }
            Err(e) => {
                return Err(Failure::Transient {
                    message: format!(
                        "request to {shown} failed: {}",
                        error_chain(&e.without_url())
                    ),
                    retry_after: None,
                });
            }
        };
        let status = response.status();
        let retry_after = retry_after(response.headers(), SystemTime::now());
        let limit = if status.is_success() {
            self.config.max_body_bytes
        } else {
            MAX_ERROR_BODY_BYTES
        };
        let (bytes, truncated) =
            read_bounded(response, limit)
                .await
                .map_err(|e| Failure::Transient {
                    message: format!(
                        "reading the reply from {shown} failed: {}",
                        error_chain(&e.without_url())
                    ),
                    retry_after: None,
                })?;
        if status.is_success() {
            if truncated {
                return Err(Failure::Fatal(self.abort(format!(
                    "the reply is larger than {} bytes",
                    self.config.max_body_bytes
                ))));
            }
            return serde_json::from_slice(&bytes).map_err(|e| {
                Failure::Fatal(self.abort(format!(
                    "the reply from {shown} is not JSON ({e}): {}",
                    snippet(&String::from_utf8_lossy(&bytes))
                )))
            });
        }
        let message = format!("HTTP {status}: {}", provider_message(&bytes, status));
        if is_retryable(status) {
            return Err(Failure::Transient {
                message,
                retry_after,
            });
        }
        let hint = match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                format!("check {}", self.provider.key_var)
            }
            StatusCode::NOT_FOUND => format!(
                "check the model ({}) and the base URL ({}); the request went to {shown}",
                super::config::MODEL_VAR,
                self.provider.base_var
            ),
            _ => format!(
                "check the model ({}) and its limits",
                super::config::MODEL_VAR
            ),
        };
        Err(Failure::Fatal(self.abort(format!("{message} ({hint})"))))
    }

    fn abort(&self, message: String) -> GenerateError {
        GenerateError::Abort {
            provider: self.provider.name.to_owned(),
            message,
        }
    }
}

/// `url` fit for messages: without a password or query string, where keys sometimes hide.
fn redacted(url: &Url) -> String {
    let mut url = url.clone();
    let _ = url.set_password(None);
    url.set_query(None);
    url.to_string()
}

/// Whether a status is worth another try: time-outs, conflicts, rate limits, server errors.
fn is_retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 409 | 429) || status.is_server_error()
}

/// The wait before retry number `attempt` (1-based): exponential, capped, with jitter that
/// keeps between half and all of it so that clients spread out.
fn backoff(config: &HttpConfig, attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
    let full = config
        .initial_backoff
        .saturating_mul(factor)
        .min(config.max_backoff);
    full.mul_f64(0.5 + fastrand::f64() / 2.0)
}

/// The wait a reply asks for: `retry-after-ms` (OpenAI's), or `retry-after` as seconds or as
/// an HTTP date. Not capped here.
fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok()) {
        return Duration::try_from_secs_f64(ms / 1000.0).ok();
    }
    let value = text(RETRY_AFTER.as_str())?.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).ok();
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Reads at most `limit` bytes of the body; the flag says whether more was left.
async fn read_bounded(
    mut response: Response,
    limit: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit - bytes.len();
        if chunk.len() > room {
            bytes.extend_from_slice(&chunk[..room]);
            return Ok((bytes, true));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok((bytes, false))
}

/// The provider's own words from an error body: `error.message` (OpenAI and Anthropic),
/// `message`, `detail` or `error` as text, else the body itself; cut short.
fn provider_message(body: &[u8], status: StatusCode) -> String {
    let text = String::from_utf8_lossy(body);
    let from_json = serde_json::from_str::<Value>(&text).ok().and_then(|json| {
        [
            json.pointer("/error/message"),
            json.get("message"),
            json.get("detail"),
            json.get("error"),
        ]
        .into_iter()
        .flatten()
        .find_map(|v| v.as_str().map(str::to_owned))
    });
    let message = from_json.unwrap_or_else(|| text.trim().to_owned());
    if message.is_empty() {
        status.canonical_reason().unwrap_or("no message").to_owned()
    } else {
        snippet(&message)
    }
}

/// At most [`MAX_MESSAGE_CHARS`] characters of `text`, marked when cut.
fn snippet(text: &str) -> String {
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// An error and its causes on one line (reqwest's own message omits the interesting part).
fn error_chain(error: &dyn StdError) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    // Unit tests for the HTTP plumbing: which statuses retry, backoff, `retry-after`, provider
    // messages, and sensitive key headers.

    use super::*;

    #[test]
    fn retryable_statuses() {
        for code in [408, 409, 429, 500, 502, 503, 529] {
            assert!(
                is_retryable(StatusCode::from_u16(code).expect("a status")),
                "{code}"
            );
        }
        for code in [400, 401, 403, 404, 413, 422] {
            assert!(
                !is_retryable(StatusCode::from_u16(code).expect("a status")),
                "{code}"
            );
        }
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let config = HttpConfig {
            initial_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(10),
            ..HttpConfig::default()
        };
        for _ in 0..50 {
            let first = backoff(&config, 1);
            assert!(first >= Duration::from_secs(1) && first <= Duration::from_secs(2));
            let third = backoff(&config, 3);
            assert!(third >= Duration::from_secs(4) && third <= Duration::from_secs(8));
            assert!(backoff(&config, 40) <= Duration::from_secs(10));
        }
    }

    type Headers<'a> = &'a [(&'a str, &'a str)];

    #[test]
    fn retry_after_as_seconds_date_or_milliseconds() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let headers = |pairs: Headers<'_>| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(
                    reqwest::header::HeaderName::from_bytes(name.as_bytes())
                        .expect("a header name"),
                    HeaderValue::from_str(value).expect("a header value"),
                );
            }
            map
        };
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        let cases: [(Headers<'_>, Option<Duration>); 6] = [
            (&[("retry-after", "7")], Some(Duration::from_secs(7))),
            (&[("retry-after", "1.5")], Some(Duration::from_millis(1500))),
            (&[("retry-after", &date)], Some(Duration::from_secs(30))),
            (&[("retry-after", &past)], Some(Duration::ZERO)),
            (
                &[("retry-after-ms", "250"), ("retry-after", "9")],
                Some(Duration::from_millis(250)),
            ),
            (&[("retry-after", "soon")], None),
        ];
        for (pairs, want) in cases {
            assert_eq!(retry_after(&headers(pairs), now), want, "{pairs:?}");
        }
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn provider_messages_are_found_and_cut() {
        let openai =
            br#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}"#;
        assert_eq!(
            provider_message(openai, StatusCode::UNAUTHORIZED),
            "Incorrect API key provided"
        );
        let anthropic =
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert_eq!(
            provider_message(anthropic, StatusCode::from_u16(529).expect("a status")),
            "Overloaded"
        );
        assert_eq!(
            provider_message(br#"{"detail":"Not Found"}"#, StatusCode::NOT_FOUND),
            "Not Found"
        );
        assert_eq!(
            provider_message(b"  bad gateway  ", StatusCode::BAD_GATEWAY),
            "bad gateway"
        );
        assert_eq!(
            provider_message(b"", StatusCode::BAD_GATEWAY),
            "Bad Gateway"
        );
        let long = "x".repeat(5000);
        assert_eq!(
            provider_message(long.as_bytes(), StatusCode::BAD_REQUEST)
                .chars()
                .count(),
            MAX_MESSAGE_CHARS + 1
        );
    }

    #[test]
    fn secret_headers_are_sensitive() {
        let provider = ProviderInfo {
            name: "test",
            key_var: "TEST_KEY",
            base_var: "TEST_BASE",
        };
        let client = HttpClient::new(provider, HttpConfig::default()).expect("a client");
        let header = client.secret_header("Bearer sk-secret").expect("a header");
        assert!(header.is_sensitive());
        assert!(!format!("{header:?}").contains("sk-secret"));
        let bad = client
            .secret_header("sk\nsecret")
            .expect_err("a newline is refused");
        assert!(bad.to_string().contains("TEST_KEY"), "{bad}");
        assert!(!bad.to_string().contains("secret\n"));
    }

    #[test]
    fn urls_in_messages_hide_passwords_and_queries() {
        let url =
            Url::parse("https://user:pw@proxy.example/v1/messages?api-key=secret").expect("a URL");
        assert_eq!(redacted(&url), "https://user@proxy.example/v1/messages");
    }
}
