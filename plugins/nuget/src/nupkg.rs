//! Reading a `.nupkg`: a zip whose root holds exactly one `.nuspec` manifest.
//!
//! Only the zip's central directory, the local headers and the nuspec entry are read, so a large
//! package is never copied whole into the plugin.

use crate::version::NuGetVersion;
use serde::Deserialize;
use sluice_plugin_sdk::io::{BlobReader, LimitedReader, ReadAt};
use sluice_plugin_sdk::{Dependency, Error, Metadata};
use std::io::Read;

/// Largest nuspec accepted (nuget.org's own limit is far smaller in practice).
const MAX_NUSPEC_BYTES: u64 = 1024 * 1024;
/// NuGet's own limit on an id's length.
const MAX_ID_LENGTH: usize = 100;

/// Reads a package file's identity and metadata, or says why it is not a valid `.nupkg`.
pub fn parse<R: ReadAt>(source: R) -> Result<Metadata, Error> {
    let mut archive = zip::ZipArchive::new(BlobReader::new(source))
        .map_err(|e| Error::invalid(format!("the package is not a valid .nupkg (zip) file: {e}")))?;
    let mut nuspecs = Vec::new();
    for index in 0..archive.len() {
        let entry = archive
            .by_index_raw(index)
            .map_err(|e| Error::invalid(format!("the package's zip entry #{index} is unreadable: {e}")))?;
        let name = entry.name().to_string();
        check_entry_path(&name)?;
        if entry.is_symlink() {
            return Err(Error::invalid(format!("the package contains a symbolic link `{name}`, which is not allowed")));
        }
        if !name.contains('/') && name.to_ascii_lowercase().ends_with(".nuspec") {
            nuspecs.push((index, name));
        }
    }
    let index = match nuspecs.as_slice() {
        [] => return Err(Error::invalid("the package has no .nuspec manifest at the root of the zip")),
        [(index, _)] => *index,
        several => {
            let names: Vec<&str> = several.iter().map(|(_, n)| n.as_str()).collect();
            return Err(Error::invalid(format!(
                "the package has {} .nuspec manifests at its root ({}); a .nupkg must have exactly one",
                names.len(),
                names.join(", ")
            )));
        }
    };
    let entry =
        archive.by_index(index).map_err(|e| Error::invalid(format!("the package's .nuspec cannot be read: {e}")))?;
    let mut bytes = Vec::new();
    LimitedReader::new(entry, MAX_NUSPEC_BYTES, "the .nuspec manifest").read_to_end(&mut bytes)?;
    let manifest = String::from_utf8(bytes).map_err(|_| Error::invalid("the .nuspec manifest is not UTF-8 text"))?;
    parse_nuspec(manifest)
}

/// Refuses entry names that would land outside the folder a runner unzips into.
fn check_entry_path(name: &str) -> Result<(), Error> {
    let escapes = name.starts_with('/')
        || name.starts_with('\\')
        || name.as_bytes().get(1) == Some(&b':')
        || name.split(['/', '\\']).any(|segment| segment == "..");
    if escapes || name.contains('\0') {
        return Err(Error::invalid(format!(
            "the package has an entry with an unsafe path `{name}` (absolute or with `..`)"
        )));
    }
    Ok(())
}

#[derive(Deserialize)]
struct Nuspec {
    metadata: NuspecMetadata,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct NuspecMetadata {
    id: String,
    version: String,
    title: Option<String>,
    authors: Option<String>,
    description: Option<String>,
    summary: Option<String>,
    license: Option<License>,
    license_url: Option<String>,
    project_url: Option<String>,
    tags: Option<String>,
    repository: Option<Repository>,
    dependencies: Option<Dependencies>,
}

#[derive(Deserialize)]
struct License {
    #[serde(rename = "@type", default)]
    kind: String,
    #[serde(rename = "$text", default)]
    value: String,
}

#[derive(Deserialize)]
struct Repository {
    #[serde(rename = "@url")]
    url: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Dependencies {
    group: Vec<DependencyGroup>,
    dependency: Vec<NuspecDependency>,
}

#[derive(Deserialize)]
struct DependencyGroup {
    #[serde(rename = "@targetFramework", default)]
    target_framework: String,
    #[serde(default)]
    dependency: Vec<NuspecDependency>,
}

#[derive(Deserialize)]
struct NuspecDependency {
    #[serde(rename = "@id")]
    id: String,
    #[serde(rename = "@version", default)]
    version: String,
}

/// Reads a nuspec's metadata; the manifest is kept verbatim as the package's manifest.
pub fn parse_nuspec(manifest: String) -> Result<Metadata, Error> {
    let xml = manifest.strip_prefix('\u{feff}').unwrap_or(&manifest);
    let nuspec: Nuspec =
        quick_xml::de::from_str(xml).map_err(|e| Error::invalid(format!("the .nuspec manifest is not valid: {e}")))?;
    let m = nuspec.metadata;
    let id = m.id.trim();
    check_id(id)?;
    let version = NuGetVersion::parse(&m.version).map_err(Error::invalid)?;
    let non_empty = |s: Option<String>| s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());

