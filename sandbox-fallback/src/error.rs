//! What can go wrong on the host side of a Docker run. Anything the script itself does (a crash,
//! a limit) is a [`crate::RunReport`], not an error.

/// Why the runner could not run a script.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// No Docker daemon answers.
    #[error("no Docker daemon answers at {host} (start dockerd, or set DOCKER_HOST): {source}")]
    Unreachable {
        /// The address tried.
        host: String,
        /// bollard's words.
        #[source]
        source: bollard::errors::Error,
    },
    /// The sandbox image is not on this host.
    #[error(
        "the Docker image {image} is not present; build it with \
         `kaggle-solver runtime install --docker`"
    )]
    ImageMissing {
        /// The image asked for.
        image: String,
    },
    /// A Docker API call failed.
    #[error("{context}: {source}")]
    Api {
        /// What was being done.
        context: &'static str,
        /// bollard's words.
        #[source]
        source: bollard::errors::Error,
    },
    /// A host file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The run cannot happen as asked, whatever is retried.
    #[error("invalid Docker run: {0}")]
    Invalid(String),
    /// Building the sandbox image failed.
    #[error("building the Docker image failed: {0}")]
    Build(String),
}

impl DockerError {
    /// Whether the same run may succeed later (a daemon hiccup), as opposed to one that fails
    /// until something is changed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Unreachable { .. } | Self::Io { .. } => true,
            Self::Api { source, .. } => !matches!(
                source,
                bollard::errors::Error::DockerResponseServerError { status_code, .. }
                    if *status_code < 500
            ),
            Self::ImageMissing { .. } | Self::Invalid(_) | Self::Build(_) => false,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn api(context: &'static str) -> impl FnOnce(bollard::errors::Error) -> Self {
        move |source| Self::Api { context, source }
    }
}

/// Whether a bollard error is the daemon's "no such …" (404).
pub(crate) fn is_not_found(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Whether a removal failed because another removal of the same container is under way (two
/// sandboxes of one host reaping the same orphan at once): it goes either way.
pub(crate) fn is_removal_in_progress(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 409,
            message,
        } if message.contains("already in progress")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(status_code: u16, message: &str) -> bollard::errors::Error {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message: message.to_owned(),
        }
    }

    #[test]
    fn a_removal_under_way_elsewhere_is_told_from_other_conflicts() {
        let racing = "removal of container 2f6e is already in progress";
        assert!(is_removal_in_progress(&server(409, racing)));
        assert!(!is_removal_in_progress(&server(
            409,
            "You cannot remove a running container"
        )));
        assert!(!is_removal_in_progress(&server(500, racing)));
        assert!(is_not_found(&server(404, "No such container")));
    }
}
