//! The `Gem::Specification` of a gem: read from the YAML in `metadata.gz`, kept as JSON in the
//! stored manifest, and turned back into the shapes clients read (compact index lines, Marshal).

use serde::{Deserialize, Serialize};
use serde_yaml::Value;
use sluice_plugin_sdk::{Dependency, Error, Metadata};

/// Gem::Platform::RUBY, the platform of pure-Ruby gems.
pub const RUBY_PLATFORM: &str = "ruby";

/// One constraint of a `Gem::Requirement`: an operator and a version (`["~>", "1.2"]`).
pub type Constraint = (String, String);

/// The parts of a gemspec that the indexes and the Marshal gemspec need.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Gemspec {
    pub name: String,
    pub version: String,
    /// `ruby`, or a platform such as `x86_64-linux`.
    pub platform: String,
    pub summary: Option<String>,
    pub description: Option<String>,
    /// A gemspec's email is a string, a list of strings, or nil; Marshal keeps the shape.
    pub email: Option<Email>,
    pub authors: Vec<String>,
    pub homepage: Option<String>,
    pub licenses: Vec<String>,
    /// `metadata` in gemspec order (source_code_uri, changelog_uri...).
    pub metadata: Vec<(String, String)>,
    pub dependencies: Vec<GemDependency>,
    pub required_ruby_version: Vec<Constraint>,
    pub required_rubygems_version: Vec<Constraint>,
    /// The RubyGems version that built the gem.
    pub rubygems_version: String,
    pub specification_version: i32,
    /// The build date, `YYYY-MM-DD`.
    pub date: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(untagged)]
pub enum Email {
    One(String),
    Many(Vec<String>),
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct GemDependency {
    pub name: String,
    pub requirement: Vec<Constraint>,
    /// `runtime` or `development`.
    pub kind: String,
    pub prerelease: bool,
}

/// Requirement text as RubyGems prints it: `>= 1.0, < 3`.
pub fn requirement_text(constraints: &[Constraint]) -> String {
    constraints.iter().map(|(op, v)| format!("{op} {v}")).collect::<Vec<_>>().join(", ")
}

/// Whether a requirement is the default `>= 0`, which indexes leave out.
pub fn is_default_requirement(constraints: &[Constraint]) -> bool {
    constraints.is_empty() || constraints.iter().all(|(op, v)| op == ">=" && v == "0")
}

/// A RubyGems version is a prerelease when it has a letter (`1.0.pre`, `2.0.0.rc1`).
pub fn is_prerelease(version: &str) -> bool {
    version.bytes().any(|b| b.is_ascii_alphabetic())
}

impl Gemspec {
    /// Parses the YAML of `metadata.gz` (a `!ruby/object:Gem::Specification` document).
    pub fn from_yaml(yaml: &[u8]) -> Result<Gemspec, Error> {
        let doc: Value = serde_yaml::from_slice(yaml)
            .map_err(|e| Error::invalid(format!("metadata.gz is not a valid YAML gem specification: {e}")))?;
        check_tag_text(yaml)?;
        check_tags(&doc)?;
        let root = untag(&doc);
        if !root.is_mapping() {
            return Err(Error::invalid("metadata.gz does not hold a gem specification (a YAML mapping)"));
        }
        let name = scalar(root.get("name")).ok_or_else(|| Error::invalid("the gem specification has no name"))?;
        check_name(&name)?;
        let version =
            version_of(root.get("version")).ok_or_else(|| Error::invalid("the gem specification has no version"))?;
        check_version(&version)?;
        let platform = platform_of(root.get("platform"))?;

        let mut dependencies = Vec::new();
        for dep in untag_opt(root.get("dependencies")).and_then(Value::as_sequence).into_iter().flatten() {
            let dep = untag(dep);
            let dep_name = scalar(dep.get("name")).ok_or_else(|| Error::invalid("a dependency has no name"))?;
            check_name(&dep_name)?;
            // Old specifications carry only `version_requirements`.
            let requirement = requirement_of(dep.get("requirement").or_else(|| dep.get("version_requirements")))?;
            let kind = scalar(dep.get("type")).unwrap_or_default();
            let kind = match kind.trim_start_matches(':') {
                "development" => "development",
                _ => "runtime",
            };
            let prerelease = matches!(untag_opt(dep.get("prerelease")), Some(Value::Bool(true)));
            dependencies.push(GemDependency { name: dep_name, requirement, kind: kind.into(), prerelease });
        }

        let email = match untag_opt(root.get("email")) {
            Some(Value::Sequence(items)) => Some(Email::Many(items.iter().filter_map(|v| scalar(Some(v))).collect())),
            other => scalar(other).map(Email::One),
        };
        let metadata = untag_opt(root.get("metadata"))
            .and_then(Value::as_mapping)
            .map(|m| m.iter().filter_map(|(k, v)| Some((scalar(Some(k))?, scalar(Some(v))?))).collect())
            .unwrap_or_default();
        let date = scalar(root.get("date"))
            .and_then(|d| d.get(..10).filter(|d| is_date(d)).map(str::to_string))
            .unwrap_or_else(|| DEFAULT_DATE.to_string());

        Ok(Gemspec {
            name,
            version,
            platform,
            summary: scalar(root.get("summary")),
            description: scalar(root.get("description")),
            email,
            authors: strings(root.get("authors")),
            homepage: scalar(root.get("homepage")),
            licenses: strings(root.get("licenses")),
            metadata,
            dependencies,
            required_ruby_version: requirement_of(root.get("required_ruby_version"))?,
            required_rubygems_version: requirement_of(root.get("required_rubygems_version"))?,
            rubygems_version: scalar(root.get("rubygems_version")).unwrap_or_default(),
            specification_version: untag_opt(root.get("specification_version"))
                .and_then(Value::as_i64)
                .and_then(|n| i32::try_from(n).ok())
                .unwrap_or(4),
            date,
        })
    }

