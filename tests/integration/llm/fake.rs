//! A fake LLM server for the generator tests, speaking either OpenAI's chat completions or
//! Anthropic's messages on a random 127.0.0.1 port, and the helpers around it.
//!
//! The fake plays a script of canned replies, records every request, and refuses (401) a
//! request without the right key header, as the real services do.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use kaggle_solver::pipeline::analyse::{
    ColumnProfile, ColumnType, CompetitionAnalysis, DataFile, Metric, PredictionKind,
    SubmissionShape, TableProfile, TaskKind,
};
use kaggle_solver::pipeline::generate::{
    AnthropicConfig, AnthropicGenerator, DynGenerator, GenerateError, GeneratedCode,
    GenerationRequest, HttpConfig, OpenAiConfig, OpenAiGenerator, PreviousAttempt, system_prompt,
};
use serde_json::{Value, json};

pub(crate) const KEY: &str = "sk-test-very-secret-0123456789";
pub(crate) const MODEL: &str = "fake-model-1";
/// The prompt tokens every good reply's `usage` counts.
pub(crate) const INPUT_TOKENS: u64 = 1234;
/// The reply tokens every good reply's `usage` counts.
pub(crate) const OUTPUT_TOKENS: u64 = 56;
pub(crate) const SCRIPT: &str = "import pandas as pd\n\
train = pd.read_csv('/input/train.csv')\n\
test = pd.read_csv('/input/test.csv')\n\
sub = pd.read_csv('/input/sample_submission.csv')\n\
sub['target'] = int(train['target'].mode()[0])\n\
sub.to_csv('/output/submission.csv', index=False)\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Provider {
    OpenAi,
    Anthropic,
}

/// Both providers, for tests that run against each.
pub(crate) const BOTH: [Provider; 2] = [Provider::OpenAi, Provider::Anthropic];

/// A canned reply: status, extra headers, body.
#[derive(Debug)]
pub(crate) struct Canned {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Value,
}

/// A request the fake received.
#[derive(Debug)]
struct Seen {
    path: String,
    body: Value,
    at: Instant,
}

#[derive(Debug)]
struct FakeState {
    provider: Provider,
    replies: Mutex<VecDeque<Canned>>,
    seen: Mutex<Vec<Seen>>,
}

/// A fake LLM server on a random local port.
#[derive(Debug)]
pub(crate) struct Fake {
    pub addr: SocketAddr,
    state: Arc<FakeState>,
    provider: Provider,
}

impl Fake {
    pub(crate) async fn start(provider: Provider, replies: Vec<Canned>) -> Result<Self> {
        let state = Arc::new(FakeState {
            provider,
            replies: Mutex::new(replies.into()),
            seen: Mutex::new(Vec::new()),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self {
            addr,
            state,
            provider,
        })
    }

    pub(crate) fn seen(&self) -> Vec<(String, Value, Instant)> {
        let seen = self.state.seen.lock().expect("the fake's lock");
        seen.iter()
            .map(|s| (s.path.clone(), s.body.clone(), s.at))
            .collect()
    }

    /// The generator under test, pointed at this fake, with quick retries.
    pub(crate) fn generator(&self) -> Result<DynGenerator> {
        let base = match self.provider {
            Provider::OpenAi => format!("http://{}/v1", self.addr),
            Provider::Anthropic => format!("http://{}", self.addr),
        };
        let env = move |name: &str| match name {
            "OPENAI_BASE_URL" | "ANTHROPIC_BASE_URL" => Some(base.clone()),
            "OPENAI_API_KEY" | "ANTHROPIC_API_KEY" => Some(KEY.to_owned()),
            "KS_MODEL" => Some(MODEL.to_owned()),
            _ => None,
        };
        Ok(match self.provider {
            Provider::OpenAi => {
                let mut config = OpenAiConfig::from_env(env)?;
                config.http = quick();
                Arc::new(OpenAiGenerator::new(config)?)
            }
            Provider::Anthropic => {
                let mut config = AnthropicConfig::from_env(env)?;
                config.http = quick();
                Arc::new(AnthropicGenerator::new(config)?)
            }
        })
    }
}

async fn handle(
    State(state): State<Arc<FakeState>>,
    uri: Uri,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    state.seen.lock().expect("the fake's lock").push(Seen {
        path: uri.path().to_owned(),
        body,
        at: Instant::now(),
    });
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let authorised = match state.provider {
        Provider::OpenAi => header("authorization") == Some(&format!("Bearer {KEY}")),
        Provider::Anthropic => {
            header("x-api-key") == Some(KEY) && header("anthropic-version") == Some("2023-06-01")
        }
    };
    let next = state.replies.lock().expect("the fake's lock").pop_front();
    let canned = match next {
        _ if !authorised => error(state.provider, 401, "invalid api key"),
        Some(canned) => canned,
        None => error(state.provider, 500, "the fake has no more replies"),
    };
    let status = StatusCode::from_u16(canned.status).unwrap_or(StatusCode::IM_A_TEAPOT);
    let mut response = (status, Json(canned.body)).into_response();
    for (name, value) in canned.headers {
        if let Ok(value) = value.parse() {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

pub(crate) fn quick() -> HttpConfig {
    HttpConfig {
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(20),
        max_attempts: 4,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        max_retry_after: Duration::from_secs(5),
        ..HttpConfig::default()
    }
}

pub(crate) fn ok(provider: Provider, text: &str) -> Canned {
    let body = match provider {
        Provider::OpenAi => json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": MODEL,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": INPUT_TOKENS, "completion_tokens": OUTPUT_TOKENS,
                      "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS},
        }),
        // Anthropic counts cached prompt tokens apart; they are prompt tokens all the same.
        Provider::Anthropic => json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": MODEL,
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
            "usage": {"input_tokens": INPUT_TOKENS - 20, "cache_read_input_tokens": 15,
                      "cache_creation_input_tokens": 5, "output_tokens": OUTPUT_TOKENS},
        }),
    };
    Canned {
        status: 200,
        headers: Vec::new(),
        body,
    }
}

