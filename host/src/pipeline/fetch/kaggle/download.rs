//! Streaming a Kaggle download to disk, resuming after a dropped connection.
//!
//! Competition zips run to gigabytes, so the body goes straight to a file chunk by chunk and is
//! never held in memory. When the connection drops mid-body, the next attempt asks the final
//! (post-redirect) URL for the rest with `Range` and `If-Range`; a server that ignores the
//! range (200) or refuses it gets a fresh start. The byte count is checked against
//! `Content-Length` (or `Content-Range`'s total) before the download counts as done.
//!
//! A fetch that runs out of retries leaves its partial file and a small note beside it (the
//! file's validator and length, never its signed URL): the next fetch of the same
//! competition (a job's retry, a restarted worker) asks for a fresh URL and, when the server
//! still serves the same file, continues from the partial one instead of starting over.

use std::path::Path;

use reqwest::StatusCode;
use reqwest::header::{
    CONTENT_RANGE, CONTENT_TYPE, ETAG, HeaderMap, IF_RANGE, LAST_MODIFIED, RANGE,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use super::{DownloadProgress, KaggleClient, KaggleError, ResponseParts, read_limited};

/// A finished download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    /// Bytes written.
    pub bytes: u64,
    /// The URL the file came from after redirects, without its query (signed URLs carry
    /// credentials there).
    pub url: url::Url,
    /// How many times the download was resumed with `Range`.
    pub resumes: u32,
}

/// Where an interrupted download can continue.
struct Partial {
    url: url::Url,
    validator: Option<String>,
    total: Option<u64>,
    send_credentials: bool,
}

/// What a partial file beside it was a part of: kept across fetches, so that the next one can
/// tell whether the server still serves the same file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ResumeNote {
    validator: String,
    total: u64,
}

/// The note's path beside `dest`.
fn note_path(dest: &Path) -> std::path::PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".resume");
    dest.with_file_name(name)
}

/// The note left by an earlier fetch, if it reads.
async fn read_note(dest: &Path) -> Option<ResumeNote> {
    let bytes = tokio::fs::read(note_path(dest)).await.ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Calls `method` and streams the file it redirects to into `dest`, with retries.
pub(super) async fn run(
    client: &KaggleClient,
    slug: &str,
    method: &str,
    body: Value,
    dest: &Path,
) -> Result<Download, KaggleError> {
    let max = client.retry.max_attempts.max(1);
    let mut partial = None;
    let mut resumes = 0;
    let mut attempt = 1;
    loop {
        let result = once(
            client,
            slug,
            method,
            &body,
            dest,
            &mut partial,
            &mut resumes,
        )
        .await;
        match result {
            Ok(bytes) => {
                // The file is whole: nothing is left to resume.
                let _ = tokio::fs::remove_file(note_path(dest)).await;
                let mut url = partial.map(|p| p.url).unwrap_or_else(|| client.api.clone());
                url.set_query(None);
                return Ok(Download {
                    bytes,
                    url,
                    resumes,
                });
            }
            Err(err) if !err.is_retryable() => return Err(err),
            Err(err) if attempt >= max => {
                return Err(KaggleError::Exhausted {
                    what: method.to_owned(),
                    attempts: attempt,
                    source: Box::new(err),
                });
            }
            Err(err) => {
                let delay = client.retry.delay(attempt, err.retry_after());
                tracing::warn!(%err, attempt, ?delay, "{method}: retrying the download");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
        }
    }
}

/// One attempt: resume if possible, else start over with the POST.
async fn once(
    client: &KaggleClient,
    slug: &str,
    method: &str,
    body: &Value,
    dest: &Path,
    partial: &mut Option<Partial>,
    resumes: &mut u32,
) -> Result<u64, KaggleError> {
    let have = match tokio::fs::metadata(dest).await {
        Ok(meta) => meta.len(),
        Err(_) => 0,
    };
    if let Some(p) = partial.as_mut().filter(|_| have > 0)
        && let Some(resumed) = resume(client, p, have, dest, method, resumes).await?
    {
        return Ok(resumed);
    }
    *partial = None;
    let response = client
        .post(method, body)?
        .send()
        .await
        .map_err(|e| KaggleError::transport(method, e))?;
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    if !status.is_success() || is_json {
        let headers = response.headers().clone();
        let bytes = read_limited(response, method).await?;
        let parts = ResponseParts {
            status,
            headers: &headers,
            body: &bytes,
        };
        if status.is_success() && super::error::parse_error_body(&bytes).0.is_none() {
            return Err(KaggleError::InvalidResponse {
                what: method.to_owned(),
                reason: "expected a file, got a JSON reply".into(),
            });
        }
        return Err(client.failure(method, slug, &parts));
    }
    let url = response.url().clone();
    let send_credentials = url.origin() == client.api.origin();
    let validator = validator(response.headers());
    let total = response.content_length();
    *partial = Some(Partial {
        url,
        validator: validator.clone(),
        total,
        send_credentials,
    });
    let note = validator
        .zip(total)
        .map(|(validator, total)| ResumeNote { validator, total });
    // A partial file left by an earlier fetch continues only when the server still serves
    // the very same file; the fresh response stays open meanwhile, so a refused range costs
    // nothing but the request.
    if have > 0
        && let (Some(note), Some(p)) = (note.as_ref(), partial.as_mut())
        && read_note(dest).await.as_ref() == Some(note)
        && have < note.total
        && let Some(resumed) = resume(client, p, have, dest, method, resumes).await?
    {
        return Ok(resumed);
    }
    match &note {
        Some(note) => {
            let json = serde_json::to_vec(note).unwrap_or_default();
            if let Err(error) = tokio::fs::write(note_path(dest), json).await {
                tracing::warn!(%error, "{method}: cannot note the download for a later resume");
            }
        }
        None => {
            let _ = tokio::fs::remove_file(note_path(dest)).await;
        }
    }
    stream(response, dest, 0, total, method, client.progress.as_ref()).await
}

/// Asks `p`'s URL for the bytes after `have`; a server that ignores the range sends the whole
/// file instead, which is taken from the start; `None` when it refuses (the caller starts
/// over with a fresh request).
async fn resume(
    client: &KaggleClient,
    p: &mut Partial,
    have: u64,
    dest: &Path,
    method: &str,
    resumes: &mut u32,
) -> Result<Option<u64>, KaggleError> {
    let mut request = client
        .http
        .get(p.url.clone())
        .header(RANGE, format!("bytes={have}-"));
    if let Some(validator) = &p.validator {
        request = request.header(IF_RANGE, validator);
    }
    if p.send_credentials {
        request = client.credentials.apply(request);
    }
    let response = request
        .send()
        .await
        .map_err(|e| KaggleError::transport(method, e))?;
    match response.status() {
        StatusCode::PARTIAL_CONTENT if content_range_start(response.headers()) == Some(have) => {
            *resumes += 1;
            let total = content_range_total(response.headers()).or(p.total);
            tracing::info!(have, ?total, "{method}: resuming the download");
            stream(
                response,
                dest,
                have,
                total,
                method,
                client.progress.as_ref(),
            )
            .await
            .map(Some)
        }
        StatusCode::OK => {
            tracing::info!("{method}: the server ignored the range; starting over");
            p.total = response.content_length();
            let total = p.total;
            stream(response, dest, 0, total, method, client.progress.as_ref())
                .await
                .map(Some)
        }
        status => {
            tracing::info!(%status, "{method}: cannot resume; starting over");
            Ok(None)
        }
    }
}

/// Writes the body to `dest` from offset `from` (0 truncates), checking the total.
async fn stream(
    mut response: reqwest::Response,
    dest: &Path,
    from: u64,
    total: Option<u64>,
    what: &str,
    progress: Option<&DownloadProgress>,
) -> Result<u64, KaggleError> {
    let io = |e| KaggleError::io(format!("writing the download to {}", dest.display()), e);
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(from > 0)
        .truncate(from == 0)
        .open(dest)
        .await
        .map_err(io)?;
    let mut got = from;
    let outcome = loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                got += chunk.len() as u64;
                if let Some(expected) = total.filter(|t| got > *t) {
                    break Err(KaggleError::Incomplete {
                        what: what.to_owned(),
                        expected,
                        got,
                    });
                }
                if let Err(e) = file.write_all(&chunk).await {
                    break Err(io(e));
                }
                if let Some(progress) = progress {
                    progress.report(got, total);
                }
            }
            Ok(None) => break Ok(()),
            Err(e) => break Err(KaggleError::transport(what, e)),
        }
    };
    // Flush even on failure, so that the next attempt resumes from the true length.
    file.flush().await.map_err(io)?;
    file.sync_all().await.map_err(io)?;
    outcome?;
    match total {
        Some(expected) if expected != got => Err(KaggleError::Incomplete {
            what: what.to_owned(),
            expected,
            got,
        }),
        _ => Ok(got),
    }
}

