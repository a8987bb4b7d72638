//! The store primitives every instance of the guest is made from: the store's data (the WASI
//! context and the memory accounting), the linker, the WASI view of a run's mounts, and the
//! module's initial memory.
//!
//! A run, the harness compile and the pre-warm build all instantiate the guest; keeping what
//! they share here, below all three, means none of them imports another for it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasmtime::AsContextMut;
use wasmtime::{Caller, Engine, Linker, Memory, ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::p1::wasi_snapshot_preview1::WasiSnapshotPreview1 as _;
use wasmtime_wasi::p1::{self, WasiP1Ctx};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use super::disk::{DiskCapExceeded, DiskQuota};
use super::output::CappedOutput;
use crate::sandbox::{SandboxError, SandboxRequest};

/// argv[0] as the guest's own host sets it.
const ARGV0: &str = "/usr/local/bin/python.wasm";
/// Where the stdlib zip is mounted; the interpreter looks for `python315.zip` there.
pub(crate) const STDLIB_GUEST_DIR: &str = "/usr/local/lib";
/// Where matplotlib's data is mounted: `mpl-data` beside matplotlib's package inside the
/// mounted zip, the folder matplotlib reads its `matplotlibrc`, fonts and styles from. wasi-libc
/// resolves a path by its longest preopened prefix, so this mount wins inside the zip's path.
pub(crate) const MPL_DATA_GUEST_DIR: &str = "/usr/local/lib/python315.zip/matplotlib/mpl-data";
/// matplotlib's configuration and font cache: under the run's own `/tmp`, made on first use.
const MPL_CONFIG_DIR: &str = "/tmp/matplotlib";
/// The guest's whole environment: nothing from the host's reaches it. No display: figures
/// render to files (`Agg`), and matplotlib never probes for a GUI.
pub(crate) const GUEST_ENV: [(&str, &str); 5] = [
    ("HOME", "/tmp"),
    ("TMPDIR", "/tmp"),
    ("PYTHONTZPATH", ""),
    ("MPLBACKEND", "Agg"),
    ("MPLCONFIGDIR", MPL_CONFIG_DIR),
];
/// Where the read-only mounts appear in the guest, in mount order.
pub(crate) const READ_ONLY_GUEST_DIRS: [&str; 2] = [STDLIB_GUEST_DIR, MPL_DATA_GUEST_DIR];
/// Bytes in a wasm page.
pub(crate) const WASM_PAGE: u64 = 64 << 10;

/// The host folders every instance of the guest mounts read-only, run or pre-warm build alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReadOnlyMounts {
    /// The folder holding the stdlib zip, mounted at [`STDLIB_GUEST_DIR`].
    pub(crate) stdlib_dir: PathBuf,
    /// matplotlib's unpacked data, mounted at [`MPL_DATA_GUEST_DIR`].
    pub(crate) mpl_data: PathBuf,
}

/// The store's data: the guest's WASI context and its memory accounting.
pub(crate) struct GuestState {
    wasi: WasiP1Ctx,
    pub(crate) memory: MemoryCap,
    /// The run's disk budget; `None` for trusted host work (the pre-warm build).
    pub(crate) disk: Option<Arc<DiskQuota>>,
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
            disk: None,
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
    read_only: &ReadOnlyMounts,
    scratch: &Path,
    stdout: &CappedOutput,
    stderr: &CappedOutput,
) -> Result<WasiP1Ctx, SandboxError> {
    let mut builder = WasiCtxBuilder::new();
    builder
        .arg(ARGV0)
        .envs(&GUEST_ENV)
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
    let [stdlib_guest, mpl_data_guest] = READ_ONLY_GUEST_DIRS;
    mount(&read_only.stdlib_dir, stdlib_guest, FsPerms::ReadOnly)?;
    mount(&read_only.mpl_data, mpl_data_guest, FsPerms::ReadOnly)?;
    mount(scratch, "/tmp", FsPerms::ReadWrite)?;
    mount(&request.output, "/output", FsPerms::ReadWrite)?;
    if let Some(input) = &request.input {
        mount(input, "/input", FsPerms::ReadOnly)?;
    }
    Ok(builder.build_p1())
}

