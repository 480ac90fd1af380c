//! Typed bindings of each contract version the host loads. A released version is frozen: a new
//! contract gets its own module (`v0_2_0`) beside this one, and the runtime picks the module by
//! the version a plugin was built against, so old plugins keep working.

pub mod v0_1_0 {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1.0",
        world: "format-plugin",
        imports: { default: trappable },
        with: {
            "sluice:plugin/types.blob": crate::plugin::host::BlobHandle,
            "sluice:plugin/types.tree": crate::plugin::host::TreeHandle,
        },
        additional_derives: [serde::Serialize, serde::Deserialize],
    });

    pub use self::sluice::plugin::types::*;
}

impl v0_1_0::Metadata {
    /// Metadata with an identity and nothing else: a sample to ask a plugin what it declares, or
    /// a stand-in for stored metadata that no longer parses.
    pub fn named(name: impl Into<String>, version: impl Into<String>) -> Self {
        v0_1_0::Metadata {
            name: name.into(),
            version: version.into(),
            qualifier: String::new(),
            summary: None,
            description: None,
            license: None,
            homepage: None,
            repository: None,
            authors: Vec::new(),
            keywords: Vec::new(),
            dependencies: Vec::new(),
            manifest: String::new(),
        }
    }
}

/// The contract version the host's own types speak.
pub use v0_1_0 as current;
