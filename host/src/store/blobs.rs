//! The content-addressed blob store: package files, kept in a local folder (`blobs/ab/cd/<sha256>`
//! under the data folder, the default) or in S3-compatible object storage (`blobs =
//! "s3://bucket/prefix"`: objects `prefix/ab/cd/<sha256>`, through the `object_store` crate).
//!
//! A file is first written to a local temp file in `blobs/tmp/` while its digests are computed, on
//! both backends: a plugin parses a local file, and the database can be checked before anything
//! becomes visible. Only then is it made durable at its address ([`PendingBlob::persist`]: an
//! fsync and a rename, or an upload, in parts for large files), before the database transaction
//! that references it commits. A client that disconnects mid-upload leaves only a temp file,
//! removed when its handle drops.
//!
//! A crash can still leave temp files, and a blob stored whose transaction never committed.
//! [`BlobStore::stale_temp_files`] and [`BlobStore::blobs_older_than`] find them for the clean-up
//! pass (`Registry::clean_blob_store`), which leaves anything younger than a grace period alone so
//! that a publish in flight is never touched.
//!
//! The store is called from blocking threads (inside SQLite transactions), while `object_store` is
//! async: the S3 backend runs its futures on the server's runtime with `Handle::block_on`, which
//! is allowed on `spawn_blocking` threads and keeps the store's interface, and the transactions
//! that call `persist` and `remove`, synchronous. Downloads are async ([`BlobStore::read`]) and
//! stream.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::signer::Signer;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
    #[error("{context}: {source}")]
    Object { context: String, source: object_store::Error },
    #[error("upload is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("blob settings: {0}")]
    Config(String),
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> BlobError {
    move |source| BlobError::Io { context: context.into(), source }
}

fn obj_err(context: impl Into<String>) -> impl FnOnce(object_store::Error) -> BlobError {
    move |source| BlobError::Object { context: context.into(), source }
}

/// Files up to this size are uploaded in one request; larger ones in parts of this size (S3's
/// smallest part is 5 MiB), at most [`UPLOAD_CONCURRENCY`] at a time, so an upload holds about
/// three parts in memory whatever the file's size.
pub const PART_SIZE: usize = 8 << 20;
const UPLOAD_CONCURRENCY: usize = 2;
/// `/ready` waits this long for the bucket (the client would otherwise retry for minutes).
const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a presigned download URL stays valid (`blob_redirect`).
pub const PRESIGNED_FOR: Duration = Duration::from_secs(15 * 60);

/// Hex digests of a stored file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    pub sha256: String,
    pub sha512: String,
    pub sha1: String,
    pub size: u64,
}

/// Where finished blobs live.
#[derive(Clone)]
enum Backend {
    /// `ROOT/ab/cd/<sha256>`.
    Local,
    Object(Arc<Bucket>),
}

/// An S3 bucket (and key prefix), with the runtime its requests run on.
struct Bucket {
    store: AmazonS3,
    prefix: ObjectPath,
    handle: tokio::runtime::Handle,
    /// A runtime of the store's own, when it was opened outside one (a CLI command).
    _runtime: Option<tokio::runtime::Runtime>,
}

impl Bucket {
    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.handle.block_on(f)
    }

    fn key(&self, sha256: &str) -> ObjectPath {
        self.prefix.clone().join(&sha256[0..2]).join(&sha256[2..4]).join(sha256)
    }

    /// Uploads `file` under `key`: one PUT when it is small, a multipart upload read from the file
    /// part by part otherwise (aborted on failure, so no parts are left).
    async fn upload(&self, key: &ObjectPath, mut file: File, size: u64) -> Result<(), BlobError> {
        let ctx = || format!("upload {key}");
        if size <= PART_SIZE as u64 {
            let mut buf = Vec::with_capacity(size as usize);
            file.read_to_end(&mut buf).map_err(io_err(ctx()))?;
            self.store.put(key, buf.into()).await.map_err(obj_err(ctx()))?;
            return Ok(());
        }
        let upload = self.store.put_multipart(key).await.map_err(obj_err(ctx()))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(io_err(ctx())(e));
                }
            };
            if let Err(e) = writer.wait_for_capacity(UPLOAD_CONCURRENCY).await {
                let _ = writer.abort().await;
                return Err(obj_err(ctx())(e));
            }
            writer.write(&buf[..n]);
        }
        writer.finish().await.map_err(obj_err(ctx()))?;
        Ok(())
    }

    async fn exists(&self, key: &ObjectPath) -> Result<bool, BlobError> {
        match self.store.head(key).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(obj_err(format!("look up {key}"))(e)),
        }
    }
}

