//! Unpacking a zip without trusting it: a competition's data, or matplotlib's data inside the
//! runtime's stdlib zip. Both the installer and the competition fetcher use it, so it lives in
//! this, the lowest crate that both reach.
//!
//! The archive may come from the network, so every entry is checked before anything is written:
//! no `..`, no absolute or drive paths, no symlinks, no path deeper than [`MAX_PATH_DEPTH`], no
//! more than a cap of entries; and while streaming, the bytes actually decompressed (not the
//! sizes the headers claim) are counted against a total cap and a per-entry compression-ratio
//! cap, which together stop zip bombs.
//! Kaggle often ships each table packed once more (`train.csv.zip`, `test.csv.gz` inside the
//! download): those are unpacked too, beside themselves and under the same caps, one level
//! deep (an archive inside one of those stays as it is).
//! Files are created through a `cap_std::fs::Dir`, so even a path that slipped past the checks
//! could not leave the destination. The caller extracts into a staging folder and removes it on
//! refusal, so a refused archive leaves nothing behind.

use std::io::{Read, Seek, Write};

use cap_std::fs::{Dir, OpenOptions};

/// The most components (folders and the file) an entry's path may have. Creating a chain of
/// folders through the capability resolves every level from the top, so its cost grows with
/// the square of the depth: one 2,000-level chain takes seconds, and an archive may hold
/// thousands of them. Competition data is a few levels deep.
pub const MAX_PATH_DEPTH: usize = 32;

/// Caps on what one archive may unpack to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractLimits {
    /// Entries in the archive (files and folders).
    pub max_entries: usize,
    /// Decompressed bytes over all entries.
    pub max_total_bytes: u64,
    /// Decompressed-to-compressed ratio of one entry, checked once the entry has produced
    /// more than [`ExtractLimits::ratio_grace_bytes`].
    pub max_ratio: u64,
    /// Entries smaller than this are exempt from the ratio check (small files compress well
    /// and are harmless).
    pub ratio_grace_bytes: u64,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        ExtractLimits {
            max_entries: 10_000,
            max_total_bytes: 20 << 30,
            max_ratio: 500,
            ratio_grace_bytes: 64 << 20,
        }
    }
}

/// What an extraction produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Extracted {
    /// Files written.
    pub files: usize,
    /// Decompressed bytes written.
    pub bytes: u64,
}

