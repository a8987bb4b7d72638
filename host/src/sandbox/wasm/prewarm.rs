//! The pre-warmed guest (issue 6): an image of the interpreter with numpy, pandas, scipy and
//! scikit-learn already imported, built once per machine the way Wizer pre-initialises modules.
//!
//! Every run of the plain snapshot spends about 3 s (13.5 G fuel) importing the scientific stack.
//! The build does it once: it exports the interpreter's internal `run_private` (found through the
//! `name` section), instruments the runtime's `python-snapshot.wasm` with Wizer's split API,
//! instantiates it with exactly a run's WASI view (argv, environment, stdlib mount), runs the
//! import list from `guest-runtime/prewarm/`, drops libc's preopen table, clears the unused stack
//! and snapshots memory and the stack pointer into a new module. The module is cached
//! (raw and precompiled) under a key covering the runtime, the stdlib zip, the import list and
//! build Python, and the wasmtime version; builders in other processes wait on the cache's lock.
//!
//! **What the image freezes, and why that is safe.** Everything the imports computed is shared
//! by all runs. Per-run state is renewed: `turn` reads the run's own argv and environment on its
//! first call (the build never calls `turn`), reseeds `random` and `numpy.random`'s global
//! generators, and resets `logging`'s start time; `/tmp`, `/input` and `/output` are the run's
//! own preopens, re-read because the build reset libc's preopen table. The RNG objects created
//! during the imports (scikit-learn's default `RandomState` of the HistGradientBoosting splitter
//! and default `Generator` of its tree grower among them) are recorded at build time and reseeded
//! from the run's entropy by the harness's prelude; `multiprocessing`'s authkey is renewed too.
//! The build audits this before accepting an image ([`super::audit`]): two images built with
//! different entropy are restored, A twice and B once, and any RNG state equal in A's two runs
//! but different in B's refuses the image. Frozen and harmless: the string hash seed (fixed, as
//! in the shipped snapshot), values libraries derived from the fixed environment at import time,
//! and timestamps taken at build time (`time.monotonic()` restarts near zero in each run).
//! The image's initial memory (~109 MiB) is the smallest memory cap it runs under.

use std::ffi::CString;
use std::fs;
use std::path::Path;

use ks_guest_runtime::{CompileCache, InstalledRuntime, PrewarmRecord, PrewarmState};
use sha2::{Digest, Sha256};
use wasmtime::{Engine, Instance, InstancePre, Module, Store, Val};
use wasmtime_wizer::{InstanceState, ModuleContext, SnapshotVal, ValType, Wizer};

use super::output::CappedOutput;
use super::run::{self, GuestState};
use super::{PrewarmStep, edit, engine};
use crate::sandbox::{RunLimits, SandboxRequest};

/// The wasmtime (and wasmtime-wizer) release the image is built with; pinned in Cargo.toml.
const WASMTIME_VERSION: &str = "48.0.8";
/// Bump when the build steps change in a way that changes the image.
const RECIPE: &str = "prewarm-1";
/// The temporary exports of the build, removed from the image.
const TEMP_PREFIX: &str = "ks.";
/// The exports the image must end with: the runtime's own reactor interface.
const FINAL_EXPORTS: [&str; 5] = ["memory", "run", "turn", "shutdown", "host_alloc"];
/// Wizer's export of the only mutable global, `__stack_pointer` (global 0).
const STACK_POINTER: &str = "__wizer_global_0";

/// A memory image and stack pointer taken from a built instance, to restore into another.
pub(crate) struct Image {
    memory: Vec<u8>,
    stack_pointer: i32,
}

