//! Competition sources: `CompetitionRef::parse` on arbitrary and URL-shaped strings, and
//! `LocalPolicy::resolve` on paths that try to leave their root.

use std::path::{Path, PathBuf};

use kaggle_solver::pipeline::fetch::url::{MAX_INPUT_BYTES, MAX_SLUG_CHARS};
use kaggle_solver::pipeline::fetch::{CompetitionRef, LocalPolicy, SourceError};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::{check, clip};

/// No error message may be longer than this, whatever the input's size.
const MAX_MESSAGE_BYTES: usize = 4096;
/// How much of the input an error may quote (the parser cuts at 120 characters, plus `…`).
const MAX_QUOTED_CHARS: usize = 121;

/// What Kaggle's slugs look like: `^[a-z0-9][a-z0-9-]{0,99}$`.
fn is_kaggle_slug(slug: &str) -> bool {
    let mut chars = slug.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && slug.len() <= MAX_SLUG_CHARS
}

fn slug() -> impl Strategy<Value = String> {
    "[a-z0-9][a-z0-9-]{0,99}"
}

/// Checks everything `parse(input)` promises, whatever it returned.
fn obeys_the_contract(input: &str) -> Result<(), TestCaseError> {
    let parsed = CompetitionRef::parse(input);
    let shown = clip(input, 200);
    match parsed {
        Ok(CompetitionRef::Kaggle { slug }) => {
            prop_assert!(is_kaggle_slug(&slug), "slug {slug:?} from {shown:?}");
            prop_assert!(!slug.contains('/') && !slug.contains(".."), "{slug:?}");
            let trimmed = input.trim();
            let as_url = if trimmed.contains("://") {
                trimmed.to_owned()
            } else {
                format!("https://{trimmed}")
            };
            let url = url::Url::parse(&as_url).map_err(|e| {
                TestCaseError::fail(format!("{shown:?} gave {slug:?} but is no URL: {e}"))
            })?;
            prop_assert!(
                matches!(url.host_str(), Some("kaggle.com" | "www.kaggle.com")),
                "{shown:?} gave the Kaggle slug {slug:?} from the host {:?}",
                url.host_str()
            );
            let segments: Vec<&str> = url.path_segments().into_iter().flatten().take(2).collect();
            prop_assert!(
                matches!(segments.first(), Some(&("competitions" | "c")))
                    && segments.get(1) == Some(&slug.as_str()),
                "{shown:?} gave {slug:?} from the path {:?}",
                url.path()
            );
            let canonical = format!("https://www.kaggle.com/competitions/{slug}");
            prop_assert_eq!(
                CompetitionRef::parse(&canonical).ok(),
                Some(CompetitionRef::Kaggle { slug })
            );
        }
        Ok(CompetitionRef::Local(path)) => {
            let trimmed = input.trim();
            let lower = trimmed.to_ascii_lowercase();
            if lower.starts_with("file:") {
                prop_assert!(path.is_absolute(), "{shown:?} gave {path:?}");
            } else {
                prop_assert!(
                    !lower.contains("://")
                        && !lower.starts_with("kaggle.com/")
                        && !lower.starts_with("www.kaggle.com/"),
                    "{shown:?} looks like a URL but became the folder {path:?}"
                );
                prop_assert_eq!(path, PathBuf::from(trimmed));
            }
        }
        Err(err) => is_clear(&err, input)?,
    }
    Ok(())
}

