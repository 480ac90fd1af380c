//! Sluice: a package registry whose formats are WebAssembly plugins.
//!
//! - [`plugin`]: the wasmtime runtime that loads and calls format plugins.
//! - [`store`]: SQLite metadata and the content-addressed blob store.
//! - [`app`]: the app state (`App`): config, store, plugins, repositories, shared signals.
//! - [`registry`]: the client protocol through a repository's plugin, git tags, the plugins' view.
//! - [`domain`]: the pure rules: the pipeline state machine and the gate.
//! - [`pipeline`]: the pipeline a push triggers, its jobs, runners' API, webhooks.
//! - [`http`]: the axum server, the one authorisation entry, and the web UI (`http::ui`).
//! - [`runner`]: `sluice runner`, which takes pipeline jobs and runs them.
//! - [`outbound`]: requests to other hosts, behind the outbound-address guard.

pub mod app;
pub mod auth;
pub mod config;
pub mod domain;
pub mod error;
pub mod git_source;
pub mod http;
pub mod outbound;
pub mod pipeline;
pub mod plugin;
pub mod registry;
pub mod runner;
pub mod store;
pub mod upstream;
