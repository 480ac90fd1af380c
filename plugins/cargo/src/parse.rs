//! Reading a `.crate`: a gzipped tar whose entries all live under `NAME-VERSION/`, with the
//! normalised `Cargo.toml` at `NAME-VERSION/Cargo.toml`.

use crate::manifest::CrateManifest;
use flate2::read::GzDecoder;
use sluice_plugin_sdk::io::{BlobReader, LimitedReader, ReadAt};
use sluice_plugin_sdk::{readme_rank, readme_text, Error, MAX_README_BYTES};
use std::io::Read;
use std::path::Component;

/// Largest `Cargo.toml` read.
const MANIFEST_LIMIT: u64 = 1 << 20;
/// Largest unpacked `.crate` walked through (crates.io allows 10 MB packed).
const UNPACKED_LIMIT: u64 = 512 << 20;

/// How much of the archive to check.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Stop at `Cargo.toml` (the publish request, before the host stores the file).
    ManifestOnly,
    /// Every entry: one top folder, no absolute paths or `..`, no links leaving the crate.
    Full,
}

/// A byte range of another source: the `.crate` inside a publish request's body.
pub struct Slice<R> {
    pub inner: R,
    pub offset: u64,
    pub len: u64,
}

impl<R: ReadAt> ReadAt for Slice<R> {
    fn size(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, len: u32) -> Vec<u8> {
        if offset >= self.len {
            return Vec::new();
        }
        let len = (len as u64).min(self.len - offset) as u32;
        self.inner.read_at(self.offset + offset, len)
    }
}

/// Reads the crate's manifest and checks that the archive is one crate version's.
pub fn read_crate(file: impl ReadAt, check: Check) -> Result<CrateManifest, Error> {
    read_crate_within(file, check, UNPACKED_LIMIT).map(|(manifest, _)| manifest)
}

/// [`read_crate`], unpacking no more than `max_unpacked` bytes (the operator's limit, never more
/// than [`UNPACKED_LIMIT`]); with [`Check::Full`], also the README cargo names: the
/// normalised Cargo.toml's `readme` (cargo copies a README from outside the crate in and points
/// `readme` at it), else `README.md`, `README.txt` or `README` at the top as cargo defaults,
/// none with `readme = false`.
pub fn read_crate_within(
    file: impl ReadAt,
    check: Check,
    max_unpacked: u64,
) -> Result<(CrateManifest, Option<String>), Error> {
    let limit = max_unpacked.min(UNPACKED_LIMIT);
    let gz = GzDecoder::new(BlobReader::new(file));
    let mut archive = tar::Archive::new(LimitedReader::new(gz, limit, "the unpacked crate"));
    let mut top: Option<String> = None;
    let mut manifest = None;
    let mut readme_setting: Option<Option<String>> = None;
    // README-like files (by name, anywhere) met before the manifest said which one it is.
    let mut readmes: Vec<(String, Vec<u8>)> = Vec::new();
    let bad = |what: String| {
        if what.contains("over its size limit") {
            Error::too_large(format!("the crate unpacks to more than this registry's limit of {} MiB", limit >> 20))
        } else {
            Error::invalid(format!("not a valid .crate: {what}"))
        }
    };
    for entry in archive.entries().map_err(|e| bad(e.to_string()))? {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        let path = entry.path().map_err(|e| bad(e.to_string()))?.into_owned();
        let mut parts = path.components();
        let first = match parts.next() {
            Some(Component::Normal(p)) => p.to_string_lossy().into_owned(),
            _ => return Err(bad(format!("entry `{}` is not inside the crate's folder", path.display()))),
        };
        if parts.clone().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(bad(format!("entry `{}` leaves the crate's folder", path.display())));
        }
        match &top {
            None => top = Some(first.clone()),
            Some(t) if *t != first => {
                return Err(bad(format!("entries in two top folders, `{t}` and `{first}`")));
            }
            Some(_) => {}
        }
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry.link_name().ok().flatten().map(|l| l.into_owned()).unwrap_or_default();
            if target.is_absolute() || target.components().any(|c| matches!(c, Component::ParentDir)) {
                return Err(bad(format!("link `{}` points outside the crate", path.display())));
            }
        }
        let rest: Vec<_> = parts.collect();
        if manifest.is_none() && rest.len() == 1 && rest[0].as_os_str() == "Cargo.toml" && kind.is_file() {
            let mut text = String::new();
            LimitedReader::new(&mut entry, MANIFEST_LIMIT, "Cargo.toml")
                .read_to_string(&mut text)
                .map_err(|e| bad(format!("Cargo.toml: {e}")))?;
            manifest = Some(CrateManifest::from_toml(&text)?);
            readme_setting = crate::manifest::readme_setting(&text);
            if check == Check::ManifestOnly {
                break;
            }
            continue;
        }
        let inner: Vec<String> = rest.iter().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
        let inner = inner.join("/");
        let wanted = match &readme_setting {
            Some(Some(path)) => manifest.is_some() && normalise(path) == inner,
            _ => readme_rank(rest.last().map(|c| c.as_os_str().to_string_lossy()).as_deref().unwrap_or("")).is_some(),
        };
        if kind.is_file() && wanted && readmes.len() < 8 {
            let mut bytes = Vec::new();
            (&mut entry).take(MAX_README_BYTES).read_to_end(&mut bytes).map_err(|e| bad(e.to_string()))?;
            readmes.push((inner, bytes));
        }
    }
    let manifest = manifest.ok_or_else(|| bad("it has no Cargo.toml in its top folder".into()))?;
    let expected = format!("{}-{}", manifest.name, manifest.vers);
    if top.as_deref() != Some(expected.as_str()) {
        return Err(bad(format!(
            "its folder is `{}`, but its Cargo.toml makes it `{expected}`",
            top.unwrap_or_default()
        )));
    }
    let chosen = match readme_setting {
        Some(None) => None,
        Some(Some(path)) => readmes.into_iter().find(|(p, _)| *p == normalise(&path)),
        None => ["README.md", "README.txt", "README"]
            .iter()
            .find_map(|name| readmes.iter().position(|(p, _)| p == name))
            .map(|i| readmes.swap_remove(i)),
    };
    Ok((manifest, chosen.and_then(|(_, bytes)| readme_text(&bytes))))
}

