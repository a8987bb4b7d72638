//! A fake Kaggle on 127.0.0.1: the kagglesdk RPC endpoints our fetcher and the official
//! `kaggle` client call, a "blob storage" that serves the zips they redirect to, and knobs to
//! make it fail the way Kaggle does (401, 403 rules, 404, 429/5xx, dropped connections).
//!
//! It also accepts absolute-form request lines (`POST http://localhost/api/v1/... HTTP/1.1`),
//! so the official client can reach it as an HTTP proxy, and it records every request, so tests
//! can compare what the two clients sent.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};

pub const USER: &str = "fake-user";
pub const KEY: &str = "fake-key-0123";
pub const TOKEN: &str = "fake-access-token-4567";
pub const LAST_MODIFIED: &str = "Tue, 01 Apr 2025 10:00:00 GMT";
pub const RULES_MESSAGE: &str =
    "You must accept this competition's rules before you'll be able to download files.";

/// One competition the fake knows.
#[derive(Debug, Clone)]
pub struct FakeCompetition {
    pub title: String,
    pub description: String,
    pub metric: String,
    /// The data files, listed by `ListDataFiles`.
    pub files: Vec<(String, Vec<u8>)>,
    /// What `DownloadDataFiles` serves.
    pub zip: Vec<u8>,
    pub rules_accepted: bool,
    /// A code competition (`isKernelsSubmissionsOnly`).
    pub code_only: bool,
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub host: Option<String>,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub range: Option<String>,
    pub body: Option<Value>,
}

/// A failure to answer an API call with instead of the real reply.
#[derive(Debug, Clone)]
pub struct Injected {
    pub status: u16,
    pub retry_after: Option<&'static str>,
}

#[derive(Debug, Default)]
pub struct FakeState {
    pub competitions: Mutex<HashMap<String, FakeCompetition>>,
    pub requests: Mutex<Vec<Recorded>>,
    /// Served (and consumed) before any API call's real reply.
    pub inject: Mutex<VecDeque<Injected>>,
    /// The next full blob GET sends half its body, then drops the connection.
    pub drop_next_blob: AtomicBool,
    /// Whether blob GETs honour `Range`.
    pub no_ranges: AtomicBool,
    /// Redirect downloads to this origin instead of our own (`http://host:port`).
    pub storage_origin: Mutex<Option<String>>,
    pub download_calls: AtomicUsize,
    pub full_blob_gets: AtomicUsize,
    pub unknown_routes: AtomicUsize,
}

impl FakeState {
    pub fn add(&self, slug: &str, competition: FakeCompetition) {
        lock(&self.competitions).insert(slug.to_owned(), competition);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.requests).clone()
    }

    /// The recorded calls of one RPC method.
    pub fn calls(&self, method: &str) -> Vec<Recorded> {
        let suffix = format!("/{method}");
        self.requests()
            .into_iter()
            .filter(|r| r.path.ends_with(&suffix))
            .collect()
    }

    /// The recorded GETs: the downloads of files, after the API's redirect.
    pub fn gets(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "GET")
            .collect()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running fake; the server stops with the test's runtime.
pub struct FakeKaggle {
    pub addr: SocketAddr,
    pub state: Arc<FakeState>,
}

impl FakeKaggle {
    pub async fn start() -> FakeKaggle {
        Self::start_with(Arc::new(FakeState::default())).await
    }

