//! Zip extraction: archives built in memory (by the `zip` crate, or byte by byte where the crate
//! refuses to write something hostile), mangled archives and random bytes. Nothing may land
//! outside the target folder, no link may be created, the caps hold, and archives the crate
//! wrote are unpacked exactly as a model of the rules says.

use std::collections::BTreeMap;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use kaggle_solver::pipeline::fetch::ExtractError;
use kaggle_solver::pipeline::fetch::ExtractLimits;
use kaggle_solver::pipeline::fetch::extract::{Extracted, MAX_PATH_DEPTH, extract_zip};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use zip::write::SimpleFileOptions;

use super::{check, clip};

const MAX_MESSAGE_BYTES: usize = 4096;

fn limits() -> ExtractLimits {
    ExtractLimits {
        max_entries: 12,
        max_total_bytes: 32 << 10,
        max_ratio: 1000,
        // The ratio has its own property below; here only the total cap stops growth.
        ratio_grace_bytes: u64::MAX,
    }
}

#[derive(Debug, Clone)]
enum Kind {
    File(Vec<u8>),
    Dir,
    Symlink(&'static str),
}

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    kind: Kind,
    deflate: bool,
}

/// A path segment; only `hostile` ones may climb out, name a drive or hold a NUL.
fn segment(hostile: bool) -> BoxedStrategy<String> {
    let odd = prop::sample::select(vec![
        ".",
        "",
        "...",
        "..a",
        "a..",
        ".hidden",
        ":",
        "\u{434}\u{430}\u{442}\u{430}",
        "\u{540d}\u{524d}",
        "a b",
        "~",
        "$HOME",
        "%2e%2e",
        "CON",
        "a\u{202e}b",
        "train.csv",
    ])
    .prop_map(str::to_owned);
    let bad = prop::sample::select(vec!["..", "C:", "c:", "\0", "a\0"]).prop_map(str::to_owned);
    if hostile {
        prop_oneof![6 => "[a-z]{1,6}", 2 => odd, 1 => bad].boxed()
    } else {
        prop_oneof![6 => "[a-z]{1,6}", 2 => odd].boxed()
    }
}

/// An entry name; harmless ones differ from the clean form only in ways the rules undo
/// (`./`, doubled and back slashes, `.` segments).
fn name(hostile: bool) -> impl Strategy<Value = String> {
    let prefix = if hostile {
        vec![
            "",
            "",
            "",
            "",
            "/",
            "\\",
            "./",
            "C:",
            "c:\\",
            "\\\\server\\share\\",
            "d:/",
        ]
    } else {
        vec!["", "", "./"]
    };
    let separator = prop::sample::select(vec!["/", "/", "\\", "//"]);
    let suffix = prop::sample::select(vec!["", "", "", "/", "\\"]);
    // Deep nesting, one segment repeated: past the depth cap only when hostile.
    let deepest = if hostile { 60 } else { MAX_PATH_DEPTH };
    let segments = prop_oneof![
        8 => prop::collection::vec(segment(hostile), 1..5),
        1 => ("[a-z]{1,3}", 20usize..deepest).prop_map(|(s, n)| vec![s; n]),
    ];
    (prop::sample::select(prefix), segments, separator, suffix).prop_map(
        |(prefix, segments, sep, suffix)| format!("{prefix}{}{suffix}", segments.join(sep)),
    )
}

fn content() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => prop::collection::vec(any::<u8>(), 0..64),
        2 => "[a-z0-9,\n]{0,200}".prop_map(String::into_bytes),
        1 => (0usize..24_000).prop_map(|n| vec![0u8; n]),
    ]
}

/// An entry; only `hostile` ones may be links or have unsafe names.
fn entry(hostile: bool) -> impl Strategy<Value = Entry> {
    let link = prop::sample::select(vec!["/etc/passwd", "../outside", "a", "../../x"])
        .prop_map(Kind::Symlink);
    let kind = if hostile {
        prop_oneof![
            6 => content().prop_map(Kind::File),
            2 => Just(Kind::Dir),
            1 => link,
        ]
        .boxed()
    } else {
        prop_oneof![6 => content().prop_map(Kind::File), 2 => Just(Kind::Dir)].boxed()
    };
    (name(hostile), kind, any::<bool>()).prop_map(|(name, kind, deflate)| Entry {
        name,
        kind,
        deflate,
    })
}

