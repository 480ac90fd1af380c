//! `sluice:plugin@0.3.0`, frozen. 0.4.0 kept every 0.3.0 record and only added a reply variant
//! (`fetch-file`), an error kind (`unavailable`) and the `upstream` import, so a record crosses
//! the boundary by its serde form, as 0.2.0's does (see `v0_2_0::convert`). An error of the new
//! kind reaches an older plugin's `render-error` as `internal` (`older_error`). Its imports call
//! the newest implementation.

wasmtime::component::bindgen!({
    path: "../wit/v0.3.0",
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

/// An error as a contract before 0.4.0 can take it: `unavailable` did not exist, and what an
/// older plugin shows for an internal error is the closest (the host logged the detail).
pub fn older_error(err: &latest::Error) -> latest::Error {
    match err.kind {
        latest::ErrorKind::Unavailable => {
            latest::Error { kind: latest::ErrorKind::Internal, message: err.message.clone() }
        }
        _ => err.clone(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_cross_to_0_4_0_and_the_new_error_kind_back_as_internal() {
        let outcome = Outcome {
            effects: vec![Effect::RevokeToken("k".into())],
            reply: Reply::ServeFile(FileRef {
                package: "demo".into(),
                file_name: "demo-1.0.0.tgz".into(),
                content_type: "application/octet-stream".into(),
            }),
            keep: Some(Keep { depends_on: vec![Source::Package("demo".into())], vary: vec![], append_only: false }),
        };
        let new: latest::Outcome = super::super::convert(&outcome).unwrap();
        assert!(matches!(new.reply, latest::Reply::ServeFile(ref f) if f.file_name == "demo-1.0.0.tgz"));
        let err = latest::Error { kind: latest::ErrorKind::Unavailable, message: "upstream down".into() };
        let old: Error = super::super::convert(&older_error(&err)).unwrap();
        assert!(matches!(old.kind, ErrorKind::Internal));
        assert!(super::super::convert::<_, Error>(&err).is_err(), "0.3.0 has no `unavailable`");
    }
}
