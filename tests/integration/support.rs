//! Helpers shared by the test modules: one WASI sandbox per test process, the Docker sandbox,
//! generous default caps, and a one-call way to run a script with fresh folders.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use kaggle_solver::sandbox::wasm::{GuestImage, Prewarm, WasmSandbox};
use kaggle_solver::sandbox::{DockerSandbox, Outcome, RunLimits, Sandbox, SandboxRequest};
use tempfile::TempDir;

/// The WASI sandbox, built once per test process (installing and compiling on first use on the
/// machine, which takes about a minute) with its pre-warmed image, which is built once per
/// machine (several minutes) and cached like the compiled module.
pub fn wasm_sandbox() -> WasmSandbox {
    static SANDBOX: OnceLock<WasmSandbox> = OnceLock::new();
    SANDBOX
        .get_or_init(|| {
            WasmSandbox::builder()
                .prewarm(Prewarm::Now)
                .progress(|event| eprintln!("runtime: {event}"))
                .build()
                .expect("the WASI sandbox builds: is python3 with pip available?")
        })
        .clone()
}

/// The shared WASI sandbox, failing loudly unless its pre-warmed image is loaded.
pub fn prewarmed_sandbox() -> WasmSandbox {
    let sandbox = wasm_sandbox();
    assert_eq!(
        sandbox.prewarm_state(),
        Some(Ok(())),
        "the pre-warmed image is unavailable"
    );
    sandbox
}

/// Runs `script` in the shared WASI sandbox on the given guest module.
pub async fn run_guest(
    guest: GuestImage,
    script: &str,
    input: Option<&Path>,
    limits: RunLimits,
) -> Ran {
    run_request(&prewarmed_sandbox(), script, input, limits, |r| {
        r.guest = guest
    })
    .await
}

/// Caps that no well-behaved test script comes near.
pub fn generous() -> RunLimits {
    RunLimits {
        wall_time: Duration::from_secs(180),
        memory_bytes: 2 << 30,
        fuel: 200_000_000_000_000,
        output_bytes: 1 << 20,
        disk_bytes: 1 << 30,
    }
}

/// The result of one run, with the folders it used kept alive for inspection.
#[derive(Debug)]
pub struct Ran {
    pub outcome: Outcome,
    pub output: TempDir,
}

/// Runs `script` in `sandbox` with a fresh `/output` and, if given, `input` at `/input`.
pub async fn run_in(
    sandbox: &dyn Sandbox,
    script: &str,
    input: Option<&Path>,
    limits: RunLimits,
) -> Ran {
    run_request(sandbox, script, input, limits, |_| {}).await
}

/// [`run_in`], with `adjust` applied to the request before it runs.
async fn run_request(
    sandbox: &dyn Sandbox,
    script: &str,
    input: Option<&Path>,
    limits: RunLimits,
    adjust: impl FnOnce(&mut SandboxRequest),
) -> Ran {
    let output = tempfile::tempdir().expect("a temporary folder");
    let mut request = SandboxRequest::new(script, output.path(), limits);
    if let Some(input) = input {
        request = request.with_input(input);
    }
    adjust(&mut request);
    let outcome = sandbox
        .run(request)
        .await
        .expect("the sandbox runs the script");
    Ran { outcome, output }
}

/// Runs `script` in the shared WASI sandbox.
pub async fn run_wasm(script: &str, input: Option<&Path>, limits: RunLimits) -> Ran {
    run_in(&wasm_sandbox(), script, input, limits).await
}

/// A small tabular data set: `train.csv` (id, two features, target) and `test.csv`.
pub fn tabular_input(rows: usize) -> TempDir {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut train = String::from("id,x1,x2,colour,target\n");
    let mut test = String::from("id,x1,x2,colour\n");
    for i in 0..rows {
        let x1 = (i * 37 % 101) as f64 / 10.0;
        let x2 = (i * 53 % 89) as f64 / 7.0;
        let colour = ["red", "green", "blue"][i % 3];
        let target = u8::from(x1 + x2 / 2.0 > 9.0);
        train.push_str(&format!("{i},{x1},{x2},{colour},{target}\n"));
        if i < rows / 4 {
            test.push_str(&format!("{},{x2},{x1},{colour}\n", rows + i));
        }
    }
    std::fs::write(dir.path().join("train.csv"), train).expect("write train.csv");
    std::fs::write(dir.path().join("test.csv"), test).expect("write test.csv");
    // Readable by the Docker backend's unprivileged container user, as a competition folder is.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod the input folder");
    dir
}

/// The Docker sandbox. Fails loudly when no daemon answers or the image is missing: the test
/// command (`scripts/test`) starts dockerd and builds the image first.
pub async fn docker_sandbox() -> DockerSandbox {
    let sandbox = DockerSandbox::connect()
        .await
        .expect("a Docker daemon answers: run scripts/test, which starts dockerd");
    let image = DockerSandbox::pinned_image();
    let present = std::process::Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", &image])
        .output()
        .expect("the docker CLI runs");
    assert!(
        present.status.success(),
        "the image {image} is missing: run `kaggle-solver runtime install --docker` (scripts/test does)"
    );
    sandbox
}

/// The `kaggle-solver` binary next to this test binary (`target/<profile>/`). `cargo test`
/// builds the workspace's binaries before running tests; a missing one fails loudly.
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary is in target/<profile>/deps");
    let binary = profile.join("kaggle-solver");
    assert!(
        binary.is_file(),
        "{} is missing: build it first (cargo build -p kaggle-solver, or scripts/test)",
        binary.display()
    );
    binary
}

/// `kaggle-solver solve` of the bundled demo competition with the OpenAI-compatible generator at
/// `base` (a fake LLM's `/v1`), writing to `out`.
pub fn solve_with_llm(base: &str, out: &Path) -> std::process::Command {
    let mut command = std::process::Command::new(binary());
    command
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .args([
            "solve",
            "examples/competitions/penguins",
            "--generator",
            "openai",
        ])
        .arg("--out")
        .arg(out)
        .env("OPENAI_BASE_URL", base)
        .env("OPENAI_API_KEY", crate::llm::fake::KEY)
        .env("KS_MODEL", crate::llm::fake::MODEL);
    command
}

/// Held by the tests that measure how much the host's disk grows, and by the ones that write a
/// lot to it (the compose stack's seeded volume), so that one's writes never count in the
/// other's measurement.
pub static HOST_DISK: std::sync::LazyLock<tokio::sync::Mutex<()>> =
    std::sync::LazyLock::new(|| tokio::sync::Mutex::new(()));

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free local port")
        .port()
}

/// Starts a server with `spawn` on a free port and returns the port with what `spawn` gave.
/// Another process may take the port between the probe and the server's bind, so a few ports
/// are tried; panics with the last failure's log (`spawn`'s error) when none works.
pub fn on_a_free_port<T>(what: &str, mut spawn: impl FnMut(u16) -> Result<T, String>) -> (u16, T) {
    let mut last = String::new();
    for _ in 0..5 {
        let port = free_port();
        match spawn(port) {
            Ok(started) => return (port, started),
            Err(log) => last = log,
        }
    }
    panic!("{what} did not start; its log:\n{last}");
}
