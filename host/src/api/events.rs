//! `GET /jobs/{job_id}/events`: a job's events as Server-Sent Events, live.
//!
//! Workers append numbered events to the job's log; this route polls the log store for the
//! ones past what it sent, so it works in any API process that shares the store, with no
//! channel from the worker. The `id:` of each event is its number, so a client that reconnects
//! with `Last-Event-ID` gets only what it missed. The stream ends after the job's `terminal`
//! event; a job that ended with no worker to say so (cancelled while pending, given up by the
//! reaper) gets one made from its record. Comments keep idle connections open through proxies.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt, stream};

use super::handlers::record;
use super::{ApiError, ApiState};
use crate::logs::{EventKind, LogEvent};
use crate::queue::{JobId, JobRecord, JobStatus};

/// How often the log store is asked for new events.
pub const POLL: Duration = Duration::from_millis(250);
/// How often an idle stream sends a comment.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// How long a finished job's stream waits for its worker's `terminal` event before it makes
/// one from the record (the worker writes it just after the queue accepted the end).
const TERMINAL_GRACE: Duration = Duration::from_secs(3);

/// Streams the job's events as Server-Sent Events.
#[utoipa::path(
    get,
    path = "/jobs/{job_id}/events",
    params(
        ("job_id" = uuid::Uuid, Path, description = "The job's id (a UUID)"),
        ("Last-Event-ID" = Option<u64>, Header, description = "The `id` of the last event \
            received: only later ones are sent"),
    ),
    responses(
        (status = 200, description = "`text/event-stream`: each event has `id:` (its number \
            in the job, from 1), `event:` (its kind: `stage`, `attempt-start`, `attempt-end`, \
            `candidate-start`, `candidate-end`, `log`, `terminal`) and `data:` (the event as \
            JSON). The stream ends after the `terminal` event; comments are sent every 15 s \
            while nothing happens", content_type = "text/event-stream", body = LogEvent),
        (status = 400, description = "Not a job id, or a `Last-Event-ID` that is not a \
            number", body = super::ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = super::ErrorBody),
        (status = 404, description = "No such job", body = super::ErrorBody),
    ),
    security((), ("bearer" = []))
)]
pub(crate) async fn events(
    State(state): State<Arc<ApiState>>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let job = record(&state, id).await?;
    let after = match headers.get("last-event-id") {
        None => 0,
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_last_event_id",
                    "Last-Event-ID is the `id` of an event this stream sent (a number)",
                )
            })?,
    };
    let follow = Follow {
        state,
        id: job.id,
        after,
        first: true,
        ended: false,
        finished_at: None,
    };
    let events = stream::unfold(follow, next_batch).flat_map(stream::iter);
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(HEARTBEAT)))
}

/// Where one stream is.
struct Follow {
    state: Arc<ApiState>,
    id: JobId,
    /// The number of the last event sent.
    after: u64,
    first: bool,
    ended: bool,
    /// When the stream first saw the job finished with no `terminal` event yet.
    finished_at: Option<Instant>,
}

/// The next events to send, waiting for them; `None` once the stream is over.
async fn next_batch(mut follow: Follow) -> Option<(Vec<Result<Event, Infallible>>, Follow)> {
    loop {
        if follow.ended {
            return None;
        }
        if !std::mem::take(&mut follow.first) {
            tokio::time::sleep(POLL).await;
        }
        let events = match follow
            .state
            .logs
            .events_after(&follow.id, follow.after)
            .await
        {
            Ok(events) => events,
            Err(error) => {
                tracing::warn!(job = %follow.id, %error, "the event stream cannot read the log");
                follow.ended = true;
                return Some((vec![Ok(failure("the job's log cannot be read"))], follow));
            }
        };
        if !events.is_empty() {
            let mut out = Vec::new();
            for event in events {
                follow.after = follow.after.max(event.seq);
                let terminal = event.kind == EventKind::Terminal;
                out.push(Ok(sse(&event, true)));
                if terminal {
                    follow.ended = true;
                    break;
                }
            }
            return Some((out, follow));
        }
        let record = match follow.state.submitter.queue().get(&follow.id).await {
            Ok(record) => record,
            Err(error) => {
                // The queue may come back: keep polling.
                tracing::warn!(job = %follow.id, %error, "the event stream cannot read the job");
                continue;
            }
        };
        match record {
            None => {
                follow.ended = true;
                return Some((vec![Ok(failure("the job no longer exists"))], follow));
            }
            Some(record) if record.status.is_terminal() => {
                let since = *follow.finished_at.get_or_insert_with(Instant::now);
                if since.elapsed() >= TERMINAL_GRACE {
                    follow.ended = true;
                    return Some((vec![Ok(sse(&from_record(&record), false))], follow));
                }
            }
            Some(_) => {}
        }
    }
}

/// An event on the wire: `id:` its number (when it has one of the store's), `event:` its kind,
/// `data:` its JSON.
fn sse(event: &LogEvent, numbered: bool) -> Event {
    let data = serde_json::to_string(event).unwrap_or_else(|_| "{}".to_owned());
    let out = Event::default().event(event.kind.as_str()).data(data);
    if numbered {
        out.id(event.seq.to_string())
    } else {
        out
    }
}

/// The `terminal` event of a job that ended with no worker's `terminal` event.
fn from_record(record: &JobRecord) -> LogEvent {
    let message = record.message.clone().unwrap_or_else(|| {
        match record.status {
            JobStatus::Completed => "completed",
            _ => "failed",
        }
        .to_owned()
    });
    LogEvent {
        status: Some(record.status),
        score: record.validation_score,
        at: super::rfc3339(record.updated_at_ms),
        ..LogEvent::of(EventKind::Terminal, "", message)
    }
}

/// The event that ends a stream which cannot go on.
fn failure(message: &str) -> Event {
    Event::default()
        .event("error")
        .data(serde_json::json!({ "error": "stream_ended", "detail": message }).to_string())
}
