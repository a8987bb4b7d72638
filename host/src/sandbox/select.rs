//! Choosing the backend for a run: what the caller asked for, limited by what the policy allows
//! and by what this host has. The one place that decides it, for `sandbox run` and the solver
//! alike; its errors are read by people and, on a failed attempt, by the code generator.

use super::Backend;

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
/// imports). An explicit choice is checked against the policy only: connecting to it says
/// clearly enough when it is missing.
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
            let native = native_only_imports(script);
            let usable = |b: &&Backend| {
                available.contains(b) && (native.is_empty() || **b == Backend::Docker)
            };
            match allowed.iter().find(usable) {
                Some(backend) => Ok(*backend),
                None if native.is_empty() => Err(SelectError::NoneAvailable { allowed: list() }),
                None if allowed.contains(&Backend::Docker) => Err(SelectError::NoDocker {
                    modules: native.join(", "),
                }),
                None => Err(SelectError::NeedsDocker {
                    modules: native.join(", "),
                    allowed: list(),
                }),
            }
        }
    }
}

/// Native-extension libraries the WASI guest does not have. Code importing one of these needs
/// the Docker backend.
pub const NATIVE_ONLY_MODULES: &[&str] = &[
    "xgboost",
    "lightgbm",
    "catboost",
    "torch",
    "torchvision",
    "tensorflow",
    "keras",
    "jax",
    "cupy",
    "cv2",
    "numba",
    "polars",
    "pyarrow",
];

/// The top-level modules a Python script imports, from its `import` and `from` statements at
/// any indentation (so imports inside functions and `try` blocks count too).
pub fn imported_modules(script: &str) -> Vec<String> {
    let mut modules = Vec::new();
    // `import a; import b` is two statements on one line.
    for line in script.lines().flat_map(|l| l.split(';')) {
        let line = line.trim_start();
        let names: Vec<&str> = if let Some(rest) = line.strip_prefix("import ") {
            rest.split(',').collect()
        } else if let Some(rest) = line.strip_prefix("from ") {
            rest.split_whitespace().next().into_iter().collect()
        } else {
            continue;
        };
        for name in names {
            let top = name.trim().split([' ', '.']).next().unwrap_or_default();
            if !top.is_empty()
                && top.chars().all(|c| c.is_alphanumeric() || c == '_')
                && !modules.iter().any(|m| m == top)
            {
                modules.push(top.to_owned());
            }
        }
    }
    modules
}

/// The modules `script` imports that only the Docker backend has.
pub fn native_only_imports(script: &str) -> Vec<String> {
    imported_modules(script)
        .into_iter()
        .filter(|m| NATIVE_ONLY_MODULES.contains(&m.as_str()))
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
        assert_eq!(native_only_imports(script), ["xgboost", "lightgbm"]);
    }

    #[test]
    fn statements_sharing_a_line_are_each_read() {
        assert_eq!(
            imported_modules("import xgboost; import os\nx = 1; from lightgbm import X\n"),
            ["xgboost", "os", "lightgbm"]
        );
        assert_eq!(
            native_only_imports("import os; import xgboost"),
            ["xgboost"]
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
