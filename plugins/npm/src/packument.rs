//! Packuments: the JSON documents npm reads about a package, rendered from the repository's view.

use crate::name;
use crate::parse::HAS_SHRINKWRAP;
use base64::Engine;
use serde::de::{Deserializer, Error as _, IgnoredAny, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use sluice_plugin_sdk::http::{encode_segment, rfc3339_ms};
use sluice_plugin_sdk::{summary_of, Artifact, Error, Layout, PackageSummary, PackageView, PartedBody, VersionState};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

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
    if last.len() == items.len() {
        // No key twice (the usual case): every item, without a second lookup each.
        return items.iter().collect();
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
pub fn summary_tags(summary: &PackageSummary) -> Map<String, Value> {
    visible_tags(&summary.tags, summary.files.iter().map(|f| f.version.as_str()))
}

fn visible_tags<'a>(tags: &[(String, String)], versions: impl Iterator<Item = &'a str>) -> Map<String, Value> {
    // The few tags' versions looked up among the many versions, not a set of every version.
    let wanted: HashSet<&str> = tags.iter().map(|(_, v)| v.as_str()).collect();
    let mut seen: HashSet<&str> = HashSet::with_capacity(wanted.len());
    for v in versions {
        if seen.len() == wanted.len() {
            break;
        }
        if let Some(w) = wanted.get(v) {
            seen.insert(w);
        }
    }
    tags.iter().filter(|(_, v)| seen.contains(v.as_str())).map(|(t, v)| (t.clone(), Value::String(v.clone()))).collect()
}

/// The version `latest` points at, else the newest one.
pub fn latest(view: &PackageView) -> Option<&Artifact> {
    let all = versions(view);
    let tagged = view.tags.iter().find(|(t, _)| t == "latest").map(|(_, v)| v);
    all.iter().find(|a| Some(&a.version) == tagged).or(all.last()).copied()
}

/// `{base}/{name}/-/{file}`: one tarball's URL.
pub fn tarball_url(base_url: &str, package: &str, file_name: &str) -> String {
    format!("{}{}", tarball_base(base_url, package), encode_segment(file_name))
}

/// `{base}/{name}/-/`, where a package's tarballs are, with a scoped name's `@` and `/` left as
/// npmjs writes them; computed once per packument rather than once per version.
fn tarball_base(base_url: &str, package: &str) -> Rc<str> {
    let path: Vec<String> = package.split('/').map(encode_segment).collect();
    let path = path.join("/").replace("%40", "@");
    format!("{base_url}/{path}/-/").into()
}

/// `sha512-<base64>`, the Subresource Integrity string npm checks downloads against.
pub fn integrity(sha512_hex: &str) -> Option<String> {
    let bytes = hex::decode(sha512_hex).ok()?;
    Some(format!("sha512-{}", base64::engine::general_purpose::STANDARD.encode(bytes)))
}

/// An object key, borrowed from the stored text unless it has escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(Visit)
    }
}

/// The manifest of one version as the registry serves it: the stored package.json's fields,
/// copied as their JSON text in their order, without the ones the registry owns (`_*`, `dist`,
/// `deprecated`, `name`, `version`, `hasInstallScript`), which follow with the registry's values.
/// Written straight into the output, never as a tree: building and dropping a tree of every
/// version's fields was nearly all of a packument's render (280 ms natively for 10,000 versions,
/// most of it allocation).
pub struct Manifest<'a> {
    name: &'a str,
    artifact: &'a Artifact,
    /// `{base}/{name}/-/`: the package's tarballs are here.
    tarball_base: Rc<str>,
    /// Only these of the stored fields (the abbreviated form), or all.
    only: Option<&'static [&'static str]>,
}

pub fn version_manifest<'a>(view: &'a PackageView, artifact: &'a Artifact, base_url: &str) -> Manifest<'a> {
    manifest(view, artifact, tarball_base(base_url, &view.name))
}

fn manifest<'a>(view: &'a PackageView, artifact: &'a Artifact, tarball_base: Rc<str>) -> Manifest<'a> {
    Manifest { name: &view.name, artifact, tarball_base, only: None }
}

/// `dist` of a version manifest.
#[derive(Serialize)]
struct Dist<'a> {
    tarball: String,
    shasum: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    integrity: Option<String>,
}

