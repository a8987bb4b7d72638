//! `kaggle-solver submit | status | wait | download`: the command line as a client of a
//! remote `serve`, so that a person or a script need not speak HTTP to use one.
//!
//! Every reply is hostile until read: bodies are read up to a cap, and what a server says
//! (its error detail, an event's data) is bounded before it is printed. The token goes out
//! only in the `Authorization` header and never into an error or a line printed. `wait`
//! follows the job's event stream when the server has one and polls `/status` otherwise; its
//! exit code says how the job ended.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use futures_util::StreamExt as _;
use reqwest::{Response, StatusCode};
use serde_json::Value;
use tokio::io::AsyncWriteExt as _;

use super::CliError;
use crate::api::{ErrorBody, RunResponse, StatusResponse, StopResponse};
use crate::queue::JobStatus;
use crate::text::{MESSAGE_CHARS, QUOTED_VALUE_CHARS, head};

/// The largest JSON reply read (status, errors); a submission is streamed, not capped here.
const MAX_REPLY_BYTES: usize = 1 << 20;
/// An event-stream line longer than this is cut (a server could send one without end).
const MAX_EVENT_LINE_BYTES: usize = 64 << 10;
/// How often `wait` asks `/status` when it cannot follow events.
const POLL: Duration = Duration::from_secs(1);

/// Where the server is and how to be let in.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Remote {
    /// The server's base URL (with any path prefix it is mounted under).
    #[arg(long, env = "KS_SERVER", default_value = "http://127.0.0.1:8000")]
    server: String,
    /// The server's bearer token (sent as `Authorization: Bearer`).
    #[arg(long, env = "KS_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
}

/// Why a remote command failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// `--server` is not an http(s) URL.
    #[error("--server {server} is not an http:// or https:// URL")]
    BadServer {
        /// The value given (bounded).
        server: String,
    },
    /// A job id that is not one (the server's ids are UUIDs).
    #[error("{id:?} is not a job id: `submit` prints one, a UUID")]
    BadId {
        /// The value given (bounded).
        id: String,
    },
    /// The server could not be reached or the connection broke.
    #[error(
        "cannot reach the server at {server}: {message}; is `kaggle-solver serve` running there (--server, KS_SERVER)?"
    )]
    Unreachable {
        /// The server.
        server: String,
        /// What went wrong.
        message: String,
    },
    /// The server answered with an error.
    #[error("the server answered {status}: {detail}{hint}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The server's `detail` (bounded), or the body's start.
        detail: String,
        /// What to do, when this side knows.
        hint: &'static str,
    },
    /// The server's answer is not what the API documents.
    #[error("the server's answer is not what the API documents: {0}")]
    BadReply(String),
}

impl Remote {
    fn base(&self) -> Result<url::Url, RemoteError> {
        let bad = || RemoteError::BadServer {
            server: head(&self.server, QUOTED_VALUE_CHARS),
        };
        let mut base = url::Url::parse(self.server.trim()).map_err(|_| bad())?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(bad());
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Ok(base)
    }

    /// The server as errors name it: no user, password or query.
    fn shown(&self) -> String {
        match self.base() {
            Ok(mut url) => {
                let _ = url.set_username("");
                let _ = url.set_password(None);
                url.set_query(None);
                url.to_string()
            }
            Err(_) => head(&self.server, QUOTED_VALUE_CHARS),
        }
    }

