//! Test fixtures: tiny fake wheels and locks that match them, so installer tests are hermetic
//! (no pip, no network, no 100 MB artifacts) and never touch the process environment.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tempfile::TempDir;
use zip::write::SimpleFileOptions;

use crate::home::RuntimeHome;
use crate::lock::RuntimeLock;

/// Entry names and contents of a good fake wheel's three artifacts.
pub(crate) const ARTIFACTS: [(&str, &[u8]); 3] = [
    (
        "fake_python/artifacts/python.wasm",
        b"\0asm fake interpreter",
    ),
    (
        "fake_python/artifacts/python-snapshot.wasm",
        b"\0asm fake snapshot",
    ),
    ("fake_python/artifacts/python-stdlib.zip", b"PK fake stdlib"),
];

/// Entries that are in the wheel but must never be extracted.
pub(crate) const EXTRAS: [(&str, &[u8]); 3] = [
    ("fake_python/__init__.py", b"# not an artifact\n"),
    ("fake_python/artifacts/python.wasm.orig", b"decoy"),
    ("../escape.txt", b"zip-slip decoy"),
];

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Writes a zip at `path` holding `entries`.
pub(crate) fn write_wheel(path: &Path, entries: &[(&str, &[u8])]) {
    fs::write(path, zip_bytes(entries)).expect("write wheel");
}

/// A zip archive holding `entries`, in memory.
pub(crate) fn zip_bytes(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        zip.start_file(*name, options).expect("start entry");
        zip.write_all(bytes).expect("write entry");
    }
    zip.finish().expect("finish zip").into_inner()
}

/// The entry name and content the fake locks pin as matplotlib's data.
pub(crate) const MPL_DATA_ENTRY: &str = "matplotlib/mpl-data.zip";
pub(crate) const MPL_DATA_ZIP: &[u8] = b"PK fake mpl data";

/// A lock pinning the wheel at `wheel` as it is now, and artifacts with the given contents.
pub(crate) fn lock_for(wheel: &Path, artifacts: &[(&str, &[u8]); 3]) -> RuntimeLock {
    lock_with_mpl_data(wheel, artifacts, MPL_DATA_ZIP)
}

/// [`lock_for`], pinning `mpl_data` as matplotlib's inner archive.
pub(crate) fn lock_with_mpl_data(
    wheel: &Path,
    artifacts: &[(&str, &[u8]); 3],
    mpl_data: &[u8],
) -> RuntimeLock {
    let bytes = fs::read(wheel).expect("read wheel");
    let file_name = wheel
        .file_name()
        .expect("wheel file name")
        .to_string_lossy();
    let mut text = format!(
        "package = \"fake-python\"\nversion = \"9.9.9\"\n\n[wheel]\nfile-name = \"{file_name}\"\n\
         sha256 = \"{}\"\nsize = {}\n",
        sha256_hex(&bytes),
        bytes.len()
    );
    let keys = ["python-wasm", "python-snapshot-wasm", "python-stdlib-zip"];
    for (key, (path, content)) in keys.iter().zip(artifacts) {
        text.push_str(&format!(
            "\n[artifacts.{key}]\npath = \"{path}\"\nsha256 = \"{}\"\nsize = {}\n",
            sha256_hex(content),
            content.len()
        ));
    }
    text.push_str(&format!(
        "\n[mpl-data]\npath = \"{MPL_DATA_ENTRY}\"\nsha256 = \"{}\"\nsize = {}\n",
        sha256_hex(mpl_data),
        mpl_data.len()
    ));
    RuntimeLock::from_toml_str(&text).expect("fake lock is valid")
}

/// A temp dir holding a home and a good fake wheel, with the lock that pins them.
pub(crate) struct Fixture {
    pub tmp: TempDir,
    pub home: RuntimeHome,
    pub wheel: PathBuf,
    pub lock: RuntimeLock,
}

impl Fixture {
    /// A fake wheel with the three artifacts plus decoys, and a lock that matches it.
    pub(crate) fn new() -> Fixture {
        let entries: Vec<_> = ARTIFACTS.iter().chain(&EXTRAS).copied().collect();
        Fixture::with_entries(&entries, &ARTIFACTS)
    }

    /// A wheel holding `entries`, and a lock pinning that wheel and `artifacts`.
    pub(crate) fn with_entries(
        entries: &[(&str, &[u8])],
        artifacts: &[(&str, &[u8]); 3],
    ) -> Fixture {
        let tmp = tempfile::tempdir().expect("tempdir");
        let wheel = tmp.path().join("fake_python-9.9.9-py3-none-any.whl");
        write_wheel(&wheel, entries);
        let lock = lock_for(&wheel, artifacts);
        let home = RuntimeHome::at(tmp.path().join("home"));
        Fixture {
            tmp,
            home,
            wheel,
            lock,
        }
    }

    /// The names in `runtime/`, sorted.
    pub(crate) fn runtime_root_listing(&self) -> Vec<String> {
        let mut names: Vec<String> = match fs::read_dir(self.home.runtime_root()) {
            Ok(dir) => dir
                .map(|e| {
                    e.expect("dir entry")
                        .file_name()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        names
    }
}
