//! Hostile archives served by the fake: each is refused, nothing lands outside the data folder,
//! and the partial output is removed (only the fill lock file remains in the cache).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use kaggle_solver::pipeline::fetch::{ExtractError, FetchError};
use zip::write::SimpleFileOptions;

use super::fake_kaggle::{FakeKaggle, competition};
use super::{config, fetch};

fn deflated() -> SimpleFileOptions {
    SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated)
}

/// A zip with a harmless file, then `add`'s entries.
fn build(add: impl FnOnce(&mut zip::ZipWriter<std::io::Cursor<Vec<u8>>>)) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    writer.start_file("train.csv", deflated()).expect("start");
    writer.write_all(b"id,target\n1,0\n").expect("write");
    add(&mut writer);
    writer.finish().expect("finish").into_inner()
}

fn file(writer: &mut zip::ZipWriter<std::io::Cursor<Vec<u8>>>, name: &str, body: &[u8]) {
    writer.start_file(name, deflated()).expect("start");
    writer.write_all(body).expect("write");
}

/// 200 MB of zeros: about 200 KB compressed.
fn bomb() -> &'static [u8] {
    static BOMB: OnceLock<Vec<u8>> = OnceLock::new();
    BOMB.get_or_init(|| {
        build(|w| {
            w.start_file("zeros.csv", deflated()).expect("start");
            let block = vec![0u8; 1 << 20];
            for _ in 0..200 {
                w.write_all(&block).expect("write");
            }
        })
    })
}

/// Every file under `root`, relative to it.
fn all_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() && !path.is_symlink() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(root).expect("under root").to_owned());
            }
        }
    }
    out
}

/// Serves `zip` as the competition `slug`, fetches it with `adjust`ed limits, and checks the
/// refusal left nothing behind.
async fn refused(
    slug: &str,
    zip: Vec<u8>,
    adjust: impl FnOnce(&mut kaggle_solver::pipeline::fetch::ExtractLimits),
) -> ExtractError {
    let fake = FakeKaggle::start().await;
    let mut comp = competition(slug);
    comp.zip = zip;
    fake.state.add(slug, comp);
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let mut config = config(&fake, &cache);
    adjust(&mut config.limits);

    let err = fetch(config, slug).await.expect_err("refused");
    assert!(!err.is_retryable(), "{err}");
    let FetchError::Extract { source, .. } = err else {
        panic!("expected an extraction refusal, got {err}");
    };
    assert_eq!(
        all_files(tmp.path()),
        vec![PathBuf::from(format!(
            "cache/competitions/{slug}.fill.lock"
        ))],
        "only the fill's lock file may remain"
    );
    source
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zip_slip_is_refused() {
    let outside = std::env::temp_dir().join(format!("ks-slip-{}.txt", std::process::id()));
    let deep = format!("../../../../../../../../../..{}", outside.display());
    for (i, name) in [
        "../../../../escaped.txt",
        "data/../../evil.txt",
        "..\\evil.txt",
        &deep,
    ]
    .into_iter()
    .enumerate()
    {
        let zip = build(|w| file(w, name, b"pwned"));
        let err = refused(&format!("slip-{i}"), zip, |_| {}).await;
        assert!(
            matches!(err, ExtractError::UnsafePath { .. }),
            "{name}: {err}"
        );
        assert!(err.to_string().contains(".."), "{err}");
    }
    assert!(!outside.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absolute_paths_are_refused() {
    let target = std::env::temp_dir().join(format!("ks-abs-{}.txt", std::process::id()));
    let name = target.display().to_string();
    let zip = build(|w| file(w, &name, b"pwned"));
    let err = refused("absolute", zip, |_| {}).await;
    assert!(matches!(err, ExtractError::UnsafePath { .. }), "{err}");
    assert!(err.to_string().contains("absolute"), "{err}");
    assert!(!target.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlink_entries_are_refused() {
    let zip = build(|w| {
        w.add_symlink("passwd.csv", "/etc/passwd", deflated())
            .expect("symlink");
    });
    let err = refused("symlink", zip, |_| {}).await;
    assert!(matches!(err, ExtractError::Symlink { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bombs_are_stopped_by_the_size_cap() {
    let err = refused("bomb-size", bomb().to_vec(), |limits| {
        limits.max_total_bytes = 10 << 20;
    })
    .await;
    assert!(matches!(err, ExtractError::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("zip bomb"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bombs_are_stopped_by_the_ratio_cap_under_default_limits() {
    let err = refused("bomb-ratio", bomb().to_vec(), |_| {}).await;
    assert!(matches!(err, ExtractError::RatioExceeded { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_entries_are_refused() {
    let zip = build(|w| {
        for i in 0..9 {
            file(w, &format!("f{i}.csv"), b"x");
        }
    });
    let err = refused("many", zip, |limits| limits.max_entries = 5).await;
    assert!(
        matches!(err, ExtractError::TooManyEntries { count: 10, max: 5 }),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_entries_are_refused() {
    let zip = build(|w| file(w, "./train.csv", b"second copy"));
    let err = refused("duplicate", zip, |_| {}).await;
    assert!(matches!(err, ExtractError::Io { .. }), "{err}");
}