/// What the stored fields said about the registry's own.
#[derive(Default)]
struct Seen {
    has_shrinkwrap: bool,
    has_install_script: bool,
    /// `"bin": "cli.js"`, which npm normalises to `{name: path}` at publish.
    bin_path: Option<String>,
}

/// Copies the stored manifest's fields into `map`, noting what [`Seen`] needs.
struct CopyFields<'m, M> {
    map: &'m mut M,
    only: Option<&'static [&'static str]>,
}

impl<'de, M: SerializeMap> Visitor<'de> for CopyFields<'_, M> {
    type Value = Seen;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a package.json object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut fields: A) -> Result<Seen, A::Error> {
        let mut seen = Seen::default();
        while let Some(Key(key)) = fields.next_key::<Key>()? {
            let value: &RawValue = fields.next_value()?;
            match key.as_ref() {
                HAS_SHRINKWRAP => seen.has_shrinkwrap = value.get() == "true",
                "dist" | "deprecated" | "name" | "version" | "hasInstallScript" => {}
                k if k.starts_with('_') => {}
                "bin" if value.get().starts_with('"') => seen.bin_path = serde_json::from_str(value.get()).ok(),
                k => {
                    if k == "scripts" && value.get().starts_with('{') {
                        let scripts =
                            serde_json::from_str::<Members<IgnoredAny>>(value.get()).map(|s| s.0).unwrap_or_default();
                        seen.has_install_script = scripts
                            .iter()
                            .any(|(Key(name), _)| ["preinstall", "install", "postinstall"].contains(&name.as_ref()));
                    }
                    if self.only.is_none_or(|only| only.contains(&k)) {
                        self.map.serialize_entry(k, value).map_err(A::Error::custom)?;
                    }
                }
            }
        }
        Ok(seen)
    }
}

/// An object's members, in order, keys borrowed.
struct Members<'a, V>(Vec<(Key<'a>, V)>);

impl<'de: 'a, 'a, V: Deserialize<'de>> Deserialize<'de> for Members<'a, V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Visit<V> {
            type Value = Members<'de, V>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Members<'de, V>, A::Error> {
                let mut members = Vec::new();
                while let Some(entry) = m.next_entry()? {
                    members.push(entry);
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
    }
}

impl Serialize for Manifest<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let a = self.artifact;
        let mut map = s.serialize_map(None)?;
        let copy = CopyFields { map: &mut map, only: self.only };
        // A stored manifest that is not an object (none is: `parse` stores objects) adds nothing.
        let seen = serde_json::Deserializer::from_str(&a.metadata.manifest).deserialize_map(copy).unwrap_or_default();
        map.serialize_entry("name", self.name)?;
        map.serialize_entry("version", &a.version)?;
        if self.only.is_none() {
            map.serialize_entry("_id", &format_args!("{}@{}", self.name, a.version))?;
        }
        map.serialize_entry(HAS_SHRINKWRAP, &seen.has_shrinkwrap)?;
        if let Some(path) = &seen.bin_path {
            map.serialize_entry("bin", &json!({ name::base_name(self.name): path }))?;
        }
        if seen.has_install_script {
            map.serialize_entry("hasInstallScript", &true)?;
        }
        let dist = Dist {
            tarball: format!("{}{}", self.tarball_base, encode_segment(&a.file_name)),
            shasum: &a.sha1,
            integrity: integrity(&a.sha512),
        };
        map.serialize_entry("dist", &dist)?;
        if let Some(message) = &a.deprecated {
            map.serialize_entry("deprecated", message)?;
        }
        map.end()
    }
}

/// Which packument.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Form {
    /// `npm view`, publish's checks, unpublish and deprecate read it.
    Full,
    /// What `npm install` asks for: only what resolving and fetching needs.
    Abbreviated,
}

/// What a packument is rendered from: the package's summary (every visible version in order,
/// its state, the tags: what `_rev`, `dist-tags` and the order come from), its times, and the
/// artifacts of the versions whose items are written (every version for a whole render; the
/// changed ones and the latest for `render-parts`).
pub struct Source<'a> {
    pub name: &'a str,
    pub created_ms: u64,
    pub modified_ms: u64,
    pub summary: Cow<'a, PackageSummary>,
    /// The last file of each loaded version.
    pub artifacts: HashMap<&'a str, &'a Artifact>,
}