/// The error is short, quotes at most a bounded piece of the input, and says what is wrong and
/// what would be accepted.
fn is_clear(err: &SourceError, input: &str) -> Result<(), TestCaseError> {
    let message = err.to_string();
    let shown = clip(input, 200);
    prop_assert!(!message.is_empty());
    prop_assert!(
        message.len() <= MAX_MESSAGE_BYTES,
        "a {}-byte message for {shown:?}: {}",
        message.len(),
        clip(&message, 600)
    );
    match err {
        SourceError::InvalidUrl {
            input: quoted,
            reason,
        } => {
            prop_assert!(!reason.trim().is_empty(), "{message}");
            prop_assert!(quoted.chars().count() <= MAX_QUOTED_CHARS, "{message}");
            prop_assert!(
                message.starts_with("not a Kaggle competition URL (")
                    && message.contains("expected https://www.kaggle.com/competitions/<slug>"),
                "{message}"
            );
        }
        SourceError::InvalidSlug { slug } => {
            prop_assert!(slug.chars().count() <= MAX_QUOTED_CHARS, "{message}");
            prop_assert!(!is_kaggle_slug(slug) || slug.ends_with('…'), "{message}");
            prop_assert!(message.contains("lowercase letters, digits and dashes"));
        }
        SourceError::TooLong { len } => {
            prop_assert_eq!(*len, input.len());
            prop_assert!(input.len() > MAX_INPUT_BYTES);
            prop_assert!(
                message.contains(&format!("{MAX_INPUT_BYTES}-byte limit")),
                "{message}"
            );
        }
        other => prop_assert!(false, "parse returned a local-folder error: {other}"),
    }
    Ok(())
}

#[test]
fn arbitrary_text_never_panics_and_errors_are_short() {
    let text = prop_oneof![
        any::<String>(),
        "\\PC{0,300}",
        prop::collection::vec(any::<char>(), 0..2200).prop_map(String::from_iter),
        // Around the length cap, where the cut and the cap meet.
        (2030usize..2070, "[ -~]").prop_map(|(n, c)| c.repeat(n)),
    ];
    check(256, &text, |input| obeys_the_contract(&input));
}

#[test]
fn huge_inputs_are_refused_without_being_echoed() {
    let huge = (
        prop_oneof![
            Just(""),
            Just("https://www.kaggle.com/competitions/"),
            Just("file:///")
        ],
        "[a-z0-9-]|é|\u{1F600}",
        MAX_INPUT_BYTES..(1 << 20) + 1,
    )
        .prop_map(|(prefix, unit, len)| format!("{prefix}{}", unit.repeat(len / unit.len() + 1)));
    check(16, &huge, |input| {
        let err = CompetitionRef::parse(&input)
            .err()
            .ok_or_else(|| TestCaseError::fail("an input over the cap was accepted"))?;
        prop_assert!(matches!(err, SourceError::TooLong { .. }), "{err}");
        is_clear(&err, &input)
    });
}

