//! The route handlers. Each does one queue or store call at most and never waits
//! on job work: jobs run on workers, which the API reaches only through the queue.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::types::{
    CancelResponse, ErrorBody, Health, JobList, JobSummary, ListQuery, Readiness, RunQuery,
    RunResponse, StatusResponse, StopAnswer, StopResponse,
};
use super::{ApiError, ApiState, SubmitError};
use crate::logs::JobLog;
use crate::queue::{
    CancelOutcome, JobId, JobRecord, JobStatus, ListCursor, MAX_PAGE, QueueError, StopOutcome,
};

/// Accepts a job: checks the URL and the policy, enqueues, answers at once.
#[utoipa::path(
    method(get, post),
    path = "/run",
    params(RunQuery),
    responses(
        (status = 202, description = "Accepted; poll /status/{job_id}", body = RunResponse),
        (status = 400, description = "Bad input (`invalid_url`, `unknown_policy`, \
            `policy_not_allowed` naming the presets offered, `raises_cap` naming the cap and its \
            ceiling, `invalid_limit`, ...); nothing was enqueued", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "`cross_site`: sent by another site's page (a cross-site \
            `Origin` or `Sec-Fetch-Site`); call the API from a script or a server", body = ErrorBody),
        (status = 414, description = "Query string too long", body = ErrorBody),
        (status = 429, description = "`queue_full`: as many jobs as the server allows \
            (KS_MAX_QUEUED) already wait; nothing was enqueued", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before submitting again"))),
        (status = 503, description = "The queue is unavailable", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
pub(crate) async fn run(
    State(state): State<Arc<ApiState>>,
    query: Result<Query<RunQuery>, QueryRejection>,
) -> Result<(StatusCode, Json<RunResponse>), ApiError> {
    let result = accept(&state, query).await;
    if matches!(
        &result,
        Err(ApiError::Client { .. } | ApiError::Queue(QueueError::Full { .. }))
    ) {
        state.metrics.rejected();
    }
    let record = result?;
    state.metrics.submitted();
    Ok((
        StatusCode::ACCEPTED,
        Json(RunResponse {
            job_id: record.id.0,
        }),
    ))
}

async fn accept(
    state: &ApiState,
    query: Result<Query<RunQuery>, QueryRejection>,
) -> Result<JobRecord, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let url = query.url.as_deref().map(str::trim).unwrap_or_default();
    if url.is_empty() {
        return Err(ApiError::bad_request(
            "missing_url",
            "give the competition as ?url=https://www.kaggle.com/competitions/<slug>",
        ));
    }
    let policy = query.policy.as_deref().filter(|p| !p.is_empty());
    let overrides = query
        .overrides()
        .map_err(|e| ApiError::from(SubmitError::Overrides(e)))?;
    Ok(state.submitter.submit_with(url, policy, overrides).await?)
}

/// A job's state in the `StatusResponse` shape.
#[utoipa::path(
    get,
    path = "/status/{job_id}",
    params(("job_id" = uuid::Uuid, Path, description = "The job's id (a UUID)")),
    responses(
        (status = 200, description = "The job's state", body = StatusResponse),
        (status = 400, description = "Not a job id", body = ErrorBody),
        (status = 404, description = "No such job, or it finished longer ago than the server \
            keeps jobs (KS_JOB_TTL)", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
pub(crate) async fn status(
    State(state): State<Arc<ApiState>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<StatusResponse>, ApiError> {
    let record = record(&state, id).await?;
    Ok(Json(StatusResponse::from(&record)))
}

/// The submission CSV of a completed job.
#[utoipa::path(
    get,
    path = "/jobs/{job_id}/submission",
    params(("job_id" = uuid::Uuid, Path, description = "The job's id (a UUID)")),
    responses(
        (status = 200, description = "submission.csv, streamed from the store that holds it \
            (with Content-Length)", content_type = "text/csv", body = String),
        (status = 400, description = "Not a job id", body = ErrorBody),
        (status = 404, description = "No such job or submission", body = ErrorBody),
        (status = 409, description = "The job has not completed", body = ErrorBody),
        (status = 503, description = "The submission store is unreachable", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
pub(crate) async fn submission(
    State(state): State<Arc<ApiState>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let record = record(&state, id).await?;
    match record.status {
        JobStatus::Completed => {}
        JobStatus::Failed => {
            return Err(ApiError::client(
                StatusCode::CONFLICT,
                "job_failed",
                format!(
                    "the job failed and has no submission: {}",
                    record.message.as_deref().unwrap_or("no message")
                ),
            ));
        }
        JobStatus::Pending | JobStatus::Processing => {
            return Err(ApiError::client(
                StatusCode::CONFLICT,
                "not_completed",
                "the job has not completed yet; poll /status/{job_id} until it is `completed`",
            ));
        }
    }
    let missing = || {
        ApiError::not_found(format!(
            "the job completed but its submission is not in this server's store (it was stored \
             at {}, source {})",
            record.submission_path.as_deref().unwrap_or("?"),
            record
                .submission_source
                .map_or_else(|| "?".to_owned(), |kind| kind.to_string()),
        ))
    };
    let stored = state.store.get(&record.id.0).await?.ok_or_else(missing)?;
    let disposition = format!("attachment; filename=\"submission-{}.csv\"", record.id);
    let id = record.id.clone();
    // Streamed from whichever store holds it; a failure midway ends the body early, which
    // the client sees as fewer bytes than Content-Length promised.
    let body = futures_util::StreamExt::inspect(stored.body, move |chunk| {
        if let Err(error) = chunk {
            tracing::warn!(job = %id, %error, "submission stream failed midway");
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CONTENT_LENGTH, stored.size.to_string()),
        ],
        axum::body::Body::from_stream(body),
    )
        .into_response())
}

/// The attempts' code, output tails and errors, and the job's timeline.
#[utoipa::path(
    get,
    path = "/jobs/{job_id}/logs",
    params(("job_id" = uuid::Uuid, Path, description = "The job's id (a UUID)")),
    responses(
        (status = 200, description = "The job's log (empty until a worker starts it)", body = JobLog),
        (status = 400, description = "Not a job id", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
pub(crate) async fn logs(
    State(state): State<Arc<ApiState>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<JobLog>, ApiError> {
    let record = record(&state, id).await?;
    let log = state
        .logs
        .read(&record.id)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(log.unwrap_or_else(|| JobLog {
        job_id: record.id.0,
        ..JobLog::default()
    })))
}

/// Lists jobs newest first, with their status.
#[utoipa::path(
    get,
    path = "/jobs",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of jobs, newest accepted first; go on with \
            `cursor=<next_cursor>` until it is `null`", body = JobList),
        (status = 400, description = "`invalid_query` (an unknown `state`, a cursor that is \
            not a number) or `invalid_limit` (outside 1 to 100)", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 503, description = "The queue is unavailable", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
pub(crate) async fn list(
    State(state): State<Arc<ApiState>>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<JobList>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let limit = query.limit().ok_or_else(|| {
        ApiError::bad_request(
            "invalid_limit",
            format!("limit is 1 to {MAX_PAGE} jobs per page"),
        )
    })?;
    // Cursors are never negative; the query takes them as JSON's signed integers.
    let cursor = query
        .cursor
        .map(|c| u64::try_from(c).map(ListCursor))
        .transpose()
        .map_err(|_| {
            ApiError::bad_request(
                "invalid_query",
                "cursor is the `next_cursor` of a page (a number, never negative)",
            )
        })?;
    let page = state
        .submitter
        .queue()
        .list(query.state, limit, cursor)
        .await?;
    Ok(Json(JobList {
        jobs: page.jobs.iter().map(JobSummary::from).collect(),
        next_cursor: page.next.map(|c| c.0),
    }))
}

/// Cancels a job: a pending one at once, a running one within a heartbeat.
#[utoipa::path(
    delete,
    path = "/jobs/{job_id}",
    params(("job_id" = uuid::Uuid, Path, description = "The job's id (a UUID)")),
    responses(
        (status = 200, description = "Cancelled (it was pending)", body = CancelResponse),
        (status = 202, description = "Its worker will stop it", body = CancelResponse),
        (status = 400, description = "Not a job id", body = ErrorBody),
        (status = 403, description = "`cross_site`: sent by another site's page", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The job already ended", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
pub(crate) async fn cancel(
    State(state): State<Arc<ApiState>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<(StatusCode, Json<CancelResponse>), ApiError> {
    let id = job_id(id)?;
    let outcome = state.submitter.queue().cancel(&id).await?;
    let status = match outcome {
        CancelOutcome::Cancelled => StatusCode::OK,
        CancelOutcome::Requested => StatusCode::ACCEPTED,
        CancelOutcome::AlreadyFinished => {
            return Err(ApiError::client(
                StatusCode::CONFLICT,
                "already_finished",
                "the job already ended; there is nothing to cancel",
            ));
        }
        CancelOutcome::NotFound => return Err(not_found(&id)),
    };
    let body = CancelResponse::new(&id.0, outcome)
        .ok_or_else(|| ApiError::Internal("unexpected cancel outcome".into()))?;
    Ok((status, Json(body)))
}

/// Ends a job's search early: no new candidate starts, the ones running stop once a best is
/// kept, and the best so far is re-run on the full data and submitted (`DELETE` cancels
/// instead). A job without a search (one candidate) runs to its end as before.
#[utoipa::path(
    post,
    path = "/jobs/{job_id}/stop",
    params(("job_id" = uuid::Uuid, Path, description = "The job's id (a UUID)")),
    responses(
        (status = 202, description = "Its search ends and keeps its best", body = StopResponse),
        (status = 400, description = "Not a job id", body = ErrorBody),
        (status = 403, description = "`cross_site`: sent by another site's page", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The job already ended", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
pub(crate) async fn stop(
    State(state): State<Arc<ApiState>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<(StatusCode, Json<StopResponse>), ApiError> {
    let id = job_id(id)?;
    match state.submitter.queue().stop(&id).await? {
        StopOutcome::Requested => Ok((
            StatusCode::ACCEPTED,
            Json(StopResponse {
                job_id: id.0,
                outcome: StopAnswer::StopRequested,
            }),
        )),
        StopOutcome::AlreadyFinished => Err(ApiError::client(
            StatusCode::CONFLICT,
            "already_finished",
            "the job already ended; there is nothing to stop",
        )),
        StopOutcome::NotFound => Err(not_found(&id)),
    }
}

/// Liveness: answers while the process serves HTTP. Needs no token.
#[utoipa::path(get, path = "/healthz", responses((status = 200, body = Health)))]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
    })
}

/// Readiness: the queue (Redis) and the submission store answer. Needs no token; a failure
/// is told by a fixed sentence only (the cause goes to the server's log), so an anonymous
/// probe learns nothing of the deployment.
#[utoipa::path(
    get,
    path = "/readyz",
    responses(
        (status = 200, description = "Ready: the queue and the store answer", body = Readiness),
        (status = 503, description = "Not ready; `reason` says which part does not answer",
            body = Readiness),
    )
)]
pub(crate) async fn readyz(State(state): State<Arc<ApiState>>) -> (StatusCode, Json<Readiness>) {
    let reason = match state.submitter.queue().stats().await {
        Err(error) => {
            tracing::warn!(%error, "not ready: the queue does not answer");
            Some("the job queue (Redis) does not answer")
        }
        Ok(_) => match state.store.check().await {
            Err(error) => {
                tracing::warn!(%error, "not ready: the submission store does not answer");
                Some("the submission store does not answer or refuses the credentials")
            }
            Ok(()) => None,
        },
    };
    let status = if reason.is_some() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let body = Readiness {
        status: if reason.is_some() { "unready" } else { "ready" }.to_owned(),
        reason: reason.map(str::to_owned),
    };
    (status, Json(body))
}

/// Prometheus text: queue depth, jobs by state, attempt outcomes, sandbox durations.
#[utoipa::path(
    get,
    path = "/metrics",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)),
    security((), ("bearer" = []))
)]
pub(crate) async fn metrics(State(state): State<Arc<ApiState>>) -> Response {
    let stats = match state.submitter.queue().stats().await {
        Ok(stats) => Some(stats),
        Err(error) => {
            tracing::warn!(%error, "metrics without queue counts");
            None
        }
    };
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(stats),
    )
        .into_response()
}

/// The OpenAPI document of this API (this document).
#[utoipa::path(
    get,
    path = "/openapi.json",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")),
    security((), ("bearer" = []))
)]
pub(crate) async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(super::openapi::document())
}

/// Unknown routes.
pub(crate) async fn no_route() -> ApiError {
    ApiError::not_found("no such route; the routes are listed in /openapi.json")
}

/// Known routes with the wrong method.
pub(crate) async fn wrong_method() -> ApiError {
    ApiError::client(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method; see /openapi.json",
    )
}

fn job_id(raw: Result<Path<String>, PathRejection>) -> Result<JobId, ApiError> {
    let Path(raw) = raw.map_err(|e| ApiError::bad_request("invalid_job_id", e.body_text()))?;
    JobId::parse(&raw).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_job_id",
            "job ids are UUIDs, as /run returned them (e.g. 67e55044-10b1-426f-9247-bb680e5fe0c8)",
        )
    })
}

fn not_found(id: &JobId) -> ApiError {
    ApiError::not_found(format!("there is no job {id}"))
}

pub(super) async fn record(
    state: &ApiState,
    id: Result<Path<String>, PathRejection>,
) -> Result<JobRecord, ApiError> {
    let id = job_id(id)?;
    state
        .submitter
        .queue()
        .get(&id)
        .await?
        .ok_or_else(|| not_found(&id))
}