impl Image {
    /// Makes `instance` (of the instrumented module) look like the instance the image came from:
    /// the one memory and the one mutable global are all the state the module has.
    pub(crate) fn restore(
        &self,
        store: &mut Store<GuestState>,
        instance: &Instance,
    ) -> wasmtime::Result<()> {
        let memory = instance
            .get_memory(&mut *store, "memory")
            .ok_or_else(|| wasmtime::format_err!("the guest exports no memory"))?;
        let have = memory.data_size(&*store);
        if self.memory.len() > have {
            memory.grow(
                &mut *store,
                ((self.memory.len() - have) as u64).div_ceil(1 << 16),
            )?;
        }
        memory.data_mut(&mut *store)[..self.memory.len()].copy_from_slice(&self.memory);
        instance
            .get_global(&mut *store, STACK_POINTER)
            .ok_or_else(|| wasmtime::format_err!("the module exports no {STACK_POINTER}"))?
            .set(&mut *store, Val::I32(self.stack_pointer))
    }
}

/// The image's cache key: everything the built bytes depend on.
pub(crate) fn cache_key(installed: &InstalledRuntime) -> String {
    use ks_guest_runtime::ArtifactKind::{PythonSnapshotWasm, PythonStdlibZip};
    let mut hash = Sha256::new();
    for part in [
        RECIPE,
        WASMTIME_VERSION,
        &installed.artifact(PythonSnapshotWasm).sha256,
        &installed.artifact(PythonStdlibZip).sha256,
        ks_guest_runtime::PREWARM_IMPORTS_TXT,
        ks_guest_runtime::PREWARM_BUILD_PY,
        ks_guest_runtime::PREWARM_AUDIT_PY,
        ks_guest_runtime::HARNESS_PY,
    ] {
        hash.update(part.len().to_le_bytes());
        hash.update(part.as_bytes());
    }
    format!("prewarmed-{}", &hex::encode(hash.finalize())[..40])
}

/// Whether to build when no image is cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IfMissing {
    /// Build it, even if an earlier build of this key failed.
    Build,
    /// Build it unless an earlier build of this key failed (the reason is returned instead).
    BuildUnlessFailed,
}

/// Loads the cached pre-warmed module, building it first if needed. The error says why there is
/// no image; it is also recorded in the home for `runtime status`.
pub(crate) fn load_or_build(
    engine: &Engine,
    home: &ks_guest_runtime::RuntimeHome,
    installed: &InstalledRuntime,
    stdlib_dir: &Path,
    if_missing: IfMissing,
    report: &(dyn Fn(PrewarmStep) + Sync),
) -> Result<Module, String> {
    let key = cache_key(installed);
    let cache = home.compile_cache();
    let earlier = PrewarmRecord::read(home.root()).filter(|r| r.key == key);
    if cache.get(&key).is_none()
        && if_missing == IfMissing::BuildUnlessFailed
        && let Some(r) = &earlier
        && r.state == PrewarmState::Failed
    {
        return Err(format!(
            "an earlier build failed ({}); `kaggle-solver runtime install` tries again",
            r.detail
        ));
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
            .get_or_create(&key, |target| -> Result<(), String> {
                report(PrewarmStep::Start);
                let (bytes, audit) = build(engine, &cache, installed, stdlib_dir, report)
                    .map_err(|e| format!("{e:#}"))?;
                summary = Some(audit);
                fs::write(target, bytes).map_err(|e| format!("writing {}: {e}", target.display()))
            })
            .map_err(engine::cache_message)?;
        let read = || fs::read(&raw).map_err(|e| format!("reading {}: {e}", raw.display()));
        let module =
            engine::load_compiled(engine, &cache, &key["prewarmed-".len()..], &read, &|| {
                report(PrewarmStep::Compiling);
            })
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((module, summary))
    })();
    match result {
        Ok((module, summary)) => {
            let pages = module_memory_pages(&module);
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
        Err(reason) => {
            record(PrewarmState::Failed, reason.clone(), None);
            report(PrewarmStep::Failed {
                reason: reason.clone(),
            });
            Err(reason)
        }
    }
}

fn module_memory_pages(module: &Module) -> u64 {
    match module.get_export("memory") {
        Some(wasmtime::ExternType::Memory(memory)) => memory.minimum(),
        _ => 0,
    }
}

