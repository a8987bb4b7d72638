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
mod tests {
    // Table-driven tests of [`CompetitionRef::parse`] and [`LocalPolicy::resolve`].

    use super::*;

    fn kaggle(slug: &str) -> CompetitionRef {
        CompetitionRef::Kaggle { slug: slug.into() }
    }

    #[test]
    fn accepts_every_kaggle_url_shape() {
        let cases = [
            ("https://www.kaggle.com/competitions/titanic", "titanic"),
            ("https://www.kaggle.com/c/titanic", "titanic"),
            ("https://kaggle.com/competitions/titanic", "titanic"),
            ("http://www.kaggle.com/competitions/titanic", "titanic"),
            ("https://www.kaggle.com/competitions/titanic/", "titanic"),
            (
                "https://www.kaggle.com/competitions/titanic/data",
                "titanic",
            ),
            (
                "https://www.kaggle.com/competitions/titanic/overview/evaluation",
                "titanic",
            ),
            (
                "https://www.kaggle.com/competitions/titanic?tab=data",
                "titanic",
            ),
            (
                "https://www.kaggle.com/competitions/titanic#leaderboard",
                "titanic",
            ),
            (
                "https://www.kaggle.com/c/titanic/data?select=train.csv#x",
                "titanic",
            ),
            ("HTTPS://WWW.KAGGLE.COM/competitions/titanic", "titanic"),
            ("https://www.kaggle.com:443/competitions/titanic", "titanic"),
            (
                "  https://www.kaggle.com/c/house-prices-advanced-regression-techniques  ",
                "house-prices-advanced-regression-techniques",
            ),
            (
                "www.kaggle.com/competitions/spaceship-titanic",
                "spaceship-titanic",
            ),
            (
                "kaggle.com/c/playground-series-s4e1",
                "playground-series-s4e1",
            ),
            (
                "https://www.kaggle.com/competitions/2024-ai-challenge",
                "2024-ai-challenge",
            ),
        ];
        for (input, slug) in cases {
            let parsed = CompetitionRef::parse(input);
            assert_eq!(parsed.ok(), Some(kaggle(slug)), "input {input:?}");
        }
    }

