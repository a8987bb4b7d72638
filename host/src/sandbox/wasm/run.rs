//! One run of the guest: a fresh store with its caps armed, the WASI view of the three mounts,
//! the script handed to the interpreter's `turn` export, and the ending mapped to an
//! [`Outcome`].

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use wasmtime::{InstancePre, Linker, ResourceLimiter, Store, Trap, UpdateDeadline};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

use super::output::CappedOutput;
use super::prewarm::Image;
use crate::sandbox::outcome::{GuestError, LimitHit, Outcome};
use crate::sandbox::{Backend, SandboxError, SandboxRequest};

/// argv[0] as the guest's own host sets it.
const ARGV0: &str = "/usr/local/bin/python.wasm";
/// Where the stdlib zip is mounted; the interpreter looks for `python315.zip` there.
pub(crate) const STDLIB_GUEST_DIR: &str = "/usr/local/lib";
/// How long after the deadline the host stops waiting for a guest blocked in a host call.
const HOST_GRACE: Duration = Duration::from_millis(50);

/// The store's data: the guest's WASI context and its memory accounting.
pub(crate) struct GuestState {
    wasi: WasiP1Ctx,
    memory: MemoryCap,
}

impl GuestState {
    /// A store's data: `wasi` and a memory cap of `memory_cap` bytes.
    pub(crate) fn new(wasi: WasiP1Ctx, memory_cap: usize) -> Self {
        Self {
            wasi,
            memory: MemoryCap {
                cap: memory_cap,
                peak: 0,
                denied: false,
            },
        }
    }

    /// The projection wasmtime-wasi's host functions use.
    pub(crate) fn wasi(&mut self) -> &mut WasiP1Ctx {
        &mut self.wasi
    }
}

/// Caps linear memory and remembers the peak and whether a grow was refused.
#[derive(Debug)]
struct MemoryCap {
    cap: usize,
    peak: usize,
    denied: bool,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.cap {
            self.denied = true;
            return Ok(false);
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}

/// The guest's WASI view of a run: argv, the fixed environment and the mounts. The pre-warm
/// build uses it too, so that nothing the imports read from it differs from a run's.
pub(crate) fn wasi_context(
    request: &SandboxRequest,
    stdlib_dir: &Path,
    scratch: &Path,
    stdout: &CappedOutput,
    stderr: &CappedOutput,
) -> Result<WasiP1Ctx, SandboxError> {
    let mut builder = WasiCtxBuilder::new();
    builder
        .arg(ARGV0)
        // Only these: nothing from the host's environment reaches the guest.
        .env("HOME", "/tmp")
        .env("TMPDIR", "/tmp")
        .env("PYTHONTZPATH", "")
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    let mut mount = |host: &Path, guest: &str, perms: FsPerms| {
        builder
            .preopened_dir(host, guest, perms)
            .map(|_| ())
            .map_err(|e| SandboxError::Io {
                context: format!("mounting {} at {guest}", host.display()),
                source: std::io::Error::other(format!("{e:#}")),
            })
    };
    mount(stdlib_dir, STDLIB_GUEST_DIR, FsPerms::ReadOnly)?;
    mount(scratch, "/tmp", FsPerms::ReadWrite)?;
    mount(&request.output, "/output", FsPerms::ReadWrite)?;
    if let Some(input) = &request.input {
        mount(input, "/input", FsPerms::ReadOnly)?;
    }
    Ok(builder.build_p1())
}

/// The linker every instance of the guest uses: WASI preview 1 and the `host.call` import.
pub(crate) fn linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<GuestState>> {
    let mut linker: Linker<GuestState> = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_async(&mut linker, GuestState::wasi)?;
    // The guest's door to a host program; this host offers none, which the ABI spells -1.
    linker.func_wrap("host", "call", |_: i32, _: i32, _: i32, _: i32| -> i32 {
        -1
    })?;
    Ok(linker)
}

/// Arms a store for trusted host work (the pre-warm build): unlimited fuel and memory, and an
/// epoch deadline that only yields.
pub(crate) fn arm_unmetered(store: &mut Store<GuestState>) -> wasmtime::Result<()> {
    store.limiter(|state| &mut state.memory);
    store.set_fuel(u64::MAX)?;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Yield(1)));
    Ok(())
}

