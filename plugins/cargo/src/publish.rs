//! `cargo publish`: `PUT /api/v1/crates/new` with a framed body (u32 LE length, the publish
//! JSON, u32 LE length, the `.crate`). The JSON is what cargo says it publishes; the registry
//! trusts the `.crate`'s own `Cargo.toml` and refuses a request whose two disagree.

use crate::manifest::{normalise_req, same_index, CrateManifest, CRATES_IO_INDEX};
use serde::Deserialize;
use sluice_plugin_sdk::io::{BlobReader, ReadAt};
use sluice_plugin_sdk::Error;
use std::collections::BTreeMap;

/// Largest publish JSON (it carries the README).
const JSON_LIMIT: u64 = 16 << 20;

/// The publish JSON, as far as the index depends on it.
#[derive(Debug, Deserialize)]
pub struct NewCrate {
    pub name: String,
    pub vers: String,
    #[serde(default)]
    pub deps: Vec<NewDep>,
    #[serde(default)]
    pub features: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub links: Option<String>,
    #[serde(default)]
    pub rust_version: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct NewDep {
    /// The crate's real name.
    pub name: String,
    pub version_req: String,
    #[serde(default)]
    pub features: Vec<String>,
    #[serde(default)]
    pub optional: bool,
    #[serde(default = "yes")]
    pub default_features: bool,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    /// None for this registry.
    #[serde(default)]
    pub registry: Option<String>,
    /// The rename, when the dependency has one.
    #[serde(default)]
    pub explicit_name_in_toml: Option<String>,
}

fn yes() -> bool {
    true
}

/// Where the parts of a publish body are.
#[derive(Debug, PartialEq, Eq)]
pub struct Framed {
    pub json: Vec<u8>,
    pub crate_offset: u64,
    pub crate_len: u64,
}

fn u32_at(reader: &BlobReader<impl ReadAt>, offset: u64, what: &str) -> Result<u64, Error> {
    let b = reader
        .read_range(offset, 4)
        .map_err(|_| Error::invalid(format!("the publish body ends before the {what} length")))?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64)
}

/// Splits the framed body; the `.crate` stays where it is, only its range is returned.
pub fn split(body: impl ReadAt) -> Result<Framed, Error> {
    let reader = BlobReader::new(body);
    let json_len = u32_at(&reader, 0, "JSON")?;
    if 8 + json_len > reader.size() {
        return Err(Error::invalid("the publish body is shorter than its JSON length says"));
    }
    if json_len > JSON_LIMIT {
        return Err(Error::too_large(format!("the publish JSON is {json_len} bytes, over the limit of {JSON_LIMIT}")));
    }
    let json = reader
        .read_range(4, json_len)
        .map_err(|_| Error::invalid("the publish body is shorter than its JSON length says"))?;
    let crate_len = u32_at(&reader, 4 + json_len, ".crate")?;
    let crate_offset = 8 + json_len;
    if crate_offset + crate_len != reader.size() {
        return Err(Error::invalid(format!(
            "the publish body is {} bytes, but its lengths say {}",
            reader.size(),
            crate_offset + crate_len
        )));
    }
    if crate_len == 0 {
        return Err(Error::invalid("the publish body holds no .crate"));
    }
    Ok(Framed { json, crate_offset, crate_len })
}

pub fn new_crate(json: &[u8]) -> Result<NewCrate, Error> {
    serde_json::from_slice(json).map_err(|e| Error::invalid(format!("the publish JSON is invalid: {e}")))
}

/// A dependency reduced to what both sides state, for comparing them.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    crate_name: String,
    rename: Option<String>,
    req: String,
    features: Vec<String>,
    optional: bool,
    default_features: bool,
    target: Option<String>,
    kind: String,
    registry: Option<String>,
}

/// Cargo prints `cfg(unix)` keys its own way (`cfg(target_os = "linux")`); spacing is not meaning.
fn squash(target: &Option<String>) -> Option<String> {
    target.as_ref().map(|t| t.chars().filter(|c| !c.is_whitespace()).collect())
}

fn registry_key(url: Option<&str>, own_index: &str) -> Option<String> {
    match url {
        Some(u) if same_index(u, own_index) => None,
        Some(u) if same_index(u, CRATES_IO_INDEX) => Some(CRATES_IO_INDEX.into()),
        Some(u) => Some(u.trim_start_matches("sparse+").trim_end_matches('/').to_ascii_lowercase()),
        None => None,
    }
}

