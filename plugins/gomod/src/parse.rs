//! Reading a stored module zip back: module path and version from its `module@version/` prefix,
//! the go.mod (the one Go synthesizes when the zip has none) and commit time as manifest,
//! dependencies from its `require` directives.

use crate::module_path;
use crate::module_zip::{MAX_GO_MOD, MAX_ZIP_FILE};
use sluice_plugin_sdk::io::{BlobReader, LimitedReader, ReadAt};
use sluice_plugin_sdk::{readme_rank, readme_text, Dependency, Error, Limits, Metadata, MAX_README_BYTES};
use std::io::Read;

/// What is stored with a version: the go.mod the proxy serves as `.mod`, and the commit time it
/// serves as `.info`'s `Time`. Versions stored before this was JSON hold the bare go.mod.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub go_mod: String,
    /// Commit time, Unix seconds.
    #[serde(default)]
    pub time: Option<u64>,
}

impl Manifest {
    pub fn read(stored: &str) -> Manifest {
        if stored.starts_with('{') {
            if let Ok(manifest) = serde_json::from_str(stored) {
                return manifest;
            }
        }
        Manifest { go_mod: stored.to_string(), time: None }
    }
}

/// `module@version/` from the first entry name.
fn split_prefix(name: &str) -> Result<(&str, &str), Error> {
    let bad = || Error::invalid(format!("zip entry {name:?} does not start with module@version/"));
    let (module, rest) = name.split_once('@').ok_or_else(bad)?;
    let (version, _) = rest.split_once('/').ok_or_else(bad)?;
    Ok((module, version))
}

