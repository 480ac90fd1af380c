//! The content-addressed blob store: package files live at `blobs/ab/cd/<sha256>`.
//!
//! A file is first written to a temp file in `blobs/tmp/` while its digests are computed, so that
//! a plugin can parse it and the database can be checked before anything becomes visible. Only
//! then is it fsynced and renamed into place ([`PendingBlob::persist`]), before the database
//! transaction that references it commits. A client that disconnects mid-upload leaves only a
//! temp file, removed when its handle drops.
//!
//! A crash can still leave temp files, and a blob renamed into place whose transaction never
//! committed. [`BlobStore::stale_temp_files`] and [`BlobStore::blobs_older_than`] find them for
//! the clean-up pass (`Registry::clean_blob_store`), which leaves anything younger than a grace
//! period alone so that a publish in flight is never touched.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
    #[error("upload is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> BlobError {
    move |source| BlobError::Io { context: context.into(), source }
}

/// Hex digests of a stored file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    pub sha256: String,
    pub sha512: String,
    pub sha1: String,
    pub size: u64,
}

#[derive(Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, BlobError> {
        let root = root.into();
        std::fs::create_dir_all(root.join("tmp")).map_err(io_err(format!("create {}", root.display())))?;
        Ok(BlobStore { root })
    }

    /// Where the blob with this sha256 lives (whether or not it exists).
    pub fn path(&self, sha256: &str) -> PathBuf {
        self.root.join(&sha256[0..2]).join(&sha256[2..4]).join(sha256)
    }

    pub fn contains(&self, sha256: &str) -> bool {
        sha256.len() == 64 && self.path(sha256).is_file()
    }

    /// A writer for a new blob, hashing as it goes, that refuses more than `limit` bytes.
    pub fn writer(&self, limit: u64) -> Result<BlobWriter, BlobError> {
        let file = tempfile::NamedTempFile::new_in(self.root.join("tmp")).map_err(io_err("create temp blob"))?;
        Ok(BlobWriter {
            store: self.clone(),
            file,
            sha256: Sha256::new(),
            sha512: Sha512::new(),
            sha1: Sha1::new(),
            size: 0,
            limit,
        })
    }

    /// Whether the blob folder is there and writable (for `/ready`).
    pub fn ping(&self) -> Result<(), BlobError> {
        tempfile::tempfile_in(self.root.join("tmp")).map(|_| ()).map_err(io_err("write to the blob folder"))
    }

    /// Temp files not written to for `grace`: what a crash (or a lost upload) left behind.
    pub fn stale_temp_files(&self, grace: std::time::Duration) -> Vec<PathBuf> {
        let Ok(rd) = std::fs::read_dir(self.root.join("tmp")) else { return Vec::new() };
        rd.flatten().map(|e| e.path()).filter(|p| older_than(p, grace)).collect()
    }

    /// The sha256 of every stored blob not modified for `grace`.
    pub fn blobs_older_than(&self, grace: std::time::Duration) -> Vec<String> {
        let is_hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
        let mut out = Vec::new();
        let dirs = |p: &Path| {
            std::fs::read_dir(p).map(|rd| rd.flatten().map(|e| e.path()).collect::<Vec<_>>()).unwrap_or_default()
        };
        for first in dirs(&self.root)
            .into_iter()
            .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| is_hex(n, 2)))
        {
            for second in dirs(&first) {
                for blob in dirs(&second) {
                    let Some(name) = blob.file_name().and_then(|n| n.to_str()) else { continue };
                    if is_hex(name, 64) && older_than(&blob, grace) {
                        out.push(name.to_string());
                    }
                }
            }
        }
        out
    }

    /// Removes a blob no row references any more. Missing blobs are fine.
    pub fn remove(&self, sha256: &str) -> Result<(), BlobError> {
        match std::fs::remove_file(self.path(sha256)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(format!("remove blob {sha256}"))(e)),
            _ => Ok(()),
        }
    }
}

fn older_than(path: &Path, age: std::time::Duration) -> bool {
    std::fs::metadata(path).and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().is_ok_and(|e| e >= age))
}

pub struct BlobWriter {
    store: BlobStore,
    file: tempfile::NamedTempFile,
    sha256: Sha256,
    sha512: Sha512,
    sha1: Sha1,
    size: u64,
    limit: u64,
}

impl BlobWriter {
    pub fn write_chunk(&mut self, chunk: &[u8]) -> Result<(), BlobError> {
        self.size += chunk.len() as u64;
        if self.size > self.limit {
            return Err(BlobError::TooLarge { limit: self.limit });
        }
        self.sha256.update(chunk);
        self.sha512.update(chunk);
        self.sha1.update(chunk);
        self.file.write_all(chunk).map_err(io_err("write temp blob"))
    }

    /// The complete temp file with its digests; not yet visible in the store.
    pub fn finish(mut self) -> Result<PendingBlob, BlobError> {
        self.file.flush().map_err(io_err("flush temp blob"))?;
        Ok(PendingBlob {
            store: self.store,
            file: self.file,
            digests: Digests {
                sha256: hex::encode(self.sha256.finalize()),
                sha512: hex::encode(self.sha512.finalize()),
                sha1: hex::encode(self.sha1.finalize()),
                size: self.size,
            },
        })
    }
}

/// A fully written, hashed file that is not in the store yet.
pub struct PendingBlob {
    store: BlobStore,
    file: tempfile::NamedTempFile,
    pub digests: Digests,
}

impl PendingBlob {
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// A second handle on the file, for reading while it is pending.
    pub fn reopen(&self) -> Result<File, BlobError> {
        self.file.reopen().map_err(io_err("reopen temp blob"))
    }

    /// Makes the blob durable at its content address. Idempotent: a blob with the same content
    /// that already exists is kept and the temp file dropped.
    pub fn persist(self) -> Result<PathBuf, BlobError> {
        let dest = self.store.path(&self.digests.sha256);
        if dest.is_file() {
            return Ok(dest);
        }
        let dir = dest.parent().expect("blob paths have a parent");
        std::fs::create_dir_all(dir).map_err(io_err(format!("create {}", dir.display())))?;
        self.file.as_file().sync_all().map_err(io_err("fsync temp blob"))?;
        self.file.persist(&dest).map_err(|e| io_err(format!("rename blob into {}", dest.display()))(e.error))?;
        // The rename is durable only once the directory entry is.
        File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(format!("fsync {}", dir.display())))?;
        Ok(dest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_blobs_are_invisible_until_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path().join("blobs")).unwrap();
        let mut w = store.writer(1024).unwrap();
        w.write_chunk(b"hello ").unwrap();
        w.write_chunk(b"world").unwrap();
        let pending = w.finish().unwrap();
        assert_eq!(pending.digests.sha256, "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9");
        assert_eq!(pending.digests.size, 11);
        assert!(!store.contains(&pending.digests.sha256));
        let sha = pending.digests.sha256.clone();
        let path = pending.persist().unwrap();
        assert_eq!(std::fs::read(path).unwrap(), b"hello world");
        assert!(store.contains(&sha));
        assert_eq!(std::fs::read_dir(dir.path().join("blobs/tmp")).unwrap().count(), 0);
    }

    #[test]
    fn oversized_and_abandoned_writes_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path().join("blobs")).unwrap();
        let mut w = store.writer(4).unwrap();
        assert!(matches!(w.write_chunk(b"12345"), Err(BlobError::TooLarge { limit: 4 })));
        drop(w);
        assert_eq!(std::fs::read_dir(dir.path().join("blobs/tmp")).unwrap().count(), 0);
    }
}
