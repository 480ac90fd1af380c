//! A crate version as the registry records it, read from the normalised `Cargo.toml` that
//! `cargo package` writes into every `.crate` (workspace inheritance resolved, path dependencies
//! turned into registry ones, `registry = "NAME"` turned into `registry-index = "URL"`).

use serde::{Deserialize, Serialize};
use sluice_plugin_sdk::{Dependency, Error, Metadata};
use std::collections::BTreeMap;
use toml::{Table, Value};

/// The index URL cargo and the index use for crates.io dependencies of another registry's crate.
pub const CRATES_IO_INDEX: &str = "https://github.com/rust-lang/crates.io-index";

/// One dependency, the way the index needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dep {
    /// The name the depending crate uses (the rename, if there is one).
    pub name: String,
    /// The real crate name when the dependency is renamed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// The requirement as cargo prints it (`0.1` is `^0.1`).
    pub req: String,
    pub features: Vec<String>,
    pub optional: bool,
    pub default_features: bool,
    /// `cfg(...)` or a target triple, for `[target.X.dependencies]`.
    pub target: Option<String>,
    /// `normal`, `dev` or `build`.
    pub kind: String,
    /// The `registry-index` the `.crate` names; none means crates.io. Which index is "this
    /// registry" is only known when serving a request, so the index line decides then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_index: Option<String>,
}

impl Dep {
    /// The crate this dependency resolves to.
    pub fn crate_name(&self) -> &str {
        self.package.as_deref().unwrap_or(&self.name)
    }

    /// The index's `registry` field: none for this registry, else the other registry's index URL.
    pub fn registry_for(&self, own_index: &str) -> Option<String> {
        match &self.registry_index {
            None => Some(CRATES_IO_INDEX.to_string()),
            Some(url) if same_index(url, own_index) => None,
            Some(url) => Some(url.clone()),
        }
    }
}

/// Whether two index URLs name the same index (`sparse+` and a trailing `/` do not matter).
pub fn same_index(a: &str, b: &str) -> bool {
    let norm = |u: &str| u.trim().trim_start_matches("sparse+").trim_end_matches('/').to_ascii_lowercase();
    norm(a) == norm(b)
}

/// A crate version: what the index line and the package page are made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrateManifest {
    pub name: String,
    pub vers: String,
    pub deps: Vec<Dep>,
    pub features: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub links: Option<String>,
    #[serde(default)]
    pub rust_version: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub license: Option<String>,
    #[serde(default)]
    pub homepage: Option<String>,
    #[serde(default)]
    pub repository: Option<String>,
    #[serde(default)]
    pub documentation: Option<String>,
    #[serde(default)]
    pub authors: Vec<String>,
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default)]
    pub categories: Vec<String>,
}

/// The dependency tables of a manifest and the kind the index gives them. The `_` spellings are
/// the old aliases cargo still reads in editions before 2024.
const DEP_TABLES: &[(&str, &str)] = &[
    ("dependencies", "normal"),
    ("dev-dependencies", "dev"),
    ("dev_dependencies", "dev"),
    ("build-dependencies", "build"),
    ("build_dependencies", "build"),
];

/// crates.io's rule for names: ASCII letters, digits, `-` and `_`, starting with a letter, at
/// most 64 characters.
pub fn check_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "invalid crate name `{name}`: use ASCII letters, digits, `-` and `_`, start with a letter, at most 64 characters"
        )))
    }
}

/// A name's canonical form: crates.io treats `Foo-Bar` and `foo_bar` as one crate.
pub fn canonical_name(name: &str) -> String {
    name.to_ascii_lowercase().replace('-', "_")
}

/// A requirement as cargo prints it in the publish request and the index (`0.1` -> `^0.1`).
pub fn normalise_req(req: &str) -> Result<String, Error> {
    semver::VersionReq::parse(req.trim())
        .map(|r| r.to_string())
        .map_err(|e| Error::invalid(format!("invalid version requirement `{req}`: {e}")))
}

