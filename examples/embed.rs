//! Embedding kaggle-solver in a larger axum service: the solver's REST API is mounted under
//! `/solver` next to the app's own routes, and its workers run in the same process.
//!
//! ```sh
//! KS_COMPETITIONS_DIR=examples/competitions cargo run -p kaggle-solver --example embed
//! curl -X POST 'http://127.0.0.1:8080/solver/run?url=https://www.kaggle.com/competitions/penguins'
//! curl http://127.0.0.1:8080/solver/status/<job_id>
//! curl http://127.0.0.1:8080/hello
//! ```
//!
//! The app's own handler also submits through the library API (`Host::submit`), without HTTP.

use anyhow::Context;
use axum::Json;
use axum::extract::State;
use axum::routing::{get, post};
use kaggle_solver::host::Host;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let bind = std::env::var("EMBED_BIND").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());

    // Defaults: in-memory queue, the WASI sandbox, the generator from the environment,
    // submissions and logs under $KS_HOME. One job at a time in this process.
    let host = Host::builder()
        .workers(1)
        .build()
        .await
        .context("building the solver")?;

    let app = axum::Router::new()
        .route("/hello", get(|| async { "the host app's own route\n" }))
        .route("/penguins", post(submit_penguins))
        .with_state(host.clone())
        .nest("/solver", host.router());

    let shutdown = CancellationToken::new();
    let workers = tokio::spawn(host.run_workers(shutdown.clone()));
    let listener = tokio::net::TcpListener::bind(&bind)
        .await
        .with_context(|| format!("listening on {bind}"))?;
    println!("listening on http://{bind} (solver under /solver)");
    let stop = shutdown.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = tokio::signal::ctrl_c().await;
            stop.cancel();
        })
        .await
        .context("serving")?;
    workers.await.context("draining the workers")?;
    Ok(())
}

/// The app's own route, submitting through the library instead of HTTP.
async fn submit_penguins(State(host): State<Host>) -> Json<serde_json::Value> {
    match host
        .submit("https://www.kaggle.com/competitions/penguins", None)
        .await
    {
        Ok(id) => Json(serde_json::json!({ "job_id": id.0 })),
        Err(error) => Json(serde_json::json!({ "error": error.to_string() })),
    }
}
