//! `/output` on the host side: its size, counted without following links (for the output cap),
//! and its clean-up after a run, which deletes every symlink and special file the script left,
//! so that nothing the host later reads from `/output` can point at a host file.

use std::io;
use std::path::{Path, PathBuf};

/// Entries a folder may hold before measuring it is refused (empty files cost the host inodes,
/// and a walk of millions of them would hold up the run's supervision).
pub const MAX_ENTRIES: u64 = 100_000;

/// Total size of the regular files under `dir`, never following symlinks.
///
/// # Errors
/// When a folder cannot be read, or `dir` holds more than [`MAX_ENTRIES`] entries.
pub fn regular_file_bytes(dir: &Path) -> io::Result<u64> {
    let (mut total, mut entries) = (0u64, 0u64);
    walk(dir, &mut |_, kind, meta| {
        entries += 1;
        if entries > MAX_ENTRIES {
            return Err(io::Error::other(format!(
                "more than {MAX_ENTRIES} entries in {}",
                dir.display()
            )));
        }
        if kind.is_file() {
            total = total.saturating_add(meta.len());
        }
        Ok(())
    })?;
    Ok(total)
}

/// Deletes every entry under `dir` that is neither a regular file nor a folder (symlinks,
/// fifos, sockets, devices) and returns their paths. Run after the container is gone, so
/// nothing can race it.
///
/// # Errors
/// When a folder cannot be read or an entry cannot be deleted.
pub fn remove_links(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    walk(dir, &mut |path, kind, _| {
        if !kind.is_file() && !kind.is_dir() {
            std::fs::remove_file(path)?;
            removed.push(path.to_path_buf());
        }
        Ok(())
    })?;
    Ok(removed)
}

/// Visits every entry under `dir` with its own (not followed) type, descending only into real
/// folders.
fn walk(
    dir: &Path,
    visit: &mut dyn FnMut(&Path, std::fs::FileType, &std::fs::Metadata) -> io::Result<()>,
) -> io::Result<()> {
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path)?;
            let kind = meta.file_type();
            visit(&path, kind, &meta)?;
            if kind.is_dir() {
                pending.push(path);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_neither_counted_nor_kept() {
        let outside = tempfile::tempdir().expect("tempdir");
        let secret = outside.path().join("secret");
        std::fs::write(&secret, vec![0u8; 10_000]).expect("write");
        let out = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(out.path().join("sub")).expect("mkdir");
        std::fs::write(out.path().join("sub/a.csv"), b"12345").expect("write");
        std::os::unix::fs::symlink(&secret, out.path().join("submission.csv")).expect("link");
        std::os::unix::fs::symlink(outside.path(), out.path().join("dir-link")).expect("link");

        assert_eq!(regular_file_bytes(out.path()).expect("size"), 5);
        let mut removed = remove_links(out.path()).expect("clean");
        removed.sort();
        assert_eq!(
            removed,
            [
                out.path().join("dir-link"),
                out.path().join("submission.csv")
            ]
        );
        assert!(secret.exists(), "the link's target is untouched");
        assert!(out.path().join("sub/a.csv").exists());
    }

    #[test]
    fn a_folder_of_more_entries_than_the_cap_is_not_measured() {
        let out = tempfile::tempdir().expect("tempdir");
        // Entries in a subfolder count too, the subfolder itself included.
        let sub = out.path().join("sub");
        std::fs::create_dir(&sub).expect("mkdir");
        for i in 0..MAX_ENTRIES - 1 {
            std::fs::File::create(sub.join(i.to_string())).expect("create");
        }
        assert_eq!(regular_file_bytes(out.path()).expect("exactly the cap"), 0);
        std::fs::write(sub.join("one-more"), b"x").expect("write");
        let error = regular_file_bytes(out.path()).expect_err("one past the cap");
        assert!(
            error.to_string().contains("more than 100000 entries"),
            "{error}"
        );
    }
}
