//! Reading a `.gem`: a plain tar of `metadata.gz` (the YAML gemspec), `data.tar.gz` (the files)
//! and `checksums.yaml.gz` (SHA256/SHA512 of the other two).

use crate::spec::Gemspec;
use flate2::read::GzDecoder;
use serde_yaml::Value;
use sha2::{Digest, Sha256, Sha512};
use sluice_plugin_sdk::io::{BlobReader, LimitedReader, ReadAt};
use sluice_plugin_sdk::{readme_rank, readme_text, Error, MAX_README_BYTES};
use std::collections::BTreeMap;
use std::io::{self, Read};

/// Largest `metadata.gz`, compressed and unpacked (a gemspec lists every file of the gem).
const METADATA_LIMIT: u64 = 8 << 20;
/// Largest `checksums.yaml.gz`, compressed and unpacked.
const CHECKSUMS_LIMIT: u64 = 64 << 10;
/// Largest unpacked `data.tar.gz`: a decompression bomb stops here.
const DATA_LIMIT: u64 = 1 << 30;

const METADATA: &str = "metadata.gz";
const DATA: &str = "data.tar.gz";
const CHECKSUMS: &str = "checksums.yaml.gz";

/// How much of the gem to check.
#[derive(Clone, Copy, PartialEq)]
pub enum Check {
    /// Only find and read the gemspec (to name an upload before the host stores it).
    SpecOnly,
    /// Everything: checksums, and every entry of `data.tar.gz` is a plain file or folder inside it.
    Full,
}

/// The SHA256 and SHA512 of one tar entry, hex.
struct Digests {
    sha256: String,
    sha512: String,
}

/// What a full read of a gem finds besides its specification.
pub struct GemContents {
    pub spec: Gemspec,
    /// The README at the top of `data.tar.gz`, as the package page shows it.
    pub readme: Option<String>,
}

/// Reads a gem's specification, checking the whole file when asked.
pub fn read_gem(source: impl ReadAt, check: Check) -> Result<Gemspec, Error> {
    read_gem_within(source, check, DATA_LIMIT).map(|c| c.spec)
}

/// [`read_gem`], with `data.tar.gz` unpacked to at most `max_unpacked` bytes (the operator's
/// limit, never more than [`DATA_LIMIT`]), and the gem's README.
pub fn read_gem_within(source: impl ReadAt, check: Check, max_unpacked: u64) -> Result<GemContents, Error> {
    let mut readmes: Vec<(String, Vec<u8>)> = Vec::new();
    let mut archive = tar::Archive::new(BlobReader::new(source));
    let mut metadata: Option<Vec<u8>> = None;
    let mut checksums: Option<Vec<u8>> = None;
    let mut digests: BTreeMap<&'static str, Digests> = BTreeMap::new();

    let entries = archive.entries().map_err(not_a_gem)?;
    for entry in entries {
        let mut entry = entry.map_err(not_a_gem)?;
        let path = safe_path(&entry, "the gem")?;
        let name = match path.as_str() {
            METADATA => METADATA,
            DATA => DATA,
            CHECKSUMS => CHECKSUMS,
            // Signatures (`*.sig`) and other extras are not needed here.
            _ => continue,
        };
        if digests.contains_key(name) {
            return Err(Error::invalid(format!("the gem holds {name} twice")));
        }
        if check == Check::SpecOnly && name != METADATA {
            continue;
        }
        let mut hashing = HashingReader::new(&mut entry);
        match name {
            METADATA => metadata = Some(read_limited(&mut hashing, METADATA_LIMIT, "metadata.gz")?),
            CHECKSUMS => checksums = Some(read_limited(&mut hashing, CHECKSUMS_LIMIT, "checksums.yaml.gz")?),
            _ => check_data(&mut hashing, max_unpacked.min(DATA_LIMIT), &mut readmes)?,
        }
        digests.insert(name, hashing.finish().map_err(not_a_gem)?);
        if check == Check::SpecOnly {
            break;
        }
    }

    let metadata = metadata.ok_or_else(|| Error::invalid("not a valid gem: it has no metadata.gz"))?;
    if check == Check::Full {
        if !digests.contains_key(DATA) {
            return Err(Error::invalid("not a valid gem: it has no data.tar.gz"));
        }
        if let Some(checksums) = checksums {
            verify_checksums(&gunzip(&checksums, CHECKSUMS_LIMIT, CHECKSUMS)?, &digests)?;
        }
    }
    let yaml = gunzip(&metadata, METADATA_LIMIT, METADATA)?;
    let spec = Gemspec::from_yaml(&yaml)?;
    let readme = pick_readme(readmes, &crate::spec::listed_files(&yaml)).and_then(|bytes| readme_text(&bytes));
    Ok(GemContents { spec, readme })
}