impl CrateManifest {
    /// Reads a normalised `Cargo.toml`.
    pub fn from_toml(text: &str) -> Result<CrateManifest, Error> {
        let doc: Table =
            toml::from_str(text).map_err(|e| Error::invalid(format!("Cargo.toml is not valid TOML: {e}")))?;
        let package = doc
            .get("package")
            .and_then(Value::as_table)
            .ok_or_else(|| Error::invalid("Cargo.toml has no [package] table"))?;
        let name = string(package, "package.name")?.ok_or_else(|| Error::invalid("Cargo.toml has no package.name"))?;
        check_name(&name)?;
        let vers =
            string(package, "package.version")?.ok_or_else(|| Error::invalid("Cargo.toml has no package.version"))?;
        let version = semver::Version::parse(&vers)
            .map_err(|e| Error::invalid(format!("package.version `{vers}` is not a semantic version: {e}")))?;

        let mut deps = Vec::new();
        for (table, kind) in DEP_TABLES {
            if let Some(t) = doc.get(*table) {
                read_deps(t, table, kind, None, &mut deps)?;
            }
        }
        if let Some(targets) = doc.get("target") {
            let targets = targets.as_table().ok_or_else(|| Error::invalid("[target] must be a table"))?;
            for (platform, body) in targets {
                let body =
                    body.as_table().ok_or_else(|| Error::invalid(format!("[target.{platform}] must be a table")))?;
                for (table, kind) in DEP_TABLES {
                    if let Some(t) = body.get(*table) {
                        read_deps(t, &format!("target.{platform}.{table}"), kind, Some(platform), &mut deps)?;
                    }
                }
            }
        }

        let mut features = BTreeMap::new();
        if let Some(f) = doc.get("features") {
            let f = f.as_table().ok_or_else(|| Error::invalid("[features] must be a table"))?;
            for (feature, values) in f {
                features.insert(feature.clone(), strings(values, &format!("features.{feature}"))?);
            }
        }
        let list = |key: &str| match package.get(key) {
            Some(v) => strings(v, &format!("package.{key}")),
            None => Ok(Vec::new()),
        };
        Ok(CrateManifest {
            name,
            vers: version.to_string(),
            deps,
            features,
            links: string(package, "package.links")?,
            rust_version: string(package, "package.rust-version")?,
            description: string(package, "package.description")?,
            license: string(package, "package.license")?,
            homepage: string(package, "package.homepage")?,
            repository: string(package, "package.repository")?,
            documentation: string(package, "package.documentation")?,
            authors: list("authors")?,
            keywords: list("keywords")?,
            categories: list("categories")?,
        })
    }

    /// The `.crate` file name cargo downloads and the host stores.
    pub fn file_name(&self) -> String {
        format!("{}-{}.crate", self.name, self.vers)
    }

    pub fn to_metadata(&self) -> Metadata {
        let mut meta = Metadata::new(self.name.clone(), self.vers.clone());
        meta.summary = self.description.clone();
        meta.license = self.license.clone();
        meta.homepage = self.homepage.clone();
        meta.repository = self.repository.clone();
        meta.authors = self.authors.clone();
        meta.keywords = self.keywords.clone();
        meta.dependencies = self
            .deps
            .iter()
            .map(|d| Dependency {
                name: d.crate_name().to_string(),
                requirement: d.req.clone(),
                kind: match (d.kind.as_str(), d.optional) {
                    ("dev", _) => "development",
                    ("build", _) => "build",
                    (_, true) => "optional",
                    _ => "runtime",
                }
                .into(),
                group: d.target.clone().unwrap_or_default(),
            })
            .collect();
        meta.manifest = serde_json::to_string(self).expect("a manifest serialises");
        meta
    }

    pub fn from_stored(manifest: &str) -> Result<CrateManifest, Error> {
        serde_json::from_str(manifest)
            .map_err(|e| Error::new(sluice_plugin_sdk::ErrorKind::Internal, format!("stored manifest: {e}")))
    }
}

