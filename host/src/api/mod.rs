//! The REST API, as an axum [`Router`] that any axum app can serve or nest.
//!
//! The API only talks to the queue (and reads finished submissions and logs): it accepts a
//! job after checking it ([`Submitter`]), answers at once, and lets workers do the work. That
//! keeps every request cheap whatever the jobs cost. Parts: `handlers` (the routes), `types`
//! (the JSON), `error` (the one error type, [`ApiError`]), `guard` (auth and limits), `origin`
//! (refusing state changes sent by another site's page), `submit` ([`Submitter`]) and
//! `openapi` ([`openapi_document`]).

mod dashboard;
mod error;
mod events;
mod guard;
mod handlers;
mod openapi;
mod origin;
mod submit;
mod types;

use std::sync::Arc;

use axum::Router;
use axum::routing::{delete, get, post};
use tower_http::limit::RequestBodyLimitLayer;

pub use error::ApiError;
pub use error::QUEUE_FULL_RETRY_AFTER_SECS;
pub use guard::{ApiToken, MAX_QUERY_BYTES};
pub use openapi::document as openapi_document;
pub use submit::{DEFAULT_API_POLICIES, SubmitError, Submitter};
pub use types::{
    CancelAnswer, CancelResponse, ErrorBody, Health, JobList, JobSummary, ListQuery, Readiness,
    RunQuery, RunResponse, StatusResponse, StopAnswer, StopResponse, rfc3339,
};

use crate::logs::DynLogs;
use crate::metrics::Metrics;
use crate::storage::DynStore;

/// The largest request body accepted (no route takes a body; this only bounds abuse).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// What the handlers share.
#[derive(Debug)]
pub struct ApiState {
    /// Checks and enqueues submissions; holds the queue.
    pub submitter: Submitter,
    /// Where finished submissions are read from.
    pub store: DynStore,
    /// Where job logs are read from.
    pub logs: DynLogs,
    /// The counters `/metrics` renders.
    pub metrics: Arc<Metrics>,
    /// The bearer token every route but `/healthz` and `/readyz` requires, if set.
    pub token: Option<ApiToken>,
}

/// The API's routes over `state`, with the auth check, the size limits and, on the routes
/// that change state, the refusal of cross-site requests applied.
pub fn router(state: Arc<ApiState>) -> Router {
    let token = state.token.clone();
    let same_origin = || axum::middleware::from_fn(origin::same_origin_only);
    Router::new()
        .route(
            "/run",
            get(handlers::run).post(handlers::run).layer(same_origin()),
        )
        .route("/status/{job_id}", get(handlers::status))
        .route("/", get(dashboard::index))
        .route("/ui/app.js", get(dashboard::script))
        .route("/ui/style.css", get(dashboard::style))
        .route(
            "/jobs/{job_id}",
            get(dashboard::job_page).merge(delete(handlers::cancel).layer(same_origin())),
        )
        .route(
            "/jobs/{job_id}/stop",
            post(handlers::stop).layer(same_origin()),
        )
        .route("/jobs/{job_id}/submission", get(handlers::submission))
        .route("/jobs/{job_id}/logs", get(handlers::logs))
        .route("/jobs/{job_id}/events", get(events::events))
        .route("/jobs", get(handlers::list))
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .route("/metrics", get(handlers::metrics))
        .route("/openapi.json", get(handlers::openapi))
        .fallback(handlers::no_route)
        .method_not_allowed_fallback(handlers::wrong_method)
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(token, guard::guard))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
}

/// Only `/metrics`, `/healthz` and `/readyz` over `state`, for worker processes to expose
/// their counters and be probed.
pub fn metrics_router(state: Arc<ApiState>) -> Router {
    let token = state.token.clone();
    Router::new()
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .route("/metrics", get(handlers::metrics))
        .fallback(handlers::no_route)
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(token, guard::guard))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
}
