//! The pre-warmed guest: an image of the interpreter with numpy, pandas, scipy and
//! scikit-learn already imported, built once per machine the way Wizer pre-initialises modules.
//!
//! Every run of the plain snapshot spends about 3 s (13.5 G fuel) importing the scientific stack.
//! The build does it once: it exports the interpreter's internal `run_private` (found through the
//! `name` section), instruments the runtime's `python-snapshot.wasm` with Wizer's split API,
//! instantiates it with exactly a run's WASI view (argv, environment, read-only mounts), runs the
//! import list from `guest-runtime/prewarm/`, drops libc's preopen table, clears the unused stack
//! and snapshots memory and the stack pointer into a new module. The module is cached
//! (raw and precompiled) under a key covering the runtime, the stdlib zip, matplotlib's data, the
//! guest's environment and read-only mounts, the import list and build Python, and the wasmtime
//! version; builders in other processes wait on the cache's lock.
//!
//! **What the image freezes, and why that is safe.** Everything the imports computed is shared
//! by all runs. Per-run state is renewed: `turn` reads the run's own argv and environment on its
//! first call (the build never calls `turn`), reseeds `random` and `numpy.random`'s global
//! generators, and resets `logging`'s start time; `/tmp`, `/input` and `/output` are the run's
//! own preopens, re-read because the build reset libc's preopen table. The RNG objects created
//! during the imports (scikit-learn's default `RandomState` of the HistGradientBoosting splitter
//! and default `Generator` of its tree grower among them) are recorded at build time and reseeded
//! from the run's entropy by the harness's prelude; `multiprocessing`'s authkey is renewed too.
//! The build audits this before accepting an image (`audit.rs`): two images built with
//! different entropy are restored, A twice and B once, and any RNG state equal in A's two runs
//! but different in B's refuses the image. Frozen and harmless: the string hash seed (fixed, as
//! in the shipped snapshot), values libraries derived from the fixed environment at import time,
//! and timestamps taken at build time (`time.monotonic()` restarts near zero in each run).
//! The image's initial memory (~109 MiB) is the smallest memory cap it runs under.

//!
//! Parts: `build` (instrument, import, snapshot), `image` (a built instance's state),
//! `audit` (the entropy check), `edit` (export edits of the module) and `error`
//! ([`PrewarmError`], the one error of all of them).

mod audit;
mod build;
mod edit;
mod error;
mod image;
mod step;

use std::fs;
use std::sync::Arc;

use ks_guest_runtime::{InstalledRuntime, PrewarmRecord, PrewarmState, RuntimeHome};
use sha2::{Digest, Sha256};
use wasmtime::{Engine, InstancePre, Module};

pub use error::PrewarmError;
pub use step::PrewarmStep;

use super::engine;
use super::store::{self, GuestState, ReadOnlyMounts};

/// The wasmtime (and wasmtime-wizer) release the image is built with; pinned in Cargo.toml.
const WASMTIME_VERSION: &str = "48.0.8";
/// Bump when the build steps change in a way that changes the image.
const RECIPE: &str = "prewarm-1";

/// Whether to build when no image is cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IfMissing {
    /// Build it, even if an earlier build of this key failed.
    Build,
    /// Build it unless an earlier build of this key failed (the reason is returned instead).
    BuildUnlessFailed,
}

/// What loading or building the image needs, kept by a sandbox until the first run asks.
#[derive(Clone)]
pub(crate) struct Prewarmer {
    pub(crate) home: RuntimeHome,
    pub(crate) installed: InstalledRuntime,
    pub(crate) read_only: ReadOnlyMounts,
    /// Where build steps are reported.
    pub(crate) report: Option<Arc<dyn Fn(PrewarmStep) + Send + Sync>>,
}

impl Prewarmer {
    /// Whether an image for this runtime is cached.
    pub(crate) fn is_cached(&self) -> bool {
        let key = cache_key(&self.installed);
        self.home.compile_cache().get(&key).is_some()
    }

    /// Loads or builds the image and links it. Blocking.
    pub(crate) fn load(
        &self,
        if_missing: IfMissing,
    ) -> Result<InstancePre<GuestState>, PrewarmError> {
        let engine = engine::engine().map_err(PrewarmError::Sandbox)?;
        let report = |step: PrewarmStep| {
            if let Some(report) = &self.report {
                report(step);
            }
        };
        let module = load_or_build(
            engine,
            &self.home,
            &self.installed,
            &self.read_only,
            if_missing,
            &report,
        )?;
        store::linker(engine)
            .and_then(|linker| linker.instantiate_pre(&module))
            .map_err(|e| PrewarmError::Wasm {
                step: "linking the pre-warmed module",
                message: format!("{e:#}"),
            })
    }
}

