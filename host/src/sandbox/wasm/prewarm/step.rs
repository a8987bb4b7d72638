//! The steps of building the image, as progress output names them.

use std::fmt;

/// A step of building the pre-warmed image.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PrewarmStep {
    /// No image is cached: building one.
    Start,
    /// Compiling the instrumented runtime.
    CompilingInstrumented,
    /// Importing the scientific stack (twice: the audit needs two images).
    Importing,
    /// Auditing the images for frozen randomness.
    Auditing,
    /// Compiling the image for this machine.
    Compiling,
    /// The image is built and cached.
    Ready {
        /// The audit's summary.
        summary: String,
    },
    /// No image: runs use the runtime's own snapshot.
    Failed {
        /// Why.
        reason: String,
    },
}

impl fmt::Display for PrewarmStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("pre-warmed guest: ")?;
        match self {
            Self::Start => f.write_str(
                "building the image with numpy, pandas, scipy and scikit-learn imported \
                 (once per machine; several minutes)",
            ),
            Self::CompilingInstrumented => f.write_str("compiling the instrumented runtime"),
            Self::Importing => f.write_str("importing the scientific stack (twice)"),
            Self::Auditing => f.write_str("auditing the images for frozen randomness"),
            Self::Compiling => f.write_str("compiling the image for this machine"),
            Self::Ready { summary } => write!(f, "ready ({summary})"),
            Self::Failed { reason } => {
                write!(f, "unavailable, runs use the plain guest: {reason}")
            }
        }
    }
}
