//! The generator for OpenAI's API and every server that speaks its chat-completions dialect
//! (vLLM, Ollama, llama.cpp, LiteLLM, OpenRouter, Groq, ...).
//!
//! One `POST {base}/chat/completions` per attempt, with the shared prompt and HTTP plumbing.
//! Reasoning models (o1, o3, gpt-5, ...) refuse `max_tokens` and a custom `temperature`; when a
//! 400 says so, the request is sent again in their dialect and the generator remembers it.

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use reqwest::header::{AUTHORIZATION, HeaderMap};
use serde_json::{Value, json};
use url::Url;

use super::config::{
    ApiKey, ConfigError, HttpConfig, MODEL_VAR, lookup_var, parse_base_url, with_path_suffix,
};
use super::extract::extract_python;
use super::http::{HttpClient, ProviderInfo, token_count};
use super::prompt::build_prompt;
use super::{GenerateError, GeneratedCode, GenerationRequest, Generator, LlmUsage};

const PROVIDER: ProviderInfo = ProviderInfo {
    name: "openai",
    key_var: "OPENAI_API_KEY",
    base_var: "OPENAI_BASE_URL",
};

/// The sampling temperature: low, for code that follows instructions.
const TEMPERATURE: f64 = 0.2;

/// Settings for [`OpenAiGenerator`].
///
/// `base_url` includes the API version, as in OpenAI's SDKs (`https://api.openai.com/v1`,
/// `http://localhost:11434/v1`); requests go to `{base_url}/chat/completions`. A base URL with
/// no path at all (`http://localhost:8000`) gets `/v1` added, and one that already ends in
/// `/chat/completions` is used as it is.
#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// The API's base URL (`OPENAI_BASE_URL`).
    pub base_url: Url,
    /// The key (`OPENAI_API_KEY`), sent as a Bearer token; optional for local servers.
    pub api_key: Option<ApiKey>,
    /// The model (`KS_MODEL`).
    pub model: String,
    /// The most tokens the reply may have.
    pub max_tokens: u32,
    /// Time-outs, retries and size caps.
    pub http: HttpConfig,
}

impl OpenAiConfig {
    /// OpenAI's own API.
    pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
    /// The model used when `KS_MODEL` is unset.
    pub const DEFAULT_MODEL: &str = "gpt-4o-mini";
    /// The reply's default token cap: room for a long script.
    pub const DEFAULT_MAX_TOKENS: u32 = 8_192;

    /// Reads `OPENAI_BASE_URL`, `OPENAI_API_KEY` and `KS_MODEL` through `lookup` (pass
    /// `|name| std::env::var(name).ok()` for the process environment). Blank values count as
    /// unset.
    ///
    /// # Errors
    /// When the base URL is not an http(s) URL, or the key is missing for OpenAI's own API
    /// (other servers may not need one).
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let base = lookup_var(&lookup, PROVIDER.base_var);
        let base_url = parse_base_url(
            PROVIDER.base_var,
            base.as_deref().unwrap_or(Self::DEFAULT_BASE_URL),
        )?;
        let api_key = lookup_var(&lookup, PROVIDER.key_var).map(ApiKey::new);
        if api_key.is_none() && base_url.host_str() == Some("api.openai.com") {
            return Err(ConfigError::Missing {
                var: PROVIDER.key_var,
                why: "OpenAI's API needs a key (or set OPENAI_BASE_URL to a server that does not)",
            });
        }
        Ok(Self {
            base_url,
            api_key,
            model: lookup_var(&lookup, MODEL_VAR).unwrap_or_else(|| Self::DEFAULT_MODEL.to_owned()),
            max_tokens: Self::DEFAULT_MAX_TOKENS,
            http: HttpConfig::default(),
        })
    }

    /// The chat-completions URL the requests go to (see the rule above).
    pub fn endpoint(&self) -> Url {
        let path = self.base_url.path().trim_end_matches('/');
        if path.ends_with("/chat/completions") {
            self.base_url.clone()
        } else if path.is_empty() {
            with_path_suffix(&self.base_url, "v1/chat/completions")
        } else {
            with_path_suffix(&self.base_url, "chat/completions")
        }
    }
}

