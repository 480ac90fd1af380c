//! Reading a `.nupkg`: a zip whose root holds exactly one `.nuspec` manifest.
//!
//! Only the zip's central directory, the local headers, the nuspec and the files the nuspec
//! embeds (a license file, an icon) are read, so a large package is never copied whole into the
//! plugin. The central directory is checked as an unzipping runner or client meets it: no two
//! entries of one name (the zip crate keeps only one of them, unzip extracts both), no entries
//! whose data overlap, and no more unpacked in all than the operator's `max_unpacked_bytes`: a
//! 1 MB zip can otherwise hold a 1 GB entry (a decompression bomb), and runners unzip every entry.

use crate::version::NuGetVersion;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sluice_plugin_sdk::io::{BlobReader, LimitedReader, ReadAt};
use sluice_plugin_sdk::{readme_text, Dependency, Error, Limits, Metadata, MAX_README_BYTES};
use std::borrow::Cow;
use std::collections::HashSet;
use std::io::{Read, Seek};

/// Largest nuspec accepted (nuget.org's own limit is far smaller in practice).
const MAX_NUSPEC_BYTES: u64 = 1024 * 1024;
/// NuGet's own limit on an id's length.
const MAX_ID_LENGTH: usize = 100;
/// nuget.org's limit on an embedded icon and on an embedded license file.
pub const MAX_EMBEDDED_BYTES: u64 = 1024 * 1024;

/// The signature of a zip central directory record.
const CENTRAL_HEADER: [u8; 4] = [0x50, 0x4b, 0x01, 0x02];

/// Reads a package file's identity and metadata, or says why it is not a valid `.nupkg`.
pub fn parse<R: ReadAt>(source: R, limits: &Limits) -> Result<Metadata, Error> {
    let mut archive = zip::ZipArchive::new(BlobReader::new(&source))
        .map_err(|e| Error::invalid(format!("the package is not a valid .nupkg (zip) file: {e}")))?;
    check_unique_names(&BlobReader::new(&source), archive.central_directory_start(), archive.len())?;
    let mut nuspecs = Vec::new();
    let mut unpacked: u64 = 0;
    let mut spans = Vec::with_capacity(archive.len());
    for index in 0..archive.len() {
        let entry = archive
            .by_index_raw(index)
            .map_err(|e| Error::invalid(format!("the package's zip entry #{index} is unreadable: {e}")))?;
        let name = entry.name().to_string();
        check_entry_path(&name)?;
        if entry.is_symlink() {
            return Err(Error::invalid(format!("the package contains a symbolic link `{name}`, which is not allowed")));
        }
        unpacked = unpacked.saturating_add(entry.size());
        if unpacked > limits.max_unpacked_bytes {
            return Err(Error::too_large(format!(
                "the package's entries claim to unpack to more than {} MiB (the limit); a small zip can hide a huge file",
                limits.max_unpacked_bytes >> 20
            )));
        }
        spans.push((entry.header_start(), entry.data_start().saturating_add(entry.compressed_size()), name.clone()));
        if !name.contains('/') && name.to_ascii_lowercase().ends_with(".nuspec") {
            nuspecs.push((index, name));
        }
    }
    check_no_overlap(spans)?;
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
    let manifest = read_entry(&mut archive, index, MAX_NUSPEC_BYTES, "the .nuspec manifest")?;
    let manifest = String::from_utf8(manifest).map_err(|_| Error::invalid("the .nuspec manifest is not UTF-8 text"))?;
    let mut meta = parse_nuspec(manifest)?;
    let details = details(&meta.manifest).ok_or_else(|| Error::invalid("the .nuspec manifest is not valid"))?;
    let mut files = Vec::new();
    if let License::File(path) = &details.license {
        files.push(embedded(&mut archive, EmbeddedRole::License, path)?);
    }
    if let Some(path) = &details.icon {
        if icon_type(path).is_none() {
            return Err(Error::invalid(format!("the icon `{path}` is not a PNG or JPEG file, the types NuGet shows")));
        }
        files.push(embedded(&mut archive, EmbeddedRole::Icon, path)?);
    }
    if let Some(path) = read_nuspec(&meta.manifest)?.readme.map(|p| p.trim().to_string()).filter(|p| !p.is_empty()) {
        meta.readme = Some(readme(&mut archive, &path)?);
    }
    if !files.is_empty() {
        let stored = StoredManifest { nuspec: Cow::Borrowed(&meta.manifest), files };
        meta.manifest = serde_json::to_string(&stored).expect("JSON serialises");
    }
    Ok(meta)
}