/// A strong `ETag`, else `Last-Modified`: what `If-Range` may carry.
fn validator(headers: &HeaderMap) -> Option<String> {
    let get = |name| {
        headers
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
    };
    get(ETAG)
        .filter(|etag| !etag.starts_with("W/"))
        .or_else(|| get(LAST_MODIFIED))
        .map(str::to_owned)
}

/// `Content-Range: bytes START-END/TOTAL` → `(START, TOTAL)`.
fn content_range(headers: &HeaderMap) -> Option<(u64, Option<u64>)> {
    let value = headers.get(CONTENT_RANGE)?.to_str().ok()?;
    let rest = value.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, _end) = range.split_once('-')?;
    Some((start.trim().parse().ok()?, total.trim().parse().ok()))
}

fn content_range_start(headers: &HeaderMap) -> Option<u64> {
    content_range(headers).map(|(start, _)| start)
}

fn content_range_total(headers: &HeaderMap) -> Option<u64> {
    content_range(headers).and_then(|(_, total)| total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn reads_content_range_and_validators() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_RANGE, HeaderValue::from_static("bytes 100-199/200"));
        assert_eq!(content_range(&headers), Some((100, Some(200))));
        headers.insert(CONTENT_RANGE, HeaderValue::from_static("bytes 5-9/*"));
        assert_eq!(content_range(&headers), Some((5, None)));
        headers.insert(CONTENT_RANGE, HeaderValue::from_static("items 1-2/3"));
        assert_eq!(content_range(&headers), None);

        let mut headers = HeaderMap::new();
        assert_eq!(validator(&headers), None);
        headers.insert(
            LAST_MODIFIED,
            HeaderValue::from_static("Tue, 01 Apr 2025 00:00:00 GMT"),
        );
        headers.insert(ETAG, HeaderValue::from_static("W/\"weak\""));
        assert_eq!(
            validator(&headers).as_deref(),
            Some("Tue, 01 Apr 2025 00:00:00 GMT")
        );
        headers.insert(ETAG, HeaderValue::from_static("\"strong\""));
        assert_eq!(validator(&headers).as_deref(), Some("\"strong\""));
    }
}
