//! Code generation: from an analysis (and, on a retry, the last attempt's code and error) to a
//! Python pipeline that follows the guest contract.
//!
//! Generators are pluggable (`Arc<dyn Generator>`): the built-in offline baseline, and LLMs over
//! an OpenAI-compatible or the Anthropic API.

mod baseline;
mod choose;
mod fallback;

use std::sync::Arc;

use async_trait::async_trait;

pub use baseline::{BaselineGenerator, baseline_code, variant_code};
pub use choose::{GeneratorKind, generator_from_env};
pub use fallback::BaselineFallback;

use super::analyse::CompetitionAnalysis;

mod anthropic;
mod config;
mod extract;
mod http;
mod joins;
mod openai;
mod prompt;

pub use anthropic::{ANTHROPIC_VERSION, AnthropicConfig, AnthropicGenerator};
pub use config::{ApiKey, ConfigError, HttpConfig, MODEL_VAR};
pub use extract::extract_python;
pub use openai::{OpenAiConfig, OpenAiGenerator};
pub use prompt::{
    DOCKER_LIST_INTRO, GUEST_LIST_INTRO, PREVIOUS_CODE_CHARS, Prompt, build_prompt, system_prompt,
};

/// The previous attempt, fed back to the generator on a retry.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviousAttempt {
    /// The code that was run.
    pub code: String,
    /// Why it failed: the sandbox's summary, the validation error, and the stderr tail.
    pub error: String,
}

/// A candidate the search asks to improve on: its code, the host's score of it, and what the
/// other candidates scored, so the generator knows what to beat.
#[derive(Debug, Clone, PartialEq)]
pub struct ImproveFrom {
    /// The parent candidate's number.
    pub candidate: u32,
    /// Its code.
    pub code: String,
    /// The metric the host scores by, as the prompt names it (e.g. `rmse`).
    pub metric: String,
    /// Whether a larger score is better.
    pub higher_is_better: bool,
    /// The host's score of the parent on the holdout.
    pub score: f64,
    /// Every scored candidate so far: (number, score), in the order they ran.
    pub others: Vec<(u32, f64)>,
}

/// What the search asks for: a new solution, a better one than a parent, or a fix of a failed
/// one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RequestKind {
    /// A new solution.
    Draft,
    /// A better solution than a parent ([`GenerationRequest::improve`]).
    Improve,
    /// A fix of a failed one ([`GenerationRequest::previous`]).
    Debug,
}

impl std::fmt::Display for RequestKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Draft => "draft",
            Self::Improve => "improve",
            Self::Debug => "debug",
        })
    }
}

/// What a generator is asked for.
#[derive(Debug, Clone)]
pub struct GenerationRequest<'a> {
    /// The competition's analysis.
    pub analysis: &'a CompetitionAnalysis,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The last failed attempt, on a retry: a debug request.
    pub previous: Option<PreviousAttempt>,
    /// Whether the script may run on the Docker backend (the policy allows it and this host has
    /// it): generators may then use what only the Docker image has.
    pub docker: bool,
    /// The search's candidate number (1-based; 1 for a single shot): deterministic generators
    /// propose a different variant for each.
    pub candidate: u32,
    /// The parent to improve on, for an improve request.
    pub improve: Option<ImproveFrom>,
}

impl GenerationRequest<'_> {
    /// What this request asks for: a debug request carries the failure, an improve request the
    /// parent; anything else is a draft.
    pub fn kind(&self) -> RequestKind {
        if self.previous.is_some() {
            RequestKind::Debug
        } else if self.improve.is_some() {
            RequestKind::Improve
        } else {
            RequestKind::Draft
        }
    }
}

/// Generated Python code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedCode {
    /// The Python source.
    pub code: String,
    /// Which generator wrote it (e.g. `baseline`, `openai:gpt-4o`).
    pub generator: String,
    /// The LLM reply it came from; `None` for code written without an LLM.
    pub llm: Option<LlmUsage>,
}

impl GeneratedCode {
    /// The LLM tokens the reply cost, prompt and reply together; `None` for code written
    /// without an LLM.
    pub fn tokens(&self) -> Option<u64> {
        self.llm.as_ref().map(LlmUsage::tokens)
    }
}

/// One reply of an LLM provider and the tokens its `usage` field counted (0 where the
/// provider left a count out).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LlmUsage {
    /// The provider, e.g. `openai` or `anthropic`.
    pub provider: String,
    /// Tokens of the prompt (for Anthropic, cached prompt tokens included).
    pub input_tokens: u64,
    /// Tokens of the reply.
    pub output_tokens: u64,
}

impl LlmUsage {
    /// Prompt and reply together.
    pub fn tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }
}

/// Why a generator produced no code.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// A transient failure (network, 429, 5xx): the same request may succeed later.
    #[error("{provider} is unavailable for now: {message}")]
    Retryable {
        provider: String,
        /// What happened.
        message: String,
    },
    /// A failure that will recur until something changes (bad key, bad model, bad request).
    #[error("{provider} refused the request: {message}")]
    Abort {
        provider: String,
        /// What happened and what to do.
        message: String,
    },
    /// The reply held no Python code.
    #[error("{provider} replied without any Python code")]
    NoCode {
        provider: String,
        /// The reply's token counts: a reply without code still costs them.
        llm: Option<LlmUsage>,
    },
}

impl GenerateError {
    /// Whether trying again later may help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retryable { .. })
    }
}

/// Writes Python pipelines.
#[async_trait]
pub trait Generator: Send + Sync + std::fmt::Debug {
    /// A short name for logs, e.g. `baseline` or `openai:gpt-4o-mini`.
    fn name(&self) -> String;

    /// Writes the code for one attempt.
    ///
    /// # Errors
    /// When no code could be obtained.
    async fn generate(
        &self,
        request: &GenerationRequest<'_>,
    ) -> Result<GeneratedCode, GenerateError>;
}

/// A shared, type-erased generator.
pub type DynGenerator = Arc<dyn Generator>;