/// Writes `entries` with the `zip` crate; returns the archive and the entries it accepted,
/// under the names it stored (it refuses duplicates and adds `/` to folder names).
fn write_zip(entries: &[Entry]) -> (Vec<u8>, Vec<Entry>) {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let mut stored = Vec::new();
    for entry in entries {
        let method = if entry.deflate {
            zip::CompressionMethod::Deflated
        } else {
            zip::CompressionMethod::Stored
        };
        let options = SimpleFileOptions::default().compression_method(method);
        let (written, name) = match &entry.kind {
            Kind::File(body) => {
                let written = writer
                    .start_file(entry.name.as_str(), options)
                    .and_then(|()| writer.write_all(body).map_err(Into::into));
                (written, entry.name.clone())
            }
            Kind::Dir => {
                let name = if entry.name.ends_with(['/', '\\']) {
                    entry.name.clone()
                } else {
                    format!("{}/", entry.name)
                };
                (writer.add_directory(entry.name.as_str(), options), name)
            }
            Kind::Symlink(target) => (
                writer.add_symlink(entry.name.as_str(), *target, options),
                entry.name.clone(),
            ),
        };
        if written.is_ok() {
            stored.push(Entry {
                name,
                ..entry.clone()
            });
        }
    }
    let bytes = writer.finish().expect("finish").into_inner();
    (bytes, stored)
}

/// What the rules make of an entry's name: its clean relative path, or `None` if refused.
fn safe_path(name: &str) -> Option<String> {
    let bytes = name.as_bytes();
    if name.contains('\0')
        || name.starts_with(['/', '\\'])
        || (bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':')
    {
        return None;
    }
    let parts: Vec<&str> = name
        .split(['/', '\\'])
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.contains(&"..") || parts.len() > MAX_PATH_DEPTH {
        return None;
    }
    Some(parts.join("/"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    TooMany,
    Unsafe,
    Symlink,
    Io,
    TooLarge,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Dir,
    File(Vec<u8>),
}

/// The folder tree the rules produce from `entries`, or the first refusal.
fn model(entries: &[Entry], limits: &ExtractLimits) -> Result<BTreeMap<String, Node>, Refusal> {
    if entries.len() > limits.max_entries {
        return Err(Refusal::TooMany);
    }
    let mut tree = BTreeMap::new();
    let mut total = 0u64;
    let mkdirs = |tree: &mut BTreeMap<String, Node>, path: &str| {
        let mut prefix = String::new();
        for part in path.split('/') {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            match tree.get(&prefix) {
                Some(Node::File(_)) => return Err(Refusal::Io),
                Some(Node::Dir) => {}
                None => {
                    tree.insert(prefix.clone(), Node::Dir);
                }
            }
        }
        Ok(())
    };
    for entry in entries {
        let path = safe_path(&entry.name).ok_or(Refusal::Unsafe)?;
        if matches!(entry.kind, Kind::Symlink(_)) {
            return Err(Refusal::Symlink);
        }
        if entry.name.ends_with(['/', '\\']) {
            if !path.is_empty() {
                mkdirs(&mut tree, &path)?;
            }
            continue;
        }
        let Kind::File(body) = &entry.kind else {
            unreachable!("folders end with a separator")
        };
        if path.is_empty() {
            return Err(Refusal::Unsafe);
        }
        if let Some((parent, _)) = path.rsplit_once('/') {
            mkdirs(&mut tree, parent)?;
        }
        if tree.contains_key(&path) {
            return Err(Refusal::Io);
        }
        let len = body.len() as u64;
        if len > limits.max_total_bytes - total {
            return Err(Refusal::TooLarge);
        }
        total += len;
        tree.insert(path, Node::File(body.clone()));
    }
    Ok(tree)
}

fn refusal(err: &ExtractError) -> Refusal {
    match err {
        ExtractError::TooManyEntries { .. } => Refusal::TooMany,
        ExtractError::UnsafePath { .. } => Refusal::Unsafe,
        ExtractError::Symlink { .. } => Refusal::Symlink,
        ExtractError::Io { .. } => Refusal::Io,
        ExtractError::TooLarge { .. } | ExtractError::RatioExceeded { .. } => Refusal::TooLarge,
        ExtractError::Archive { .. } => panic!("the crate's own archive is unreadable: {err}"),
    }
}

/// A parent folder holding only the target folder, with `links` (name, target) made in the
/// target beforehand.
struct Place {
    _tmp: tempfile::TempDir,
    parent: PathBuf,
    target: PathBuf,
}

fn place(links: &[(&str, &str)]) -> Place {
    let tmp = tempfile::tempdir().expect("tempdir");
    let parent = tmp.path().join("parent");
    let target = parent.join("target");
    std::fs::create_dir_all(&target).expect("target");
    for (name, to) in links {
        std::os::unix::fs::symlink(to, target.join(name)).expect("link");
    }
    Place {
        _tmp: tmp,
        parent,
        target,
    }
}

fn unpack(
    place: &Place,
    archive: &[u8],
    limits: &ExtractLimits,
) -> Result<Extracted, ExtractError> {
    let dir = Dir::open_ambient_dir(&place.target, ambient_authority()).expect("open target");
    extract_zip(Cursor::new(archive), &dir, limits)
}

/// Everything under `root` (not following links), relative, with what it is.
fn tree_of(root: &Path) -> BTreeMap<String, Result<Node, String>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            let relative = path
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .into_owned();
            let meta = std::fs::symlink_metadata(&path).expect("metadata");
            let node = if meta.file_type().is_symlink() {
                Err(format!(
                    "a link to {:?}",
                    std::fs::read_link(&path).unwrap_or_default()
                ))
            } else if meta.is_dir() {
                stack.push(path);
                Ok(Node::Dir)
            } else if meta.is_file() {
                Ok(Node::File(std::fs::read(&path).expect("read")))
            } else {
                Err(format!("a special file ({:?})", meta.file_type()))
            };
            out.insert(relative, node);
        }
    }
    out
}

