//! Reading an npm package tarball: a gzip-compressed tar with one top folder (`package/` as npm
//! packs it; `node/` in `@types/node`, a git archive's `name-commit/` in others) whose
//! `package.json` is the manifest. npm unpacks it by dropping the first path component whatever
//! it is called, and so do runners (`tar --strip-components=1`); every entry is checked where it
//! lands that way ([`crate::layout`]), because runners unpack the whole archive.

use crate::layout::{self, Layout, Location, Refusal};
use crate::name;
use flate2::read::GzDecoder;
use serde_json::{Map, Value};
use sluice_plugin_sdk::io::{BlobReader, LimitedReader, ReadAt};
use sluice_plugin_sdk::{Dependency, Error, Limits, Metadata};
use std::io::Read;
use tar::EntryType;

/// The most `package.json` may hold.
pub const MAX_MANIFEST: u64 = 1024 * 1024;
/// The most of a README kept for the package page; a longer one is cut there.
pub const MAX_README: u64 = 1024 * 1024;

/// The registry's own field in a version manifest: whether the tarball has an
/// `npm-shrinkwrap.json` at its top, which npm only honours in a dependency when this says so.
pub const HAS_SHRINKWRAP: &str = "_hasShrinkwrap";

/// What unpacking found at the top of the package folder.
#[derive(Default)]
struct Top {
    manifest: Option<String>,
    shrinkwrap: bool,
    /// The README file's name and text (npm shows `README.md` first, then any `readme*`).
    readme: Option<(String, String)>,
}

/// Reads a `.tgz` and returns the package's metadata, or why it is not a valid npm package.
/// `file_name` is the name the upload gave the file (`name-1.0.0.tgz`), which is how a tarball
/// published under one package's URL but holding another package is caught. The whole archive
/// may unpack to at most the operator's `max_unpacked_bytes`: a few kilobytes of gzip can
/// otherwise expand to gigabytes (a decompression bomb).
pub fn parse(file_name: &str, file: impl ReadAt, limits: &Limits) -> Result<Metadata, Error> {
    let reader = BlobReader::new(file);
    if reader.read_range(0, 2).ok().as_deref() != Some(&[0x1f, 0x8b][..]) {
        return Err(Error::invalid("the package is not a gzip-compressed tarball (.tgz)"));
    }
    let unpacked = LimitedReader::new(GzDecoder::new(reader), limits.max_unpacked_bytes, "the unpacked package");
    let mut archive = tar::Archive::new(unpacked);
    let broken = |e: std::io::Error| Error::invalid(format!("the package tarball is damaged: {e}"));

    let mut layout = Layout::default();
    let mut top = Top::default();
    for entry in archive.entries().map_err(broken)? {
        let mut entry = entry.map_err(broken)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(at) = place_entry(&mut layout, &raw, &entry)? else { continue };
        let kind = entry.header().entry_type();
        match at.as_slice() {
            [file] if file == "package.json" => {
                if !kind.is_file() {
                    // A link or folder in its place: what an extractor leaves is not a manifest.
                    top.manifest = None;
                    continue;
                }
                if entry.size() > MAX_MANIFEST {
                    return Err(Error::too_large("package.json is larger than 1 MiB"));
                }
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).map_err(broken)?;
                let text = String::from_utf8(bytes).map_err(|_| Error::invalid("package.json is not UTF-8 text"))?;
                top.manifest = Some(text);
            }
            [file] if file == "npm-shrinkwrap.json" => top.shrinkwrap = kind.is_file(),
            [file]
                if kind.is_file() && is_readme(file) && top.readme.as_ref().is_none_or(|(n, _)| !prefer(n, file)) =>
            {
                let mut bytes = Vec::new();
                (&mut entry).take(MAX_README).read_to_end(&mut bytes).map_err(broken)?;
                top.readme = Some((file.clone(), String::from_utf8_lossy(&bytes).into_owned()));
            }
            _ => {}
        }
    }
    if let Some((at, target, why)) = layout.escaping_link() {
        return Err(refused(&at.join("/"), why, Some(&target)));
    }
    // Reading to the end makes the decoder check the gzip checksum, which catches a damaged upload.
    std::io::copy(&mut archive.into_inner(), &mut std::io::sink()).map_err(broken)?;
    let manifest = top
        .manifest
        .ok_or_else(|| Error::invalid("the package has no package.json in its top folder (package/package.json)"))?;
    let mut meta = metadata_from_manifest(&manifest)?;
    if name::tarball_file_name(&meta.name, &meta.version) != file_name {
        return Err(Error::invalid(format!(
            "the tarball holds {}@{}, which does not match the package it was published as ({file_name})",
            meta.name, meta.version
        )));
    }
    meta.manifest = with_shrinkwrap_flag(&manifest, top.shrinkwrap);
    // A README in package.json (older npm wrote it there) wins over the file, as npm's own does.
    meta.readme = manifest_readme(&manifest).or(top.readme.map(|(_, text)| text));
    Ok(meta)
}

