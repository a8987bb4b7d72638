//! The Docker fallback sandbox, for generated code that needs native libraries the WASI guest
//! lacks (xgboost, lightgbm, torch).
//!
//! [`DockerRunner`] drives one hardened container per run over the Docker Engine API (bollard,
//! `DOCKER_HOST` honoured): create → attach → start → wait with a deadline → inspect → remove.
//! It knows nothing of policies or of the host's `Sandbox` trait: the host adapts it, so this
//! crate stays a leaf that other tools can reuse.
//!
//! The hardening is in [`spec`]; ownership labels and the startup reaper that removes
//! containers left behind by a crashed process are in [`owner`]; collecting `/output` without
//! following links is in [`output`].

mod error;
mod image;
pub mod output;
pub mod owner;
mod run;
pub mod scratch;
pub mod spec;
mod tail;

use bollard::Docker;

pub use error::DockerError;
pub use image::{IMAGE_MODULES_TXT, IMAGE_RECIPE, IMAGE_TAG, pinned_image};
pub use run::{RunReport, Stop};
pub use spec::RunSpec;
pub use tail::Tail;

/// A connection to a Docker daemon that runs sandboxed scripts.
#[derive(Debug, Clone)]
pub struct DockerRunner {
    docker: Docker,
    owner: owner::Owner,
    host: String,
}

impl DockerRunner {
    /// Connects to the daemon named by `DOCKER_HOST` (default: the local socket), agrees on an
    /// API version and checks that it answers.
    ///
    /// # Errors
    /// [`DockerError::Unreachable`] when no daemon answers.
    pub async fn connect() -> Result<Self, DockerError> {
        let host = std::env::var("DOCKER_HOST")
            .unwrap_or_else(|_| "unix:///var/run/docker.sock".to_owned());
        let unreachable = |source| DockerError::Unreachable {
            host: host.clone(),
            source,
        };
        let docker = Docker::connect_with_defaults().map_err(unreachable)?;
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        docker.ping().await.map_err(unreachable)?;
        Ok(Self {
            docker,
            owner: owner::Owner::current()?,
            host,
        })
    }

    /// The daemon address this runner talks to.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The labels every container of this process carries.
    pub fn owner(&self) -> &owner::Owner {
        &self.owner
    }
}
