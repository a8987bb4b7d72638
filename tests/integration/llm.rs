//! The LLM generators (OpenAI-compatible and Anthropic) against fake servers on 127.0.0.1:
//! replies with and without code, retries on 429 (honouring `retry-after`) and 500, no retry
//! on 401, the prompt of a retry, truncated replies, and keys that never show in `Debug`.
//!
//! Each test runs against both providers unless the behaviour is one provider's own.

pub(crate) mod fake;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use fake::{
    BOTH, Fake, INPUT_TOKENS, KEY, MODEL, OUTPUT_TOKENS, Provider, SCRIPT, check_request, error,
    generate, ok,
};
use kaggle_solver::pipeline::generate::{
    AnthropicConfig, AnthropicGenerator, GenerateError, LlmUsage, OpenAiConfig, OpenAiGenerator,
    PreviousAttempt,
};
use serde_json::json;

/// Runs `test` once per provider, naming the provider on failure.
macro_rules! each_provider {
    (|$provider:ident| $body:block) => {
        for $provider in BOTH {
            async { $body }
                .await
                .with_context(|| format!("with {:?}", $provider))?;
        }
    };
}

#[tokio::test]
async fn a_good_reply_yields_the_script() -> Result<()> {
    each_provider!(|provider| {
        let fake = Fake::start(
            provider,
            vec![ok(provider, &format!("```python\n{SCRIPT}```"))],
        )
        .await?;
        let generator = fake.generator()?;
        let code = generate(&generator, None).await?;
        ensure!(code.code == SCRIPT, "{}", code.code);
        let prefix = if provider == Provider::OpenAi {
            "openai"
        } else {
            "anthropic"
        };
        ensure!(
            code.generator == format!("{prefix}:{MODEL}"),
            "{}",
            code.generator
        );
        ensure!(generator.name() == code.generator);
        let seen = fake.seen();
        ensure!(seen.len() == 1, "{} requests", seen.len());
        let user = check_request(provider, &seen[0].0, &seen[0].1)?;
        ensure!(
            user.contains("\"slug\":\"fake-competition\""),
            "the analysis JSON: {user}"
        );
        ensure!(!user.contains("previous script"));
        Ok::<_, anyhow::Error>(())
    });
    Ok(())
}

#[tokio::test]
async fn replies_report_the_tokens_their_usage_counts() -> Result<()> {
    each_provider!(|provider| {
        let script = format!("```python\n{SCRIPT}```");
        let fake = Fake::start(
            provider,
            vec![ok(provider, &script), ok(provider, "no code")],
        )
        .await?;
        let generator = fake.generator()?;
        let code = generate(&generator, None).await?;
        let name = generator.name();
        let provider_name = name.split(':').next().unwrap_or_default();
        let expected = LlmUsage {
            provider: provider_name.to_owned(),
            input_tokens: INPUT_TOKENS,
            output_tokens: OUTPUT_TOKENS,
        };
        ensure!(code.llm.as_ref() == Some(&expected), "{:?}", code.llm);
        // A reply without code cost its tokens too.
        match generate(&generator, None).await {
            Err(GenerateError::NoCode { llm, .. }) => {
                ensure!(llm.as_ref() == Some(&expected), "{llm:?}");
            }
            other => bail!("expected NoCode, got {other:?}"),
        }
        Ok::<_, anyhow::Error>(())
    });
    Ok(())
}

#[tokio::test]
async fn prose_around_the_code_is_dropped() -> Result<()> {
    each_provider!(|provider| {
        let reply = format!(
            "Here is a robust baseline.\n\n```bash\npip list\n```\n\n```python\n{SCRIPT}```\n\n\
             It validates on a hold-out split. Good luck!"
        );
        let fake = Fake::start(provider, vec![ok(provider, &reply)]).await?;
        let code = generate(&fake.generator()?, None).await?;
        ensure!(code.code == SCRIPT, "{}", code.code);
        Ok::<_, anyhow::Error>(())
    });
    Ok(())
}

