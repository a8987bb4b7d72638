//! Choosing the backend for a run: what the caller asked for, limited by what the policy allows
//! and by what this host has. The one place that decides it, for `sandbox run` and the solver
//! alike; its errors are read by people and, on a failed attempt, by the code generator.

use super::Backend;
use super::modules::{backend_has, known_module};

/// The backend a caller asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum BackendChoice {
    /// The WASI guest.
    Wasm,
    /// The Docker container.
    Docker,
    /// The policy's first allowed backend that can run the script.
    #[default]
    Auto,
}

/// Why no backend can run a script.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// The caller asked for a backend the policy does not allow.
    #[error("the policy does not allow the {asked} backend (allowed: {allowed})")]
    NotAllowed {
        /// The backend asked for.
        asked: Backend,
        /// The policy's list.
        allowed: String,
    },
    /// The script imports native libraries and the policy does not allow Docker.
    #[error(
        "the script imports {modules}, which only the docker backend has, and the policy does \
         not allow docker (allowed: {allowed}); {NATIVE_HINT}"
    )]
    NeedsDocker {
        /// The native-only modules imported.
        modules: String,
        /// The policy's list.
        allowed: String,
    },
    /// The script imports modules only the guest has and modules only Docker has.
    #[error(
        "the script imports {guest_only}, which only the wasm guest has, and {docker_only}, \
         which only the docker backend has: no backend has both, so import from one side only"
    )]
    NoBackendHasAll {
        /// The modules only the guest has.
        guest_only: String,
        /// The modules only the Docker image has.
        docker_only: String,
    },
    /// The script imports native libraries and this host has no Docker daemon.
    #[error(
        "the script imports {modules}, which only the docker backend has, and no Docker daemon \
         is available on this host; {NATIVE_HINT}"
    )]
    NoDocker {
        /// The native-only modules imported.
        modules: String,
    },
    /// None of the backends the policy allows is available on this host.
    #[error("no sandbox the policy allows ({allowed}) is available on this host")]
    NoneAvailable {
        /// The policy's list.
        allowed: String,
    },
}

/// What the generator should do instead of importing a native-only library.
const NATIVE_HINT: &str = "use numpy, pandas, scipy and scikit-learn only (e.g. \
                           HistGradientBoosting instead of xgboost or lightgbm)";

