//! What can go wrong talking to Kaggle, sorted into "wait and retry" and "stop and tell".
//!
//! The split matters because a job must not hammer Kaggle over a missing rules acceptance, and
//! must not give up on a 503. Each variant carries what the user needs to act: the rules page
//! for a 403, the credential source for a 401, the slug for a 404.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

/// An error from the Kaggle API or the download that follows it.
#[derive(Debug, thiserror::Error)]
pub enum KaggleError {
    /// HTTP 401: the credentials were refused. Abort.
    #[error(
        "Kaggle refused the credentials from {origin} (HTTP 401: {message}); check your \
         credentials (KAGGLE_API_TOKEN, KAGGLE_USERNAME/KAGGLE_KEY or kaggle.json)"
    )]
    Unauthorized {
        /// Where the credentials came from.
        origin: String,
        /// Kaggle's message.
        message: String,
    },
    /// HTTP 403 about the competition's rules. Abort.
    #[error(
        "you have not accepted the rules of the competition {slug:?}: accept them at \
         https://www.kaggle.com/competitions/{slug}/rules and try again (Kaggle said: {message})"
    )]
    RulesNotAccepted {
        /// The competition.
        slug: String,
        /// Kaggle's message.
        message: String,
    },
    /// Any other HTTP 403. Abort.
    #[error("Kaggle forbids access to the competition {slug:?} (HTTP 403: {message})")]
    Forbidden {
        /// The competition.
        slug: String,
        /// Kaggle's message.
        message: String,
    },
    /// HTTP 404: no such competition (or file). Abort.
    #[error(
        "unknown competition {slug:?}: Kaggle has no such competition or file (HTTP 404: \
         {message}); check the URL"
    )]
    NotFound {
        /// The competition.
        slug: String,
        /// Kaggle's message.
        message: String,
    },
    /// HTTP 429 or 5xx (also 408): Kaggle is busy. Retry after the delay it asks for.
    #[error("Kaggle is unavailable for now ({what}: HTTP {status}: {message})")]
    Unavailable {
        /// The call.
        what: String,
        status: u16,
        /// Kaggle's message.
        message: String,
        /// The `Retry-After` delay, when Kaggle sent one.
        retry_after: Option<Duration>,
    },
    /// Any other unexpected status. Abort.
    #[error("{what} failed: HTTP {status}: {message}")]
    Http {
        /// The call.
        what: String,
        status: u16,
        /// Kaggle's message.
        message: String,
    },
    /// The connection failed, timed out or dropped mid-body. Retry.
    #[error("network error during {what}: {source}")]
    Transport {
        /// The call.
        what: String,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// The body ended before `Content-Length` bytes arrived, or went past them. Retry.
    #[error("{what}: received {got} bytes where {expected} were announced")]
    Incomplete {
        /// The call.
        what: String,
        /// Bytes announced.
        expected: u64,
        /// Bytes received.
        got: u64,
    },
    /// Kaggle answered something we cannot understand. Abort.
    #[error("{what}: unexpected response from Kaggle: {reason}")]
    InvalidResponse {
        /// The call.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// Writing the download failed. Abort.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The client could not be built (bad base URL, TLS set-up). Abort.
    #[error("cannot set up the Kaggle client: {reason}")]
    Setup {
        /// What is wrong.
        reason: String,
    },
    /// A retryable error persisted through every attempt.
    #[error("{what} still failing after {attempts} attempts: {source}")]
    Exhausted {
        /// The call.
        what: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last error.
        #[source]
        source: Box<KaggleError>,
    },
}

impl KaggleError {
    /// Whether the same call may succeed later. For [`KaggleError::Exhausted`] this is `true`
    /// (the cause is transient) although this call already retried.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Unavailable { .. }
            | Self::Transport { .. }
            | Self::Incomplete { .. }
            | Self::Exhausted { .. } => true,
            Self::Unauthorized { .. }
            | Self::RulesNotAccepted { .. }
            | Self::Forbidden { .. }
            | Self::NotFound { .. }
            | Self::Http { .. }
            | Self::InvalidResponse { .. }
            | Self::Io { .. }
            | Self::Setup { .. } => false,
        }
    }

    /// Whether the failure is the server's or the network's (busy, 5xx, dropped, a reply we
    /// cannot read), not a refusal of these credentials or this competition (401, 403, 404):
    /// after such a failure of an optional call, the job can go on without its answer.
    pub fn is_server_side(&self) -> bool {
        match self {
            Self::Unavailable { .. }
            | Self::Transport { .. }
            | Self::Incomplete { .. }
            | Self::InvalidResponse { .. } => true,
            Self::Http { status, .. } => *status >= 500,
            Self::Exhausted { source, .. } => source.is_server_side(),
            Self::Unauthorized { .. }
            | Self::RulesNotAccepted { .. }
            | Self::Forbidden { .. }
            | Self::NotFound { .. }
            | Self::Io { .. }
            | Self::Setup { .. } => false,
        }
    }

    /// The delay the server asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A network error, without its URL: signed download URLs carry credentials.
    pub(super) fn transport(what: &str, source: reqwest::Error) -> KaggleError {
        KaggleError::Transport {
            what: what.to_owned(),
            source: source.without_url(),
        }
    }

    pub(super) fn io(context: String, source: std::io::Error) -> KaggleError {
        KaggleError::Io { context, source }
    }
}

/// What an error response said, and the context to classify it.
pub(super) struct Failure<'a> {
    pub what: &'a str,
    pub slug: &'a str,
    pub origin: &'a str,
    pub status: StatusCode,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

impl Failure<'_> {
    /// Classifies an error response. `code` from a JSON body `{"code", "message"}` wins over
    /// the HTTP status, as in the official client.
    pub fn into_error(self) -> KaggleError {
        let (code, message) = parse_error_body(self.body);
        let status = code.unwrap_or(self.status.as_u16());
        let slug = self.slug.to_owned();
        match status {
            401 => KaggleError::Unauthorized {
                origin: self.origin.to_owned(),
                message,
            },
            403 if message.to_ascii_lowercase().contains("rule") => {
                KaggleError::RulesNotAccepted { slug, message }
            }
            403 => KaggleError::Forbidden { slug, message },
            404 => KaggleError::NotFound { slug, message },
            408 | 429 | 500..=599 => KaggleError::Unavailable {
                what: self.what.to_owned(),
                status,
                message,
                retry_after: super::retry::retry_after(self.headers),
            },
            _ => KaggleError::Http {
                what: self.what.to_owned(),
                status,
                message,
            },
        }
    }
}

/// `(code, message)` from a Kaggle error body; a short text excerpt when it is not JSON.
pub(super) fn parse_error_body(body: &[u8]) -> (Option<u16>, String) {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        code: Option<u16>,
        message: Option<String>,
    }
    if let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body) {
        let code = parsed.code.filter(|c| *c >= 400);
        if let Some(message) = parsed.message {
            return (code, excerpt(&message));
        }
        return (code, "(no message)".into());
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        (None, "(empty body)".into())
    } else {
        (None, excerpt(text))
    }
}

fn excerpt(text: &str) -> String {
    const KEEP: usize = 300;
    match text.char_indices().nth(KEEP) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}
