//! The bad-input table: every malformed or refused request gets the right 4xx
//! with a JSON `{error, detail}` whose detail says what to do, and the queue is left as it
//! was (nothing enqueued).

use anyhow::{Result, ensure};
use axum::http::{Method, StatusCode};
use kaggle_solver::queue::{JobId, QueueStats};

use super::{Api, PENGUINS, encode};

#[tokio::test]
async fn bad_input_is_refused_with_a_json_error_and_nothing_is_enqueued() -> Result<()> {
    let api = Api::new(None).await?;
    let long_url = format!("{PENGUINS}/{}", "x".repeat(3_000));
    let huge_url = format!("{PENGUINS}/{}", "x".repeat(10_000));
    let unknown = JobId::new().0;
    let outside = api.path("outside");
    let escape = format!("{}/../outside", api.path("competitions"));
    let cases: Vec<(Method, String, StatusCode, &str)> = vec![
        (
            Method::POST,
            "/run".into(),
            StatusCode::BAD_REQUEST,
            "missing_url",
        ),
        (
            Method::POST,
            "/run?url=".into(),
            StatusCode::BAD_REQUEST,
            "missing_url",
        ),
        (
            Method::GET,
            "/run?policy=default".into(),
            StatusCode::BAD_REQUEST,
            "missing_url",
        ),
        (
            Method::POST,
            format!(
                "/run?url={}",
                encode("https://example.com/competitions/titanic")
            ),
            StatusCode::BAD_REQUEST,
            "invalid_url",
        ),
        (
            Method::POST,
            format!("/run?url={}", encode("https://www.kaggle.com/datasets/x/y")),
            StatusCode::BAD_REQUEST,
            "invalid_url",
        ),
        (
            Method::POST,
            format!(
                "/run?url={}",
                encode("https://www.kaggle.com/competitions/Bad_Slug")
            ),
            StatusCode::BAD_REQUEST,
            "invalid_url",
        ),
        (
            Method::POST,
            format!("/run?url={}", encode(&long_url)),
            StatusCode::BAD_REQUEST,
            "url_too_long",
        ),
        (
            Method::POST,
            format!("/run?url={}", encode(&huge_url)),
            StatusCode::URI_TOO_LONG,
            "query_too_long",
        ),
        (
            Method::POST,
            format!("/run?url={}&policy=huge", encode(PENGUINS)),
            StatusCode::BAD_REQUEST,
            "policy_not_allowed",
        ),
        (
            Method::POST,
            format!("/run?url={}&policy=Quick", encode(PENGUINS)),
            StatusCode::BAD_REQUEST,
            "unknown_policy",
        ),
        (
            Method::POST,
            format!(
                "/run?url={}&policy={}",
                encode(PENGUINS),
                encode("../policies/quick")
            ),
            StatusCode::BAD_REQUEST,
            "unknown_policy",
        ),
        (
            Method::POST,
            format!("/run?url={}", encode(&outside)),
            StatusCode::BAD_REQUEST,
            "local_path_not_allowed",
        ),
        (
            Method::POST,
            format!("/run?url={}", encode(&format!("file://{outside}"))),
            StatusCode::BAD_REQUEST,
            "local_path_not_allowed",
        ),
        (
            Method::POST,
            format!("/run?url={}", encode(&escape)),
            StatusCode::BAD_REQUEST,
            "local_path_not_allowed",
        ),
        (
            Method::POST,
            format!("/run?url={}", encode("/etc")),
            StatusCode::BAD_REQUEST,
            "local_path_not_allowed",
        ),
        (
            Method::POST,
            "/run?url=a&url=b".into(),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            Method::GET,
            format!("/status/{unknown}"),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::GET,
            "/status/not-a-job".into(),
            StatusCode::BAD_REQUEST,
            "invalid_job_id",
        ),
        (
            Method::GET,
            "/status/1%3B%20DROP".into(),
            StatusCode::BAD_REQUEST,
            "invalid_job_id",
        ),
        (
            Method::GET,
            format!("/jobs/{unknown}/submission"),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::GET,
            format!("/jobs/{unknown}/logs"),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::DELETE,
            format!("/jobs/{unknown}"),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::DELETE,
            "/jobs/42".into(),
            StatusCode::BAD_REQUEST,
            "invalid_job_id",
        ),
        (
            Method::GET,
            "/nowhere".into(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::PUT,
            "/run".into(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
    ];
    for (method, uri, want, code) in cases {
        let short: String = uri.chars().take(90).collect();
        let (status, body) = api.json(method.clone(), &uri).await?;
        ensure!(
            status == want,
            "{method} {short}: {status} (want {want}) {body}"
        );
        ensure!(body["error"] == code, "{method} {short}: {body}");
        let detail = body["detail"].as_str().unwrap_or_default();
        ensure!(
            detail.len() > 10,
            "{method} {short}: a detail that helps: {body}"
        );
        ensure!(
            api.stats().await? == QueueStats::default(),
            "{method} {short} enqueued something"
        );
    }
    Ok(())
}
