//! The sparse index (RFC 2789): where a crate's file is, and its lines, one JSON object per
//! published version.

use crate::manifest::CrateManifest;
use serde_json::{json, Map, Value};
use sluice_plugin_sdk::{Artifact, Error, PackageView};
use std::collections::BTreeMap;

/// The index path of a crate, lower-cased as cargo requests it: `1/a`, `2/ab`, `3/a/abc`,
/// `ab/cd/abcd`.
pub fn index_path(name: &str) -> String {
    let n = name.to_ascii_lowercase();
    match n.len() {
        1 => format!("1/{n}"),
        2 => format!("2/{n}"),
        3 => format!("3/{}/{n}", &n[..1]),
        _ => format!("{}/{}/{n}", &n[..2], &n[2..4]),
    }
}

/// The index URL clients configure for a repository (`sparse+BASE/index/`).
pub fn own_index(base_url: &str) -> String {
    format!("sparse+{}/index/", base_url.trim_end_matches('/'))
}

/// Whether a feature's values need the newer `features2` field: `dep:` and `?/` syntax, which
/// cargo before 1.60 cannot read, so crates.io keeps such features out of `features`.
fn needs_features2(values: &[String]) -> bool {
    values.iter().any(|v| v.starts_with("dep:") || v.contains("?/"))
}

/// One version's index line.
pub fn line(artifact: &Artifact, own_index: &str) -> Result<String, Error> {
    let m = CrateManifest::from_stored(&artifact.metadata.manifest)?;
    let deps: Vec<Value> = m
        .deps
        .iter()
        .map(|d| {
            let mut o = Map::new();
            o.insert("name".into(), json!(d.name));
            o.insert("req".into(), json!(d.req));
            o.insert("features".into(), json!(d.features));
            o.insert("optional".into(), json!(d.optional));
            o.insert("default_features".into(), json!(d.default_features));
            o.insert("target".into(), json!(d.target));
            o.insert("kind".into(), json!(d.kind));
            if let Some(r) = d.registry_for(own_index) {
                o.insert("registry".into(), json!(r));
            }
            if let Some(p) = &d.package {
                o.insert("package".into(), json!(p));
            }
            Value::Object(o)
        })
        .collect();
    let (features2, features): (BTreeMap<_, _>, BTreeMap<_, _>) =
        m.features.iter().partition(|(_, values)| needs_features2(values));
    let mut o = Map::new();
    o.insert("name".into(), json!(m.name));
    o.insert("vers".into(), json!(m.vers));
    o.insert("deps".into(), Value::Array(deps));
    // The host's digest of the stored file is the checksum cargo verifies the download with.
    o.insert("cksum".into(), json!(artifact.sha256));
    o.insert("features".into(), json!(features));
    o.insert("yanked".into(), json!(artifact.yanked));
    o.insert("links".into(), json!(m.links));
    if let Some(rv) = &m.rust_version {
        o.insert("rust_version".into(), json!(rv));
    }
    if !features2.is_empty() {
        o.insert("features2".into(), json!(features2));
        o.insert("v".into(), json!(2));
    }
    Ok(serde_json::to_string(&Value::Object(o)).expect("JSON values serialise"))
}

/// A crate's index file: every visible version, yanked ones marked, oldest first.
pub fn file(package: &PackageView, own_index: &str) -> Result<String, Error> {
    let mut out = String::new();
    for artifact in &package.artifacts {
        out.push_str(&line(artifact, own_index)?);
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::manifest::tests::{APP_TOML, OWN_INDEX};
    use sluice_plugin_sdk::Metadata;

    pub fn artifact(meta: Metadata, yanked: bool) -> Artifact {
        Artifact {
            version: meta.version.clone(),
            qualifier: String::new(),
            file_name: format!("{}-{}.crate", meta.name, meta.version),
            size: 100,
            sha256: "ab".repeat(32),
            sha512: String::new(),
            sha1: String::new(),
            published_ms: 1_700_000_000_000,
            metadata: meta,
            deprecated: None,
            yanked,
        }
    }

    #[test]
    fn paths_follow_the_rfc() {
        assert_eq!(index_path("a"), "1/a");
        assert_eq!(index_path("AB"), "2/ab");
        assert_eq!(index_path("abc"), "3/a/abc");
        assert_eq!(index_path("Sluice-Core"), "sl/ui/sluice-core");
        assert_eq!(own_index("http://h/cargo"), "sparse+http://h/cargo/index/");
    }

    #[test]
    fn lines_carry_what_cargo_resolves_with() {
        let meta = CrateManifest::from_toml(APP_TOML).unwrap().to_metadata();
        let v: Value = serde_json::from_str(&line(&artifact(meta, true), OWN_INDEX).unwrap()).unwrap();
        assert_eq!(v["name"], "sluice-app");
        assert_eq!(v["vers"], "0.2.0");
        assert_eq!(v["cksum"], "ab".repeat(32));
        assert_eq!(v["yanked"], true);
        assert_eq!(v["rust_version"], "1.70");
        assert_eq!(v["links"], Value::Null);
        assert_eq!(v["features"], json!({"default": ["fast"], "fast": ["core/fast"]}));
        assert_eq!(v["features2"], json!({"extra": ["dep:extra-lib", "core?/fast"]}));
        assert_eq!(v["v"], 2);
        let deps = v["deps"].as_array().unwrap();
        let core = deps.iter().find(|d| d["name"] == "core").unwrap();
        assert_eq!(core["package"], "sluice-core");
        assert_eq!(core["req"], "^0.1");
        assert_eq!(core["default_features"], false);
        assert!(core.get("registry").is_none(), "same registry: no registry field");
        let dev = deps.iter().find(|d| d["kind"] == "dev").unwrap();
        assert_eq!(dev["registry"], crate::manifest::CRATES_IO_INDEX);
        let unix = deps.iter().find(|d| d["target"] == "cfg(unix)").unwrap();
        assert_eq!(unix["name"], "sluice-core");
        assert!(unix.get("package").is_none());
    }
}