/// npm's README file: `readme` with any extension, any case, at the package's top.
fn is_readme(file: &str) -> bool {
    let lower = file.to_ascii_lowercase();
    lower == "readme" || lower.starts_with("readme.")
}

/// Whether README file `have` beats `other`: `README.md` beats every other spelling.
fn prefer(have: &str, other: &str) -> bool {
    have.eq_ignore_ascii_case("readme.md") || !other.eq_ignore_ascii_case("readme.md")
}

/// package.json's own `readme` text, unless it is npm's placeholder for none.
fn manifest_readme(manifest: &str) -> Option<String> {
    let pkg: Value = serde_json::from_str(manifest).ok()?;
    let text = pkg.get("readme")?.as_str()?.trim();
    (!text.is_empty() && text != "ERROR: No README data found!")
        .then(|| text.chars().take(MAX_README as usize).collect())
}

/// The manifest as the registry keeps it: the package.json with `_hasShrinkwrap` set from the
/// tarball (whatever the package.json itself claimed).
fn with_shrinkwrap_flag(manifest: &str, shrinkwrap: bool) -> String {
    match serde_json::from_str::<Value>(manifest) {
        Ok(Value::Object(mut pkg)) => {
            pkg.insert(HAS_SHRINKWRAP.into(), Value::Bool(shrinkwrap));
            Value::Object(pkg).to_string()
        }
        _ => manifest.to_string(),
    }
}

/// Checks one entry where it lands once unpacked, and records its links; `None` for entries
/// extractors skip (the top folder itself, a pax global header).
fn place_entry<R: Read>(layout: &mut Layout, raw: &str, entry: &tar::Entry<R>) -> Result<Option<Location>, Error> {
    let kind = entry.header().entry_type();
    if kind == EntryType::XGlobalHeader {
        // `git archive` writes one (the commit id) first; it is not a file.
        return Ok(None);
    }
    let rest = layout::strip(raw).map_err(|why| refused(raw, why, None))?;
    let link = || {
        entry
            .link_name_bytes()
            .map(|t| String::from_utf8_lossy(&t).into_owned())
            .ok_or_else(|| Error::invalid(format!("the link \"{raw}\" has no target")))
    };
    let Some(rest) = rest else {
        return match kind {
            EntryType::Regular
            | EntryType::Continuous
            | EntryType::Directory
            | EntryType::Symlink
            | EntryType::Link => Ok(None),
            other => Err(unsupported(raw, other)),
        };
    };
    let placed = match kind {
        EntryType::Regular | EntryType::Continuous | EntryType::Directory => {
            layout.add_plain(&rest).map_err(|why| refused(raw, why, None))?
        }
        EntryType::Symlink => {
            let target = link()?;
            layout.add_symlink(&rest, &target).map_err(|why| refused(raw, why, Some(&target)))?
        }
        EntryType::Link => {
            let target = link()?;
            layout.add_hard_link(&rest, &target).map_err(|why| refused(raw, why, Some(&target)))?
        }
        other => return Err(unsupported(raw, other)),
    };
    Ok(Some(placed))
}

fn unsupported(raw: &str, kind: EntryType) -> Error {
    Error::invalid(format!("the tarball entry \"{raw}\" has an unsupported type ({kind:?})"))
}

/// The 400 for an entry that would land outside the package folder once unpacked.
fn refused(shown: &str, why: Refusal, target: Option<&str>) -> Error {
    let entry = match target {
        Some(target) => format!("the link \"{shown}\" (to \"{target}\")"),
        None => format!("the tarball entry \"{shown}\""),
    };
    match (why, target) {
        (Refusal::Outside, Some(target)) => {
            Error::invalid(format!("the link \"{shown}\" points outside the package (to \"{target}\")"))
        }
        (Refusal::Outside, None) => Error::invalid(format!("{entry} points outside the package")),
        (Refusal::Loop, _) => Error::invalid(format!("{entry} goes through symbolic links that loop")),
    }
}