/// Refuses a publish whose JSON states another crate than its `.crate`'s `Cargo.toml`.
pub fn check(new: &NewCrate, manifest: &CrateManifest, own_index: &str) -> Result<(), Error> {
    let mismatch =
        |what: &str| Error::invalid(format!("the publish request and the .crate's Cargo.toml disagree about {what}"));
    if new.name != manifest.name {
        return Err(mismatch(&format!("the name (`{}` and `{}`)", new.name, manifest.name)));
    }
    let vers = semver::Version::parse(&new.vers)
        .map_err(|e| Error::invalid(format!("invalid version `{}`: {e}", new.vers)))?;
    if vers.to_string() != manifest.vers {
        return Err(mismatch(&format!("the version (`{}` and `{}`)", new.vers, manifest.vers)));
    }
    if new.features != manifest.features {
        return Err(mismatch("the features"));
    }
    if new.links != manifest.links {
        return Err(mismatch("`links`"));
    }
    let mut stated = new
        .deps
        .iter()
        .map(|d| {
            let mut features = d.features.clone();
            features.sort();
            Ok(Key {
                crate_name: d.name.clone(),
                rename: d.explicit_name_in_toml.clone(),
                req: normalise_req(&d.version_req)?,
                features,
                optional: d.optional,
                default_features: d.default_features,
                target: squash(&d.target),
                kind: d.kind.clone().unwrap_or_else(|| "normal".into()),
                registry: registry_key(d.registry.as_deref(), own_index),
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let mut packaged: Vec<Key> = manifest
        .deps
        .iter()
        .map(|d| {
            let mut features = d.features.clone();
            features.sort();
            Key {
                crate_name: d.crate_name().to_string(),
                rename: d.package.as_ref().map(|_| d.name.clone()),
                req: d.req.clone(),
                features,
                optional: d.optional,
                default_features: d.default_features,
                target: squash(&d.target),
                kind: d.kind.clone(),
                registry: registry_key(Some(d.registry_for(own_index).as_deref().unwrap_or(own_index)), own_index),
            }
        })
        .collect();
    stated.sort();
    packaged.sort();
    if stated != packaged {
        let names =
            |keys: &[Key]| keys.iter().map(|k| format!("{} {}", k.crate_name, k.req)).collect::<Vec<_>>().join(", ");
        return Err(mismatch(&format!(
            "the dependencies (the request lists [{}], the Cargo.toml [{}])",
            names(&stated),
            names(&packaged)
        )));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::manifest::tests::{APP_TOML, OWN_INDEX};
    use crate::parse::tests::app_crate;
    use serde_json::{json, Value};

    /// The JSON cargo sends for [`APP_TOML`].
    pub fn app_json() -> Value {
        json!({
            "name": "sluice-app", "vers": "0.2.0",
            "deps": [
                {"name": "sluice-core", "version_req": "^0.1", "features": ["fast"], "optional": false,
                 "default_features": false, "target": null, "kind": "normal", "registry": null,
                 "explicit_name_in_toml": "core"},
                {"name": "extra-lib", "version_req": "=1.0.0", "features": [], "optional": true,
                 "default_features": true, "target": null, "kind": "normal",
                 "registry": "sparse+http://other.test/index/"},
                {"name": "from-crates-io", "version_req": "^1", "features": [], "optional": false,
                 "default_features": true, "target": null, "kind": "dev", "registry": CRATES_IO_INDEX},
                {"name": "sluice-core", "version_req": ">=0.1, <0.3", "features": [], "optional": false,
                 "default_features": true, "target": "cfg(unix)", "kind": "normal", "registry": null},
                {"name": "cc-lite", "version_req": "^0.3.1", "features": [], "optional": false,
                 "default_features": true, "target": null, "kind": "build", "registry": CRATES_IO_INDEX}
            ],
            "features": {"default": ["fast"], "fast": ["core/fast"], "extra": ["dep:extra-lib", "core?/fast"]},
            "authors": ["Ada <ada@example.com>"], "description": "Uses the core", "links": null,
            "rust_version": "1.70", "readme": null, "badges": {}
        })
    }

    /// A publish body as cargo frames it.
    pub fn frame(json: &Value, krate: &[u8]) -> Vec<u8> {
        let json = serde_json::to_vec(json).unwrap();
        let mut body = (json.len() as u32).to_le_bytes().to_vec();
        body.extend_from_slice(&json);
        body.extend_from_slice(&(krate.len() as u32).to_le_bytes());
        body.extend_from_slice(krate);
        body
    }

    #[test]
    fn splits_the_frame_and_keeps_the_crate_in_place() {
        let krate = app_crate();
        let body = frame(&app_json(), &krate);
        let f = split(&body).unwrap();
        assert_eq!(&body[f.crate_offset as usize..], &krate[..]);
        assert_eq!(f.crate_len as usize, krate.len());
        assert!(split(&body[..body.len() - 1]).unwrap_err().message.contains("lengths say"));
        assert!(split(&b"\x01"[..]).is_err());
        let mut big = (JSON_LIMIT as u32 + 1).to_le_bytes().to_vec();
        big.resize(JSON_LIMIT as usize + 16, b' ');
        assert_eq!(split(&big).unwrap_err().kind, sluice_plugin_sdk::ErrorKind::TooLarge);
        assert_eq!(split(&b"junk"[..]).unwrap_err().kind, sluice_plugin_sdk::ErrorKind::Invalid);
    }

    #[test]
    fn the_json_must_state_the_packaged_crate() {
        let manifest = CrateManifest::from_toml(APP_TOML).unwrap();
        check(&new_crate(&serde_json::to_vec(&app_json()).unwrap()).unwrap(), &manifest, OWN_INDEX).unwrap();

        let with = |f: &dyn Fn(&mut Value)| {
            let mut j = app_json();
            f(&mut j);
            check(&new_crate(&serde_json::to_vec(&j).unwrap()).unwrap(), &manifest, OWN_INDEX).unwrap_err().message
        };
        assert!(with(&|j| j["vers"] = json!("0.2.1")).contains("version"));
        assert!(with(&|j| j["name"] = json!("other")).contains("name"));
        assert!(with(&|j| j["deps"][0]["version_req"] = json!("^0.2")).contains("dependencies"));
        assert!(with(&|j| j["deps"][0]["registry"] = json!(CRATES_IO_INDEX)).contains("dependencies"));
        assert!(with(&|j| j["deps"][0]["explicit_name_in_toml"] = Value::Null).contains("dependencies"));
        assert!(with(&|j| j["features"]["fast"] = json!([])).contains("features"));
        // Spacing inside cfg() and `0.1` against `^0.1` are the same thing.
        let mut j = app_json();
        j["deps"][3]["target"] = json!("cfg( unix )");
        j["deps"][0]["version_req"] = json!("0.1");
        check(&new_crate(&serde_json::to_vec(&j).unwrap()).unwrap(), &manifest, OWN_INDEX).unwrap();
    }
}
