//! Typed bindings of each contract version the host loads. A released version is frozen: a new
//! contract gets its own module beside the others, and the runtime picks the module by the
//! version a plugin was built against, so old plugins keep working.
//!
//! The host's own types are the newest version's ([`current`]). An older version's module maps
//! its records to and from the newest ones at the boundary (`From` impls) and implements its
//! imports by calling the newest implementation, so nothing outside this folder ever sees an old
//! version's types.

/// One contract version's typed bindings, generated from its frozen WIT folder with the host's
/// resource types, and the call that links its imports. Every version is generated the same way.
macro_rules! contract_bindings {
    ($path:tt) => {
        wasmtime::component::bindgen!({
            path: $path,
            world: "format-plugin",
            imports: { default: trappable },
            with: {
                "sluice:plugin/types.blob": crate::plugin::host::BlobHandle,
                "sluice:plugin/types.tree": crate::plugin::host::TreeHandle,
            },
            additional_derives: [serde::Serialize, serde::Deserialize],
        });

        pub use self::sluice::plugin::types::*;

        pub fn add_to_linker(
            linker: &mut wasmtime::component::Linker<crate::plugin::host::CallState>,
        ) -> wasmtime::Result<()> {
            FormatPlugin::add_to_linker::<
                crate::plugin::host::CallState,
                wasmtime::component::HasSelf<crate::plugin::host::CallState>,
            >(linker, |s| s)
        }
    };
}

/// An older version's `blob` and `tree` resources, served by the newest implementation (records
/// cross by their serde form, [`convert`]).
macro_rules! older_resources {
    () => {
        impl HostBlob for CallState {
            fn size(&mut self, blob: Resource<BlobHandle>) -> wasmtime::Result<u64> {
                latest::HostBlob::size(self, blob)
            }

            fn read(&mut self, blob: Resource<BlobHandle>, offset: u64, len: u32) -> wasmtime::Result<Vec<u8>> {
                latest::HostBlob::read(self, blob, offset, len)
            }

            fn drop(&mut self, blob: Resource<BlobHandle>) -> wasmtime::Result<()> {
                latest::HostBlob::drop(self, blob)
            }
        }

        impl HostTree for CallState {
            fn entries(&mut self, tree: Resource<TreeHandle>) -> wasmtime::Result<Vec<TreeEntry>> {
                super::convert(&latest::HostTree::entries(self, tree)?)
            }

            fn read(&mut self, tree: Resource<TreeHandle>, path: String) -> wasmtime::Result<Result<Vec<u8>, String>> {
                latest::HostTree::read(self, tree, path)
            }

            fn drop(&mut self, tree: Resource<TreeHandle>) -> wasmtime::Result<()> {
                latest::HostTree::drop(self, tree)
            }
        }

        impl Host for CallState {}
    };
}

/// One `registry` function of an older version, answered by the newest implementation.
macro_rules! older_registry_fn {
    (package) => {
        fn package(&mut self, name: String) -> wasmtime::Result<Option<PackageView>> {
            super::convert(&latest::sluice::plugin::registry::Host::package(self, name)?)
        }
    };
    (search) => {
        fn search(&mut self, query: String, offset: u32, limit: u32) -> wasmtime::Result<SearchPage> {
            super::convert(&latest::sluice::plugin::registry::Host::search(self, query, offset, limit)?)
        }
    };
    (all_packages) => {
        fn all_packages(&mut self) -> wasmtime::Result<Vec<PackageView>> {
            super::convert(&latest::sluice::plugin::registry::Host::all_packages(self)?)
        }
    };
    (summary) => {
        fn summary(&mut self, name: String) -> wasmtime::Result<Option<PackageSummary>> {
            super::convert(&latest::sluice::plugin::registry::Host::summary(self, name)?)
        }
    };
    (tokens) => {
        fn tokens(&mut self) -> wasmtime::Result<Vec<TokenInfo>> {
            super::convert(&latest::sluice::plugin::registry::Host::tokens(self)?)
        }
    };
}