/// How the guest call ended, before it is turned into an [`Outcome`].
enum Ending {
    Returned(i32),
    Failed(wasmtime::Error),
    HostTimeout,
    Cancelled,
}

/// Runs `request` in a fresh instance of `pre`'s module with `harness` (the harness's source, or
/// a loader of its precompiled code); `restore`, when given, overwrites the instance's memory
/// and stack pointer with an image first (the pre-warm audit's runs).
pub(crate) async fn run(
    pre: &InstancePre<GuestState>,
    stdlib_dir: &Path,
    request: SandboxRequest,
    harness: &str,
    restore: Option<&Image>,
) -> Result<Outcome, SandboxError> {
    let limits = request.limits;
    let source = crate::sandbox::guest_program_with(&request, harness)?;
    let code_len = i32::try_from(source.len())
        .map_err(|_| SandboxError::InvalidRequest("the script is larger than 2 GiB".into()))?;
    let scratch = tempfile::Builder::new()
        .prefix("ks-guest-tmp-")
        .tempdir()
        .map_err(|e| SandboxError::io("creating the run's /tmp", e))?;
    let stdout = CappedOutput::new(limits.output_bytes);
    let stderr = CappedOutput::new(limits.output_bytes);
    let wasi = wasi_context(&request, stdlib_dir, scratch.path(), &stdout, &stderr)?;

    let engine = pre.module().engine();
    let memory_cap = usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX);
    let mut store = Store::new(engine, GuestState::new(wasi, memory_cap));
    store.limiter(|state| &mut state.memory);
    store
        .set_fuel(limits.fuel)
        .map_err(|e| engine_error("arming the fuel cap", &e))?;

    let started = Instant::now();
    let deadline = started + limits.wall_time;
    let deadline_passed = Arc::new(AtomicBool::new(false));
    let cancel = request.cancel.clone();
    {
        let deadline_passed = deadline_passed.clone();
        let cancel = cancel.clone();
        store.set_epoch_deadline(1);
        // Checked every epoch tick; yielding lets the host's timeout and cancel be polled too.
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                deadline_passed.store(true, Ordering::Relaxed);
                return Ok(UpdateDeadline::Interrupt);
            }
            if cancel.is_cancelled() {
                return Ok(UpdateDeadline::Interrupt);
            }
            Ok(UpdateDeadline::Yield(1))
        });
    }

    let instance = match pre.instantiate_async(&mut store).await {
        Ok(instance) => instance,
        Err(e) if store.data().memory.denied => {
            let pages = initial_pages(pre);
            return Err(SandboxError::InvalidRequest(format!(
                "the memory cap ({} bytes) is below what the guest module needs to start, its \
                 initial memory of {} bytes ({pages} pages of 64 KiB): raise `limits.memory` to \
                 at least {} MiB{}: {e}",
                limits.memory_bytes,
                pages * WASM_PAGE,
                (pages * WASM_PAGE).div_ceil(1 << 20),
                if pages > 1000 {
                    " or choose `[sandbox] guest = \"plain\"`"
                } else {
                    ""
                },
            )));
        }
        Err(e) => return Err(engine_error("instantiating the guest", &e)),
    };

    let call = async {
        if let Some(image) = restore {
            image.restore(&mut store, &instance)?;
        }
        let host_alloc = instance.get_typed_func::<i32, i32>(&mut store, "host_alloc")?;
        let turn = instance.get_typed_func::<(i32, i32), i32>(&mut store, "turn")?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| wasmtime::format_err!("the guest exports no memory"))?;
        let ptr = host_alloc.call_async(&mut store, code_len).await?;
        if ptr == 0 {
            wasmtime::bail!("the guest could not allocate {code_len} bytes for the script");
        }
        // The guest's pointer is an unsigned 32-bit address.
        memory.write(&mut store, ptr as u32 as usize, source.as_bytes())?;
        turn.call_async(&mut store, (ptr, code_len)).await
    };
    let ending = tokio::select! {
        result = tokio::time::timeout(limits.wall_time + HOST_GRACE, call) => match result {
            Ok(Ok(status)) => Ending::Returned(status),
            Ok(Err(error)) => Ending::Failed(error),
            Err(_) => Ending::HostTimeout,
        },
        () = cancel.cancelled() => Ending::Cancelled,
    };
    let wall = started.elapsed();
    let state = store.data();
    let (memory_peak, memory_denied) = (state.memory.peak, state.memory.denied);

    let mut outcome = Outcome {
        backend: Backend::Wasm,
        exit_code: None,
        limit: None,
        fuel_used: None,
        peak_memory_bytes: Some(memory_peak as u64),
        wall_ms: u64::try_from(wall.as_millis()).unwrap_or(u64::MAX),
        stdout: String::new(),
        stderr: String::new(),
        stdout_truncated: false,
        stderr_truncated: false,
        error: None,
        trap: None,
        cancelled: false,
    };
    // The fuel counter is exact only when the guest stopped by itself or ran out of fuel.
    let fuel_used = || limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
    match ending {
        Ending::Returned(status) => {
            outcome.exit_code = Some(status & 0xFF);
            outcome.fuel_used = Some(fuel_used());
        }
        Ending::HostTimeout => {
            outcome.limit = Some(LimitHit::WallTime);
            outcome.trap = Some("stopped by the host at the wall-time deadline".into());
        }
        Ending::Cancelled => {
            outcome.cancelled = true;
            outcome.trap = Some("cancelled".into());
        }
        Ending::Failed(error) => {
            if let Some(exit) = error.downcast_ref::<I32Exit>() {
                outcome.exit_code = Some(exit.0);
                outcome.fuel_used = Some(fuel_used());
            } else {
                match error.downcast_ref::<Trap>() {
                    Some(Trap::OutOfFuel) => {
                        outcome.limit = Some(LimitHit::Fuel);
                        outcome.fuel_used = Some(limits.fuel);
                    }
                    Some(Trap::Interrupt) if deadline_passed.load(Ordering::Relaxed) => {
                        outcome.limit = Some(LimitHit::WallTime);
                    }
                    Some(Trap::Interrupt) if cancel.is_cancelled() => outcome.cancelled = true,
                    _ => {}
                }
                outcome.trap = Some(first_line(&format!("{error:#}")));
            }
        }
    }
    if outcome.limit.is_none() && memory_denied && outcome.exit_code != Some(0) {
        outcome.limit = Some(LimitHit::Memory);
    }
    drop(store);

    let (stdout_tail, stdout_truncated) = stdout.finish();
    let (stderr_tail, stderr_truncated) = stderr.finish();
    outcome.error = GuestError::from_stderr(&stderr_tail);
    (outcome.stdout, outcome.stdout_truncated) = (stdout_tail, stdout_truncated);
    (outcome.stderr, outcome.stderr_truncated) = (stderr_tail, stderr_truncated);
    let output_size = super::super::output_size(&request.output)?;
    if outcome.limit.is_none()
        && (stdout_truncated || stderr_truncated || output_size > limits.output_bytes)
    {
        outcome.limit = Some(LimitHit::Output);
    }
    Ok(outcome)
}

/// Bytes in a wasm page.
const WASM_PAGE: u64 = 64 << 10;

/// The initial size in pages of the module's exported memory.
fn initial_pages(pre: &InstancePre<GuestState>) -> u64 {
    match pre.module().get_export("memory") {
        Some(wasmtime::ExternType::Memory(memory)) => memory.minimum(),
        _ => 0,
    }
}

fn engine_error(context: &'static str, error: &wasmtime::Error) -> SandboxError {
    SandboxError::Engine {
        context,
        message: format!("{error:#}"),
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_owned()
}