#[tokio::test]
async fn a_reply_without_code_is_no_code_and_not_retried() -> Result<()> {
    each_provider!(|provider| {
        let reply = "I'm sorry, I can't see the data, so I cannot write this script.";
        let fake = Fake::start(provider, vec![ok(provider, reply)]).await?;
        match generate(&fake.generator()?, None).await {
            Err(GenerateError::NoCode { .. }) => {}
            other => bail!("expected NoCode, got {other:?}"),
        }
        ensure!(fake.seen().len() == 1);
        Ok::<_, anyhow::Error>(())
    });
    Ok(())
}

#[tokio::test]
async fn a_429_waits_for_retry_after_then_succeeds() -> Result<()> {
    each_provider!(|provider| {
        let mut limited = error(provider, 429, "rate limited");
        limited.headers.push(("retry-after", "1".to_owned()));
        let script = vec![limited, ok(provider, &format!("```python\n{SCRIPT}```"))];
        let fake = Fake::start(provider, script).await?;
        let started = Instant::now();
        let code = generate(&fake.generator()?, None).await?;
        let elapsed = started.elapsed();
        ensure!(code.code == SCRIPT);
        let seen = fake.seen();
        ensure!(seen.len() == 2, "{} requests", seen.len());
        let gap = seen[1].2.duration_since(seen[0].2);
        ensure!(
            gap >= Duration::from_millis(950),
            "retried after {gap:?}, not ~1 s"
        );
        ensure!(elapsed < Duration::from_secs(4), "took {elapsed:?}");
        ensure!(seen[0].1 == seen[1].1, "the retry sends the same request");
        Ok::<_, anyhow::Error>(())
    });
    Ok(())
}

#[tokio::test]
async fn a_500_is_retried_then_succeeds() -> Result<()> {
    each_provider!(|provider| {
        let script = vec![
            error(provider, 500, "internal error"),
            ok(provider, &format!("```python\n{SCRIPT}```")),
        ];
        let fake = Fake::start(provider, script).await?;
        let code = generate(&fake.generator()?, None).await?;
        ensure!(code.code == SCRIPT);
        ensure!(fake.seen().len() == 2, "{} requests", fake.seen().len());
        Ok::<_, anyhow::Error>(())
    });
    Ok(())
}

#[tokio::test]
async fn persistent_overload_ends_retryable_after_the_attempt_budget() -> Result<()> {
    each_provider!(|provider| {
        let overloaded = || {
            let mut canned = error(provider, 529, "Overloaded");
            canned.headers.push(("retry-after", "0".to_owned()));
            canned
        };
        let fake = Fake::start(provider, (0..6).map(|_| overloaded()).collect()).await?;
        let error = generate(&fake.generator()?, None)
            .await
            .err()
            .context("expected an error")?;
        ensure!(error.is_retryable(), "{error:?}");
        ensure!(error.to_string().contains("Overloaded"), "{error}");
        ensure!(fake.seen().len() == 4, "{} requests", fake.seen().len());
        Ok::<_, anyhow::Error>(())
    });
    Ok(())
}

#[tokio::test]
async fn a_401_aborts_at_once_with_the_providers_message() -> Result<()> {
    each_provider!(|provider| {
        let script = vec![
            error(provider, 401, "Incorrect API key provided"),
            ok(provider, "never sent"),
        ];
        let fake = Fake::start(provider, script).await?;
        let error = generate(&fake.generator()?, None)
            .await
            .err()
            .context("expected an error")?;
        let GenerateError::Abort { message, .. } = &error else {
            bail!("expected Abort, got {error:?}");
        };
        let var = match provider {
            Provider::OpenAi => "OPENAI_API_KEY",
            Provider::Anthropic => "ANTHROPIC_API_KEY",
        };
        ensure!(
            message.contains("Incorrect API key provided") && message.contains(var),
            "{message}"
        );
        ensure!(
            !format!("{error} {error:?}").contains(KEY),
            "the key leaked: {error:?}"
        );
        ensure!(fake.seen().len() == 1, "{} requests", fake.seen().len());
        Ok::<_, anyhow::Error>(())
    });
    Ok(())
}