/// A blob's bytes, as a stream, with its size.
pub struct BlobRead {
    pub size: u64,
    pub stream: BoxStream<'static, io::Result<Bytes>>,
}

#[derive(Clone)]
pub struct BlobStore {
    /// The local folder: finished blobs for the local backend, and `tmp/` for uploads in progress.
    root: PathBuf,
    backend: Backend,
}

impl BlobStore {
    /// The local backend, in `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, BlobError> {
        let root = root.into();
        std::fs::create_dir_all(root.join("tmp")).map_err(io_err(format!("create {}", root.display())))?;
        Ok(BlobStore { root, backend: Backend::Local })
    }

    /// The store `blobs` names: `None` for the local folder `root`, or `s3://bucket[/prefix]`, with
    /// the endpoint, region and credentials from the standard `AWS_*` variables (`AWS_ENDPOINT_URL`
    /// or `AWS_ENDPOINT`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_ALLOW_HTTP=true` for a plain-http endpoint). Uploads are spooled in `root/tmp` either way.
    pub fn open_configured(root: impl Into<PathBuf>, blobs: Option<&str>) -> Result<Self, BlobError> {
        let mut store = Self::open(root)?;
        let Some(url) = blobs else { return Ok(store) };
        let (bucket, prefix) = parse_s3_url(url)?;
        // Retries give up after 30 s rather than the client's 3 minutes: an upload runs inside the
        // publish's write transaction, and a bucket that is down should fail the publish, not stall
        // every other write for minutes.
        let retry =
            object_store::RetryConfig { max_retries: 5, retry_timeout: Duration::from_secs(30), ..Default::default() };
        let s3 = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_retry(retry)
            .build()
            .map_err(|e| BlobError::Config(format!("`{url}`: {e}")))?;
        let (handle, runtime) = match tokio::runtime::Handle::try_current() {
            Ok(h) => (h, None),
            Err(_) => {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .map_err(io_err("start the object storage runtime"))?;
                (rt.handle().clone(), Some(rt))
            }
        };
        let prefix = ObjectPath::parse(prefix).map_err(|e| BlobError::Config(format!("`{url}`: {e}")))?;
        tracing::info!(bucket, prefix = %prefix, "package files are kept in object storage");
        store.backend = Backend::Object(Arc::new(Bucket { store: s3, prefix, handle, _runtime: runtime }));
        Ok(store)
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

    fn local_path(&self, sha256: &str) -> PathBuf {
        self.root.join(&sha256[0..2]).join(&sha256[2..4]).join(sha256)
    }

    /// Whether the store answers and takes writes (for `/ready`): the temp folder is writable, and
    /// the bucket can be listed with these credentials.
    pub fn ping(&self) -> Result<(), BlobError> {
        tempfile::tempfile_in(self.root.join("tmp")).map(|_| ()).map_err(io_err("write to the blob folder"))?;
        if let Backend::Object(b) = &self.backend {
            // A listing under a prefix no blob uses: one cheap request that fails for a missing
            // bucket or bad credentials, where a HEAD of a missing key could not tell.
            let probe = b.prefix.clone().join("ready-probe");
            b.block_on(async {
                match tokio::time::timeout(PING_TIMEOUT, b.store.list_with_delimiter(Some(&probe))).await {
                    Ok(r) => r.map(|_| ()).map_err(obj_err("list the bucket")),
                    Err(_) => Err(BlobError::Config(format!("the bucket did not answer within {PING_TIMEOUT:?}"))),
                }
            })?;
        }
        Ok(())
    }

    /// The blob's size, or `None` when there is no such blob.
    pub async fn size(&self, sha256: &str) -> Result<Option<u64>, BlobError> {
        if !is_sha256(sha256) {
            return Ok(None);
        }
        match &self.backend {
            Backend::Local => match tokio::fs::metadata(self.local_path(sha256)).await {
                Ok(m) => Ok(Some(m.len())),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(io_err(format!("stat blob {sha256}"))(e)),
            },
            Backend::Object(b) => match b.store.head(&b.key(sha256)).await {
                Ok(meta) => Ok(Some(meta.size)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(obj_err(format!("look up blob {sha256}"))(e)),
            },
        }
    }

    /// The blob's bytes as a stream, or `None` when there is no such blob.
    pub async fn read(&self, sha256: &str) -> Result<Option<BlobRead>, BlobError> {
        if !is_sha256(sha256) {
            return Ok(None);
        }
        match &self.backend {
            Backend::Local => {
                let file = match tokio::fs::File::open(self.local_path(sha256)).await {
                    Ok(f) => f,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(io_err(format!("open blob {sha256}"))(e)),
                };
                let size = file.metadata().await.map_err(io_err(format!("stat blob {sha256}")))?.len();
                Ok(Some(BlobRead { size, stream: tokio_util::io::ReaderStream::new(file).boxed() }))
            }
            Backend::Object(b) => match b.store.get(&b.key(sha256)).await {
                Ok(got) => {
                    let size = got.meta.size;
                    let stream = got.into_stream().map_err(io::Error::other).boxed();
                    Ok(Some(BlobRead { size, stream }))
                }
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(obj_err(format!("read blob {sha256}"))(e)),
            },
        }
    }

    /// A URL the blob can be fetched from directly for [`PRESIGNED_FOR`], when the backend can
    /// give one (object storage; `None` for the local folder).
    pub async fn presigned_url(&self, sha256: &str) -> Result<Option<String>, BlobError> {
        match &self.backend {
            Backend::Object(b) if is_sha256(sha256) => {
                let url = b
                    .store
                    .signed_url(axum::http::Method::GET, &b.key(sha256), PRESIGNED_FOR)
                    .await
                    .map_err(obj_err(format!("presign blob {sha256}")))?;
                Ok(Some(url.to_string()))
            }
            _ => Ok(None),
        }
    }

    /// Temp files not written to for `grace`: what a crash (or a lost upload) left behind.
    pub fn stale_temp_files(&self, grace: Duration) -> Vec<PathBuf> {
        let Ok(rd) = std::fs::read_dir(self.root.join("tmp")) else { return Vec::new() };
        rd.flatten().map(|e| e.path()).filter(|p| older_than(p, grace)).collect()
    }

    /// The sha256 of every stored blob not modified for `grace`.
    pub fn blobs_older_than(&self, grace: Duration) -> Vec<String> {
        match &self.backend {
            Backend::Local => self.local_blobs_older_than(grace),
            Backend::Object(b) => {
                let cutoff = chrono_cutoff(grace);
                b.block_on(async {
                    let mut out = Vec::new();
                    let mut list = b.store.list(Some(&b.prefix));
                    while let Some(item) = list.next().await {
                        match item {
                            Ok(meta) => {
                                let name = meta.location.filename().unwrap_or_default();
                                if is_sha256(name) && meta.last_modified.timestamp() <= cutoff {
                                    out.push(name.to_string());
                                }
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "could not list the bucket for clean-up");
                                break;
                            }
                        }
                    }
                    out
                })
            }
        }
    }

    fn local_blobs_older_than(&self, grace: Duration) -> Vec<String> {
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
        if !is_sha256(sha256) {
            return Ok(());
        }
        match &self.backend {
            Backend::Local => match std::fs::remove_file(self.local_path(sha256)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(format!("remove blob {sha256}"))(e)),
                _ => Ok(()),
            },
            // S3 deletes of a missing key succeed.
            Backend::Object(b) => {
                b.block_on(b.store.delete(&b.key(sha256))).map_err(obj_err(format!("remove blob {sha256}")))
            }
        }
    }
}

