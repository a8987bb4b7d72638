//! The fake is faithful: the official `kaggle` 2.2.5 client lists and downloads from it (with a
//! `kaggle.json` API key and with an access token) and saves exactly the zip the fake served;
//! then our fetcher, against the same fake, sends the same calls.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;

use kaggle_solver::pipeline::fetch::{CompetitionRef, Fetcher};

use super::fake_kaggle::{FakeKaggle, KEY, Recorded, TOKEN, USER, calls_auth, competition};
use super::official::{Auth, kaggle};
use super::{assert_files, config};

const SLUG: &str = "faithful-comp";

fn keys(r: &Recorded) -> BTreeSet<String> {
    r.body
        .as_ref()
        .and_then(|b| b.as_object())
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_client_is_served_and_both_clients_agree() {
    let fake = FakeKaggle::start().await;
    let comp = competition("Faithful");
    fake.state.add(SLUG, comp.clone());
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("home");
    let config_dir = tmp.path().join("kaggle-config");
    let empty_config = tmp.path().join("empty-config");
    for dir in [&home, &config_dir, &empty_config] {
        std::fs::create_dir_all(dir).expect("mkdir");
    }
    let json_path = config_dir.join("kaggle.json");
    let json = serde_json::json!({ "username": USER, "key": KEY });
    std::fs::write(&json_path, json.to_string()).expect("write kaggle.json");
    std::fs::set_permissions(&json_path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let proxy = fake.base();

    // `kaggle competitions files`, with kaggle.json (Basic).
    let args = ["competitions", "files", SLUG];
    let listed = kaggle(&proxy, Auth::KaggleJson(&config_dir), &home, &args).await;
    let stdout = String::from_utf8_lossy(&listed.stdout);
    for (name, _) in &comp.files {
        assert!(
            stdout.contains(name.as_str()),
            "{name} missing from:\n{stdout}"
        );
    }

    // `kaggle competitions download`, with kaggle.json (Basic) then with a token (Bearer).
    let basic_dir = tmp.path().join("dl-basic");
    let token_dir = tmp.path().join("dl-token");
    let basic_path = basic_dir.display().to_string();
    let token_path = token_dir.display().to_string();
    let args = ["competitions", "download", "-c", SLUG, "-p", &basic_path];
    kaggle(&proxy, Auth::KaggleJson(&config_dir), &home, &args).await;
    let args = ["competitions", "download", "-c", SLUG, "-p", &token_path];
    kaggle(&proxy, Auth::Token(TOKEN, &empty_config), &home, &args).await;
    for dir in [&basic_dir, &token_dir] {
        let saved = std::fs::read(dir.join(format!("{SLUG}.zip"))).expect("the saved zip");
        assert!(
            saved == comp.zip,
            "the zip saved in {} differs",
            dir.display()
        );
    }

    // What the official client sent: only routes the fake knows, through the proxy.
    let official = fake.state.requests();
    assert_eq!(
        fake.state
            .unknown_routes
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    assert!(
        official
            .iter()
            .all(|r| r.host.as_deref() == Some("localhost")),
        "{official:?}"
    );
    let introspect = fake.state.calls("IntrospectToken");
    assert_eq!(calls_auth(&introspect), vec![Some("Bearer".to_owned())]);
    let official_downloads = fake.state.calls("DownloadDataFiles");
    let schemes = calls_auth(&official_downloads);
    assert_eq!(
        schemes,
        vec![Some("Basic".to_owned()), Some("Bearer".to_owned())]
    );
    let official_list = fake.state.calls("ListDataFiles");
    assert_eq!(official_list.len(), 1);

    // Our fetcher, against the same fake, directly.
    let cache = tmp.path().join("cache");
    let fetcher = Fetcher::new(config(&fake, &cache));
    let got = fetcher
        .fetch(&CompetitionRef::kaggle(SLUG).expect("slug"))
        .await
        .expect("our fetch");
    assert_files(&got.dir, &comp.files);

    let ours: Vec<Recorded> = fake.state.requests()[official.len()..].to_vec();
    for (method, theirs) in [
        ("ListDataFiles", &official_list[0]),
        ("DownloadDataFiles", &official_downloads[0]),
    ] {
        let mine = ours
            .iter()
            .find(|r| r.path.ends_with(&format!("/{method}")))
            .unwrap_or_else(|| panic!("we never called {method}"));
        assert_eq!(mine.method, theirs.method, "{method}");
        assert_eq!(mine.path, theirs.path, "{method}");
        assert_eq!(mine.content_type, theirs.content_type, "{method}");
        assert_eq!(
            mine.authorization, theirs.authorization,
            "{method}: same Basic header"
        );
        assert_eq!(keys(mine), keys(theirs), "{method}: same body fields");
        let name = |r: &Recorded| r.body.as_ref().map(|b| b["competitionName"].clone());
        assert_eq!(name(mine), name(theirs), "{method}");
    }
}