/// A manifest path (`./docs/README.md`, `docs\README.md`) as the archive names it.
fn normalise(path: &str) -> String {
    path.replace('\\', "/").trim_start_matches("./").to_string()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::manifest::tests::APP_TOML;
    use flate2::write::GzEncoder;
    use flate2::Compression;

    /// A `.crate` with these (path, contents) entries.
    pub fn crate_file(entries: &[(&str, &str)]) -> Vec<u8> {
        let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
        for (path, body) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(body.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, path, body.as_bytes()).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap()
    }

    pub fn app_crate() -> Vec<u8> {
        crate_file(&[
            ("sluice-app-0.2.0/Cargo.toml", APP_TOML),
            ("sluice-app-0.2.0/Cargo.toml.orig", "[package]\nname = \"sluice-app\"\n"),
            ("sluice-app-0.2.0/src/lib.rs", "pub fn f() {}\n"),
        ])
    }

    #[test]
    fn reads_the_manifest_and_checks_the_folder() {
        let m = read_crate(app_crate(), Check::Full).unwrap();
        assert_eq!(m.file_name(), "sluice-app-0.2.0.crate");

        let err = |entries: &[(&str, &str)]| read_crate(crate_file(entries), Check::Full).unwrap_err().message;
        assert!(err(&[("other-1.0.0/Cargo.toml", APP_TOML)]).contains("its folder is `other-1.0.0`"));
        assert!(err(&[("sluice-app-0.2.0/Cargo.toml", APP_TOML), ("elsewhere/x", "")]).contains("two top folders"));
        assert!(err(&[("sluice-app-0.2.0/src/lib.rs", "")]).contains("no Cargo.toml"));
        assert!(read_crate(b"not gzip".to_vec(), Check::Full).unwrap_err().message.starts_with("not a valid .crate"));
    }

    #[test]
    fn a_slice_reads_only_its_range() {
        let mut body = b"head".to_vec();
        let krate = app_crate();
        body.extend_from_slice(&krate);
        body.extend_from_slice(b"tail");
        let slice = Slice { inner: &body, offset: 4, len: krate.len() as u64 };
        assert_eq!(slice.read_at(0, u32::MAX), krate);
        assert_eq!(read_crate(slice, Check::ManifestOnly).unwrap().name, "sluice-app");
    }

    /// As `cargo package` lays a crate out: Cargo.toml.orig and Cargo.toml first, the README
    /// where `readme` says (copied in from the workspace root when it was `../README.md`).
    #[test]
    fn finds_the_readme_cargo_names() {
        let with = |readme: &str| APP_TOML.replace("[package]\n", &format!("[package]\n{readme}"));
        let readme = |toml: &str, files: &[(&str, &str)]| {
            let mut entries = vec![("sluice-app-0.2.0/Cargo.toml", toml)];
            entries.extend(files.iter().map(|(p, b)| (*p, *b)));
            entries.push(("sluice-app-0.2.0/src/lib.rs", "pub fn f() {}\n"));
            read_crate_within(crate_file(&entries), Check::Full, UNPACKED_LIMIT).unwrap().1
        };
        let files = [("sluice-app-0.2.0/README.md", "# App\n"), ("sluice-app-0.2.0/docs/guide.md", "# Guide\n")];
        assert_eq!(readme(APP_TOML, &files).as_deref(), Some("# App\n"), "cargo's default README.md");
        assert_eq!(readme(&with("readme = \"docs/guide.md\"\n"), &files).as_deref(), Some("# Guide\n"));
        assert_eq!(readme(&with("readme = false\n"), &files), None);
        assert_eq!(readme(APP_TOML, &[("sluice-app-0.2.0/README", "plain")]).as_deref(), Some("plain"));
        assert_eq!(readme(APP_TOML, &[("sluice-app-0.2.0/docs/README.md", "# nested")]), None);
        // A README before Cargo.toml in the archive is found too.
        let krate = crate_file(&[("sluice-app-0.2.0/README.md", "# first"), ("sluice-app-0.2.0/Cargo.toml", APP_TOML)]);
        assert_eq!(read_crate_within(krate, Check::Full, UNPACKED_LIMIT).unwrap().1.as_deref(), Some("# first"));

        let big = "x".repeat(4096);
        let krate = crate_file(&[("sluice-app-0.2.0/Cargo.toml", APP_TOML), ("sluice-app-0.2.0/big.rs", &big)]);
        let err = read_crate_within(krate, Check::Full, 1024).unwrap_err();
        assert_eq!(err.kind, sluice_plugin_sdk::ErrorKind::TooLarge, "{}", err.message);
    }
}