impl<'a> Source<'a> {
    /// Everything, from the package's whole view.
    pub fn of_view(view: &'a PackageView) -> Self {
        Source::new(view, Cow::Owned(summary_of(view)))
    }

    /// The summary and the loaded artifacts of `view` (a view of some versions only).
    pub fn new(view: &'a PackageView, summary: Cow<'a, PackageSummary>) -> Self {
        Source {
            name: &view.name,
            created_ms: view.created_ms,
            modified_ms: view.modified_ms,
            summary,
            artifacts: versions(view).into_iter().map(|a| (a.version.as_str(), a)).collect(),
        }
    }
}

/// [`latest`] for a summary.
pub fn latest_of(summary: &PackageSummary) -> Option<&str> {
    latest_in(&summary_versions(summary), &summary.tags)
}

/// The version `latest` points at among `versions` (in order), else the newest one.
fn latest_in<'a>(versions: &[&'a VersionState], tags: &[(String, String)]) -> Option<&'a str> {
    let tagged = tags.iter().find(|(t, _)| t == "latest").map(|(_, v)| v);
    versions.iter().find(|f| Some(&f.version) == tagged).or(versions.last()).map(|f| f.version.as_str())
}

fn json_into<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    serde_json::to_writer(out, value).expect("JSON serialises");
}

/// Writes a packument into `body`: the package's fields as whole segments, the versions (and,
/// in the full form, their times) as runs of per-version items keyed by version, so that a
/// change re-renders only the versions it touches. The field order is npmjs's.
pub fn render(src: &Source, base_url: &str, form: Form, body: &mut PartedBody) -> Result<(), Error> {
    let name = src.name;
    let order = summary_versions(&src.summary);
    let tags = visible_tags(&src.summary.tags, order.iter().map(|f| f.version.as_str()));
    let base = tarball_base(base_url, name);
    let artifact = |version: &str| {
        src.artifacts
            .get(version)
            .copied()
            .ok_or_else(|| Error::internal(format!("{name} {version} was not loaded for its render")))
    };
    body.write(b"{");
    match form {
        Form::Full => {
            let package = match latest_in(&order, &src.summary.tags) {
                Some(v) => package_fields(artifact(v)?),
                None => BTreeMap::new(),
            };
            let out = body.out();
            out.extend_from_slice(b"\"_id\":");
            json_into(out, name);
            out.extend_from_slice(b",\"_rev\":");
            json_into(out, &rev(&src.summary));
            out.extend_from_slice(b",\"name\":");
            json_into(out, name);
            out.extend_from_slice(b",\"dist-tags\":");
            json_into(out, &tags);
            for (key, value) in &package {
                out.push(b',');
                json_into(out, key);
                out.push(b':');
                out.extend_from_slice(value.get().as_bytes());
            }
        }
        Form::Abbreviated => {
            let out = body.out();
            out.extend_from_slice(b"\"name\":");
            json_into(out, name);
            out.extend_from_slice(b",\"modified\":");
            json_into(out, &rfc3339_ms(src.modified_ms));
            out.extend_from_slice(b",\"dist-tags\":");
            json_into(out, &tags);
        }
    }
    // One member per version, `"1.2.3":VALUE`, in the summary's order; only the wanted ones
    // are rendered (the others are named, for the order, and the host keeps their bytes).
    let members = |body: &mut PartedBody, leading: bool, value: &dyn Fn(&Artifact, &mut Vec<u8>)| {
        body.run(b",", leading);
        for state in &order {
            let version = state.version.as_str();
            if !body.wants(version) {
                body.item(version, |_| Ok::<(), Error>(()))?;
                continue;
            }
            let a = artifact(version)?;
            body.item(version, |out| {
                json_into(out, version);
                out.push(b':');
                value(a, out);
                Ok::<(), Error>(())
            })?;
        }
        body.end_run();
        Ok::<(), Error>(())
    };
    body.write(b",\"versions\":{");
    let only = (form == Form::Abbreviated).then_some(INSTALL_FIELDS);
    members(body, false, &|a, out| json_into(out, &Manifest { name, artifact: a, tarball_base: base.clone(), only }))?;
    body.write(b"}");
    if form == Form::Full {
        let out = body.out();
        out.extend_from_slice(b",\"time\":{\"created\":");
        json_into(out, &rfc3339_ms(src.created_ms));
        out.extend_from_slice(b",\"modified\":");
        json_into(out, &rfc3339_ms(src.modified_ms));
        members(body, true, &|a, out| json_into(out, &rfc3339_ms(a.published_ms)))?;
        body.write(b"}");
    }
    body.write(b"}");
    Ok(())
}