    fn client() -> Result<reqwest::Client, CliError> {
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("kaggle-solver/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CliError::Internal(format!("building the HTTP client: {e}")))
    }

    fn url(&self, path: &str) -> Result<url::Url, RemoteError> {
        self.base()?.join(path).map_err(|_| RemoteError::BadServer {
            server: head(&self.server, QUOTED_VALUE_CHARS),
        })
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Response, RemoteError> {
        let request = match self.api_token.as_deref().map(str::trim) {
            Some(token) if !token.is_empty() => request.bearer_auth(token),
            _ => request,
        };
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(self.refused(response).await)
    }

    fn unreachable(&self, error: reqwest::Error) -> RemoteError {
        // reqwest's message names the URL, which holds no token (that is a header).
        let error = error.without_url();
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        RemoteError::Unreachable {
            server: self.shown(),
            message: head(&message, MESSAGE_CHARS),
        }
    }

    async fn refused(&self, response: Response) -> RemoteError {
        let status = response.status();
        let body = read_capped(response, MAX_REPLY_BYTES)
            .await
            .unwrap_or_default();
        let detail = match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(error) => error.detail,
            Err(_) => String::from_utf8_lossy(&body).trim().to_owned(),
        };
        let hint = match status {
            StatusCode::UNAUTHORIZED => "; set KS_API_TOKEN (or --api-token) to the server's token",
            _ => "",
        };
        RemoteError::Refused {
            status: status.as_u16(),
            detail: head(&detail, MESSAGE_CHARS),
            hint,
        }
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, RemoteError> {
        let response = self.send(request).await?;
        let body = read_capped(response, MAX_REPLY_BYTES)
            .await
            .map_err(|e| self.unreachable(e))?;
        serde_json::from_slice(&body).map_err(|e| RemoteError::BadReply(e.to_string()))
    }

    async fn status(
        &self,
        http: &reqwest::Client,
        id: &str,
    ) -> Result<StatusResponse, RemoteError> {
        let url = self.url(&format!("status/{}", path_segment(id)?))?;
        self.json(http.get(url)).await
    }
}

/// A job id as the server gives them, a UUID, so that no id can reach another route.
fn path_segment(id: &str) -> Result<String, RemoteError> {
    uuid::Uuid::parse_str(id.trim())
        .map(|id| id.hyphenated().to_string())
        .map_err(|_| RemoteError::BadId {
            id: head(id, QUOTED_VALUE_CHARS),
        })
}

/// The body up to `cap` bytes (past it is dropped).
async fn read_capped(response: Response, cap: usize) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        let room = cap.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= cap {
            break;
        }
    }
    Ok(body)
}

#[derive(Debug, clap::Args)]
pub(crate) struct SubmitArgs {
    /// The competition: a Kaggle URL, or a folder under the server's competitions folder.
    url: String,
    /// A policy preset the server offers (default: its first).
    #[arg(long)]
    policy: Option<String>,
    #[command(flatten)]
    remote: Remote,
}

impl SubmitArgs {
    pub(crate) async fn run(self) -> Result<ExitCode, CliError> {
        let http = Remote::client()?;
        let mut url = self.remote.url("run")?;
        url.query_pairs_mut().append_pair("url", &self.url);
        if let Some(policy) = &self.policy {
            url.query_pairs_mut().append_pair("policy", policy);
        }
        let accepted: RunResponse = self.remote.json(http.post(url)).await?;
        super::print_json(&accepted)?;
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct JobArgs {
    /// The job's id, as `submit` printed it.
    id: String,
    #[command(flatten)]
    remote: Remote,
}

impl JobArgs {
    /// Prints the job's status as one JSON line.
    pub(crate) async fn status(self) -> Result<ExitCode, CliError> {
        let http = Remote::client()?;
        let status = self.remote.status(&http, &self.id).await?;
        super::print_json(&status)?;
        Ok(ExitCode::SUCCESS)
    }

    /// Asks the job's search to end and keep its best; prints the answer as one JSON line.
    pub(crate) async fn stop(self) -> Result<ExitCode, CliError> {
        let http = Remote::client()?;
        let url = self
            .remote
            .url(&format!("jobs/{}/stop", path_segment(&self.id)?))?;
        let answer: StopResponse = self.remote.json(http.post(url)).await?;
        super::print_json(&answer)?;
        Ok(ExitCode::SUCCESS)
    }

    /// Follows the job to its end; prints its final status as one JSON line on stdout and its
    /// progress on stderr. Exit code 0 when it completed, 1 when it failed.
    pub(crate) async fn wait(self) -> Result<ExitCode, CliError> {
        let http = Remote::client()?;
        let followed = self.follow_events(&http).await?;
        let status = if followed {
            self.remote.status(&http, &self.id).await?
        } else {
            self.poll(&http).await?
        };
        let status = match status.status {
            JobStatus::Completed | JobStatus::Failed => status,
            // The stream ended before the job did (a proxy cut it, the server restarted).
            JobStatus::Pending | JobStatus::Processing => self.poll(&http).await?,
        };
        super::print_json(&status)?;
        if status.status == JobStatus::Completed {
            Ok(ExitCode::SUCCESS)
        } else {
            super::progress(format!("job {} failed: {}", self.id.trim(), status.message));
            Ok(ExitCode::FAILURE)
        }
    }

    /// Prints the job's events until the stream ends or carries a terminal state; `false`
    /// when the server has no event stream (then nothing was printed).
    async fn follow_events(&self, http: &reqwest::Client) -> Result<bool, RemoteError> {
        let url = self
            .remote
            .url(&format!("jobs/{}/events", path_segment(&self.id)?))?;
        let request = http.get(url).header("accept", "text/event-stream");
        let response = match self.remote.send(request).await {
            Ok(response) => response,
            // No such route on this server (or no such job, which `/status` then says).
            Err(RemoteError::Refused {
                status: 404 | 405, ..
            }) => return Ok(false),
            Err(error) => return Err(error),
        };
        let is_stream = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !is_stream {
            return Ok(false);
        }
        let mut lines = Lines::default();
        let mut event = SseEvent::default();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.remote.unreachable(e))?;
            for line in lines.push(&chunk) {
                if !line.is_empty() {
                    event.field(&line);
                    continue;
                }
                let done = std::mem::take(&mut event);
                if done.data.is_empty() && done.name.is_none() {
                    continue;
                }
                super::progress(done.describe());
                if done.is_terminal() {
                    return Ok(true);
                }
            }
        }
        Ok(true)
    }