/// Reads a module zip; its content may unpack to no more than `limits.max_unpacked_bytes`.
pub fn parse(file_name: &str, file: impl ReadAt, limits: &Limits) -> Result<Metadata, Error> {
    let size = file.size();
    if size > MAX_ZIP_FILE {
        return Err(Error::too_large(format!("{file_name}: module zip is larger than {MAX_ZIP_FILE} bytes")));
    }
    let mut archive = zip::ZipArchive::new(BlobReader::new(file))
        .map_err(|e| Error::invalid(format!("{file_name} is not a readable zip file: {e}")))?;
    if archive.is_empty() {
        return Err(Error::invalid(format!("{file_name} is an empty zip file")));
    }
    let first = archive.name_for_index(0).unwrap_or_default().to_string();
    let (module, version) = split_prefix(&first)?;
    let (module, version) = (module.to_string(), version.to_string());
    module_path::check_module_path(&module).map_err(|e| Error::invalid(format!("module path {module:?}: {e}")))?;
    let parsed = module_path::parse_served_version(&version).map_err(|e| Error::invalid(e.0))?;
    if parsed.canonical != version {
        return Err(Error::invalid(format!("version {version:?} is not canonical (should be {:?})", parsed.canonical)));
    }
    module_path::check_path_major(&module, &parsed).map_err(|e| Error::invalid(e.0))?;
    // A zip is stored as `VERSION.zip` (from a tag, or fetched from a proxy's upstream for that
    // version): one holding another version is not the file it claims to be.
    if file_name.ends_with(".zip") && file_name != crate::zip_file_name(&version) {
        return Err(Error::invalid(format!("{file_name} holds {module}@{version}, not the version its name says")));
    }

    let prefix = format!("{module}@{version}/");
    let mut total: u64 = 0;
    let mut time = None;
    // The module root's README files, for the package page: (rank, index).
    let mut readmes: Vec<(u8, String, usize)> = Vec::new();
    for index in 0..archive.len() {
        let entry = archive.by_index_raw(index).map_err(|e| Error::invalid(format!("{file_name}: {e}")))?;
        time = time.or_else(|| crate::module_zip::entry_time(&entry));
        let Some(path) = entry.name().strip_prefix(&prefix) else {
            return Err(Error::invalid(format!("zip entry {:?} is outside {prefix}", entry.name())));
        };
        let path = path.strip_suffix('/').unwrap_or(path);
        if !path.is_empty() {
            module_path::check_file_path(path)
                .map_err(|e| Error::invalid(format!("zip entry {:?}: {e}", entry.name())))?;
        }
        if entry.is_file() && !path.contains('/') {
            if let Some(rank) = readme_rank(path) {
                readmes.push((rank, path.to_string(), index));
            }
        }
        total = total.saturating_add(entry.size());
    }
    if total > MAX_ZIP_FILE {
        return Err(Error::too_large(format!("{file_name}: module content is larger than {MAX_ZIP_FILE} bytes")));
    }
    if total > limits.max_unpacked_bytes {
        return Err(Error::too_large(format!(
            "{file_name}: module content unpacks to more than this registry's limit of {} MiB",
            limits.max_unpacked_bytes >> 20
        )));
    }

    let go_mod_name = format!("{prefix}go.mod");
    let has_go_mod = archive.index_for_name(&go_mod_name).is_some();
    if parsed.incompatible && has_go_mod {
        return Err(Error::invalid(format!(
            "{version} is an +incompatible version, which only a module without go.mod has"
        )));
    }
    let go_mod = if has_go_mod {
        let mut go_mod = String::new();
        let entry = archive.by_name(&go_mod_name).map_err(|e| Error::invalid(format!("{file_name}: {e}")))?;
        LimitedReader::new(entry, MAX_GO_MOD, "go.mod")
            .read_to_string(&mut go_mod)
            .map_err(|e| Error::invalid(format!("reading go.mod: {e}")))?;
        go_mod
    } else {
        // A module from before go.mod files: Go serves the go.mod it synthesizes.
        crate::from_tag::synthesized_go_mod(&module)
    };
    let parsed_mod = crate::gomod_file::parse(&go_mod).map_err(|e| Error::invalid(e.0))?;
    if parsed_mod.module != module {
        return Err(Error::invalid(format!(
            "go.mod declares module {}, but the zip holds {module}",
            parsed_mod.module
        )));
    }

    let mut meta = Metadata::new(module, version);
    meta.dependencies = parsed_mod
        .requires
        .into_iter()
        .map(|r| Dependency { name: r.path, requirement: r.version, kind: "runtime".into(), group: String::new() })
        .collect();
    meta.manifest = serde_json::to_string(&Manifest { go_mod, time }).expect("a manifest serialises");
    if let Some((_, name, index)) = readmes.into_iter().min() {
        let entry = archive.by_index(index).map_err(|e| Error::invalid(format!("{file_name}: {e}")))?;
        let mut bytes = Vec::new();
        entry
            .take(MAX_README_BYTES)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::invalid(format!("{file_name}: reading {name}: {e}")))?;
        meta.readme = readme_text(&bytes);
    }
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};

    fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, body) in files {
            w.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
            w.write_all(body.as_bytes()).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn reads_identity_manifest_and_dependencies() {
        let go_mod =
            "module example.com/M/v2\n\nrequire (\n\texample.com/dep v1.4.0\n\texample.com/ind v0.1.0 // indirect\n)\n";
        let bytes =
            zip_of(&[("example.com/M/v2@v2.1.0/go.mod", go_mod), ("example.com/M/v2@v2.1.0/m.go", "package m")]);
        let meta = parse("v2.1.0.zip", &bytes, &Limits::TEST).unwrap();
        assert_eq!(meta.name, "example.com/M/v2");
        assert_eq!(meta.version, "v2.1.0");
        assert_eq!(Manifest::read(&meta.manifest), Manifest { go_mod: go_mod.into(), time: None });
        let deps: Vec<_> = meta.dependencies.iter().map(|d| (d.name.as_str(), d.requirement.as_str())).collect();
        assert_eq!(deps, vec![("example.com/dep", "v1.4.0"), ("example.com/ind", "v0.1.0")]);
    }

    #[test]
    fn rejects_malformed_zips() {
        // A name without `.zip`, so that each case reaches its own check.
        let e = |files: &[(&str, &str)]| parse("module", zip_of(files), &Limits::TEST).unwrap_err().message;
        // A zip stored or fetched as one version that holds another is not that version.
        let other = zip_of(&[("example.com/m@v1.0.1/go.mod", "module example.com/m\n")]);
        assert!(parse("v1.0.0.zip", other, &Limits::TEST)
            .unwrap_err()
            .message
            .contains("not the version its name says"));
        assert!(parse("x.zip", b"not a zip".to_vec(), &Limits::TEST)
            .unwrap_err()
            .message
            .contains("not a readable zip"));
        assert!(e(&[("example.com/m@v1.0.0/go.mod", "module example.com/m\n"), ("other/x.go", "")]).contains("outside"));
        assert!(e(&[("example.com/m@v1.0.0/go.mod", "module example.com/m\n"), ("example.com/m@v1.0.0/../x", "")])
            .contains("invalid path element"));
        assert!(e(&[("example.com/m@v2.0.0+incompatible/go.mod", "module example.com/m\n")]).contains("+incompatible"));
        assert!(e(&[("example.com/m@v1.0.0/go.mod", "module example.com/other\n")])
            .contains("declares module example.com/other"));
        assert!(e(&[("example.com/m@v2.0.0/go.mod", "module example.com/m\n")]).contains("takes only v0 and v1"));
        assert!(e(&[("example.com/m@v1.0/go.mod", "module example.com/m\n")]).contains("not a semantic version"));
        assert!(e(&[("nodot@v1.0.0/go.mod", "module nodot\n")]).contains("missing dot"));
    }

    /// A module as `git archive` of a tag gives it: README.md at the root beside a docs/ folder
    /// with its own README, and a plain README too.
    #[test]
    fn reads_the_module_roots_readme() {
        let p = "github.com/Azure/m@v1.2.0/";
        let files = |extra: &[(&str, &str)]| {
            let mut all = vec![(format!("{p}go.mod"), "module github.com/Azure/m\n".to_string())];
            all.extend(extra.iter().map(|(n, b)| (format!("{p}{n}"), b.to_string())));
            let refs: Vec<(&str, &str)> = all.iter().map(|(n, b)| (n.as_str(), b.as_str())).collect();
            parse("v1.2.0.zip", zip_of(&refs), &Limits::TEST).unwrap().readme
        };
        let readme = files(&[("README", "plain"), ("docs/README.md", "# docs"), ("README.md", "# m\n")]);
        assert_eq!(readme.as_deref(), Some("# m\n"), "Markdown at the root first");
        assert_eq!(files(&[("readme.txt", "text"), ("docs/README.md", "# docs")]).as_deref(), Some("text"));
        assert_eq!(files(&[("docs/README.md", "# docs"), ("m.go", "package m")]), None);

        let limits = Limits { max_upload_bytes: 1 << 20, max_unpacked_bytes: 1000 };
        let big = "x".repeat(2000);
        let zip = zip_of(&[(&format!("{p}go.mod"), "module github.com/Azure/m\n"), (&format!("{p}big.go"), &big)]);
        assert_eq!(parse("v1.2.0.zip", zip, &limits).unwrap_err().kind, sluice_plugin_sdk::ErrorKind::TooLarge);
    }
}
