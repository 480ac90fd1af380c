//! The indexes clients read, rendered from the repository's packages: the compact index that
//! Bundler and `gem` resolve with (`/versions`, `/info/NAME`, `/names`), the Marshal indexes
//! (`specs.4.8.gz` and friends) and the Marshal gemspec of one version.

use crate::marshal::{self, Value};
use crate::spec::{is_default_requirement, is_prerelease, Constraint, Email, Gemspec};
use crate::version;
use md5::Md5;
use sha2::Digest;
use sluice_plugin_sdk::{Artifact, Error, PackageView};
use std::collections::HashMap;

/// A stored gem file with its parsed spec.
pub struct Release<'a> {
    pub artifact: &'a Artifact,
    pub spec: Gemspec,
}

/// The gem files of a package, oldest first, each with its spec.
pub fn releases(package: &PackageView) -> Result<Vec<Release<'_>>, Error> {
    package
        .artifacts
        .iter()
        .map(|artifact| Ok(Release { artifact, spec: Gemspec::from_manifest(&artifact.metadata.manifest)? }))
        .collect()
}

pub fn md5_hex(body: &[u8]) -> String {
    hex::encode(Md5::digest(body))
}

/// `/info/NAME`: one line per installable file, `VERSION[-PLATFORM] DEPS|checksum:SHA256[,ruby:REQ][,rubygems:REQ]`.
pub fn info(package: &PackageView) -> Result<String, Error> {
    let mut out = String::from("---\n");
    for release in releases(package)?.iter().filter(|r| !r.artifact.yanked) {
        let spec = &release.spec;
        let deps: Vec<String> = spec
            .dependencies
            .iter()
            .filter(|d| d.kind == "runtime")
            .map(|d| format!("{}:{}", d.name, compact_requirement(&d.requirement)))
            .collect();
        out.push_str(&format!(
            "{} {}|checksum:{}",
            spec.version_and_platform(),
            deps.join(","),
            release.artifact.sha256
        ));
        if !is_default_requirement(&spec.required_ruby_version) {
            out.push_str(&format!(",ruby:{}", compact_requirement(&spec.required_ruby_version)));
        }
        if !is_default_requirement(&spec.required_rubygems_version) {
            out.push_str(&format!(",rubygems:{}", compact_requirement(&spec.required_rubygems_version)));
        }
        out.push('\n');
    }
    Ok(out)
}

/// A requirement in the compact index: constraints joined by `&` (`>= 1.0&< 3`).
fn compact_requirement(constraints: &[Constraint]) -> String {
    if constraints.is_empty() {
        return ">= 0".into();
    }
    constraints.iter().map(|(op, v)| format!("{op} {v}")).collect::<Vec<_>>().join("&")
}

/// `/versions`: every gem with its files' versions and the MD5 of its `/info` body. Yanked
/// files are listed as `-VERSION` after the live ones, so a client that cached them drops them.
pub fn versions(packages: &[PackageView]) -> Result<String, Error> {
    let updated = packages.iter().map(|p| p.modified_ms).max().unwrap_or(0);
    let mut out = format!("created_at: {}\n---\n", rfc3339_seconds(updated));
    for package in packages {
        let releases = releases(package)?;
        if releases.is_empty() {
            continue;
        }
        let live = releases.iter().filter(|r| !r.artifact.yanked).map(|r| r.spec.version_and_platform());
        let yanked =
            releases.iter().filter(|r| r.artifact.yanked).map(|r| format!("-{}", r.spec.version_and_platform()));
        let list: Vec<String> = live.chain(yanked).collect();
        out.push_str(&format!("{} {} {}\n", package.name, list.join(","), md5_hex(info(package)?.as_bytes())));
    }
    Ok(out)
}

/// `/names`: every gem with an installable file. The compact index writes the names joined by
/// newlines after `---\n`, then a newline: with no gems that is `---\n\n`.
pub fn names(packages: &[PackageView]) -> String {
    let names: Vec<&str> =
        packages.iter().filter(|p| p.artifacts.iter().any(Artifact::is_live)).map(|p| p.name.as_str()).collect();
    format!("---\n{}\n", names.join("\n"))
}

/// `2024-01-02T03:04:05Z`, the form of the compact index's `created_at`.
fn rfc3339_seconds(ms: u64) -> String {
    let with_ms = sluice_plugin_sdk::http::rfc3339_ms(ms);
    format!("{}Z", &with_ms[..19])
}

