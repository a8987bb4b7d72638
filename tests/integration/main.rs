//! The workspace's one integration test binary: a module per area, helpers in `support`.
//!
//! Tests that need the guest runtime install it on first use (into `$KS_HOME`) and share one
//! precompiled module per machine through the on-disk cache.

mod api;
mod cli;
mod deploy;
mod disk;
mod docker;
mod escape;
mod fetch;
mod fuzz;
mod images;
mod live;
mod llm;
mod modules;
mod observe;
mod pipeline;
mod policies;
mod prewarm;
mod queue;
mod redis_server;
mod s3_server;
mod sandbox;
mod score;
mod search;
mod service;
mod store;
mod support;
mod tables;
mod template;
mod text;
mod web;