/// A good reply whose `usage` counts `tokens` in all (100 of them the completion's).
pub(crate) fn ok_with_usage(provider: Provider, text: &str, tokens: u64) -> Canned {
    let mut canned = ok(provider, text);
    canned.body["usage"] = match provider {
        Provider::OpenAi => json!({
            "prompt_tokens": tokens - 100, "completion_tokens": 100, "total_tokens": tokens,
        }),
        Provider::Anthropic => json!({"input_tokens": tokens - 100, "output_tokens": 100}),
    };
    canned
}

pub(crate) fn error(provider: Provider, status: u16, message: &str) -> Canned {
    let body = match provider {
        Provider::OpenAi => json!({"error": {"message": message, "type": "fake_error"}}),
        Provider::Anthropic => {
            json!({"type": "error", "error": {"type": "fake_error", "message": message}})
        }
    };
    Canned {
        status,
        headers: Vec::new(),
        body,
    }
}

fn table(path: &str, rows: u64, names: &[&str]) -> TableProfile {
    TableProfile {
        path: path.to_owned(),
        rows,
        columns: names
            .iter()
            .map(|name| ColumnProfile {
                name: (*name).to_owned(),
                dtype: ColumnType::Integer,
                missing_fraction: 0.0,
                distinct: 2,
                examples: vec!["0".to_owned(), "1".to_owned()],
            })
            .collect(),
        head: Vec::new(),
    }
}

pub(crate) fn analysis() -> CompetitionAnalysis {
    CompetitionAnalysis {
        slug: "fake-competition".to_owned(),
        files: ["train.csv", "test.csv", "sample_submission.csv"]
            .iter()
            .map(|p| DataFile {
                path: (*p).to_owned(),
                bytes: 2_048,
            })
            .collect(),
        train: table("train.csv", 100, &["id", "x1", "target"]),
        test: table("test.csv", 25, &["id", "x1"]),
        sample_submission: table("sample_submission.csv", 25, &["id", "target"]),
        id_column: "id".to_owned(),
        target_columns: vec!["target".to_owned()],
        shape: SubmissionShape::Single {
            target: "target".to_owned(),
        },
        shape_reason: "one prediction column \"target\", a column of train.csv".to_owned(),
        task: TaskKind::Binary,
        prediction: PredictionKind::Label,
        metric: Some(Metric::Accuracy),
        classes: vec!["0".to_owned(), "1".to_owned()],
        description: None,
        media: None,
        images: None,
        tables: Default::default(),
    }
}

pub(crate) async fn generate(
    generator: &DynGenerator,
    previous: Option<PreviousAttempt>,
) -> Result<GeneratedCode, GenerateError> {
    let analysis = analysis();
    let request = GenerationRequest {
        analysis: &analysis,
        attempt: if previous.is_some() { 2 } else { 1 },
        previous,
        docker: false,
        candidate: 1,
        improve: None,
    };
    generator.generate(&request).await
}

/// Checks the request's shape for its provider and returns its user message.
pub(crate) fn check_request(provider: Provider, path: &str, body: &Value) -> Result<String> {
    ensure!(body["model"] == MODEL, "the model: {body}");
    let user = match provider {
        Provider::OpenAi => {
            ensure!(path == "/v1/chat/completions", "the path: {path}");
            ensure!(body["messages"][0]["role"] == "system");
            ensure!(body["messages"][0]["content"] == system_prompt(false));
            ensure!(body["messages"][1]["role"] == "user");
            ensure!(body["temperature"] == 0.2 && body["max_tokens"].is_u64());
            &body["messages"][1]["content"]
        }
        Provider::Anthropic => {
            ensure!(path == "/v1/messages", "the path: {path}");
            ensure!(body["system"] == system_prompt(false));
            ensure!(body["messages"][0]["role"] == "user");
            ensure!(body["max_tokens"].is_u64());
            &body["messages"][0]["content"]
        }
    };
    let user = user.as_str().context("the user message is a string")?;
    ensure!(user.contains("Competition: fake-competition"), "{user}");
    Ok(user.to_owned())
}
