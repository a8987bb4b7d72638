//! One metered run of the guest: a fresh store with its caps armed, the WASI view of the three
//! mounts, the script handed to the interpreter's `turn` export, and the ending mapped to an
//! [`Outcome`].
//!
//! The mapping is a pure function of what the host saw ([`Ending`] and [`Observed`]), so every
//! way a run can end is unit-tested here without starting a guest.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use wasmtime::{Instance, InstancePre, Store, Trap, UpdateDeadline};
use wasmtime_wasi::I32Exit;

use super::disk::{self, DiskCapExceeded, DiskQuota};
use super::output::CappedOutput;
use super::store::{self, GuestState, ReadOnlyMounts, WASM_PAGE};
use crate::sandbox::outcome::{GuestError, LimitHit, Outcome};
use crate::sandbox::{Backend, RunLimits, SandboxError, SandboxRequest};

/// How long after the deadline the host stops waiting for a guest blocked in a host call.
const HOST_GRACE: Duration = Duration::from_millis(50);

/// Runs `request` in a fresh instance of `pre`'s module with `harness` (the harness's source,
/// or a loader of its precompiled code).
pub(crate) async fn run(
    pre: &InstancePre<GuestState>,
    read_only: &ReadOnlyMounts,
    request: SandboxRequest,
    harness: &str,
) -> Result<Outcome, SandboxError> {
    run_prepared(pre, read_only, request, harness, |_, _| Ok(())).await
}

/// [`run`], with `prepare` applied to the fresh instance before the script starts (the
/// pre-warm audit restores a memory image there).
pub(crate) async fn run_prepared(
    pre: &InstancePre<GuestState>,
    read_only: &ReadOnlyMounts,
    request: SandboxRequest,
    harness: &str,
    prepare: impl FnOnce(&mut Store<GuestState>, &Instance) -> wasmtime::Result<()> + Send,
) -> Result<Outcome, SandboxError> {
    let limits = request.limits;
    let source = crate::sandbox::guest_program_with(&request, harness)?;
    let code_len = i32::try_from(source.len())
        .map_err(|_| SandboxError::InvalidRequest("the script is larger than 2 GiB".into()))?;
    // Removed when dropped, so on every way out of this function.
    let mut scratch = tempfile::Builder::new();
    scratch.prefix("ks-guest-tmp-");
    let scratch = match &request.scratch {
        Some(parent) => scratch.tempdir_in(parent),
        None => scratch.tempdir(),
    }
    .map_err(|e| SandboxError::io("creating the run's /tmp", e))?;
    let stdout = CappedOutput::new(limits.output_bytes);
    let stderr = CappedOutput::new(limits.output_bytes);
    let wasi = store::wasi_context(&request, read_only, scratch.path(), &stdout, &stderr)?;

    let engine = pre.module().engine();
    let memory_cap = usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX);
    let mut state = GuestState::new(wasi, memory_cap);
    let quota = DiskQuota::new(limits.disk_bytes);
    state.disk = Some(quota.clone());
    let mut store = Store::new(engine, state);
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
        let (cancel, quota) = (cancel.clone(), quota.clone());
        store.set_epoch_deadline(1);
        // Checked every epoch tick; yielding lets the host's timeout and cancel be polled too.
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                deadline_passed.store(true, Ordering::Relaxed);
                return Ok(UpdateDeadline::Interrupt);
            }
            if cancel.is_cancelled() || quota.exceeded() {
                return Ok(UpdateDeadline::Interrupt);
            }
            Ok(UpdateDeadline::Yield(1))
        });
    }
    let mounts = vec![scratch.path().to_path_buf(), request.output.clone()];
    let watching = tokio_util::sync::CancellationToken::new();
    let watcher = tokio::spawn(tracing::Instrument::in_current_span(disk::watch(
        quota.clone(),
        mounts.clone(),
        watching.clone(),
    )));
    let _stop_watching = watching.clone().drop_guard();

    let instance = match pre.instantiate_async(&mut store).await {
        Ok(instance) => instance,
        Err(e) if store.data().memory.denied => {
            return Err(below_initial_memory(
                limits,
                store::initial_pages(pre.module()),
                &e,
            ));
        }
        Err(e) => return Err(engine_error("instantiating the guest", &e)),
    };

    let call = async {
        prepare(&mut store, &instance)?;
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
            Ok(Err(error)) => Ending::from_error(&error),
            Err(_) => Ending::HostTimeout,
        },
        () = cancel.cancelled() => Ending::Cancelled,
    };
    let wall = started.elapsed();
    let state = store.data();
    let (memory_peak, memory_denied) = (state.memory.peak, state.memory.denied);
    // The fuel counter is exact only when the guest stopped by itself or ran out of fuel;
    // `outcome` reads it only then.
    let fuel_left = store.get_fuel().unwrap_or(0);
    drop(store);
    watching.cancel();
    let _ = watcher.await;
    // The guest may have made links in /output (WASI accepts a relative target when the link
    // is made); they go, unread, before anything on the host looks at the folder.
    let removed = crate::sandbox::remove_special(&request.output)
        .map_err(|e| SandboxError::io(format!("cleaning {}", request.output.display()), e))?;
    if !removed.is_empty() {
        tracing::info!(
            count = removed.len(),
            "deleted links the guest left in /output"
        );
    }

    // What the mounts hold at the end decides too (a sparse file made just before exiting), and
    // the same walk sizes /output for the output cap. A folder that cannot be measured (too
    // many entries, say) counts as over every cap: the guest made it so, and it must not pass
    // for a host failure.
    let final_quota = quota.clone();
    let sizes = tokio::task::spawn_blocking(move || final_quota.measure(&mounts))
        .await
        .ok()
        .flatten();
    let output_bytes = sizes.and_then(|s| s.last().copied()).unwrap_or(u64::MAX);
    let observed = Observed {
        disk_exceeded: quota.exceeded(),
        limits,
        fuel_left,
        deadline_passed: deadline_passed.load(Ordering::Relaxed),
        cancel_requested: cancel.is_cancelled(),
        memory_peak: memory_peak as u64,
        memory_denied,
        wall,
        stdout: stdout.finish(),
        stderr: stderr.finish(),
        output_bytes,
        removed: crate::sandbox::inside(&request.output, &removed),
    };
    Ok(outcome(ending, observed))
}

