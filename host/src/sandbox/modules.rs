//! What each backend can import: one list per backend, kept as data beside what it describes
//! (`guest-runtime/guest-modules.txt` beside the runtime lock, `sandbox-fallback/image/modules.txt`
//! beside the image's pins), each tested against the real backend by integration tests.
//!
//! The backend selection routes by these lists and the LLM prompt names them, so the two never
//! disagree with each other or with what a run finds.

use std::sync::OnceLock;

use super::Backend;

/// Libraries Kaggle code reaches for that the guest lacks; the prompt names them as absent, and
/// as present on Docker when the image has them. A unit test checks none is in the guest's list.
pub const WANTED_NOT_IN_GUEST: [&str; 8] = [
    "xgboost",
    "lightgbm",
    "catboost",
    "pyarrow",
    "polars",
    "torch",
    "tensorflow",
    "keras",
];

/// The third-party modules (by top-level import name) that `backend` has, sorted
/// case-insensitively. The standard library is not listed: both backends have it.
pub fn backend_modules(backend: Backend) -> &'static [&'static str] {
    static GUEST: OnceLock<Vec<&'static str>> = OnceLock::new();
    static DOCKER: OnceLock<Vec<&'static str>> = OnceLock::new();
    match backend {
        Backend::Wasm => GUEST.get_or_init(|| parse_list(ks_guest_runtime::GUEST_MODULES_TXT)),
        Backend::Docker => {
            DOCKER.get_or_init(|| parse_list(ks_sandbox_fallback::IMAGE_MODULES_TXT))
        }
    }
}

/// Whether `backend` has the top-level module `name`.
pub fn backend_has(backend: Backend, name: &str) -> bool {
    backend_modules(backend).contains(&name)
}

/// Whether any backend's list names `name`: only such modules decide a backend. The standard
/// library, the script's own files and libraries no backend has (which fail wherever they run,
/// with an import error the generator reads) leave the choice to the policy's order.
pub fn known_module(name: &str) -> bool {
    [Backend::Wasm, Backend::Docker]
        .into_iter()
        .any(|backend| backend_has(backend, name))
}

/// One name per line; `#` starts a comment; blank lines are skipped.
fn parse_list(text: &'static str) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = text
        .lines()
        .map(|line| line.split('#').next().unwrap_or_default().trim())
        .filter(|name| !name.is_empty())
        .collect();
    names.sort_by_key(|name| name.to_lowercase());
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lists_are_import_names_and_hold_what_the_issue_names() {
        for backend in [Backend::Wasm, Backend::Docker] {
            let list = backend_modules(backend);
            assert!(!list.is_empty());
            for name in list {
                assert!(
                    name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "{backend}: {name:?}"
                );
            }
        }
        for name in ["matplotlib", "seaborn", "PIL", "statsmodels", "sklearn"] {
            assert!(backend_has(Backend::Wasm, name), "{name}");
        }
        for name in ["xgboost", "lightgbm", "catboost", "sklearn", "pandas"] {
            assert!(backend_has(Backend::Docker, name), "{name}");
        }
        assert!(
            !backend_has(Backend::Wasm, "host"),
            "the runtime's door is not offered"
        );
    }

    #[test]
    fn none_of_the_wanted_libraries_is_in_the_guest() {
        for name in WANTED_NOT_IN_GUEST {
            assert!(!backend_has(Backend::Wasm, name), "{name}");
        }
    }

    #[test]
    fn comments_and_blank_lines_are_not_names() {
        assert_eq!(parse_list("# head\nb\n\na  # why\nB\na\n"), ["a", "b", "B"]);
    }
}
