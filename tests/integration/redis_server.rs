//! A real `redis-server` for one test: the queue and service tests run against Redis itself,
//! never a mock, and each test gets its own server so that tests cannot see each other's keys.
//!
//! The server listens on a free 127.0.0.1 port, keeps its data in a temporary folder with AOF
//! on and fsynced at every write (so a SIGKILL loses nothing that was acknowledged), and is
//! killed when the [`RedisServer`] is dropped. `redis-server` must be on `PATH`: `scripts/test`
//! installs it. A missing server fails the test; it never skips it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::support::on_a_free_port;

/// How long a server may take to answer PING after it is started (AOF loading included).
const READY_WITHIN: Duration = Duration::from_secs(20);

/// A running `redis-server`, killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: TempDir,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free port with a fresh data folder and waits until it answers
    /// PING. Panics if `redis-server` is not installed or does not come up.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temporary folder for redis-server");
        let (port, child) = on_a_free_port("redis-server", |port| spawn(port, &dir));
        Self {
            port,
            dir,
            child: Some(child),
        }
    }

    /// The URL to connect to, e.g. `redis://127.0.0.1:6400`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server with SIGKILL (no clean shutdown) and waits for it to exit. The data
    /// folder is kept for [`RedisServer::restart`].
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server if it runs, then starts it again on the same port with the same data
    /// folder (so it reloads its AOF) and waits until it answers PING.
    pub fn restart(&mut self) {
        self.kill();
        match spawn(self.port, &self.dir) {
            Ok(child) => self.child = Some(child),
            Err(log) => panic!(
                "redis-server did not restart on port {}; its log:\n{log}",
                self.port
            ),
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Spawns a server on `port` with its data in `dir` and waits for PING; on failure, kills it
/// and returns its log.
fn spawn(port: u16, dir: &TempDir) -> Result<Child, String> {
    let log_path = dir.path().join("redis.log");
    let read_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let mut child = match Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .arg("--dir")
        .arg(dir.path())
        .args([
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ])
        .arg("--logfile")
        .arg(&log_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("redis-server is not installed: run scripts/test, which installs it")
        }
        Err(e) => panic!("redis-server could not be started: {e}"),
    };
    let deadline = Instant::now() + READY_WITHIN;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("exited with {status}\n{}", read_log()));
        }
        if answers_ping(port) {
            return Ok(child);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(format!("no PONG within {READY_WITHIN:?}\n{}", read_log()))
}

/// Whether a server on `port` answers PING with PONG (not LOADING or an error).
fn answers_ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut answer = [0u8; 7];
    stream.read_exact(&mut answer).is_ok() && &answer == b"+PONG\r\n"
}