    /// Another listener over the same state (e.g. a second origin for blob storage).
    pub async fn start_with(state: Arc<FakeState>) -> FakeKaggle {
        let app = Router::new()
            .route("/api/v1/{service}/{method}", post(api))
            .route("/storage/{slug}/{name}", get(blob))
            .fallback(unknown)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeKaggle { addr, state }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn record(state: &FakeState, method: &str, uri: &Uri, headers: &HeaderMap, body: &[u8]) {
    let text = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    lock(&state.requests).push(Recorded {
        method: method.to_owned(),
        path: uri.path().to_owned(),
        host: text(header::HOST),
        authorization: text(header::AUTHORIZATION),
        content_type: text(header::CONTENT_TYPE),
        range: text(header::RANGE),
        body: serde_json::from_slice(body).ok(),
    });
}

fn error(status: u16, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        code,
        axum::Json(json!({ "code": status, "message": message })),
    )
        .into_response()
}

fn authorised(headers: &HeaderMap) -> bool {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{KEY}"));
    let got = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    got == Some(&format!("Basic {basic}")) || got == Some(&format!("Bearer {TOKEN}"))
}

async fn unknown(State(state): State<Arc<FakeState>>, uri: Uri, headers: HeaderMap) -> Response {
    record(&state, "?", &uri, &headers, b"");
    state.unknown_routes.fetch_add(1, Ordering::SeqCst);
    error(404, "no such route")
}

async fn api(
    State(state): State<Arc<FakeState>>,
    Path((service, method)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&state, "POST", &uri, &headers, &body);
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if service == "security.OAuthService" && method == "IntrospectToken" {
        let active = request["token"] == TOKEN;
        return axum::Json(json!({ "active": active, "username": if active { USER } else { "" } }))
            .into_response();
    }
    if let Some(injected) = lock(&state.inject).pop_front() {
        let mut response = error(injected.status, "injected failure");
        if let Some(after) = injected.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(after));
        }
        return response;
    }
    if !authorised(&headers) {
        return error(401, "Unauthenticated");
    }
    if service != "competitions.CompetitionApiService" {
        return error(404, "unknown service");
    }
    let slug = request["competitionName"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let Some(comp) = lock(&state.competitions).get(&slug).cloned() else {
        return error(404, &format!("Competition '{slug}' not found"));
    };
    match method.as_str() {
        "GetCompetition" => axum::Json(json!({
            "id": 42,
            "ref": format!("https://www.kaggle.com/competitions/{slug}"),
            "title": comp.title,
            "description": comp.description,
            "evaluationMetric": comp.metric,
            "isKernelsSubmissionsOnly": comp.code_only,
            "url": format!("https://www.kaggle.com/competitions/{slug}"),
        }))
        .into_response(),
        "ListDataFiles" => list_files(&comp, &request),
        "DownloadDataFiles" | "DownloadDataFile" => {
            state.download_calls.fetch_add(1, Ordering::SeqCst);
            if !comp.rules_accepted {
                return error(403, RULES_MESSAGE);
            }
            let name = match request["fileName"].as_str() {
                Some(file) if comp.files.iter().any(|(n, _)| n == file) => file.to_owned(),
                Some(file) => return error(404, &format!("File '{file}' not found")),
                None => format!("{slug}.zip"),
            };
            let origin = lock(&state.storage_origin).clone().unwrap_or_else(|| {
                let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
                format!("http://{}", host.unwrap_or("localhost"))
            });
            let location = format!("{origin}/storage/{slug}/{name}?X-Goog-Signature=abc123");
            (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
        }
        _ => error(404, "unknown method"),
    }
}

fn list_files(comp: &FakeCompetition, request: &Value) -> Response {
    let size = request["pageSize"].as_u64().unwrap_or(20).max(1) as usize;
    let start: usize = request["pageToken"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let page: Vec<Value> = comp
        .files
        .iter()
        .skip(start)
        .take(size)
        .map(|(name, bytes)| {
            json!({
                "ref": name,
                "name": name,
                "totalBytes": bytes.len(),
                "creationDate": "2025-04-01T10:00:00.000Z",
            })
        })
        .collect();
    let next = start + page.len();
    let token = if next < comp.files.len() {
        next.to_string()
    } else {
        String::new()
    };
    axum::Json(json!({ "files": page, "nextPageToken": token })).into_response()
}

async fn blob(
    State(state): State<Arc<FakeState>>,
    Path((slug, name)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    record(&state, "GET", &uri, &headers, b"");
    let Some(comp) = lock(&state.competitions).get(&slug).cloned() else {
        return error(404, "no such blob");
    };
    let data = if name == format!("{slug}.zip") {
        comp.zip
    } else if let Some((_, bytes)) = comp.files.iter().find(|(n, _)| *n == name) {
        bytes.clone()
    } else {
        return error(404, "no such blob");
    };
    let etag = format!("\"{}-{}\"", slug, data.len());
    let range_start = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.strip_suffix('-'))
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|_| !state.no_ranges.load(Ordering::SeqCst));
    let if_range_ok = headers
        .get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v == etag || v == LAST_MODIFIED);
    let common = |builder: axum::http::response::Builder| {
        builder
            .header(header::CONTENT_TYPE, "application/zip")
            .header(header::LAST_MODIFIED, LAST_MODIFIED)
            .header(header::ETAG, etag.as_str())
            .header(header::ACCEPT_RANGES, "bytes")
    };
    if let Some(start) = range_start.filter(|_| if_range_ok) {
        if start >= data.len() {
            return StatusCode::RANGE_NOT_SATISFIABLE.into_response();
        }
        let range = format!("bytes {start}-{}/{}", data.len() - 1, data.len());
        return common(Response::builder().status(StatusCode::PARTIAL_CONTENT))
            .header(header::CONTENT_RANGE, range)
            .header(header::CONTENT_LENGTH, data.len() - start)
            .body(Body::from(data[start..].to_vec()))
            .unwrap_or_else(|_| error(500, "response"));
    }
    state.full_blob_gets.fetch_add(1, Ordering::SeqCst);
    let length = data.len();
    let body = if state.drop_next_blob.swap(false, Ordering::SeqCst) {
        // Half the body, a pause so that it reaches the client, then the connection drops.
        let half = Bytes::from(data[..length / 2].to_vec());
        let chunks = futures_util::stream::unfold(Some(half), |half| async move {
            match half {
                Some(half) => Some((Ok(half), None)),
                None => {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    let dropped = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "drop");
                    Some((Err(dropped), None))
                }
            }
        });
        Body::from_stream(chunks)
    } else {
        Body::from(data)
    };
    common(Response::builder().status(StatusCode::OK))
        .header(header::CONTENT_LENGTH, length)
        .body(body)
        .unwrap_or_else(|_| error(500, "response"))
}

