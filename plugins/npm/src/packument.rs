//! Packuments: the JSON documents npm reads about a package, rendered from the repository's view.

use crate::name;
use crate::parse::HAS_SHRINKWRAP;
use base64::Engine;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use sluice_plugin_sdk::http::{encode_segment, rfc3339_ms};
use sluice_plugin_sdk::{summary_of, Artifact, PackageSummary, PackageView, VersionState};
use std::collections::{HashMap, HashSet};

/// The media type of the abbreviated packument that `npm install` asks for.
pub const ABBREVIATED: &str = "application/vnd.npm.install-v1+json";

/// Fields of a version manifest that `npm install` needs, per the registry's abbreviated
/// metadata format; everything else stays in the full packument.
const INSTALL_FIELDS: &[&str] = &[
    "name",
    "version",
    "deprecated",
    "dependencies",
    "optionalDependencies",
    "devDependencies",
    "bundleDependencies",
    "bundledDependencies",
    "peerDependencies",
    "peerDependenciesMeta",
    "acceptDependencies",
    "bin",
    "directories",
    "engines",
    "os",
    "cpu",
    "libc",
    "funding",
    "license",
    "_hasShrinkwrap",
    "hasInstallScript",
    "dist",
];

/// Top-level fields of the full packument copied from the latest version, as npmjs does.
const PACKAGE_FIELDS: &[&str] =
    &["description", "homepage", "repository", "bugs", "license", "keywords", "author", "contributors", "readme"];

/// One file per version (npm has no qualifiers), oldest first; a later file of the same version
/// wins and takes its place. Linear: one map from version to its last position.
pub fn versions(view: &PackageView) -> Vec<&Artifact> {
    last_of_each(&view.artifacts, |a| a.version.as_str())
}

/// [`versions`] for a summary: one state per version.
pub fn summary_versions(summary: &PackageSummary) -> Vec<&VersionState> {
    last_of_each(&summary.files, |f| f.version.as_str())
}

/// The last item of each key, in the order of those last items.
fn last_of_each<T>(items: &[T], key: impl Fn(&T) -> &str) -> Vec<&T> {
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        last.insert(key(item), i);
    }
    items.iter().enumerate().filter(|(i, item)| last[key(item)] == *i).map(|(_, item)| item).collect()
}

/// The package's revision, which npm sends back on unpublish and deprecate: it changes whenever
/// a version is added or removed, deprecated or undeprecated, or a tag moves, so a stale read is
/// detected. Computed from the summary alone, so that writes never load the versions' metadata;
/// the packument computes the same from its view.
pub fn rev(summary: &PackageSummary) -> String {
    let mut hash = Sha256::new();
    for file in &summary.files {
        hash.update(file.version.as_bytes());
        hash.update([0, u8::from(file.yanked)]);
        hash.update(file.deprecated.as_deref().map_or(&[1][..], str::as_bytes));
        hash.update([0]);
    }
    hash.update([0xff]);
    for (tag, version) in &summary.tags {
        hash.update(tag.as_bytes());
        hash.update([0]);
        hash.update(version.as_bytes());
        hash.update([0]);
    }
    format!("{}-{}", summary.files.len(), hex::encode(&hash.finalize()[..8]))
}

/// Dist-tags that point at a visible version (a tag may name a version the gate still hides).
pub fn tags(view: &PackageView) -> Map<String, Value> {
    visible_tags(&view.tags, view.artifacts.iter().map(|a| a.version.as_str()))
}

/// [`tags`] for a summary.
pub fn summary_tags(summary: &PackageSummary) -> Map<String, Value> {
    visible_tags(&summary.tags, summary.files.iter().map(|f| f.version.as_str()))
}

fn visible_tags<'a>(tags: &[(String, String)], versions: impl Iterator<Item = &'a str>) -> Map<String, Value> {
    let visible: HashSet<&str> = versions.collect();
    tags.iter()
        .filter(|(_, v)| visible.contains(v.as_str()))
        .map(|(t, v)| (t.clone(), Value::String(v.clone())))
        .collect()
}

/// The version `latest` points at, else the newest one.
pub fn latest(view: &PackageView) -> Option<&Artifact> {
    let all = versions(view);
    let tagged = view.tags.iter().find(|(t, _)| t == "latest").map(|(_, v)| v);
    all.iter().find(|a| Some(&a.version) == tagged).or(all.last()).copied()
}