/// Pieces of URLs: real and hostile schemes, hosts, ports, paths and the rest.
fn url_shaped() -> impl Strategy<Value = String> {
    let scheme = prop_oneof![
        4 => prop::sample::select(vec!["https", "http", "HTTPS", "Http"]).prop_map(str::to_owned),
        2 => prop::sample::select(vec!["ftp", "file", "javascript", "data", "ws", "", "h ttps"])
            .prop_map(str::to_owned),
        1 => "[a-z][a-z0-9+.-]{0,8}",
    ];
    let separator = prop_oneof![
        6 => Just("://"),
        1 => prop::sample::select(vec![":", ":/", "//", "", ":///", ":\\\\"]),
    ];
    let userinfo = prop_oneof![
        6 => Just(""),
        1 => prop::sample::select(vec!["user@", "user:pass@", ":@", "%40@", "kaggle.com@"]),
    ];
    let host = prop_oneof![
        6 => prop::sample::select(vec!["www.kaggle.com", "kaggle.com", "WWW.KAGGLE.COM"])
            .prop_map(str::to_owned),
        3 => prop::sample::select(vec![
            "kaggle.com.",
            "evil.com",
            "kaggle.com.evil.com",
            "evilkaggle.com",
            "www.kaggle.com@evil.com",
            "k\u{430}ggle.com",
            "xn--kggle-",
            "127.0.0.1",
            "[::1]",
            "[kaggle.com]",
            "",
            "%6baggle.com",
        ])
        .prop_map(str::to_owned),
        1 => "\\PC{0,20}",
        // A long unicode host, which IDNA turns into a long punycode label.
        1 => "\\PC{300,700}",
    ];
    let port = prop_oneof![
        6 => Just(""),
        1 => prop::sample::select(vec![":443", ":80", ":8080", ":0", ":99999", ":", ":x"]),
    ];
    let segment = prop_oneof![
        4 => prop::sample::select(vec!["competitions", "c"]).prop_map(str::to_owned),
        4 => slug(),
        3 => prop::sample::select(vec![
            "..", ".", "%2e%2e", "%2E.", "Titanic", "a/b", "%2F", "", "t\u{ee}tanic", "ti tanic",
            "titanic%00", "\\", "%74itanic", "titanic-", "-titanic", "datasets",
        ])
        .prop_map(str::to_owned),
        1 => "\\PC{0,12}",
        // Long segments: percent-encoding triples each non-ASCII byte.
        1 => "\\PC{100,700}",
    ];
    let path = (
        prop::collection::vec(segment, 0..6),
        prop::sample::select(vec!["/", "\\"]),
    )
        .prop_map(|(segments, sep)| {
            segments
                .iter()
                .map(|s| format!("{sep}{s}"))
                .collect::<String>()
        });
    let query = prop_oneof![
        4 => Just(String::new()),
        1 => prop::sample::select(vec!["?", "?tab=data", "?x=%zz", "?a=1&b=..%2F"]).prop_map(str::to_owned),
        1 => "\\?\\PC{0,10}",
    ];
    let fragment = prop_oneof![
        4 => Just(String::new()),
        1 => "#\\PC{0,10}",
    ];
    let pad = prop::sample::select(vec!["", "", " ", "\t", "\u{a0}"]);
    (
        (scheme, separator, userinfo, host, port),
        (path, query, fragment, pad),
    )
        .prop_map(
            |((scheme, separator, userinfo, host, port), (path, query, fragment, pad))| {
                format!(
                    "{pad}{scheme}{separator}{userinfo}{host}{port}{path}{query}{fragment}{pad}"
                )
            },
        )
}

#[test]
fn url_shaped_strings_give_slugs_or_clear_errors() {
    check(512, &url_shaped(), |input| obeys_the_contract(&input));
}

#[test]
fn long_pieces_near_the_cap_are_not_echoed_whole() {
    // Each piece lands in a different message: the host, the first path segment, the slug.
    let shape = prop::sample::select(vec![
        "https://{}.com/c/x",
        "https://www.kaggle.com/{}",
        "https://www.kaggle.com/competitions/{}",
        "https://user:{}@kaggle.com/c/x",
        "kaggle.com/c/{}",
        "file://{}/x",
    ]);
    let unit = prop::sample::select(vec![
        "\u{e9}",
        "\u{1F600}",
        "\u{200b}",
        "%",
        "a",
        "A",
        "%zz",
    ]);
    let input = (shape, unit, 1usize..2100).prop_map(|(shape, unit, bytes)| {
        let piece = unit.repeat((bytes / unit.len()).max(1));
        shape.replace("{}", &piece)
    });
    check(256, &input, |input| obeys_the_contract(&input));
}

#[test]
fn every_accepted_shape_gives_exactly_its_slug() {
    let shape = (
        prop::sample::select(vec![
            "https://", "http://", "HTTPS://", "hTTp://", "", "", "https://", "http://",
        ]),
        prop::sample::select(vec!["www.kaggle.com", "kaggle.com", "WWW.KAGGLE.COM"]),
        any::<bool>(),
        prop::sample::select(vec!["competitions", "c"]),
        slug(),
        prop::sample::select(vec![
            "",
            "/",
            "/data",
            "/overview/evaluation",
            "?tab=data",
            "#leaderboard",
            "/data?select=train.csv#x",
            "/data/../leaderboard",
        ]),
        prop::sample::select(vec!["", " ", "\t "]),
    );
    check(
        256,
        &shape,
        |(scheme, host, default_port, kind, slug, tail, pad)| {
            let port = match scheme.to_ascii_lowercase().as_str() {
                "https://" if default_port => ":443",
                "http://" if default_port => ":80",
                _ => "",
            };
            let input = format!("{pad}{scheme}{host}{port}/{kind}/{slug}{tail}{pad}");
            prop_assert_eq!(
                CompetitionRef::parse(&input).map_err(|e| e.to_string()),
                Ok(CompetitionRef::Kaggle { slug }),
                "{:?}",
                input
            );
            Ok(())
        },
    );
}