/// Writes pipelines with a model behind an OpenAI-compatible chat-completions API.
#[derive(Debug)]
pub struct OpenAiGenerator {
    config: OpenAiConfig,
    endpoint: Url,
    http: HttpClient,
    /// Set once the server has said it wants `max_completion_tokens` and no temperature.
    reasoning_dialect: AtomicBool,
}

impl OpenAiGenerator {
    /// Builds the generator.
    ///
    /// # Errors
    /// When the HTTP settings are out of range or the HTTP client cannot be built.
    pub fn new(config: OpenAiConfig) -> Result<Self, ConfigError> {
        let http = HttpClient::new(PROVIDER, config.http.clone())?;
        Ok(Self {
            endpoint: config.endpoint(),
            config,
            http,
            reasoning_dialect: AtomicBool::new(false),
        })
    }

    fn body(&self, system: &str, user: &str, reasoning: bool) -> Value {
        let mut body = json!({
            "model": self.config.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
        });
        if reasoning {
            body["max_completion_tokens"] = json!(self.config.max_tokens);
        } else {
            body["max_tokens"] = json!(self.config.max_tokens);
            body["temperature"] = json!(TEMPERATURE);
        }
        body
    }
}

#[async_trait]
impl Generator for OpenAiGenerator {
    fn name(&self) -> String {
        format!("{}:{}", PROVIDER.name, self.config.model)
    }

    async fn generate(
        &self,
        request: &GenerationRequest<'_>,
    ) -> Result<GeneratedCode, GenerateError> {
        let prompt = build_prompt(request);
        let mut headers = HeaderMap::new();
        if let Some(key) = &self.config.api_key {
            headers.insert(
                AUTHORIZATION,
                self.http
                    .secret_header(&format!("Bearer {}", key.expose()))?,
            );
        }
        let reasoning = self.reasoning_dialect.load(Ordering::Relaxed);
        let body = self.body(&prompt.system, &prompt.user, reasoning);
        let reply = match self.http.post_json(&self.endpoint, &headers, &body).await {
            Err(GenerateError::Abort { message, .. })
                if !reasoning && wants_reasoning_dialect(&message) =>
            {
                tracing::info!(
                    model = %self.config.model,
                    "the model wants max_completion_tokens; sending again"
                );
                self.reasoning_dialect.store(true, Ordering::Relaxed);
                let body = self.body(&prompt.system, &prompt.user, true);
                self.http.post_json(&self.endpoint, &headers, &body).await?
            }
            other => other?,
        };
        let text = reply_text(&reply).map_err(|message| GenerateError::Abort {
            provider: PROVIDER.name.to_owned(),
            message,
        })?;
        let finish = reply
            .pointer("/choices/0/finish_reason")
            .and_then(Value::as_str);
        tracing::debug!(model = %self.config.model, chars = text.len(), ?finish, "reply received");
        if finish == Some("length") {
            tracing::warn!(
                model = %self.config.model,
                "the reply was cut at max_tokens; using what is there"
            );
        }
        let llm = Some(LlmUsage {
            provider: PROVIDER.name.to_owned(),
            input_tokens: token_count(&reply, "/usage/prompt_tokens"),
            output_tokens: token_count(&reply, "/usage/completion_tokens"),
        });
        let Some(code) = extract_python(&text) else {
            return Err(GenerateError::NoCode {
                provider: PROVIDER.name.to_owned(),
                llm,
            });
        };
        Ok(GeneratedCode {
            code,
            generator: self.name(),
            llm,
        })
    }
}

/// Whether a 400's message says the model takes `max_completion_tokens` or no temperature.
fn wants_reasoning_dialect(message: &str) -> bool {
    message.contains("max_completion_tokens")
        || (message.contains("temperature")
            && (message.contains("nsupported") || message.contains("not support")))
}