    /// Asks `/status` every second, printing each change of state, stage or attempt, until
    /// the job ends.
    async fn poll(&self, http: &reqwest::Client) -> Result<StatusResponse, RemoteError> {
        let mut last = None;
        loop {
            let status = self.remote.status(http, &self.id).await?;
            let line = match (status.status, status.stage, status.attempt) {
                (JobStatus::Processing, Some(stage), Some(attempt)) => {
                    format!("processing: attempt {attempt}: {stage}")
                }
                (JobStatus::Processing, Some(stage), None) => format!("processing: {stage}"),
                (state, ..) => serde_json::to_value(state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
            };
            if last.as_ref() != Some(&line) {
                super::progress(&line);
                last = Some(line);
            }
            if matches!(status.status, JobStatus::Completed | JobStatus::Failed) {
                return Ok(status);
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct DownloadArgs {
    /// The job's id, as `submit` printed it.
    id: String,
    /// Where to write the submission.
    #[arg(long, default_value = "submission.csv")]
    out: PathBuf,
    #[command(flatten)]
    remote: Remote,
}

impl DownloadArgs {
    /// Streams the submission into a file beside `--out`, then renames it into place, so an
    /// interrupted download never leaves a half file under the name.
    pub(crate) async fn run(self) -> Result<ExitCode, CliError> {
        let http = Remote::client()?;
        let url = self
            .remote
            .url(&format!("jobs/{}/submission", path_segment(&self.id)?))?;
        let response = self.remote.send(http.get(url)).await?;
        let partial = partial_path(&self.out);
        let written = self.write(response, &partial).await;
        let bytes = match written {
            Ok(bytes) => bytes,
            Err(error) => {
                let _ = tokio::fs::remove_file(&partial).await;
                return Err(error);
            }
        };
        tokio::fs::rename(&partial, &self.out)
            .await
            .map_err(|e| CliError::io(format!("renaming {} into place", partial.display()), e))?;
        super::progress(format!("wrote {} ({bytes} bytes)", self.out.display()));
        Ok(ExitCode::SUCCESS)
    }

    async fn write(&self, response: Response, partial: &Path) -> Result<u64, CliError> {
        let mut file = tokio::fs::File::create(partial)
            .await
            .map_err(|e| CliError::io(format!("creating {}", partial.display()), e))?;
        let mut bytes = 0u64;
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.remote.unreachable(e))?;
            file.write_all(&chunk)
                .await
                .map_err(|e| CliError::io(format!("writing {}", partial.display()), e))?;
            bytes += chunk.len() as u64;
        }
        file.flush()
            .await
            .map_err(|e| CliError::io(format!("writing {}", partial.display()), e))?;
        Ok(bytes)
    }
}

/// `DIR/.NAME.partial` for `DIR/NAME`.
fn partial_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "submission.csv".to_owned());
    out.with_file_name(format!(".{name}.partial"))
}

/// Splits an event stream's bytes into lines (`\n`, `\r\n` or `\r`), across chunks, each cut
/// at [`MAX_EVENT_LINE_BYTES`].
#[derive(Debug, Default)]
struct Lines {
    pending: Vec<u8>,
    after_cr: bool,
}

impl Lines {
    fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        for &byte in chunk {
            if self.after_cr && byte == b'\n' {
                self.after_cr = false;
                continue;
            }
            self.after_cr = byte == b'\r';
            if byte == b'\n' || byte == b'\r' {
                out.push(String::from_utf8_lossy(&self.pending).into_owned());
                self.pending.clear();
            } else if self.pending.len() < MAX_EVENT_LINE_BYTES {
                self.pending.push(byte);
            }
        }
        out
    }
}

