//! Fetching competitions against a fake Kaggle on 127.0.0.1: the happy path, redirects,
//! Kaggle's refusals (401, 403 rules, 404), retries (429/5xx), metadata that fails on the
//! server's side (the files still come), tables packed once more inside the download, and a
//! dropped download resumed.
//! Sub-modules cover hostile archives, single flight and local folders, and the fake's
//! faithfulness, proven by the official `kaggle` client.

mod faithful;
mod fake_kaggle;
mod local;
mod malicious;
mod official;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use kaggle_solver::pipeline::fetch::{
    CompetitionRef, Credentials, CredentialsSource, DownloadProgress, FetchConfig, FetchError,
    FetchOrigin, FetchedCompetition, Fetcher, KaggleClient, KaggleError, RetryPolicy,
};

use fake_kaggle::{FakeCompetition, FakeKaggle, Injected, KEY, RULES_MESSAGE, USER, competition};

/// Retries quick enough for tests.
fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_secs(2),
    }
}

fn good_credentials() -> Credentials {
    Credentials::basic(USER, KEY, "test credentials")
}

/// A config for `fake` with the cache in `cache`.
fn config(fake: &FakeKaggle, cache: &Path) -> FetchConfig {
    let mut config = FetchConfig::new(cache);
    config.api_base = fake.base();
    config.credentials = CredentialsSource::Fixed(good_credentials());
    config.retry = fast_retries();
    config
}

async fn fetch(config: FetchConfig, slug: &str) -> Result<FetchedCompetition, FetchError> {
    Fetcher::new(config)
        .fetch(&CompetitionRef::kaggle(slug).expect("valid slug"))
        .await
}

