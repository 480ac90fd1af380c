//! `sluice:plugin@0.2.0`, frozen. 0.3.0 kept every 0.2.0 record and only added fields, variants
//! and functions (`outcome.keep`, `effect.revoke-token`, `registry.summary`/`tokens`, `extend`),
//! so a record crosses the boundary by its serde form: the fields 0.2.0 lacks arrive as `None`,
//! and an old plugin loses nothing. Its imports call the newest implementation.

contract_bindings!("../wit/v0.2.0");

use super::latest;
use crate::plugin::host::{BlobHandle, CallState, TreeHandle};
use wasmtime::component::Resource;

/// A record of one version as the same record of the other: their fields have the same names
/// and the newer one's extra fields are all optional. A failure is a bug in this module (the
/// test below pins the records that cross), reported as a failed call, not a panic.
pub fn convert<A: serde::Serialize, B: serde::de::DeserializeOwned>(a: &A) -> wasmtime::Result<B> {
    let value = serde_json::to_value(a).map_err(|e| wasmtime::Error::msg(format!("0.2.0 record: {e}")))?;
    serde_json::from_value(value).map_err(|e| wasmtime::Error::msg(format!("0.2.0 record: {e}")))
}

older_resources!();

older_registry!(package, search, all_packages);

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
