//! The sandbox image: its pinned tag and the offline recipe that builds it (a Debian rootfs from
//! mmdebstrap plus `docker import`; `image/Dockerfile` is the same image for registry users).

use std::process::Stdio;

use bollard::query_parameters::TagImageOptionsBuilder;

use crate::error::is_not_found;
use crate::{DockerError, DockerRunner};

/// The image's repository name.
pub const IMAGE_REPO: &str = "kaggle-solver/native";
/// The pinned tag of `kaggle-solver/native`, from `image/TAG`.
pub const IMAGE_TAG: &str = include_str!("../image/TAG");
/// The offline recipe, run by `kaggle-solver runtime install --docker`.
pub const IMAGE_RECIPE: &str = include_str!("../image/build-offline.sh");
/// The third-party modules the image has, by import name (`image/modules.txt`).
pub const IMAGE_MODULES_TXT: &str = include_str!("../image/modules.txt");
/// Every file the recipe reads, by name beside it: it is written out whole before it runs.
const RECIPE_FILES: [(&str, &str); 5] = [
    ("build-offline.sh", IMAGE_RECIPE),
    ("TAG", IMAGE_TAG),
    (
        "requirements.txt",
        include_str!("../image/requirements.txt"),
    ),
    (
        "install-wheels.sh",
        include_str!("../image/install-wheels.sh"),
    ),
    ("modules.txt", IMAGE_MODULES_TXT),
];

/// The pinned image, e.g. `kaggle-solver/native:0.1.0-bookworm`.
pub fn pinned_image() -> String {
    format!("{IMAGE_REPO}:{}", IMAGE_TAG.trim())
}

impl DockerRunner {
    /// Whether `image` is present on the daemon.
    ///
    /// # Errors
    /// When the daemon cannot be asked.
    pub async fn image_present(&self, image: &str) -> Result<bool, DockerError> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(DockerError::api("inspecting the sandbox image")(e)),
        }
    }

    /// Builds the pinned image with the offline recipe if it is missing, showing the recipe's
    /// progress on stderr, and tags it `kaggle-solver/native:latest` too. Returns whether it
    /// built anything.
    ///
    /// # Errors
    /// [`DockerError::Build`] when the recipe fails.
    pub async fn ensure_pinned_image(&self) -> Result<bool, DockerError> {
        if self.image_present(&pinned_image()).await? {
            self.tag_latest().await?;
            return Ok(false);
        }
        let dir = tempfile::Builder::new()
            .prefix("ks-image-recipe-")
            .tempdir()
            .map_err(|e| DockerError::io("creating a folder for the image recipe", e))?;
        let script = dir.path().join("build-offline.sh");
        for (name, text) in RECIPE_FILES {
            std::fs::write(dir.path().join(name), text)
                .map_err(|e| DockerError::io("writing the image recipe", e))?;
        }
        let status = tokio::process::Command::new("bash")
            .arg(&script)
            .env("DOCKER_HOST", &self.host)
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .status()
            .await
            .map_err(|e| DockerError::io("running bash for the image recipe", e))?;
        if !status.success() {
            return Err(DockerError::Build(format!(
                "the offline recipe exited with {status} (see its output above)"
            )));
        }
        if !self.image_present(&pinned_image()).await? {
            return Err(DockerError::Build(format!(
                "the recipe succeeded but {} is missing",
                pinned_image()
            )));
        }
        self.tag_latest().await?;
        Ok(true)
    }

    /// Points `kaggle-solver/native:latest` (the default policy's image) at the pinned image.
    async fn tag_latest(&self) -> Result<(), DockerError> {
        let options = TagImageOptionsBuilder::default()
            .repo(IMAGE_REPO)
            .tag("latest")
            .build();
        self.docker
            .tag_image(&pinned_image(), Some(options))
            .await
            .map_err(DockerError::api("tagging the sandbox image as latest"))
    }
}
