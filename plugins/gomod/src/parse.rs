//! Reading a stored module zip back: module path and version from its `module@version/` prefix,
//! the go.mod as manifest, dependencies from its `require` directives.

use crate::module_path;
use crate::module_zip::{MAX_GO_MOD, MAX_ZIP_FILE};
use sluice_plugin_sdk::io::{BlobReader, LimitedReader, ReadAt};
use sluice_plugin_sdk::{Dependency, Error, Metadata};
use std::io::Read;

/// `module@version/` from the first entry name.
fn split_prefix(name: &str) -> Result<(&str, &str), Error> {
    let bad = || Error::invalid(format!("zip entry {name:?} does not start with module@version/"));
    let (module, rest) = name.split_once('@').ok_or_else(bad)?;
    let (version, _) = rest.split_once('/').ok_or_else(bad)?;
    Ok((module, version))
}

/// Reads a module zip.
pub fn parse(file_name: &str, file: impl ReadAt) -> Result<Metadata, Error> {
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
    let parsed = module_path::parse_version(&version).map_err(|e| Error::invalid(e.0))?;
    if parsed.canonical != version {
        return Err(Error::invalid(format!("version {version:?} is not canonical (should be {:?})", parsed.canonical)));
    }
    module_path::check_path_major(&module, &parsed).map_err(|e| Error::invalid(e.0))?;

    let prefix = format!("{module}@{version}/");
    let mut total: u64 = 0;
    for index in 0..archive.len() {
        let entry = archive.by_index_raw(index).map_err(|e| Error::invalid(format!("{file_name}: {e}")))?;
        let Some(path) = entry.name().strip_prefix(&prefix) else {
            return Err(Error::invalid(format!("zip entry {:?} is outside {prefix}", entry.name())));
        };
        let path = path.strip_suffix('/').unwrap_or(path);
        if !path.is_empty() {
            module_path::check_file_path(path).map_err(|e| Error::invalid(format!("zip entry {:?}: {e}", entry.name())))?;
        }
        total = total.saturating_add(entry.size());
    }
    if total > MAX_ZIP_FILE {
        return Err(Error::too_large(format!("{file_name}: module content is larger than {MAX_ZIP_FILE} bytes")));
    }

    let mut go_mod = String::new();
    let entry = archive
        .by_name(&format!("{prefix}go.mod"))
        .map_err(|_| Error::invalid(format!("{file_name} has no go.mod at {prefix}go.mod")))?;
    LimitedReader::new(entry, MAX_GO_MOD, "go.mod")
        .read_to_string(&mut go_mod)
        .map_err(|e| Error::invalid(format!("reading go.mod: {e}")))?;
    let parsed_mod = crate::gomod_file::parse(&go_mod).map_err(|e| Error::invalid(e.0))?;
    if parsed_mod.module != module {
        return Err(Error::invalid(format!("go.mod declares module {}, but the zip holds {module}", parsed_mod.module)));
    }

    let mut meta = Metadata::new(module, version);
    meta.dependencies = parsed_mod
        .requires
        .into_iter()
        .map(|r| Dependency { name: r.path, requirement: r.version, kind: "runtime".into(), group: String::new() })
        .collect();
    meta.manifest = go_mod;
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
        let go_mod = "module example.com/M/v2\n\nrequire (\n\texample.com/dep v1.4.0\n\texample.com/ind v0.1.0 // indirect\n)\n";
        let bytes = zip_of(&[("example.com/M/v2@v2.1.0/go.mod", go_mod), ("example.com/M/v2@v2.1.0/m.go", "package m")]);
        let meta = parse("v2.1.0.zip", &bytes).unwrap();
        assert_eq!(meta.name, "example.com/M/v2");
        assert_eq!(meta.version, "v2.1.0");
        assert_eq!(meta.manifest, go_mod);
        let deps: Vec<_> = meta.dependencies.iter().map(|d| (d.name.as_str(), d.requirement.as_str())).collect();
        assert_eq!(deps, vec![("example.com/dep", "v1.4.0"), ("example.com/ind", "v0.1.0")]);
    }

    #[test]
    fn rejects_malformed_zips() {
        let e = |files: &[(&str, &str)]| parse("x.zip", zip_of(files)).unwrap_err().message;
        assert!(parse("x.zip", b"not a zip".to_vec()).unwrap_err().message.contains("not a readable zip"));
        assert!(e(&[("example.com/m@v1.0.0/go.mod", "module example.com/m\n"), ("other/x.go", "")]).contains("outside"));
        assert!(e(&[("example.com/m@v1.0.0/go.mod", "module example.com/m\n"), ("example.com/m@v1.0.0/../x", "")]).contains("invalid path element"));
        assert!(e(&[("example.com/m@v1.0.0/m.go", "")]).contains("no go.mod"));
        assert!(e(&[("example.com/m@v1.0.0/go.mod", "module example.com/other\n")]).contains("declares module example.com/other"));
        assert!(e(&[("example.com/m@v2.0.0/go.mod", "module example.com/m\n")]).contains("takes only v0 and v1"));
        assert!(e(&[("example.com/m@v1.0/go.mod", "module example.com/m\n")]).contains("not a semantic version"));
        assert!(e(&[("nodot@v1.0.0/go.mod", "module nodot\n")]).contains("missing dot"));
    }
}