/// Picks the backend for running `script`: `auto` takes the policy's first allowed backend that
/// is `available` on this host and has every module the script imports (a static scan of its
/// imports, read against each backend's list of modules). Only modules some backend lists
/// decide: the standard library, the script's own files and libraries no backend has leave the
/// choice to the policy's order (and the latter fail with an import error the generator reads).
/// An explicit choice is checked against the policy only: connecting to it says clearly enough
/// when it is missing.
///
/// # Errors
/// When the choice is not allowed by the policy, or no allowed and available backend can run
/// the script.
pub fn select_backend(
    choice: BackendChoice,
    allowed: &[Backend],
    available: &[Backend],
    script: &str,
) -> Result<Backend, SelectError> {
    let list = || {
        allowed
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let check = |asked: Backend| {
        if allowed.contains(&asked) {
            Ok(asked)
        } else {
            Err(SelectError::NotAllowed {
                asked,
                allowed: list(),
            })
        }
    };
    match choice {
        BackendChoice::Wasm => check(Backend::Wasm),
        BackendChoice::Docker => check(Backend::Docker),
        BackendChoice::Auto => {
            let imported: Vec<String> = imported_modules(script)
                .into_iter()
                .filter(|m| known_module(m))
                .collect();
            let missing = |backend: Backend| -> Vec<String> {
                imported
                    .iter()
                    .filter(|m| !backend_has(backend, m))
                    .cloned()
                    .collect()
            };
            let usable = |b: &&Backend| available.contains(b) && missing(**b).is_empty();
            if let Some(backend) = allowed.iter().find(usable) {
                return Ok(*backend);
            }
            let (docker_only, guest_only) = (missing(Backend::Wasm), missing(Backend::Docker));
            if !docker_only.is_empty() && !guest_only.is_empty() {
                return Err(SelectError::NoBackendHasAll {
                    guest_only: guest_only.join(", "),
                    docker_only: docker_only.join(", "),
                });
            }
            if !docker_only.is_empty() {
                let modules = docker_only.join(", ");
                return Err(if allowed.contains(&Backend::Docker) {
                    SelectError::NoDocker { modules }
                } else {
                    SelectError::NeedsDocker {
                        modules,
                        allowed: list(),
                    }
                });
            }
            // Modules only the guest has, with no guest to run on: the run's import error
            // says so, as it would for any library no backend has.
            allowed
                .iter()
                .find(|b| available.contains(b))
                .copied()
                .ok_or_else(|| SelectError::NoneAvailable { allowed: list() })
        }
    }
}

/// The top-level modules a Python script imports, from every import form the scan can read
/// without running the code: `import a, b`, `from a.b import c`, statements sharing a line
/// (`import a; import b`), statements at any indentation (inside functions and `try` blocks),
/// and `__import__("a")` / `importlib.import_module("a.b")` with a literal name.
pub fn imported_modules(script: &str) -> Vec<String> {
    let mut modules: Vec<String> = Vec::new();
    let mut add = |name: &str| {
        let top = name.trim().split([' ', '.']).next().unwrap_or_default();
        if !top.is_empty()
            && top.chars().all(|c| c.is_alphanumeric() || c == '_')
            && !modules.iter().any(|m| m == top)
        {
            modules.push(top.to_owned());
        }
    };
    for line in script.lines() {
        for call in ["__import__(", "import_module("] {
            for (at, _) in line.match_indices(call) {
                if let Some(name) = literal_argument(&line[at + call.len()..]) {
                    add(name);
                }
            }
        }
        // `import a; import b` is two statements on one line.
        for statement in line.split(';') {
            let statement = statement.trim_start();
            if let Some(rest) = statement.strip_prefix("import ") {
                rest.split(',').for_each(&mut add);
            } else if let Some(rest) = statement.strip_prefix("from ") {
                add(rest.split_whitespace().next().unwrap_or_default());
            }
        }
    }
    modules
}

/// The name in a call's first argument when it is a string literal: `"a.b")` gives `a.b`.
fn literal_argument(after_paren: &str) -> Option<&str> {
    let rest = after_paren.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let body = &rest[1..];
    body.find(quote).map(|end| &body[..end])
}

/// The modules `script` imports that only the Docker backend has.
pub fn docker_only_imports(script: &str) -> Vec<String> {
    imported_modules(script)
        .into_iter()
        .filter(|m| backend_has(Backend::Docker, m) && !backend_has(Backend::Wasm, m))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_imports_anywhere_but_not_in_strings_of_other_statements() {
        let script = "import numpy as np, pandas
from sklearn.ensemble import X
def f():
    import xgboost
                      try:
    from lightgbm import LGBMRegressor
except ImportError:
    pass
                      print('import torch')
import os.path
";
        assert_eq!(
            imported_modules(script),
            ["numpy", "pandas", "sklearn", "xgboost", "lightgbm", "os"]
        );
        assert_eq!(docker_only_imports(script), ["xgboost", "lightgbm"]);
    }

    #[test]
    fn statements_sharing_a_line_are_each_read() {
        assert_eq!(
            imported_modules("import xgboost; import os\nx = 1; from lightgbm import X\n"),
            ["xgboost", "os", "lightgbm"]
        );
        assert_eq!(
            docker_only_imports("import os; import xgboost"),
            ["xgboost"]
        );
    }

    #[test]
    fn literal_dynamic_imports_are_read() {
        let script = "m = __import__('lightgbm')\nimport importlib\n\
                      cb = importlib.import_module( \"catboost.core\" )\n\
                      x = __import__(name)\n";
        assert_eq!(
            imported_modules(script),
            ["lightgbm", "importlib", "catboost"]
        );
    }

    #[test]
    fn auto_routes_by_what_each_backend_has() {
        let both = [Backend::Wasm, Backend::Docker];
        let pick = |script| select_backend(BackendChoice::Auto, &both, &both, script);
        assert_eq!(
            pick("import seaborn, matplotlib.pyplot as plt\n"),
            Ok(Backend::Wasm)
        );
        assert_eq!(pick("import xgboost; import os\n"), Ok(Backend::Docker));
        assert_eq!(
            pick("from lightgbm import LGBMRegressor\n"),
            Ok(Backend::Docker)
        );
        assert_eq!(pick("def f():\n    import catboost\n"), Ok(Backend::Docker));
        assert_eq!(
            pick("import pandas\nimport torch\n"),
            Ok(Backend::Wasm),
            "a library no backend has goes where the policy prefers, and fails there"
        );
        assert_eq!(
            pick("import seaborn\nimport lightgbm\n"),
            Err(SelectError::NoBackendHasAll {
                guest_only: "seaborn".into(),
                docker_only: "lightgbm".into()
            })
        );
        assert_eq!(
            select_backend(
                BackendChoice::Auto,
                &[Backend::Docker],
                &both,
                "import seaborn\n"
            ),
            Ok(Backend::Docker),
            "with no guest allowed, the run's import error speaks"
        );
    }

    #[test]
    fn auto_takes_docker_only_for_native_imports() {
        let both = [Backend::Wasm, Backend::Docker];
        let plain = "import pandas\n";
        let native = "import pandas\nimport xgboost\n";
        let pick =
            |choice, allowed: &[Backend], script| select_backend(choice, allowed, &both, script);
        assert_eq!(pick(BackendChoice::Auto, &both, plain), Ok(Backend::Wasm));
        assert_eq!(
            pick(BackendChoice::Auto, &both, native),
            Ok(Backend::Docker)
        );
        assert_eq!(
            pick(
                BackendChoice::Auto,
                &[Backend::Docker, Backend::Wasm],
                plain
            ),
            Ok(Backend::Docker),
            "the policy's order is its preference"
        );
        assert_eq!(
            pick(BackendChoice::Auto, &[Backend::Wasm], native),
            Err(SelectError::NeedsDocker {
                modules: "xgboost".to_owned(),
                allowed: "wasm".to_owned()
            })
        );
        assert_eq!(
            pick(BackendChoice::Docker, &both, plain),
            Ok(Backend::Docker)
        );
        assert!(matches!(
            pick(BackendChoice::Wasm, &[Backend::Docker], plain),
            Err(SelectError::NotAllowed { .. })
        ));
    }

    #[test]
    fn auto_takes_only_what_the_host_has() {
        let both = [Backend::Wasm, Backend::Docker];
        let wasm_only = [Backend::Wasm];
        let native = "import xgboost\n";
        assert_eq!(
            select_backend(
                BackendChoice::Auto,
                &[Backend::Docker, Backend::Wasm],
                &wasm_only,
                "x = 1\n"
            ),
            Ok(Backend::Wasm),
            "a missing daemon skips docker for code the guest can run"
        );
        assert_eq!(
            select_backend(BackendChoice::Auto, &both, &wasm_only, native),
            Err(SelectError::NoDocker {
                modules: "xgboost".into()
            })
        );
        assert_eq!(
            select_backend(BackendChoice::Auto, &[Backend::Docker], &[], "x = 1\n"),
            Err(SelectError::NoneAvailable {
                allowed: "docker".into()
            })
        );
        let hint = SelectError::NoDocker {
            modules: "xgboost".into(),
        }
        .to_string();
        assert!(
            hint.contains("HistGradientBoosting instead of xgboost"),
            "{hint}"
        );
    }
}
