//! One run's request, and the hardened container it becomes: no network, read-only
//! root, a `noexec` tmpfs at `/tmp` sized to the disk cap, every capability dropped, no privilege gain, a
//! non-root user, pids/memory/cpu caps with swap equal to memory, low ulimits, an init process,
//! and labels naming the owner and the job.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigLogConfig, Mount, MountType, ResourcesUlimits,
};

use crate::owner::{JOB_LABEL, Owner};

/// Where the program is mounted inside the container (read-only).
pub const PROGRAM_DIR: &str = "/ks";
/// The program's file name under [`PROGRAM_DIR`].
pub const PROGRAM_FILE: &str = "main.py";
/// The uid and gid the script runs as when the host runs as root: `nobody`.
pub const NOBODY: u32 = 65534;

/// One run of a Python program in a container.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// The image to run, e.g. `kaggle-solver/native:0.1.0-bookworm`.
    pub image: String,
    /// The whole Python program (harness included) run as `/ks/main.py`.
    pub program: String,
    /// Host folder mounted read-only at `/input`; it must be readable by the container user.
    pub input: Option<PathBuf>,
    /// Host folder mounted writable at `/output`; it must exist.
    pub output: PathBuf,
    /// Wall-clock time from start to kill.
    pub wall_time: Duration,
    /// Memory cap in bytes; swap is capped to the same figure (so no swap at all).
    pub memory_bytes: u64,
    /// Cap on each of stdout and stderr, and on the size of `/output`, in bytes.
    pub output_bytes: u64,
    /// Cap on what `/tmp` and `/output` hold together, in bytes.
    pub disk_bytes: u64,
    /// CPU quota, fractions allowed.
    pub cpus: f64,
    /// Process and thread cap.
    pub pids: u32,
    /// The job this run belongs to, set as a label.
    pub job: Option<String>,
}

/// The container user: `nobody` when the host runs as root, else the host's own uid (which
/// owns `/output` and is unprivileged already).
pub(crate) fn container_user(host_uid: u32, host_gid: u32) -> (u32, u32) {
    if host_uid == 0 {
        (NOBODY, NOBODY)
    } else {
        (host_uid, host_gid)
    }
}

