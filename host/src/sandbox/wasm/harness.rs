//! The guest harness, compiled once per machine instead of once per run.
//!
//! Compiling the harness's source costs the interpreter about 10 M fuel and 2–3 ms on every
//! run, more than a `print('hi')` itself. So the guest compiles it once and prints the code
//! object as a `marshal` bytes literal, kept beside the compiled modules (keyed by the harness
//! and the runtime); every run executes a two-line loader of that code instead. Both modules
//! (plain and pre-warmed) are the same interpreter build, so one literal serves both. If
//! anything about it fails, runs keep using the source: slower, never wrong.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use wasmtime::InstancePre;

use super::run;
use super::store::{GuestState, ReadOnlyMounts};
use crate::sandbox::{RunLimits, SandboxRequest};

/// Where the loader for this harness and runtime (whose module hash is `module_sha256`) is
/// kept under the compile cache's folder.
pub(super) fn cache_path(compiled_dir: &Path, module_sha256: &str) -> PathBuf {
    let mut key = Sha256::new();
    key.update(ks_guest_runtime::HARNESS_PY.as_bytes());
    key.update(module_sha256.as_bytes());
    let key = hex::encode(key.finalize());
    compiled_dir.join(format!("harness-{}.py", &key[..16]))
}

/// The loader of the precompiled harness (from `cache` or made now and saved there), or the
/// harness's source if compiling it failed.
pub(super) async fn precompiled(
    pre: &InstancePre<GuestState>,
    read_only: &ReadOnlyMounts,
    cache: &Path,
) -> String {
    if let Ok(loader) = std::fs::read_to_string(cache)
        && is_loader(&loader)
    {
        return loader;
    }
    match compile(pre, read_only).await {
        Ok(loader) => {
            // Written whole then renamed, so a concurrent reader never sees half a loader.
            let saved = cache
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| {
                    let temp = cache.with_extension(format!("tmp{}", std::process::id()));
                    std::fs::write(&temp, &loader).and_then(|()| std::fs::rename(&temp, cache))
                });
            if let Err(e) = saved {
                tracing::debug!(error = %e, "the precompiled harness is not cached");
            }
            loader
        }
        Err(reason) => {
            tracing::warn!(%reason, "runs compile the guest harness each time");
            ks_guest_runtime::HARNESS_PY.to_owned()
        }
    }
}

fn is_loader(text: &str) -> bool {
    text.starts_with(LOADER_HEAD) && text.ends_with("))\n")
}

const LOADER_HEAD: &str = "import marshal\nexec(marshal.loads(b";

async fn compile(
    pre: &InstancePre<GuestState>,
    read_only: &ReadOnlyMounts,
) -> Result<String, String> {
    let source = serde_json::to_string(ks_guest_runtime::HARNESS_PY).map_err(|e| e.to_string())?;
    let script = format!(
        "import marshal\nprint(repr(marshal.dumps(compile({source}, '<ks-harness>', 'exec'))))\n"
    );
    let output = tempfile::Builder::new()
        .prefix("ks-harness-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let limits = RunLimits {
        wall_time: Duration::from_secs(60),
        memory_bytes: 1 << 30,
        fuel: 10_000_000_000,
        output_bytes: 1 << 20,
        disk_bytes: 1 << 30,
    };
    let request = SandboxRequest::new(script, output.path(), limits);
    let outcome = run::run(pre, read_only, request, ks_guest_runtime::HARNESS_PY)
        .await
        .map_err(|e| e.to_string())?;
    let literal = outcome.stdout.trim();
    if !outcome.succeeded() || !literal.starts_with("b'") && !literal.starts_with("b\"") {
        return Err(format!(
            "compiling the harness in the guest failed: {:?}",
            outcome.failure_summary()
        ));
    }
    let loader = format!("import marshal\nexec(marshal.loads({literal}))\n");
    debug_assert!(is_loader(&loader));
    Ok(loader)
}
