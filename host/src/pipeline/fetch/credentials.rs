//! Kaggle credentials, found where and in the order the official `kaggle` client looks.
//!
//! Users already have their credentials set up for the `kaggle` command, so we read the same
//! places in the same order: an access token (`KAGGLE_API_TOKEN`, its value or a file it names,
//! then `~/.kaggle/access_token`) sent as Bearer; then the legacy API key from
//! `KAGGLE_USERNAME`/`KAGGLE_KEY` or from `kaggle.json` in the config folder (`KAGGLE_CONFIG_DIR`;
//! else `~/.kaggle` if it exists; else `$XDG_CONFIG_HOME/kaggle`, default `~/.config/kaggle`)
//! sent as Basic. The environment is read through [`EnvLookup`], so tests inject variables
//! instead of touching the process environment, and secrets never reach logs: [`Credentials`]'
//! `Debug` shows only where they came from.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Credential files bigger than this are not read.
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// A function from a variable's name to its value.
type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

/// A read-only view of environment variables; empty values count as unset.
#[derive(Clone)]
pub struct EnvLookup(Arc<Lookup>);

impl EnvLookup {
    /// The process environment.
    pub fn process() -> EnvLookup {
        EnvLookup(Arc::new(|name| std::env::var(name).ok()))
    }

    /// A fixed set of variables (for tests and embedding).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> EnvLookup {
        let map: HashMap<String, String> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        EnvLookup(Arc::new(move |name| map.get(name).cloned()))
    }

    /// Any lookup function.
    pub fn from_fn(f: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> EnvLookup {
        EnvLookup(Arc::new(f))
    }

    /// The variable's value, or `None` if it is unset or empty.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.is_empty())
    }
}

impl fmt::Debug for EnvLookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EnvLookup(..)")
    }
}

#[derive(Clone, PartialEq, Eq)]
enum Secret {
    Bearer(String),
    Basic { username: String, key: String },
}

/// Kaggle credentials and where they came from. `Debug` redacts the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    secret: Secret,
    origin: String,
}

/// How [`Credentials`] authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthScheme {
    /// `Authorization: Bearer <token>` (access tokens).
    Bearer,
    /// `Authorization: Basic <username:key>` (legacy API keys).
    Basic,
}

impl Credentials {
    /// An access token, sent as Bearer.
    pub fn bearer(token: impl Into<String>, origin: impl Into<String>) -> Credentials {
        Credentials {
            secret: Secret::Bearer(token.into()),
            origin: origin.into(),
        }
    }

    /// A legacy API key, sent as Basic.
    pub fn basic(
        username: impl Into<String>,
        key: impl Into<String>,
        origin: impl Into<String>,
    ) -> Credentials {
        Credentials {
            secret: Secret::Basic {
                username: username.into(),
                key: key.into(),
            },
            origin: origin.into(),
        }
    }

    /// Where they were found, e.g. `KAGGLE_API_TOKEN` or a `kaggle.json` path.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Bearer or Basic.
    pub fn scheme(&self) -> AuthScheme {
        match self.secret {
            Secret::Bearer(_) => AuthScheme::Bearer,
            Secret::Basic { .. } => AuthScheme::Basic,
        }
    }

    /// The Kaggle user name, for Basic credentials.
    pub fn username(&self) -> Option<&str> {
        match &self.secret {
            Secret::Bearer(_) => None,
            Secret::Basic { username, .. } => Some(username),
        }
    }

    /// Adds the `Authorization` header to a request.
    pub fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.secret {
            Secret::Bearer(token) => request.bearer_auth(token),
            Secret::Basic { username, key } => request.basic_auth(username, Some(key)),
        }
    }

    /// Finds credentials in Kaggle's order (see the module doc).
    pub fn discover(env: &EnvLookup) -> Result<Credentials, CredentialsError> {
        let home = env.get("HOME").map(PathBuf::from);
        if let Some(value) = env.get("KAGGLE_API_TOKEN") {
            let path = Path::new(&value);
            if path.is_file() {
                if let Some(token) = read_token_file(path)? {
                    return Ok(Credentials::bearer(token, path.display().to_string()));
                }
            } else {
                return Ok(Credentials::bearer(value.trim(), "KAGGLE_API_TOKEN"));
            }
        }
        if let Some(home) = &home {
            for name in ["access_token", "access_token.txt"] {
                let path = home.join(".kaggle").join(name);
                if path.is_file()
                    && let Some(token) = read_token_file(&path)?
                {
                    return Ok(Credentials::bearer(token, path.display().to_string()));
                }
            }
        }
        if let (Some(user), Some(key)) = (env.get("KAGGLE_USERNAME"), env.get("KAGGLE_KEY")) {
            return Ok(Credentials::basic(user, key, "KAGGLE_USERNAME/KAGGLE_KEY"));
        }
        let config_dir = config_dir(env, home.as_deref());
        if let Some(path) = config_dir.map(|d| d.join("kaggle.json"))
            && path.is_file()
        {
            return read_kaggle_json(&path);
        }
        Err(CredentialsError::Missing)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("scheme", &self.scheme())
            .field("username", &self.username())
            .field("secret", &"<redacted>")
            .field("origin", &self.origin)
            .finish()
    }
}

