//! How a [`super::Fetcher`] is set up, and how that is read from `KS_*` variables.
//!
//! Kept apart from the fetch logic so the CLI and the REST service can share one reading of
//! the environment while differing in the one thing that must differ: which local folders a
//! caller may name ([`Caller`]).

use std::path::PathBuf;

use super::ExtractLimits;
use super::FetchError;
use super::cache::DEFAULT_CACHE_MAX;
use super::credentials::{Credentials, CredentialsError, EnvLookup};
use super::kaggle::{API_BASE_ENV, DEFAULT_API_BASE, RetryPolicy};
use super::mirror::{COMPETITIONS_URL_ENV, ObjectMirror};
use super::url::LocalPolicy;

/// The variable naming the local mirror of competitions.
pub const COMPETITIONS_DIR_ENV: &str = "KS_COMPETITIONS_DIR";
/// The variable overriding the cap on unpacked bytes.
pub const MAX_DATA_BYTES_ENV: &str = "KS_MAX_DATA_BYTES";
/// The variable capping the competition cache's size (e.g. `50GiB`).
pub const CACHE_MAX_ENV: &str = "KS_CACHE_MAX";

/// Who is asking, which decides the [`LocalPolicy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// The command line: any local folder (the user owns the machine).
    Cli,
    /// The REST API: only folders under `KS_COMPETITIONS_DIR` (none when it is unset).
    Api,
}

/// Where credentials come from; read only when a download is needed, so local folders and
/// cached competitions work without any.
#[derive(Debug, Clone)]
pub enum CredentialsSource {
    /// Found in Kaggle's order from this environment (see [`Credentials::discover`]).
    Discover(EnvLookup),
    /// Given outright.
    Fixed(Credentials),
}

impl CredentialsSource {
    /// The credentials to use now.
    pub fn resolve(&self) -> Result<Credentials, CredentialsError> {
        match self {
            CredentialsSource::Discover(env) => Credentials::discover(env),
            CredentialsSource::Fixed(credentials) => Ok(credentials.clone()),
        }
    }
}

/// Everything a [`super::Fetcher`] needs.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// The Kaggle API base URL (`KS_KAGGLE_API`, default `https://api.kaggle.com`).
    pub api_base: String,
    /// Where credentials come from.
    pub credentials: CredentialsSource,
    /// The cache root (`$KS_HOME`); competitions go to `<root>/competitions/`.
    pub cache_root: PathBuf,
    /// The cap on the cache's unpacked bytes (`KS_CACHE_MAX`, default 50 GiB).
    pub cache_max: u64,
    /// The local mirror (`KS_COMPETITIONS_DIR`): `<dir>/<slug>/` is used without download.
    pub competitions_dir: Option<PathBuf>,
    /// The object-store mirror (`KS_COMPETITIONS_URL`): `<url>/<slug>/` is copied into the
    /// cache instead of downloading.
    pub mirror: Option<ObjectMirror>,
    /// Which local folders may be named.
    pub local_policy: LocalPolicy,
    /// Caps on unpacking.
    pub limits: ExtractLimits,
    /// Retries of API calls and downloads.
    pub retry: RetryPolicy,
}

impl FetchConfig {
    /// Defaults around a cache root: the real Kaggle, credentials from the process
    /// environment, no mirror, any local folder.
    pub fn new(cache_root: impl Into<PathBuf>) -> FetchConfig {
        FetchConfig {
            api_base: DEFAULT_API_BASE.to_owned(),
            credentials: CredentialsSource::Discover(EnvLookup::process()),
            cache_root: cache_root.into(),
            cache_max: DEFAULT_CACHE_MAX,
            competitions_dir: None,
            mirror: None,
            local_policy: LocalPolicy::AnyPath,
            limits: ExtractLimits::default(),
            retry: RetryPolicy::default(),
        }
    }