/// The create request for `spec`, with the program's folder at `program_dir`.
pub(crate) fn container_body(
    spec: &RunSpec,
    owner: &Owner,
    program_dir: &Path,
    user: (u32, u32),
) -> ContainerCreateBody {
    let memory = i64::try_from(spec.memory_bytes).unwrap_or(i64::MAX);
    let threads = spec.cpus.ceil().max(1.0).to_string();
    let mut labels = owner.labels();
    if let Some(job) = &spec.job {
        labels.insert(JOB_LABEL.to_owned(), job.clone());
    }
    // Docker takes only absolute sources; a folder given relative to this process (`sandbox run
    // --input data`) is the folder the user meant. Only an unreadable working folder leaves it
    // relative, and Docker then names the path it refused.
    let bind = |source: &Path, target: &str, read_only: bool| Mount {
        target: Some(target.to_owned()),
        source: Some(
            std::path::absolute(source)
                .unwrap_or_else(|_| source.to_path_buf())
                .display()
                .to_string(),
        ),
        typ: Some(MountType::BIND),
        read_only: Some(read_only),
        ..Default::default()
    };
    let mut mounts = vec![
        bind(program_dir, PROGRAM_DIR, true),
        bind(&spec.output, "/output", false),
    ];
    if let Some(input) = &spec.input {
        mounts.push(bind(input, "/input", true));
    }
    let ulimit = |name: &str, value: i64| ResourcesUlimits {
        name: Some(name.to_owned()),
        soft: Some(value),
        hard: Some(value),
    };
    let host_config = HostConfig {
        network_mode: Some("none".to_owned()),
        readonly_rootfs: Some(true),
        tmpfs: Some(HashMap::from([(
            "/tmp".to_owned(),
            format!(
                "rw,noexec,nosuid,nodev,size={}",
                spec.disk_bytes.saturating_add(crate::scratch::SLACK)
            ),
        )])),
        mounts: Some(mounts),
        cap_drop: Some(vec!["ALL".to_owned()]),
        security_opt: Some(vec!["no-new-privileges".to_owned()]),
        pids_limit: Some(i64::from(spec.pids)),
        memory: Some(memory),
        memory_swap: Some(memory),
        // The quota is a fraction of one CPU in billionths, as `--cpus` sets it.
        nano_cpus: Some((spec.cpus * 1e9) as i64),
        ulimits: Some(vec![ulimit("nofile", 1024), ulimit("core", 0)]),
        init: Some(true),
        ipc_mode: Some("private".to_owned()),
        // Output is read through the attach stream; nothing is logged to the host's disk.
        log_config: Some(HostConfigLogConfig {
            typ: Some("none".to_owned()),
            config: None,
        }),
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        user: Some(format!("{}:{}", user.0, user.1)),
        cmd: Some(vec![
            "python3".to_owned(),
            // Isolated (no user site, no PYTHON* from the image), no bytecode on a read-only root.
            "-I".to_owned(),
            "-B".to_owned(),
            format!("{PROGRAM_DIR}/{PROGRAM_FILE}"),
        ]),
        entrypoint: Some(Vec::new()),
        // Only these: nothing from the host's environment reaches the script.
        env: Some(vec![
            "HOME=/tmp".to_owned(),
            "TMPDIR=/tmp".to_owned(),
            "MPLCONFIGDIR=/tmp".to_owned(),
            format!("OMP_NUM_THREADS={threads}"),
            format!("OPENBLAS_NUM_THREADS={threads}"),
            "PATH=/usr/local/bin:/usr/bin:/bin".to_owned(),
        ]),
        working_dir: Some("/tmp".to_owned()),
        network_disabled: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        labels: Some(labels),
        host_config: Some(host_config),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> RunSpec {
        RunSpec {
            image: "kaggle-solver/native:test".to_owned(),
            program: "print(1)".to_owned(),
            input: Some(PathBuf::from("/data/in")),
            output: PathBuf::from("/data/out"),
            wall_time: Duration::from_secs(60),
            memory_bytes: 512 << 20,
            output_bytes: 1 << 20,
            // The tmpfs is sized to the disk cap plus the slack: 512 MiB here too.
            disk_bytes: (512 << 20) - crate::scratch::SLACK,
            cpus: 1.5,
            pids: 64,
            job: Some("job-1".to_owned()),
        }
    }

    #[test]
    fn every_hardening_flag_is_set() {
        let owner = Owner::current().expect("linux");
        let body = container_body(&spec(), &owner, Path::new("/tmp/prog"), (NOBODY, NOBODY));
        let host = body.host_config.as_ref().expect("host config");
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        assert_eq!(body.network_disabled, Some(true));
        assert_eq!(host.readonly_rootfs, Some(true));
        assert_eq!(host.cap_drop.as_deref(), Some(&["ALL".to_owned()][..]));
        assert_eq!(
            host.security_opt.as_deref(),
            Some(&["no-new-privileges".to_owned()][..])
        );
        assert_eq!(host.pids_limit, Some(64));
        assert_eq!(host.memory, Some(512 << 20));
        assert_eq!(
            host.memory_swap, host.memory,
            "no swap beyond the memory cap"
        );
        assert_eq!(host.nano_cpus, Some(1_500_000_000));
        assert_eq!(host.init, Some(true));
        let tmp = &host.tmpfs.as_ref().expect("tmpfs")["/tmp"];
        assert!(tmp.contains("noexec") && tmp.contains(&format!("size={}", 512 << 20)));
        assert_eq!(body.user.as_deref(), Some("65534:65534"));
        let labels = body.labels.as_ref().expect("labels");
        assert_eq!(labels[JOB_LABEL], "job-1");
        assert_eq!(labels[crate::owner::OWNER_LABEL], owner.to_string());
        let mounts = host.mounts.as_ref().expect("mounts");
        let target = |t: &str| {
            mounts
                .iter()
                .find(|m| m.target.as_deref() == Some(t))
                .expect("mounted")
        };
        assert_eq!(target("/input").read_only, Some(true));
        assert_eq!(target(PROGRAM_DIR).read_only, Some(true));
        assert_eq!(target("/output").read_only, Some(false));
        assert!(
            body.env
                .as_ref()
                .expect("env")
                .iter()
                .all(|v| !v.contains("KEY") && !v.contains("TOKEN")),
            "no secrets"
        );
    }

    #[test]
    fn folders_given_relative_to_this_process_are_mounted_by_their_absolute_path() {
        let owner = Owner::current().expect("linux");
        let spec = RunSpec {
            input: Some(PathBuf::from("data/in")),
            output: PathBuf::from("out"),
            ..spec()
        };
        let body = container_body(&spec, &owner, Path::new("/tmp/prog"), (NOBODY, NOBODY));
        let here = std::env::current_dir().expect("a working folder");
        let mounts = body.host_config.and_then(|h| h.mounts).expect("mounts");
        let source = |t: &str| {
            mounts
                .iter()
                .find(|m| m.target.as_deref() == Some(t))
                .and_then(|m| m.source.clone())
                .expect("mounted")
        };
        assert_eq!(source("/input"), here.join("data/in").display().to_string());
        assert_eq!(source("/output"), here.join("out").display().to_string());
        assert_eq!(source(PROGRAM_DIR), "/tmp/prog");
    }

    #[test]
    fn root_hosts_run_scripts_as_nobody_others_as_themselves() {
        assert_eq!(container_user(0, 0), (NOBODY, NOBODY));
        assert_eq!(container_user(1000, 100), (1000, 100));
    }
}
