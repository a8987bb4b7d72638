//! Choosing the generator from the command line or the environment: an LLM when one is
//! configured (for `auto`, with the baseline behind it when the LLM is unreachable), the
//! built-in baseline otherwise.

use std::sync::Arc;

use super::{
    AnthropicConfig, AnthropicGenerator, BaselineFallback, BaselineGenerator, ConfigError,
    DynGenerator, OpenAiConfig, OpenAiGenerator,
};

/// Which generator writes the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum GeneratorKind {
    /// An LLM if `OPENAI_API_KEY`/`OPENAI_BASE_URL` or `ANTHROPIC_API_KEY` is set, else the
    /// baseline.
    #[default]
    Auto,
    /// The built-in, offline, deterministic pandas + scikit-learn pipeline.
    Baseline,
    /// Any OpenAI-compatible `/v1/chat/completions`.
    Openai,
    /// Anthropic's `/v1/messages`.
    Anthropic,
}

/// Builds the generator `kind` names, reading its settings through `lookup` (the process
/// environment in production).
///
/// # Errors
/// When an LLM is asked for but its settings are missing or invalid.
pub fn generator_from_env(
    kind: GeneratorKind,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<DynGenerator, ConfigError> {
    let set = |name: &str| lookup(name).is_some_and(|v| !v.trim().is_empty());
    let auto = kind == GeneratorKind::Auto;
    let kind = match kind {
        GeneratorKind::Auto if set("OPENAI_API_KEY") || set("OPENAI_BASE_URL") => {
            GeneratorKind::Openai
        }
        GeneratorKind::Auto if set("ANTHROPIC_API_KEY") => GeneratorKind::Anthropic,
        GeneratorKind::Auto => GeneratorKind::Baseline,
        other => other,
    };
    let llm: DynGenerator = match kind {
        GeneratorKind::Openai => Arc::new(OpenAiGenerator::new(OpenAiConfig::from_env(&lookup)?)?),
        GeneratorKind::Anthropic => Arc::new(AnthropicGenerator::new(AnthropicConfig::from_env(
            &lookup,
        )?)?),
        GeneratorKind::Auto | GeneratorKind::Baseline => return Ok(Arc::new(BaselineGenerator)),
    };
    Ok(if auto {
        Arc::new(BaselineFallback::new(llm))
    } else {
        llm
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn auto_picks_a_configured_llm_or_the_baseline() {
        let name = |kind, pairs| {
            generator_from_env(kind, env(pairs))
                .expect("generator")
                .name()
        };
        assert_eq!(name(GeneratorKind::Auto, &[]), "baseline");
        assert_eq!(
            name(GeneratorKind::Auto, &[("OPENAI_API_KEY", "k")]),
            "openai:gpt-4o-mini (else baseline)"
        );
        assert!(name(GeneratorKind::Auto, &[("ANTHROPIC_API_KEY", "k")]).starts_with("anthropic:"));
        assert_eq!(
            name(GeneratorKind::Openai, &[("OPENAI_API_KEY", "k")]),
            "openai:gpt-4o-mini"
        );
        assert_eq!(
            name(GeneratorKind::Baseline, &[("OPENAI_API_KEY", "k")]),
            "baseline"
        );
    }

    #[test]
    fn an_llm_without_its_key_is_a_clear_error() {
        let error = generator_from_env(GeneratorKind::Anthropic, env(&[])).expect_err("no key");
        assert!(error.to_string().contains("ANTHROPIC_API_KEY"), "{error}");
    }
}