fn read_deps(table: &Value, at: &str, kind: &str, target: Option<&str>, out: &mut Vec<Dep>) -> Result<(), Error> {
    let table = table.as_table().ok_or_else(|| Error::invalid(format!("[{at}] must be a table")))?;
    for (name, spec) in table {
        let dep = match spec {
            Value::String(req) => Dep {
                name: name.clone(),
                package: None,
                req: normalise_req(req)?,
                features: Vec::new(),
                optional: false,
                default_features: true,
                target: target.map(str::to_string),
                kind: kind.into(),
                registry_index: None,
            },
            Value::Table(t) => {
                let here = format!("{at}.{name}");
                if t.contains_key("registry") {
                    return Err(Error::invalid(format!(
                        "{here} names a registry by its local name; a packaged Cargo.toml names its `registry-index`"
                    )));
                }
                let req = string(t, &format!("{here}.version"))?.ok_or_else(|| {
                    Error::invalid(format!("dependency `{name}` has no version requirement; all dependencies of a published crate need one"))
                })?;
                let package = string(t, &format!("{here}.package"))?;
                if let Some(p) = &package {
                    check_name(p)?;
                }
                Dep {
                    name: name.clone(),
                    package,
                    req: normalise_req(&req)?,
                    features: match t.get("features") {
                        Some(v) => strings(v, &format!("{here}.features"))?,
                        None => Vec::new(),
                    },
                    optional: boolean(t, "optional", &here)?.unwrap_or(false),
                    default_features: match boolean(t, "default-features", &here)? {
                        Some(b) => b,
                        None => boolean(t, "default_features", &here)?.unwrap_or(true),
                    },
                    target: target.map(str::to_string),
                    kind: kind.into(),
                    registry_index: string(t, &format!("{here}.registry-index"))?,
                }
            }
            _ => return Err(Error::invalid(format!("{at}.{name} must be a version string or a table"))),
        };
        check_name(&dep.name)?;
        out.push(dep);
    }
    Ok(())
}

/// A string field; a table (an un-normalised `{ workspace = true }`) or another type is invalid.
fn string(table: &Table, key_path: &str) -> Result<Option<String>, Error> {
    let key = key_path.rsplit('.').next().unwrap_or(key_path);
    match table.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Error::invalid(format!("{key_path} must be a string in a packaged Cargo.toml"))),
    }
}

fn boolean(table: &Table, key: &str, at: &str) -> Result<Option<bool>, Error> {
    match table.get(key) {
        None => Ok(None),
        Some(Value::Boolean(b)) => Ok(Some(*b)),
        Some(_) => Err(Error::invalid(format!("{at}.{key} must be true or false"))),
    }
}

fn strings(value: &Value, at: &str) -> Result<Vec<String>, Error> {
    let array = value.as_array().ok_or_else(|| Error::invalid(format!("{at} must be an array of strings")))?;
    array
        .iter()
        .map(|v| {
            v.as_str().map(str::to_string).ok_or_else(|| Error::invalid(format!("{at} must be an array of strings")))
        })
        .collect()
}

