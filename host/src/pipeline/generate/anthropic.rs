//! The generator for Anthropic's Messages API (`POST {base}/v1/messages`).
//!
//! Anthropic differs from the OpenAI dialect in small ways that matter: the key goes in
//! `x-api-key`, an `anthropic-version` header is required, the system prompt is a top-level
//! field, `max_tokens` is mandatory, and the reply is an array of content blocks. A reply cut
//! at `max_tokens` still goes through extraction, which copes with an unterminated fence; the
//! sandbox and the next attempt deal with whatever is missing.

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
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
    name: "anthropic",
    key_var: "ANTHROPIC_API_KEY",
    base_var: "ANTHROPIC_BASE_URL",
};

/// The API version this client speaks.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// The sampling temperature: low, for code that follows instructions.
const TEMPERATURE: f64 = 0.2;

/// Settings for [`AnthropicGenerator`].
///
/// `base_url` is the API's root, without the version (`https://api.anthropic.com`), as in
/// Anthropic's SDKs; requests go to `{base_url}/v1/messages`. A base URL that already ends in
/// `/v1` or `/v1/messages` is not extended twice.
#[derive(Debug, Clone)]
pub struct AnthropicConfig {
    /// The API's base URL (`ANTHROPIC_BASE_URL`).
    pub base_url: Url,
    /// The key (`ANTHROPIC_API_KEY`), sent as `x-api-key`.
    pub api_key: ApiKey,
    /// The model (`KS_MODEL`).
    pub model: String,
    /// The most tokens the reply may have (the API requires a cap).
    pub max_tokens: u32,
    /// Time-outs, retries and size caps.
    pub http: HttpConfig,
}

impl AnthropicConfig {
    /// Anthropic's own API.
    pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
    /// The model used when `KS_MODEL` is unset.
    pub const DEFAULT_MODEL: &str = "claude-sonnet-4-5";
    /// The reply's default token cap: room for a long script.
    pub const DEFAULT_MAX_TOKENS: u32 = 8_192;

    /// Reads `ANTHROPIC_BASE_URL`, `ANTHROPIC_API_KEY` and `KS_MODEL` through `lookup` (pass
    /// `|name| std::env::var(name).ok()` for the process environment). Blank values count as
    /// unset.
    ///
    /// # Errors
    /// When the key is missing or the base URL is not an http(s) URL.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let base = lookup_var(&lookup, PROVIDER.base_var);
        let base_url = parse_base_url(
            PROVIDER.base_var,
            base.as_deref().unwrap_or(Self::DEFAULT_BASE_URL),
        )?;
        let api_key = lookup_var(&lookup, PROVIDER.key_var).ok_or(ConfigError::Missing {
            var: PROVIDER.key_var,
            why: "Anthropic's API needs a key",
        })?;
        Ok(Self {
            base_url,
            api_key: ApiKey::new(api_key),
            model: lookup_var(&lookup, MODEL_VAR).unwrap_or_else(|| Self::DEFAULT_MODEL.to_owned()),
            max_tokens: Self::DEFAULT_MAX_TOKENS,
            http: HttpConfig::default(),
        })
    }

    /// The messages URL the requests go to (see the rule above).
    pub fn endpoint(&self) -> Url {
        let path = self.base_url.path().trim_end_matches('/');
        if path.ends_with("/v1/messages") {
            self.base_url.clone()
        } else if path.ends_with("/v1") {
            with_path_suffix(&self.base_url, "messages")
        } else {
            with_path_suffix(&self.base_url, "v1/messages")
        }
    }
}

/// Writes pipelines with a Claude model through Anthropic's Messages API.
#[derive(Debug)]
pub struct AnthropicGenerator {
    config: AnthropicConfig,
    endpoint: Url,
    http: HttpClient,
}

impl AnthropicGenerator {
    /// Builds the generator.
    ///
    /// # Errors
    /// When the HTTP settings are out of range or the HTTP client cannot be built.
    pub fn new(config: AnthropicConfig) -> Result<Self, ConfigError> {
        let http = HttpClient::new(PROVIDER, config.http.clone())?;
        Ok(Self {
            endpoint: config.endpoint(),
            config,
            http,
        })
    }
}

#[async_trait]
impl Generator for AnthropicGenerator {
    fn name(&self) -> String {
        format!("{}:{}", PROVIDER.name, self.config.model)
    }