/// Whether a path in `data.tar.gz` is a README at the gem's top (`README.md`, `README`,
/// `readme.rdoc`...).
fn is_readme(path: &str) -> bool {
    !path.contains('/') && readme_rank(path).is_some()
}

/// The README a gem page shows: among the top-level README files that the gemspec's `files`
/// lists (all of them when it lists none), Markdown first, then plain text, then any other.
fn pick_readme(candidates: Vec<(String, Vec<u8>)>, listed: &[String]) -> Option<Vec<u8>> {
    candidates
        .into_iter()
        .filter(|(name, _)| listed.is_empty() || listed.iter().any(|l| l.trim_start_matches("./") == name))
        .min_by_key(|(name, _)| (readme_rank(name), name.clone()))
        .map(|(_, bytes)| bytes)
}

fn not_a_gem(e: io::Error) -> Error {
    Error::invalid(format!("not a valid gem (a .gem is a tar archive): {e}"))
}

/// The entry's path, refusing links, devices, absolute paths and `..`: runners unpack these
/// archives with `tar`, so nothing may land outside the destination.
fn safe_path<R: Read>(entry: &tar::Entry<'_, R>, archive: &str) -> Result<String, Error> {
    let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
    let kind = entry.header().entry_type();
    // A pax global header (as `git archive` writes) only carries metadata that tar applies to
    // the entries after it.
    if !(kind.is_file() || kind.is_dir() || kind.is_pax_global_extensions()) {
        return Err(Error::invalid(format!(
            "{archive} contains {path:?}, which is not a plain file or folder (links are refused)"
        )));
    }
    if path.starts_with('/') || path.split(['/', '\\']).any(|part| part == "..") {
        return Err(Error::invalid(format!("{archive} contains {path:?}, a path outside its folder")));
    }
    Ok(path.trim_start_matches("./").to_string())
}

/// Walks `data.tar.gz`: a valid gzip of a tar whose entries are all plain files and folders,
/// unpacking to at most `limit` bytes; keeps its top-level README files (a few, each cut to
/// [`MAX_README_BYTES`]).
fn check_data(raw: &mut impl Read, limit: u64, readmes: &mut Vec<(String, Vec<u8>)>) -> Result<(), Error> {
    let unpacked = LimitedReader::new(GzDecoder::new(&mut *raw), limit, "data.tar.gz unpacked");
    let mut files = tar::Archive::new(unpacked);
    let bad = |e: io::Error| {
        if e.to_string().contains("over its size limit") {
            Error::too_large(format!("data.tar.gz unpacks to more than this registry's limit of {} MiB", limit >> 20))
        } else {
            Error::invalid(format!("data.tar.gz is not a valid gzip-compressed tar: {e}"))
        }
    };
    for entry in files.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let path = safe_path(&entry, "data.tar.gz")?;
        if entry.header().entry_type().is_file() && is_readme(&path) && readmes.len() < 8 {
            let mut bytes = Vec::new();
            (&mut entry).take(MAX_README_BYTES).read_to_end(&mut bytes).map_err(bad)?;
            readmes.push((path, bytes));
        }
    }
    drop(files);
    // Hash the rest of the entry (the gzip trailer, tar padding) that the walk did not need.
    io::copy(raw, &mut io::sink())?;
    Ok(())
}

