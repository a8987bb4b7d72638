//! Table-driven tests of [`CompetitionRef::parse`] and [`LocalPolicy::resolve`].

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
