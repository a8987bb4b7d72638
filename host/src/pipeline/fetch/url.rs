//! What the user named as the competition: a Kaggle URL or a local folder.
//!
//! A job starts from a string typed by a person or sent to the REST API, so this module is the
//! gate: it accepts exactly the Kaggle competition URL shapes (`/competitions/<slug>` and
//! `/c/<slug>`, with trailing paths, query strings and fragments), `file://` URLs and plain
//! paths, and turns everything else into an error that says what a valid source looks like.
//! Which local folders may be used is a separate decision, [`LocalPolicy`]: the CLI allows any
//! path, the REST API only folders under `KS_COMPETITIONS_DIR`.

use std::path::{Component, Path, PathBuf};

/// Inputs longer than this are refused before any parsing.
pub const MAX_INPUT_BYTES: usize = 2048;
/// The longest slug accepted.
pub const MAX_SLUG_CHARS: usize = 100;

const EXPECTED: &str = "expected https://www.kaggle.com/competitions/<slug> (or /c/<slug>), \
                        a file:// URL or a local folder";

/// A competition source: a Kaggle competition, or a folder already on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompetitionRef {
    /// A Kaggle competition, by its slug (e.g. `titanic`).
    Kaggle {
        /// The competition's slug, validated by [`validate_slug`].
        slug: String,
    },
    /// A local folder, not yet checked against a [`LocalPolicy`].
    Local(PathBuf),
}