    let mut meta = Metadata::new(id, version.to_string());
    meta.summary = non_empty(m.summary).or_else(|| non_empty(m.title));
    meta.description = non_empty(m.description);
    meta.license = m
        .license
        .filter(|l| !l.value.trim().is_empty())
        .map(|l| if l.kind == "file" { format!("file:{}", l.value.trim()) } else { l.value.trim().to_string() })
        .or_else(|| non_empty(m.license_url));
    meta.homepage = non_empty(m.project_url);
    meta.repository = non_empty(m.repository.and_then(|r| r.url));
    meta.authors = split_list(m.authors.as_deref().unwrap_or(""), &[',']);
    meta.keywords = split_list(m.tags.as_deref().unwrap_or(""), &[' ', ',', ';']);
    let deps = m.dependencies.unwrap_or_default();
    let ungrouped = deps.dependency.into_iter().map(|d| ("".to_string(), d));
    let grouped = deps.group.into_iter().flat_map(|g| {
        let framework = g.target_framework.trim().to_string();
        g.dependency.into_iter().map(move |d| (framework.clone(), d))
    });
    meta.dependencies = ungrouped
        .chain(grouped)
        .map(|(group, d)| Dependency {
            name: d.id.trim().to_string(),
            requirement: d.version.trim().to_string(),
            kind: "runtime".into(),
            group,
        })
        .collect();
    meta.manifest = manifest;
    Ok(meta)
}

/// NuGet ids are word characters separated by single dots or dashes, at most 100 long.
fn check_id(id: &str) -> Result<(), Error> {
    if id.is_empty() {
        return Err(Error::invalid("the .nuspec manifest has no <id>"));
    }
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let well_formed = id.split(['.', '-']).all(|part| !part.is_empty() && part.chars().all(word));
    if !well_formed || id.chars().count() > MAX_ID_LENGTH {
        return Err(Error::invalid(format!(
            "`{id}` is not a valid NuGet package id (letters, digits and `_`, separated by `.` or `-`, at most {MAX_ID_LENGTH} characters)"
        )));
    }
    Ok(())
}

fn split_list(text: &str, separators: &[char]) -> Vec<String> {
    text.split(separators).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use sluice_plugin_sdk::ErrorKind;
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    pub(crate) const DEMO_NUSPEC: &str = "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?>
<package xmlns=\"http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd\">
  <metadata minClientVersion=\"2.12\">
    <id>Sluice.Demo</id>
    <version>01.0+build.7</version>
    <title>Demo</title>
    <authors>Alice, Bob &amp; Co</authors>
    <description>A demo &lt;package&gt;.</description>
    <license type=\"expression\">MIT</license>
    <licenseUrl>https://licenses.nuget.org/MIT</licenseUrl>
    <projectUrl>https://example.com/demo</projectUrl>
    <repository type=\"git\" url=\"https://example.com/demo.git\" />
    <tags>demo  sluice</tags>
    <dependencies>
      <group targetFramework=\".NETStandard2.0\">
        <dependency id=\"Other.Pkg\" version=\"[1.2.3, 2.0)\" exclude=\"Build\" />
        <dependency id=\"Third\" version=\"4.0\" />
      </group>
      <group targetFramework=\"net472\" />
      <group>
        <dependency id=\"Any.Framework\" version=\"1.0\" />
      </group>
    </dependencies>
  </metadata>
  <files><file src=\"x\" /></files>
</package>";

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, body) in entries {
            out.start_file(*name, SimpleFileOptions::default()).unwrap();
            out.write_all(body).unwrap();
        }
        out.finish().unwrap().into_inner()
    }

    fn message(err: Error) -> String {
        assert_eq!(err.kind, ErrorKind::Invalid);
        err.message
    }

    #[test]
    fn reads_identity_metadata_and_dependency_groups() {
        let pkg = zip_of(&[
            ("_rels/.rels", b"x"),
            ("Sluice.Demo.nuspec", DEMO_NUSPEC.as_bytes()),
            ("lib/net472/a.dll", b"x"),
        ]);
        let meta = parse(pkg).unwrap();
        assert_eq!(meta.name, "Sluice.Demo");
        assert_eq!(meta.version, "1.0.0");
        assert_eq!(meta.authors, ["Alice", "Bob & Co"]);
        assert_eq!(meta.description.as_deref(), Some("A demo <package>."));
        assert_eq!(meta.summary.as_deref(), Some("Demo"));
        assert_eq!(meta.license.as_deref(), Some("MIT"));
        assert_eq!(meta.homepage.as_deref(), Some("https://example.com/demo"));
        assert_eq!(meta.repository.as_deref(), Some("https://example.com/demo.git"));
        assert_eq!(meta.keywords, ["demo", "sluice"]);
        let deps: Vec<(&str, &str, &str)> =
            meta.dependencies.iter().map(|d| (d.group.as_str(), d.name.as_str(), d.requirement.as_str())).collect();
        assert_eq!(
            deps,
            [
                (".NETStandard2.0", "Other.Pkg", "[1.2.3, 2.0)"),
                (".NETStandard2.0", "Third", "4.0"),
                ("", "Any.Framework", "1.0")
            ]
        );
        assert_eq!(meta.manifest, DEMO_NUSPEC);
    }

    #[test]
    fn refuses_packages_without_exactly_one_root_nuspec() {
        let none = zip_of(&[("content/readme.txt", b"hi"), ("sub/Demo.nuspec", DEMO_NUSPEC.as_bytes())]);
        assert!(message(parse(none).unwrap_err()).contains("no .nuspec"));
        let two = zip_of(&[("A.nuspec", DEMO_NUSPEC.as_bytes()), ("B.NUSPEC", DEMO_NUSPEC.as_bytes())]);
        let msg = message(parse(two).unwrap_err());
        assert!(msg.contains("2 .nuspec manifests") && msg.contains("A.nuspec, B.NUSPEC"), "{msg}");
    }

    #[test]
    fn refuses_traversal_absolute_paths_and_symlinks() {
        for bad in ["../evil.txt", "content/../../evil.txt", "/etc/passwd", "C:/x.txt", "a\\..\\b"] {
            let pkg = zip_of(&[("Demo.nuspec", DEMO_NUSPEC.as_bytes()), (bad, b"x")]);
            assert!(message(parse(pkg).unwrap_err()).contains("unsafe path"), "{bad}");
        }
        let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        out.start_file("Demo.nuspec", SimpleFileOptions::default()).unwrap();
        out.write_all(DEMO_NUSPEC.as_bytes()).unwrap();
        out.add_symlink("content/link", "/etc/passwd", SimpleFileOptions::default()).unwrap();
        let pkg = out.finish().unwrap().into_inner();
        assert!(message(parse(pkg).unwrap_err()).contains("symbolic link"));
    }

    #[test]
    fn refuses_garbage_bad_ids_versions_and_huge_manifests() {
        assert!(message(parse(b"not a zip".to_vec()).unwrap_err()).contains("not a valid .nupkg"));
        let bad_id = DEMO_NUSPEC.replace("<id>Sluice.Demo</id>", "<id>../evil</id>");
        assert!(message(parse_nuspec(bad_id).unwrap_err()).contains("not a valid NuGet package id"));
        let bad_version = DEMO_NUSPEC.replace("01.0+build.7", "one");
        assert!(message(parse_nuspec(bad_version).unwrap_err()).contains("not a valid NuGet version"));
        assert!(message(parse_nuspec("<package><metadata>".into()).unwrap_err()).contains("not valid"));
        let huge = format!(
            "<package><metadata><id>A</id><version>1.0</version><description>{}</description></metadata></package>",
            "x".repeat(2 << 20)
        );
        let pkg = zip_of(&[("A.nuspec", huge.as_bytes())]);
        assert!(message(parse(pkg).unwrap_err()).contains("over its size limit"));
    }
}