/// What [`BlobStore::copy_from`] did with one blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Copied {
    /// Copied, this many bytes, their sha256 checked against the address.
    Bytes(u64),
    /// This store already held it, with the same size (a migration run again goes on).
    AlreadyThere,
}

impl BlobStore {
    /// Copies the blob `sha256` of `size` bytes from `source` into this store (`sluice migrate`):
    /// streamed through a spooled file, hashed as it goes, refused when the bytes do not hash to
    /// their address, and made durable as a publish makes it ([`PendingBlob::persist`]).
    /// Synchronous, like `persist`: call it from a thread that is not running async tasks.
    pub fn copy_from(&self, source: &BlobStore, sha256: &str, size: u64) -> Result<Copied, BlobError> {
        if !is_sha256(sha256) {
            return Err(BlobError::Config(format!("`{sha256}` is not a sha256")));
        }
        if self.stored_size(sha256)? == Some(size) {
            return Ok(Copied::AlreadyThere);
        }
        let mut writer = self.writer(u64::MAX)?;
        let missing = || BlobError::Config(format!("blob {sha256} is missing from the source store"));
        match &source.backend {
            Backend::Local => {
                let mut file = match File::open(source.local_path(sha256)) {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(missing()),
                    other => other.map_err(io_err(format!("open blob {sha256}")))?,
                };
                let mut buf = vec![0; 1 << 20];
                loop {
                    let n = file.read(&mut buf).map_err(io_err(format!("read blob {sha256}")))?;
                    if n == 0 {
                        break;
                    }
                    writer.write_chunk(&buf[..n])?;
                }
            }
            Backend::Object(b) => {
                let got = match b.block_on(b.store.get(&b.key(sha256))) {
                    Err(object_store::Error::NotFound { .. }) => return Err(missing()),
                    other => other.map_err(obj_err(format!("read blob {sha256}")))?,
                };
                let mut stream = got.into_stream();
                while let Some(chunk) = b.block_on(stream.next()) {
                    writer.write_chunk(&chunk.map_err(obj_err(format!("read blob {sha256}")))?)?;
                }
            }
        }
        let pending = writer.finish()?;
        if pending.digests.sha256 != sha256 || pending.digests.size != size {
            return Err(BlobError::Config(format!(
                "blob {sha256} on the source holds {} bytes whose sha256 is {}: not copied",
                pending.digests.size, pending.digests.sha256
            )));
        }
        pending.persist()?;
        Ok(Copied::Bytes(size))
    }