/// One server-sent event, as its fields arrive.
#[derive(Debug, Default)]
struct SseEvent {
    id: Option<String>,
    name: Option<String>,
    data: String,
}

impl SseEvent {
    fn field(&mut self, line: &str) {
        if line.starts_with(':') {
            return; // a comment: the heartbeat
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => self.id = Some(head(value, QUOTED_VALUE_CHARS)),
            "event" => self.name = Some(head(value, QUOTED_VALUE_CHARS)),
            "data" => {
                if !self.data.is_empty() {
                    self.data.push('\n');
                }
                if self.data.len() < MESSAGE_CHARS {
                    self.data.push_str(value);
                }
            }
            _ => {}
        }
    }

    /// Whether it says the job ended: the server's `terminal` event, or data with a terminal
    /// `status`.
    fn is_terminal(&self) -> bool {
        if self.name.as_deref() == Some("terminal") {
            return true;
        }
        serde_json::from_str::<Value>(&self.data).is_ok_and(|data| {
            data.get("status")
                .and_then(Value::as_str)
                .is_some_and(|s| matches!(s, "completed" | "failed"))
        })
    }

    /// One bounded line for the terminal.
    fn describe(&self) -> String {
        let name = self.name.as_deref().unwrap_or("message");
        let data = head(self.data.trim(), MESSAGE_CHARS).replace(['\n', '\r'], " ");
        match &self.id {
            Some(id) => format!("[{id}] {name}: {data}"),
            None => format!("{name}: {data}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_lines_split_across_chunks_and_line_endings() {
        let mut lines = Lines::default();
        assert!(lines.push(b"id: 1\r").len() == 1);
        assert_eq!(lines.push(b"\nevent: st"), Vec::<String>::new());
        assert_eq!(
            lines.push(b"age\ndata: {}\n\n"),
            ["event: stage", "data: {}", ""]
        );
    }

    #[test]
    fn events_are_read_and_terminal_ones_recognised() {
        let mut event = SseEvent::default();
        for line in [
            ": keep-alive",
            "id: 7",
            "event: state",
            "data: {\"status\":",
            "data: \"failed\"}",
        ] {
            event.field(line);
        }
        assert_eq!(event.id.as_deref(), Some("7"));
        assert_eq!(event.data, "{\"status\":\n\"failed\"}");
        assert!(event.is_terminal());
        assert_eq!(event.describe(), "[7] state: {\"status\": \"failed\"}");
        let mut stage = SseEvent::default();
        stage.field("event: stage");
        stage.field("data: {\"stage\":\"run\"}");
        assert!(!stage.is_terminal());
        let mut named = SseEvent::default();
        named.field("event: terminal");
        assert!(named.is_terminal());
        let mut other = SseEvent::default();
        other.field("event: completed");
        assert!(
            !other.is_terminal(),
            "only the server's terminal event ends a wait"
        );
    }

    #[test]
    fn servers_are_checked_and_shown_without_secrets() {
        let remote = |server: &str| Remote {
            server: server.to_owned(),
            api_token: Some("t0ken".to_owned()),
        };
        assert!(remote("ftp://x").base().is_err());
        assert!(remote("not a url").base().is_err());
        let prefixed = remote("http://h:1/ks").url("status/x").expect("a URL");
        assert_eq!(prefixed.as_str(), "http://h:1/ks/status/x");
        assert_eq!(remote("http://u:pw@h:1/?q=1").shown(), "http://h:1/");
        assert!(path_segment("../run").is_err());
        let id = "0B6F2C5E-3F1A-4C2E-9D2B-8C1E7F0A9B31";
        assert_eq!(path_segment(id).expect("a UUID"), id.to_ascii_lowercase());
    }
}