/// What must hold after any extraction: the parent gained nothing, no link or special file was
/// made (besides `links`, made beforehand), the caps held, the count is right, and an error
/// says clearly what was refused.
fn contained(
    place: &Place,
    result: &Result<Extracted, ExtractError>,
    limits: &ExtractLimits,
    links: &[&str],
) -> Result<BTreeMap<String, Node>, TestCaseError> {
    let siblings: Vec<String> = std::fs::read_dir(&place.parent)
        .expect("read parent")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    prop_assert_eq!(
        siblings,
        vec!["target".to_owned()],
        "the parent gained files"
    );
    let mut tree = BTreeMap::new();
    for (path, node) in tree_of(&place.target) {
        match node {
            Ok(node) => {
                tree.insert(path, node);
            }
            Err(_) if links.contains(&path.as_str()) => {}
            Err(what) => prop_assert!(false, "{path} is {what}"),
        }
    }
    let files = tree.values().filter(|n| matches!(n, Node::File(_))).count();
    let bytes: u64 = tree
        .values()
        .map(|n| match n {
            Node::File(b) => b.len() as u64,
            Node::Dir => 0,
        })
        .sum();
    prop_assert!(bytes <= limits.max_total_bytes, "{bytes} bytes unpacked");
    prop_assert!(files <= limits.max_entries, "{files} files unpacked");
    match result {
        Ok(done) => {
            prop_assert_eq!(done.files, files);
            prop_assert_eq!(done.bytes, bytes);
        }
        Err(err) => is_clear(err)?,
    }
    Ok(tree)
}

