//! The process's one wasmtime engine, its epoch clock, and loading the guest module from the
//! on-disk precompile cache.
//!
//! A precompiled module only fits the exact engine configuration it was compiled for, so the
//! configuration is fixed here (fuel metering and epoch interruption always on) and every run,
//! test and benchmark on a machine shares one compile of the ~100 MB module.

use std::hash::Hasher;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use ks_guest_runtime::{CacheError, CompileCache};
use sha2::{Digest, Sha256};
use wasmtime::{Config, Engine, Module, OptLevel};

use crate::sandbox::SandboxError;

/// How often the epoch advances; it bounds how late a deadline or a cancel is noticed.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The shared engine, created on first use. Its epoch thread lives as long as the process.
pub(crate) fn engine() -> Result<&'static Engine, SandboxError> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let engine = Engine::new(&config()).map_err(|e| format!("{e:#}"))?;
            start_epoch_clock(&engine);
            Ok(engine)
        })
        .as_ref()
        .map_err(|message| SandboxError::Engine {
            context: "creating the wasmtime engine",
            message: message.clone(),
        })
}

fn config() -> Config {
    let mut config = Config::new();
    // CPython-for-WASI is built with the exception-handling proposal.
    config.wasm_exceptions(true);
    config.consume_fuel(true);
    config.epoch_interruption(true);
    config.cranelift_opt_level(OptLevel::Speed);
    config.parallel_compilation(true);
    config
}

fn start_epoch_clock(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("ks-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        });
    if let Err(error) = spawned {
        // Without the clock a busy guest is stopped only by fuel and the host-side timeout.
        tracing::error!(%error, "could not start the epoch thread");
    }
}

/// The cache key of a module compiled by `engine`: wasmtime's own compatibility hash (which
/// covers its version, target and every setting that changes code) plus the module's hash.
pub(crate) fn compile_key(engine: &Engine, module_sha256: &str) -> String {
    struct Sha(Sha256);
    impl Hasher for Sha {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut hasher = Sha(Sha256::new());
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
    let engine_digest = hex::encode(hasher.0.finalize());
    let module = module_sha256.get(..16).unwrap_or(module_sha256);
    format!("module-{module}-engine-{}", &engine_digest[..16])
}

/// Loads `wasm` compiled for `engine`, compiling it into `cache` the first time on this machine.
pub(crate) fn load_module(
    engine: &Engine,
    cache: &CompileCache,
    wasm: &Path,
    module_sha256: &str,
    on_compile: &dyn Fn(),
) -> Result<Module, SandboxError> {
    let read = || std::fs::read(wasm).map_err(|e| format!("reading {}: {e}", wasm.display()));
    load_compiled(engine, cache, module_sha256, &read, on_compile)
}

/// Loads the module whose bytes `read` produces (only called when it must be compiled), cached
/// under `module_sha256`, which must identify those bytes.
pub(crate) fn load_compiled(
    engine: &Engine,
    cache: &CompileCache,
    module_sha256: &str,
    read: &dyn Fn() -> Result<Vec<u8>, String>,
    on_compile: &dyn Fn(),
) -> Result<Module, SandboxError> {
    let key = compile_key(engine, module_sha256);
    let compile = |target: &Path| -> Result<(), String> {
        on_compile();
        let bytes = read()?;
        let compiled = engine
            .precompile_module(&bytes)
            .map_err(|e| format!("compiling module {module_sha256}: {e:#}"))?;
        std::fs::write(target, compiled).map_err(|e| format!("writing {}: {e}", target.display()))
    };
    let path = cache
        .get_or_create(&key, compile)
        .map_err(|e| SandboxError::Engine {
            context: "precompiling the guest module",
            message: cache_message(e),
        })?;
    match deserialize(engine, &path) {
        Ok(module) => Ok(module),
        Err(first) => {
            // A cache entry from a crash or another build: drop it and compile once more.
            tracing::warn!(path = %path.display(), error = %first, "discarding an unusable precompiled module");
            let _ = std::fs::remove_file(&path);
            let path = cache
                .get_or_create(&key, compile)
                .map_err(|e| SandboxError::Engine {
                    context: "precompiling the guest module",
                    message: cache_message(e),
                })?;
            deserialize(engine, &path).map_err(|message| SandboxError::Engine {
                context: "loading the precompiled guest module",
                message,
            })
        }
    }
}

/// The cache's words, and the compiler's when compiling failed (the original lost them).
pub(crate) fn cache_message(error: CacheError<String>) -> String {
    match error {
        CacheError::Create { key, source } => format!("creating cache entry {key}: {source}"),
        other => other.to_string(),
    }
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> Result<Module, String> {
    // SAFETY: the file was produced by `Engine::precompile_module` of an engine with the same
    // compatibility hash (it is part of the file name), written to a temporary name and renamed
    // into the user's own cache, so it is a complete wasmtime artifact; wasmtime still checks
    // its header and engine fingerprint before use.
    unsafe { Module::deserialize_file(engine, path) }.map_err(|e| format!("{e:#}"))
}