/// Defines preview-1's `$name` (`fd, iovs, len` and then `$extra`) as wasmtime-wasi's own
/// function of that name, called exactly as its linker calls it, once the write is charged.
macro_rules! counted_write {
    ($linker:expr, $name:ident, ($($extra:ident: $ty:ty),*)) => {
        $linker.func_wrap_async(
            WASI,
            stringify!($name),
            |mut caller: Caller<'_, GuestState>,
             (fd, iovs, len, $($extra,)*): (i32, i32, i32, $($ty,)*)| {
                Box::new(async move {
                    charge(&mut caller, fd, iovs, len)?;
                    let (memory, fuel) = guest_memory(&mut caller)?;
                    let (bytes, state) = memory.data_and_store_mut(&mut caller);
                    state.wasi.set_hostcall_fuel(fuel);
                    let mut memory = wiggle::GuestMemory::Unshared(bytes);
                    p1::wasi_snapshot_preview1::$name(
                        &mut state.wasi,
                        &mut memory,
                        fd,
                        iovs,
                        len,
                        $($extra),*
                    )
                    .await
                })
            },
        )
    };
}

const WASI: &str = "wasi_snapshot_preview1";

/// The linker every instance of the guest uses: WASI preview 1, with the two functions that
/// write to files counted against the run's disk budget first (they then call wasmtime-wasi's
/// own implementation, exactly as its linker would), and the `host.call` import.
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<GuestState>> {
    let mut linker: Linker<GuestState> = Linker::new(engine);
    p1::add_to_linker_async(&mut linker, GuestState::wasi)?;
    linker.allow_shadowing(true);
    counted_write!(linker, fd_write, (written: i32))?;
    counted_write!(linker, fd_pwrite, (offset: i64, written: i32))?;
    linker.allow_shadowing(false);
    // The guest's door to a host program; this host offers none, which the ABI spells -1.
    linker.func_wrap("host", "call", |_: i32, _: i32, _: i32, _: i32| -> i32 {
        -1
    })?;
    Ok(linker)
}

/// The guest's memory, and the store's budget for how much a host call may copy out of it
/// (which wasmtime-wasi's own linker hands to every call, as this must too).
fn guest_memory(caller: &mut Caller<'_, GuestState>) -> wasmtime::Result<(Memory, usize)> {
    let fuel = caller.as_context_mut().hostcall_fuel();
    match caller.get_export("memory") {
        Some(wasmtime::Extern::Memory(memory)) => Ok((memory, fuel)),
        _ => wasmtime::bail!("missing required memory export"),
    }
}

/// Charges a write of the iovecs at `iovs` (`len` of them) to file descriptor `fd`; an error
/// (which ends the run as `disk`) when it would pass the budget. stdout and stderr are capped
/// in memory by the output cap instead, and a malformed iovec list is left for wasmtime-wasi
/// to refuse.
fn charge(
    caller: &mut Caller<'_, GuestState>,
    fd: i32,
    iovs: i32,
    len: i32,
) -> wasmtime::Result<()> {
    let Some(quota) = caller.data().disk.clone() else {
        return Ok(());
    };
    if (0..=2).contains(&fd) {
        return Ok(());
    }
    let Some(wasmtime::Extern::Memory(memory)) = caller.get_export("memory") else {
        return Ok(());
    };
    // Guest pointers and counts are unsigned 32-bit values.
    let (start, count) = (iovs as u32 as usize, len as u32 as usize);
    let Some(list) = count
        .checked_mul(8)
        .and_then(|size| memory.data(&*caller).get(start..start.checked_add(size)?))
    else {
        return Ok(());
    };
    let bytes: u64 = list
        .chunks_exact(8)
        .map(|iovec| u64::from(u32::from_le_bytes([iovec[4], iovec[5], iovec[6], iovec[7]])))
        .sum();
    if quota.charge(bytes) {
        Ok(())
    } else {
        Err(DiskCapExceeded { cap: quota.cap() }.into())
    }
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
pub(crate) fn initial_pages(module: &wasmtime::Module) -> u64 {
    match module.get_export("memory") {
        Some(wasmtime::ExternType::Memory(memory)) => memory.minimum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use ks_guest_runtime::{ArtifactKind, MPL_DATA_GUEST_SUFFIX};

    use super::*;

    #[test]
    fn matplotlib_data_is_mounted_beside_matplotlib_in_the_mounted_zip() {
        let zip = ArtifactKind::PythonStdlibZip.install_path();
        let zip_name = zip.rsplit('/').next().unwrap_or(zip);
        assert_eq!(
            MPL_DATA_GUEST_DIR,
            format!("{STDLIB_GUEST_DIR}/{zip_name}/{MPL_DATA_GUEST_SUFFIX}")
        );
        assert!(MPL_CONFIG_DIR.starts_with("/tmp/"));
    }
}
