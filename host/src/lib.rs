//! Sluice: a package registry whose formats are WebAssembly plugins.
//!
//! - [`plugin`]: the wasmtime runtime that loads and calls format plugins.
//! - [`store`]: SQLite metadata and the content-addressed blob store.
//! - [`registry`]: repositories, protocol requests and their effects.
//! - [`http`]: the axum server.

pub mod auth;
pub mod config;
pub mod error;
pub mod http;
pub mod plugin;
pub mod registry;
pub mod store;