/// A root with folders, a file and links in and out, beside a folder outside it.
struct Tree {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
}

fn tree() -> Tree {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(root.join("comp/sub")).expect("comp/sub");
    std::fs::create_dir_all(&outside).expect("outside");
    std::fs::write(root.join("file.txt"), "x").expect("file");
    std::os::unix::fs::symlink(&outside, root.join("link-out")).expect("link-out");
    std::os::unix::fs::symlink("../outside", root.join("comp/up-out")).expect("up-out");
    std::os::unix::fs::symlink(root.join("comp"), root.join("link-in")).expect("link-in");
    let root = root.canonicalize().expect("canonical root");
    let outside = outside.canonicalize().expect("canonical outside");
    Tree {
        _tmp: tmp,
        root,
        outside,
    }
}

fn local_path(tree: &Tree) -> impl Strategy<Value = PathBuf> + use<> {
    let root = tree.root.display().to_string();
    let outside = tree.outside.display().to_string();
    let segment = prop::sample::select(vec![
        "comp".to_owned(),
        "sub".to_owned(),
        "..".to_owned(),
        ".".to_owned(),
        "link-out".to_owned(),
        "link-in".to_owned(),
        "up-out".to_owned(),
        "file.txt".to_owned(),
        "missing".to_owned(),
        "%2e%2e".to_owned(),
        String::new(),
    ]);
    let start = prop::sample::select(vec![String::new(), "/".to_owned(), root, outside]);
    (start, prop::collection::vec(segment, 0..6)).prop_map(|(start, segments)| {
        let mut path = start;
        for s in segments {
            if !path.is_empty() && !path.ends_with('/') {
                path.push('/');
            }
            path.push_str(&s);
        }
        PathBuf::from(path)
    })
}

#[test]
fn local_folders_never_resolve_outside_their_root() {
    let tree = tree();
    let policy = LocalPolicy::UnderRoot(tree.root.clone());
    check(512, &local_path(&tree), |path| {
        match policy.resolve(&path) {
            Ok(found) => {
                prop_assert!(
                    found.starts_with(&tree.root) && found != tree.root,
                    "{path:?} resolved to {found:?}, not strictly inside {:?}",
                    tree.root
                );
                prop_assert!(found.is_dir(), "{found:?}");
                prop_assert!(!found.starts_with(&tree.outside), "{found:?}");
                prop_assert!(!path.components().any(|c| c.as_os_str() == ".."));
            }
            Err(err) => {
                let message = err.to_string();
                prop_assert!(
                    message.contains(&path.display().to_string()),
                    "{message} does not name {path:?}"
                );
                match &err {
                    SourceError::LocalNotAllowed { reason, .. } => {
                        prop_assert!(!reason.is_empty())
                    }
                    SourceError::LocalUnusable { .. } => {}
                    other => prop_assert!(false, "resolve returned {other}"),
                }
            }
        }
        // Inside the root and free of `..` and outward links, a folder must be accepted.
        if is_plainly_inside(&tree.root, &path) {
            prop_assert!(policy.resolve(&path).is_ok(), "{path:?} was refused");
        }
        Ok(())
    });
}

/// A relative path of `comp`, `sub`, `link-in` and `.` that names an existing folder.
fn is_plainly_inside(root: &Path, path: &Path) -> bool {
    path.is_relative()
        && !path.as_os_str().is_empty()
        && path.components().all(|c| {
            matches!(
                c.as_os_str().to_str(),
                Some("comp" | "sub" | "link-in" | ".")
            )
        })
        && root.join(path).is_dir()
        && root.join(path).canonicalize().ok().as_deref() != Some(root)
}