/// Which Marshal index to render.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum SpecsIndex {
    /// `specs.4.8.gz`: every release (non-prerelease) version.
    All,
    /// `latest_specs.4.8.gz`: the highest release version of each gem and platform.
    Latest,
    /// `prerelease_specs.4.8.gz`: every prerelease version.
    Prerelease,
}

/// The Marshal array `[[name, Gem::Version, platform], ...]` of an index, not yet gzipped.
pub fn specs(packages: &[PackageView], which: SpecsIndex) -> Result<Vec<u8>, Error> {
    let mut tuples: Vec<(String, String, String)> = Vec::new();
    for package in packages {
        let live: Vec<Gemspec> = releases(package)?
            .into_iter()
            .filter(|r| !r.artifact.yanked && is_prerelease(&r.spec.version) == (which == SpecsIndex::Prerelease))
            .map(|r| r.spec)
            .collect();
        // The highest version per platform, found in one pass (linear in versions).
        let mut highest: HashMap<&str, &str> = HashMap::new();
        for spec in &live {
            let best = highest.entry(spec.platform.as_str()).or_insert(spec.version.as_str());
            if version::compare(best, &spec.version).is_lt() {
                *best = spec.version.as_str();
            }
        }
        for spec in &live {
            let newest = version::compare(highest[spec.platform.as_str()], &spec.version).is_le();
            if which != SpecsIndex::Latest || newest {
                tuples.push((spec.name.clone(), spec.version.clone(), spec.platform.clone()));
            }
        }
    }
    // Two files of one version and platform cannot exist, but equal versions can be spelt
    // differently (`1.0`, `1.0.0`): keep one tuple per name, version and platform.
    tuples.dedup();
    let items = tuples
        .into_iter()
        .map(|(name, version, platform)| {
            Value::Array(vec![Value::Str(name), gem_version(&version), Value::Str(platform)])
        })
        .collect();
    Ok(marshal::dump(&Value::Array(items)))
}

fn gem_version(version: &str) -> Value {
    Value::UserMarshal { class: "Gem::Version".into(), data: Box::new(Value::Array(vec![Value::str(version)])) }
}

fn gem_requirement(constraints: &[Constraint]) -> Value {
    let default = [(">=".to_string(), "0".to_string())];
    let constraints = if constraints.is_empty() { &default[..] } else { constraints };
    let pairs = constraints.iter().map(|(op, v)| Value::Array(vec![Value::str(op), gem_version(v)])).collect();
    Value::UserMarshal { class: "Gem::Requirement".into(), data: Box::new(Value::Array(vec![Value::Array(pairs)])) }
}

/// `Marshal.dump(spec)` of a Gem::Specification, as `quick/Marshal.4.8/*.gemspec.rz` holds it
/// (before deflating): the fields of Gem::Specification#_dump, in its order.
pub fn gemspec_marshal(spec: &Gemspec) -> Vec<u8> {
    let dependencies = spec
        .dependencies
        .iter()
        .map(|d| Value::Object {
            class: "Gem::Dependency".into(),
            ivars: vec![
                ("@name".into(), Value::str(&d.name)),
                ("@requirement".into(), gem_requirement(&d.requirement)),
                ("@type".into(), Value::Symbol(d.kind.clone())),
                ("@prerelease".into(), Value::Bool(d.prerelease)),
                ("@version_requirements".into(), gem_requirement(&d.requirement)),
            ],
        })
        .collect();
    let email = match &spec.email {
        None => Value::Nil,
        Some(Email::One(e)) => Value::str(e),
        Some(Email::Many(list)) => Value::Array(list.iter().map(Value::str).collect()),
    };
    let strings = |list: &[String]| Value::Array(list.iter().map(Value::str).collect());
    let fields = vec![
        Value::str(&spec.rubygems_version),
        Value::Int(spec.specification_version),
        Value::str(&spec.name),
        gem_version(&spec.version),
        date_value(&spec.date),
        Value::opt_str(spec.summary.as_deref()),
        gem_requirement(&spec.required_ruby_version),
        gem_requirement(&spec.required_rubygems_version),
        // @original_platform: the platform as the gemspec wrote it.
        Value::str(&spec.platform),
        Value::Array(dependencies),
        // rubyforge_project, long gone
        Value::str(""),
        email,
        strings(&spec.authors),
        // Gem::Specification's default description is "", which clients print without a check.
        Value::str(spec.description.as_deref().unwrap_or("")),
        Value::opt_str(spec.homepage.as_deref()),
        // has_rdoc
        Value::Bool(true),
        // @new_platform: "ruby" for pure-Ruby gems, else a Gem::Platform, which `_load` keeps
        // as the spec's platform (a String here would never equal Gem::Platform.new(...)).
        platform_value(&spec.platform),
        strings(&spec.licenses),
        Value::Hash(spec.metadata.iter().map(|(k, v)| (Value::str(k), Value::str(v))).collect()),
    ];
    marshal::dump(&Value::UserDump {
        class: "Gem::Specification".into(),
        bytes: marshal::dump(&Value::Array(fields)),
        ivars: Vec::new(),
    })
}

