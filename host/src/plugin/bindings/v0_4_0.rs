//! `sluice:plugin@0.4.0`, frozen. 0.5.0 kept every 0.4.0 record and only added an optional
//! field (`keep.layout`), records for it, imports (`registry.versions`, `upstream.get-for`) and
//! an export (`render-parts`), so a record crosses the boundary by its serde form, as 0.2.0's
//! does (see `v0_2_0::convert`): a 0.4.0 plugin's kept documents have no layout and are rendered
//! whole. Its imports call the newest implementation: its `upstream.get` names no package, so a
//! group checks its requests by path only.

contract_bindings!("../wit/v0.4.0");

use super::latest;
use crate::plugin::host::{BlobHandle, CallState, TreeHandle};
use wasmtime::component::Resource;

older_resources!();

older_registry!(package, search, all_packages, summary, tokens);

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
