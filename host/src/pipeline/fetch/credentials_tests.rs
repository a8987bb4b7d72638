//! Each credential source, in order, with an injected environment and temporary folders.

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