/// The text of `choices[0].message.content`: a string, or (some servers) an array of text parts.
/// An empty or refused reply is an empty string, which extraction turns into `NoCode`.
///
/// # Errors
/// When the reply has no `choices[0].message`: not a chat-completions reply at all.
fn reply_text(reply: &Value) -> Result<String, String> {
    let message = reply.pointer("/choices/0/message").ok_or_else(|| {
        let shape = reply.to_string();
        let shape: String = shape.chars().take(300).collect();
        format!(
            "the reply has no choices[0].message; is the base URL a chat-completions API? {shape}"
        )
    })?;
    if let Some(refusal) = message.get("refusal").and_then(Value::as_str) {
        tracing::warn!(%refusal, "the model refused");
    }
    Ok(match message.get("content") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn from_env_defaults_and_overrides() {
        let config =
            OpenAiConfig::from_env(env(&[("OPENAI_API_KEY", "sk-abc")])).expect("a config");
        assert_eq!(config.base_url.as_str(), "https://api.openai.com/v1");
        assert_eq!(config.model, "gpt-4o-mini");
        assert_eq!(config.api_key, Some(ApiKey::new("sk-abc")));
        let config = OpenAiConfig::from_env(env(&[
            ("OPENAI_BASE_URL", "http://localhost:11434/v1"),
            ("KS_MODEL", "qwen2.5-coder"),
        ]))
        .expect("a local server needs no key");
        assert_eq!(config.api_key, None);
        assert_eq!(config.model, "qwen2.5-coder");
    }

    #[test]
    fn from_env_errors() {
        let missing =
            OpenAiConfig::from_env(env(&[("OPENAI_API_KEY", " ")])).expect_err("blank key");
        assert!(missing.to_string().contains("OPENAI_API_KEY"), "{missing}");
        let bad = OpenAiConfig::from_env(env(&[("OPENAI_BASE_URL", "localhost:8000")]))
            .expect_err("no scheme");
        assert!(bad.to_string().contains("OPENAI_BASE_URL"), "{bad}");
    }

    #[test]
    fn endpoints_follow_the_sdk_rule() {
        let cases = [
            (
                "https://api.openai.com/v1",
                "https://api.openai.com/v1/chat/completions",
            ),
            (
                "https://api.openai.com/v1/",
                "https://api.openai.com/v1/chat/completions",
            ),
            (
                "http://localhost:8000",
                "http://localhost:8000/v1/chat/completions",
            ),
            (
                "http://localhost:8000/",
                "http://localhost:8000/v1/chat/completions",
            ),
            (
                "https://openrouter.ai/api/v1",
                "https://openrouter.ai/api/v1/chat/completions",
            ),
            (
                "https://x.example/v1/chat/completions",
                "https://x.example/v1/chat/completions",
            ),
        ];
        for (base, want) in cases {
            let config =
                OpenAiConfig::from_env(env(&[("OPENAI_BASE_URL", base), ("OPENAI_API_KEY", "k")]))
                    .expect("a config");
            assert_eq!(config.endpoint().as_str(), want, "{base}");
        }
    }

    #[test]
    fn replies_are_read_as_strings_or_parts() {
        let text = |v: Value| reply_text(&v);
        assert_eq!(
            text(json!({"choices": [{"message": {"content": "hi"}}]})),
            Ok("hi".to_owned())
        );
        assert_eq!(
            text(json!({"choices": [{"message": {"content": [
                {"type": "text", "text": "a"},
                {"text": "b"},
            ]}}]})),
            Ok("ab".to_owned())
        );
        assert_eq!(
            text(json!({"choices": [{"message": {"content": null, "refusal": "no"}}]})),
            Ok(String::new())
        );
        assert!(text(json!({"data": []})).is_err());
    }

    #[test]
    fn reasoning_dialect_is_recognised() {
        assert!(wants_reasoning_dialect(
            "HTTP 400 Bad Request: Unsupported parameter: 'max_tokens' is not supported with this \
             model.
             Use 'max_completion_tokens' instead."
        ));
        assert!(wants_reasoning_dialect(
            "Unsupported value: 'temperature' does not support 0.2 with this model."
        ));
        assert!(!wants_reasoning_dialect("The model `gpt-9` does not exist"));
    }
}