    pub fn from_manifest(manifest: &str) -> Result<Gemspec, Error> {
        serde_json::from_str(manifest).map_err(|e| {
            Error::new(sluice_plugin_sdk::ErrorKind::Internal, format!("stored gemspec is unreadable: {e}"))
        })
    }

    pub fn is_ruby_platform(&self) -> bool {
        self.platform == RUBY_PLATFORM
    }

    /// `VERSION` or `VERSION-PLATFORM`, as the compact index and file names write it.
    pub fn version_and_platform(&self) -> String {
        if self.is_ruby_platform() {
            self.version.clone()
        } else {
            format!("{}-{}", self.version, self.platform)
        }
    }

    /// `NAME-VERSION[-PLATFORM]`, Gem::Specification#full_name.
    pub fn full_name(&self) -> String {
        format!("{}-{}", self.name, self.version_and_platform())
    }

    /// The stored file's name, `NAME-VERSION[-PLATFORM].gem`.
    pub fn file_name(&self) -> String {
        format!("{}.gem", self.full_name())
    }

    /// The contract's metadata, with this spec as the JSON manifest.
    pub fn to_metadata(&self) -> Metadata {
        let mut meta = Metadata::new(&self.name, &self.version);
        meta.qualifier = if self.is_ruby_platform() { String::new() } else { self.platform.clone() };
        meta.summary = self.summary.clone();
        meta.description = self.description.clone();
        meta.license = (!self.licenses.is_empty()).then(|| self.licenses.join(", "));
        meta.homepage = self.homepage.clone().filter(|h| !h.is_empty());
        meta.repository = self.metadata.iter().find(|(k, _)| k == "source_code_uri").map(|(_, v)| v.clone());
        meta.authors = self.authors.clone();
        meta.dependencies = self
            .dependencies
            .iter()
            .map(|d| Dependency {
                name: d.name.clone(),
                requirement: requirement_text(&d.requirement),
                kind: d.kind.clone(),
                group: String::new(),
            })
            .collect();
        meta.manifest = serde_json::to_string(self).expect("a gemspec serialises to JSON");
        meta
    }
}

/// RubyGems' fallback build date (Gem::DEFAULT_SOURCE_DATE_EPOCH), for specs without a readable one.
pub const DEFAULT_DATE: &str = "1980-01-02";

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// Names as rubygems.org accepts them: letters, digits, `.`, `-`, `_`, with at least one letter.
fn check_name(name: &str) -> Result<(), Error> {
    let valid = !name.is_empty()
        && name.len() <= 200
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && name.bytes().any(|b| b.is_ascii_alphabetic())
        && !name.starts_with(['.', '-']);
    if valid {
        Ok(())
    } else {
        Err(Error::invalid(format!("invalid gem name {name:?}: use letters, digits, '.', '-' and '_'")))
    }
}

/// Versions as `gem build` writes them: dot-separated digits and letters, starting with a digit.
/// A `-` would make `NAME-VERSION-PLATFORM` ambiguous, so it is refused.
fn check_version(version: &str) -> Result<(), Error> {
    let valid = version.len() <= 100
        && version.starts_with(|c: char| c.is_ascii_digit())
        && version.split('.').all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric()));
    if valid {
        Ok(())
    } else {
        Err(Error::invalid(format!("invalid gem version {version:?}")))
    }
}

