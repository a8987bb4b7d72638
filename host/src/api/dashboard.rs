//! The dashboard: one static page (with its script and style sheet, embedded in the binary)
//! that the API serves at `/` and at `/jobs/{job_id}`. The page and its assets need no token;
//! every piece of data they show comes from the API's JSON routes, which do, so without the
//! token a visitor sees the login prompt and nothing else.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("dashboard/index.html");
const SCRIPT: &str = include_str!("dashboard/app.js");
const STYLE: &str = include_str!("dashboard/style.css");

/// The paths a browser may load without the token: the page and its assets.
pub(crate) fn is_public(method: &axum::http::Method, path: &str) -> bool {
    if method != axum::http::Method::GET && method != axum::http::Method::HEAD {
        return false;
    }
    matches!(path, "/" | "/ui/app.js" | "/ui/style.css")
        || path
            .strip_prefix("/jobs/")
            .is_some_and(|id| crate::queue::JobId::parse(id).is_some())
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; \
                     base-uri 'none'; frame-ancestors 'none'",
                ),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response()
}

/// The dashboard's page: the job list.
#[utoipa::path(
    get,
    path = "/",
    responses((status = 200, description = "The dashboard (HTML); needs no token, its data does",
        content_type = "text/html", body = String)),
)]
pub(crate) async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

/// The dashboard's page for one job (the same page; its script reads the path).
#[utoipa::path(
    get,
    path = "/jobs/{job_id}",
    params(("job_id" = uuid::Uuid, Path, description = "The job's id (a UUID)")),
    responses(
        (status = 200, description = "The dashboard's job page (HTML); needs no token, its \
            data does", content_type = "text/html", body = String),
        (status = 400, description = "Not a job id", body = super::ErrorBody),
    ),
)]
pub(crate) async fn job_page(
    id: Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response, super::ApiError> {
    let axum::extract::Path(raw) =
        id.map_err(|e| super::ApiError::bad_request("invalid_job_id", e.body_text()))?;
    if crate::queue::JobId::parse(&raw).is_none() {
        return Err(super::ApiError::bad_request(
            "invalid_job_id",
            "job ids are UUIDs, as /run returned them",
        ));
    }
    Ok(asset("text/html; charset=utf-8", INDEX))
}

/// The dashboard's script.
pub(crate) async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// The dashboard's style sheet.
pub(crate) async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Method;

    #[test]
    fn only_the_page_and_its_assets_are_public() {
        let id = "67e55044-10b1-426f-9247-bb680e5fe0c8";
        for path in ["/", "/ui/app.js", "/ui/style.css", &format!("/jobs/{id}")] {
            assert!(is_public(&Method::GET, path), "{path}");
        }
        for path in [
            "/jobs",
            "/ui/other.js",
            &format!("/jobs/{id}/logs"),
            &format!("/jobs/{id}/events"),
            "/jobs/not-an-id",
            "/status/x",
        ] {
            assert!(!is_public(&Method::GET, path), "{path}");
        }
        assert!(!is_public(&Method::DELETE, &format!("/jobs/{id}")));
    }
}