/// The metadata of a `package.json` text; the text itself is kept as the manifest.
pub fn metadata_from_manifest(text: &str) -> Result<Metadata, Error> {
    let json: Value =
        serde_json::from_str(text).map_err(|e| Error::invalid(format!("package.json is not valid JSON: {e}")))?;
    let pkg = json.as_object().ok_or_else(|| Error::invalid("package.json is not a JSON object"))?;
    let name = pkg.get("name").and_then(Value::as_str).ok_or_else(|| Error::invalid("package.json has no \"name\""))?;
    name::validate(name)?;
    let raw_version =
        pkg.get("version").and_then(Value::as_str).ok_or_else(|| Error::invalid("package.json has no \"version\""))?;
    let version = normalize_version(raw_version)?;

    let mut meta = Metadata::new(name, version);
    meta.summary = string(pkg, "description");
    meta.license = license(pkg);
    meta.homepage = string(pkg, "homepage");
    meta.repository = match pkg.get("repository") {
        Some(Value::String(url)) => Some(url.clone()),
        Some(Value::Object(repo)) => string(repo, "url"),
        _ => None,
    };
    meta.authors = pkg.get("author").into_iter().chain(list(pkg, "contributors")).filter_map(person).collect();
    meta.keywords = match pkg.get("keywords") {
        Some(Value::Array(words)) => words.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        Some(Value::String(words)) => words.split([',', ' ']).filter(|w| !w.is_empty()).map(str::to_string).collect(),
        _ => Vec::new(),
    };
    for (field, kind) in [
        ("dependencies", "runtime"),
        ("devDependencies", "development"),
        ("peerDependencies", "peer"),
        ("optionalDependencies", "optional"),
    ] {
        if let Some(Value::Object(deps)) = pkg.get(field) {
            meta.dependencies.extend(deps.iter().map(|(dep, req)| Dependency {
                name: dep.clone(),
                requirement: req.as_str().unwrap_or_default().to_string(),
                kind: kind.to_string(),
                group: String::new(),
            }));
        }
    }
    meta.manifest = text.to_string();
    Ok(meta)
}

/// A version as npm cleans it (`semver.clean`: `v1.2.3` -> `1.2.3`, `1.0.0+build.7` -> `1.0.0`),
/// which must be a semantic version. npm publishes and the registry stores the cleaned version:
/// build metadata is not part of a version's identity, so `1.0.0+a` and `1.0.0+b` are one version.
pub fn normalize_version(raw: &str) -> Result<String, Error> {
    let trimmed = raw.trim().trim_start_matches(['=', 'v']);
    semver::Version::parse(trimmed)
        .map(|mut v| {
            v.build = semver::BuildMetadata::EMPTY;
            v.to_string()
        })
        .map_err(|e| Error::invalid(format!("\"{raw}\" is not a valid semantic version: {e}")))
}

fn string(obj: &Map<String, Value>, key: &str) -> Option<String> {
    obj.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string)
}

fn list<'a>(obj: &'a Map<String, Value>, key: &str) -> impl Iterator<Item = &'a Value> {
    obj.get(key).and_then(Value::as_array).into_iter().flatten()
}

/// `license` is a SPDX string, or in old packages `{type}` or a `licenses` list of those.
fn license(pkg: &Map<String, Value>) -> Option<String> {
    let of = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => string(o, "type"),
        _ => None,
    };
    pkg.get("license").and_then(of).or_else(|| {
        let all: Vec<String> = list(pkg, "licenses").filter_map(of).collect();
        (!all.is_empty()).then(|| all.join(" OR "))
    })
}