    async fn generate(
        &self,
        request: &GenerationRequest<'_>,
    ) -> Result<GeneratedCode, GenerateError> {
        let prompt = build_prompt(request);
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("x-api-key"),
            self.http.secret_header(self.config.api_key.expose())?,
        );
        headers.insert(
            HeaderName::from_static("anthropic-version"),
            HeaderValue::from_static(ANTHROPIC_VERSION),
        );
        let body = json!({
            "model": self.config.model,
            "max_tokens": self.config.max_tokens,
            "temperature": TEMPERATURE,
            "system": prompt.system,
            "messages": [{"role": "user", "content": prompt.user}],
        });
        let reply = self.http.post_json(&self.endpoint, &headers, &body).await?;
        let text = reply_text(&reply).map_err(|message| GenerateError::Abort {
            provider: PROVIDER.name.to_owned(),
            message,
        })?;
        let stop = reply.get("stop_reason").and_then(Value::as_str);
        tracing::debug!(model = %self.config.model, chars = text.len(), ?stop, "reply received");
        match stop {
            Some("max_tokens") => {
                tracing::warn!(
                    model = %self.config.model,
                    "the reply was cut at max_tokens; using what is there"
                );
            }
            Some("refusal") => tracing::warn!(model = %self.config.model, "the model refused"),
            _ => {}
        }
        let input = [
            "input_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
        ]
        .iter()
        .map(|field| token_count(&reply, &format!("/usage/{field}")))
        .fold(0, u64::saturating_add);
        let llm = Some(LlmUsage {
            provider: PROVIDER.name.to_owned(),
            input_tokens: input,
            output_tokens: token_count(&reply, "/usage/output_tokens"),
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

/// When the reply has no `content` array: not a Messages reply at all.
fn reply_text(reply: &Value) -> Result<String, String> {
    let blocks = reply
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            let shape: String = reply.to_string().chars().take(300).collect();
            format!("the reply has no content array; is the base URL Anthropic's API? {shape}")
        })?;
    Ok(blocks
        .iter()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .collect())
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
    fn from_env_defaults_overrides_and_errors() {
        let config =
            AnthropicConfig::from_env(env(&[("ANTHROPIC_API_KEY", "sk-ant")])).expect("a config");
        assert_eq!(config.base_url.as_str(), "https://api.anthropic.com/");
        assert_eq!(config.model, "claude-sonnet-4-5");
        assert_eq!(
            config.endpoint().as_str(),
            "https://api.anthropic.com/v1/messages"
        );
        let config = AnthropicConfig::from_env(env(&[
            ("ANTHROPIC_API_KEY", "k"),
            ("KS_MODEL", "claude-opus-4-1"),
        ]))
        .expect("a config");
        assert_eq!(config.model, "claude-opus-4-1");
        let missing = AnthropicConfig::from_env(env(&[])).expect_err("no key");
        assert!(
            missing.to_string().contains("ANTHROPIC_API_KEY"),
            "{missing}"
        );
    }

    #[test]
    fn endpoints_are_not_extended_twice() {
        let cases = [
            (
                "https://api.anthropic.com",
                "https://api.anthropic.com/v1/messages",
            ),
            (
                "https://proxy.example/anthropic/",
                "https://proxy.example/anthropic/v1/messages",
            ),
            (
                "https://proxy.example/v1",
                "https://proxy.example/v1/messages",
            ),
            (
                "https://proxy.example/v1/messages",
                "https://proxy.example/v1/messages",
            ),
        ];
        for (base, want) in cases {
            let config = AnthropicConfig::from_env(env(&[
                ("ANTHROPIC_API_KEY", "k"),
                ("ANTHROPIC_BASE_URL", base),
            ]))
            .expect("a config");
            assert_eq!(config.endpoint().as_str(), want, "{base}");
        }
    }

    #[test]
    fn text_blocks_are_joined_and_others_skipped() {
        let reply = json!({"content": [
            {"type": "thinking", "thinking": "hmm"},
            {"type": "text", "text": "a"},
            {"type": "tool_use", "id": "x"},
            {"type": "text", "text": "b"},
        ]});
        assert_eq!(reply_text(&reply), Ok("ab".to_owned()));
        assert_eq!(reply_text(&json!({"content": []})), Ok(String::new()));
        assert!(reply_text(&json!({"choices": []})).is_err());
    }
}