/// Reads at most `limit` bytes; more is a `too-large` error naming `what`.
fn read_limited(reader: impl Read, limit: u64, what: &str) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    reader.take(limit + 1).read_to_end(&mut out).map_err(|e| Error::invalid(format!("{what} is unreadable: {e}")))?;
    if out.len() as u64 > limit {
        return Err(Error::too_large(format!("{what} is larger than {limit} bytes")));
    }
    Ok(out)
}

fn gunzip(bytes: &[u8], limit: u64, what: &str) -> Result<Vec<u8>, Error> {
    read_limited(GzDecoder::new(bytes), limit, &format!("{what} unpacked")).map_err(|e| match e.kind {
        sluice_plugin_sdk::ErrorKind::Invalid => Error::invalid(format!("{what} is not valid gzip")),
        _ => e,
    })
}

/// Checks the SHA256 and SHA512 sums in `checksums.yaml` (other algorithms, such as the SHA1 of
/// old gems, are not checked).
fn verify_checksums(yaml: &[u8], digests: &BTreeMap<&'static str, Digests>) -> Result<(), Error> {
    let doc: Value = serde_yaml::from_slice(yaml)
        .map_err(|e| Error::invalid(format!("checksums.yaml.gz is not valid YAML: {e}")))?;
    for algorithm in ["SHA256", "SHA512"] {
        let Some(sums) = doc.get(algorithm).and_then(Value::as_mapping) else { continue };
        for (file, sum) in sums {
            let (Some(file), Some(sum)) = (file.as_str(), sum.as_str()) else {
                return Err(Error::invalid(format!("checksums.yaml.gz has a malformed {algorithm} entry")));
            };
            let Some(actual) = digests.get(file) else {
                return Err(Error::invalid(format!("checksums.yaml.gz lists {file}, which the gem does not contain")));
            };
            let actual = if algorithm == "SHA256" { &actual.sha256 } else { &actual.sha512 };
            if !actual.eq_ignore_ascii_case(sum.trim()) {
                return Err(Error::invalid(format!("{algorithm} checksum mismatch for {file}: the gem is corrupt")));
            }
        }
    }
    Ok(())
}