/// The zip crate indexes entries by name and silently keeps one of two that share a name (say
/// two root `.nuspec` files), while unzip on a runner extracts both, the last one winning: the
/// central directory's records are counted here, each name once.
fn check_unique_names<R: ReadAt>(raw: &BlobReader<R>, start: u64, entries: usize) -> Result<(), Error> {
    let directory = raw
        .read_range(start, raw.size().saturating_sub(start))
        .map_err(|e| Error::invalid(format!("the package's zip central directory is unreadable: {e}")))?;
    let field = |at: usize| directory.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let mut names = HashSet::new();
    let mut at = 0usize;
    while directory.get(at..at + 4) == Some(&CENTRAL_HEADER[..]) {
        let (Some(name_len), Some(extra_len), Some(comment_len)) = (field(at + 28), field(at + 30), field(at + 32))
        else {
            break;
        };
        let Some(name) = directory.get(at + 46..at + 46 + name_len) else { break };
        if !names.insert(name) {
            return Err(Error::invalid(format!(
                "the package has two zip entries named `{}`; a .nupkg names each file once",
                String::from_utf8_lossy(name)
            )));
        }
        at += 46 + name_len + extra_len + comment_len;
    }
    if names.len() != entries {
        return Err(Error::invalid("the package's zip central directory does not match its entries"));
    }
    Ok(())
}

/// Entries whose bytes overlap (1,000 names sharing one compressed stream) unpack to far more
/// than the file holds; no packer writes them.
fn check_no_overlap(mut spans: Vec<(u64, u64, String)>) -> Result<(), Error> {
    spans.sort();
    for pair in spans.windows(2) {
        let ((_, end, first), (start, _, second)) = (&pair[0], &pair[1]);
        if start < end {
            return Err(Error::invalid(format!(
                "the package's zip entries `{first}` and `{second}` share their data, as zip bombs do"
            )));
        }
    }
    Ok(())
}

fn read_entry<R: Read + Seek>(
    archive: &mut zip::ZipArchive<R>,
    index: usize,
    limit: u64,
    what: &'static str,
) -> Result<Vec<u8>, Error> {
    let entry = archive.by_index(index).map_err(|e| Error::invalid(format!("{what} cannot be read: {e}")))?;
    let mut bytes = Vec::new();
    LimitedReader::new(entry, limit, what).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// A file the nuspec names (`<license type="file">`, `<icon>`), which the registry serves.
fn embedded<R: Read + Seek>(
    archive: &mut zip::ZipArchive<R>,
    role: EmbeddedRole,
    path: &str,
) -> Result<EmbeddedFile, Error> {
    let wanted = zip_path(path);
    let index = entry_for(archive, &wanted);
    let what = match role {
        EmbeddedRole::License => "the license file",
        EmbeddedRole::Icon => "the icon file",
    };
    let index = index
        .ok_or_else(|| Error::invalid(format!("the nuspec names {what} `{path}`, which is not in the package")))?;
    let data = read_entry(archive, index, MAX_EMBEDDED_BYTES, what).map_err(|e| {
        if e.message.contains("over its size limit") {
            Error::too_large(format!("{what} `{path}` is larger than {} MiB", MAX_EMBEDDED_BYTES >> 20))
        } else {
            e
        }
    })?;
    Ok(EmbeddedFile { role, path: wanted, data: base64::engine::general_purpose::STANDARD.encode(data) })
}

/// The zip entry a nuspec path names; packers on Windows differ in case, and NuGet finds the
/// file case-insensitively.
fn entry_for<R: Read + Seek>(archive: &zip::ZipArchive<R>, wanted: &str) -> Option<usize> {
    archive.index_for_name(wanted).or_else(|| {
        let name = archive.file_names().find(|n| n.eq_ignore_ascii_case(wanted))?.to_string();
        archive.index_for_name(&name)
    })
}

/// The README the nuspec names (`<readme>`), which nuget.org requires to be in the package and
/// at most 1 MiB; Markdown as the author wrote it.
fn readme<R: Read + Seek>(archive: &mut zip::ZipArchive<R>, path: &str) -> Result<String, Error> {
    let wanted = zip_path(path);
    let index = entry_for(archive, &wanted)
        .ok_or_else(|| Error::invalid(format!("the nuspec names the readme `{path}`, which is not in the package")))?;
    let data = read_entry(archive, index, MAX_README_BYTES, "the readme file").map_err(|e| {
        if e.message.contains("over its size limit") {
            Error::too_large(format!("the readme `{path}` is larger than {} MiB", MAX_README_BYTES >> 20))
        } else {
            e
        }
    })?;
    Ok(readme_text(&data).unwrap_or_default())
}

/// A nuspec path (`images\icon.png`, `./LICENSE.txt`) as the zip entry name it packs to.
fn zip_path(path: &str) -> String {
    let path = path.trim().replace('\\', "/");
    path.trim_start_matches("./").trim_start_matches('/').to_string()
}

/// The media type of an icon by its extension: nuget.org accepts PNG and JPEG icons only.
pub fn icon_type(path: &str) -> Option<&'static str> {
    let lower = path.to_ascii_lowercase();
    if lower.ends_with(".png") {
        Some("image/png")
    } else if lower.ends_with(".jpg") || lower.ends_with(".jpeg") {
        Some("image/jpeg")
    } else {
        None
    }
}