/// An older version's `registry` import: the functions it has, by name.
macro_rules! older_registry {
    ($($f:ident),*) => {
        impl sluice::plugin::registry::Host for CallState {
            $(older_registry_fn!($f);)*
        }
    };
}

pub mod v0_1_0;
pub mod v0_2_0;
pub mod v0_3_0;
pub mod v0_4_0;
pub mod v0_5_0;

use wasmtime::component::{Component, Linker, Resource};
use wasmtime::{Engine, Store};

use super::host::{BlobHandle, CallState, TreeHandle};
use v0_2_0::convert;

/// The contract version the host's own types speak.
pub use v0_5_0 as current;

use current as latest;

/// Every contract version this host loads, newest first: (WIT package version, world export).
pub const VERSIONS: &[&str] = &["0.5.0", "0.4.0", "0.3.0", "0.2.0", "0.1.0"];

/// Adds every version's imports to `linker` (their names differ by version, so they coexist).
pub fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    v0_5_0::add_to_linker(linker)?;
    v0_4_0::add_to_linker(linker)?;
    v0_3_0::add_to_linker(linker)?;
    v0_2_0::add_to_linker(linker)?;
    v0_1_0::add_to_linker(linker)
}

/// The contract version whose `format` interface a component exports (`0.1.0`), if any.
pub fn contract_of(component: &Component, engine: &Engine) -> Option<&'static str> {
    let exports: Vec<String> = component.component_type().exports(engine).map(|(name, _)| name.to_string()).collect();
    VERSIONS.iter().copied().find(|v| exports.iter().any(|e| *e == format!("sluice:plugin/format@{v}")))
}

/// A linked plugin of one contract version, ready to instantiate.
pub enum PluginPre {
    V0_1_0(v0_1_0::FormatPluginPre<CallState>),
    V0_2_0(v0_2_0::FormatPluginPre<CallState>),
    V0_3_0(v0_3_0::FormatPluginPre<CallState>),
    V0_4_0(v0_4_0::FormatPluginPre<CallState>),
    V0_5_0(v0_5_0::FormatPluginPre<CallState>),
}

/// One instance of a plugin, whatever its version.
pub enum Instance {
    V0_1_0(v0_1_0::FormatPlugin),
    V0_2_0(v0_2_0::FormatPlugin),
    V0_3_0(v0_3_0::FormatPlugin),
    V0_4_0(v0_4_0::FormatPlugin),
    V0_5_0(v0_5_0::FormatPlugin),
}

impl PluginPre {
    /// Links `component`, built against contract `version`.
    pub fn new(linker: &Linker<CallState>, component: &Component, version: &str) -> wasmtime::Result<Self> {
        let pre = linker.instantiate_pre(component)?;
        Ok(match version {
            "0.1.0" => PluginPre::V0_1_0(v0_1_0::FormatPluginPre::new(pre)?),
            "0.2.0" => PluginPre::V0_2_0(v0_2_0::FormatPluginPre::new(pre)?),
            "0.3.0" => PluginPre::V0_3_0(v0_3_0::FormatPluginPre::new(pre)?),
            "0.4.0" => PluginPre::V0_4_0(v0_4_0::FormatPluginPre::new(pre)?),
            _ => PluginPre::V0_5_0(v0_5_0::FormatPluginPre::new(pre)?),
        })
    }

    pub fn instantiate(&self, store: &mut Store<CallState>) -> wasmtime::Result<Instance> {
        Ok(match self {
            PluginPre::V0_1_0(p) => Instance::V0_1_0(p.instantiate(store)?),
            PluginPre::V0_2_0(p) => Instance::V0_2_0(p.instantiate(store)?),
            PluginPre::V0_3_0(p) => Instance::V0_3_0(p.instantiate(store)?),
            PluginPre::V0_4_0(p) => Instance::V0_4_0(p.instantiate(store)?),
            PluginPre::V0_5_0(p) => Instance::V0_5_0(p.instantiate(store)?),
        })
    }
}

