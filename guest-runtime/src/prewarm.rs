//! The guest side of the pre-warmed image: which modules it imports, the Python that
//! runs at build time and in the audit, and the record of the last build for `runtime status`.
//!
//! The image itself is built by the host, which owns wasmtime; this crate only holds what the
//! image is made of, so that the import list is reviewed beside the runtime it applies to and its
//! text is part of the image's cache key.

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The import list, one module per line (`#` comments), as shipped in `prewarm/imports.txt`.
pub const PREWARM_IMPORTS_TXT: &str = include_str!("../prewarm/imports.txt");
/// Python run once at build time after the imports: registers RNGs for reseeding, freezes the heap.
pub const PREWARM_BUILD_PY: &str = include_str!("../prewarm/build.py");
/// Python the build-time audit runs in restored images; prints one `__KS_AUDIT__ {json}` line.
pub const PREWARM_AUDIT_PY: &str = include_str!("../prewarm/audit.py");
/// The prefix of the audit's result line on stdout.
pub const AUDIT_LINE_PREFIX: &str = "__KS_AUDIT__ ";
/// The file in the home that records the last pre-warm build.
pub const PREWARM_RECORD_FILE: &str = "prewarm.json";

/// The modules of the import list, in order.
pub fn prewarm_imports() -> Vec<&'static str> {
    PREWARM_IMPORTS_TXT
        .lines()
        .map(|line| line.split('#').next().unwrap_or_default().trim())
        .filter(|line| !line.is_empty())
        .collect()
}

/// The Python the build runs through the interpreter's `run_private`: the imports, then
/// [`PREWARM_BUILD_PY`].
pub fn prewarm_build_source() -> String {
    let mut source = String::new();
    for module in prewarm_imports() {
        source.push_str("import ");
        source.push_str(module);
        source.push('\n');
    }
    source.push_str(PREWARM_BUILD_PY);
    source
}

/// How the last pre-warm build for a key ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrewarmState {
    /// The image passed the audit and is cached.
    Built,
    /// The build or the audit failed; runs use the plain module.
    Failed,
}

/// What `runtime status` shows about the pre-warmed image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrewarmRecord {
    /// The image's cache key (runtime, stdlib zip, import list and wasmtime version).
    pub key: String,
    /// How the build ended.
    pub state: PrewarmState,
    /// Why it failed, or a summary of the audit when it passed.
    pub detail: String,
    /// The image's initial linear memory in bytes (the smallest memory cap it can run under).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_memory_bytes: Option<u64>,
}

impl PrewarmRecord {
    /// Reads the record in `home_root`, if there is a readable one.
    pub fn read(home_root: &Path) -> Option<PrewarmRecord> {
        let text = fs::read_to_string(home_root.join(PREWARM_RECORD_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Writes the record into `home_root` (atomically: a temporary file renamed into place).
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn write(&self, home_root: &Path) -> std::io::Result<()> {
        fs::create_dir_all(home_root)?;
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        let tmp = tempfile::NamedTempFile::new_in(home_root)?;
        fs::write(tmp.path(), text)?;
        tmp.persist(home_root.join(PREWARM_RECORD_FILE))
            .map_err(|e| e.error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_import_list_covers_the_baseline() {
        let imports = prewarm_imports();
        for module in ["numpy", "pandas", "scipy.stats", "sklearn.ensemble"] {
            assert!(imports.contains(&module), "{module} in {imports:?}");
        }
        assert!(
            imports
                .iter()
                .all(|m| !m.contains(' ') && !m.starts_with('#'))
        );
        let source = prewarm_build_source();
        assert!(
            source.starts_with("import numpy\nimport pandas\n"),
            "{source}"
        );
        assert!(source.contains("gc.freeze()"));
    }

    #[test]
    fn the_record_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(PrewarmRecord::read(dir.path()), None);
        let record = PrewarmRecord {
            key: "k".into(),
            state: PrewarmState::Failed,
            detail: "why".into(),
            initial_memory_bytes: None,
        };
        record.write(dir.path()).expect("write");
        assert_eq!(PrewarmRecord::read(dir.path()), Some(record));
    }
}