/// Builds, audits and returns the pre-warmed module's bytes and the audit's summary.
fn build(
    engine: &Engine,
    cache: &CompileCache,
    installed: &InstalledRuntime,
    stdlib_dir: &Path,
    report: &(dyn Fn(PrewarmStep) + Sync),
) -> wasmtime::Result<(Vec<u8>, String)> {
    let base = fs::read(installed.python_snapshot_wasm())?;
    let names = [
        "run_private",
        "__wasilibc_reset_preopens",
        "clear_unused_stack",
    ];
    let index = edit::function_indices(&base, &names)?;
    let exports: Vec<(String, u32)> = names
        .iter()
        .map(|n| (format!("{TEMP_PREFIX}{n}"), index[*n]))
        .collect();
    let exports: Vec<(&str, u32)> = exports.iter().map(|(n, i)| (n.as_str(), *i)).collect();
    let with_exports = edit::add_function_exports(&base, &exports)?;
    drop(base);
    let mut wizer = Wizer::new();
    // python.wasm's own pre-initialiser; absent from the snapshot, dropped from the image if there.
    wizer.init_func("wizer.initialize");
    let (cx, instrumented) = wizer.instrument(&with_exports)?;
    let sha = hex::encode(Sha256::digest(&instrumented));
    let module = engine::load_compiled(engine, cache, &sha, &|| Ok(instrumented.clone()), &|| {
        report(PrewarmStep::CompilingInstrumented);
    })
    .map_err(|e| wasmtime::format_err!("{e}"))?;
    drop(instrumented);
    let pre = run::linker(engine)?.instantiate_pre(&module)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (image, summary) = std::thread::scope(|scope| {
        // A thread of its own: this may be called from a blocking task of another runtime.
        let job = scope.spawn(|| {
            runtime.block_on(async {
                report(PrewarmStep::Importing);
                let (image, a) = build_once(&pre, stdlib_dir, Some((&wizer, &cx))).await?;
                let (_, b) = build_once(&pre, stdlib_dir, None).await?;
                report(PrewarmStep::Auditing);
                let summary = super::audit::audit(&pre, stdlib_dir, &a, &b).await?;
                Ok::<_, wasmtime::Error>((image, summary))
            })
        });
        job.join()
            .map_err(|_| wasmtime::format_err!("the pre-warm build thread panicked"))?
    })?;
    let image = image.ok_or_else(|| wasmtime::format_err!("no snapshot was taken"))?;
    let image = edit::strip_exports(&image, |name| name.starts_with(TEMP_PREFIX))?;
    let mut exports = edit::export_names(&image)?;
    exports.sort();
    let mut wanted = FINAL_EXPORTS.map(str::to_owned).to_vec();
    wanted.sort();
    wasmtime::ensure!(
        exports == wanted,
        "the image exports {exports:?}, not {wanted:?}"
    );
    Ok((image, summary))
}

