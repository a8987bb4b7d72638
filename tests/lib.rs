//! Nothing lives here: the workspace's integration tests are the `integration` test binary in
//! `integration/`, one module per area with shared helpers in `support`.
