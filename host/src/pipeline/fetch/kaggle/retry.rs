//! Bounded retries with exponential backoff that honour `Retry-After`.
//!
//! Kaggle answers bursts with 429 and has the odd 5xx; a solver that runs unattended must ride
//! those out, but never loop forever, and never retry what will fail again (401, 403, 404).

use std::future::Future;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};

use super::KaggleError;

/// How often and how patiently to retry transient failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// The delay before the first retry; doubled for each later one.
    pub base_delay: Duration,
    /// No single delay is longer, whatever `Retry-After` says.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `retry` (1 for the first retry): the server's
    /// `Retry-After` when given, else exponential backoff with a little jitter; capped at
    /// [`RetryPolicy::max_delay`].
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let delay = match retry_after {
            Some(asked) => asked,
            None => {
                let exp = self
                    .base_delay
                    .saturating_mul(1u32 << retry.saturating_sub(1).min(16));
                exp.saturating_add(jitter(self.base_delay / 4))
            }
        };
        delay.min(self.max_delay)
    }

    /// Runs `op` until it succeeds, fails with a non-retryable error, or has been tried
    /// `max_attempts` times (then [`KaggleError::Exhausted`] wraps the last error). `op` gets
    /// the attempt number, starting at 1.
    pub(crate) async fn run<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T, KaggleError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, KaggleError>>,
    {
        let max = self.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            match op(attempt).await {
                Ok(value) => return Ok(value),
                Err(err) if !err.is_retryable() => return Err(err),
                Err(err) if attempt >= max => {
                    return Err(KaggleError::Exhausted {
                        what: what.to_owned(),
                        attempts: attempt,
                        source: Box::new(err),
                    });
                }
                Err(err) => {
                    let delay = self.delay(attempt, err.retry_after());
                    tracing::warn!(%err, attempt, ?delay, "{what}: retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
            }
        }
    }
}

/// `Retry-After` as seconds or as an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// A small pseudo-random delay so that many jobs do not retry in lockstep.
fn jitter(max: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let max_nanos = max.as_nanos().max(1);
    Duration::from_nanos((u128::from(nanos) % max_nanos) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn delays_follow_retry_after_then_backoff_and_are_capped() {
        let policy = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        };
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(99))),
            Duration::from_secs(2)
        );
        let first = policy.delay(1, None);
        assert!(first >= Duration::from_millis(100) && first < Duration::from_millis(126));
        let third = policy.delay(3, None);
        assert!(third >= Duration::from_millis(400) && third < Duration::from_millis(426));
        assert_eq!(policy.delay(30, None), Duration::from_secs(2));
    }

    #[test]
    fn parses_retry_after_forms() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }
}