/// The package's fields (description, readme, ...) as the latest version's own text; the last
/// of a repeated key wins, as in a parser's object.
fn package_fields(latest: &Artifact) -> BTreeMap<&'static str, &RawValue> {
    let mut package = BTreeMap::new();
    if let Ok(fields) = serde_json::from_str::<Members<&RawValue>>(&latest.metadata.manifest) {
        for (Key(k), v) in fields.0 {
            if let Some(f) = PACKAGE_FIELDS.iter().find(|f| **f == k) {
                package.insert(*f, v);
            }
        }
    }
    package
}

/// A whole packument of `view`: its bytes and layout.
pub fn whole(view: &PackageView, base_url: &str, form: Form) -> (Vec<u8>, Layout) {
    let mut body = PartedBody::whole();
    render(&Source::of_view(view), base_url, form, &mut body).expect("every version of a whole view is loaded");
    body.finish()
}

/// The full packument as JSON (a proxy merges it with the upstream's).
pub fn full(view: &PackageView, base_url: &str) -> Value {
    serde_json::from_slice(&whole(view, base_url, Form::Full).0).expect("a packument is JSON")
}

/// The abbreviated packument as JSON.
pub fn abbreviated(view: &PackageView, base_url: &str) -> Value {
    serde_json::from_slice(&whole(view, base_url, Form::Abbreviated).0).expect("a packument is JSON")
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
        let doc = serde_json::to_value(full(&view, BASE)).unwrap();
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
        let doc = serde_json::to_value(abbreviated(&view("demo", &["1.0.0"], &[("latest", "1.0.0")]), BASE)).unwrap();
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
    fn stored_fields_are_served_as_their_own_text() {
        // Values the package.json wrote are copied, not re-encoded: a number too large for a
        // double keeps its digits, and a key with escapes still counts (`"post\u0069nstall"`).
        let mut v = view("demo", &["1.0.0"], &[("latest", "1.0.0")]);
        v.artifacts[0].metadata.manifest = r#"{"name":"demo","version":"1.0.0","seed":123456789012345678901234567890,
            "scripts":{"post\u0069nstall":"node x.js"},"_secret":"x","dist":{"tarball":"http://elsewhere/"},
            "description":"d\u00e9mo"}"#
            .into();
        let body = String::from_utf8(whole(&v, BASE, Form::Full).0).unwrap();
        assert!(body.contains(r#""seed":123456789012345678901234567890"#), "{body}");
        assert!(body.contains(r#""description":"d\u00e9mo""#), "the package's field, as written: {body}");
        let doc: Value = serde_json::from_str(&body).unwrap();
        let m = &doc["versions"]["1.0.0"];
        assert_eq!(m["hasInstallScript"], true);
        assert!(m.get("_secret").is_none());
        assert_eq!(m["dist"]["tarball"], "http://reg.test/npm/demo/-/demo-1.0.0.tgz", "the registry's dist wins");
        let abbreviated: Value = serde_json::to_value(abbreviated(&v, BASE)).unwrap();
        assert!(abbreviated["versions"]["1.0.0"].get("seed").is_none());
        assert_eq!(abbreviated["versions"]["1.0.0"]["hasInstallScript"], true);
    }

    #[test]
    fn latest_falls_back_to_newest() {
        let v = view("demo", &["1.0.0", "2.0.0"], &[("beta", "1.0.0")]);
        assert_eq!(latest(&v).unwrap().version, "2.0.0");
        let v = view("demo", &["1.0.0", "2.0.0"], &[("latest", "1.0.0")]);
        assert_eq!(latest(&v).unwrap().version, "1.0.0");
    }
}
