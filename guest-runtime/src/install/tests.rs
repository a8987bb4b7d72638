//! Installer tests on tiny fake wheels: the happy path, idempotence, every integrity failure
//! (each must leave no runtime directory and no staging leftovers), and concurrent installs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};

use super::*;
use crate::testutil::{ARTIFACTS, Fixture};

fn run(fx: &Fixture) -> (Result<InstalledRuntime, InstallError>, Vec<InstallEvent>) {
    let events = Mutex::new(Vec::new());
    let progress = |e: InstallEvent| events.lock().expect("events").push(e);
    let source = WheelSource::File(fx.wheel.clone());
    let result = install_from(&fx.home, &fx.lock, &source, &progress);
    (result, events.into_inner().expect("events"))
}

/// After a failed install: no runtime directory, no temporary directories.
fn assert_nothing_installed(fx: &Fixture) {
    assert!(!fx.home.runtime_dir(&fx.lock).exists());
    assert_eq!(fx.installed(), None);
    assert_eq!(fx.runtime_root_listing(), vec![".install.lock".to_owned()]);
}

impl Fixture {
    fn installed(&self) -> Option<InstalledRuntime> {
        self.home.installed(&self.lock)
    }
}

#[test]
fn happy_path_extracts_exactly_the_artifacts() {
    let fx = Fixture::new();
    let (result, events) = run(&fx);
    let runtime = result.expect("install");
    let dir = fx.home.runtime_dir(&fx.lock);
    assert_eq!(runtime.dir(), dir);
    let mut expected = vec![InstallEvent::Verifying {
        wheel: fx.wheel.clone(),
    }];
    expected.extend(ArtifactKind::ALL.map(|artifact| InstallEvent::Extracting { artifact }));
    expected.push(InstallEvent::Done { path: dir.clone() });
    assert_eq!(events, expected);

    for (kind, (_, content)) in ArtifactKind::ALL.into_iter().zip(ARTIFACTS) {
        let artifact = runtime.artifact(kind);
        assert_eq!(fs::read(&artifact.path).expect("artifact"), content);
        assert_eq!(artifact.sha256, fx.lock.artifact(kind).sha256);
    }
    let mut names: Vec<_> = fs::read_dir(&dir)
        .expect("runtime dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let want = ["INSTALLED", "lib", "python-snapshot.wasm", "python.wasm"];
    assert_eq!(names, want);
    assert!(dir.join("lib/python315.zip").is_file());
    assert!(!fx.tmp.path().join("escape.txt").exists());
    assert!(!fx.home.root().join("escape.txt").exists());
    assert_eq!(fx.installed(), Some(runtime));
    assert_eq!(
        fx.runtime_root_listing(),
        [".install.lock", "fake-python-9.9.9"]
    );
}

#[test]
fn second_install_returns_at_once() {
    let fx = Fixture::new();
    let first = run(&fx).0.expect("first install");
    let (second, events) = run(&fx);
    assert_eq!(second.expect("second install"), first);
    let path = first.dir().to_owned();
    assert_eq!(events, [InstallEvent::Done { path }]);
}

#[test]
fn corrupt_wheel_is_rejected_and_nothing_is_installed() {
    let fx = Fixture::new();
    let mut bytes = fs::read(&fx.wheel).expect("wheel");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&fx.wheel, &bytes).expect("corrupt wheel");
    let err = run(&fx).0.expect_err("must fail");
    let InstallError::WheelMismatch {
        expected_sha256,
        actual_sha256,
        ..
    } = &err
    else {
        panic!("unexpected error: {err}");
    };
    assert_eq!(expected_sha256, &fx.lock.wheel().sha256);
    assert_ne!(actual_sha256, expected_sha256);
    assert!(!err.is_retryable());
    assert_nothing_installed(&fx);
}

#[test]
fn wheel_without_an_artifact_is_rejected() {
    let fx = Fixture::with_entries(&ARTIFACTS[..2], &ARTIFACTS);
    let err = run(&fx).0.expect_err("must fail");
    assert!(
        matches!(&err, InstallError::ArtifactMissing { entry, .. } if entry == ARTIFACTS[2].0),
        "{err}"
    );
    assert!(!err.is_retryable());
    assert_nothing_installed(&fx);
}

#[test]
fn artifact_with_wrong_hash_is_rejected() {
    let mut tampered = ARTIFACTS;
    tampered[1].1 = b"\0asm a different snapshot";
    let fx = Fixture::with_entries(&tampered, &ARTIFACTS);
    let err = run(&fx).0.expect_err("must fail");
    assert!(
        matches!(&err, InstallError::ArtifactMismatch { entry, .. } if entry == ARTIFACTS[1].0),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains(&fx.lock.artifact(ArtifactKind::PythonSnapshotWasm).sha256)
    );
    assert_nothing_installed(&fx);
}

#[test]
fn not_a_zip_is_rejected() {
    let fx = Fixture::new();
    fs::write(&fx.wheel, b"definitely not a zip").expect("write");
    let lock = crate::testutil::lock_for(&fx.wheel, &ARTIFACTS);
    let source = WheelSource::File(fx.wheel.clone());
    let err = install_from(&fx.home, &lock, &source, &|_| {}).expect_err("must fail");
    assert!(matches!(err, InstallError::BadWheel { .. }), "{err}");
    assert!(!fx.home.runtime_dir(&lock).exists());
}

#[test]
fn incomplete_install_and_crash_leftovers_are_repaired() {
    let fx = Fixture::new();
    let runtime = run(&fx).0.expect("install");
    fs::remove_file(runtime.python_wasm()).expect("break the install");
    let stale = fx.home.runtime_root().join(".staging-crashed");
    fs::create_dir(&stale).expect("stale staging dir");
    fs::write(stale.join("python.wasm"), b"half").expect("stale file");
    assert_eq!(fx.installed(), None);

    let (again, events) = run(&fx);
    assert_eq!(again.expect("reinstall"), runtime);
    assert_eq!(events.len(), 5, "{events:?}");
    assert_eq!(
        fs::read(runtime.python_wasm()).expect("restored"),
        ARTIFACTS[0].1
    );
    assert_eq!(
        fx.runtime_root_listing(),
        [".install.lock", "fake-python-9.9.9"]
    );
}

#[test]
fn concurrent_installs_install_once() {
    let fx = Arc::new(Fixture::new());
    let verifications = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (fx, count, barrier) = (fx.clone(), verifications.clone(), barrier.clone());
            std::thread::spawn(move || {
                let progress = |e: InstallEvent| {
                    if matches!(e, InstallEvent::Verifying { .. }) {
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                };
                let source = WheelSource::File(fx.wheel.clone());
                barrier.wait();
                install_from(&fx.home, &fx.lock, &source, &progress)
            })
        })
        .collect();
    let results: Vec<_> = threads
        .into_iter()
        .map(|t| t.join().expect("thread").expect("install"))
        .collect();
    assert_eq!(verifications.load(Ordering::SeqCst), 1);
    assert!(results.iter().all(|r| r == &results[0]));
    assert_eq!(
        fx.runtime_root_listing(),
        [".install.lock", "fake-python-9.9.9"]
    );
}