/// A person as `Name <email> (url)`, from either that string or `{name, email, url}`.
fn person(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Object(o) => {
            let mut out = string(o, "name")?;
            if let Some(email) = string(o, "email") {
                out.push_str(&format!(" <{email}>"));
            }
            if let Some(url) = string(o, "url") {
                out.push_str(&format!(" ({url})"));
            }
            Some(out)
        }
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use sluice_plugin_sdk::ErrorKind;

    /// A gzip-compressed tar of these entries; paths are written raw, so hostile ones get in.
    pub fn tgz(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        for (path, data) in entries {
            builder.append(&header(path, EntryType::Regular, data.len() as u64, None), *data).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    fn header(path: &str, kind: EntryType, size: u64, link: Option<&str>) -> tar::Header {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        if let Some(link) = link {
            h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_cksum();
        h
    }

    pub fn package_json(name: &str, version: &str) -> String {
        serde_json::json!({
            "name": name,
            "version": version,
            "description": "A test package",
            "license": "MIT",
            "homepage": "https://example.com",
            "repository": {"type": "git", "url": "git+https://example.com/repo.git"},
            "author": {"name": "Ada", "email": "ada@example.com"},
            "contributors": ["Bob <bob@example.com>"],
            "keywords": ["test", "demo"],
            "dependencies": {"left-pad": "^1.3.0"},
            "devDependencies": {"mocha": "10"},
            "peerDependencies": {"react": ">=18"},
            "optionalDependencies": {"fsevents": "*"},
        })
        .to_string()
    }

    pub fn good_tgz(name: &str, version: &str) -> Vec<u8> {
        let pj = package_json(name, version);
        tgz(&[("package/package.json", pj.as_bytes()), ("package/index.js", b"module.exports = 1\n")])
    }

    fn err(data: Vec<u8>) -> Error {
        parse("demo-1.0.0.tgz", data, &Limits::TEST).expect_err("hostile tarball accepted")
    }

    #[test]
    fn reads_metadata() {
        let meta = parse("demo-1.2.3.tgz", good_tgz("@scope/demo", "v1.2.3"), &Limits::TEST).unwrap();
        assert_eq!((meta.name.as_str(), meta.version.as_str()), ("@scope/demo", "1.2.3"));
        assert_eq!(meta.summary.as_deref(), Some("A test package"));
        assert_eq!(meta.license.as_deref(), Some("MIT"));
        assert_eq!(meta.homepage.as_deref(), Some("https://example.com"));
        assert_eq!(meta.repository.as_deref(), Some("git+https://example.com/repo.git"));
        assert_eq!(meta.authors, ["Ada <ada@example.com>", "Bob <bob@example.com>"]);
        assert_eq!(meta.keywords, ["test", "demo"]);
        let kinds: Vec<_> = meta.dependencies.iter().map(|d| (d.name.as_str(), d.kind.as_str())).collect();
        assert_eq!(
            kinds,
            [("left-pad", "runtime"), ("mocha", "development"), ("react", "peer"), ("fsevents", "optional")]
        );
        let mut stored: Value = serde_json::from_str(&package_json("@scope/demo", "v1.2.3")).unwrap();
        stored["_hasShrinkwrap"] = Value::Bool(false);
        assert_eq!(serde_json::from_str::<Value>(&meta.manifest).unwrap(), stored);
    }

    #[test]
    fn any_single_top_folder_holds_the_manifest() {
        // `@types/node` packs into `node/`, a git archive into `name-commit/` after a pax header.
        let pj = package_json("@types/node", "20.1.0");
        assert!(parse("node-20.1.0.tgz", tgz(&[("node/package.json", pj.as_bytes())]), &Limits::TEST).is_ok());
        let pj = package_json("busboy", "1.6.0");
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        let comment = b"52 comment=9aadb7afc4c8d7ddd45e4f6df96d5bd1c2c5b5a2\n";
        builder
            .append(&header("pax_global_header", EntryType::XGlobalHeader, comment.len() as u64, None), &comment[..])
            .unwrap();
        for (path, data) in
            [("mscdex-busboy-9aadb7a/", &b""[..]), ("mscdex-busboy-9aadb7a/package.json", pj.as_bytes())]
        {
            let kind = if path.ends_with('/') { EntryType::Directory } else { EntryType::Regular };
            builder.append(&header(path, kind, data.len() as u64, None), data).unwrap();
        }
        let meta = parse("busboy-1.6.0.tgz", builder.into_inner().unwrap().finish().unwrap(), &Limits::TEST).unwrap();
        assert_eq!(meta.name, "busboy");

        // Where an extractor leaves it: `./package/package.json` lands in `package/`, not at the top.
        let e = parse(
            "demo-1.0.0.tgz",
            tgz(&[("./package/package.json", package_json("demo", "1.0.0").as_bytes())]),
            &Limits::TEST,
        );
        assert!(e.unwrap_err().message.contains("no package.json in its top folder"));
        let e =
            parse("demo-1.0.0.tgz", tgz(&[("package.json", package_json("demo", "1.0.0").as_bytes())]), &Limits::TEST);
        assert!(
            e.unwrap_err().message.contains("no package.json in its top folder"),
            "a file beside the folder is skipped"
        );
    }

    #[test]
    fn build_metadata_is_cleaned_as_npm_does() {
        assert_eq!(normalize_version("1.0.0+build.7").unwrap(), "1.0.0");
        assert_eq!(normalize_version("v2.0.0-rc.1+sha.5").unwrap(), "2.0.0-rc.1");
        let meta = parse("demo-1.0.0.tgz", good_tgz("demo", "1.0.0+build.7"), &Limits::TEST).unwrap();
        assert_eq!(meta.version, "1.0.0");
    }

    #[test]
    fn records_a_top_level_shrinkwrap() {
        let pj = package_json("demo", "1.0.0");
        let flag = |entries: &[(&str, &[u8])]| {
            let meta = parse("demo-1.0.0.tgz", tgz(entries), &Limits::TEST).unwrap();
            serde_json::from_str::<Value>(&meta.manifest).unwrap()["_hasShrinkwrap"].clone()
        };
        let with = [("package/package.json", pj.as_bytes()), ("package/npm-shrinkwrap.json", b"{}")];
        assert_eq!(flag(&with), Value::Bool(true));
        let nested = [("package/package.json", pj.as_bytes()), ("package/lib/npm-shrinkwrap.json", b"{}")];
        assert_eq!(flag(&nested), Value::Bool(false));
        // A package.json claiming it does not make it so.
        let claims = package_json("demo", "1.0.0").replacen('{', "{\"_hasShrinkwrap\":true,", 1);
        assert_eq!(flag(&[("package/package.json", claims.as_bytes())]), Value::Bool(false));
    }

    #[test]
    fn rejects_hostile_tarballs() {
        let e = err(b"PK\x03\x04 this is a zip".to_vec());
        assert!(e.message.contains("not a gzip"), "{}", e.message);

        let e = err(tgz(&[("package/index.js", b"1")]));
        assert!(e.message.contains("no package.json in its top folder"), "{}", e.message);

        let pj = package_json("demo", "1.0.0");
        let e = err(tgz(&[("package/package.json", pj.as_bytes()), ("package/../../etc/passwd", b"x")]));
        assert!(e.message.contains("outside the package"), "{}", e.message);

        let e = err(tgz(&[("/etc/passwd", b"x"), ("package/package.json", pj.as_bytes())]));
        assert!(e.message.contains("outside the package"), "{}", e.message);

        let huge =
            format!("{{\"name\":\"demo\",\"version\":\"1.0.0\",\"x\":\"{}\"}}", "a".repeat(MAX_MANIFEST as usize));
        let e = err(tgz(&[("package/package.json", huge.as_bytes())]));
        assert_eq!(e.kind, ErrorKind::TooLarge, "{}", e.message);

        let e = err(tgz(&[("package/package.json", b"{not json")]));
        assert!(e.message.contains("not valid JSON"), "{}", e.message);

        let e = err(good_tgz("demo", "1.0"));
        assert!(e.message.contains("semantic version"), "{}", e.message);

        let e = err(good_tgz("../demo", "1.0.0"));
        assert!(e.message.contains("invalid package name"), "{}", e.message);

        let mut truncated = good_tgz("demo", "1.0.0");
        truncated.truncate(truncated.len() / 2);
        assert!(parse("demo-1.0.0.tgz", truncated, &Limits::TEST).is_err());

        let mut corrupt = good_tgz("demo", "1.0.0");
        let crc = corrupt.len() - 8;
        corrupt[crc] ^= 0xff;
        assert!(err(corrupt).message.contains("damaged"));

        let e = err(good_tgz("other", "1.0.0"));
        assert!(e.message.contains("holds other@1.0.0"), "{}", e.message);
        let e = err(good_tgz("demo", "2.0.0"));
        assert!(e.message.contains("holds demo@2.0.0"), "{}", e.message);
    }

    fn with_link(kind: EntryType, path: &str, target: &str) -> Vec<u8> {
        let pj = package_json("demo", "1.0.0");
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        builder
            .append(&header("package/package.json", EntryType::Regular, pj.len() as u64, None), pj.as_bytes())
            .unwrap();
        builder.append(&header(path, kind, 0, Some(target)), &b""[..]).unwrap();
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn links_must_stay_inside() {
        assert!(parse(
            "demo-1.0.0.tgz",
            with_link(EntryType::Symlink, "package/lib/a.js", "../index.js"),
            &Limits::TEST
        )
        .is_ok());
        assert!(parse("demo-1.0.0.tgz", with_link(EntryType::Link, "package/b.js", "package/index.js"), &Limits::TEST)
            .is_ok());
        for (kind, path, target) in [
            (EntryType::Symlink, "package/a.js", "../../outside"),
            (EntryType::Symlink, "package/a.js", "/etc/passwd"),
            (EntryType::Link, "package/b.js", "../etc/passwd"),
            (EntryType::Link, "package/b.js", "/etc/passwd"),
        ] {
            let e = err(with_link(kind, path, target));
            assert!(e.message.contains("points outside"), "{target}: {}", e.message);
        }
        // The chain: `x -> .` and `y -> x/..` each look harmless as written.
        let pj = package_json("demo", "1.0.0");
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        builder
            .append(&header("package/package.json", EntryType::Regular, pj.len() as u64, None), pj.as_bytes())
            .unwrap();
        builder.append(&header("package/x", EntryType::Symlink, 0, Some(".")), &b""[..]).unwrap();
        builder.append(&header("package/y", EntryType::Symlink, 0, Some("x/..")), &b""[..]).unwrap();
        builder.append(&header("package/y/escaped.txt", EntryType::Regular, 1, None), &b"x"[..]).unwrap();
        let e = err(builder.into_inner().unwrap().finish().unwrap());
        assert_eq!(e.kind, ErrorKind::Invalid);
        assert!(e.message.contains("\"package/y\" points outside the package (to \"x/..\")"), "{}", e.message);

        let e = err(with_link(EntryType::Char, "package/tty", ""));
        assert!(e.message.contains("unsupported type"), "{}", e.message);
    }

    #[test]
    fn stops_decompression_bombs_at_the_operators_limit() {
        // 8 MiB of zeros: within the default limit, over an operator's limit of 4 MiB.
        let size = 8 << 20;
        let pj = package_json("demo", "1.0.0");
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        let mut builder = tar::Builder::new(&mut gz);
        builder
            .append(&header("package/package.json", EntryType::Regular, pj.len() as u64, None), pj.as_bytes())
            .unwrap();
        builder
            .append(&header("package/zeros", EntryType::Regular, size, None), std::io::repeat(0).take(size))
            .unwrap();
        builder.finish().unwrap();
        drop(builder);
        let bomb = gz.finish().unwrap();
        assert!(parse("demo-1.0.0.tgz", bomb.clone(), &Limits::TEST).is_ok());
        let small = Limits { max_unpacked_bytes: 4 << 20, ..Limits::TEST };
        let e = parse("demo-1.0.0.tgz", bomb, &small).unwrap_err();
        assert!(e.message.contains("over its size limit"), "{}", e.message);
    }

    #[test]
    fn keeps_the_readme() {
        let pj = package_json("demo", "1.0.0");
        let readme = |entries: &[(&str, &[u8])]| parse("demo-1.0.0.tgz", tgz(entries), &Limits::TEST).unwrap().readme;
        let base = ("package/package.json", pj.as_bytes());
        assert_eq!(readme(&[base]), None);
        assert_eq!(readme(&[base, ("package/readme.txt", b"plain")]).as_deref(), Some("plain"));
        let both =
            [base, ("package/Readme", b"other"), ("package/README.md", b"# Demo"), ("package/lib/README.md", b"no")];
        assert_eq!(readme(&both).as_deref(), Some("# Demo"));
        let with_field = package_json("demo", "1.0.0").replacen('{', "{\"readme\":\"from package.json\",", 1);
        let entries = [("package/package.json", with_field.as_bytes()), ("package/README.md", b"# file")];
        assert_eq!(readme(&entries).as_deref(), Some("from package.json"));
        let long = vec![b'x'; MAX_README as usize + 10];
        assert_eq!(readme(&[base, ("package/README.md", &long)]).unwrap().len(), MAX_README as usize);
    }
}