/// How the guest call ended, as far as wasmtime tells.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ending {
    /// `turn` returned this status.
    Returned(i32),
    /// The guest called `exit` with this status.
    Exited(i32),
    /// A trap or a host error ended the call.
    Trapped {
        /// What kind, where it matters for the outcome.
        kind: TrapKind,
        /// The first line of the error, in wasmtime's words.
        text: String,
    },
    /// The host's own timeout fired: the guest was blocked in a host call past the deadline.
    HostTimeout,
    /// The caller cancelled while the call was running.
    Cancelled,
}

/// The traps that say which cap stopped a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TrapKind {
    OutOfFuel,
    Interrupt,
    Other,
}

impl Ending {
    fn from_error(error: &wasmtime::Error) -> Self {
        if let Some(exit) = error.downcast_ref::<I32Exit>() {
            return Self::Exited(exit.0);
        }
        if let Some(cap) = error.downcast_ref::<DiskCapExceeded>() {
            return Self::Trapped {
                kind: TrapKind::Other,
                text: cap.to_string(),
            };
        }
        let kind = match error.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => TrapKind::OutOfFuel,
            Some(Trap::Interrupt) => TrapKind::Interrupt,
            _ => TrapKind::Other,
        };
        let text = format!("{error:#}");
        Self::Trapped {
            kind,
            text: text.lines().next().unwrap_or_default().to_owned(),
        }
    }
}

/// What the host saw of a run besides how the call ended.
#[derive(Debug, Clone)]
struct Observed {
    limits: RunLimits,
    fuel_left: u64,
    deadline_passed: bool,
    cancel_requested: bool,
    memory_peak: u64,
    memory_denied: bool,
    wall: Duration,
    /// The kept tail and whether anything was dropped.
    stdout: (String, bool),
    stderr: (String, bool),
    /// Bytes of regular files in `/output` after the run.
    output_bytes: u64,
    /// What was deleted from `/output` after the run, as paths inside it.
    removed: Vec<String>,
    /// Whether `/tmp` and `/output` went past the disk cap.
    disk_exceeded: bool,
}