    /// The size of a stored blob, or `None`; synchronous (see [`BlobStore::copy_from`]).
    pub fn stored_size(&self, sha256: &str) -> Result<Option<u64>, BlobError> {
        match &self.backend {
            Backend::Local => match std::fs::metadata(self.local_path(sha256)) {
                Ok(m) => Ok(Some(m.len())),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(io_err(format!("stat blob {sha256}"))(e)),
            },
            Backend::Object(b) => match b.block_on(b.store.head(&b.key(sha256))) {
                Ok(meta) => Ok(Some(meta.size)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(obj_err(format!("look up blob {sha256}"))(e)),
            },
        }
    }
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The Unix time (seconds) before which an object counts as older than `grace`.
fn chrono_cutoff(grace: Duration) -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    now.saturating_sub(grace).as_secs() as i64
}

/// `s3://bucket[/prefix]` as (bucket, prefix).
fn parse_s3_url(url: &str) -> Result<(&str, &str), BlobError> {
    let rest = url.strip_prefix("s3://").ok_or_else(|| {
        BlobError::Config(format!(
            "`{url}` is not an `s3://bucket/prefix` URL (leave `blobs` unset for the local folder)"
        ))
    })?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(BlobError::Config(format!("`{url}` names no bucket")));
    }
    Ok((bucket, prefix.trim_matches('/')))
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

    /// Makes the blob durable at its content address: fsynced and renamed into the local folder,
    /// or uploaded to the bucket (an S3 PUT is durable once it is acknowledged). Idempotent: a
    /// blob with the same content that already exists is kept and the temp file dropped.
    pub fn persist(self) -> Result<(), BlobError> {
        let sha256 = &self.digests.sha256;
        match &self.store.backend {
            Backend::Local => {
                let dest = self.store.local_path(sha256);
                if dest.is_file() {
                    return Ok(());
                }
                let dir = dest.parent().expect("blob paths have a parent");
                std::fs::create_dir_all(dir).map_err(io_err(format!("create {}", dir.display())))?;
                self.file.as_file().sync_all().map_err(io_err("fsync temp blob"))?;
                self.file
                    .persist(&dest)
                    .map_err(|e| io_err(format!("rename blob into {}", dest.display()))(e.error))?;
                // The rename is durable only once the directory entry is.
                File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(format!("fsync {}", dir.display())))?;
                Ok(())
            }
            Backend::Object(b) => {
                let key = b.key(sha256);
                let file = self.reopen()?;
                b.block_on(async {
                    if b.exists(&key).await? {
                        return Ok(());
                    }
                    b.upload(&key, file, self.digests.size).await
                })
            }
        }
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
        assert!(!store.local_path(&pending.digests.sha256).exists());
        let sha = pending.digests.sha256.clone();
        pending.persist().unwrap();
        assert_eq!(std::fs::read(store.local_path(&sha)).unwrap(), b"hello world");

        assert_eq!(std::fs::read_dir(dir.path().join("blobs/tmp")).unwrap().count(), 0);
    }

    #[test]
    fn s3_urls_name_a_bucket_and_a_prefix() {
        assert_eq!(parse_s3_url("s3://pkgs/sluice/blobs/").unwrap(), ("pkgs", "sluice/blobs"));
        assert_eq!(parse_s3_url("s3://pkgs").unwrap(), ("pkgs", ""));
        assert!(parse_s3_url("s3:///x").is_err());
        assert!(parse_s3_url("/srv/blobs").is_err());
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
