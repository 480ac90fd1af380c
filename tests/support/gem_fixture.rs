//! RubyGems fixtures beyond what `gem build` makes: a built gem with its `metadata.gz` edited
//! (and `checksums.yaml.gz` recomputed, so only the edit is wrong), the shape of a gem someone
//! crafted by hand to attack clients that load its YAML unsafely.

use sha2::{Digest, Sha256, Sha512};
use std::io::{Read, Write};
use std::path::Path;

/// The tar entries of a `.gem`, in order.
pub fn entries(gem: &Path) -> Vec<(String, Vec<u8>)> {
    let mut archive = tar::Archive::new(std::fs::File::open(gem).unwrap());
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

pub fn tar_of(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o444);
        builder.append_data(&mut header, path, &bytes[..]).unwrap();
    }
    builder.into_inner().unwrap()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

pub fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

/// The gem at `gem` with its gemspec YAML passed through `edit`, and checksums that match.
pub fn with_edited_metadata(gem: &Path, edit: impl Fn(&str) -> String) -> Vec<u8> {
    let mut entries = entries(gem);
    for (path, bytes) in entries.iter_mut() {
        if path == "metadata.gz" {
            let yaml = String::from_utf8(gunzip(bytes)).unwrap();
            let edited = edit(&yaml);
            assert_ne!(edited, yaml, "the edit must change the gemspec");
            *bytes = gzip(edited.as_bytes());
        }
    }
    let sums = |hash: &dyn Fn(&[u8]) -> String| {
        entries
            .iter()
            .filter(|(p, _)| p == "metadata.gz" || p == "data.tar.gz")
            .map(|(p, b)| format!("  {p}: {}\n", hash(b)))
            .collect::<String>()
    };
    let checksums = format!(
        "---\nSHA256:\n{}SHA512:\n{}",
        sums(&|b| hex::encode(Sha256::digest(b))),
        sums(&|b| hex::encode(Sha512::digest(b)))
    );
    for (path, bytes) in entries.iter_mut() {
        if path == "checksums.yaml.gz" {
            *bytes = gzip(checksums.as_bytes());
        }
    }
    tar_of(&entries)
}
