//! The plugin runtime: one wasmtime engine for every format plugin, each plugin compiled once
//! (and cached on disk), pre-linked into an `InstancePre`, and instantiated fresh for every call
//! with a memory limit and a deadline.

pub mod bindings;
pub mod host;
pub mod kit;
mod runtime;

pub use bindings::current as wit;
pub use host::{BlobHandle, RegistryView, TreeHandle};
pub use runtime::{CallError, CallStats, Limits, Plugin, PluginRuntime};

/// The plugins built into the `sluice` binary: (crate name, component bytes).
pub mod builtin {
    include!(concat!(env!("OUT_DIR"), "/builtin_plugins.rs"));
}
