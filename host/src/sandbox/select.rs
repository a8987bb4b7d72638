//! Choosing the backend for a run: what the caller asked for, limited by what the policy allows.

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
    /// The Docker backend is not part of this build yet.
    #[error(
        "the docker backend is not available in this build yet; use --backend wasm \
         (scripts that need native libraries such as xgboost cannot run here)"
    )]
    DockerNotBuilt,
}

/// Picks the backend for a run.
///
/// # Errors
/// When the choice is not allowed by the policy or cannot run on this host.
pub fn select_backend(choice: BackendChoice, allowed: &[Backend]) -> Result<Backend, SelectError> {
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
        BackendChoice::Docker => check(Backend::Docker).and(Err(SelectError::DockerNotBuilt)),
        BackendChoice::Auto => check(Backend::Wasm),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_means_wasm_while_docker_is_not_built() {
        let both = [Backend::Wasm, Backend::Docker];
        assert_eq!(
            select_backend(BackendChoice::Auto, &both),
            Ok(Backend::Wasm)
        );
        assert_eq!(
            select_backend(BackendChoice::Docker, &both),
            Err(SelectError::DockerNotBuilt)
        );
        assert!(matches!(
            select_backend(BackendChoice::Wasm, &[Backend::Docker]),
            Err(SelectError::NotAllowed { .. })
        ));
    }
}
