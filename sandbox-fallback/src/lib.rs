//! The Docker fallback sandbox, for generated code that needs native libraries the WASI guest
//! lacks (xgboost, lightgbm, torch).
//!
//! Not built yet: this leaf crate holds its place in the workspace so that `host` can adapt it
//! with `impl Sandbox for DockerSandbox` without a dependency cycle. Until it lands,
//! `--backend docker` is a clear error and such code fails its attempt with a message that
//! tells the generator to use scikit-learn.