    /// Reads `KS_KAGGLE_API`, `KS_COMPETITIONS_DIR`, `KS_COMPETITIONS_URL` (with the `AWS_*`
    /// variables that reach it), `KS_MAX_DATA_BYTES`, `KS_CACHE_MAX` (a
    /// byte count or a size such as `50GiB`) and the cache root
    /// (`KS_HOME`, else `$XDG_CACHE_HOME/kaggle-solver`, else `~/.cache/kaggle-solver`) from
    /// `env`, which also supplies the credentials.
    pub fn from_env(env: &EnvLookup, caller: Caller) -> Result<FetchConfig, FetchError> {
        let cache_root = cache_root(env).ok_or_else(|| {
            FetchError::Config(
                "no cache folder: set KS_HOME (or HOME or XDG_CACHE_HOME) to an absolute path"
                    .into(),
            )
        })?;
        let mut config = FetchConfig::new(cache_root);
        config.credentials = CredentialsSource::Discover(env.clone());
        if let Some(base) = env.get(API_BASE_ENV) {
            url::Url::parse(&base).map_err(|e| {
                FetchError::Config(format!("{API_BASE_ENV}={base:?} is not a URL: {e}"))
            })?;
            config.api_base = base;
        }
        if let Some(max) = env.get(MAX_DATA_BYTES_ENV) {
            config.limits.max_total_bytes = max.trim().parse().map_err(|_| {
                FetchError::Config(format!("{MAX_DATA_BYTES_ENV}={max:?} is not a byte count"))
            })?;
        }
        if let Some(max) = env.get(CACHE_MAX_ENV) {
            config.cache_max = byte_size(&max).map_err(|reason| {
                FetchError::Config(format!("{CACHE_MAX_ENV}={max:?} is not a size: {reason}"))
            })?;
        }
        config.competitions_dir = env.get(COMPETITIONS_DIR_ENV).map(PathBuf::from);
        if let Some(url) = env
            .get(COMPETITIONS_URL_ENV)
            .filter(|u| !u.trim().is_empty())
        {
            let mirror = ObjectMirror::new(url.trim(), |name| env.get(name))
                .map_err(|e| FetchError::Config(format!("{COMPETITIONS_URL_ENV}: {e}")))?;
            config.mirror = Some(mirror);
        }
        config.local_policy = match (caller, &config.competitions_dir) {
            (Caller::Cli, _) => LocalPolicy::AnyPath,
            (Caller::Api, Some(dir)) => LocalPolicy::UnderRoot(dir.clone()),
            (Caller::Api, None) => LocalPolicy::Deny,
        };
        Ok(config)
    }
}

/// A bare count of bytes, or a size with a unit (`50GiB`, `512 MiB`).
fn byte_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if let Ok(bytes) = text.parse::<u64>() {
        return Ok(bytes);
    }
    text.parse::<ks_policies::ByteSize>()
        .map(|size| size.bytes())
        .map_err(|e| e.to_string())
}

/// The same choice of home as the guest runtime's, over an injected environment.
fn cache_root(env: &EnvLookup) -> Option<PathBuf> {
    if let Some(home) = env.get("KS_HOME") {
        return Some(PathBuf::from(home));
    }
    let absolute = |name: &str| env.get(name).map(PathBuf::from).filter(|p| p.is_absolute());
    absolute("XDG_CACHE_HOME")
        .or_else(|| absolute("HOME").map(|h| h.join(".cache")))
        .map(|cache| cache.join("kaggle-solver"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_environment() {
        let env = EnvLookup::from_pairs([
            ("HOME", "/home/u"),
            ("KS_KAGGLE_API", "http://127.0.0.1:9"),
            ("KS_COMPETITIONS_DIR", "/srv/comps"),
            ("KS_MAX_DATA_BYTES", "1000"),
        ]);
        let cli = FetchConfig::from_env(&env, Caller::Cli).expect("config");
        assert_eq!(
            cli.cache_root,
            PathBuf::from("/home/u/.cache/kaggle-solver")
        );
        assert_eq!(cli.api_base, "http://127.0.0.1:9");
        assert_eq!(cli.limits.max_total_bytes, 1000);
        assert_eq!(cli.local_policy, LocalPolicy::AnyPath);
        let api = FetchConfig::from_env(&env, Caller::Api).expect("config");
        assert_eq!(
            api.local_policy,
            LocalPolicy::UnderRoot("/srv/comps".into())
        );

        let bare = EnvLookup::from_pairs([("KS_HOME", "/ks")]);
        let api = FetchConfig::from_env(&bare, Caller::Api).expect("config");
        assert_eq!(api.cache_root, PathBuf::from("/ks"));
        assert_eq!(api.api_base, "https://api.kaggle.com");
        assert_eq!(api.local_policy, LocalPolicy::Deny);

        let none = EnvLookup::from_pairs([("HOME", "relative")]);
        assert!(FetchConfig::from_env(&none, Caller::Cli).is_err());
        let bad = EnvLookup::from_pairs([("KS_HOME", "/ks"), ("KS_MAX_DATA_BYTES", "lots")]);
        assert!(FetchConfig::from_env(&bad, Caller::Cli).is_err());
    }

    #[test]
    fn reads_the_cache_cap() {
        let cap = |value: Option<&str>| {
            let mut pairs = vec![("KS_HOME", "/ks")];
            pairs.extend(value.map(|v| ("KS_CACHE_MAX", v)));
            FetchConfig::from_env(&EnvLookup::from_pairs(pairs), Caller::Cli).map(|c| c.cache_max)
        };
        assert_eq!(cap(None).expect("default"), 50 << 30);
        assert_eq!(cap(Some("50GiB")).expect("GiB"), 50 << 30);
        assert_eq!(cap(Some("512 MiB")).expect("MiB"), 512 << 20);
        assert_eq!(cap(Some(" 1000 ")).expect("bytes"), 1000);
        for bad in ["lots", "1.5GiB", "-1GiB", "5 parsecs"] {
            let error = cap(Some(bad)).expect_err(bad).to_string();
            assert!(
                error.contains("KS_CACHE_MAX") && error.contains(bad),
                "{bad}: {error}"
            );
        }
    }
}