/// `{base}/{name}/-/{file}`, with a scoped name's `@` and `/` left as npmjs writes them.
pub fn tarball_url(base_url: &str, package: &str, file_name: &str) -> String {
    let path: Vec<String> = package.split('/').map(encode_segment).collect();
    let path = path.join("/").replace("%40", "@");
    format!("{base_url}/{path}/-/{}", encode_segment(file_name))
}

/// `sha512-<base64>`, the Subresource Integrity string npm checks downloads against.
pub fn integrity(sha512_hex: &str) -> Option<String> {
    let bytes = hex::decode(sha512_hex).ok()?;
    Some(format!("sha512-{}", base64::engine::general_purpose::STANDARD.encode(bytes)))
}

/// The full manifest of one version: its package.json, with what the registry knows on top.
pub fn version_manifest(view: &PackageView, artifact: &Artifact, base_url: &str) -> Value {
    let mut manifest = match serde_json::from_str::<Value>(&artifact.metadata.manifest) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    // A package.json may carry fields the registry owns (`_id`, `dist`, `deprecated`): ours win.
    // `_hasShrinkwrap` is the registry's own, set by `parse` from the tarball's contents.
    let has_shrinkwrap = manifest.get(HAS_SHRINKWRAP).and_then(Value::as_bool).unwrap_or(false);
    manifest.retain(|k, _| !k.starts_with('_') && k != "dist" && k != "deprecated");
    manifest.insert(HAS_SHRINKWRAP.into(), json!(has_shrinkwrap));
    manifest.insert("name".into(), json!(view.name));
    manifest.insert("version".into(), json!(artifact.version));
    manifest.insert("_id".into(), json!(format!("{}@{}", view.name, artifact.version)));
    if let Some(Value::String(path)) = manifest.get("bin") {
        // npm normalises `"bin": "cli.js"` to `{name: path}` at publish; installs expect the map.
        let bin = json!({ name::base_name(&view.name): path });
        manifest.insert("bin".into(), bin);
    }
    let has_install_script = manifest
        .get("scripts")
        .and_then(Value::as_object)
        .is_some_and(|s| ["preinstall", "install", "postinstall"].iter().any(|k| s.contains_key(*k)));
    if has_install_script {
        manifest.insert("hasInstallScript".into(), json!(true));
    }
    let mut dist = json!({
        "tarball": tarball_url(base_url, &view.name, &artifact.file_name),
        "shasum": artifact.sha1,
    });
    if let Some(sri) = integrity(&artifact.sha512) {
        dist["integrity"] = json!(sri);
    }
    manifest.insert("dist".into(), dist);
    if let Some(message) = &artifact.deprecated {
        manifest.insert("deprecated".into(), json!(message));
    }
    Value::Object(manifest)
}

/// The full packument (`npm view`, `npm publish`'s checks, unpublish and deprecate read it).
pub fn full(view: &PackageView, base_url: &str) -> Value {
    let mut versions = Map::new();
    let mut time = Map::new();
    time.insert("created".into(), json!(rfc3339_ms(view.created_ms)));
    time.insert("modified".into(), json!(rfc3339_ms(view.modified_ms)));
    for artifact in self::versions(view) {
        versions.insert(artifact.version.clone(), version_manifest(view, artifact, base_url));
        time.insert(artifact.version.clone(), json!(rfc3339_ms(artifact.published_ms)));
    }
    let mut doc = Map::new();
    doc.insert("_id".into(), json!(view.name));
    doc.insert("_rev".into(), json!(rev(&summary_of(view))));
    doc.insert("name".into(), json!(view.name));
    doc.insert("dist-tags".into(), Value::Object(tags(view)));
    if let Some(Value::Object(latest)) = latest(view).and_then(|a| versions.get(&a.version)) {
        for field in PACKAGE_FIELDS {
            if let Some(v) = latest.get(*field) {
                doc.insert((*field).into(), v.clone());
            }
        }
    }
    doc.insert("versions".into(), Value::Object(versions));
    doc.insert("time".into(), Value::Object(time));
    Value::Object(doc)
}