/// A spec's platform as RubyGems marshals it: the `"ruby"` string, or a `Gem::Platform` object.
fn platform_value(platform: &str) -> Value {
    if platform == crate::spec::RUBY_PLATFORM {
        return Value::str(platform);
    }
    let parsed = crate::platform::Platform::parse(platform);
    Value::Object {
        class: "Gem::Platform".into(),
        ivars: vec![
            ("@cpu".into(), Value::opt_str(parsed.cpu.as_deref())),
            ("@os".into(), Value::str(parsed.os)),
            ("@version".into(), Value::opt_str(parsed.version.as_deref())),
        ],
    }
}

/// The spec's `YYYY-MM-DD` as a UTC Time; the default date when out of Time#_dump's range.
fn date_value(date: &str) -> Value {
    let part = |range: std::ops::Range<usize>| date.get(range).and_then(|s| s.parse::<u32>().ok());
    match (part(0..4), part(5..7), part(8..10)) {
        (Some(y @ 1900..=9999), Some(m @ 1..=12), Some(d @ 1..=31)) => Value::utc_date(y, m, d),
        _ => Value::utc_date(1980, 1, 2),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::parse::{read_gem, tests::HELLO_GEM, Check};
    use sluice_plugin_sdk::Metadata;

    pub fn artifact(spec: &Gemspec, yanked: bool, published_ms: u64) -> Artifact {
        let metadata: Metadata = spec.to_metadata();
        Artifact {
            version: spec.version.clone(),
            qualifier: metadata.qualifier.clone(),
            file_name: spec.file_name(),
            size: 100,
            sha256: format!("{:064x}", published_ms),
            sha512: String::new(),
            sha1: String::new(),
            published_ms,
            metadata,
            deprecated: None,
            yanked,
        }
    }

    pub fn package(name: &str, artifacts: Vec<Artifact>) -> PackageView {
        PackageView {
            name: name.into(),
            created_ms: 1_700_000_000_000,
            modified_ms: artifacts.iter().map(|a| a.published_ms).max().unwrap_or(0),
            tags: Vec::new(),
            artifacts,
        }
    }

    pub fn hello() -> Gemspec {
        read_gem(HELLO_GEM, Check::Full).unwrap()
    }

    pub fn with(spec: &Gemspec, version: &str, platform: &str) -> Gemspec {
        Gemspec { version: version.into(), platform: platform.into(), ..spec.clone() }
    }

    #[test]
    fn gemspec_marshal_matches_ruby() {
        let ruby = include_bytes!("../tests/fixtures/sluice-hello-1.2.0.gemspec.marshal");
        assert_eq!(gemspec_marshal(&hello()), ruby.to_vec());
    }

    #[test]
    fn specs_index_matches_ruby() {
        let ruby = include_bytes!("../tests/fixtures/specs.marshal");
        let spec = hello();
        let native = |version: &str| Gemspec { name: "b-c".into(), ..with(&spec, version, "x86_64-linux") };
        let packages = [
            package("b-c", vec![artifact(&native("2.0"), false, 1), artifact(&native("2.1.pre"), false, 2)]),
            package("sluice-hello", vec![artifact(&spec, false, 3)]),
        ];
        assert_eq!(specs(&packages, SpecsIndex::All).unwrap(), ruby.to_vec());
        let prerelease = Value::Array(vec![Value::Array(vec![
            Value::str("b-c"),
            gem_version("2.1.pre"),
            Value::str("x86_64-linux"),
        ])]);
        assert_eq!(specs(&packages, SpecsIndex::Prerelease).unwrap(), marshal::dump(&prerelease));
    }

    #[test]
    fn latest_specs_keep_the_highest_release_per_platform() {
        let spec = hello();
        let pkg = package(
            "sluice-hello",
            vec![
                artifact(&with(&spec, "1.10.0", "ruby"), false, 1),
                artifact(&with(&spec, "1.9.0", "ruby"), false, 2),
                artifact(&with(&spec, "1.9.0", "java"), false, 3),
                artifact(&with(&spec, "2.0.0", "ruby"), true, 4),
                artifact(&with(&spec, "3.0.0.rc1", "ruby"), false, 5),
            ],
        );
        let latest = specs(std::slice::from_ref(&pkg), SpecsIndex::Latest).unwrap();
        let expected = Value::Array(vec![
            Value::Array(vec![Value::str("sluice-hello"), gem_version("1.10.0"), Value::str("ruby")]),
            Value::Array(vec![Value::str("sluice-hello"), gem_version("1.9.0"), Value::str("java")]),
        ]);
        assert_eq!(latest, marshal::dump(&expected));
    }

    #[test]
    fn compact_index_lines() {
        let spec = hello();
        let linux = with(&spec, "1.2.0", "x86_64-linux");
        let yanked = with(&spec, "1.3.0", "ruby");
        let pkg = package(
            "sluice-hello",
            vec![artifact(&spec, false, 1), artifact(&linux, false, 2), artifact(&yanked, true, 1_700_000_000_000)],
        );
        let sha = |n: u64| format!("{n:064x}");
        let info = info(&pkg).unwrap();
        assert_eq!(
            info,
            format!(
                "---\n1.2.0 sluice-dep:>= 1.0&< 3|checksum:{},ruby:>= 2.7\n1.2.0-x86_64-linux sluice-dep:>= 1.0&< 3|checksum:{},ruby:>= 2.7\n",
                sha(1),
                sha(2)
            )
        );
        let packages = [pkg, package("empty", Vec::new())];
        let versions = versions(&packages).unwrap();
        assert_eq!(
            versions,
            format!(
                "created_at: 2023-11-14T22:13:20Z\n---\nsluice-hello 1.2.0,1.2.0-x86_64-linux,-1.3.0 {}\n",
                md5_hex(info.as_bytes())
            )
        );
        assert_eq!(names(&packages), "---\nsluice-hello\n");
    }

    #[test]
    fn gems_without_dependencies_keep_the_separator() {
        let spec = Gemspec { dependencies: Vec::new(), required_ruby_version: Vec::new(), ..hello() };
        let info = info(&package("sluice-hello", vec![artifact(&spec, false, 7)])).unwrap();
        assert_eq!(info, format!("---\n1.2.0 |checksum:{:064x}\n", 7));
    }

    #[test]
    fn empty_indexes_have_the_compact_index_forms() {
        assert_eq!(names(&[]), "---\n\n");
        assert_eq!(names(&[package("gone", vec![artifact(&hello(), true, 1)])]), "---\n\n");
        assert_eq!(versions(&[]).unwrap(), "created_at: 1970-01-01T00:00:00Z\n---\n");
        assert_eq!(info(&package("sluice-hello", vec![artifact(&hello(), true, 1)])).unwrap(), "---\n");
        // Marshal.dump([])
        assert_eq!(specs(&[], SpecsIndex::All).unwrap(), b"\x04\x08[\x00");
    }

    #[test]
    fn platform_specs_carry_a_platform_object() {
        let java = Gemspec { description: None, ..with(&hello(), "1.2.0", "java") };
        let dumped = gemspec_marshal(&java);
        assert!(dumped.windows(13).any(|w| w == b"Gem::Platform"), "no Gem::Platform in the dump");
        assert_eq!(
            platform_value("java"),
            Value::Object {
                class: "Gem::Platform".into(),
                ivars: vec![
                    ("@cpu".into(), Value::Nil),
                    ("@os".into(), Value::str("java")),
                    ("@version".into(), Value::Nil)
                ],
            }
        );
        assert_eq!(platform_value("ruby"), Value::str("ruby"));
    }
}
