//! Generated code trying to make the host read the host: links and special files left in
//! `/output`, on both backends, through the real `kaggle-solver solve` with a fake LLM that
//! serves the attack as its "pipeline".
//!
//! For each attack the host's environment holds a canary (as the real one holds API keys) and
//! a host file holds another; neither may appear in anything the host prints, writes to `--out`
//! or sends to the LLM in its retry prompts.

use std::process::Command;

use crate::llm::fake::{Fake, KEY, MODEL, Provider, ok};
use crate::support::binary;

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
    if let Some(policy) = policy {
        std::fs::write(&policy_file, policy).expect("write the policy");
    }
    let base = format!("http://{}/v1", fake.addr);
    let (out_dir, with_policy) = (out.clone(), policy.map(|_| policy_file.clone()));
    let output = tokio::task::spawn_blocking(move || {
        let mut command = Command::new(binary());
        command
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .args([
                "solve",
                "examples/competitions/penguins",
                "--generator",
                "openai",
            ])
            .arg("--out")
            .arg(&out_dir)
            .env("OPENAI_BASE_URL", base)
            .env("OPENAI_API_KEY", KEY)
            .env("KS_MODEL", MODEL)
            .env("KS_TEST_CANARY", ENV_CANARY);
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