/// Why a competition source was refused. None of these is retryable: the input must change.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The input is not a URL shape we accept.
    #[error("not a Kaggle competition URL ({reason}): {input:?}; {EXPECTED}")]
    InvalidUrl {
        /// The input, shortened and without any user name or password.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The slug has characters or a length Kaggle never uses.
    #[error(
        "invalid competition slug {slug:?}: slugs are 1 to {MAX_SLUG_CHARS} lowercase letters, \
         digits and dashes, starting with a letter or digit; {EXPECTED}"
    )]
    InvalidSlug {
        /// The slug, shortened.
        slug: String,
    },
    /// The input is longer than [`MAX_INPUT_BYTES`].
    #[error("the competition source is {len} bytes long, over the {MAX_INPUT_BYTES}-byte limit")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// A local folder that the policy does not allow.
    #[error("the local folder {path} is not allowed: {reason}")]
    LocalNotAllowed {
        /// The folder as given.
        path: PathBuf,
        /// Why, and what is allowed instead.
        reason: String,
    },
    /// A local folder that cannot be resolved (missing, unreadable, not a folder).
    #[error("cannot use the local folder {path}: {source}")]
    LocalUnusable {
        /// The folder as given.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl SourceError {
    /// Always `false`: a bad source stays bad until the user changes it.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// Checks a Kaggle competition slug: `^[a-z0-9][a-z0-9-]{0,99}$`.
pub fn validate_slug(slug: &str) -> Result<(), SourceError> {
    let mut chars = slug.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if first_ok && rest_ok && slug.len() <= MAX_SLUG_CHARS {
        Ok(())
    } else {
        Err(SourceError::InvalidSlug {
            slug: shorten(slug),
        })
    }
}

impl CompetitionRef {
    /// Parses a Kaggle competition URL, a `file://` URL or a plain path.
    ///
    /// Kaggle URLs must be `http(s)://(www.)kaggle.com/competitions/<slug>` or `/c/<slug>`,
    /// optionally followed by more path, a query string or a fragment; `kaggle.com/...` without
    /// a scheme is taken as https. User names, passwords and explicit ports are refused.
    pub fn parse(input: &str) -> Result<CompetitionRef, SourceError> {
        if input.len() > MAX_INPUT_BYTES {
            return Err(SourceError::TooLong { len: input.len() });
        }
        let input = input.trim();
        let invalid = |reason: &str| SourceError::InvalidUrl {
            input: shorten(input),
            reason: reason.to_owned(),
        };
        if input.is_empty() {
            return Err(invalid("it is empty"));
        }
        if input.chars().any(char::is_control) {
            return Err(invalid("it contains control characters"));
        }
        let lower = input.to_ascii_lowercase();
        if lower.starts_with("file:") {
            return parse_file_url(input);
        }
        if lower.starts_with("www.kaggle.com/") || lower.starts_with("kaggle.com/") {
            return parse_kaggle_url(&format!("https://{input}"));
        }
        if lower.contains("://") {
            return parse_kaggle_url(input);
        }
        Ok(CompetitionRef::Local(PathBuf::from(input)))
    }

    /// A Kaggle competition by slug, validated.
    pub fn kaggle(slug: &str) -> Result<CompetitionRef, SourceError> {
        validate_slug(slug)?;
        Ok(CompetitionRef::Kaggle {
            slug: slug.to_owned(),
        })
    }

    /// The slug of a Kaggle source; `None` for a local folder.
    pub fn slug(&self) -> Option<&str> {
        match self {
            CompetitionRef::Kaggle { slug } => Some(slug),
            CompetitionRef::Local(_) => None,
        }
    }
}

fn parse_kaggle_url(input: &str) -> Result<CompetitionRef, SourceError> {
    let parsed = url::Url::parse(input);
    let display = match &parsed {
        Ok(url) => without_userinfo(url),
        Err(_) => shorten(input),
    };
    let invalid = |reason: String| SourceError::InvalidUrl {
        input: display.clone(),
        reason,
    };
    let url = parsed.map_err(|e| invalid(format!("unparsable: {e}")))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(invalid(format!(
            "the scheme {:?} is not http(s)",
            url.scheme()
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("it must not carry a user name or password".into()));
    }
    if url.port().is_some() {
        return Err(invalid("it must not name a port".into()));
    }
    match url.host_str() {
        Some("www.kaggle.com" | "kaggle.com") => {}
        // The host and the segment below are quoted shortened, like the input: percent-encoding
        // makes a segment up to three times as long as the input it came from.
        Some(other) => {
            return Err(invalid(format!(
                "the host {:?} is not kaggle.com",
                shorten(other)
            )));
        }
        None => return Err(invalid("it has no host".into())),
    }
    let mut segments = url.path_segments().into_iter().flatten();
    match segments.next() {
        Some("competitions" | "c") => {}
        Some("") | None => return Err(invalid("it names no competition".into())),
        Some(other) => {
            return Err(invalid(format!(
                "/{}/ pages are not competitions",
                shorten(other)
            )));
        }
    }
    match segments.next() {
        Some("") | None => Err(invalid("the competition slug is missing".into())),
        Some(slug) => CompetitionRef::kaggle(slug),
    }
}

fn parse_file_url(input: &str) -> Result<CompetitionRef, SourceError> {
    let invalid = |reason: &str| SourceError::InvalidUrl {
        input: shorten(input),
        reason: reason.to_owned(),
    };
    let url = url::Url::parse(input).map_err(|_| invalid("not a valid file:// URL"))?;
    match url.host_str() {
        None | Some("") | Some("localhost") => {}
        Some(_) => return Err(invalid("file:// URLs must name a local path, not a host")),
    }
    let path = url
        .to_file_path()
        .map_err(|()| invalid("not a valid file:// URL"))?;
    Ok(CompetitionRef::Local(path))
}

/// Which local folders a caller may name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalPolicy {
    /// Any existing folder (the CLI: the user owns the machine).
    AnyPath,
    /// Only folders strictly inside this root (the REST API: `KS_COMPETITIONS_DIR`).
    /// Relative paths are taken relative to the root.
    UnderRoot(PathBuf),
    /// No local folders at all (the REST API when `KS_COMPETITIONS_DIR` is unset).
    Deny,
}

impl LocalPolicy {
    /// Resolves `path` to a canonical folder, or says why it may not be used. `..` components
    /// are refused outright under a root, and symlinks are resolved before the prefix check,
    /// so neither can leave the root.
    pub fn resolve(&self, path: &Path) -> Result<PathBuf, SourceError> {
        let refuse = |reason: String| SourceError::LocalNotAllowed {
            path: path.to_owned(),
            reason,
        };
        let unusable = |source| SourceError::LocalUnusable {
            path: path.to_owned(),
            source,
        };
        let candidate = match self {
            LocalPolicy::Deny => {
                return Err(refuse(
                    "local folders are disabled here (set KS_COMPETITIONS_DIR to allow folders \
                     under it)"
                        .into(),
                ));
            }
            LocalPolicy::AnyPath => path.to_owned(),
            LocalPolicy::UnderRoot(root) => {
                if path.components().any(|c| c == Component::ParentDir) {
                    return Err(refuse("`..` is not allowed in the path".into()));
                }
                root.join(path)
            }
        };
        let canonical = candidate.canonicalize().map_err(unusable)?;
        if !canonical.is_dir() {
            return Err(unusable(std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                "not a folder",
            )));
        }
        if let LocalPolicy::UnderRoot(root) = self {
            let root = root
                .canonicalize()
                .map_err(|source| SourceError::LocalUnusable {
                    path: root.clone(),
                    source,
                })?;
            if canonical == root || !canonical.starts_with(&root) {
                return Err(refuse(format!(
                    "only folders inside {} may be used",
                    root.display()
                )));
            }
        }
        Ok(canonical)
    }
}

fn without_userinfo(url: &url::Url) -> String {
    let mut clean = url.clone();
    // Setting these fails only for URLs that cannot have them, which then have none.
    let _ = clean.set_username("");
    let _ = clean.set_password(None);
    shorten(clean.as_str())
}

fn shorten(s: &str) -> String {
    const KEEP: usize = 120;
    match s.char_indices().nth(KEEP) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
#[path = "url_tests.rs"]
mod tests;
