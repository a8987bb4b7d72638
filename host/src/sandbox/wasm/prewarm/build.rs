//! Building the image: the runtime's snapshot instrumented with Wizer's split API, instantiated
//! with exactly a run's WASI view, the import list run, and memory and the stack pointer
//! snapshotted into a new module; a second build with other entropy, and the audit of both.

use std::ffi::CString;
use std::fs;

use ks_guest_runtime::{CompileCache, InstalledRuntime};
use sha2::{Digest, Sha256};
use wasmtime::{Engine, Instance, InstancePre, Store, Val};
use wasmtime_wizer::{InstanceState, ModuleContext, SnapshotVal, ValType, Wizer};

use super::error::{PrewarmError, WasmStep};
use super::image::{Image, STACK_POINTER};
use super::step::PrewarmStep;
use super::{audit, edit};
use crate::sandbox::wasm::engine;
use crate::sandbox::wasm::output::CappedOutput;
use crate::sandbox::wasm::store::{self, GuestState, ReadOnlyMounts};
use crate::sandbox::{RunLimits, SandboxRequest};

/// The temporary exports of the build, removed from the image.
const TEMP_PREFIX: &str = "ks.";
/// The exports the image must end with: the runtime's own reactor interface.
const FINAL_EXPORTS: [&str; 5] = ["memory", "run", "turn", "shutdown", "host_alloc"];
/// Bytes of the guest's stderr kept in an error.
const STDERR_TAIL_BYTES: usize = 3_000;

/// Builds, audits and returns the pre-warmed module's bytes and the audit's summary.
pub(super) fn build(
    engine: &Engine,
    cache: &CompileCache,
    installed: &InstalledRuntime,
    read_only: &ReadOnlyMounts,
    report: &(dyn Fn(PrewarmStep) + Sync),
) -> Result<(Vec<u8>, String), PrewarmError> {
    let snapshot = installed.python_snapshot_wasm();
    let base = fs::read(snapshot).map_err(|source| PrewarmError::Io {
        context: format!("reading {}", snapshot.display()),
        source,
    })?;
    let names = [
        "run_private",
        "__wasilibc_reset_preopens",
        "clear_unused_stack",
    ];
    let index = edit::function_indices(&base, &names).step("finding the build's functions")?;
    let exports: Vec<(String, u32)> = names
        .iter()
        .map(|n| (format!("{TEMP_PREFIX}{n}"), index[*n]))
        .collect();
    let exports: Vec<(&str, u32)> = exports.iter().map(|(n, i)| (n.as_str(), *i)).collect();
    let with_exports =
        edit::add_function_exports(&base, &exports).step("exporting the build's functions")?;
    drop(base);
    let mut wizer = Wizer::new();
    // python.wasm's own pre-initialiser; absent from the snapshot, dropped from the image if there.
    wizer.init_func("wizer.initialize");
    let (cx, instrumented) = wizer
        .instrument(&with_exports)
        .step("instrumenting the runtime")?;
    let sha = hex::encode(Sha256::digest(&instrumented));
    let module = engine::load_compiled(engine, cache, &sha, &|| Ok(instrumented.clone()), &|| {
        report(PrewarmStep::CompilingInstrumented);
    })
    .map_err(|e| PrewarmError::Cache(e.to_string()))?;
    drop(instrumented);
    let pre = store::linker(engine)
        .and_then(|linker| linker.instantiate_pre(&module))
        .step("linking the instrumented runtime")?;
    let (image, summary) = std::thread::scope(|scope| {
        // A thread of its own, with its runtime made and dropped there: this may be called
        // from a blocking task of another runtime, or from inside one (a runtime dropped in
        // an async context panics).
        let job = scope.spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|source| PrewarmError::Io {
                    context: "starting the build's runtime".into(),
                    source,
                })?;
            runtime.block_on(async {
                report(PrewarmStep::Importing);
                let (image, a) = build_once(&pre, read_only, Some((&wizer, &cx))).await?;
                let (_, b) = build_once(&pre, read_only, None).await?;
                report(PrewarmStep::Auditing);
                let summary = audit::audit(&pre, read_only, &a, &b).await?;
                Ok::<_, PrewarmError>((image, summary))
            })
        });
        job.join()
            .map_err(|_| PrewarmError::Panicked("the build thread".into()))?
    })?;
    let image = image.ok_or_else(|| PrewarmError::Wasm {
        step: "snapshotting the instance",
        message: "no snapshot was taken".into(),
    })?;
    let image = edit::strip_exports(&image, |name| name.starts_with(TEMP_PREFIX))
        .step("removing the build's exports")?;
    let mut got = edit::export_names(&image).step("reading the image's exports")?;
    got.sort();
    let mut wanted = FINAL_EXPORTS.map(str::to_owned).to_vec();
    wanted.sort();
    if got != wanted {
        return Err(PrewarmError::Exports { got, wanted });
    }
    Ok((image, summary))
}

/// One instance of the instrumented module through the import step; its memory image, and the
/// snapshotted module when `snapshot` is given.
async fn build_once(
    pre: &InstancePre<GuestState>,
    read_only: &ReadOnlyMounts,
    snapshot: Option<(&Wizer, &ModuleContext<'_>)>,
) -> Result<(Option<Vec<u8>>, Image), PrewarmError> {
    let folder = |what: &str| {
        tempfile::tempdir().map_err(|source| PrewarmError::Io {
            context: format!("creating the build's {what}"),
            source,
        })
    };
    let (scratch, output) = (folder("/tmp")?, folder("/output")?);
    let (stdout, stderr) = (CappedOutput::new(1 << 20), CappedOutput::new(1 << 20));
    let limits = RunLimits {
        wall_time: std::time::Duration::from_secs(3600),
        memory_bytes: 8 << 30,
        fuel: u64::MAX,
        output_bytes: 1 << 20,
        disk_bytes: 1 << 30,
    };
    let request = SandboxRequest::new("", output.path(), limits);
    let wasi = store::wasi_context(&request, read_only, scratch.path(), &stdout, &stderr)
        .map_err(PrewarmError::Sandbox)?;
    let mut store = Store::new(pre.module().engine(), GuestState::new(wasi, usize::MAX));
    store::arm_unmetered(&mut store).step("arming the build's store")?;
    let instance = pre
        .instantiate_async(&mut store)
        .await
        .step("instantiating the instrumented runtime")?;
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
        PrewarmError::Imports {
            message: format!("{e:#}"),
            stderr_tail: crate::text::tail_bytes(&tail, STDERR_TAIL_BYTES).to_owned(),
        }
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
