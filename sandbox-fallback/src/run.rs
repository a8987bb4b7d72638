//! One run, start to finish: stage the program, create the container, attach to its output,
//! start it, wait for its exit, the deadline, the output cap or a cancel (killing it for the last
//! three), read its final state, and remove it whatever happened.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, KillContainerOptionsBuilder, RemoveContainerOptionsBuilder,
};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::error::is_not_found;
use crate::spec::{PROGRAM_FILE, container_body, container_user};
use crate::{DockerError, DockerRunner, RunSpec, Tail, output};

/// How often `/output` (a walk of the folder) and `/tmp` (one small file read from the
/// container's cgroup) are measured against the caps while the script runs.
const POLL: Duration = Duration::from_millis(20);
/// How long to wait for a killed container to be reported gone.
const KILL_GRACE: Duration = Duration::from_secs(20);

/// Why the host stopped a container before the script ended by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The wall-clock deadline passed.
    WallTime,
    /// `/output` grew past the output cap.
    Output,
    /// `/tmp` and `/output` together grew past the disk cap, or `/output` could not be
    /// measured.
    Disk,
    /// The caller cancelled the run.
    Cancelled,
}

/// What a container run produced.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The container's id (it has been removed).
    pub container_id: String,
    /// The script's exit status; `None` when the host stopped it.
    pub exit_code: Option<i32>,
    /// Why the host stopped it, if it did.
    pub stopped: Option<Stop>,
    /// Whether the kernel killed a process for going past the memory cap.
    pub oom_killed: bool,
    /// The tail of stdout.
    pub stdout: Tail,
    /// The tail of stderr.
    pub stderr: Tail,
    /// Bytes of regular files in `/output` at the end.
    pub output_bytes: u64,
    /// Symlinks and special files the script left in `/output`, deleted unread.
    pub removed_links: Vec<String>,
    /// The most the container's `/tmp` was seen to hold.
    pub tmp_bytes_seen: u64,
    /// From start to exit.
    pub wall: Duration,
}

#[derive(Debug, Default)]
struct Streams {
    stdout: Tail,
    stderr: Tail,
}

impl DockerRunner {
    /// Runs `spec` to its end, a cap, or `cancel`.
    ///
    /// # Errors
    /// Only when the host could not run it: no daemon, no image, an unusable folder.
    pub async fn run(
        &self,
        spec: &RunSpec,
        cancel: &CancellationToken,
    ) -> Result<RunReport, DockerError> {
        let staged = stage_program(&spec.program)?;
        let user = prepare_output(&spec.output)?;
        if let Some(input) = &spec.input {
            check_input(input, user)?;
        }
        let body = container_body(spec, &self.owner, staged.path(), user);
        let created = self
            .docker
            .create_container(None, body)
            .await
            .map_err(|e| {
                if is_not_found(&e) {
                    DockerError::ImageMissing {
                        image: spec.image.clone(),
                    }
                } else {
                    DockerError::api("creating the sandbox container")(e)
                }
            })?;
        let id = created.id;
        let result = self.drive(&id, spec, cancel).await;
        // Removed whatever happened; a failure here is logged and left to the reaper.
        let remove = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        if let Err(e) = self.docker.remove_container(&id, Some(remove)).await
            && !is_not_found(&e)
        {
            tracing::warn!(container = %id, error = %e, "could not remove a sandbox container");
        }
        let mut report = result?;
        let out = spec.output.clone();
        let (removed, bytes) = tokio::task::spawn_blocking(move || {
            let removed = output::remove_links(&out)?;
            Ok::<_, std::io::Error>((removed, output::regular_file_bytes(&out)?))
        })
        .await
        .map_err(|e| DockerError::Invalid(format!("collecting /output panicked: {e}")))?
        .map_err(|e| DockerError::io(format!("collecting {}", spec.output.display()), e))?;
        report.removed_links = removed.iter().map(|p| p.display().to_string()).collect();
        report.output_bytes = bytes;
        Ok(report)
    }