/// One instance of the instrumented module through the import step; its memory image, and the
/// snapshotted module when `snapshot` is given.
async fn build_once(
    pre: &InstancePre<GuestState>,
    stdlib_dir: &Path,
    snapshot: Option<(&Wizer, &ModuleContext<'_>)>,
) -> wasmtime::Result<(Option<Vec<u8>>, Image)> {
    let scratch = tempfile::tempdir()?;
    let output = tempfile::tempdir()?;
    let (stdout, stderr) = (CappedOutput::new(1 << 20), CappedOutput::new(1 << 20));
    let limits = RunLimits {
        wall_time: std::time::Duration::from_secs(3600),
        memory_bytes: 8 << 30,
        fuel: u64::MAX,
        output_bytes: 1 << 20,
    };
    let request = SandboxRequest::new("", output.path(), limits);
    let wasi = run::wasi_context(&request, stdlib_dir, scratch.path(), &stdout, &stderr)
        .map_err(|e| wasmtime::format_err!("{e}"))?;
    let mut store = Store::new(pre.module().engine(), GuestState::new(wasi, usize::MAX));
    run::arm_unmetered(&mut store)?;
    let instance = pre.instantiate_async(&mut store).await?;
    let steps = async {
        // Needed when building from python.wasm; python-snapshot.wasm exports neither.
        for name in ["_initialize", "wizer.initialize"] {
            if let Ok(init) = instance.get_typed_func::<(), ()>(&mut store, name) {
                init.call_async(&mut store, ()).await?;
            }
        }
        let source = CString::new(ks_guest_runtime::prewarm_build_source())?;
        let bytes = source.as_bytes_with_nul();
        let host_alloc = instance.get_typed_func::<i32, i32>(&mut store, "host_alloc")?;
        let ptr = host_alloc
            .call_async(&mut store, i32::try_from(bytes.len())?)
            .await?;
        wasmtime::ensure!(ptr != 0, "the guest could not allocate the build script");
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| wasmtime::format_err!("the guest exports no memory"))?;
        // The guest's pointer is an unsigned 32-bit address.
        memory.write(&mut store, ptr as u32 as usize, bytes)?;
        // A Python exception here prints its traceback and aborts, i.e. traps.
        let run_private = instance.get_typed_func::<i32, ()>(&mut store, "ks.run_private")?;
        run_private.call_async(&mut store, ptr).await?;
        for name in ["ks.__wasilibc_reset_preopens", "ks.clear_unused_stack"] {
            let step = instance.get_typed_func::<(), ()>(&mut store, name)?;
            step.call_async(&mut store, ()).await?;
        }
        let stack_pointer = match instance
            .get_global(&mut store, STACK_POINTER)
            .map(|g| g.get(&mut store))
        {
            Some(Val::I32(sp)) => sp,
            other => wasmtime::bail!("unexpected {STACK_POINTER}: {other:?}"),
        };
        let image = Image {
            memory: memory.data(&store).to_vec(),
            stack_pointer,
        };
        let module = match snapshot {
            Some((wizer, cx)) => Some(
                wizer
                    .snapshot(
                        cx,
                        &mut Snapshot {
                            store: &mut store,
                            instance,
                        },
                    )
                    .await?,
            ),
            None => None,
        };
        Ok((module, image))
    };
    steps.await.map_err(|e: wasmtime::Error| {
        let (tail, _) = stderr.finish();
        let tail = &tail[tail.len().saturating_sub(3000)..];
        wasmtime::format_err!("the import step failed: {e:#}\nguest stderr:\n{tail}")
    })
}

/// Wizer's view of our instance: its exported globals and memory.
struct Snapshot<'a> {
    store: &'a mut Store<GuestState>,
    instance: Instance,
}

impl std::fmt::Debug for Snapshot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Snapshot")
    }
}

impl InstanceState for Snapshot<'_> {
    async fn global_get(&mut self, name: &str, _type_hint: ValType) -> SnapshotVal {
        let value = self
            .instance
            .get_global(&mut *self.store, name)
            .map(|g| g.get(&mut *self.store));
        match value {
            Some(Val::I32(x)) => SnapshotVal::I32(x),
            Some(Val::I64(x)) => SnapshotVal::I64(x),
            Some(Val::F32(x)) => SnapshotVal::F32(x),
            Some(Val::F64(x)) => SnapshotVal::F64(x),
            Some(Val::V128(x)) => SnapshotVal::V128(x.as_u128()),
            // Wizer instruments every mutable global and rejects reference-typed ones.
            #[allow(clippy::panic)]
            other => panic!("Wizer asked for global {name}, which is {other:?}"),
        }
    }

    async fn memory_contents(&mut self, name: &str, contents: impl FnOnce(&[u8]) + Send) {
        match self.instance.get_memory(&mut *self.store, name) {
            Some(memory) => contents(memory.data(&*self.store)),
            #[allow(clippy::panic)]
            None => panic!("Wizer asked for memory {name}, which is not exported"),
        }
    }
}
