//! Just enough of the W3C WebDriver protocol to drive Debian's chromium through its
//! chromedriver: a session, navigation, elements found by CSS, clicks, typing, text, script,
//! window size and screenshots. It speaks JSON over the `reqwest` already in the lock; a
//! WebDriver crate would bring a C crypto build and some forty crates for the same calls.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use base64::Engine;
use serde_json::{Value, json};

/// The key W3C WebDriver names an element reference by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver of the test's own, on a free port; killed when dropped, with every
/// browser process of its sessions (chromium leaves utility processes behind when its
/// session ends, which would pile up over runs).
pub struct Driver {
    child: Child,
    base: String,
    profiles: std::sync::Mutex<Vec<String>>,
}

impl Driver {
    /// Starts `chromedriver` and waits until it is ready.
    pub async fn start() -> Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context(
                "chromedriver starts: is chromium-driver installed (scripts/test installs it)?",
            )?;
        let driver = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            profiles: std::sync::Mutex::new(Vec::new()),
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(answer) = client.get(format!("{}/status", driver.base)).send().await
                && let Ok(status) = answer.json::<Value>().await
                && status["value"]["ready"] == true
            {
                return Ok(driver);
            }
            ensure!(Instant::now() < deadline, "chromedriver never got ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A new headless chromium with an empty profile in `profile`, saving downloads to
    /// `downloads`, its window `width`x`height`.
    pub async fn session(
        &self,
        profile: &Path,
        downloads: &Path,
        size: (u32, u32),
    ) -> Result<Session> {
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            self.remember(profile),
            format!("--window-size={},{}", size.0, size.1),
        ];
        let capabilities = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": "/usr/bin/chromium",
                    "args": args,
                    "prefs": {
                        "download.default_directory": downloads.display().to_string(),
                        "download.prompt_for_download": false,
                    },
                },
            }}
        });
        let client = reqwest::Client::new();
        let answer: Value = client
            .post(format!("{}/session", self.base))
            .json(&capabilities)
            .send()
            .await?
            .json()
            .await?;
        let id = answer["value"]["sessionId"]
            .as_str()
            .with_context(|| format!("no session: {answer}"))?;
        Ok(Session {
            client,
            base: format!("{}/session/{id}", self.base),
        })
    }
}

impl Driver {
    /// The `--user-data-dir` flag of a session, remembered to find its processes by.
    fn remember(&self, profile: &Path) -> String {
        let flag = format!("--user-data-dir={}", profile.display());
        self.profiles
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(flag.clone());
        flag
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let profiles = self
            .profiles
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        // The processes started with one of this driver's own profile folders, by pid.
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let mine = cmdline
                .split(|b| *b == 0)
                .any(|arg| profiles.iter().any(|p| arg == p.as_bytes()));
            if mine {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
    }
}

/// One browser.
pub struct Session {
    client: reqwest::Client,
    base: String,
}

impl Session {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request.send().await?.json().await?;
        if let Some(error) = answer["value"]["error"].as_str() {
            bail!("{path}: {error}: {}", answer["value"]["message"]);
        }
        Ok(answer["value"].clone())
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) -> Result<()> {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await
            .map(drop)
    }

    /// The first element matching `css`, if any.
    pub async fn find(&self, css: &str) -> Result<Option<String>> {
        let found = self
            .call(
                reqwest::Method::POST,
                "/elements",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await?;
        Ok(found
            .as_array()
            .and_then(|all| all.first())
            .and_then(|e| e[ELEMENT].as_str())
            .map(str::to_owned))
    }

    /// Waits up to `timeout` for an element matching `css` whose text passes `test`.
    pub async fn wait_for(
        &self,
        css: &str,
        timeout: Duration,
        test: impl Fn(&str) -> bool,
    ) -> Result<String> {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        loop {
            if let Some(element) = self.find(css).await? {
                last = self.text(&element).await.unwrap_or_default();
                if test(&last) {
                    return Ok(element);
                }
            }
            if Instant::now() > deadline {
                bail!("{css} never came as expected; its text was {last:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn click(&self, element: &str) -> Result<()> {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await
        .map(drop)
    }

    pub async fn type_into(&self, element: &str, text: &str) -> Result<()> {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        )
        .await
        .map(drop)
    }

    pub async fn text(&self, element: &str) -> Result<String> {
        let text = self
            .call(
                reqwest::Method::GET,
                &format!("/element/{element}/text"),
                None,
            )
            .await?;
        Ok(text.as_str().unwrap_or_default().to_owned())
    }

    /// Runs `script` (a function body) in the page; its return value.
    pub async fn script(&self, script: &str) -> Result<Value> {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    pub async fn resize(&self, width: u32, height: u32) -> Result<()> {
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )
        .await
        .map(drop)
    }

    /// Saves a PNG of the viewport to `path`.
    pub async fn screenshot(&self, path: &Path) -> Result<()> {
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await?;
        let bytes =
            base64::engine::general_purpose::STANDARD.decode(png.as_str().context("base64")?)?;
        std::fs::write(path, bytes)?;
        Ok(())
    }

    pub async fn quit(self) -> Result<()> {
        self.client.delete(&self.base).send().await?;
        Ok(())
    }
}
