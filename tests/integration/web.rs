//! The API as HTTP clients meet it over a socket, on a real `kaggle-solver serve`: the OpenAPI
//! document checked by schemathesis with every check on (`web/schema.rs`), and the dashboard
//! driven in Debian's chromium through chromedriver (`web/browser.rs`).

mod browser;
mod schema;
mod webdriver;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// A `kaggle-solver serve` of the test's own, stopped when dropped.
pub struct Served {
    child: Child,
    /// `host:port` it listens on.
    pub addr: String,
}

impl Served {
    /// Starts `serve --bind 127.0.0.1:0` with `args` and `envs`, its data under `data`, and
    /// waits for it to listen.
    pub fn start(data: &Path, args: &[&str], envs: &[(&str, &str)]) -> Result<Self> {
        let mut command = Command::new(crate::support::binary());
        command
            .current_dir(repo())
            .args(["serve", "--bind", "127.0.0.1:0"])
            .args(args)
            .env("KS_DATA_DIR", data)
            .env_remove("KS_API_TOKEN")
            .env_remove("KS_REDIS_URL")
            .env_remove("KS_BIND")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (name, value) in envs {
            command.env(name, value);
        }
        let mut child = command.spawn().context("kaggle-solver serve starts")?;
        let stdout = child.stdout.take().context("stdout")?;
        let (send, receive) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = send.send(line);
            }
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match receive.recv_timeout(Duration::from_secs(120)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                bail!("serve printed nothing within two minutes");
            }
        };
        let json: serde_json::Value =
            serde_json::from_str(&line).with_context(|| format!("serve's first line {line:?}"))?;
        let addr = json["listening"].as_str().context("listening")?.to_owned();
        Ok(Self { child, addr })
    }

    /// `http://host:port` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Where CI artefacts of these tests go: `<target>/web-artefacts/`.
pub fn artefacts() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // <target>/<profile>/deps/<test binary>
    let target = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .context("the test binary is in <target>/<profile>/deps")?;
    let dir = target.join("web-artefacts");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A tool that `scripts/test` installs under the target folder, or the path in `env`.
pub fn tool(env: &str, under_target: &str) -> Result<PathBuf> {
    if let Ok(path) = std::env::var(env) {
        return Ok(PathBuf::from(path));
    }
    let path = artefacts()?
        .parent()
        .context("the target folder")?
        .join(under_target);
    if !path.is_file() {
        bail!(
            "{} is missing: run scripts/test (which installs it), or point {env} at one",
            path.display()
        );
    }
    Ok(path)
}
