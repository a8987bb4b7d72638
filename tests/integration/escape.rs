//! Generated code trying to make the host read the host: links and special files left in
//! `/output`, on both backends, through the real `kaggle-solver solve` with a fake LLM that
//! serves the attack as its "pipeline".
//!
//! For each attack the host's environment holds a canary (as the real one holds API keys) and
//! a host file holds another; neither may appear in anything the host prints, writes to `--out`
//! or sends to the LLM in its retry prompts.

use std::time::Duration;

use crate::llm::fake::{Fake, KEY, Provider, ok};
use crate::support::solve_with_llm;

const ENV_CANARY: &str = "canary-env-5c1f0e3a9b7d";
const FILE_CANARY: &str = "canary-file-8e2d4b6a0c1f";

/// The penguins demo's valid submission, as a script line that writes it.
const VALID: &str = "import pandas as pd\n\
sub = pd.read_csv('/input/sample_submission.csv')\n\
sub['species'] = 'Adelie'\n";

/// What one attack run showed.
struct Seen {
    exit: Option<i32>,
    printed: String,
    out_files: String,
    prompts: String,
}

/// Runs `solve` on the demo with every LLM reply being `script` (`{canary}` replaced by the
/// canary file's path, `{canary_dir}` by its folder) under `policy`.
async fn attack(script: &str, policy: Option<&str>) -> Seen {
    let host = tempfile::tempdir().expect("tempdir");
    let canary = host.path().join("secret.txt");
    std::fs::write(&canary, FILE_CANARY).expect("write the canary");
    let script = script
        .replace("{canary}", &canary.to_string_lossy())
        .replace("{canary_dir}", &host.path().to_string_lossy());
    let reply = format!("```python\n{script}```");
    let replies = (0..3).map(|_| ok(Provider::OpenAi, &reply)).collect();
    let fake = Fake::start(Provider::OpenAi, replies)
        .await
        .expect("the fake LLM starts");
    let out = host.path().join("out");
    let policy_file = host.path().join("policy.toml");
    // A single shot: these attacks are on the run, not on the search.
    let policy = Some(format!(
        "{}\n[search]\ncandidates = 1\n",
        policy.unwrap_or("")
    ));
    if let Some(policy) = &policy {
        std::fs::write(&policy_file, policy).expect("write the policy");
    }
    let base = format!("http://{}/v1", fake.addr);
    let (out_dir, with_policy) = (out.clone(), policy.map(|_| policy_file.clone()));
    let output = tokio::task::spawn_blocking(move || {
        let mut command = solve_with_llm(&base, &out_dir);
        command.env("KS_TEST_CANARY", ENV_CANARY);
        if let Some(policy) = with_policy {
            command.arg("--policy").arg(policy);
        }
        command.output().expect("kaggle-solver runs")
    })
    .await
    .expect("joins");
    let mut out_files = String::new();
    if let Ok(entries) = std::fs::read_dir(&out) {
        for entry in entries.flatten() {
            out_files.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
        }
    }
    let prompts = fake
        .seen()
        .iter()
        .map(|(_, body, _)| body.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    Seen {
        exit: output.status.code(),
        printed: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        out_files,
        prompts,
    }
}

/// Nothing the host printed, wrote or sent holds a canary or the key.
fn assert_nothing_leaked(name: &str, seen: &Seen) {
    for secret in [ENV_CANARY, FILE_CANARY, KEY] {
        for (what, text) in [
            ("printed", &seen.printed),
            ("written to --out", &seen.out_files),
            ("sent to the LLM", &seen.prompts),
        ] {
            assert!(
                !text.contains(secret),
                "{name}: {secret} was {what}:\n{}",
                kaggle_solver::text::tail_bytes(text, 3000)
            );
        }
    }
}

/// The attacks that name `submission.csv` itself: the job must fail, saying why.
const LINKED_SUBMISSIONS: [(&str, &str); 4] = [
    (
        "a relative link to the host's environment",
        "import os\nos.symlink('../' * 40 + 'proc/self/environ', '/output/submission.csv')\n",
    ),
    (
        "an absolute link to the host's environment",
        "import os\nos.symlink('/proc/self/environ', '/output/submission.csv')\n",
    ),
    (
        "an absolute link to a host file",
        "import os\nos.symlink('{canary}', '/output/submission.csv')\n",
    ),
    (
        "a link made in /tmp and copied out",
        "import os, shutil\nos.symlink('../' * 40 + '{canary}'.lstrip('/'), '/tmp/l')\n\
         shutil.copy('/tmp/l', '/output/submission.csv', follow_symlinks=False)\n",
    ),
];

fn assert_failed_plainly(name: &str, seen: &Seen) {
    assert_eq!(seen.exit, Some(1), "{name}: {}", seen.printed);
    assert!(
        seen.printed.contains("all 3 attempts failed"),
        "{name}: {}",
        seen.printed
    );
    assert!(
        seen.printed.contains("not a regular file")
            || seen
                .printed
                .contains("did not write /output/submission.csv")
            || seen.printed.contains("Error"),
        "{name}: the reason is plain: {}",
        seen.printed
    );
    assert_nothing_leaked(name, seen);
}

#[tokio::test(flavor = "multi_thread")]
async fn links_named_submission_leak_nothing_on_wasm() {
    for (name, script) in LINKED_SUBMISSIONS {
        let seen = attack(script, None).await;
        assert_failed_plainly(name, &seen);
    }
    // The relative link is the one WASI lets the guest make: the host must have refused it,
    // by name.
    let seen = attack(LINKED_SUBMISSIONS[0].1, None).await;
    assert!(
        seen.printed.contains(
            "/output/submission.csv is not a regular file (it is a link or special file, \
             deleted unread)"
        ),
        "{}",
        seen.printed
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn links_beside_a_valid_submission_are_deleted_unread_on_wasm() {
    let script = format!(
        "{VALID}import os\n\
         os.symlink('../' * 40 + '{{canary_dir}}'.lstrip('/'), '/output/host-dir')\n\
         os.makedirs('/output/sub', exist_ok=True)\n\
         os.symlink('../' * 40 + '{{canary}}'.lstrip('/'), '/output/sub/submission.csv')\n\
         sub.to_csv('/output/submission.csv', index=False)\n"
    );
    let seen = attack(&script, None).await;
    assert_eq!(seen.exit, Some(0), "{}", seen.printed);
    assert_nothing_leaked("links beside a valid submission", &seen);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fifo_cannot_be_made_in_the_wasi_guest() {
    let seen = attack("import os\nos.mkfifo('/output/submission.csv')\n", None).await;
    assert_failed_plainly("a fifo", &seen);
}

const DOCKER_ONLY: &str = "[sandbox]\nbackends = [\"docker\"]\n";

#[tokio::test(flavor = "multi_thread")]
async fn links_and_fifos_leak_nothing_on_docker() {
    crate::support::docker_sandbox().await; // fails loudly without a daemon or the image
    let fifo = (
        "a fifo named submission.csv",
        "import os\nos.mkfifo('/output/submission.csv')\n",
    );
    for (name, script) in LINKED_SUBMISSIONS.into_iter().chain([fifo]) {
        let seen = attack(script, Some(DOCKER_ONLY)).await;
        assert_failed_plainly(name, &seen);
        // Docker lets the script make any of these; each must be refused as what it is.
        assert!(
            seen.printed
                .contains("/output/submission.csv is not a regular file"),
            "{name}: {}",
            seen.printed
        );
    }
}

/// Writes a submission whose header is one 20 MB column name, and 5 MB to each of stdout and
/// stderr: everything a job's status and logs might quote.
const FLOOD: &str = "import sys\n\
sys.stdout.write('o' * (5 << 20))\n\
sys.stderr.write('e' * (5 << 20))\n\
open('/output/submission.csv', 'w').write('h' * (20 << 20) + '\\n1\\n')\n";

#[derive(Debug)]
struct Fixed;

#[async_trait::async_trait]
impl kaggle_solver::pipeline::generate::Generator for Fixed {
    fn name(&self) -> String {
        "fixed".into()
    }

    async fn generate(
        &self,
        _: &kaggle_solver::pipeline::generate::GenerationRequest<'_>,
    ) -> Result<
        kaggle_solver::pipeline::generate::GeneratedCode,
        kaggle_solver::pipeline::generate::GenerateError,
    > {
        Ok(kaggle_solver::pipeline::generate::GeneratedCode {
            code: FLOOD.to_owned(),
            generator: self.name(),
            llm: None,
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_guest_leaves_a_small_status_and_small_logs() {
    use axum::body::Body;
    use axum::http::Request;
    use kaggle_solver::host::Host;
    use kaggle_solver::pipeline::fetch::{FetchConfig, Fetcher, LocalPolicy};
    use kaggle_solver::pipeline::solve::Sandboxes;
    use kaggle_solver::policies::PolicyDir;
    use std::sync::Arc;
    use tower::ServiceExt;

    let dir = tempfile::tempdir().expect("tempdir");
    let mirror = std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/competitions"
    ));
    let mut fetch = FetchConfig::new(dir.path().join("cache"));
    fetch.competitions_dir = Some(mirror.clone());
    fetch.local_policy = LocalPolicy::UnderRoot(mirror);
    std::fs::create_dir_all(dir.path().join("policies")).expect("mkdir");
    std::fs::write(
        dir.path().join("policies/quick.toml"),
        "[attempts]\nmax = 1\n[search]\ncandidates = 1\n",
    )
    .expect("write");
    let host = Host::builder()
        .policies(PolicyDir::new(dir.path().join("policies")))
        .allowed_policies(["quick"])
        .fetcher(Arc::new(Fetcher::new(fetch)))
        .sandboxes(Sandboxes {
            wasm: Some(Arc::new(crate::support::wasm_sandbox())),
            docker: None,
        })
        .generator(Arc::new(Fixed))
        .data_dir(dir.path().join("data"))
        .workers(1)
        .build()
        .await
        .expect("the host builds");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let workers = tokio::spawn(host.run_workers(shutdown.clone()));
    let router = host.router();
    let get = |uri: String| {
        let router = router.clone();
        async move {
            let response = router
                .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
                .await
                .expect("answered");
            axum::body::to_bytes(response.into_body(), 64 << 20)
                .await
                .expect("body")
        }
    };
    let response = router
        .clone()
        .oneshot(
            Request::post("/run?url=penguins&policy=quick")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("answered");
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    let id = serde_json::from_slice::<serde_json::Value>(&body).expect("json")["job_id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    let status = loop {
        let body = get(format!("/status/{id}")).await;
        let status: serde_json::Value = serde_json::from_slice(&body).expect("json");
        if status["status"] == "failed" || status["status"] == "completed" {
            assert!(body.len() < 4_096, "the status is {} bytes", body.len());
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "{status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status["status"], "failed", "{status}");
    let message = status["message"].as_str().expect("a message");
    assert!(message.contains("the columns must be exactly"), "{message}");
    assert!(message.contains("more characters)"), "{message}");
    let logs = get(format!("/jobs/{id}/logs")).await;
    assert!(logs.len() < 64 << 10, "the logs are {} bytes", logs.len());
    let logs: serde_json::Value = serde_json::from_slice(&logs).expect("json");
    let tail = logs["attempts"][0]["stderr_tail"].as_str().expect("a tail");
    assert!(
        tail.starts_with("[... ") && tail.len() < 9_000,
        "{}",
        tail.len()
    );
    shutdown.cancel();
    let _ = workers.await;
}