/// Why an archive was refused. None is retryable: the same archive is refused again.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// More entries than [`ExtractLimits::max_entries`].
    #[error("the archive has {count} entries, over the cap of {max}")]
    TooManyEntries {
        /// Entries in the archive.
        count: usize,
        /// The cap.
        max: usize,
    },
    /// More decompressed bytes than [`ExtractLimits::max_total_bytes`].
    #[error(
        "the archive unpacks to more than {max} bytes (stopped in {entry:?}): refused as a zip bomb"
    )]
    TooLarge {
        /// The entry being written when the cap was passed.
        entry: String,
        /// The cap.
        max: u64,
    },
    /// One entry decompresses far more than data does.
    #[error(
        "the entry {entry:?} expands more than {max}:1 ({compressed} compressed bytes): refused \
         as a zip bomb"
    )]
    RatioExceeded {
        entry: String,
        /// Its compressed size.
        compressed: u64,
        /// The cap.
        max: u64,
    },
    /// An entry whose path could land outside the destination.
    #[error("the entry {entry:?} has an unsafe path: {reason}")]
    UnsafePath {
        /// The entry's name as stored (its first 200 characters).
        entry: String,
        /// Why it is unsafe.
        reason: &'static str,
    },
    /// A symbolic link entry.
    #[error("the entry {entry:?} is a symbolic link; links are not extracted")]
    Symlink { entry: String },
    /// The archive is unreadable, encrypted or uses an unsupported method.
    #[error("cannot read the archive ({context}): {source}")]
    Archive {
        /// What was being read.
        context: String,
        /// The zip error.
        #[source]
        source: zip::result::ZipError,
    },
    /// Writing an entry failed (including a duplicate entry name).
    #[error("cannot write {entry:?}: {source}")]
    Io {
        entry: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl ExtractError {
    /// Always `false`.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// Unpacks the zip in `archive` into `dest`, within `limits`, then each `.zip` and `.gz` it
/// held beside itself (the packed file removed). On error, `dest` may hold part of the
/// archive: the caller discards it.
pub fn extract_zip<R: Read + Seek>(
    archive: R,
    dest: &Dir,
    limits: &ExtractLimits,
) -> Result<Extracted, ExtractError> {
    let mut paths = Vec::new();
    let mut done = extract_entries(archive, dest, limits, Extracted::default(), &mut paths)?;
    for path in paths {
        let lower = path.to_ascii_lowercase();
        let (parent, _) = path.rsplit_once('/').unwrap_or(("", &path));
        let io = |source| ExtractError::Io {
            entry: shorten(&path),
            source,
        };
        if lower.ends_with(".zip") {
            let file = dest.open(&path).map_err(io)?;
            let folder = if parent.is_empty() {
                dest.try_clone().map_err(io)?
            } else {
                dest.open_dir(parent).map_err(io)?
            };
            dest.remove_file(&path).map_err(io)?;
            done = extract_entries(file, &folder, limits, done, &mut Vec::new())?;
            done.files -= 1;
        } else if let Some(unpacked) = lower.strip_suffix(".gz").map(|s| &path[..s.len()]) {
            let compressed = dest.metadata(&path).map_err(io)?.len();
            let file = dest.open(&path).map_err(io)?;
            let mut options = OpenOptions::new();
            options.write(true).create_new(true);
            let mut out = dest.open_with(unpacked, &options).map_err(io)?;
            let mut reader = flate2::read::GzDecoder::new(file);
            let written = copy_capped(
                &mut reader,
                &mut out,
                limits.max_total_bytes - done.bytes,
                |n| n > limits.ratio_grace_bytes && n / compressed.max(1) > limits.max_ratio,
            )
            .map_err(|e| copy_error(e, &path, compressed, limits))?;
            out.flush().map_err(io)?;
            dest.remove_file(&path).map_err(io)?;
            done.bytes += written;
        }
    }
    Ok(done)
}

fn copy_error(
    error: CopyError,
    entry: &str,
    compressed: u64,
    limits: &ExtractLimits,
) -> ExtractError {
    match error {
        CopyError::Budget => ExtractError::TooLarge {
            entry: shorten(entry),
            max: limits.max_total_bytes,
        },
        CopyError::Ratio => ExtractError::RatioExceeded {
            entry: shorten(entry),
            compressed,
            max: limits.max_ratio,
        },
        CopyError::Io(source) => ExtractError::Io {
            entry: shorten(entry),
            source,
        },
    }
}

/// Unpacks one zip's entries into `dest`, counting on from `done` and listing the files
/// written in `paths`.
fn extract_entries<R: Read + Seek>(
    archive: R,
    dest: &Dir,
    limits: &ExtractLimits,
    mut done: Extracted,
    paths: &mut Vec<String>,
) -> Result<Extracted, ExtractError> {
    let mut zip = zip::ZipArchive::new(archive).map_err(|source| ExtractError::Archive {
        context: "the central directory".into(),
        source,
    })?;
    if done.files + zip.len() > limits.max_entries {
        return Err(ExtractError::TooManyEntries {
            count: done.files + zip.len(),
            max: limits.max_entries,
        });
    }
    for index in 0..zip.len() {
        let mut entry = zip
            .by_index(index)
            .map_err(|source| ExtractError::Archive {
                context: format!("entry {index}"),
                source,
            })?;
        let name = entry.name().to_owned();
        let path = checked_path(&name)?;
        // Names may be 64 KiB long; errors quote only their start.
        let shown = shorten(&name);
        let is_link = entry
            .unix_mode()
            .is_some_and(|mode| mode & 0o170000 == 0o120000);
        if is_link || entry.is_symlink() {
            return Err(ExtractError::Symlink { entry: shown });
        }
        let io = |source| ExtractError::Io {
            entry: shown.clone(),
            source,
        };
        if entry.is_dir() {
            if !path.is_empty() {
                dest.create_dir_all(&path).map_err(io)?;
            }
            continue;
        }
        if path.is_empty() {
            return Err(ExtractError::UnsafePath {
                entry: shown,
                reason: "it names no file",
            });
        }
        if let Some((parent, _)) = path.rsplit_once('/') {
            dest.create_dir_all(parent).map_err(io)?;
        }
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        let mut file = dest.open_with(&path, &options).map_err(io)?;
        let budget = limits.max_total_bytes - done.bytes;
        let compressed = entry.compressed_size();
        let written = copy_capped(&mut entry, &mut file, budget, |n| {
            n > limits.ratio_grace_bytes && n / compressed.max(1) > limits.max_ratio
        })
        .map_err(|e| copy_error(e, &name, compressed, limits))?;
        file.flush().map_err(io)?;
        done.files += 1;
        done.bytes += written;
        paths.push(path);
    }
    Ok(done)
}

enum CopyError {
    Budget,
    Ratio,
    Io(std::io::Error),
}

/// Copies at most `budget` bytes, stopping as soon as `too_dense(bytes so far)` says so.
fn copy_capped(
    from: &mut impl Read,
    to: &mut impl Write,
    budget: u64,
    too_dense: impl Fn(u64) -> bool,
) -> Result<u64, CopyError> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Io(e)),
        };
        total += n as u64;
        if total > budget {
            return Err(CopyError::Budget);
        }
        if too_dense(total) {
            return Err(CopyError::Ratio);
        }
        to.write_all(&buf[..n]).map_err(CopyError::Io)?;
    }
}