/// The image's cache key: everything the built bytes depend on.
pub(crate) fn cache_key(installed: &InstalledRuntime) -> String {
    use ks_guest_runtime::ArtifactKind::{PythonSnapshotWasm, PythonStdlibZip};
    let mut hash = Sha256::new();
    // The build sees a run's WASI view, so the image depends on its environment and mounts too.
    let view = store::GUEST_ENV
        .iter()
        .flat_map(|(name, value)| [*name, *value])
        .chain(store::READ_ONLY_GUEST_DIRS);
    for part in [
        RECIPE,
        WASMTIME_VERSION,
        &installed.artifact(PythonSnapshotWasm).sha256,
        &installed.artifact(PythonStdlibZip).sha256,
        &ks_guest_runtime::RuntimeLock::pinned().mpl_data().sha256,
        ks_guest_runtime::PREWARM_IMPORTS_TXT,
        ks_guest_runtime::PREWARM_BUILD_PY,
        ks_guest_runtime::PREWARM_AUDIT_PY,
        ks_guest_runtime::HARNESS_PY,
    ]
    .into_iter()
    .chain(view)
    {
        hash.update(part.len().to_le_bytes());
        hash.update(part.as_bytes());
    }
    format!("prewarmed-{}", &hex::encode(hash.finalize())[..40])
}

/// Loads the cached pre-warmed module, building it first if needed. The error says why there is
/// no image; it is also recorded in the home for `runtime status`.
fn load_or_build(
    engine: &Engine,
    home: &RuntimeHome,
    installed: &InstalledRuntime,
    read_only: &ReadOnlyMounts,
    if_missing: IfMissing,
    report: &(dyn Fn(PrewarmStep) + Sync),
) -> Result<Module, PrewarmError> {
    let key = cache_key(installed);
    let cache = home.compile_cache();
    let earlier = PrewarmRecord::read(home.root()).filter(|r| r.key == key);
    if cache.get(&key).is_none()
        && if_missing == IfMissing::BuildUnlessFailed
        && let Some(r) = &earlier
        && r.state == PrewarmState::Failed
    {
        return Err(PrewarmError::EarlierFailure {
            detail: r.detail.clone(),
        });
    }
    let record = |state, detail: String, initial_memory_bytes| {
        let record = PrewarmRecord {
            key: key.clone(),
            state,
            detail,
            initial_memory_bytes,
        };
        if let Err(error) = record.write(home.root()) {
            tracing::warn!(%error, "could not record the pre-warm build in the home");
        }
    };
    let result = (|| {
        let mut summary = None;
        let raw = cache
            .get_or_create(&key, |target| {
                report(PrewarmStep::Start);
                let (bytes, audit) = build::build(engine, &cache, installed, read_only, report)?;
                summary = Some(audit);
                fs::write(target, bytes).map_err(|source| PrewarmError::Io {
                    context: format!("writing {}", target.display()),
                    source,
                })
            })
            .map_err(|error| match error {
                ks_guest_runtime::CacheError::Create { source, .. } => source,
                other => PrewarmError::Cache(other.to_string()),
            })?;
        let read = || fs::read(&raw).map_err(|e| format!("reading {}: {e}", raw.display()));
        let module =
            engine::load_compiled(engine, &cache, &key["prewarmed-".len()..], &read, &|| {
                report(PrewarmStep::Compiling);
            })
            .map_err(|e| PrewarmError::Cache(e.to_string()))?;
        Ok::<_, PrewarmError>((module, summary))
    })();
    match result {
        Ok((module, summary)) => {
            let pages = store::initial_pages(&module);
            if let Some(summary) = summary {
                record(PrewarmState::Built, summary.clone(), Some(pages << 16));
                report(PrewarmStep::Ready { summary });
            } else if earlier
                .as_ref()
                .is_none_or(|r| r.state != PrewarmState::Built)
            {
                record(PrewarmState::Built, "cached".into(), Some(pages << 16));
            }
            Ok(module)
        }
        Err(error) => {
            let reason = error.to_string();
            record(PrewarmState::Failed, reason.clone(), None);
            report(PrewarmStep::Failed { reason });
            Err(error)
        }
    }
}