    async fn drive(
        &self,
        id: &str,
        spec: &RunSpec,
        cancel: &CancellationToken,
    ) -> Result<RunReport, DockerError> {
        let cap = usize::try_from(spec.output_bytes).unwrap_or(usize::MAX);
        let streams = Arc::new(Mutex::new(Streams {
            stdout: Tail::new(cap),
            stderr: Tail::new(cap),
        }));
        // Attached before the start, so not a byte of output is missed.
        let attach = AttachContainerOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .stream(true)
            .build();
        let attached = self
            .docker
            .attach_container(id, Some(attach))
            .await
            .map_err(DockerError::api("attaching to the sandbox container"))?;
        let reader = tokio::spawn(read_output(attached.output, Arc::clone(&streams)));

        self.docker
            .start_container(id, None)
            .await
            .map_err(DockerError::api("starting the sandbox container"))?;
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + spec.wall_time;
        let mut wait = self.docker.wait_container(id, None);
        let mut poll = tokio::time::interval(POLL);
        let stat = crate::scratch::stat_file(id);
        if stat.is_none() {
            tracing::warn!(
                container = id,
                "the container's cgroup is not readable: a /tmp flood meets the tmpfs size but \
                 is not named `disk`"
            );
        }
        let mut tmp_seen = 0u64;
        let stopped = loop {
            tokio::select! {
                waited = wait.next() => match waited {
                    Some(Ok(_)) | Some(Err(bollard::errors::Error::DockerContainerWaitError { .. })) => break None,
                    Some(Err(e)) => return Err(DockerError::api("waiting for the sandbox container")(e)),
                    None => return Err(DockerError::Invalid("the wait stream ended without a status".to_owned())),
                },
                () = tokio::time::sleep_until(deadline) => break Some(Stop::WallTime),
                () = cancel.cancelled() => break Some(Stop::Cancelled),
                _ = poll.tick() => {
                    // A container gone between ticks reads as empty: its exit comes next.
                    let tmp = stat.as_deref().and_then(crate::scratch::tmpfs_bytes).unwrap_or(0);
                    tmp_seen = tmp_seen.max(tmp);
                    let out = spec.output.clone();
                    // A folder that cannot be measured (or holds too many entries) cannot be held
                    // to the disk cap: stop the run.
                    let Some(size) = tokio::task::spawn_blocking(move || output::regular_file_bytes(&out))
                        .await
                        .ok()
                        .and_then(Result::ok)
                    else {
                        break Some(Stop::Disk);
                    };
                    // Both caps passed: the disk is what the flood threatened.
                    if tmp.saturating_add(size) > spec.disk_bytes {
                        break Some(Stop::Disk);
                    }
                    if size > spec.output_bytes {
                        break Some(Stop::Output);
                    }
                }
            }
        };
        let mut wall = started.elapsed();
        if stopped.is_some() {
            self.kill(id).await?;
            // The exit itself is reported by the wait stream; bounded in case the daemon stalls.
            let _ = tokio::time::timeout(KILL_GRACE, wait.next()).await;
            wall = started.elapsed();
        }
        // The attach stream ends when the container's stdio closes.
        let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
        let state = self
            .docker
            .inspect_container(id, None)
            .await
            .map_err(DockerError::api("inspecting the sandbox container"))?
            .state
            .unwrap_or_default();
        let Streams { stdout, stderr } = std::mem::take(
            &mut *streams
                .lock()
                .map_err(|_| DockerError::Invalid("the output reader panicked".to_owned()))?,
        );
        Ok(RunReport {
            container_id: id.to_owned(),
            exit_code: match stopped {
                None => state.exit_code.and_then(|c| i32::try_from(c).ok()),
                Some(_) => None,
            },
            stopped,
            oom_killed: state.oom_killed.unwrap_or(false),
            stdout,
            stderr,
            output_bytes: 0,
            removed_links: Vec::new(),
            tmp_bytes_seen: tmp_seen,
            wall,
        })
    }

    async fn kill(&self, id: &str) -> Result<(), DockerError> {
        let kill = KillContainerOptionsBuilder::default()
            .signal("KILL")
            .build();
        match self.docker.kill_container(id, Some(kill)).await {
            Ok(()) => Ok(()),
            // 404: gone; 409: not running any more. Either way it is stopped.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404 | 409,
                ..
            }) => Ok(()),
            Err(e) => Err(DockerError::api("killing the sandbox container")(e)),
        }
    }
}

async fn read_output(
    mut output: std::pin::Pin<
        Box<dyn futures_util::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>,
    >,
    streams: Arc<Mutex<Streams>>,
) {
    while let Some(Ok(chunk)) = output.next().await {
        let Ok(mut streams) = streams.lock() else {
            return;
        };
        match chunk {
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                streams.stdout.push(&message);
            }
            LogOutput::StdErr { message } => streams.stderr.push(&message),
            LogOutput::StdIn { .. } => {}
        }
    }
}

/// Writes the program to a fresh folder the container user can read.
fn stage_program(program: &str) -> Result<tempfile::TempDir, DockerError> {
    let dir = tempfile::Builder::new()
        .prefix("ks-docker-")
        .tempdir()
        .map_err(|e| DockerError::io("creating a folder for the program", e))?;
    let file = dir.path().join(PROGRAM_FILE);
    std::fs::write(&file, program)
        .map_err(|e| DockerError::io(format!("writing {}", file.display()), e))?;
    for (path, mode) in [(dir.path(), 0o755), (file.as_path(), 0o644)] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| {
            DockerError::io(format!("opening {} to the sandbox", path.display()), e)
        })?;
    }
    Ok(dir)
}

/// Makes `/output` writable by the container user and returns that user.
fn prepare_output(output: &Path) -> Result<(u32, u32), DockerError> {
    let meta = std::fs::metadata(output)
        .map_err(|e| DockerError::io(format!("the output folder {}", output.display()), e))?;
    if !meta.is_dir() {
        return Err(DockerError::Invalid(format!(
            "the output folder {} is not a folder",
            output.display()
        )));
    }
    let me =
        std::fs::metadata("/proc/self").map_err(|e| DockerError::io("reading /proc/self", e))?;
    let user = container_user(me.uid(), me.gid());
    if (meta.uid(), meta.gid()) != user {
        std::os::unix::fs::chown(output, Some(user.0), Some(user.1)).map_err(|e| {
            DockerError::io(
                format!("handing {} to the sandbox user", output.display()),
                e,
            )
        })?;
    }
    Ok(user)
}

/// Fails early, and clearly, when the container user could not read `/input`.
fn check_input(input: &Path, user: (u32, u32)) -> Result<(), DockerError> {
    let meta = std::fs::metadata(input)
        .map_err(|e| DockerError::io(format!("the input folder {}", input.display()), e))?;
    let mode = meta.mode();
    let readable = if meta.uid() == user.0 {
        mode & 0o500 == 0o500
    } else if meta.gid() == user.1 {
        mode & 0o050 == 0o050
    } else {
        mode & 0o005 == 0o005
    };
    if !meta.is_dir() || !readable {
        return Err(DockerError::Invalid(format!(
            "the input folder {} must be a folder that uid {} can read and enter (mode {:o}); \
             e.g. chmod o+rx it",
            input.display(),
            user.0,
            mode & 0o777
        )));
    }
    Ok(())
}