/// The normalised manifest's `package.readme`: a path, `false` (none: `Some(None)`), or absent
/// (cargo's default README files: `None`).
pub fn readme_setting(text: &str) -> Option<Option<String>> {
    let doc: Table = toml::from_str(text).ok()?;
    match doc.get("package")?.as_table()?.get("readme")? {
        Value::String(path) => Some(Some(path.clone())),
        Value::Boolean(false) => Some(None),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A normalised manifest shaped like the ones cargo 1.95 writes: every dependency a table,
    /// the same-registry one with its `registry-index`, a rename, a target-specific dependency.
    pub const APP_TOML: &str = r#"
[package]
edition = "2021"
rust-version = "1.70"
name = "sluice-app"
version = "0.2.0"
authors = ["Ada <ada@example.com>"]
build = false
description = "Uses the core"
license = "MIT OR Apache-2.0"
keywords = ["demo"]

[features]
default = ["fast"]
fast = ["core/fast"]
extra = ["dep:extra-lib", "core?/fast"]

[dependencies.core]
version = "0.1"
features = ["fast"]
default-features = false
package = "sluice-core"
registry-index = "sparse+http://127.0.0.1:9/cargo/index/"

[dependencies.extra-lib]
version = "=1.0.0"
optional = true
registry-index = "sparse+http://other.test/index/"

[dev-dependencies.from-crates-io]
version = "1"

[target."cfg(unix)".dependencies.sluice-core]
version = ">=0.1, <0.3"
registry-index = "sparse+http://127.0.0.1:9/cargo/index/"

[build-dependencies]
cc-lite = "0.3.1"
"#;

    pub const OWN_INDEX: &str = "sparse+http://127.0.0.1:9/cargo/index/";

    #[test]
    fn reads_dependencies_of_every_kind() {
        let m = CrateManifest::from_toml(APP_TOML).unwrap();
        assert_eq!((m.name.as_str(), m.vers.as_str()), ("sluice-app", "0.2.0"));
        assert_eq!(m.rust_version.as_deref(), Some("1.70"));
        assert_eq!(m.features["extra"], ["dep:extra-lib", "core?/fast"]);
        let core = m.deps.iter().find(|d| d.name == "core").unwrap();
        assert_eq!(core.crate_name(), "sluice-core");
        assert_eq!((core.req.as_str(), core.default_features, core.optional), ("^0.1", false, false));
        assert_eq!(core.registry_for(OWN_INDEX), None, "same registry");
        let extra = m.deps.iter().find(|d| d.name == "extra-lib").unwrap();
        assert!(extra.optional);
        assert_eq!(extra.registry_for(OWN_INDEX).as_deref(), Some("sparse+http://other.test/index/"));
        let dev = m.deps.iter().find(|d| d.kind == "dev").unwrap();
        assert_eq!((dev.req.as_str(), dev.registry_for(OWN_INDEX).as_deref()), ("^1", Some(CRATES_IO_INDEX)));
        let unix = m.deps.iter().find(|d| d.target.is_some()).unwrap();
        assert_eq!((unix.target.as_deref(), unix.req.as_str()), (Some("cfg(unix)"), ">=0.1, <0.3"));
        let build = m.deps.iter().find(|d| d.kind == "build").unwrap();
        assert_eq!(build.req, "^0.3.1");
        let meta = m.to_metadata();
        assert_eq!(meta.summary.as_deref(), Some("Uses the core"));
        assert!(meta.dependencies.iter().any(|d| d.name == "sluice-core" && d.group == "cfg(unix)"));
        assert_eq!(CrateManifest::from_stored(&meta.manifest).unwrap(), m);
    }

    #[test]
    fn refuses_what_cannot_be_published() {
        let err = |toml: &str| CrateManifest::from_toml(toml).unwrap_err().message;
        assert!(err("[package]\nname = \"a\"\n").contains("package.version"));
        assert!(err("[package]\nname = \"9a\"\nversion = \"1.0.0\"\n").contains("invalid crate name"));
        assert!(err("[package]\nname = \"a\"\nversion = \"one\"\n").contains("not a semantic version"));
        assert!(err("[package]\nname = \"a\"\nversion = \"1.0.0\"\n[dependencies.b]\npath = \"../b\"\n")
            .contains("no version requirement"));
        assert!(err(
            "[package]\nname = \"a\"\nversion = \"1.0.0\"\n[dependencies.b]\nversion = \"1\"\nregistry = \"x\"\n"
        )
        .contains("registry-index"));
        assert!(err("[package]\nname = \"a\"\nversion.workspace = true\n").contains("must be a string"));
        assert!(err("not toml [").contains("not valid TOML"));
        assert_eq!(canonical_name("Foo-Bar"), canonical_name("foo_bar"));
    }
}