/// Which embedded file an [`EmbeddedFile`] is.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
pub enum EmbeddedRole {
    License,
    Icon,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct EmbeddedFile {
    pub role: EmbeddedRole,
    /// The zip entry it came from.
    pub path: String,
    /// Base64 of its bytes.
    pub data: String,
}

impl EmbeddedFile {
    pub fn bytes(&self) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD.decode(&self.data).unwrap_or_default()
    }
}

/// What the registry keeps as a version's manifest: the nuspec verbatim, alone when the package
/// embeds nothing; with the files it embeds as JSON around it otherwise. The plugin can only
/// serve what the manifest holds, not read the stored package, so embedded files are kept here.
#[derive(Serialize, Deserialize)]
pub struct StoredManifest<'a> {
    #[serde(borrow)]
    pub nuspec: Cow<'a, str>,
    #[serde(default)]
    pub files: Vec<EmbeddedFile>,
}

impl<'a> StoredManifest<'a> {
    /// Reads a stored manifest: JSON with the nuspec inside, or (no embedded files, or stored by
    /// an older Sluice) the nuspec itself.
    pub fn read(manifest: &'a str) -> StoredManifest<'a> {
        if manifest.starts_with('{') {
            if let Ok(stored) = serde_json::from_str::<StoredManifest>(manifest) {
                return stored;
            }
        }
        StoredManifest { nuspec: Cow::Borrowed(manifest), files: Vec::new() }
    }

    pub fn file(&self, role: EmbeddedRole) -> Option<&EmbeddedFile> {
        self.files.iter().find(|f| f.role == role)
    }

    /// Only the nuspec of a stored manifest: registrations and search read it for every
    /// version, and skipping the embedded files' base64 keeps that cheap.
    pub fn nuspec_of(manifest: &'a str) -> Cow<'a, str> {
        #[derive(Deserialize)]
        struct NuspecOnly<'a> {
            #[serde(borrow)]
            nuspec: Cow<'a, str>,
        }
        if manifest.starts_with('{') {
            if let Ok(only) = serde_json::from_str::<NuspecOnly>(manifest) {
                return only.nuspec;
            }
        }
        Cow::Borrowed(manifest)
    }
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
    license: Option<NuspecLicense>,
    license_url: Option<String>,
    icon: Option<String>,
    icon_url: Option<String>,
    /// The embedded README's path (`<readme>docs\README.md</readme>`), shown on nuget.org.
    readme: Option<String>,
    project_url: Option<String>,
    tags: Option<String>,
    repository: Option<Repository>,
    dependencies: Option<Dependencies>,
}

#[derive(Deserialize)]
struct NuspecLicense {
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

/// How a package states its license.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum License {
    None,
    /// `<license type="expression">`: an SPDX expression.
    Expression(String),
    /// `<license type="file">`: a file in the package.
    File(String),
    /// Only the deprecated `<licenseUrl>`.
    Url(String),
}

/// A dependency group of the nuspec, kept even when empty: an empty group says "this framework
/// needs nothing", and without it a client picks another framework's group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Empty for dependencies outside any group.
    pub target_framework: String,
    /// `(id, range)` in nuspec order.
    pub dependencies: Vec<(String, String)>,
}

