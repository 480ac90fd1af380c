//! `sluice:plugin@0.2.0`, frozen. 0.3.0 kept every 0.2.0 record and only added fields, variants
//! and functions (`outcome.keep`, `effect.revoke-token`, `registry.summary`/`tokens`, `extend`),
//! so a record crosses the boundary by its serde form: the fields 0.2.0 lacks arrive as `None`,
//! and an old plugin loses nothing. Its imports call the newest implementation.

wasmtime::component::bindgen!({
    path: "../wit/v0.2.0",
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

/// A record of one version as the same record of the other: their fields have the same names
/// and the newer one's extra fields are all optional. A failure is a bug in this module (the
/// test below pins the records that cross), reported as a failed call, not a panic.
pub fn convert<A: serde::Serialize, B: serde::de::DeserializeOwned>(a: &A) -> wasmtime::Result<B> {
    let value = serde_json::to_value(a).map_err(|e| wasmtime::Error::msg(format!("0.2.0 record: {e}")))?;
    serde_json::from_value(value).map_err(|e| wasmtime::Error::msg(format!("0.2.0 record: {e}")))
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
        convert(&latest::HostTree::entries(self, tree)?)
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
        convert(&latest::sluice::plugin::registry::Host::package(self, name)?)
    }

    fn search(&mut self, query: String, offset: u32, limit: u32) -> wasmtime::Result<SearchPage> {
        convert(&latest::sluice::plugin::registry::Host::search(self, query, offset, limit)?)
    }

    fn all_packages(&mut self) -> wasmtime::Result<Vec<PackageView>> {
        convert(&latest::sluice::plugin::registry::Host::all_packages(self)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(v: &impl serde::Serialize) -> serde_json::Value {
        serde_json::to_value(v).unwrap()
    }

    #[test]
    fn records_cross_to_0_3_0_with_its_additions_empty_and_back_unchanged() {
        let outcome = Outcome {
            effects: vec![Effect::Publish(Upload {
                file_name: "demo-1.0.0.tgz".into(),
                source: UploadSource::BodyBase64Range((10, 20)),
                package: Some("demo".into()),
                tags: vec!["latest".into()],
            })],
            reply: Reply::Respond(Response { status: 201, headers: Vec::new(), body: b"ok".to_vec() }),
        };
        let new: latest::Outcome = convert(&outcome).unwrap();
        assert!(new.keep.is_none());
        assert!(
            matches!(&new.effects[0], latest::Effect::Publish(u) if matches!(u.source, latest::UploadSource::BodyBase64Range((10, 20))))
        );

        let mut meta = latest::Metadata::named("demo", "1.0.0");
        meta.readme = Some("# demo".into());
        let view = latest::PackageView {
            name: "demo".into(),
            created_ms: 1,
            modified_ms: 2,
            tags: vec![("latest".into(), "1.0.0".into())],
            artifacts: vec![latest::Artifact {
                version: "1.0.0".into(),
                qualifier: String::new(),
                file_name: "demo-1.0.0.tgz".into(),
                size: 3,
                sha256: "a".into(),
                sha512: "b".into(),
                sha1: "c".into(),
                published_ms: 4,
                metadata: meta,
                deprecated: Some("old".into()),
                yanked: false,
            }],
        };
        let old: PackageView = convert(&view).unwrap();
        assert_eq!(json(&old), json(&view));
        let info: latest::FormatInfo = convert(&FormatInfo {
            name: "demo".into(),
            display_name: "Demo".into(),
            case_insensitive_names: true,
            credential_headers: vec!["x-key".into()],
            publish: PublishMode::GitTag,
            install_hint: "hint".into(),
        })
        .unwrap();
        assert!(matches!(info.publish, latest::PublishMode::GitTag));
    }
}