/// The folder the `kaggle` client reads `kaggle.json` from.
fn config_dir(env: &EnvLookup, home: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = env.get("KAGGLE_CONFIG_DIR") {
        return Some(PathBuf::from(dir));
    }
    let dot_kaggle = home.map(|h| h.join(".kaggle"));
    if let Some(dir) = dot_kaggle.filter(|d| d.exists()) {
        return Some(dir);
    }
    let xdg = env
        .get("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| home.map(|h| h.join(".config")));
    xdg.map(|x| x.join("kaggle"))
}

/// Why no credentials could be used. None is retryable: the set-up must change.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// No source held credentials.
    #[error(
        "no Kaggle credentials found: set KAGGLE_API_TOKEN, or KAGGLE_USERNAME and KAGGLE_KEY, \
         or put kaggle.json ({{\"username\": ..., \"key\": ...}}) in KAGGLE_CONFIG_DIR, \
         ~/.kaggle or ~/.config/kaggle"
    )]
    Missing,
    /// A credential file exists but cannot be read.
    #[error("cannot read the Kaggle credential file {path}: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A credential file exists but does not hold what it should.
    #[error("the Kaggle credential file {path} is malformed: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong (never the secret itself).
        reason: String,
    },
}

impl CredentialsError {
    /// Always `false`: credentials do not appear by waiting.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

fn read_small(path: &Path) -> Result<String, CredentialsError> {
    let unreadable = |source| CredentialsError::Unreadable {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let mut text = String::new();
    file.take(MAX_FILE_BYTES)
        .read_to_string(&mut text)
        .map_err(unreadable)?;
    Ok(text)
}

fn read_token_file(path: &Path) -> Result<Option<String>, CredentialsError> {
    let text = read_small(path)?;
    let token = text.trim();
    Ok((!token.is_empty()).then(|| token.to_owned()))
}

fn read_kaggle_json(path: &Path) -> Result<Credentials, CredentialsError> {
    #[derive(serde::Deserialize)]
    struct KaggleJson {
        username: Option<String>,
        key: Option<String>,
    }
    let malformed = |reason: &str| CredentialsError::Malformed {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let text = read_small(path)?;
    let parsed: KaggleJson = serde_json::from_str(&text)
        .map_err(|_| malformed("not a JSON object with \"username\" and \"key\" strings"))?;
    match (parsed.username, parsed.key) {
        (Some(u), Some(k)) if !u.is_empty() && !k.is_empty() => {
            Ok(Credentials::basic(u, k, path.display().to_string()))
        }
        _ => Err(malformed("\"username\" or \"key\" is missing or empty")),
    }
}

#[cfg(test)]
mod tests {
    // Each credential source, in order, with an injected environment and temporary folders.

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> EnvLookup {
        EnvLookup::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    fn write_json(dir: &Path, body: &str) -> PathBuf {
        std::fs::create_dir_all(dir).expect("mkdir");
        let path = dir.join("kaggle.json");
        std::fs::write(&path, body).expect("write kaggle.json");
        path
    }

    const JSON: &str = r#"{"username": "alice", "key": "k-json"}"#;

    fn header(credentials: &Credentials) -> String {
        let request = credentials
            .apply(reqwest::Client::new().get("http://127.0.0.1/"))
            .build()
            .expect("request");
        request.headers()["authorization"]
            .to_str()
            .expect("ascii")
            .to_owned()
    }

    #[test]
    fn token_from_env_wins_over_everything() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let home = tmp.path().to_str().expect("utf-8");
        write_json(&tmp.path().join(".kaggle"), JSON);
        let found = Credentials::discover(&env(&[
            ("HOME", home),
            ("KAGGLE_API_TOKEN", "tok-123"),
            ("KAGGLE_USERNAME", "bob"),
            ("KAGGLE_KEY", "k-env"),
        ]))
        .expect("found");
        assert_eq!(found.scheme(), AuthScheme::Bearer);
        assert_eq!(found.origin(), "KAGGLE_API_TOKEN");
        assert_eq!(header(&found), "Bearer tok-123");
    }

    #[test]
    fn token_env_may_name_a_file_and_access_token_file_is_read() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let token_file = tmp.path().join("tok.txt");
        std::fs::write(&token_file, "  tok-file\n").expect("write");
        let found = Credentials::discover(&env(&[(
            "KAGGLE_API_TOKEN",
            token_file.to_str().expect("utf-8"),
        )]))
        .expect("found");
        assert_eq!(header(&found), "Bearer tok-file");

        std::fs::create_dir_all(tmp.path().join(".kaggle")).expect("mkdir");
        std::fs::write(tmp.path().join(".kaggle/access_token"), "tok-home\n").expect("write");
        let found = Credentials::discover(&env(&[("HOME", tmp.path().to_str().expect("utf-8"))]))
            .expect("found");
        assert_eq!(header(&found), "Bearer tok-home");
    }

    #[test]
    fn username_and_key_from_env_win_over_kaggle_json() {
        let tmp = tempfile::tempdir().expect("tempdir");
        write_json(&tmp.path().join(".kaggle"), JSON);
        let found = Credentials::discover(&env(&[
            ("HOME", tmp.path().to_str().expect("utf-8")),
            ("KAGGLE_USERNAME", "bob"),
            ("KAGGLE_KEY", "k-env"),
        ]))
        .expect("found");
        assert_eq!(found.scheme(), AuthScheme::Basic);
        assert_eq!(found.username(), Some("bob"));
        assert_eq!(header(&found), "Basic Ym9iOmstZW52"); // bob:k-env
        // Half of the pair is not enough: the file is used.
        let found = Credentials::discover(&env(&[
            ("HOME", tmp.path().to_str().expect("utf-8")),
            ("KAGGLE_USERNAME", "bob"),
        ]))
        .expect("found");
        assert_eq!(found.username(), Some("alice"));
    }

    #[test]
    fn kaggle_json_in_each_config_folder() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let home = tmp.path().join("home");
        let home_s = home.to_str().expect("utf-8").to_owned();
        let custom = tmp.path().join("custom");
        let xdg = tmp.path().join("xdg");

        // KAGGLE_CONFIG_DIR.
        let path = write_json(&custom, r#"{"username": "carol", "key": "k1"}"#);
        let found = Credentials::discover(&env(&[
            ("HOME", &home_s),
            ("KAGGLE_CONFIG_DIR", custom.to_str().expect("utf-8")),
        ]))
        .expect("found");
        assert_eq!(found.username(), Some("carol"));
        assert_eq!(found.origin(), path.display().to_string());

        // $XDG_CONFIG_HOME/kaggle, when ~/.kaggle does not exist.
        write_json(&xdg.join("kaggle"), r#"{"username": "dave", "key": "k2"}"#);
        let with_xdg = [
            ("HOME", home_s.as_str()),
            ("XDG_CONFIG_HOME", xdg.to_str().expect("utf-8")),
        ];
        let found = Credentials::discover(&env(&with_xdg)).expect("found");
        assert_eq!(found.username(), Some("dave"));

        // ~/.config/kaggle without XDG_CONFIG_HOME.
        write_json(
            &home.join(".config/kaggle"),
            r#"{"username": "erin", "key": "k3"}"#,
        );
        let found = Credentials::discover(&env(&[("HOME", &home_s)])).expect("found");
        assert_eq!(found.username(), Some("erin"));

        // ~/.kaggle, once it exists, takes precedence over XDG (as in the kaggle client).
        write_json(&home.join(".kaggle"), JSON);
        let found = Credentials::discover(&env(&with_xdg)).expect("found");
        assert_eq!(found.username(), Some("alice"));
        assert_eq!(header(&found), "Basic YWxpY2U6ay1qc29u"); // alice:k-json
    }

    #[test]
    fn missing_and_malformed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let home = tmp.path().to_str().expect("utf-8");
        let err = Credentials::discover(&env(&[("HOME", home)])).expect_err("none");
        assert!(matches!(err, CredentialsError::Missing));
        assert!(err.to_string().contains("KAGGLE_API_TOKEN"), "{err}");
        assert!(!err.is_retryable());

        for body in [
            "not json",
            r#"{"username": "x"}"#,
            r#"{"username": "", "key": "s3cr3t"}"#,
        ] {
            write_json(&tmp.path().join(".kaggle"), body);
            let err = Credentials::discover(&env(&[("HOME", home)])).expect_err(body);
            assert!(matches!(err, CredentialsError::Malformed { .. }), "{err}");
            assert!(!err.to_string().contains("s3cr3t"), "{err}");
        }
    }

    #[test]
    fn debug_never_shows_secrets() {
        let basic = Credentials::basic("alice", "very-secret-key", "test");
        let bearer = Credentials::bearer("very-secret-token", "test");
        for shown in [format!("{basic:?}"), format!("{bearer:?}")] {
            assert!(!shown.contains("very-secret"), "{shown}");
            assert!(shown.contains("redacted"), "{shown}");
        }
        assert!(format!("{basic:?}").contains("alice"));
    }
}