/// What registrations and search render from a version's nuspec, beyond the metadata record.
#[derive(Debug, Clone)]
pub struct Details {
    pub version: NuGetVersion,
    pub groups: Vec<Group>,
    pub license: License,
    /// The embedded icon's path.
    pub icon: Option<String>,
    /// The deprecated `<iconUrl>`.
    pub icon_url: Option<String>,
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn read_nuspec(xml: &str) -> Result<NuspecMetadata, Error> {
    let xml = xml.strip_prefix('\u{feff}').unwrap_or(xml);
    let nuspec: Nuspec =
        quick_xml::de::from_str(xml).map_err(|e| Error::invalid(format!("the .nuspec manifest is not valid: {e}")))?;
    Ok(nuspec.metadata)
}

/// The details of a stored manifest (see [`StoredManifest`]); `None` if its nuspec does not parse.
pub fn details(manifest: &str) -> Option<Details> {
    let m = read_nuspec(&StoredManifest::nuspec_of(manifest)).ok()?;
    let version = NuGetVersion::parse(&m.version).ok()?;
    let license = match m.license.filter(|l| !l.value.trim().is_empty()) {
        Some(l) if l.kind.trim() == "file" => License::File(l.value.trim().to_string()),
        Some(l) => License::Expression(l.value.trim().to_string()),
        None => non_empty(m.license_url).map_or(License::None, License::Url),
    };
    let deps = m.dependencies.unwrap_or_default();
    let mut groups = Vec::new();
    let pairs = |list: Vec<NuspecDependency>| -> Vec<(String, String)> {
        list.into_iter().map(|d| (d.id.trim().to_string(), d.version.trim().to_string())).collect()
    };
    if !deps.dependency.is_empty() {
        groups.push(Group { target_framework: String::new(), dependencies: pairs(deps.dependency) });
    }
    for g in deps.group {
        groups
            .push(Group { target_framework: g.target_framework.trim().to_string(), dependencies: pairs(g.dependency) });
    }
    Some(Details {
        version,
        groups,
        license,
        icon: non_empty(m.icon).map(|p| zip_path(&p)),
        icon_url: non_empty(m.icon_url),
    })
}

/// Reads a nuspec's metadata; the manifest is kept verbatim as the package's manifest.
pub fn parse_nuspec(manifest: String) -> Result<Metadata, Error> {
    let m = read_nuspec(&manifest)?;
    let id = m.id.trim();
    check_id(id)?;
    let version = NuGetVersion::parse(&m.version).map_err(Error::invalid)?;

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

/// NuGet ids are ASCII word characters separated by single dots or dashes, at most 100 long.
/// nuget.org refuses other letters: `Nеwtonsoft.Json` with a Cyrillic `е` would pass for
/// `Newtonsoft.Json` in a list of dependencies.
fn check_id(id: &str) -> Result<(), Error> {
    if id.is_empty() {
        return Err(Error::invalid("the .nuspec manifest has no <id>"));
    }
    if !id.is_ascii() {
        return Err(Error::invalid(format!(
            "`{id}` is not a valid NuGet package id: it has non-ASCII characters, which nuget.org refuses (they can pass for other ids)"
        )));
    }
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let well_formed = id.split(['.', '-']).all(|part| !part.is_empty() && part.chars().all(word));
    if !well_formed || id.len() > MAX_ID_LENGTH {
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
        let meta = parse(pkg, &Limits::TEST).unwrap();
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
        assert!(message(parse(none, &Limits::TEST).unwrap_err()).contains("no .nuspec"));
        let two = zip_of(&[("A.nuspec", DEMO_NUSPEC.as_bytes()), ("B.NUSPEC", DEMO_NUSPEC.as_bytes())]);
        let msg = message(parse(two, &Limits::TEST).unwrap_err());
        assert!(msg.contains("2 .nuspec manifests") && msg.contains("A.nuspec, B.NUSPEC"), "{msg}");
    }

    #[test]
    fn refuses_traversal_absolute_paths_and_symlinks() {
        for bad in ["../evil.txt", "content/../../evil.txt", "/etc/passwd", "C:/x.txt", "a\\..\\b"] {
            let pkg = zip_of(&[("Demo.nuspec", DEMO_NUSPEC.as_bytes()), (bad, b"x")]);
            assert!(message(parse(pkg, &Limits::TEST).unwrap_err()).contains("unsafe path"), "{bad}");
        }
        let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        out.start_file("Demo.nuspec", SimpleFileOptions::default()).unwrap();
        out.write_all(DEMO_NUSPEC.as_bytes()).unwrap();
        out.add_symlink("content/link", "/etc/passwd", SimpleFileOptions::default()).unwrap();
        let pkg = out.finish().unwrap().into_inner();
        assert!(message(parse(pkg, &Limits::TEST).unwrap_err()).contains("symbolic link"));
    }

    #[test]
    fn refuses_duplicate_names_overlapping_entries_and_bombs() {
        // Two root nuspecs of one name: the zip crate sees one, the central directory has two.
        let mut two = zip_of(&[("A.nuspec", DEMO_NUSPEC.as_bytes()), ("B.nuspec", DEMO_NUSPEC.as_bytes())]);
        for at in memchr::memmem::find_iter(&two.clone(), b"B.nuspec").collect::<Vec<_>>() {
            two[at] = b'A';
        }
        assert_eq!(zip::ZipArchive::new(std::io::Cursor::new(two.clone())).unwrap().len(), 1);
        let msg = message(parse(two, &Limits::TEST).unwrap_err());
        assert!(msg.contains("two zip entries named `A.nuspec`"), "{msg}");

        // Entries that all point at one stream of data.
        let names: Vec<String> = (0..20).map(|i| format!("content/{i:03}.bin")).collect();
        let mut entries: Vec<(&str, &[u8])> = vec![("Demo.nuspec", DEMO_NUSPEC.as_bytes())];
        entries.extend(names.iter().map(|n| (n.as_str(), &b"shared bytes"[..])));
        let mut shared = zip_of(&entries);
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(shared.clone())).unwrap();
        let first = archive.by_name("content/000.bin").unwrap().header_start() as u32;
        let centrals: Vec<u64> = names.iter().map(|n| archive.by_name(n).unwrap().central_header_start()).collect();
        for at in centrals {
            shared[at as usize + 42..at as usize + 46].copy_from_slice(&first.to_le_bytes());
        }
        let msg = message(parse(shared, &Limits::TEST).unwrap_err());
        assert!(msg.contains("share their data"), "{msg}");

        // An entry that claims more than the limit, as a 1 MB zip of a 1 GB file would.
        let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        out.start_file("Demo.nuspec", SimpleFileOptions::default()).unwrap();
        out.write_all(DEMO_NUSPEC.as_bytes()).unwrap();
        let deflated = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        out.start_file("content/zeros.bin", deflated).unwrap();
        let chunk = vec![0u8; 1 << 20];
        let limits = Limits { max_unpacked_bytes: 8 << 20, ..Limits::TEST };
        for _ in 0..(limits.max_unpacked_bytes >> 20) + 1 {
            out.write_all(&chunk).unwrap();
        }
        let bomb = out.finish().unwrap().into_inner();
        assert!(bomb.len() < 2 << 20, "{} bytes", bomb.len());
        assert!(parse(bomb.clone(), &Limits::TEST).is_ok(), "within the default limit");
        let err = parse(bomb, &limits).unwrap_err();
        assert_eq!(err.kind, ErrorKind::TooLarge);
        assert!(err.message.contains("more than 8 MiB"), "the operator's limit: {}", err.message);
    }

    #[test]
    fn keeps_embedded_license_and_icon_files() {
        let nuspec = DEMO_NUSPEC.replace(
            "<license type=\"expression\">MIT</license>",
            "<license type=\"file\">docs\\LICENSE.txt</license><icon>images\\icon.png</icon>",
        );
        let pkg = zip_of(&[
            ("Sluice.Demo.nuspec", nuspec.as_bytes()),
            ("docs/LICENSE.txt", b"Licensed to you"),
            ("images/icon.png", b"\x89PNG fake"),
        ]);
        let meta = parse(pkg, &Limits::TEST).unwrap();
        let stored = StoredManifest::read(&meta.manifest);
        assert_eq!(stored.nuspec, nuspec);
        assert_eq!(stored.file(EmbeddedRole::License).unwrap().bytes(), b"Licensed to you");
        assert_eq!(stored.file(EmbeddedRole::Icon).unwrap().bytes(), b"\x89PNG fake");
        let details = details(&meta.manifest).unwrap();
        assert_eq!(details.license, License::File("docs\\LICENSE.txt".into()));
        assert_eq!(details.icon.as_deref(), Some("images/icon.png"));

        let missing = zip_of(&[("Sluice.Demo.nuspec", nuspec.as_bytes()), ("docs/LICENSE.txt", b"x")]);
        assert!(message(parse(missing, &Limits::TEST).unwrap_err())
            .contains("the icon file `images/icon.png`, which is not in the package"));
        let gif = nuspec.replace("icon.png", "icon.gif");
        let pkg =
            zip_of(&[("Sluice.Demo.nuspec", gif.as_bytes()), ("docs/LICENSE.txt", b"x"), ("images/icon.gif", b"x")]);
        assert!(message(parse(pkg, &Limits::TEST).unwrap_err()).contains("not a PNG or JPEG"));
        // A manifest stored without embedded files is the nuspec itself.
        assert_eq!(StoredManifest::read(DEMO_NUSPEC).nuspec, DEMO_NUSPEC);
    }

    /// As `dotnet pack` writes a package with `<PackageReadmeFile>docs\README.md</PackageReadmeFile>`:
    /// the nuspec's `<readme>` with a Windows path, the file under the folder it was packed from.
    #[test]
    fn reads_the_readme_the_nuspec_names() {
        let nuspec = DEMO_NUSPEC.replace("<license ", "<readme>docs\\README.md</readme><license ");
        assert!(nuspec.contains("<readme>docs\\README.md</readme>"));
        let readme = b"\xef\xbb\xbf# Sluice.Demo\n\nUse it like `Demo.Run()`.\n";
        let pkg = zip_of(&[
            ("Sluice.Demo.nuspec", nuspec.as_bytes()),
            ("docs/README.md", readme),
            ("lib/net6.0/Sluice.Demo.dll", b"MZ"),
        ]);
        let meta = parse(pkg, &Limits::TEST).unwrap();
        assert_eq!(meta.readme.as_deref(), Some("# Sluice.Demo\n\nUse it like `Demo.Run()`.\n"));
        assert_eq!(meta.manifest, nuspec, "the README is not kept in the manifest");
        // Packed on Windows, the entry's case may differ.
        let pkg = zip_of(&[("Sluice.Demo.nuspec", nuspec.as_bytes()), ("docs/readme.MD", b"hi")]);
        assert_eq!(parse(pkg, &Limits::TEST).unwrap().readme.as_deref(), Some("hi"));
        // No `<readme>`: none, whatever files the package has.
        let pkg = zip_of(&[("Sluice.Demo.nuspec", DEMO_NUSPEC.as_bytes()), ("README.md", b"hi")]);
        assert_eq!(parse(pkg, &Limits::TEST).unwrap().readme, None);

        let missing = zip_of(&[("Sluice.Demo.nuspec", nuspec.as_bytes())]);
        let err = parse(missing, &Limits::TEST).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid);
        assert!(err.message.contains("the readme `docs\\README.md`, which is not in the package"), "{}", err.message);
        let huge = vec![b'a'; MAX_README_BYTES as usize + 1];
        let pkg = zip_of(&[("Sluice.Demo.nuspec", nuspec.as_bytes()), ("docs/README.md", &huge)]);
        assert_eq!(parse(pkg, &Limits::TEST).unwrap_err().kind, ErrorKind::TooLarge);
    }