/// The `format` calls in the newest version's types; an older plugin's arguments and results are
/// converted here.
impl Instance {
    pub fn call_info(&self, s: &mut Store<CallState>) -> wasmtime::Result<latest::FormatInfo> {
        match self {
            Instance::V0_1_0(p) => p.sluice_plugin_format().call_info(s).map(Into::into),
            Instance::V0_2_0(p) => convert(&p.sluice_plugin_format().call_info(s)?),
            Instance::V0_3_0(p) => convert(&p.sluice_plugin_format().call_info(s)?),
            Instance::V0_4_0(p) => convert(&p.sluice_plugin_format().call_info(s)?),
            Instance::V0_5_0(p) => p.sluice_plugin_format().call_info(s),
        }
    }

    pub fn call_parse(
        &self,
        s: &mut Store<CallState>,
        file_name: &str,
        file: Resource<BlobHandle>,
        limits: latest::Limits,
    ) -> wasmtime::Result<Result<latest::Metadata, latest::Error>> {
        match self {
            // 0.1.0 plugins keep their own caps: the contract gave them no limits.
            Instance::V0_1_0(p) => {
                p.sluice_plugin_format().call_parse(s, file_name, file).map(|r| r.map(Into::into).map_err(Into::into))
            }
            Instance::V0_2_0(p) => {
                convert(&p.sluice_plugin_format().call_parse(s, file_name, file, convert(&limits)?)?)
            }
            Instance::V0_3_0(p) => {
                convert(&p.sluice_plugin_format().call_parse(s, file_name, file, convert(&limits)?)?)
            }
            Instance::V0_4_0(p) => {
                convert(&p.sluice_plugin_format().call_parse(s, file_name, file, convert(&limits)?)?)
            }
            Instance::V0_5_0(p) => p.sluice_plugin_format().call_parse(s, file_name, file, limits),
        }
    }

    pub fn call_extraction_for(
        &self,
        s: &mut Store<CallState>,
        meta: &latest::Metadata,
    ) -> wasmtime::Result<latest::Extraction> {
        match self {
            Instance::V0_1_0(p) => {
                p.sluice_plugin_format().call_extraction_for(s, &meta.clone().into()).map(Into::into)
            }
            Instance::V0_2_0(p) => convert(&p.sluice_plugin_format().call_extraction_for(s, &convert(meta)?)?),
            Instance::V0_3_0(p) => convert(&p.sluice_plugin_format().call_extraction_for(s, &convert(meta)?)?),
            Instance::V0_4_0(p) => convert(&p.sluice_plugin_format().call_extraction_for(s, &convert(meta)?)?),
            Instance::V0_5_0(p) => p.sluice_plugin_format().call_extraction_for(s, meta),
        }
    }

    pub fn call_trigger_for(
        &self,
        s: &mut Store<CallState>,
        meta: &latest::Metadata,
    ) -> wasmtime::Result<latest::Trigger> {
        match self {
            Instance::V0_1_0(p) => p.sluice_plugin_format().call_trigger_for(s, &meta.clone().into()).map(Into::into),
            Instance::V0_2_0(p) => convert(&p.sluice_plugin_format().call_trigger_for(s, &convert(meta)?)?),
            Instance::V0_3_0(p) => convert(&p.sluice_plugin_format().call_trigger_for(s, &convert(meta)?)?),
            Instance::V0_4_0(p) => convert(&p.sluice_plugin_format().call_trigger_for(s, &convert(meta)?)?),
            Instance::V0_5_0(p) => p.sluice_plugin_format().call_trigger_for(s, meta),
        }
    }

    pub fn call_handle(
        &self,
        s: &mut Store<CallState>,
        req: &latest::Request,
        body: Resource<BlobHandle>,
        limits: latest::Limits,
    ) -> wasmtime::Result<Result<latest::Outcome, latest::Error>> {
        match self {
            Instance::V0_1_0(p) => p
                .sluice_plugin_format()
                .call_handle(s, &req.clone().into(), body)
                .map(|r| r.map(Into::into).map_err(Into::into)),
            Instance::V0_2_0(p) => {
                convert(&p.sluice_plugin_format().call_handle(s, &convert(req)?, body, convert(&limits)?)?)
            }
            Instance::V0_3_0(p) => {
                convert(&p.sluice_plugin_format().call_handle(s, &convert(req)?, body, convert(&limits)?)?)
            }
            Instance::V0_4_0(p) => {
                convert(&p.sluice_plugin_format().call_handle(s, &convert(req)?, body, convert(&limits)?)?)
            }
            Instance::V0_5_0(p) => p.sluice_plugin_format().call_handle(s, req, body, limits),
        }
    }

