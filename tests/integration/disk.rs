//! The scratch-disk cap (`[limits] disk`): what `/tmp` and `/output` hold together, as an
//! obeyed/violated pair on each backend, a flood stopped while it writes with the host's disk
//! watched, and a sparse file counted by what it claims.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use kaggle_solver::sandbox::{LimitHit, RunLimits};

use crate::support::{docker_sandbox, generous, run_in, wasm_sandbox};

const MIB: u64 = 1 << 20;

fn capped(disk_bytes: u64) -> RunLimits {
    RunLimits {
        disk_bytes,
        output_bytes: 1 << 30,
        ..generous()
    }
}

/// Writes `mib` MiB to `folder` in 1 MiB writes, then says so.
fn writer(folder: &str, mib: u64) -> String {
    format!(
        "block = b'x' * (1 << 20)\n\
         with open('{folder}/big.bin', 'wb') as f:\n\
         \x20   for _ in range({mib}):\n\
         \x20       f.write(block)\n\
         print('wrote')\n"
    )
}

/// Bytes used on the filesystem holding the system's temporary folder.
fn used_bytes() -> u64 {
    let output = Command::new("df")
        .args(["--output=used", "-B1"])
        .arg(std::env::temp_dir())
        .output()
        .expect("df runs");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .expect("df prints a number")
}

/// Samples the host's used disk every 20 ms until stopped; the largest growth seen.
struct DiskWatch {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl DiskWatch {
    fn start() -> Self {
        let base = used_bytes();
        let (stop, peak) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let (s, p) = (stop.clone(), peak.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(used_bytes().saturating_sub(base), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Self { stop, peak, thread }
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        self.peak.load(Ordering::Relaxed)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn wasm_disk_obeyed() {
    let ran = run_in(
        &wasm_sandbox(),
        &writer("/tmp", 64),
        None,
        capped(256 * MIB),
    )
    .await;
    assert!(ran.outcome.succeeded(), "{:#?}", ran.outcome);
    assert_eq!(ran.outcome.stdout, "wrote\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn wasm_disk_violated_while_writing_and_the_host_disk_barely_grows() {
    let _quiet = crate::support::HOST_DISK.lock().await;
    for folder in ["/tmp", "/output"] {
        let watch = DiskWatch::start();
        let ran = run_in(
            &wasm_sandbox(),
            &writer(folder, 4096),
            None,
            capped(256 * MIB),
        )
        .await;
        let grew = watch.stop();
        let o = &ran.outcome;
        assert_eq!(o.limit, Some(LimitHit::Disk), "{folder}: {o:#?}");
        assert_eq!(o.exit_code, None, "{folder}: stopped, not exited: {o:#?}");
        assert!(
            !o.stdout.contains("wrote"),
            "{folder}: stopped while writing"
        );
        assert!(
            o.trap.as_deref().is_some_and(|t| t.contains("disk cap")),
            "{folder}: {o:#?}"
        );
        assert!(
            grew < 512 * MIB,
            "{folder}: the host's disk grew by {grew} bytes"
        );
        eprintln!("{folder}: host disk grew by at most {} MiB", grew / MIB);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn wasm_a_sparse_file_counts_what_it_claims() {
    let script = "with open('/tmp/sparse', 'wb') as f:\n    f.truncate(10 << 30)\n\
                  import time\ntime.sleep(1)\nprint('slept')\n";
    let ran = run_in(&wasm_sandbox(), script, None, capped(256 * MIB)).await;
    assert_eq!(
        ran.outcome.limit,
        Some(LimitHit::Disk),
        "{:#?}",
        ran.outcome
    );
    assert!(!ran.outcome.stdout.contains("slept"), "{:#?}", ran.outcome);
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_disk_obeyed() {
    let sandbox = docker_sandbox().await;
    let ran = run_in(&sandbox, &writer("/tmp", 64), None, capped(256 * MIB)).await;
    assert!(ran.outcome.succeeded(), "{:#?}", ran.outcome);
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_disk_violated_is_disk() {
    let sandbox = docker_sandbox().await;
    let _quiet = crate::support::HOST_DISK.lock().await;
    for folder in ["/tmp", "/output"] {
        let watch = DiskWatch::start();
        let ran = run_in(&sandbox, &writer(folder, 4096), None, capped(256 * MIB)).await;
        let grew = watch.stop();
        assert_eq!(
            ran.outcome.limit,
            Some(LimitHit::Disk),
            "{folder}: {:#?}",
            ran.outcome
        );
        assert!(!ran.outcome.stdout.contains("wrote"), "{folder}");
        assert!(
            grew < 512 * MIB,
            "{folder}: the host's disk grew by {grew} bytes"
        );
        eprintln!(
            "docker {folder}: host disk grew by at most {} MiB",
            grew / MIB
        );
    }
}