/// The outcome of a run that ended with `ending`, given what was `observed`.
fn outcome(ending: Ending, observed: Observed) -> Outcome {
    let limits = observed.limits;
    let fuel_used = || Some(limits.fuel.saturating_sub(observed.fuel_left));
    let mut outcome = Outcome {
        backend: Backend::Wasm,
        exit_code: None,
        limit: None,
        fuel_used: None,
        peak_memory_bytes: Some(observed.memory_peak),
        wall_ms: u64::try_from(observed.wall.as_millis()).unwrap_or(u64::MAX),
        stdout: String::new(),
        stderr: String::new(),
        stdout_truncated: false,
        stderr_truncated: false,
        error: None,
        trap: None,
        cancelled: false,
        removed_from_output: observed.removed,
    };
    match ending {
        Ending::Returned(status) => {
            outcome.exit_code = Some(status & 0xFF);
            outcome.fuel_used = fuel_used();
        }
        Ending::Exited(status) => {
            outcome.exit_code = Some(status);
            outcome.fuel_used = fuel_used();
        }
        Ending::HostTimeout => {
            outcome.limit = Some(LimitHit::WallTime);
            outcome.trap = Some("stopped by the host at the wall-time deadline".into());
        }
        Ending::Cancelled => {
            outcome.cancelled = true;
            outcome.trap = Some("cancelled".into());
        }
        Ending::Trapped { kind, text } => {
            outcome.trap = Some(text);
            match kind {
                TrapKind::OutOfFuel => {
                    outcome.limit = Some(LimitHit::Fuel);
                    outcome.fuel_used = Some(limits.fuel);
                }
                TrapKind::Interrupt if observed.deadline_passed => {
                    outcome.limit = Some(LimitHit::WallTime);
                }
                TrapKind::Interrupt if observed.cancel_requested => outcome.cancelled = true,
                // The measuring task found the mounts past the disk cap and interrupted.
                TrapKind::Interrupt if observed.disk_exceeded => {
                    outcome.limit = Some(LimitHit::Disk);
                    outcome.trap = Some(format!(
                        "stopped by the host: /tmp and /output passed the disk cap of {} bytes",
                        limits.disk_bytes
                    ));
                }
                TrapKind::Interrupt | TrapKind::Other => {}
            }
        }
    }
    // A refused grow surfaces as a MemoryError or an abort, whichever the guest hit first.
    if outcome.limit.is_none() && observed.memory_denied && outcome.exit_code != Some(0) {
        outcome.limit = Some(LimitHit::Memory);
    }
    let ((stdout, stdout_truncated), (stderr, stderr_truncated)) =
        (observed.stdout, observed.stderr);
    outcome.error = GuestError::from_stderr(&stderr);
    if outcome.limit.is_none()
        && (stdout_truncated || stderr_truncated || observed.output_bytes > limits.output_bytes)
    {
        outcome.limit = Some(LimitHit::Output);
    }
    // A flood of /output passes both caps; the disk is what it threatened. (A write refused
    // at the cap names it in its own trap.)
    if observed.disk_exceeded && matches!(outcome.limit, None | Some(LimitHit::Output)) {
        outcome.limit = Some(LimitHit::Disk);
    }
    (outcome.stdout, outcome.stdout_truncated) = (stdout, stdout_truncated);
    (outcome.stderr, outcome.stderr_truncated) = (stderr, stderr_truncated);
    outcome
}

/// The error for a memory cap below the module's initial memory, naming the minimum.
fn below_initial_memory(limits: RunLimits, pages: u64, error: &wasmtime::Error) -> SandboxError {
    SandboxError::InvalidRequest(format!(
        "the memory cap ({} bytes) is below what the guest module needs to start, its initial \
         memory of {} bytes ({pages} pages of 64 KiB): raise `limits.memory` to at least {} \
         MiB{}: {error}",
        limits.memory_bytes,
        pages * WASM_PAGE,
        (pages * WASM_PAGE).div_ceil(1 << 20),
        // Only the pre-warmed image is that large; the runtime's own snapshot is much smaller.
        if pages > 1000 {
            " or choose `[sandbox] guest = \"plain\"`"
        } else {
            ""
        },
    ))
}

