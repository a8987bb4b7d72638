//! How much a running container holds in its `/tmp`, read from the host.
//!
//! `/tmp` is a tmpfs (so it can be `noexec`), and a tmpfs's pages are charged to the
//! container's memory cgroup as shared memory: the cgroup's `memory.stat` says how much the
//! container's tmpfs holds right now, without entering the container. The tmpfs itself is
//! sized to the disk cap plus [`SLACK`], so the kernel refuses writes a little past the cap
//! whatever the host sees; the slack leaves a flood past the cap alive long enough for the
//! runner's poll to see it and name the cap it broke.

use std::path::PathBuf;

/// How far past the disk cap the tmpfs lets a writer go before the kernel refuses.
pub const SLACK: u64 = 64 << 20;

/// The `memory.stat` files a container's cgroup may have, by cgroup version and driver.
fn candidates(container_id: &str) -> [PathBuf; 4] {
    [
        format!("/sys/fs/cgroup/memory/docker/{container_id}/memory.stat"),
        format!("/sys/fs/cgroup/memory/system.slice/docker-{container_id}.scope/memory.stat"),
        format!("/sys/fs/cgroup/system.slice/docker-{container_id}.scope/memory.stat"),
        format!("/sys/fs/cgroup/docker/{container_id}/memory.stat"),
    ]
    .map(PathBuf::from)
}

/// Finds the `memory.stat` of a running container, if this host exposes one.
pub fn stat_file(container_id: &str) -> Option<PathBuf> {
    candidates(container_id).into_iter().find(|p| p.is_file())
}

/// Bytes of shared memory (the tmpfs) in a `memory.stat`'s text.
pub fn shmem_bytes(stat: &str) -> Option<u64> {
    stat.lines().find_map(|line| {
        let value = line.strip_prefix("shmem ")?;
        value.trim().parse().ok()
    })
}

/// Bytes the container's tmpfs holds now, read from `stat`; `None` if it cannot be read
/// (the container is gone).
pub fn tmpfs_bytes(stat: &std::path::Path) -> Option<u64> {
    std::fs::read_to_string(stat)
        .ok()
        .as_deref()
        .and_then(shmem_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_shmem_and_not_its_hierarchical_total() {
        let stat = "cache 1000\nrss 2000\nshmem 4096\nmapped_file 0\ntotal_shmem 9999\n";
        assert_eq!(shmem_bytes(stat), Some(4096));
        assert_eq!(shmem_bytes("anon 5\nfile 6\n"), None);
        assert!(stat_file("not-a-container").is_none());
    }
}