    #[test]
    fn refuses_everything_else_with_a_hint() {
        let long_slug = format!("https://www.kaggle.com/c/{}", "a".repeat(101));
        let long_input = format!("https://www.kaggle.com/c/titanic?q={}", "x".repeat(2100));
        let cases: Vec<(&str, &str)> = vec![
            ("", "empty"),
            ("https://example.com/competitions/titanic", "not kaggle.com"),
            ("https://www.kaggle.com.evil.io/c/titanic", "not kaggle.com"),
            ("https://www.kaggle.com/", "names no competition"),
            ("https://www.kaggle.com/competitions", "slug is missing"),
            ("https://www.kaggle.com/competitions/", "slug is missing"),
            ("https://www.kaggle.com/c//data", "slug is missing"),
            (
                "https://www.kaggle.com/datasets/owner/thing",
                "not competitions",
            ),
            (
                "https://www.kaggle.com/code/owner/notebook",
                "not competitions",
            ),
            (
                "https://www.kaggle.com/competitions/Titanic",
                "invalid competition slug",
            ),
            (
                "https://www.kaggle.com/competitions/tita_nic",
                "invalid competition slug",
            ),
            (
                "https://www.kaggle.com/competitions/-titanic",
                "invalid competition slug",
            ),
            (
                "https://www.kaggle.com/competitions/..",
                "names no competition",
            ),
            (
                "https://www.kaggle.com/competitions/%2e%2e",
                "names no competition",
            ),
            (
                "https://www.kaggle.com/competitions/tit%20anic",
                "invalid competition slug",
            ),
            (&long_slug, "invalid competition slug"),
            (&long_input, "over the 2048-byte limit"),
            (
                "https://user:secret@www.kaggle.com/c/titanic",
                "user name or password",
            ),
            ("https://www.kaggle.com:8443/c/titanic", "port"),
            ("ftp://www.kaggle.com/c/titanic", "not http(s)"),
            ("https://www.kaggle.com/c/tit\nanic", "control characters"),
            ("file://otherhost/srv/comp", "not a host"),
        ];
        for (input, needle) in cases {
            let err = CompetitionRef::parse(input).expect_err(input);
            let text = err.to_string();
            assert!(text.contains(needle), "{input:?}: {text}");
            assert!(!err.is_retryable());
            assert!(!text.contains("secret"), "{text}");
            if !text.contains("limit") {
                assert!(
                    text.contains("https://www.kaggle.com/competitions/<slug>"),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn local_sources() {
        let cases = [
            ("file:///srv/comps/titanic", "/srv/comps/titanic"),
            ("file://localhost/srv/comps/titanic", "/srv/comps/titanic"),
            ("file:///srv/comps/with%20space", "/srv/comps/with space"),
            ("/srv/comps/titanic", "/srv/comps/titanic"),
            ("comps/titanic", "comps/titanic"),
            ("titanic", "titanic"),
        ];
        for (input, path) in cases {
            let parsed = CompetitionRef::parse(input).expect(input);
            assert_eq!(
                parsed,
                CompetitionRef::Local(PathBuf::from(path)),
                "{input:?}"
            );
        }
    }

    #[test]
    fn slug_table() {
        let max = "a".repeat(MAX_SLUG_CHARS);
        let over = "a".repeat(MAX_SLUG_CHARS + 1);
        for (slug, ok) in [
            ("titanic", true),
            ("a", true),
            ("0", true),
            ("a-b-c", true),
            (max.as_str(), true),
            (over.as_str(), false),
            ("", false),
            ("-a", false),
            ("A", false),
            ("a_b", false),
            ("a/b", false),
            ("a.b", false),
            ("é", false),
        ] {
            assert_eq!(validate_slug(slug).is_ok(), ok, "{slug:?}");
        }
    }

    #[test]
    fn local_policy_table() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("comps");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(root.join("titanic/public")).expect("mkdir");
        std::fs::create_dir_all(&outside).expect("mkdir");
        std::fs::write(root.join("file.txt"), "x").expect("write");
        std::os::unix::fs::symlink(&outside, root.join("escape")).expect("symlink");
        std::os::unix::fs::symlink(root.join("titanic"), root.join("alias")).expect("symlink");
        let under = LocalPolicy::UnderRoot(root.clone());
        let canonical_root = root.canonicalize().expect("canonical");

        let cases: Vec<(&LocalPolicy, PathBuf, Result<PathBuf, &str>)> = vec![
            (
                &under,
                root.join("titanic"),
                Ok(canonical_root.join("titanic")),
            ),
            (&under, "titanic".into(), Ok(canonical_root.join("titanic"))),
            (
                &under,
                "titanic/public".into(),
                Ok(canonical_root.join("titanic/public")),
            ),
            (
                &under,
                root.join("alias"),
                Ok(canonical_root.join("titanic")),
            ),
            (&under, root.join("escape"), Err("only folders inside")),
            (&under, outside.clone(), Err("only folders inside")),
            (&under, root.join("titanic/../../outside"), Err("`..`")),
            (&under, "../outside".into(), Err("`..`")),
            (&under, root.clone(), Err("only folders inside")),
            (&under, root.join("missing"), Err("cannot use")),
            (&under, root.join("file.txt"), Err("not a folder")),
            (&LocalPolicy::Deny, root.join("titanic"), Err("disabled")),
            (
                &LocalPolicy::AnyPath,
                outside.clone(),
                Ok(outside.canonicalize().expect("c")),
            ),
            (
                &LocalPolicy::AnyPath,
                root.join("titanic/../../outside"),
                Ok(outside.canonicalize().expect("c")),
            ),
        ];
        for (policy, path, expected) in cases {
            match (policy.resolve(&path), expected) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{path:?}"),
                (Err(err), Err(needle)) => {
                    assert!(err.to_string().contains(needle), "{path:?}: {err}");
                }
                (got, want) => panic!("{policy:?} {path:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}