/// At most the first 200 characters of an entry's name, marked when cut.
fn shorten(name: &str) -> String {
    const KEEP: usize = 200;
    match name.char_indices().nth(KEEP) {
        Some((cut, _)) => format!("{}…", &name[..cut]),
        None => name.to_owned(),
    }
}

/// The entry's path as `a/b/c`, or why it is refused. Backslashes count as separators, as
/// some Windows tools write them. Public for other sources of named files (an object-store
/// mirror), so that every name taken from outside is checked by this one rule.
pub fn checked_path(name: &str) -> Result<String, ExtractError> {
    let unsafe_path = |reason| ExtractError::UnsafePath {
        entry: shorten(name),
        reason,
    };
    if name.contains('\0') {
        return Err(unsafe_path("it contains a NUL byte"));
    }
    if name.starts_with('/') || name.starts_with('\\') {
        return Err(unsafe_path("it is absolute"));
    }
    let bytes = name.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Err(unsafe_path("it starts with a drive letter"));
    }
    let mut parts = Vec::new();
    for part in name.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => return Err(unsafe_path("it climbs out with `..`")),
            part => parts.push(part),
        }
    }
    if parts.len() > MAX_PATH_DEPTH {
        return Err(unsafe_path("it is nested more than 32 levels deep"));
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut out);
        for (name, bytes) in files {
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            zip.start_file(*name, options).expect("start");
            zip.write_all(bytes).expect("write");
        }
        zip.finish().expect("finish");
        out.into_inner()
    }

    fn gz_of(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).expect("gzip");
        encoder.finish().expect("gzip")
    }

    fn unpack(
        archive: Vec<u8>,
        limits: &ExtractLimits,
    ) -> (tempfile::TempDir, Result<Extracted, ExtractError>) {
        let out = tempfile::tempdir().expect("tempdir");
        let dir = Dir::open_ambient_dir(out.path(), cap_std::ambient_authority()).expect("dir");
        let result = extract_zip(std::io::Cursor::new(archive), &dir, limits);
        (out, result)
    }

    #[test]
    fn tables_packed_once_more_are_unpacked_beside_themselves() {
        let inner = zip_of(&[("train.csv", b"id,y\n1,0\n")]);
        let archive = zip_of(&[
            ("train.csv.zip", &inner),
            ("data/test.csv.gz", &gz_of(b"id\n2\n")),
            ("sample_submission.csv", b"id,y\n2,0\n"),
        ]);
        let (out, result) = unpack(archive, &ExtractLimits::default());
        let done = result.expect("unpacked");
        let read = |p: &str| std::fs::read_to_string(out.path().join(p)).expect(p);
        assert_eq!(read("train.csv"), "id,y\n1,0\n");
        assert_eq!(read("data/test.csv"), "id\n2\n");
        assert_eq!(read("sample_submission.csv"), "id,y\n2,0\n");
        assert!(!out.path().join("train.csv.zip").exists());
        assert!(!out.path().join("data/test.csv.gz").exists());
        assert_eq!(done.files, 3);
    }

    #[test]
    fn a_packed_table_obeys_the_same_caps() {
        let limits = ExtractLimits {
            max_ratio: 10,
            ratio_grace_bytes: 1 << 20,
            ..ExtractLimits::default()
        };
        // Obeyed: 2 MiB of varied text compresses less than 10 to 1.
        let mut text = Vec::new();
        let mut state = 12345u64;
        while text.len() < 2 << 20 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            text.extend_from_slice(format!("{},{}\n", state >> 40, state % 977).as_bytes());
        }
        let packed = gz_of(&text);
        let (out, result) = unpack(zip_of(&[("train.csv.gz", &packed)]), &limits);
        // Both the packed file and what it held count against the total.
        let expected = (text.len() + packed.len()) as u64;
        assert_eq!(result.expect("obeyed").bytes, expected);
        assert_eq!(
            std::fs::read(out.path().join("train.csv")).expect("read"),
            text
        );
        // Violated: 8 MiB of zeros is thousands to 1.
        let zeros = vec![0u8; 8 << 20];
        let (_out, result) = unpack(zip_of(&[("train.csv.gz", &gz_of(&zeros))]), &limits);
        let error = result.expect_err("a gzip bomb");
        assert!(
            matches!(error, ExtractError::RatioExceeded { .. }),
            "{error}"
        );
        // A zip in the zip counts against the same total.
        let small = ExtractLimits {
            max_total_bytes: 1 << 20,
            ..ExtractLimits::default()
        };
        let inner = zip_of(&[("train.csv", &text[..(900 << 10)])]);
        let (_out, result) = unpack(zip_of(&[("a.csv.zip", &inner)]), &small);
        let error = result.expect_err("over the total");
        assert!(matches!(error, ExtractError::TooLarge { .. }), "{error}");
    }

    #[test]
    fn path_table() {
        for (name, want) in [
            ("train.csv", Ok("train.csv")),
            ("data/train.csv", Ok("data/train.csv")),
            ("./data//train.csv", Ok("data/train.csv")),
            ("data\\train.csv", Ok("data/train.csv")),
            ("data/", Ok("data")),
            ("../evil", Err("`..`")),
            ("data/../../evil", Err("`..`")),
            ("..\\evil", Err("`..`")),
            ("/etc/passwd", Err("absolute")),
            ("\\evil", Err("absolute")),
            ("C:/evil", Err("drive letter")),
            ("a\0b", Err("NUL")),
        ] {
            match (checked_path(name), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{name:?}"),
                (Err(e), Err(needle)) => assert!(e.to_string().contains(needle), "{name:?}: {e}"),
                (got, want) => panic!("{name:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn depth_is_capped() {
        let deepest = "d/".repeat(MAX_PATH_DEPTH - 1) + "f.csv";
        assert_eq!(checked_path(&deepest).ok(), Some(deepest.clone()));
        let err = checked_path(&format!("d/{deepest}")).expect_err("one level too deep");
        assert!(
            err.to_string()
                .contains(&format!("more than {MAX_PATH_DEPTH} levels")),
            "{err}"
        );
    }
}