/// Passes bytes through while hashing them.
struct HashingReader<R> {
    inner: R,
    sha256: Sha256,
    sha512: Sha512,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R) -> Self {
        HashingReader { inner, sha256: Sha256::new(), sha512: Sha512::new() }
    }

    /// Hashes whatever was not read yet, then returns the digests of everything.
    fn finish(mut self) -> io::Result<Digests> {
        io::copy(&mut self, &mut io::sink())?;
        Ok(Digests { sha256: hex::encode(self.sha256.finalize()), sha512: hex::encode(self.sha512.finalize()) })
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha256.update(&buf[..n]);
        self.sha512.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::Write;

    pub const HELLO_GEM: &[u8] = include_bytes!("../tests/fixtures/sluice-hello-1.2.0.gem");

    /// The entries of the fixture gem, to rebuild altered copies.
    fn fixture_entries() -> Vec<(String, Vec<u8>)> {
        let mut archive = tar::Archive::new(HELLO_GEM);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let mut bytes = Vec::new();
                e.read_to_end(&mut bytes).unwrap();
                (e.path().unwrap().to_string_lossy().into_owned(), bytes)
            })
            .collect()
    }

    fn tar_of(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, bytes) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o444);
            header.set_entry_type(tar::EntryType::Regular);
            builder.append_data(&mut header, path, &bytes[..]).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(bytes).unwrap();
        gz.finish().unwrap()
    }

    fn replaced(name: &str, bytes: Vec<u8>) -> Vec<u8> {
        let entries: Vec<_> =
            fixture_entries().into_iter().map(|(p, b)| if p == name { (p, bytes.clone()) } else { (p, b) }).collect();
        tar_of(&entries)
    }

    /// The fixture with one entry replaced and no checksums, so that the checks after the
    /// checksum check are reached.
    fn replaced_unchecked(name: &str, bytes: Vec<u8>) -> Vec<u8> {
        let entries: Vec<_> = fixture_entries()
            .into_iter()
            .filter(|(p, _)| p != "checksums.yaml.gz")
            .map(|(p, b)| if p == name { (p, bytes.clone()) } else { (p, b) })
            .collect();
        tar_of(&entries)
    }

    fn error_of(gem: Vec<u8>) -> String {
        let err = read_gem(gem, Check::Full).unwrap_err();
        assert_eq!(err.kind, sluice_plugin_sdk::ErrorKind::Invalid, "{}", err.message);
        err.message
    }

    #[test]
    fn reads_and_verifies_a_real_gem() {
        let spec = read_gem(HELLO_GEM, Check::Full).unwrap();
        assert_eq!(spec.full_name(), "sluice-hello-1.2.0");
        assert_eq!(read_gem(HELLO_GEM, Check::SpecOnly).unwrap(), spec);
        // Rebuilt from the same entries, the gem is still valid.
        read_gem(tar_of(&fixture_entries()), Check::Full).unwrap();
    }

    #[test]
    fn refuses_corrupt_gems() {
        assert!(error_of(b"this is not a gem at all, just some text that is long enough".repeat(20))
            .contains("not a valid gem"));
        assert!(error_of(Vec::new()).contains("no metadata.gz"));
        assert!(
            error_of(replaced_unchecked("metadata.gz", b"not gzip".to_vec())).contains("metadata.gz is not valid gzip")
        );
        assert!(error_of(replaced_unchecked("metadata.gz", gzip(b"--- [1, 2"))).contains("YAML"));

        let without_metadata: Vec<_> = fixture_entries().into_iter().filter(|(p, _)| p != "metadata.gz").collect();
        assert!(error_of(tar_of(&without_metadata)).contains("no metadata.gz"));
        let without_data: Vec<_> = fixture_entries().into_iter().filter(|(p, _)| p != "data.tar.gz").collect();
        assert!(error_of(tar_of(&without_data)).contains("no data.tar.gz"));

        // A valid gzip whose bytes differ from the recorded checksums.
        let yaml = include_bytes!("../tests/fixtures/sluice-hello-1.2.0.yaml");
        let msg = error_of(replaced("metadata.gz", gzip(yaml)));
        assert!(msg.contains("checksum mismatch for metadata.gz"), "{msg}");
        let msg = error_of(replaced("data.tar.gz", gzip(&tar_of(&[("lib/x.rb".into(), b"1".to_vec())]))));
        assert!(msg.contains("checksum mismatch for data.tar.gz"), "{msg}");

        let mut duplicated = fixture_entries();
        duplicated.push(duplicated[0].clone());
        assert!(error_of(tar_of(&duplicated)).contains("twice"));
    }

    #[test]
    fn refuses_links_and_escaping_paths() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        builder.append_link(&mut header, "lib/evil", "/etc/passwd").unwrap();
        let msg = error_of(replaced_unchecked("data.tar.gz", gzip(&builder.into_inner().unwrap())));
        assert!(msg.contains("links are refused"), "{msg}");

        // tar::Builder refuses `..` itself, so write the name into the header directly.
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..12].copy_from_slice(b"../escape.rb");
        header.set_size(1);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        let mut raw = header.as_bytes().to_vec();
        raw.push(b'x');
        raw.resize(512 * 4, 0);
        let msg = error_of(replaced_unchecked("data.tar.gz", gzip(&raw)));
        assert!(msg.contains("outside its folder"), "{msg}");

        let msg = error_of(replaced_unchecked("data.tar.gz", b"not gzip".to_vec()));
        assert!(msg.contains("data.tar.gz is not a valid gzip"), "{msg}");
    }

    #[test]
    fn accepts_pax_global_headers() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut global = tar::Header::new_ustar();
        global.set_entry_type(tar::EntryType::XGlobalHeader);
        let comment = b"52 comment=0123456789012345678901234567890123456789\n";
        global.set_size(comment.len() as u64);
        builder.append_data(&mut global, "pax_global_header", &comment[..]).unwrap();
        let mut file = tar::Header::new_ustar();
        file.set_size(2);
        builder.append_data(&mut file, "lib/a.rb", &b"1\n"[..]).unwrap();
        let gem = replaced_unchecked("data.tar.gz", gzip(&builder.into_inner().unwrap()));
        assert_eq!(read_gem(gem, Check::Full).unwrap().name, "sluice-hello");
    }

    #[test]
    fn stops_decompression_bombs() {
        let huge = vec![0u8; (METADATA_LIMIT + 1) as usize];
        let err = read_gem(replaced("metadata.gz", gzip(&huge)), Check::SpecOnly).unwrap_err();
        assert_eq!(err.kind, sluice_plugin_sdk::ErrorKind::TooLarge);
        assert!(err.message.contains("metadata.gz unpacked is larger than"), "{}", err.message);
    }

    /// A gem as `bundle gem` lays it out: README.md and friends at the top of data.tar.gz, named
    /// in the gemspec's `files`, next to lib/ and a docs/ folder of its own.
    fn gem_with(files: &[&str], data: &[(&str, &[u8])]) -> Vec<u8> {
        let yaml = String::from_utf8(include_bytes!("../tests/fixtures/sluice-hello-1.2.0.yaml").to_vec()).unwrap();
        let listed: String = files.iter().map(|f| format!("- {f}\n")).collect();
        let yaml = yaml.replace("files:\n- lib/hello.rb\n", &format!("files:\n{listed}"));
        let data: Vec<(String, Vec<u8>)> = data.iter().map(|(p, b)| (p.to_string(), b.to_vec())).collect();
        let entries: Vec<_> = fixture_entries()
            .into_iter()
            .filter(|(p, _)| p != "checksums.yaml.gz")
            .map(|(p, b)| match p.as_str() {
                "metadata.gz" => (p, gzip(yaml.as_bytes())),
                "data.tar.gz" => (p, gzip(&tar_of(&data))),
                _ => (p, b),
            })
            .collect();
        tar_of(&entries)
    }

    #[test]
    fn finds_the_readme_the_gemspec_packs() {
        let data: &[(&str, &[u8])] = &[
            ("README.rdoc", b"= Hello"),
            ("README.md", b"# Hello\n\nSay hi.\n"),
            ("docs/README.md", b"# Docs"),
            ("CHANGELOG.md", b"# 1.2.0"),
            ("lib/hello.rb", b"puts 1"),
        ];
        let readme = |files: &[&str], data: &[(&str, &[u8])]| {
            read_gem_within(gem_with(files, data), Check::Full, DATA_LIMIT).unwrap().readme
        };
        let all = ["README.md", "README.rdoc", "CHANGELOG.md", "docs/README.md", "lib/hello.rb"];
        assert_eq!(readme(&all, data).as_deref(), Some("# Hello\n\nSay hi.\n"), "Markdown first");
        assert_eq!(readme(&["README.rdoc", "lib/hello.rb"], data).as_deref(), Some("= Hello"), "only what is packed");
        assert_eq!(readme(&["lib/hello.rb"], &[("lib/hello.rb", b"puts 1"), ("docs/README.md", b"x")]), None);
        assert_eq!(readme(&[], &[("readme", b"plain")]).as_deref(), Some("plain"), "no files list: any README");
        // The spec alone never needs data.tar.gz.
        assert!(read_gem_within(HELLO_GEM, Check::Full, DATA_LIMIT).unwrap().readme.is_none());
    }

    #[test]
    fn data_unpacks_within_the_operators_limit() {
        let big = vec![b'x'; 64 << 10];
        let gem = gem_with(&["lib/big.rb"], &[("lib/big.rb", &big)]);
        assert!(read_gem_within(gem.clone(), Check::Full, 1 << 20).is_ok());
        let err = read_gem_within(gem, Check::Full, 32 << 10).err().unwrap();
        assert_eq!(err.kind, sluice_plugin_sdk::ErrorKind::TooLarge, "{}", err.message);
    }
}