    #[test]
    fn keeps_empty_dependency_groups_and_full_versions() {
        let d = details(DEMO_NUSPEC).unwrap();
        let frameworks: Vec<(&str, usize)> =
            d.groups.iter().map(|g| (g.target_framework.as_str(), g.dependencies.len())).collect();
        assert_eq!(frameworks, [(".NETStandard2.0", 2), ("net472", 0), ("", 1)]);
        assert_eq!(d.version.full(), "1.0.0+build.7");
        assert_eq!(d.license, License::Expression("MIT".into()));
    }

    #[test]
    fn refuses_non_ascii_ids() {
        let cyrillic = DEMO_NUSPEC.replace("<id>Sluice.Demo</id>", "<id>N\u{0435}wtonsoft.Json</id>");
        let msg = message(parse_nuspec(cyrillic).unwrap_err());
        assert!(msg.contains("non-ASCII"), "{msg}");
        assert!(parse_nuspec(DEMO_NUSPEC.replace("Sluice.Demo", "Newtonsoft.Json_2-x")).is_ok());
    }

    #[test]
    fn refuses_garbage_bad_ids_versions_and_huge_manifests() {
        assert!(message(parse(b"not a zip".to_vec(), &Limits::TEST).unwrap_err()).contains("not a valid .nupkg"));
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
        assert!(message(parse(pkg, &Limits::TEST).unwrap_err()).contains("over its size limit"));
    }
}