fn engine_error(context: &'static str, error: &wasmtime::Error) -> SandboxError {
    SandboxError::Engine {
        context,
        message: format!("{error:#}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed() -> Observed {
        Observed {
            limits: RunLimits {
                wall_time: Duration::from_secs(10),
                memory_bytes: 1 << 30,
                fuel: 1_000,
                output_bytes: 100,
                disk_bytes: 1 << 30,
            },
            fuel_left: 400,
            deadline_passed: false,
            cancel_requested: false,
            memory_peak: 4096,
            memory_denied: false,
            wall: Duration::from_millis(1234),
            stdout: ("out\n".into(), false),
            stderr: (String::new(), false),
            output_bytes: 10,
            removed: Vec::new(),
            disk_exceeded: false,
        }
    }

    fn trapped(kind: TrapKind) -> Ending {
        Ending::Trapped {
            kind,
            text: "wasm trap".into(),
        }
    }

    #[test]
    fn a_returned_status_is_the_exit_code_and_fuel_is_counted() {
        let o = outcome(Ending::Returned(0x100 | 3), observed());
        assert_eq!(o.exit_code, Some(3));
        assert_eq!(o.fuel_used, Some(600));
        assert_eq!((o.limit, o.trap, o.cancelled), (None, None, false));
        assert_eq!((o.wall_ms, o.peak_memory_bytes), (1234, Some(4096)));
        assert_eq!(o.stdout, "out\n");
        assert!(outcome(Ending::Returned(0), observed()).succeeded());
        assert_eq!(outcome(Ending::Exited(2), observed()).exit_code, Some(2));
    }

    #[test]
    fn each_trap_names_its_cap() {
        let fuel = outcome(trapped(TrapKind::OutOfFuel), observed());
        assert_eq!(
            (fuel.limit, fuel.fuel_used),
            (Some(LimitHit::Fuel), Some(1_000))
        );
        assert_eq!(fuel.trap.as_deref(), Some("wasm trap"));

        let late = Observed {
            deadline_passed: true,
            ..observed()
        };
        let wall = outcome(trapped(TrapKind::Interrupt), late);
        assert_eq!(
            (wall.limit, wall.fuel_used),
            (Some(LimitHit::WallTime), None)
        );

        let cancelled = Observed {
            cancel_requested: true,
            ..observed()
        };
        let stop = outcome(trapped(TrapKind::Interrupt), cancelled);
        assert!(stop.cancelled && stop.limit.is_none());

        let other = outcome(trapped(TrapKind::Other), observed());
        assert_eq!((other.limit, other.exit_code), (None, None));
        assert!(!other.succeeded());
    }

    #[test]
    fn host_side_stops() {
        let timeout = outcome(Ending::HostTimeout, observed());
        assert_eq!(timeout.limit, Some(LimitHit::WallTime));
        let cancel = outcome(Ending::Cancelled, observed());
        assert!(cancel.cancelled && cancel.limit.is_none());
        assert_eq!(cancel.trap.as_deref(), Some("cancelled"));
    }

    #[test]
    fn a_refused_grow_is_memory_unless_the_script_still_succeeded() {
        let denied = Observed {
            memory_denied: true,
            ..observed()
        };
        let failed = outcome(Ending::Returned(1), denied.clone());
        assert_eq!(failed.limit, Some(LimitHit::Memory));
        // A script that caught its MemoryError and finished well broke no cap.
        assert_eq!(outcome(Ending::Returned(0), denied.clone()).limit, None);
        // Fuel that ran out first keeps its name.
        let fuel = outcome(trapped(TrapKind::OutOfFuel), denied);
        assert_eq!(fuel.limit, Some(LimitHit::Fuel));
    }

    #[test]
    fn output_past_the_cap_is_output() {
        let chatty = Observed {
            stderr: ("tail".into(), true),
            ..observed()
        };
        let o = outcome(Ending::Returned(0), chatty);
        assert_eq!(
            (o.limit, o.stderr_truncated),
            (Some(LimitHit::Output), true)
        );
        let big = Observed {
            output_bytes: 101,
            ..observed()
        };
        assert_eq!(
            outcome(Ending::Returned(0), big).limit,
            Some(LimitHit::Output)
        );
        let at_cap = Observed {
            output_bytes: 100,
            ..observed()
        };
        assert_eq!(outcome(Ending::Returned(0), at_cap).limit, None);
    }

    #[test]
    fn a_full_disk_is_disk_even_when_output_is_over_too() {
        let flooded = Observed {
            disk_exceeded: true,
            output_bytes: 1_000,
            ..observed()
        };
        let interrupted = Ending::Trapped {
            kind: TrapKind::Interrupt,
            text: "wasm trap: interrupt".into(),
        };
        let o = outcome(interrupted, flooded.clone());
        assert_eq!(o.limit, Some(LimitHit::Disk));
        assert!(
            o.trap.as_deref().is_some_and(|t| t.contains("disk cap")),
            "{:?}",
            o.trap
        );
        // A cap that stopped the run first keeps its name.
        let late = Observed {
            deadline_passed: true,
            ..flooded
        };
        assert_eq!(
            outcome(trapped(TrapKind::Interrupt), late).limit,
            Some(LimitHit::WallTime)
        );
    }

    #[test]
    fn the_harness_error_line_is_read_from_stderr() {
        let crashed = Observed {
            stderr: (
                "__KS_ERROR__ {\"type\":\"KeyError\",\"message\":\"'y'\",\"line\":7}\n".into(),
                false,
            ),
            ..observed()
        };
        let o = outcome(Ending::Returned(1), crashed);
        assert_eq!(
            o.error.map(|e| (e.kind, e.line)),
            Some(("KeyError".into(), Some(7)))
        );
    }
}
