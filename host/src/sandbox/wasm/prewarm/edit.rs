//! Small edits of a wasm module's bytes for the pre-warm build: finding functions by name and
//! adding or removing exports.
//!
//! The interpreter's internal entry points (`run_private` and friends) are not exported, but the
//! module keeps its `name` section, so they can be found by name and exported for the build, then
//! removed from the image. Every section other than the export section is copied byte for byte,
//! the same technique Wizer uses, so nothing else about the module changes.

use std::collections::HashMap;

use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
use wasm_encoder::{ExportKind, ExportSection, RawSection};
use wasmparser::{KnownCustom, Name, Parser, Payload};

/// Indices of the functions named `wanted` in the module's `name` section.
pub(crate) fn function_indices(
    wasm: &[u8],
    wanted: &[&str],
) -> wasmtime::Result<HashMap<String, u32>> {
    let mut out = HashMap::new();
    for payload in Parser::new(0).parse_all(wasm) {
        let Payload::CustomSection(custom) = payload? else {
            continue;
        };
        let KnownCustom::Name(names) = custom.as_known() else {
            continue;
        };
        for sub in names {
            if let Name::Function(map) = sub? {
                for naming in map {
                    let naming = naming?;
                    if wanted.contains(&naming.name) {
                        out.insert(naming.name.to_owned(), naming.index);
                    }
                }
            }
        }
    }
    for name in wanted {
        wasmtime::ensure!(
            out.contains_key(*name),
            "the module names no function `{name}` (is its name section stripped?)"
        );
    }
    Ok(out)
}

/// Copies `wasm` with its export section rewritten by `edit` (old exports in, new section out).
fn rewrite_exports(
    wasm: &[u8],
    mut edit: impl FnMut(&mut ExportSection, &[wasmparser::Export<'_>]) -> wasmtime::Result<()>,
) -> wasmtime::Result<Vec<u8>> {
    let mut module = wasm_encoder::Module::new();
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload?;
        if let Payload::ExportSection(reader) = &payload {
            let old = reader.clone().into_iter().collect::<Result<Vec<_>, _>>()?;
            let mut exports = ExportSection::new();
            edit(&mut exports, &old)?;
            module.section(&exports);
        } else if let Some((id, range)) = payload.as_section() {
            module.section(&RawSection {
                id,
                data: &wasm[range],
            });
        }
    }
    Ok(module.finish())
}

fn export_kind(kind: wasmparser::ExternalKind) -> wasmtime::Result<ExportKind> {
    RoundtripReencoder
        .export_kind(kind)
        .map_err(|e| wasmtime::format_err!("re-encoding an export: {e}"))
}

/// `wasm` with the functions `extra` (export name, function index) exported too.
pub(crate) fn add_function_exports(
    wasm: &[u8],
    extra: &[(&str, u32)],
) -> wasmtime::Result<Vec<u8>> {
    rewrite_exports(wasm, |out, old| {
        for e in old {
            out.export(e.name, export_kind(e.kind)?, e.index);
        }
        for (name, index) in extra {
            out.export(name, ExportKind::Func, *index);
        }
        Ok(())
    })
}

/// `wasm` without the exports `drop` selects.
pub(crate) fn strip_exports(wasm: &[u8], drop: impl Fn(&str) -> bool) -> wasmtime::Result<Vec<u8>> {
    rewrite_exports(wasm, |out, old| {
        for e in old.iter().filter(|e| !drop(e.name)) {
            out.export(e.name, export_kind(e.kind)?, e.index);
        }
        Ok(())
    })
}

/// The export names of `wasm`, in order.
pub(crate) fn export_names(wasm: &[u8]) -> wasmtime::Result<Vec<String>> {
    for payload in Parser::new(0).parse_all(wasm) {
        if let Payload::ExportSection(reader) = payload? {
            return reader.into_iter().map(|e| Ok(e?.name.to_owned())).collect();
        }
    }
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    use wasm_encoder::{
        CodeSection, Function, FunctionSection, IndirectNameMap, Instruction, NameMap, NameSection,
        TypeSection,
    };

    use super::*;

    /// A module with functions `a` (exported) and `b`, named in a name section.
    fn module() -> Vec<u8> {
        let mut types = TypeSection::new();
        types.ty().function([], []);
        let mut funcs = FunctionSection::new();
        funcs.function(0).function(0);
        let mut exports = ExportSection::new();
        exports.export("a", ExportKind::Func, 0);
        let mut code = CodeSection::new();
        for _ in 0..2 {
            let mut f = Function::new([]);
            f.instruction(&Instruction::End);
            code.function(&f);
        }
        let mut names = NameMap::new();
        names.append(0, "a");
        names.append(1, "b");
        let mut name_section = NameSection::new();
        name_section.functions(&names);
        name_section.locals(&IndirectNameMap::new());
        let mut module = wasm_encoder::Module::new();
        module
            .section(&types)
            .section(&funcs)
            .section(&exports)
            .section(&code)
            .section(&name_section);
        module.finish()
    }

    #[test]
    fn exports_are_added_and_stripped_by_name() {
        let wasm = module();
        let index = function_indices(&wasm, &["b"]).expect("b is named");
        assert_eq!(index["b"], 1);
        let err = function_indices(&wasm, &["c"]).expect_err("no c");
        assert!(err.to_string().contains("no function `c`"), "{err}");

        let with = add_function_exports(&wasm, &[("ks.b", 1)]).expect("added");
        wasmparser::validate(&with).expect("valid");
        assert_eq!(export_names(&with).expect("names"), ["a", "ks.b"]);
        let back = strip_exports(&with, |n| n.starts_with("ks.")).expect("stripped");
        assert_eq!(back, wasm, "only the export section changes");
    }
}
