//! Settings shared by the LLM generators: the API key type that never prints itself, the HTTP
//! time-outs and retry budget, and reading settings from an injectable environment.
//!
//! Keys travel in config structs that get logged with `{:?}`; [`ApiKey`]'s `Debug` is redacted
//! so that no log line, panic message or test failure can show one. Settings are read through a
//! lookup function rather than `std::env` directly, so tests never touch the process
//! environment.

use std::fmt;
use std::time::Duration;

use url::Url;

/// The variable that names the model, for every provider.
pub const MODEL_VAR: &str = "KS_MODEL";

/// A provider's API key. Its `Debug` never shows the key, and it has no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key itself, for the one place that puts it in a request header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl From<String> for ApiKey {
    fn from(key: String) -> Self {
        Self(key)
    }
}

impl From<&str> for ApiKey {
    fn from(key: &str) -> Self {
        Self(key.to_owned())
    }
}

/// Time-outs, retries and size caps for the calls to a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// How long to wait for the TCP and TLS connection.
    pub connect_timeout: Duration,
    /// How long one whole request may take, reply included. LLM replies that write a long
    /// script take minutes, and the reply arrives all at once.
    pub timeout: Duration,
    /// How many times a request is sent in all, first try included (at least 1).
    pub max_attempts: u32,
    /// The wait before the first retry; it doubles with each retry, with jitter.
    pub initial_backoff: Duration,
    /// The longest computed wait between tries.
    pub max_backoff: Duration,
    /// The longest wait a provider's `retry-after` may ask for.
    pub max_retry_after: Duration,
    /// The largest reply body read; a bigger successful reply is an error.
    pub max_body_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(15),
            timeout: Duration::from_secs(300),
            max_attempts: 4,
            initial_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
            max_body_bytes: 8 << 20,
        }
    }
}

/// Why a generator's settings are unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("{var} is not set: {why}")]
    Missing {
        /// The variable.
        var: &'static str,
        /// What it is for.
        why: &'static str,
    },
    /// A URL that does not parse, or is not http(s).
    #[error("{var} is not a usable http(s) URL ({value:?}): {reason}")]
    BadUrl {
        /// The variable (or field) that held it.
        var: &'static str,
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// A key with characters that cannot go into an HTTP header (such as a newline).
    #[error("the key in {var} has characters that cannot go into an HTTP header")]
    BadKey {
        /// The variable that holds the key.
        var: &'static str,
    },
    /// A value that is not what it should be.
    #[error("{var} is invalid: {reason}")]
    Invalid {
        /// The variable or field.
        var: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The HTTP client could not be built (e.g. no TLS roots).
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// Looks a variable up, treating empty or blank values as unset and trimming the rest.
pub(crate) fn lookup_var(lookup: &dyn Fn(&str) -> Option<String>, var: &str) -> Option<String> {
    lookup(var)
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// Parses a base URL, checking that it is http or https.
///
/// # Errors
/// When it does not parse or has another scheme.
pub(crate) fn parse_base_url(var: &'static str, value: &str) -> Result<Url, ConfigError> {
    let bad = |reason: String| ConfigError::BadUrl {
        var,
        value: value.to_owned(),
        reason,
    };
    let url = Url::parse(value).map_err(|e| bad(e.to_string()))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(bad(format!("the scheme is {other:?}, not http or https"))),
    }
}

/// `base` with `suffix` appended to its path, slashes merged; the query string is kept.
pub(crate) fn with_path_suffix(base: &Url, suffix: &str) -> Url {
    let mut url = base.clone();
    let path = base.path().trim_end_matches('/');
    url.set_path(&format!("{path}/{}", suffix.trim_start_matches('/')));
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_debug_is_redacted() {
        let key = ApiKey::new("sk-very-secret");
        assert_eq!(format!("{key:?}"), "ApiKey(<redacted>)");
        assert_eq!(
            format!("{:?}", Some(key.clone())),
            "Some(ApiKey(<redacted>))"
        );
        assert_eq!(key.expose(), "sk-very-secret");
    }

    #[test]
    fn blank_variables_count_as_unset() {
        let lookup = |name: &str| match name {
            "EMPTY" => Some("  ".to_owned()),
            "SET" => Some(" value\n".to_owned()),
            _ => None,
        };
        assert_eq!(lookup_var(&lookup, "EMPTY"), None);
        assert_eq!(lookup_var(&lookup, "UNSET"), None);
        assert_eq!(lookup_var(&lookup, "SET").as_deref(), Some("value"));
    }

    #[test]
    fn base_urls_must_be_http() {
        assert!(parse_base_url("X", "https://api.example.com/v1").is_ok());
        assert!(parse_base_url("X", "http://127.0.0.1:8080").is_ok());
        assert!(matches!(
            parse_base_url("X", "ftp://example.com"),
            Err(ConfigError::BadUrl { var: "X", .. })
        ));
        assert!(parse_base_url("X", "not a url").is_err());
    }

    #[test]
    fn path_suffixes_merge_slashes_and_keep_queries() {
        let cases = [
            (
                "https://a.example/v1",
                "https://a.example/v1/chat/completions",
            ),
            (
                "https://a.example/v1/",
                "https://a.example/v1/chat/completions",
            ),
            ("https://a.example", "https://a.example/chat/completions"),
            (
                "https://a.example/x?api-version=1",
                "https://a.example/x/chat/completions?api-version=1",
            ),
        ];
        for (base, want) in cases {
            let base = Url::parse(base).expect("a valid test URL");
            assert_eq!(with_path_suffix(&base, "/chat/completions").as_str(), want);
        }
    }
}
