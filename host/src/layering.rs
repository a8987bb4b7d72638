//! The crate's layering, checked: data flows one way between the top-level modules, and between
//! the parts of the WASI backend, so that none of them imports one that imports it back.
//!
//! The check reads this crate's own sources (a test only: nothing here is compiled into the
//! library) and resolves every `crate::`, `super::` and `self::` path to the module it names.
//! A module's folder facade (`mod.rs`) declares all its children, so a child that uses an item
//! of its own facade closes a cycle too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, with its module path relative to the crate root
/// (`src/sandbox/wasm/run.rs` is `["sandbox", "wasm", "run"]`, a `mod.rs` its folder's).
fn modules(root: &Path) -> Vec<(Vec<String>, String)> {
    let mut out = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path
                    .strip_prefix(root)
                    .map(Path::to_path_buf)
                    .unwrap_or_default();
                let mut parts: Vec<String> = rel
                    .iter()
                    .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
                    .collect();
                if parts
                    .last()
                    .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
                {
                    parts.pop();
                }
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                out.push((parts, text));
            }
        }
    }
    out
}

/// The code of `text` without comments (doc comments included) and without its unit tests,
/// whose `super::` names the file's own module.
fn code(text: &str) -> String {
    let text = text
        .split("#[cfg(test)]\nmod tests")
        .next()
        .unwrap_or_default();
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The absolute module paths `text` (the code of module `here`) refers to: each `crate::`,
/// `super::` or `self::` path, braces expanded one level, cut at its first item.
fn references(here: &[String], text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    for start in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(at) = text[from..].find(start) {
            let at = from + at;
            from = at + start.len();
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
                continue;
            }
            let path: String = text[at..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let mut base: Vec<String> = Vec::new();
            let mut segments = path.split("::").filter(|s| !s.is_empty()).peekable();
            match segments.next() {
                Some("crate") => {}
                Some("self") => base = here.to_vec(),
                Some("super") => {
                    base = here.to_vec();
                    base.pop();
                    while segments.peek() == Some(&"super") {
                        segments.next();
                        base.pop();
                    }
                }
                _ => continue,
            }
            base.extend(segments.map(str::to_owned));
            let rest = &text[at + path.len()..];
            if path.ends_with("::") && rest.starts_with('{') {
                let inner = rest[1..].split('}').next().unwrap_or_default();
                for name in inner.split(',') {
                    let name = name.trim().split("::").next().unwrap_or_default();
                    if !name.is_empty() && name != "self" {
                        let mut full = base.clone();
                        full.push(name.to_owned());
                        out.push(full);
                    }
                }
            } else {
                out.push(base);
            }
        }
    }
    out
}

/// The edges between the children of module `folder` (and `folder` itself, as `"mod"`).
fn graph(files: &[(Vec<String>, String)], folder: &[String]) -> BTreeMap<String, BTreeSet<String>> {
    let children: BTreeSet<String> = files
        .iter()
        .filter(|(path, _)| path.len() > folder.len() && path.starts_with(folder))
        .map(|(path, _)| path[folder.len()].clone())
        .collect();
    let node_of = |path: &[String]| -> Option<String> {
        if !path.starts_with(folder) {
            return None;
        }
        match path.get(folder.len()) {
            Some(child) if children.contains(child) => Some(child.clone()),
            // An item of the folder's facade itself.
            Some(_) => Some("mod".to_owned()),
            None => None,
        }
    };
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // The facade declares every child.
    edges.insert("mod".to_owned(), children.clone());
    for (path, text) in files {
        let Some(from) = node_of(path).or_else(|| (path == folder).then(|| "mod".to_owned()))
        else {
            continue;
        };
        for target in references(path, &code(text)) {
            if let Some(to) = node_of(&target)
                && to != from
            {
                edges.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    edges
}

/// One cycle of `edges`, if there is any.
fn cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut found = stack[at..].to_vec();
            found.push(node.to_owned());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, edges, stack, done) {
                return Some(found);
            }
        }
        stack.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|node| visit(node, edges, &mut Vec::new(), &mut done))
}

fn source_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn top_level_modules_form_no_cycle() {
    let files = modules(&source_root());
    let mut edges = graph(&files, &[]);
    // The crate root only declares the modules; it is not a layer.
    edges.remove("mod");
    assert!(edges.contains_key("api") && edges.contains_key("worker"));
    assert!(
        !edges["api"].contains("worker") && !edges["worker"].contains("api"),
        "{edges:?}"
    );
    assert_eq!(
        cycle(&edges),
        None,
        "top-level modules import each other: {edges:?}"
    );
}

#[test]
fn the_wasi_backend_forms_no_cycle() {
    let files = modules(&source_root());
    for folder in [&["sandbox", "wasm"][..], &["sandbox", "wasm", "prewarm"]] {
        let folder: Vec<String> = folder.iter().map(|s| (*s).to_owned()).collect();
        let edges = graph(&files, &folder);
        assert!(edges["mod"].len() > 3, "{folder:?} has children: {edges:?}");
        assert_eq!(
            cycle(&edges),
            None,
            "{folder:?} imports in a circle: {edges:?}"
        );
    }
}

#[test]
fn the_check_sees_a_cycle() {
    let here = |p: &str| -> Vec<String> { p.split('/').map(str::to_owned).collect() };
    let files = vec![
        (here("a"), "use crate::b::X;".to_owned()),
        (here("b"), "fn f() { crate::c::g() }".to_owned()),
        (here("c"), "use crate::{a::Y, d};".to_owned()),
        (here("d"), "// crate::a::Z is only a comment".to_owned()),
    ];
    let mut edges = graph(&files, &[]);
    edges.remove("mod");
    let found = cycle(&edges).expect("a -> b -> c -> a");
    assert_eq!(found.first(), found.last());
    assert!(
        edges.get("d").is_none_or(BTreeSet::is_empty),
        "a comment is no import"
    );
    // A child using its own facade's items closes a cycle through the facade.
    let nested = vec![
        (here("w"), "mod x; pub struct Item;".to_owned()),
        (here("w/x"), "use super::Item;".to_owned()),
    ];
    assert!(cycle(&graph(&nested, &here("w"))).is_some());
    let clean = vec![
        (here("w"), "mod x; mod y;".to_owned()),
        (here("w/x"), "use super::y::Thing;".to_owned()),
        (here("w/y"), String::new()),
    ];
    assert_eq!(cycle(&graph(&clean, &here("w"))), None);
}
