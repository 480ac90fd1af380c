//! The job folder, `WORK/job-{id}`: its layout (the downloaded file, `pkg/`, `scratch/`), its
//! creation and removal, and saving the download into it.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fmt::Display;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::job::Job;

/// `WORK/job-{id}` and what goes in it.
pub(crate) struct JobDir {
    pub root: PathBuf,
    pub archive: PathBuf,
    pub pkg: PathBuf,
    pub scratch: PathBuf,
    pub archive_name: String,
}

impl JobDir {
    pub(crate) fn new(work: &Path, job: &Job) -> JobDir {
        let root = work.join(format!("job-{}", job.id));
        let archive_name = sanitize_file_name(&job.file_name);
        JobDir {
            archive: root.join(&archive_name),
            pkg: root.join("pkg"),
            scratch: root.join("scratch"),
            root,
            archive_name,
        }
    }

    /// Creates the folder afresh (a leftover of a crashed runner is removed first).
    pub(crate) async fn create(&self) -> io::Result<()> {
        if tokio::fs::symlink_metadata(&self.root).await.is_ok() {
            self.remove().await?;
        }
        tokio::fs::create_dir_all(&self.root).await?;
        tokio::fs::create_dir(&self.pkg).await?;
        tokio::fs::create_dir(&self.scratch).await?;
        Ok(())
    }

    /// Removes the folder, even when the package unpacked read-only directories.
    pub(crate) async fn remove(&self) -> io::Result<()> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            if std::fs::remove_dir_all(&root).is_ok() || std::fs::symlink_metadata(&root).is_err() {
                return Ok(());
            }
            make_writable(&root);
            std::fs::remove_dir_all(&root)
        })
        .await
        .map_err(io::Error::other)?
    }
}

/// Makes every folder under `dir` writable by its owner, so that it can be removed.
pub(crate) fn make_writable(dir: &Path) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&d) else {
            continue;
        };
        if !meta.is_dir() {
            continue;
        }
        let _ = std::fs::set_permissions(&d, std::fs::Permissions::from_mode(meta.mode() | 0o700));
        if let Ok(entries) = std::fs::read_dir(&d) {
            stack.extend(entries.flatten().map(|e| e.path()));
        }
    }
}

/// Whether `name` is a job folder's (`job-{id}`).
pub(crate) fn is_job_dir_name(name: &OsStr) -> bool {
    name.to_str()
        .and_then(|n| n.strip_prefix("job-"))
        .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
}

/// The names in `dir` (none when it cannot be read).
pub(crate) fn list_dir(dir: &Path) -> HashSet<OsString> {
    std::fs::read_dir(dir).map(|entries| entries.flatten().map(|e| e.file_name()).collect()).unwrap_or_default()
}

/// The downloaded file's name, reduced to one harmless path component.
pub(crate) fn sanitize_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base.chars().map(|c| if c.is_control() { '_' } else { c }).collect();
    match cleaned.as_str() {
        "" | "." | ".." => "package".to_owned(),
        "pkg" | "scratch" | "script.sh" => format!("package-{cleaned}"),
        _ => cleaned,
    }
}

/// Streams a download to `path`, computing its sha256 on the way. Returns the hex digest and size.
pub(crate) async fn save_stream<S, B, E>(mut stream: S, path: &Path) -> Result<(String, u64), String>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    E: Display,
{
    let mut file = tokio::fs::File::create(path).await.map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| format!("download interrupted: {e}"))?;
        let chunk = chunk.as_ref();
        hasher.update(chunk);
        size += chunk.len() as u64;
        file.write_all(chunk).await.map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    file.flush().await.map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok((hex::encode(hasher.finalize()), size))
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;
    use crate::runner::testing::{exec, job};

    #[test]
    fn file_names_are_one_harmless_component() {
        assert_eq!(sanitize_file_name("left-pad-1.0.0.tgz"), "left-pad-1.0.0.tgz");
        assert_eq!(sanitize_file_name("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_file_name("a\\b"), "b");
        assert_eq!(sanitize_file_name(".."), "package");
        assert_eq!(sanitize_file_name("dir/"), "package");
        assert_eq!(sanitize_file_name("pkg"), "package-pkg");
    }

    #[tokio::test]
    async fn save_stream_hashes_what_it_writes() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        let chunks: Vec<Result<Vec<u8>, String>> = vec![Ok(b"hello ".to_vec()), Ok(b"world".to_vec())];
        let (sha, size) = save_stream(futures_util::stream::iter(chunks), &path).await.unwrap();
        assert_eq!(size, 11);
        assert_eq!(sha, "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9");
        assert_eq!(std::fs::read(&path).unwrap(), b"hello world");
        let failing: Vec<Result<Vec<u8>, String>> = vec![Ok(b"x".to_vec()), Err("reset".into())];
        assert!(save_stream(futures_util::stream::iter(failing), &path).await.unwrap_err().contains("reset"));
    }

    #[tokio::test]
    async fn read_only_folders_are_removed_with_the_job() {
        let (_tmp, exec) = exec();
        let j = job(16, &[], vec![]);
        let dir = JobDir::new(&exec.work, &j);
        dir.create().await.unwrap();
        let ro = dir.pkg.join("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::File::create(ro.join("f")).unwrap().write_all(b"x").unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        dir.remove().await.unwrap();
        assert!(!dir.root.exists());
    }
}
