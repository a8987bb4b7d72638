//! The store primitives every instance of the guest is made from: the store's data (the WASI
//! context and the memory accounting), the linker, the WASI view of a run's mounts, and the
//! module's initial memory.
//!
//! A run, the harness compile and the pre-warm build all instantiate the guest; keeping what
//! they share here, below all three, means none of them imports another for it.

use std::path::Path;

use wasmtime::{InstancePre, Linker, ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use super::output::CappedOutput;
use crate::sandbox::{SandboxError, SandboxRequest};

/// argv[0] as the guest's own host sets it.
const ARGV0: &str = "/usr/local/bin/python.wasm";
/// Where the stdlib zip is mounted; the interpreter looks for `python315.zip` there.
pub(crate) const STDLIB_GUEST_DIR: &str = "/usr/local/lib";
/// Bytes in a wasm page.
pub(crate) const WASM_PAGE: u64 = 64 << 10;

/// The store's data: the guest's WASI context and its memory accounting.
pub(crate) struct GuestState {
    wasi: WasiP1Ctx,
    pub(crate) memory: MemoryCap,
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
pub(crate) struct MemoryCap {
    cap: usize,
    /// The largest size a grow reached.
    pub(crate) peak: usize,
    /// Whether a grow was refused.
    pub(crate) denied: bool,
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

/// The initial size in pages of the module's exported memory.
pub(crate) fn initial_pages(pre: &InstancePre<GuestState>) -> u64 {
    match pre.module().get_export("memory") {
        Some(wasmtime::ExternType::Memory(memory)) => memory.minimum(),
        _ => 0,
    }
}
