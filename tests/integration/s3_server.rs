//! A real S3-compatible server for one test: `s3s-fs`, which checks every request's signature
//! (a wrong secret is refused as by AWS), serving a temporary folder (each sub-folder a
//! bucket) on a free 127.0.0.1 port, killed when the [`S3Server`] is dropped.
//!
//! The binary is `<target>/s3s-fs/bin/s3s-fs` (`scripts/test` installs it there with
//! `cargo install s3s-fs --version 0.14.1 --features binary --locked --root target/s3s-fs`),
//! or the path in `KS_S3S_FS`. A missing binary fails the test; it never skips it.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::support::on_a_free_port;

/// The bucket every server starts with.
pub const BUCKET: &str = "ks-test";
/// The access key the server accepts.
pub const ACCESS_KEY: &str = "ks-test-access";
/// The secret it accepts.
pub const SECRET_KEY: &str = "ks-test-secret-0123456789";

/// How long the server may take to listen.
const READY_WITHIN: Duration = Duration::from_secs(20);

/// A running `s3s-fs`, killed on drop.
#[derive(Debug)]
pub struct S3Server {
    port: u16,
    dir: TempDir,
    child: Option<Child>,
}

/// The `s3s-fs` binary.
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("KS_S3S_FS") {
        return PathBuf::from(path);
    }
    // The test binary is `<target>/<profile>/deps/integration-...`.
    let target = crate::support::binary()
        .parent()
        .and_then(|profile| profile.parent())
        .map(PathBuf::from)
        .expect("the target folder");
    let path = target.join("s3s-fs/bin/s3s-fs");
    assert!(
        path.is_file(),
        "{} is missing: run scripts/test, or `cargo install s3s-fs --version 0.14.1 --features \
         binary --locked --root {}`",
        path.display(),
        target.join("s3s-fs").display()
    );
    path
}

impl S3Server {
    /// Starts a server with the bucket [`BUCKET`] on a free port and waits until it listens.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temporary folder for s3s-fs");
        std::fs::create_dir_all(dir.path().join("data").join(BUCKET)).expect("the bucket");
        let (port, child) = on_a_free_port("s3s-fs", |port| spawn(port, &dir));
        Self {
            port,
            dir,
            child: Some(child),
        }
    }

    /// The endpoint URL (`AWS_ENDPOINT_URL`).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The folder the buckets are in.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The variables that reach this server with `secret`.
    pub fn env_with_secret(&self, secret: &str) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", secret.to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// The variables that reach this server.
    pub fn env(&self) -> Vec<(String, String)> {
        self.env_with_secret(SECRET_KEY)
    }

    /// A lookup of [`S3Server::env`], as the library's store takes it.
    pub fn lookup(&self) -> impl Fn(&str) -> Option<String> + use<> {
        let env = self.env();
        move |name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    /// Kills the server (SIGKILL); its files stay for [`S3Server::restart`].
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port over the same files.
    pub fn restart(&mut self) {
        self.kill();
        match spawn(self.port, &self.dir) {
            Ok(child) => self.child = Some(child),
            Err(log) => panic!("s3s-fs did not restart on {}; its log:\n{log}", self.port),
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn(port: u16, dir: &TempDir) -> Result<Child, String> {
    let log_path = dir.path().join("s3s-fs.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| e.to_string())?;
    let read_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let mut child = Command::new(binary())
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
        .arg(dir.path().join("data"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap_or_else(|e| panic!("s3s-fs could not be started: {e}"));
    let deadline = Instant::now() + READY_WITHIN;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("exited with {status}\n{}", read_log()));
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(child);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(format!(
        "not listening within {READY_WITHIN:?}\n{}",
        read_log()
    ))
}