fn platform_of(value: Option<&Value>) -> Result<String, Error> {
    // Current RubyGems writes the platform as a string; very old specs wrote a Gem::Platform
    // mapping of cpu, os and version.
    let platform = match untag_opt(value) {
        None | Some(Value::Null) => RUBY_PLATFORM.to_string(),
        Some(v @ Value::Mapping(_)) => {
            ["cpu", "os", "version"].iter().filter_map(|k| scalar(v.get(*k))).collect::<Vec<_>>().join("-")
        }
        other => scalar(other).unwrap_or_default(),
    };
    let valid = !platform.is_empty()
        && platform.len() <= 100
        && platform.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if valid {
        Ok(platform)
    } else {
        Err(Error::invalid(format!("invalid gem platform {platform:?}")))
    }
}

/// A `!ruby/object:Gem::Version` (a mapping with `version`), or a bare string.
fn version_of(value: Option<&Value>) -> Option<String> {
    let v = untag_opt(value)?;
    if v.is_mapping() { scalar(v.get("version")) } else { scalar(Some(v)) }.map(|s| s.trim().to_string())
}

/// A `!ruby/object:Gem::Requirement`: `requirements: [[op, Gem::Version], ...]`.
fn requirement_of(value: Option<&Value>) -> Result<Vec<Constraint>, Error> {
    let Some(req) = untag_opt(value) else { return Ok(Vec::new()) };
    let list = if req.is_mapping() { untag_opt(req.get("requirements")) } else { Some(req) };
    let mut constraints = Vec::new();
    for pair in list.and_then(Value::as_sequence).into_iter().flatten() {
        let pair = untag(pair).as_sequence().filter(|p| p.len() == 2);
        let parsed = pair.and_then(|p| Some((scalar(p.first())?, version_of(p.get(1))?)));
        let Some((op, version)) = parsed else {
            return Err(Error::invalid("a version requirement in the gem specification is malformed"));
        };
        if !["=", "!=", ">", "<", ">=", "<=", "~>"].contains(&op.as_str()) || check_version(&version).is_err() {
            return Err(Error::invalid(format!("invalid version requirement {op:?} {version:?}")));
        }
        constraints.push((op, version));
    }
    Ok(constraints)
}

/// The Ruby objects RubyGems writes in a gem specification, the classes `Gem::SafeYAML` loads.
const RUBYGEMS_TAGS: &[&str] = &[
    "ruby/object:Gem::Specification",
    "ruby/object:Gem::Version",
    "ruby/object:Gem::Requirement",
    "ruby/object:Gem::Dependency",
    "ruby/object:Gem::Platform",
    // Specifications from RubyGems before 1.3 spell requirements this way.
    "ruby/object:Gem::Version::Requirement",
    // Symbols (`:runtime`), which safe loading permits.
    "ruby/sym",
    "ruby/symbol",
];

fn foreign_tag(tag: &str) -> Error {
    Error::invalid(format!(
        "metadata.gz holds the YAML tag {tag}, which RubyGems never writes in a gem specification \
         (only Gem::Specification, Gem::Version, Gem::Requirement, Gem::Dependency and Gem::Platform objects)"
    ))
}