/// A zip of `files`, deflated.
pub fn zip_of(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    use std::io::Write;
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in files {
        writer
            .start_file(name.as_str(), options)
            .expect("start_file");
        writer.write_all(bytes).expect("write");
    }
    writer.finish().expect("finish").into_inner()
}

/// A small tabular competition in Kaggle layout.
pub fn competition(title: &str) -> FakeCompetition {
    let mut train = String::from("id,x,target\n");
    for i in 0..200 {
        train.push_str(&format!("{i},{},{}\n", i * 7 % 13, i % 2));
    }
    let files = vec![
        ("train.csv".to_owned(), train.into_bytes()),
        ("test.csv".to_owned(), b"id,x\n200,3\n201,5\n".to_vec()),
        (
            "sample_submission.csv".to_owned(),
            b"id,target\n200,0\n201,0\n".to_vec(),
        ),
    ];
    FakeCompetition {
        title: title.to_owned(),
        description: format!("{title}: predict the target."),
        metric: "Categorization Accuracy".to_owned(),
        zip: zip_of(&files),
        files,
        rules_accepted: true,
        code_only: false,
    }
}

/// The authorization scheme (`Basic`, `Bearer`) of each recorded call.
pub fn calls_auth(calls: &[Recorded]) -> Vec<Option<String>> {
    calls
        .iter()
        .map(|r| {
            r.authorization
                .as_deref()
                .and_then(|a| a.split_whitespace().next())
                .map(str::to_owned)
        })
        .collect()
}
