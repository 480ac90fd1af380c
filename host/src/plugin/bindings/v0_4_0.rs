//! `sluice:plugin@0.4.0`, frozen. 0.5.0 kept every 0.4.0 record and only added an optional
//! field (`keep.layout`), records for it, imports (`registry.versions`, `upstream.get-for`) and
//! an export (`render-parts`), so a record crosses the boundary by its serde form, as 0.2.0's
//! does (see `v0_2_0::convert`): a 0.4.0 plugin's kept documents have no layout and are rendered
//! whole. Its imports call the newest implementation: its `upstream.get` names no package, so a
//! group checks its requests by path only.

wasmtime::component::bindgen!({
    path: "../wit/v0.4.0",
    world: "format-plugin",
    imports: { default: trappable },
    with: {
        "sluice:plugin/types.blob": crate::plugin::host::BlobHandle,
        "sluice:plugin/types.tree": crate::plugin::host::TreeHandle,
    },
    additional_derives: [serde::Serialize, serde::Deserialize],
});

pub use self::sluice::plugin::types::*;

use super::latest;
use crate::plugin::host::{BlobHandle, CallState, TreeHandle};
use wasmtime::component::{HasSelf, Linker, Resource};

pub fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    FormatPlugin::add_to_linker::<CallState, HasSelf<CallState>>(linker, |s| s)
}

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

impl sluice::plugin::registry::Host for CallState {
    fn package(&mut self, name: String) -> wasmtime::Result<Option<PackageView>> {
        super::convert(&latest::sluice::plugin::registry::Host::package(self, name)?)
    }

    fn search(&mut self, query: String, offset: u32, limit: u32) -> wasmtime::Result<SearchPage> {
        super::convert(&latest::sluice::plugin::registry::Host::search(self, query, offset, limit)?)
    }

    fn all_packages(&mut self) -> wasmtime::Result<Vec<PackageView>> {
        super::convert(&latest::sluice::plugin::registry::Host::all_packages(self)?)
    }

    fn summary(&mut self, name: String) -> wasmtime::Result<Option<PackageSummary>> {
        super::convert(&latest::sluice::plugin::registry::Host::summary(self, name)?)
    }

    fn tokens(&mut self) -> wasmtime::Result<Vec<TokenInfo>> {
        super::convert(&latest::sluice::plugin::registry::Host::tokens(self)?)
    }
}

impl sluice::plugin::upstream::Host for CallState {
    fn configured(&mut self) -> wasmtime::Result<bool> {
        latest::sluice::plugin::upstream::Host::configured(self)
    }

    fn get(
        &mut self,
        path_and_query: String,
        accept: Option<String>,
    ) -> wasmtime::Result<Result<UpstreamResponse, Error>> {
        super::convert(&latest::sluice::plugin::upstream::Host::get(self, path_and_query, accept)?)
    }

    fn cached_versions(&mut self, package: String) -> wasmtime::Result<Vec<String>> {
        latest::sluice::plugin::upstream::Host::cached_versions(self, package)
    }

    fn published_before(&mut self) -> wasmtime::Result<Option<u64>> {
        latest::sluice::plugin::upstream::Host::published_before(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_0_4_0_keep_crosses_to_0_5_0_without_a_layout() {
        let outcome = Outcome {
            effects: vec![],
            reply: Reply::Respond(Response { status: 200, headers: vec![], body: b"{}".to_vec() }),
            keep: Some(Keep { depends_on: vec![Source::Package("demo".into())], vary: vec![], append_only: true }),
        };
        let new: latest::Outcome = super::super::convert(&outcome).unwrap();
        let keep = new.keep.expect("kept");
        assert!(keep.append_only);
        assert!(keep.layout.is_none(), "a 0.4.0 document is rendered whole");
    }
}