/// The same check on the text: the YAML parser resolves some tag spellings Psych still honours
/// (`!!ruby/object:X`, `%TAG` shorthands, verbatim `!<...>` tags) without keeping them, so any
/// spelling of a Ruby tag other than `!ruby/TYPE` with an allowed type is refused outright.
fn check_tag_text(yaml: &[u8]) -> Result<(), Error> {
    let text = String::from_utf8_lossy(yaml);
    for line in text.lines() {
        if line.starts_with("%TAG") {
            return Err(Error::invalid("metadata.gz declares a %TAG shorthand, which RubyGems never writes"));
        }
    }
    for marker in ["!!ruby/", "tag:ruby.yaml.org", "tag:yaml.org,2002:ruby", "!<"] {
        if let Some(at) = text.find(marker) {
            let tag: String = text[at..].chars().take_while(|c| !c.is_whitespace()).collect();
            return Err(foreign_tag(&tag));
        }
    }
    for (at, _) in text.match_indices("!ruby/") {
        let tag: String = text[at + 1..].chars().take_while(|c| !c.is_whitespace()).collect();
        if !RUBYGEMS_TAGS.contains(&tag.as_str()) {
            return Err(foreign_tag(&format!("!{tag}")));
        }
    }
    Ok(())
}

/// Refuses any Ruby tag (`!ruby/object:X`, `!ruby/hash:X`, `!ruby/struct:X`, ...) but those
/// RubyGems writes: Psych instantiates such tags as arbitrary classes, which is how gadget chains
/// reach clients that load a gem's YAML unsafely. Core YAML tags (`!binary`) are harmless.
fn check_tags(value: &Value) -> Result<(), Error> {
    match value {
        Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let bare = tag.trim_start_matches('!');
            let bare = bare.strip_prefix("tag:yaml.org,2002:").unwrap_or(bare);
            if bare.starts_with("ruby/") && !RUBYGEMS_TAGS.contains(&bare) {
                return Err(foreign_tag(&tag));
            }
            check_tags(&tagged.value)
        }
        Value::Sequence(items) => items.iter().try_for_each(check_tags),
        Value::Mapping(map) => map.iter().try_for_each(|(k, v)| check_tags(k).and_then(|()| check_tags(v))),
        _ => Ok(()),
    }
}

/// The value under a Ruby tag (`!ruby/object:...`), or the value itself.
fn untag(value: &Value) -> &Value {
    match value {
        Value::Tagged(tagged) => untag(&tagged.value),
        v => v,
    }
}

fn untag_opt(value: Option<&Value>) -> Option<&Value> {
    value.map(untag)
}

/// A string, number or boolean as text; none for nil, mappings and lists.
fn scalar(value: Option<&Value>) -> Option<String> {
    match untag_opt(value)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    match untag_opt(value) {
        Some(Value::Sequence(items)) => items.iter().filter_map(|v| scalar(Some(v))).collect(),
        other => scalar(other).into_iter().collect(),
    }
}