fn is_clear(err: &ExtractError) -> Result<(), TestCaseError> {
    let message = err.to_string();
    prop_assert!(
        message.len() <= MAX_MESSAGE_BYTES,
        "a {}-byte message: {}",
        message.len(),
        clip(&message, 300)
    );
    let says = match err {
        ExtractError::TooManyEntries { .. } => "entries, over the cap of",
        ExtractError::TooLarge { .. } => "refused as a zip bomb",
        ExtractError::RatioExceeded { .. } => "refused as a zip bomb",
        ExtractError::UnsafePath { .. } => "has an unsafe path: ",
        ExtractError::Symlink { .. } => "links are not extracted",
        ExtractError::Archive { context, source } => {
            prop_assert!(!context.is_empty() && !source.to_string().trim().is_empty());
            "cannot read the archive ("
        }
        ExtractError::Io { source, .. } => {
            prop_assert!(!source.to_string().trim().is_empty());
            "cannot write "
        }
    };
    prop_assert!(message.contains(says), "{message}");
    Ok(())
}

#[test]
fn archives_unpack_as_the_rules_say() {
    // Half the archives are harmless, so that unpacking (and clashes and caps) is tested as
    // often as refusing.
    let entries =
        any::<bool>().prop_flat_map(|hostile| prop::collection::vec(entry(hostile), 0..14));
    check(256, &entries, |entries| {
        let (archive, stored) = write_zip(&entries);
        let limits = limits();
        let place = place(&[]);
        let result = unpack(&place, &archive, &limits);
        let tree = contained(&place, &result, &limits, &[])?;
        match (model(&stored, &limits), result) {
            (Ok(want), Ok(done)) => {
                prop_assert_eq!(&tree, &want);
                prop_assert_eq!(
                    done.files,
                    want.values().filter(|n| matches!(n, Node::File(_))).count()
                );
            }
            (Err(want), Err(err)) => prop_assert_eq!(refusal(&err), want, "{}", err),
            (Ok(_), Err(err)) => prop_assert!(false, "refused a harmless archive: {err}"),
            (Err(want), Ok(_)) => {
                prop_assert!(false, "accepted an archive the rules refuse ({want:?})")
            }
        }
        Ok(())
    });
}

#[test]
fn links_already_in_the_target_are_not_followed() {
    let name = prop_oneof![
        prop::sample::select(vec![
            "escape",
            "escape/",
            "escape/x.csv",
            "escape/sub/x.csv",
            "escape/sub/",
            "./escape/y",
            "escape\\z",
            "up/x",
            "up/",
            "self/escape/x",
        ])
        .prop_map(str::to_owned),
        name(true),
    ];
    let entries = prop::collection::vec(
        (
            name,
            prop_oneof![content().prop_map(Kind::File), Just(Kind::Dir)],
            any::<bool>(),
        )
            .prop_map(|(name, kind, deflate)| Entry {
                name,
                kind,
                deflate,
            }),
        1..6,
    );
    check(128, &entries, |entries| {
        let (archive, _) = write_zip(&entries);
        let limits = limits();
        let links = [("escape", "../outside"), ("up", ".."), ("self", ".")];
        let place = place(&links);
        std::fs::create_dir(place.parent.join("outside")).expect("outside");
        let result = unpack(&place, &archive, &limits);
        let outside: Vec<_> = std::fs::read_dir(place.parent.join("outside"))
            .expect("outside")
            .collect();
        prop_assert!(outside.is_empty(), "wrote through a link: {outside:?}");
        std::fs::remove_dir(place.parent.join("outside")).expect("remove outside");
        contained(&place, &result, &limits, &["escape", "up", "self"])?;
        Ok(())
    });
}

/// The IEEE CRC-32 that zip uses.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// An entry written byte by byte: any name bytes, any Unix mode, and header fields that may lie.
#[derive(Debug, Clone)]
struct RawEntry {
    name: Vec<u8>,
    body: Vec<u8>,
    /// The Unix mode in the upper half of the external attributes (made by Unix).
    mode: u32,
    utf8: bool,
    lie: Option<(Field, u32)>,
}

#[derive(Debug, Clone, Copy)]
enum Field {
    LocalCompressed,
    LocalUncompressed,
    CentralCompressed,
    CentralUncompressed,
    Crc,
    LocalOffset,
    NameLength,
}