/// Asserts that `dir` holds exactly the fake competition's files.
fn assert_files(dir: &Path, files: &[(String, Vec<u8>)]) {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read the data dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut expected: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
    expected.sort();
    assert_eq!(names, expected);
    for (name, bytes) in files {
        assert_eq!(
            &std::fs::read(dir.join(name)).expect("read"),
            bytes,
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_happy_path_then_cache_hit() {
    let fake = FakeKaggle::start().await;
    let comp = competition("Happy Path");
    fake.state.add("happy-path", comp.clone());
    let cache = tempfile::tempdir().expect("tempdir");
    let fetcher = Fetcher::new(config(&fake, cache.path()));

    let source = CompetitionRef::parse("https://www.kaggle.com/competitions/happy-path/data?x=1")
        .expect("parse");
    let got = fetcher.fetch(&source).await.expect("fetch");
    assert_eq!(got.origin, FetchOrigin::Download);
    assert_eq!(got.slug, "happy-path");
    assert_eq!(got.dir, cache.path().join("competitions/happy-path"));
    assert_eq!(got.title.as_deref(), Some("Happy Path"));
    assert_eq!(
        got.evaluation_metric.as_deref(),
        Some("Categorization Accuracy")
    );
    assert_eq!(
        got.description.as_deref(),
        Some("Happy Path: predict the target.")
    );
    assert_files(&got.dir, &comp.files);

    // The calls, as kagglesdk makes them: POST, camelCase JSON, Basic auth.
    let basic = fake_kaggle::calls_auth(&fake.state.calls("DownloadDataFiles"));
    assert_eq!(basic, vec![Some("Basic".to_owned())]);
    let download = &fake.state.calls("DownloadDataFiles")[0];
    assert_eq!(download.method, "POST");
    assert_eq!(
        download.path,
        "/api/v1/competitions.CompetitionApiService/DownloadDataFiles"
    );
    assert_eq!(download.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        download.body,
        Some(serde_json::json!({"competitionName": "happy-path"}))
    );
    assert_eq!(fake.state.calls("GetCompetition").len(), 1);
    assert_eq!(fake.state.calls("ListDataFiles").len(), 1);

    let again = fetcher.fetch(&source).await.expect("fetch again");
    assert_eq!(again.origin, FetchOrigin::Cache);
    assert_eq!(again.title.as_deref(), Some("Happy Path"));
    assert_eq!(fake.state.download_calls.load(Ordering::SeqCst), 1);
    // A fresh fetcher (a new process) also hits the cache.
    let third = fetch(config(&fake, cache.path()), "happy-path")
        .await
        .expect("fetch");
    assert_eq!(third.origin, FetchOrigin::Cache);
    assert_eq!(fake.state.download_calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_reports_its_bytes_as_they_arrive_and_a_cache_hit_none() {
    let fake = FakeKaggle::start().await;
    fake.state.add("counted", competition("Counted"));
    let cache = tempfile::tempdir().expect("tempdir");
    // Each report: the bytes so far and the total.
    type Reports = std::sync::Mutex<Vec<(u64, Option<u64>)>>;
    let seen: Arc<Reports> = Arc::default();
    let sink = seen.clone();
    let fetcher = Fetcher::new(config(&fake, cache.path())).with_download_progress(
        DownloadProgress::new(move |bytes, total| {
            sink.lock().expect("lock").push((bytes, total));
        }),
    );
    let source = CompetitionRef::kaggle("counted").expect("valid slug");
    let got = fetcher.fetch(&source).await.expect("fetch");
    assert_eq!(got.origin, FetchOrigin::Download);
    let reports = seen.lock().expect("lock").clone();
    let last = *reports.last().expect("at least one report");
    assert!(got.downloaded_bytes > 0);
    assert_eq!(last, (got.downloaded_bytes, Some(got.downloaded_bytes)));
    assert!(reports.windows(2).all(|w| w[0].0 <= w[1].0), "{reports:?}");

    let again = fetcher.fetch(&source).await.expect("fetch again");
    assert_eq!(again.origin, FetchOrigin::Cache);
    assert_eq!(again.downloaded_bytes, 0);
    assert_eq!(
        seen.lock().expect("lock").len(),
        reports.len(),
        "no download, no report"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_to_another_origin_drops_credentials() {
    let fake = FakeKaggle::start().await;
    let storage = FakeKaggle::start_with(fake.state.clone()).await;
    *fake.state.storage_origin.lock().expect("lock") = Some(storage.base());
    let comp = competition("Elsewhere");
    fake.state.add("elsewhere", comp.clone());
    let cache = tempfile::tempdir().expect("tempdir");

    let got = fetch(config(&fake, cache.path()), "elsewhere")
        .await
        .expect("fetch");
    assert_files(&got.dir, &comp.files);
    let blobs = fake.state.gets();
    assert_eq!(blobs.len(), 1);
    assert_eq!(
        blobs[0].host.as_deref(),
        Some(storage.addr.to_string().as_str())
    );
    assert_eq!(
        blobs[0].authorization, None,
        "credentials must not follow a cross-origin redirect"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_lists_pages_and_downloads_single_files() {
    let fake = FakeKaggle::start().await;
    let mut comp = competition("Many Files");
    comp.files = (0..450)
        .map(|i| (format!("part-{i:03}.csv"), vec![b'x'; i % 7]))
        .collect();
    fake.state.add("many-files", comp.clone());
    let client =
        KaggleClient::new(&fake.base(), good_credentials(), fast_retries()).expect("client");

    let files = client.list_data_files("many-files").await.expect("list");
    assert_eq!(files.len(), 450);
    assert_eq!(files[449].name, "part-449.csv");
    assert_eq!(files[6].total_bytes, 6);
    assert_eq!(fake.state.calls("ListDataFiles").len(), 3);

    let out = tempfile::tempdir().expect("tempdir");
    let dest = out.path().join("one.csv");
    let done = client
        .download_data_file("many-files", "part-006.csv", &dest)
        .await
        .expect("download one file");
    assert_eq!(done.bytes, 6);
    assert_eq!(std::fs::read(&dest).expect("read"), vec![b'x'; 6]);
    assert_eq!(done.url.query(), None, "signed query strings are not kept");
    let err = client
        .download_data_file("many-files", "nope.csv", &dest)
        .await
        .expect_err("missing file");
    assert!(matches!(err, KaggleError::NotFound { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_aborts_with_advice() {
    let fake = FakeKaggle::start().await;
    fake.state.add("secret", competition("Secret"));
    let cache = tempfile::tempdir().expect("tempdir");
    let mut config = config(&fake, cache.path());
    config.credentials = CredentialsSource::Fixed(Credentials::basic(USER, "wrong", "kaggle.json"));

    let err = fetch(config, "secret").await.expect_err("401");
    assert!(
        matches!(err, FetchError::Kaggle(KaggleError::Unauthorized { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("check your credentials"), "{err}");
    assert!(
        !err.to_string().contains("wrong"),
        "the key must not be shown: {err}"
    );
    assert!(!err.is_retryable());
    assert_eq!(
        fake.state.calls("GetCompetition").len(),
        1,
        "no retries on 401"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_not_accepted_aborts_with_the_rules_page() {
    let fake = FakeKaggle::start().await;
    let mut comp = competition("Rules");
    comp.rules_accepted = false;
    fake.state.add("needs-rules", comp);
    let cache = tempfile::tempdir().expect("tempdir");

    let err = fetch(config(&fake, cache.path()), "needs-rules")
        .await
        .expect_err("403");
    assert!(
        matches!(
            err,
            FetchError::Kaggle(KaggleError::RulesNotAccepted { .. })
        ),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("https://www.kaggle.com/competitions/needs-rules/rules"),
        "{text}"
    );
    assert!(text.contains(RULES_MESSAGE), "{text}");
    assert!(!err.is_retryable());
    assert_eq!(
        fake.state.download_calls.load(Ordering::SeqCst),
        1,
        "no retries on 403"
    );
    assert!(!cache.path().join("competitions/needs-rules").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_competition_is_a_404() {
    let fake = FakeKaggle::start().await;
    let cache = tempfile::tempdir().expect("tempdir");
    let err = fetch(config(&fake, cache.path()), "no-such-thing")
        .await
        .expect_err("404");
    assert!(
        matches!(err, FetchError::Kaggle(KaggleError::NotFound { .. })),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("unknown competition \"no-such-thing\""),
        "{err}"
    );
    assert!(!err.is_retryable());
    assert_eq!(fake.state.calls("GetCompetition").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_and_server_errors_are_retried_honouring_retry_after() {
    let fake = FakeKaggle::start().await;
    let comp = competition("Busy");
    fake.state.add("busy", comp.clone());
    fake.state.inject.lock().expect("lock").extend([
        Injected {
            status: 429,
            retry_after: Some("1"),
        },
        Injected {
            status: 503,
            retry_after: Some("0"),
        },
    ]);
    let cache = tempfile::tempdir().expect("tempdir");

    let started = Instant::now();
    let got = fetch(config(&fake, cache.path()), "busy")
        .await
        .expect("fetch after retries");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
    assert_files(&got.dir, &comp.files);
    assert_eq!(fake.state.calls("GetCompetition").len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_are_bounded() {
    let fake = FakeKaggle::start().await;
    fake.state.add("down", competition("Down"));
    let failures = (0..10).map(|_| Injected {
        status: 500,
        retry_after: None,
    });
    fake.state.inject.lock().expect("lock").extend(failures);
    let cache = tempfile::tempdir().expect("tempdir");

    let err = fetch(config(&fake, cache.path()), "down")
        .await
        .expect_err("500s");
    assert!(
        matches!(
            err,
            FetchError::Kaggle(KaggleError::Exhausted { attempts: 4, .. })
        ),
        "{err}"
    );
    assert!(err.is_retryable(), "a later try may succeed");
    assert_eq!(fake.state.calls("GetCompetition").len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metadata_failure_degrades_to_the_files_but_a_refusal_does_not() {
    let fake = FakeKaggle::start().await;
    let comp = competition("No Metadata");
    fake.state.add("no-metadata", comp.clone());
    // Every attempt of GetCompetition (the first call) fails on the server's side.
    let failures = (0..fast_retries().max_attempts).map(|_| Injected {
        status: 500,
        retry_after: None,
    });
    fake.state.inject.lock().expect("lock").extend(failures);
    let cache = tempfile::tempdir().expect("tempdir");
    let got = fetch(config(&fake, cache.path()), "no-metadata")
        .await
        .expect("the files without the metadata");
    assert_files(&got.dir, &comp.files);
    assert_eq!(got.title, None);
    assert_eq!(got.evaluation_metric, None);
    assert_eq!(fake.state.calls("GetCompetition").len(), 4);
    assert_eq!(fake.state.calls("ListDataFiles").len(), 1);

    // A 403 on the metadata is a refusal: the fetch ends there, without retries.
    fake.state.add("refused", competition("Refused"));
    fake.state.inject.lock().expect("lock").push_back(Injected {
        status: 403,
        retry_after: None,
    });
    let err = fetch(config(&fake, cache.path()), "refused")
        .await
        .expect_err("403");
    assert!(
        matches!(err, FetchError::Kaggle(KaggleError::Forbidden { .. })),
        "{err}"
    );
    assert_eq!(fake.state.calls("GetCompetition").len(), 5);
    assert_eq!(
        fake.state.calls("ListDataFiles").len(),
        1,
        "nothing after the refusal"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_competition_is_refused_before_any_download() {
    let fake = FakeKaggle::start().await;
    let mut comp = competition("Notebooks Only");
    comp.code_only = true;
    fake.state.add("notebooks-only", comp);
    let cache = tempfile::tempdir().expect("tempdir");
    let err = fetch(config(&fake, cache.path()), "notebooks-only")
        .await
        .expect_err("a code competition");
    assert!(
        matches!(&err, FetchError::CodeCompetition { slug } if slug == "notebooks-only"),
        "{err}"
    );
    assert!(!err.is_retryable());
    assert!(
        err.to_string().contains("accepts file submissions"),
        "{err}"
    );
    assert!(fake.state.calls("ListDataFiles").is_empty());
    assert_eq!(fake.state.download_calls.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_packed_in_the_download_are_read_as_tables() {
    use std::io::Write;
    let fake = FakeKaggle::start().await;
    let mut comp = competition("Packed");
    let plain = comp.files.clone();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain[1].1).expect("gzip");
    let packed = vec![
        ("train.csv.zip".to_owned(), fake_kaggle::zip_of(&plain[..1])),
        ("test.csv.gz".to_owned(), gz.finish().expect("gzip")),
        plain[2].clone(),
    ];
    comp.zip = fake_kaggle::zip_of(&packed);
    comp.files = packed;
    fake.state.add("packed", comp);
    let cache = tempfile::tempdir().expect("tempdir");
    let got = fetch(config(&fake, cache.path()), "packed")
        .await
        .expect("fetch");
    assert_files(&got.dir, &plain);
    let analysis = kaggle_solver::pipeline::analyse::analyse(
        &got.dir,
        "packed",
        &kaggle_solver::pipeline::analyse::CompetitionText::default(),
    )
    .expect("the unpacked tables analyse");
    assert_eq!((analysis.train.rows, analysis.test.rows), (200, 2));
}

/// A competition with a file big enough that half its zip is several TCP segments.
fn big_competition(title: &str) -> FakeCompetition {
    let mut comp = competition(title);
    let mut seed = 0x2545_f491_u32;
    let noise = (0..400_000)
        .map(|_| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 24) as u8
        })
        .collect();
    comp.files.push(("big.bin".into(), noise));
    comp.zip = fake_kaggle::zip_of(&comp.files);
    comp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connection_is_resumed_with_range() {
    let fake = FakeKaggle::start().await;
    let comp = big_competition("Flaky");
    fake.state.add("flaky", comp.clone());
    fake.state.drop_next_blob.store(true, Ordering::SeqCst);
    let cache = tempfile::tempdir().expect("tempdir");

    let got = fetch(config(&fake, cache.path()), "flaky")
        .await
        .expect("fetch");
    assert_files(&got.dir, &comp.files);
    let gets = fake.state.gets();
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert_eq!(gets[0].range, None);
    assert_eq!(
        gets[1].range,
        Some(format!("bytes={}-", comp.zip.len() / 2))
    );
    assert_eq!(fake.state.full_blob_gets.load(Ordering::SeqCst), 1);
    assert_eq!(fake.state.download_calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_fetch_resumes_the_download_a_failed_one_left() {
    let fake = FakeKaggle::start().await;
    let comp = big_competition("Flaky Twice");
    fake.state.add("flaky-twice", comp.clone());
    fake.state.drop_next_blob.store(true, Ordering::SeqCst);
    let cache = tempfile::tempdir().expect("tempdir");

    // No retries inside the fetch: the dropped connection ends it, as a job's last try would.
    let mut once = config(&fake, cache.path());
    once.retry.max_attempts = 1;
    let err = fetch(once, "flaky-twice")
        .await
        .expect_err("the dropped download ends the first fetch");
    assert!(err.is_retryable(), "{err}");
    let partial = cache.path().join("competitions/.partial-flaky-twice");
    assert!(partial.join("flaky-twice.zip").is_file());

    // A new fetcher, as a retried job on a restarted worker has.
    let got = fetch(config(&fake, cache.path()), "flaky-twice")
        .await
        .expect("the second fetch");
    assert_files(&got.dir, &comp.files);
    let gets: Vec<_> = fake.state.gets().into_iter().map(|r| r.range).collect();
    let half = comp.zip.len() / 2;
    assert_eq!(
        gets,
        [None, None, Some(format!("bytes={half}-"))],
        "a fresh URL is asked for, then only the missing half"
    );
    assert_eq!(fake.state.download_calls.load(Ordering::SeqCst), 2);
    assert!(
        !partial.exists(),
        "a finished fill keeps no partial download"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_download_of_another_file_is_not_resumed() {
    let fake = FakeKaggle::start().await;
    let comp = big_competition("Changed");
    fake.state.add("changed", comp.clone());
    fake.state.drop_next_blob.store(true, Ordering::SeqCst);
    let cache = tempfile::tempdir().expect("tempdir");
    let mut once = config(&fake, cache.path());
    once.retry.max_attempts = 1;
    fetch(once, "changed").await.expect_err("dropped");

    // The competition's data changes between the fetches: a new zip, a new ETag.
    let mut changed = big_competition("Changed");
    changed
        .files
        .push(("extra.csv".into(), b"id\n1\n".to_vec()));
    changed.zip = fake_kaggle::zip_of(&changed.files);
    fake.state.add("changed", changed.clone());
    let got = fetch(config(&fake, cache.path()), "changed")
        .await
        .expect("the second fetch");
    assert_files(&got.dir, &changed.files);
    let ranges: Vec<_> = fake
        .state
        .gets()
        .into_iter()
        .filter_map(|r| r.range)
        .collect();
    assert!(ranges.is_empty(), "{ranges:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connection_without_range_support_restarts() {
    let fake = FakeKaggle::start().await;
    let comp = competition("No Ranges");
    fake.state.add("no-ranges", comp.clone());
    fake.state.drop_next_blob.store(true, Ordering::SeqCst);
    fake.state.no_ranges.store(true, Ordering::SeqCst);
    let cache = tempfile::tempdir().expect("tempdir");

    let got = fetch(config(&fake, cache.path()), "no-ranges")
        .await
        .expect("fetch");
    assert_files(&got.dir, &comp.files);
    assert_eq!(fake.state.full_blob_gets.load(Ordering::SeqCst), 2);
}

/// Shared by the sub-modules: a fetcher over `fake` with its cache in `cache`.
fn fetcher(fake: &FakeKaggle, cache: &Path) -> Arc<Fetcher> {
    Arc::new(Fetcher::new(config(fake, cache)))
}