/// The gemspec's `files` (what `gem build` packed into `data.tar.gz`); empty when the YAML
/// lists none or does not parse (`from_yaml` reports that).
pub fn listed_files(yaml: &[u8]) -> Vec<String> {
    let Ok(root) = serde_yaml::from_slice::<serde_yaml::Value>(yaml) else { return Vec::new() };
    untag(&root)
        .get("files")
        .and_then(serde_yaml::Value::as_sequence)
        .map(|files| files.iter().filter_map(|f| f.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO_YAML: &str = include_str!("../tests/fixtures/sluice-hello-1.2.0.yaml");

    #[test]
    fn reads_a_spec_written_by_gem_build() {
        let spec = Gemspec::from_yaml(HELLO_YAML.as_bytes()).unwrap();
        assert_eq!(spec.name, "sluice-hello");
        assert_eq!(spec.version, "1.2.0");
        assert_eq!(spec.platform, "ruby");
        assert_eq!(spec.authors, ["Ada", "Bob"]);
        assert_eq!(spec.email, Some(Email::One("ada@example.com".into())));
        assert_eq!(spec.licenses, ["MIT"]);
        assert_eq!(spec.date, "2026-11-24");
        assert_eq!(spec.rubygems_version, "3.3.15");
        assert_eq!(spec.metadata, [("source_code_uri".to_string(), "https://example.com/src".to_string())]);
        assert_eq!(spec.required_ruby_version, [(">=".to_string(), "2.7".to_string())]);
        assert!(is_default_requirement(&spec.required_rubygems_version));
        assert_eq!(spec.dependencies.len(), 2);
        assert_eq!(spec.dependencies[0].name, "sluice-dep");
        assert_eq!(requirement_text(&spec.dependencies[0].requirement), ">= 1.0, < 3");
        assert_eq!(spec.dependencies[0].kind, "runtime");
        assert_eq!(spec.dependencies[1].kind, "development");
        assert_eq!(spec.file_name(), "sluice-hello-1.2.0.gem");

        let meta = spec.to_metadata();
        assert_eq!(meta.qualifier, "");
        assert_eq!(meta.license.as_deref(), Some("MIT"));
        assert_eq!(meta.repository.as_deref(), Some("https://example.com/src"));
        assert_eq!(meta.dependencies[0].requirement, ">= 1.0, < 3");
        assert_eq!(Gemspec::from_manifest(&meta.manifest).unwrap(), spec);
    }

    #[test]
    fn platform_gems_are_qualified() {
        let yaml = HELLO_YAML.replace("platform: ruby", "platform: x86_64-linux");
        let spec = Gemspec::from_yaml(yaml.as_bytes()).unwrap();
        assert_eq!(spec.file_name(), "sluice-hello-1.2.0-x86_64-linux.gem");
        assert_eq!(spec.to_metadata().qualifier, "x86_64-linux");
    }

    #[test]
    fn refuses_bad_identities() {
        for (from, to) in [
            ("name: sluice-hello", "name: ../evil"),
            ("name: sluice-hello", "name:"),
            ("  version: 1.2.0", "  version: 1.2-0"),
            ("platform: ruby", "platform: a/b"),
        ] {
            let yaml = HELLO_YAML.replacen(from, to, 1);
            let err = Gemspec::from_yaml(yaml.as_bytes()).unwrap_err();
            assert_eq!(err.kind, sluice_plugin_sdk::ErrorKind::Invalid, "{to}");
        }
        assert!(Gemspec::from_yaml(b"- just\n- a list\n").is_err());
        assert!(Gemspec::from_yaml(b"name: [unclosed").is_err());
    }

    #[test]
    fn prerelease_versions_have_letters() {
        assert!(is_prerelease("1.0.pre"));
        assert!(is_prerelease("2.0.0.rc1"));
        assert!(!is_prerelease("1.10.3"));
    }

    #[test]
    fn refuses_yaml_tags_rubygems_does_not_write() {
        for (from, to) in [
            ("summary: Says hello", "summary: !ruby/object:Gem::Installer\n  i: x"),
            ("summary: Says hello", "summary: !ruby/hash:ActiveSupport::HashWithIndifferentAccess\n  a: b"),
            ("summary: Says hello", "summary: !ruby/struct:Foo\n  a: b"),
            ("summary: Says hello", "summary: !!ruby/object:Gem::Installer\n  i: x"),
            ("summary: Says hello", "summary: !ruby/object:Gem::Requirement\n  requirements: !ruby/object:Gem::Package::TarReader\n    io: x"),
            ("summary: Says hello", "summary: !<tag:ruby.yaml.org,2002:object:Gem::Installer>\n  i: x"),
            ("summary: Says hello", "summary: !r!object:Gem::Installer\n  i: x"),
        ] {
            let mut yaml = HELLO_YAML.replacen(from, to, 1);
            if to.contains("!r!") {
                yaml = format!("%TAG !r! tag:ruby.yaml.org,2002:\n{yaml}");
            }
            assert_ne!(yaml, HELLO_YAML);
            let err = Gemspec::from_yaml(yaml.as_bytes()).unwrap_err();
            assert_eq!(err.kind, sluice_plugin_sdk::ErrorKind::Invalid, "{to}");
            assert!(err.message.contains("YAML tag") || err.message.contains("%TAG"), "{to}: {}", err.message);
        }
        // RubyGems' own tags, a symbol and a binary string are fine.
        assert!(HELLO_YAML.contains("!ruby/object:Gem::Requirement"));
        let yaml = HELLO_YAML.replacen("summary: Says hello", "summary: !binary |-\n  U2F5cyBoZWxsbw==", 1);
        assert!(Gemspec::from_yaml(yaml.as_bytes()).is_ok());
    }
}