/// A stored (uncompressed) zip of `entries`, with each entry's lie applied.
fn raw_zip(entries: &[RawEntry]) -> Vec<u8> {
    fn u16le(out: &mut Vec<u8>, v: u16) {
        out.extend_from_slice(&v.to_le_bytes());
    }
    fn u32le(out: &mut Vec<u8>, v: u32) {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let lie = |entry: &RawEntry, field: fn(Field) -> bool, honest: u32| match entry.lie {
        Some((f, v)) if field(f) => v,
        _ => honest,
    };
    let len32 = |n: usize| u32::try_from(n).expect("small");
    let len16 = |n: usize| u16::try_from(n).expect("short name");
    let mut out = Vec::new();
    let mut central = Vec::new();
    for entry in entries {
        let offset = len32(out.len());
        let flags = if entry.utf8 { 1 << 11 } else { 0 };
        let crc = lie(entry, |f| matches!(f, Field::Crc), crc32(&entry.body));
        let size = len32(entry.body.len());
        let name_len = len16(entry.name.len());
        u32le(&mut out, 0x0403_4b50);
        u16le(&mut out, 20);
        u16le(&mut out, flags);
        u16le(&mut out, 0);
        u16le(&mut out, 0);
        u16le(&mut out, 0x21);
        u32le(&mut out, crc);
        u32le(
            &mut out,
            lie(entry, |f| matches!(f, Field::LocalCompressed), size),
        );
        u32le(
            &mut out,
            lie(entry, |f| matches!(f, Field::LocalUncompressed), size),
        );
        u16le(&mut out, name_len);
        u16le(&mut out, 0);
        out.extend_from_slice(&entry.name);
        out.extend_from_slice(&entry.body);

        u32le(&mut central, 0x0201_4b50);
        u16le(&mut central, (3 << 8) | 20);
        u16le(&mut central, 20);
        u16le(&mut central, flags);
        u16le(&mut central, 0);
        u16le(&mut central, 0);
        u16le(&mut central, 0x21);
        u32le(&mut central, crc);
        u32le(
            &mut central,
            lie(entry, |f| matches!(f, Field::CentralCompressed), size),
        );
        u32le(
            &mut central,
            lie(entry, |f| matches!(f, Field::CentralUncompressed), size),
        );
        let lied_len = lie(
            entry,
            |f| matches!(f, Field::NameLength),
            u32::from(name_len),
        );
        u16le(&mut central, (lied_len & 0xffff) as u16);
        u16le(&mut central, 0);
        u16le(&mut central, 0);
        u16le(&mut central, 0);
        u16le(&mut central, 0);
        u32le(&mut central, entry.mode << 16);
        u32le(
            &mut central,
            lie(entry, |f| matches!(f, Field::LocalOffset), offset),
        );
        central.extend_from_slice(&entry.name);
    }
    let count = u16::try_from(entries.len()).expect("few entries");
    let central_offset = len32(out.len());
    let central_len = len32(central.len());
    out.extend_from_slice(&central);
    u32le(&mut out, 0x0605_4b50);
    u16le(&mut out, 0);
    u16le(&mut out, 0);
    u16le(&mut out, count);
    u16le(&mut out, count);
    u32le(&mut out, central_len);
    u32le(&mut out, central_offset);
    u16le(&mut out, 0);
    out
}

fn raw_entry() -> impl Strategy<Value = RawEntry> {
    let name = prop_oneof![
        // Few names, so duplicates are common.
        3 => prop::sample::select(vec!["a.csv", "a.csv", "b/c.csv", "b/", "b", "./a.csv", "../x", "/abs"])
            .prop_map(|s| s.as_bytes().to_vec()),
        2 => name(true).prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..24),
    ];
    let mode = prop_oneof![
        3 => Just(0o100_644u32),
        1 => Just(0o040_755),
        1 => Just(0o120_777),
        1 => prop::sample::select(vec![0o010_644, 0o020_644, 0o060_644, 0o140_644, 0o160_000, 0]),
        1 => any::<u16>().prop_map(u32::from),
    ];
    let field = prop::sample::select(vec![
        Field::LocalCompressed,
        Field::LocalUncompressed,
        Field::CentralCompressed,
        Field::CentralUncompressed,
        Field::Crc,
        Field::LocalOffset,
        Field::NameLength,
    ]);
    let lie = prop_oneof![
        4 => Just(None),
        1 => (field, prop_oneof![Just(0u32), Just(u32::MAX), 0u32..100_000, any::<u32>()]).prop_map(Some),
    ];
    (name, content(), mode, any::<bool>(), lie).prop_map(|(name, body, mode, utf8, lie)| RawEntry {
        name,
        body,
        mode,
        utf8,
        lie,
    })
}