#[tokio::test]
async fn a_retry_prompt_carries_the_previous_code_and_error() -> Result<()> {
    each_provider!(|provider| {
        let fake = Fake::start(
            provider,
            vec![ok(provider, &format!("```python\n{SCRIPT}```"))],
        )
        .await?;
        let previous = PreviousAttempt {
            code: "import pandas as pd\nprint(pd.read_csv('/input/trian.csv'))\n".to_owned(),
            error: "FileNotFoundError: [Errno 44] No such file or directory: '/input/trian.csv'"
                .to_owned(),
        };
        generate(&fake.generator()?, Some(previous.clone())).await?;
        let seen = fake.seen();
        let user = check_request(provider, &seen[0].0, &seen[0].1)?;
        ensure!(user.contains(&previous.code), "the previous code: {user}");
        ensure!(user.contains(&previous.error), "the previous error: {user}");
        ensure!(
            user.contains("attempt 2") && user.contains("corrected script"),
            "{user}"
        );
        Ok::<_, anyhow::Error>(())
    });
    Ok(())
}

#[tokio::test]
async fn an_unreachable_server_is_retryable() -> Result<()> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    drop(listener);
    each_provider!(|provider| {
        let mut fake = Fake::start(provider, Vec::new()).await?;
        fake.addr = addr; // nothing listens there any more
        let error = generate(&fake.generator()?, None)
            .await
            .err()
            .context("expected an error")?;
        ensure!(error.is_retryable(), "{error:?}");
        ensure!(error.to_string().contains("4 attempts"), "{error}");
        Ok::<_, anyhow::Error>(())
    });
    Ok(())
}

#[tokio::test]
async fn anthropic_reply_cut_at_max_tokens_still_yields_code() -> Result<()> {
    let provider = Provider::Anthropic;
    let cut = "Here it is:\n```python\nimport pandas as pd\ntrain = pd.read_csv('/input/tr";
    let mut reply = ok(provider, cut);
    reply.body["stop_reason"] = json!("max_tokens");
    let fake = Fake::start(provider, vec![reply]).await?;
    let code = generate(&fake.generator()?, None).await?;
    ensure!(
        code.code == "import pandas as pd\ntrain = pd.read_csv('/input/tr\n",
        "{}",
        code.code
    );
    Ok(())
}

#[tokio::test]
async fn openai_reasoning_models_get_max_completion_tokens() -> Result<()> {
    let provider = Provider::OpenAi;
    let refusal = error(
        provider,
        400,
        "Unsupported parameter: 'max_tokens' is not supported with this model. \
         Use 'max_completion_tokens' instead.",
    );
    let answer = || ok(provider, &format!("```python\n{SCRIPT}```"));
    let fake = Fake::start(provider, vec![refusal, answer(), answer()]).await?;
    let generator = fake.generator()?;
    generate(&generator, None).await?;
    generate(&generator, None).await?;
    let seen = fake.seen();
    ensure!(seen.len() == 3, "{} requests", seen.len());
    ensure!(seen[0].1["max_tokens"].is_u64());
    for (_, body, _) in &seen[1..] {
        ensure!(body["max_completion_tokens"].is_u64(), "{body}");
        ensure!(
            body.get("max_tokens").is_none() && body.get("temperature").is_none(),
            "{body}"
        );
    }
    Ok(())
}

#[test]
fn debug_output_never_shows_a_key() -> Result<()> {
    let env = |name: &str| match name {
        "OPENAI_API_KEY" | "ANTHROPIC_API_KEY" => Some(KEY.to_owned()),
        _ => None,
    };
    let openai = OpenAiConfig::from_env(env)?;
    let anthropic = AnthropicConfig::from_env(env)?;
    let shown = [
        format!("{openai:?}"),
        format!("{openai:#?}"),
        format!("{anthropic:?}"),
        format!("{:?}", OpenAiGenerator::new(openai.clone())?),
        format!("{:#?}", AnthropicGenerator::new(anthropic.clone())?),
    ];
    for text in shown {
        ensure!(
            !text.contains(KEY) && !text.contains("very-secret"),
            "the key leaked: {text}"
        );
        ensure!(text.contains("redacted"), "{text}");
    }
    Ok(())
}