    pub fn call_render_error(
        &self,
        s: &mut Store<CallState>,
        err: &latest::Error,
    ) -> wasmtime::Result<latest::Response> {
        match self {
            Instance::V0_1_0(p) => p.sluice_plugin_format().call_render_error(s, &err.clone().into()).map(Into::into),
            Instance::V0_2_0(p) => {
                convert(&p.sluice_plugin_format().call_render_error(s, &convert(&v0_3_0::older_error(err))?)?)
            }
            Instance::V0_3_0(p) => {
                convert(&p.sluice_plugin_format().call_render_error(s, &convert(&v0_3_0::older_error(err))?)?)
            }
            Instance::V0_4_0(p) => convert(&p.sluice_plugin_format().call_render_error(s, &convert(err)?)?),
            Instance::V0_5_0(p) => p.sluice_plugin_format().call_render_error(s, err),
        }
    }

    pub fn call_from_tag(
        &self,
        s: &mut Store<CallState>,
        tag: &latest::TagInfo,
        tree: Resource<TreeHandle>,
    ) -> wasmtime::Result<Result<Option<latest::TagFile>, latest::Error>> {
        match self {
            Instance::V0_1_0(p) => p
                .sluice_plugin_format()
                .call_from_tag(s, &tag.clone().into(), tree)
                .map(|r| r.map(|f| f.map(Into::into)).map_err(Into::into)),
            Instance::V0_2_0(p) => convert(&p.sluice_plugin_format().call_from_tag(s, &convert(tag)?, tree)?),
            Instance::V0_3_0(p) => convert(&p.sluice_plugin_format().call_from_tag(s, &convert(tag)?, tree)?),
            Instance::V0_4_0(p) => convert(&p.sluice_plugin_format().call_from_tag(s, &convert(tag)?, tree)?),
            Instance::V0_5_0(p) => p.sluice_plugin_format().call_from_tag(s, tag, tree),
        }
    }

    /// `extend` of an append-only kept response. Older plugins keep nothing, so they are never
    /// asked; should they be, "render it whole" is the answer that is always right.
    pub fn call_extend(
        &self,
        s: &mut Store<CallState>,
        req: &latest::Request,
        changes: &[latest::Change],
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, latest::Error>> {
        match self {
            Instance::V0_1_0(_) | Instance::V0_2_0(_) => Ok(Ok(None)),
            Instance::V0_3_0(p) => {
                let changes: Vec<v0_3_0::Change> = convert(&changes)?;
                convert(&p.sluice_plugin_format().call_extend(s, &convert(req)?, &changes)?)
            }
            Instance::V0_4_0(p) => {
                let changes: Vec<v0_4_0::Change> = convert(&changes)?;
                convert(&p.sluice_plugin_format().call_extend(s, &convert(req)?, &changes)?)
            }
            Instance::V0_5_0(p) => p.sluice_plugin_format().call_extend(s, req, changes),
        }
    }

    /// `render-parts` of a kept response with a layout. Plugins before 0.5.0 declare no layout,
    /// so they are never asked; should they be, "render it whole" is always right.
    pub fn call_render_parts(
        &self,
        s: &mut Store<CallState>,
        req: &latest::Request,
        changes: &[latest::Change],
    ) -> wasmtime::Result<Result<Option<latest::Parts>, latest::Error>> {
        match self {
            Instance::V0_5_0(p) => p.sluice_plugin_format().call_render_parts(s, req, changes),
            _ => Ok(Ok(None)),
        }
    }
}

impl latest::Metadata {
    /// Metadata with an identity and nothing else: a sample to ask a plugin what it declares, or
    /// a stand-in for stored metadata that no longer parses.
    pub fn named(name: impl Into<String>, version: impl Into<String>) -> Self {
        latest::Metadata {
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
            readme: None,
        }
    }
}
