//! The OpenAPI document (`GET /openapi.json`), generated from the handlers' annotations and
//! the response types, so it cannot drift from what the server does.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::handlers;
use super::types::{
    CancelResponse, ErrorBody, Health, JobList, JobSummary, Readiness, RunResponse, StatusResponse,
    StopAnswer, StopResponse,
};
use crate::logs::{AttemptLog, EventKind, JobLog, LogEvent, Provenance};
use crate::queue::ListState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "kaggle-solver",
        description = "Submit a Kaggle competition, poll its job, download the submission. \
                       When the server has KS_API_TOKEN set, every route but /healthz and /readyz needs \
                       `Authorization: Bearer <token>`. Routes that change state refuse \
                       requests a browser says another site's page sent (403). A submission \
                       may lower the preset's caps for its job (wall-time, memory, fuel, \
                       output, attempts), never raise them; a full queue answers 429 with \
                       Retry-After; finished jobs are kept for the server's KS_JOB_TTL."
    ),
    paths(
        handlers::run,
        handlers::status,
        handlers::submission,
        handlers::logs,
        handlers::list,
        super::events::events,
        super::dashboard::index,
        super::dashboard::job_page,
        handlers::cancel,
        handlers::stop,
        handlers::healthz,
        handlers::readyz,
        handlers::metrics,
        handlers::openapi
    ),
    components(schemas(
        RunResponse,
        StatusResponse,
        CancelResponse,
        StopResponse,
        StopAnswer,
        ErrorBody,
        Health,
        Readiness,
        JobLog,
        AttemptLog,
        LogEvent,
        Provenance,
        EventKind,
        JobList,
        JobSummary,
        ListState
    )),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// Declares the `bearer` security scheme the paths refer to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document, with this crate's version.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}

#[cfg(test)]
mod tests {
    #[test]
    fn lists_every_route_and_the_status_shape() {
        let doc = super::document();
        let json = serde_json::to_value(&doc).expect("serialises");
        for path in [
            "/run",
            "/status/{job_id}",
            "/jobs/{job_id}",
            "/jobs/{job_id}/submission",
            "/jobs/{job_id}/logs",
            "/jobs/{job_id}/events",
            "/jobs",
            "/",
            "/healthz",
            "/readyz",
            "/metrics",
            "/openapi.json",
        ] {
            assert!(json["paths"].get(path).is_some(), "{path} missing");
        }
        assert!(json["paths"]["/run"].get("post").is_some());
        assert!(json["paths"]["/run"].get("get").is_some());
        for method in ["get", "post"] {
            let run = &json["paths"]["/run"][method];
            let params: Vec<&str> = run["parameters"]
                .as_array()
                .map(|p| p.iter().filter_map(|p| p["name"].as_str()).collect())
                .unwrap_or_default();
            for name in [
                "url",
                "policy",
                "wall-time",
                "memory",
                "fuel",
                "output",
                "attempts",
            ] {
                assert!(
                    params.contains(&name),
                    "{method} /run lacks {name}: {params:?}"
                );
            }
            for status in ["202", "400", "401", "403", "414", "429", "503"] {
                assert!(
                    run["responses"].get(status).is_some(),
                    "{method} /run {status}"
                );
            }
            assert!(
                run["responses"]["429"]["headers"]
                    .get("Retry-After")
                    .is_some(),
                "{}",
                run["responses"]["429"]
            );
        }
        assert!(
            json["paths"]["/jobs/{job_id}"]["delete"]["responses"]
                .get("403")
                .is_some()
        );
        let page = &json["paths"]["/jobs/{job_id}"];
        assert!(
            page.get("get").is_some() && page.get("delete").is_some(),
            "{page}"
        );
        for (path, method) in [
            ("/status/{job_id}", "get"),
            ("/jobs/{job_id}", "delete"),
            ("/jobs/{job_id}/submission", "get"),
            ("/jobs/{job_id}/events", "get"),
        ] {
            let operation = &json["paths"][path][method];
            assert!(
                operation["responses"].get("400").is_some(),
                "{path} {method}"
            );
            let id = &operation["parameters"][0];
            assert_eq!(id["schema"]["format"], "uuid", "{path} {method}: {id}");
        }
        let events = &json["paths"]["/jobs/{job_id}/events"]["get"]["responses"]["200"];
        assert!(
            events["content"].get("text/event-stream").is_some(),
            "{events}"
        );
        let url = json["paths"]["/run"]["post"]["parameters"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["name"] == "url"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(url["required"], true, "{url}");
        assert_eq!(url["schema"]["minLength"], 1, "{url}");
        let status = &json["components"]["schemas"]["StatusResponse"]["required"];
        for key in ["status", "source", "path", "message"] {
            assert!(
                status
                    .as_array()
                    .is_some_and(|r| r.iter().any(|k| k == key)),
                "{status}"
            );
        }
    }
}
