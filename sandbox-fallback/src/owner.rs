//! Who owns a sandbox container, so that a crashed process's containers can be found and removed
//! without touching those of live workers sharing the daemon. The host marks its work folders
//! with the same [`Owner`], for the same reason.
//!
//! Every container carries [`SANDBOX_LABEL`] and an owner label `hostname/pid/start-time`. The
//! start time (from `/proc/<pid>/stat`) tells a live owner from a recycled pid. Containers owned
//! from another hostname (another machine, or another container sharing the socket) are left
//! alone: this host cannot tell whether their owner lives.

use std::collections::HashMap;

use bollard::query_parameters::{ListContainersOptionsBuilder, RemoveContainerOptionsBuilder};

use crate::error::{is_not_found, is_removal_in_progress};
use crate::{DockerError, DockerRunner};

/// Marks a container as a kaggle-solver sandbox.
pub const SANDBOX_LABEL: &str = "io.kaggle-solver.sandbox";
/// `hostname/pid/start-time` of the process that created the container.
pub const OWNER_LABEL: &str = "io.kaggle-solver.owner";
/// The owning process's pid alone, for filtering (`docker ps --filter label=…=<pid>`).
pub const OWNER_PID_LABEL: &str = "io.kaggle-solver.owner-pid";
/// The job the run belongs to, when there is one.
pub const JOB_LABEL: &str = "io.kaggle-solver.job";

/// A process that creates containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    hostname: String,
    pid: u32,
    start_time: u64,
}

impl Owner {
    /// This process.
    ///
    /// # Errors
    /// When `/proc` cannot be read (the Docker backend needs Linux).
    pub fn current() -> Result<Self, DockerError> {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map_err(|e| DockerError::io("reading /proc/sys/kernel/hostname", e))?
            .trim()
            .to_owned();
        let pid = std::process::id();
        let start_time = start_time(pid).ok_or_else(|| {
            DockerError::Invalid(format!("cannot read the start time of pid {pid} in /proc"))
        })?;
        Ok(Self {
            hostname,
            pid,
            start_time,
        })
    }

    /// The labels for a container this owner creates.
    pub fn labels(&self) -> HashMap<String, String> {
        HashMap::from([
            (SANDBOX_LABEL.to_owned(), "1".to_owned()),
            (OWNER_LABEL.to_owned(), self.to_string()),
            (OWNER_PID_LABEL.to_owned(), self.pid.to_string()),
        ])
    }

    /// Reads an owner back from its label (`hostname/pid/start-time`); `None` if malformed.
    pub fn parse(label: &str) -> Option<Self> {
        let mut parts = label.rsplitn(3, '/');
        let start_time = parts.next()?.parse().ok()?;
        let pid = parts.next()?.parse().ok()?;
        let hostname = parts.next()?.to_owned();
        Some(Self {
            hostname,
            pid,
            start_time,
        })
    }

    /// Whether this owner is known to be gone, as seen from the process `here`: same host, and
    /// its pid is dead or recycled. An owner on another host is never known to be gone.
    pub fn is_gone(&self, here: &Owner) -> bool {
        self.hostname == here.hostname && start_time(self.pid) != Some(self.start_time)
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.hostname, self.pid, self.start_time)
    }
}

/// Field 22 of `/proc/<pid>/stat`: when the process started, in clock ticks after boot.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses; fields after it do not.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

impl DockerRunner {
    /// Removes the sandbox containers whose owner process on this host is gone, running or
    /// not, and returns their ids. Run at startup, before the first sandbox.
    ///
    /// # Errors
    /// When the daemon cannot list or remove containers.
    pub async fn reap_orphans(&self) -> Result<Vec<String>, DockerError> {
        let filters = HashMap::from([("label", vec![SANDBOX_LABEL])]);
        let list = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let containers = self
            .docker
            .list_containers(Some(list))
            .await
            .map_err(DockerError::api("listing sandbox containers"))?;
        let mut reaped = Vec::new();
        for container in containers {
            let (Some(id), Some(labels)) = (container.id, container.labels) else {
                continue;
            };
            let orphaned = labels
                .get(OWNER_LABEL)
                .and_then(|l| Owner::parse(l))
                .is_some_and(|owner| owner.is_gone(&self.owner));
            if !orphaned {
                continue;
            }
            let remove = RemoveContainerOptionsBuilder::default()
                .force(true)
                .v(true)
                .build();
            match self.docker.remove_container(&id, Some(remove)).await {
                Ok(()) => {
                    tracing::warn!(container = %id, "removed an orphaned sandbox container");
                    reaped.push(id);
                }
                Err(e) if is_not_found(&e) || is_removal_in_progress(&e) => {}
                Err(e) => return Err(DockerError::api("removing an orphaned container")(e)),
            }
        }
        Ok(reaped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_dead_pid_is_gone() {
        let me = Owner::current().expect("linux");
        let parsed = Owner::parse(&me.to_string()).expect("round trip");
        assert_eq!(parsed, me);
        assert!(!me.is_gone(&me));
        let recycled = Owner {
            start_time: me.start_time + 1,
            ..me.clone()
        };
        assert!(recycled.is_gone(&me), "a recycled pid is not the owner");
        let elsewhere = Owner {
            hostname: "another-machine".to_owned(),
            pid: u32::MAX,
            start_time: 1,
        };
        assert!(
            !elsewhere.is_gone(&me),
            "other hosts' containers are left alone"
        );
    }

    #[test]
    fn hostnames_with_slashes_do_not_confuse_the_parser() {
        let owner = Owner::parse("a/b/12/34").expect("parses from the right");
        assert_eq!(
            (owner.hostname.as_str(), owner.pid, owner.start_time),
            ("a/b", 12, 34)
        );
        assert_eq!(Owner::parse("host/notapid/1"), None);
    }
}