/// Whether the rules refuse an entry named `name` with `mode`, before reading its data.
fn refused_by_name_or_mode(name: &str, mode: Option<u32>) -> bool {
    let link = mode.is_some_and(|m| m & 0o170_000 == 0o120_000);
    safe_path(name).is_none() || link
}

#[test]
fn hand_written_archives_with_lying_headers_stay_contained() {
    let entries = prop::collection::vec(raw_entry(), 0..8);
    check(256, &entries, |entries| {
        let archive = raw_zip(&entries);
        let limits = limits();
        let place = place(&[]);
        let result = unpack(&place, &archive, &limits);
        contained(&place, &result, &limits, &[])?;
        // Duplicate names collapse to one entry when the crate reads the archive, and names
        // are decoded as UTF-8 or CP437, so the entries to judge are the ones it reads back.
        if result.is_ok() {
            let mut zip = zip::ZipArchive::new(Cursor::new(&archive)).expect("it was read once");
            for i in 0..zip.len() {
                let entry = zip.by_index(i).expect("it was read once");
                prop_assert!(
                    !refused_by_name_or_mode(entry.name(), entry.unix_mode()),
                    "accepted {:?} (mode {:?})",
                    entry.name(),
                    entry.unix_mode()
                );
            }
        }
        Ok(())
    });
}

#[derive(Debug, Clone)]
enum Mangle {
    Flip(prop::sample::Index, u8),
    Truncate(prop::sample::Index),
    Overwrite(prop::sample::Index, u32),
    /// A size field of the central directory, the `n`th entry's.
    CentralSize(prop::sample::Index, bool, u32),
}

fn mangle(archive: &mut Vec<u8>, how: &Mangle) {
    if archive.is_empty() {
        return;
    }
    match how {
        Mangle::Flip(at, bits) => {
            let at = at.index(archive.len());
            archive[at] ^= (*bits).max(1);
        }
        Mangle::Truncate(at) => archive.truncate(at.index(archive.len())),
        Mangle::Overwrite(at, value) => {
            let at = at.index(archive.len());
            for (i, byte) in value.to_le_bytes().into_iter().enumerate() {
                if let Some(b) = archive.get_mut(at + i) {
                    *b = byte;
                }
            }
        }
        Mangle::CentralSize(which, uncompressed, value) => {
            let headers: Vec<usize> = archive
                .windows(4)
                .enumerate()
                .filter(|(_, w)| *w == [0x50, 0x4b, 0x01, 0x02])
                .map(|(i, _)| i)
                .collect();
            if headers.is_empty() {
                return;
            }
            let at = headers[which.index(headers.len())] + if *uncompressed { 24 } else { 20 };
            if let Some(field) = archive.get_mut(at..at + 4) {
                field.copy_from_slice(&value.to_le_bytes());
            }
        }
    }
}

#[test]
fn mangled_archives_stay_contained() {
    let how = prop_oneof![
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(a, b)| Mangle::Flip(a, b)),
        any::<prop::sample::Index>().prop_map(Mangle::Truncate),
        (any::<prop::sample::Index>(), any::<u32>()).prop_map(|(a, v)| Mangle::Overwrite(a, v)),
        (
            any::<prop::sample::Index>(),
            any::<bool>(),
            prop_oneof![Just(0u32), Just(u32::MAX), 0u32..1_000_000, any::<u32>()]
        )
            .prop_map(|(a, u, v)| Mangle::CentralSize(a, u, v)),
    ];
    let input = (
        prop::collection::vec(entry(true), 1..6),
        prop::collection::vec(how, 1..4),
    );
    check(256, &input, |(entries, hows)| {
        let (mut archive, _) = write_zip(&entries);
        for how in &hows {
            mangle(&mut archive, how);
        }
        let limits = limits();
        let place = place(&[]);
        let result = unpack(&place, &archive, &limits);
        contained(&place, &result, &limits, &[])?;
        Ok(())
    });
}