/// The abbreviated packument `npm install` asks for: only what resolving and fetching needs.
pub fn abbreviated(view: &PackageView, base_url: &str) -> Value {
    let versions: Map<String, Value> = versions(view)
        .into_iter()
        .map(|artifact| {
            let Value::Object(mut manifest) = version_manifest(view, artifact, base_url) else {
                unreachable!("version manifests are objects")
            };
            manifest.retain(|k, _| INSTALL_FIELDS.contains(&k.as_str()));
            (artifact.version.clone(), Value::Object(manifest))
        })
        .collect();
    json!({
        "name": view.name,
        "modified": rfc3339_ms(view.modified_ms),
        "dist-tags": tags(view),
        "versions": versions,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::parse::{metadata_from_manifest, tests::package_json};

    pub const BASE: &str = "http://reg.test/npm";

    pub fn artifact(name: &str, version: &str, published_ms: u64) -> Artifact {
        let mut manifest: Value = serde_json::from_str(&package_json(name, version)).unwrap();
        manifest["bin"] = json!("cli.js");
        manifest["scripts"] = json!({"postinstall": "node setup.js"});
        let metadata = metadata_from_manifest(&manifest.to_string()).unwrap();
        Artifact {
            version: version.into(),
            qualifier: String::new(),
            file_name: name::tarball_file_name(name, version),
            size: 100,
            sha256: "00".repeat(32),
            sha512: "ab".repeat(64),
            sha1: "cd".repeat(20),
            published_ms,
            metadata,
            deprecated: None,
            yanked: false,
        }
    }

    pub fn view(name: &str, versions: &[&str], tags: &[(&str, &str)]) -> PackageView {
        PackageView {
            name: name.into(),
            created_ms: 1_700_000_000_000,
            modified_ms: 1_700_000_100_000,
            tags: tags.iter().map(|(t, v)| (t.to_string(), v.to_string())).collect(),
            artifacts: versions
                .iter()
                .enumerate()
                .map(|(i, v)| artifact(name, v, 1_700_000_000_000 + i as u64))
                .collect(),
        }
    }

    #[test]
    fn full_packument() {
        let mut view = view("@scope/demo", &["1.0.0", "1.1.0"], &[("latest", "1.1.0"), ("beta", "2.0.0")]);
        view.artifacts[0].deprecated = Some("use 1.1".into());
        let doc = full(&view, BASE);
        assert_eq!(doc["_id"], "@scope/demo");
        let rev = doc["_rev"].as_str().unwrap();
        assert!(rev.starts_with("2-") && rev.len() == 18, "{rev}");
        assert_eq!(doc["dist-tags"], json!({"latest": "1.1.0"}), "tags of invisible versions are dropped");
        assert_eq!(doc["description"], "A test package");
        assert_eq!(doc["time"]["created"], "2023-11-14T22:13:20.000Z");
        assert_eq!(doc["time"]["1.1.0"], "2023-11-14T22:13:20.001Z");
        let v = &doc["versions"]["1.0.0"];
        assert_eq!(v["_id"], "@scope/demo@1.0.0");
        assert_eq!(v["deprecated"], "use 1.1");
        assert_eq!(v["bin"], json!({"demo": "cli.js"}));
        assert_eq!(v["dist"]["tarball"], "http://reg.test/npm/@scope/demo/-/demo-1.0.0.tgz");
        assert_eq!(v["dist"]["shasum"], "cd".repeat(20));
        let expected = format!("sha512-{}", base64::engine::general_purpose::STANDARD.encode([0xab; 64]));
        assert_eq!(v["dist"]["integrity"], expected);
        assert_eq!(v["license"], "MIT");
        assert!(doc["versions"]["1.1.0"].get("deprecated").is_none());
    }

    #[test]
    fn abbreviated_packument() {
        let doc = abbreviated(&view("demo", &["1.0.0"], &[("latest", "1.0.0")]), BASE);
        assert_eq!(doc["name"], "demo");
        assert_eq!(doc["modified"], "2023-11-14T22:15:00.000Z");
        let v = doc["versions"]["1.0.0"].as_object().unwrap();
        let mut keys: Vec<&str> = v.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "_hasShrinkwrap",
                "bin",
                "dependencies",
                "devDependencies",
                "dist",
                "hasInstallScript",
                "license",
                "name",
                "optionalDependencies",
                "peerDependencies",
                "version"
            ]
        );
        assert_eq!(v["dist"]["tarball"], "http://reg.test/npm/demo/-/demo-1.0.0.tgz");
    }

    #[test]
    fn latest_falls_back_to_newest() {
        let v = view("demo", &["1.0.0", "2.0.0"], &[("beta", "1.0.0")]);
        assert_eq!(latest(&v).unwrap().version, "2.0.0");
        let v = view("demo", &["1.0.0", "2.0.0"], &[("latest", "1.0.0")]);
        assert_eq!(latest(&v).unwrap().version, "1.0.0");
    }
}
