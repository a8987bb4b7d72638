//! What the host reads from a run's `/output`, after the run: only regular files, opened
//! through a capability handle on the run's own folder, never through a link.
//!
//! The guest may create links inside its mounts (a relative target is accepted when it is
//! made), and a host that then opened `/output/submission.csv` with its own authority would
//! follow one to `/proc/self/environ` or any file the host can read. So every backend deletes
//! what is neither a regular file nor a folder once the run is over ([`remove_special`]), and
//! the host opens what it reads with [`read_regular`], which refuses a link, a fifo or a device
//! by itself and cannot leave the folder whatever the name holds.

use std::io::Read;
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::Dir;

/// Why a file a run should have left in `/output` cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum OutputFileError {
    /// There is no such entry.
    #[error("the script did not write /output/{name}")]
    Missing {
        /// The file's name.
        name: String,
    },
    /// The entry is a link, a folder, a fifo or a device.
    #[error("/output/{name} is not a regular file (it is a {kind}); write the file itself")]
    NotRegular {
        /// The file's name.
        name: String,
        /// What it is instead.
        kind: &'static str,
    },
    /// The file is larger than the host reads.
    #[error("/output/{name} is {size} bytes, over the {max}-byte output cap")]
    TooLarge {
        /// The file's name.
        name: String,
        /// Its size.
        size: u64,
        /// The cap.
        max: u64,
    },
    /// The name is not a plain file name.
    #[error("{name:?} is not a plain file name")]
    BadName {
        /// The name asked for.
        name: String,
    },
    /// Reading failed.
    #[error("reading /output/{name}: {source}")]
    Io {
        /// The file's name.
        name: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// The contents of the regular file `name` directly in `dir`, at most `max` bytes; a link,
/// even one to a file inside `dir`, is refused.
///
/// # Errors
/// See [`OutputFileError`].
pub fn read_regular(dir: &Path, name: &str, max: u64) -> Result<Vec<u8>, OutputFileError> {
    let io = |source| OutputFileError::Io {
        name: name.to_owned(),
        source,
    };
    if name.is_empty() || name.contains(['/', '\\', '\0']) || name == "." || name == ".." {
        return Err(OutputFileError::BadName {
            name: name.to_owned(),
        });
    }
    let folder = Dir::open_ambient_dir(dir, ambient_authority()).map_err(io)?;
    let meta = match folder.symlink_metadata(name) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(OutputFileError::Missing {
                name: name.to_owned(),
            });
        }
        Err(e) => return Err(io(e)),
    };
    let kind = meta.file_type();
    if !kind.is_file() {
        return Err(OutputFileError::NotRegular {
            name: name.to_owned(),
            kind: if kind.is_symlink() {
                "link"
            } else if kind.is_dir() {
                "folder"
            } else {
                "special file"
            },
        });
    }
    if meta.len() > max {
        return Err(OutputFileError::TooLarge {
            name: name.to_owned(),
            size: meta.len(),
            max,
        });
    }
    // The run is over (its store dropped, its container removed), so nothing can swap the
    // checked entry for a link before this open; cap-std would not leave `dir` even then.
    let file = folder.open(name).map_err(io)?;
    let mut contents = Vec::new();
    file.into_std()
        .take(max.saturating_add(1))
        .read_to_end(&mut contents)
        .map_err(io)?;
    if contents.len() as u64 > max {
        return Err(OutputFileError::TooLarge {
            name: name.to_owned(),
            size: contents.len() as u64,
            max,
        });
    }
    Ok(contents)
}

/// Deletes every entry under `dir` that is neither a regular file nor a folder (links, fifos,
/// sockets, devices), unread, and returns their paths. Call it once the run is over.
///
/// # Errors
/// When a folder cannot be read or an entry cannot be deleted.
pub fn remove_special(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    ks_sandbox_fallback::output::remove_links(dir)
}

/// `paths` (under `dir`) as paths inside `/output`, e.g. `sub/submission.csv`: what a message
/// may name without showing the host's folders.
pub fn inside(dir: &Path, paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .map(|p| {
            p.strip_prefix(dir)
                .unwrap_or(p)
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_regular_file_and_refuses_everything_else() {
        let outside = tempfile::tempdir().expect("tempdir");
        let canary = outside.path().join("canary");
        std::fs::write(&canary, b"SECRET").expect("write");
        let out = tempfile::tempdir().expect("tempdir");
        std::fs::write(out.path().join("ok.csv"), b"id,y\n1,2\n").expect("write");
        std::os::unix::fs::symlink(&canary, out.path().join("abs.csv")).expect("link");
        std::os::unix::fs::symlink("ok.csv", out.path().join("inside.csv")).expect("link");
        std::os::unix::fs::symlink(
            "../../../../../../../../../proc/self/environ",
            out.path().join("rel.csv"),
        )
        .expect("link");
        std::fs::create_dir(out.path().join("dir.csv")).expect("mkdir");

        assert_eq!(
            read_regular(out.path(), "ok.csv", 100).expect("read"),
            b"id,y\n1,2\n"
        );
        for name in ["abs.csv", "inside.csv", "rel.csv"] {
            let error = read_regular(out.path(), name, 100).expect_err(name);
            assert!(
                matches!(error, OutputFileError::NotRegular { kind: "link", .. }),
                "{error}"
            );
            assert!(error.to_string().contains("not a regular file"), "{error}");
        }
        assert!(matches!(
            read_regular(out.path(), "dir.csv", 100),
            Err(OutputFileError::NotRegular { kind: "folder", .. })
        ));
        assert!(matches!(
            read_regular(out.path(), "none.csv", 100),
            Err(OutputFileError::Missing { .. })
        ));
        assert!(matches!(
            read_regular(out.path(), "ok.csv", 3),
            Err(OutputFileError::TooLarge {
                size: 9,
                max: 3,
                ..
            })
        ));
        for name in ["../canary", "", "..", "a/b"] {
            assert!(matches!(
                read_regular(out.path(), name, 100),
                Err(OutputFileError::BadName { .. })
            ));
        }
        let removed = remove_special(out.path()).expect("clean");
        assert_eq!(removed.len(), 3);
        assert!(canary.exists());
        assert!(out.path().join("ok.csv").is_file());
    }
}