#[test]
fn random_bytes_are_refused_cleanly() {
    let bytes = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..1024),
        // An end-of-central-directory record after noise, pointing anywhere.
        (
            prop::collection::vec(any::<u8>(), 0..512),
            prop::collection::vec(any::<u8>(), 18)
        )
            .prop_map(|(noise, tail)| [noise, b"PK\x05\x06".to_vec(), tail].concat()),
        // A local header and a central one, with random fields.
        (
            prop::collection::vec(any::<u8>(), 26..200),
            prop::collection::vec(any::<u8>(), 42..200),
            prop::collection::vec(any::<u8>(), 18),
        )
            .prop_map(|(local, central, end)| {
                [
                    b"PK\x03\x04".to_vec(),
                    local,
                    b"PK\x01\x02".to_vec(),
                    central,
                    b"PK\x05\x06".to_vec(),
                    end,
                ]
                .concat()
            }),
    ];
    check(256, &bytes, |bytes| {
        let limits = limits();
        let place = place(&[]);
        let result = unpack(&place, &bytes, &limits);
        contained(&place, &result, &limits, &[])?;
        Ok(())
    });
}

#[test]
fn the_ratio_cap_stops_exactly_the_dense_entries() {
    let input = (0usize..(2 << 20), 0u64..(1 << 20), 1u64..2000);
    check(64, &input, |(zeros, grace, ratio)| {
        let (archive, _) = write_zip(&[Entry {
            name: "zeros.csv".into(),
            kind: Kind::File(vec![0; zeros]),
            deflate: true,
        }]);
        let compressed = zip::ZipArchive::new(Cursor::new(&archive))
            .and_then(|mut z| z.by_index(0).map(|e| e.compressed_size()))
            .expect("our own archive reads");
        let limits = ExtractLimits {
            max_entries: 1,
            max_total_bytes: 4 << 20,
            max_ratio: ratio,
            ratio_grace_bytes: grace,
        };
        let place = place(&[]);
        let result = unpack(&place, &archive, &limits);
        contained(&place, &result, &limits, &[])?;
        let n = zeros as u64;
        let dense = n > grace && n / compressed.max(1) > ratio;
        match result {
            Err(ExtractError::RatioExceeded { .. }) => prop_assert!(dense, "{n} / {compressed}"),
            Ok(_) => prop_assert!(!dense, "{n} / {compressed} passed the ratio {ratio}"),
            Err(other) => prop_assert!(false, "{other}"),
        }
        Ok(())
    });
}

#[test]
fn long_names_are_refused_or_unpacked_with_short_messages() {
    let long = prop_oneof![
        ("[a-z]{1,4}", 100usize..4000).prop_map(|(s, n)| s.repeat(n)),
        ("\\PC{1,3}", 100usize..3000).prop_map(|(s, n)| s.repeat(n)),
        (100usize..2000).prop_map(|n| format!("{}evil", "../".repeat(n))),
        (10usize..1500).prop_map(|n| "a/".repeat(n) + "x.csv"),
    ];
    let input = (long, any::<bool>());
    check(64, &input, |(name, dir)| {
        // A zip name holds at most 65,535 bytes.
        let mut name = name;
        while name.len() > 65_000 {
            name.pop();
        }
        let entries = [Entry {
            name,
            kind: if dir {
                Kind::Dir
            } else {
                Kind::File(b"x".to_vec())
            },
            deflate: false,
        }];
        let (archive, stored) = write_zip(&entries);
        prop_assume!(!stored.is_empty());
        let limits = limits();
        let place = place(&[]);
        let result = unpack(&place, &archive, &limits);
        contained(&place, &result, &limits, &[])?;
        Ok(())
    });
}
