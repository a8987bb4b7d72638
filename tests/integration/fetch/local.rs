//! Single flight (many concurrent fetches, one download), the local mirror, local folders under
//! each caller's policy, and credentials needed only when something must be downloaded.

use std::sync::atomic::Ordering;

use kaggle_solver::pipeline::fetch::{
    Caller, CompetitionRef, CredentialsError, CredentialsSource, EnvLookup, FetchConfig,
    FetchError, FetchOrigin, Fetcher, SourceError,
};

use super::fake_kaggle::{FakeKaggle, competition};
use super::{assert_files, config, fetcher};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_fetches_download_once() {
    let fake = FakeKaggle::start().await;
    let comp = competition("Crowded");
    fake.state.add("crowded", comp.clone());
    let cache = tempfile::tempdir().expect("tempdir");
    // Two fetchers over one cache stand in for two processes: they share only the file lock.
    let fetchers = [fetcher(&fake, cache.path()), fetcher(&fake, cache.path())];
    let source = CompetitionRef::kaggle("crowded").expect("slug");

    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let fetcher = fetchers[i % 2].clone();
            let source = source.clone();
            tokio::spawn(async move { fetcher.fetch(&source).await })
        })
        .collect();
    let mut origins = Vec::new();
    for task in tasks {
        let got = task.await.expect("task").expect("fetch");
        assert_eq!(got.dir, cache.path().join("competitions/crowded"));
        origins.push(got.origin);
    }
    assert_eq!(fake.state.download_calls.load(Ordering::SeqCst), 1);
    assert_eq!(fake.state.full_blob_gets.load(Ordering::SeqCst), 1);
    assert_eq!(fake.state.calls("GetCompetition").len(), 1);
    let downloads = origins
        .iter()
        .filter(|o| **o == FetchOrigin::Download)
        .count();
    assert_eq!(downloads, 1, "{origins:?}");
    assert_files(&cache.path().join("competitions/crowded"), &comp.files);
}

/// An MLE-bench-style folder: `<dir>/public/` with the data, `description.md` beside it.
fn mle_bench_folder(root: &std::path::Path, slug: &str) -> std::path::PathBuf {
    let dir = root.join(slug);
    std::fs::create_dir_all(dir.join("public")).expect("mkdir");
    std::fs::write(dir.join("public/train.csv"), "id,y\n1,0\n").expect("write");
    std::fs::write(dir.join("description.md"), "# Mirror\nMetric: RMSE\n").expect("write");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_mirror_is_used_without_any_request() {
    let fake = FakeKaggle::start().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let mirror = tmp.path().join("mirror");
    let dir = mle_bench_folder(&mirror, "mirrored");
    let mut config = config(&fake, &tmp.path().join("cache"));
    config.competitions_dir = Some(mirror.clone());
    // No credentials at all: the mirror needs none.
    config.credentials = CredentialsSource::Discover(EnvLookup::from_pairs::<&str, &str>([]));

    let source = CompetitionRef::parse("https://www.kaggle.com/c/mirrored").expect("parse");
    let got = Fetcher::new(config).fetch(&source).await.expect("fetch");
    assert_eq!(got.origin, FetchOrigin::Mirror);
    assert_eq!(got.slug, "mirrored");
    assert_eq!(got.dir, dir.join("public"));
    assert_eq!(got.description.as_deref(), Some("# Mirror\nMetric: RMSE"));
    assert!(fake.state.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_folders_follow_the_callers_policy() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("comps");
    let inside = mle_bench_folder(&root, "inside");
    let outside = mle_bench_folder(tmp.path(), "outside");
    std::os::unix::fs::symlink(&outside, root.join("sneaky")).expect("symlink");
    let env = EnvLookup::from_pairs([
        ("KS_HOME", tmp.path().join("home").display().to_string()),
        ("KS_COMPETITIONS_DIR", root.display().to_string()),
    ]);
    let api = Fetcher::new(FetchConfig::from_env(&env, Caller::Api).expect("config"));
    let cli = Fetcher::new(FetchConfig::from_env(&env, Caller::Cli).expect("config"));

    let url = format!("file://{}", inside.display());
    let got = api
        .fetch(&CompetitionRef::parse(&url).expect("parse"))
        .await
        .expect("inside");
    assert_eq!(got.origin, FetchOrigin::Local);
    assert_eq!(got.slug, "inside");
    assert_eq!(
        got.dir,
        inside.canonicalize().expect("canonical").join("public")
    );

    for refused in [
        outside.display().to_string(),
        root.join("sneaky").display().to_string(),
        format!("{}/../outside", root.display()),
        format!("file://{}", outside.display()),
    ] {
        let source = CompetitionRef::parse(&refused).expect("parse");
        let err = api.fetch(&source).await.expect_err(&refused);
        assert!(
            matches!(err, FetchError::Source(SourceError::LocalNotAllowed { .. })),
            "{refused}: {err}"
        );
        assert!(!err.is_retryable());
    }
    // The CLI takes any folder.
    let source = CompetitionRef::parse(&outside.display().to_string()).expect("parse");
    let got = cli.fetch(&source).await.expect("cli may use any folder");
    assert_eq!(
        got.dir,
        outside.canonicalize().expect("canonical").join("public")
    );
    assert_eq!(got.description.as_deref(), Some("# Mirror\nMetric: RMSE"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_required_only_to_download() {
    let fake = FakeKaggle::start().await;
    fake.state.add("needs-creds", competition("Needs Creds"));
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut config = config(&fake, tmp.path());
    config.credentials = CredentialsSource::Discover(EnvLookup::from_pairs([(
        "HOME",
        tmp.path().display().to_string(),
    )]));
    let err = Fetcher::new(config)
        .fetch(&CompetitionRef::kaggle("needs-creds").expect("slug"))
        .await
        .expect_err("no credentials");
    assert!(
        matches!(err, FetchError::Credentials(CredentialsError::Missing)),
        "{err}"
    );
    assert!(fake.state.requests().is_empty());
}
