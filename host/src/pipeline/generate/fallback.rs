//! `--generator auto` with an LLM configured: the LLM writes the code, and when it stays
//! unreachable after its own retries the baseline writes it instead, saying so in the name the
//! attempt records. An explicitly chosen LLM is not wrapped, so its outage fails the job.

use async_trait::async_trait;

use super::{
    BaselineGenerator, DynGenerator, GenerateError, GeneratedCode, GenerationRequest, Generator,
};
use crate::text::{QUOTED_VALUE_CHARS, head};

/// An LLM generator that falls back to the baseline when the LLM is unreachable.
#[derive(Debug)]
pub struct BaselineFallback {
    llm: DynGenerator,
}

impl BaselineFallback {
    /// Wraps `llm`.
    pub fn new(llm: DynGenerator) -> Self {
        Self { llm }
    }
}

#[async_trait]
impl Generator for BaselineFallback {
    fn name(&self) -> String {
        format!("{} (else baseline)", self.llm.name())
    }

    async fn generate(
        &self,
        request: &GenerationRequest<'_>,
    ) -> Result<GeneratedCode, GenerateError> {
        match self.llm.generate(request).await {
            Err(error @ GenerateError::Retryable { .. }) => {
                let why = head(&error.to_string(), QUOTED_VALUE_CHARS);
                tracing::warn!(%why, "the LLM is unreachable; the baseline writes this attempt");
                let mut code = BaselineGenerator.generate(request).await?;
                code.generator = format!(
                    "baseline (fallback: {} unreachable after its retries: {why})",
                    self.llm.name()
                );
                Ok(code)
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::pipeline::analyse::{CompetitionText, analyse};

    #[derive(Debug)]
    struct Failing(fn() -> GenerateError);

    #[async_trait]
    impl Generator for Failing {
        fn name(&self) -> String {
            "openai:test".into()
        }

        async fn generate(
            &self,
            _: &GenerationRequest<'_>,
        ) -> Result<GeneratedCode, GenerateError> {
            Err((self.0)())
        }
    }

    #[tokio::test]
    async fn an_unreachable_llm_falls_back_to_the_baseline_and_says_so_but_a_refusal_does_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, body) in [
            ("train.csv", "id,x,y\n1,1,a\n2,2,b\n"),
            ("test.csv", "id,x\n3,3\n"),
            ("sample_submission.csv", "id,y\n3,a\n"),
        ] {
            std::fs::write(dir.path().join(name), body).expect("write");
        }
        let analysis = analyse(dir.path(), "t", &CompetitionText::default()).expect("analysis");
        let request = GenerationRequest {
            analysis: &analysis,
            attempt: 1,
            previous: None,
            docker: false,
            candidate: 1,
            improve: None,
        };
        let unreachable = BaselineFallback::new(Arc::new(Failing(|| GenerateError::Retryable {
            provider: "openai:test".into(),
            message: "connection refused (gave up after 4 attempts)".into(),
        })));
        let code = unreachable
            .generate(&request)
            .await
            .expect("the baseline's code");
        assert!(code.code.contains("CONFIG = json.loads("));
        assert!(
            code.generator
                .starts_with("baseline (fallback: openai:test unreachable after its retries"),
            "{}",
            code.generator
        );
        assert!(
            code.generator.contains("connection refused"),
            "{}",
            code.generator
        );

        let refused = BaselineFallback::new(Arc::new(Failing(|| GenerateError::Abort {
            provider: "openai:test".into(),
            message: "bad key".into(),
        })));
        let error = refused
            .generate(&request)
            .await
            .expect_err("a refusal stays one");
        assert!(matches!(error, GenerateError::Abort { .. }), "{error}");
    }
}
