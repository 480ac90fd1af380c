//! Git repositories as a source of package versions (git-tag formats such as Go modules): a local
//! mirror of each configured repository, its tags peeled to commits, and the trees and files of
//! those commits; plus verification of the webhooks git hosts send when tags are pushed.
//!
//! This drives the `git` command rather than a library: the operator's git already knows every
//! transport and credential they configured (ssh keys and agents, credential helpers, `insteadOf`
//! rewrites, proxies), and libgit2 bindings would add a C dependency that lags behind git's own
//! protocol support. Each call is one short-lived process with arguments, never a shell.
//!
//! Callers serialise `sync` of one mirror (git takes locks; two fetches at once fail, not corrupt).

use anyhow::{bail, Context};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One configured git repository and where its mirror lives.
#[derive(Debug, Clone)]
pub struct GitSource {
    /// What `git clone` accepts: a URL (`https://`, `ssh://`, `git@host:path`) or a local path.
    pub url_or_path: String,
    /// The bare mirror, created by the first [`GitSource::sync`].
    pub mirror_dir: PathBuf,
}

/// A tag, peeled to the commit it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitTag {
    /// Without `refs/tags/`.
    pub name: String,
    /// The commit's sha (hex).
    pub commit: String,
    /// The commit's committer time, seconds since the Unix epoch.
    pub time: u64,
}

/// One entry of a commit's tree, as the plugin contract's `tree-entry` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitTreeEntry {
    /// `/`-separated path from the repository root.
    pub path: String,
    /// `file`, `symlink` or `submodule`.
    pub kind: String,
    /// Size in bytes (the link text for a symlink, 0 for a submodule).
    pub size: u64,
}

impl GitSource {
    pub fn new(url_or_path: impl Into<String>, mirror_dir: impl Into<PathBuf>) -> Self {
        GitSource { url_or_path: url_or_path.into(), mirror_dir: mirror_dir.into() }
    }

    /// Creates the mirror (`git clone --mirror`) or brings it up to date (`git fetch --prune`), so
    /// that its tags are exactly the remote's: new and moved tags arrive, deleted ones go.
    pub fn sync(&self) -> anyhow::Result<()> {
        if self.mirror_dir.join("HEAD").is_file() {
            let mut fetch = self.git();
            fetch.args(["fetch", "--prune", "--prune-tags", "--tags", "--force", "--quiet", "origin"]);
            run(fetch).with_context(|| format!("fetching {}", self.url_or_path))?;
            return Ok(());
        }
        // Clone next to the mirror and rename, so an interrupted first clone leaves no half mirror.
        let parent = self.mirror_dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        let scratch = tempfile::Builder::new().prefix(".clone-").tempdir_in(parent)?;
        let target = scratch.path().join("mirror.git");
        let mut clone = git_command();
        clone.args(["clone", "--mirror", "--quiet", "--"]).arg(&self.url_or_path).arg(&target);
        run(clone).with_context(|| format!("cloning {}", self.url_or_path))?;
        std::fs::rename(&target, &self.mirror_dir)
            .with_context(|| format!("moving the new mirror to {}", self.mirror_dir.display()))?;
        Ok(())
    }

    /// Every tag of the mirror that names a commit (directly, or through annotated tags).
    /// Tags of trees or blobs name no version and are left out.
    pub fn tags(&self) -> anyhow::Result<Vec<GitTag>> {
        let mut list = self.git();
        list.args([
            "for-each-ref",
            "--format=%(refname:strip=2)%00%(objecttype)%00%(objectname)%00%(committerdate:unix)%00%(*objecttype)%00%(*objectname)%00%(*committerdate:unix)",
            "refs/tags",
        ]);
        let out = String::from_utf8(run(list)?).context("git printed tag names that are not UTF-8")?;
        let mut tags = Vec::new();
        for line in out.lines().filter(|l| !l.is_empty()) {
            let fields: Vec<&str> = line.split('\0').collect();
            let [name, kind, object, time, peeled_kind, peeled, peeled_time] = fields[..] else {
                bail!("unexpected git for-each-ref output: {line:?}");
            };
            let (commit, time) = match (kind, peeled_kind) {
                ("commit", _) => (object.to_string(), time.to_string()),
                ("tag", "commit") => (peeled.to_string(), peeled_time.to_string()),
                // A tag of a tag: let git peel every level.
                ("tag", "tag") => match self.peel_to_commit(name)? {
                    Some(found) => found,
                    None => continue,
                },
                _ => continue,
            };
            let time = time.trim().parse().with_context(|| format!("commit time of tag {name}: {time:?}"))?;
            tags.push(GitTag { name: name.to_string(), commit, time });
        }
        Ok(tags)
    }

    /// The commit and committer time a nested tag ends at, if it ends at a commit.
    fn peel_to_commit(&self, name: &str) -> anyhow::Result<Option<(String, String)>> {
        let mut show = self.git();
        show.args(["log", "-1", "--no-walk", "--format=%H %ct"]).arg(format!("refs/tags/{name}^{{commit}}")).arg("--");
        let Ok(out) = run(show) else { return Ok(None) };
        let out = String::from_utf8_lossy(&out);
        Ok(out.trim().split_once(' ').map(|(c, t)| (c.to_string(), t.to_string())))
    }

    /// Every file, symlink and submodule of a commit's tree, recursively, with the contents
    /// `git archive` exports: checkout conversions (`eol`/`text`, `ident`) applied with LF line
    /// endings whatever this machine's git config says, and `export-ignore`/`export-subst` not
    /// applied. That is how tools that package a commit read it (the go command builds module
    /// zips this way), so a plugin that rebuilds their package from these files gets their bytes,
    /// not the raw blobs'.
    ///
    /// A tree holding a path that is not UTF-8 is [`TreeError::Unusable`]: no plugin can be shown
    /// it, and the tag is rejected rather than the sync failed.
    pub fn tree(&self, commit: &str) -> Result<ExportedTree, TreeError> {
        check_sha(commit)?;
        self.disable_export_attributes()?;
        let mut ls = self.git();
        ls.args(["ls-tree", "-r", "-z", "--full-tree", commit]);
        let listing = run(ls).with_context(|| format!("listing the tree of {commit}"))?;
        let mut submodules = Vec::new();
        for record in listing.split(|b| *b == 0).filter(|r| !r.is_empty()) {
            let tab = record
                .iter()
                .position(|b| *b == b'\t')
                .with_context(|| format!("unexpected git ls-tree output: {record:?}"))?;
            let (meta, path) = (&record[..tab], &record[tab + 1..]);
            let Ok(path) = std::str::from_utf8(path) else {
                return Err(TreeError::Unusable(format!(
                    "the tree holds a file name that is not UTF-8: {:?}",
                    String::from_utf8_lossy(path)
                )));
            };
            if meta.starts_with(b"160000 ") {
                submodules.push(GitTreeEntry { path: path.to_string(), kind: "submodule".into(), size: 0 });
            }
        }

        // One archive instead of a git process per file; spooled to disk, never held in memory.
        let mut spool = tempfile::tempfile().context("creating a temporary file for git archive")?;
        let mut archive = self.git();
        archive
            .args(["-c", "core.autocrlf=input", "-c", "core.eol=lf", "archive", "--format=tar", commit])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = archive.spawn().context("running git (is it installed?)")?;
        let mut stdout = child.stdout.take().context("git archive has no stdout")?;
        let copied = std::io::copy(&mut stdout, &mut spool);
        let out = child.wait_with_output().context("waiting for git archive")?;
        if !out.status.success() {
            return Err(anyhow::anyhow!(
                "git archive of {commit} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )
            .into());
        }
        copied.context("spooling git archive")?;
        spool.seek(SeekFrom::Start(0)).context("rewinding the archive")?;

        let mut entries = Vec::new();
        let mut contents = HashMap::new();
        let mut tar = tar::Archive::new(&spool);
        for entry in tar.entries_with_seek().context("reading git archive")? {
            let entry = entry.context("reading git archive")?;
            let path_bytes = entry.path_bytes();
            let Ok(path) = std::str::from_utf8(&path_bytes) else {
                return Err(TreeError::Unusable(format!(
                    "the tree holds a file name that is not UTF-8: {:?}",
                    String::from_utf8_lossy(&path_bytes)
                )));
            };
            let path = path.to_string();
            let kind = entry.header().entry_type();
            if kind.is_file() {
                let size = entry.size();
                contents.insert(path.clone(), Content::At(entry.raw_file_position(), size));
                entries.push(GitTreeEntry { path, kind: "file".into(), size });
            } else if kind.is_symlink() {
                let target = entry.link_name_bytes().map(|l| l.into_owned()).unwrap_or_default();
                entries.push(GitTreeEntry { path: path.clone(), kind: "symlink".into(), size: target.len() as u64 });
                contents.insert(path, Content::Inline(target));
            }
            // Folders, and the global header carrying the commit id, are not files.
        }
        entries.extend(submodules);
        Ok(ExportedTree { spool, entries, contents })
    }

    /// Go (and every tool that wants a commit's archive to be stable across git versions) turns
    /// off `export-subst` and `export-ignore`; the mirror's own attributes file does that here.
    fn disable_export_attributes(&self) -> anyhow::Result<()> {
        const LINE: &str = "* -export-subst -export-ignore";
        let info = self.mirror_dir.join("info");
        let path = info.join("attributes");
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current.lines().any(|l| l.trim() == LINE) {
            return Ok(());
        }
        std::fs::create_dir_all(&info).with_context(|| format!("creating {}", info.display()))?;
        std::fs::write(&path, format!("{current}\n{LINE}\n")).with_context(|| format!("writing {}", path.display()))
    }

    /// The contents of a file (or a symlink's target text) at a commit, read from the tree
    /// [`GitSource::tree`] exported.
    pub fn read(&self, commit: &str, path: &str) -> anyhow::Result<Vec<u8>> {
        self.tree(commit).map_err(|e| anyhow::anyhow!("{e}"))?.read(path)
    }

    /// `git` working on the mirror.
    fn git(&self) -> Command {
        let mut cmd = git_command();
        cmd.arg(OsStr::new("--git-dir")).arg(&self.mirror_dir);
        cmd
    }
}

/// Why a commit's tree cannot be offered.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// Something about the commit itself: rejecting its tag is the answer.
    #[error("{0}")]
    Unusable(String),
    /// git or the disk failed; the tag may be read fine next time.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

enum Content {
    /// Offset and length in the spooled archive.
    At(u64, u64),
    /// A symlink's target.
    Inline(Vec<u8>),
}

/// A commit's files as `git archive` exported them, spooled in a temporary file.
pub struct ExportedTree {
    spool: std::fs::File,
    pub entries: Vec<GitTreeEntry>,
    contents: HashMap<String, Content>,
}

impl ExportedTree {
    /// A file's exported contents, or a symlink's target text.
    pub fn read(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        match self.contents.get(path) {
            Some(Content::Inline(bytes)) => Ok(bytes.clone()),
            Some(Content::At(offset, len)) => {
                let mut bytes = vec![0; usize::try_from(*len)?];
                std::os::unix::fs::FileExt::read_exact_at(&self.spool, &mut bytes, *offset)
                    .context("reading the spooled archive")?;
                Ok(bytes)
            }
            None => bail!("{path:?} is not a file of this tree"),
        }
    }
}

/// `git` that never waits for a password prompt (a server has no one to answer it).
fn git_command() -> Command {
    let mut cmd = Command::new("git");
    cmd.env("GIT_TERMINAL_PROMPT", "0").stdin(Stdio::null());
    cmd
}

/// Runs git, returning stdout, or an error carrying git's own message.
fn run(mut cmd: Command) -> anyhow::Result<Vec<u8>> {
    let out = cmd.output().context("running git (is it installed?)")?;
    if !out.status.success() {
        bail!("git failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(out.stdout)
}

/// A full hex object name, so that nothing from outside is read as an option or a revision
/// expression.
fn check_sha(commit: &str) -> anyhow::Result<()> {
    if !matches!(commit.len(), 40 | 64) || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("{commit:?} is not a commit sha");
    }
    Ok(())
}

/// What a verified webhook says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    /// `github`, `gitlab` or `gitea` (Forgejo, a Gitea fork, sends Gitea's payloads).
    pub provider: &'static str,
    /// The account that pushed, as the git host names it.
    pub sender: String,
    /// A tag was created, moved or deleted: time to sync the repository.
    pub is_tag_push: bool,
    /// The repository's clone URL, for finding which configured source it is.
    pub repository_url: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    /// No webhook secret is configured, so nothing can be verified.
    #[error("no webhook secret is configured for this repository")]
    NoSecret,
    #[error(
        "the request carries none of X-Hub-Signature-256, X-Gitea-Signature, X-Forgejo-Signature or X-Gitlab-Token"
    )]
    Unsigned,
    #[error("the webhook signature or token does not match the configured secret")]
    BadSignature,
    #[error("the webhook payload is not valid: {0}")]
    InvalidPayload(String),
}

fn header<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// Checks an HMAC-SHA256 signature given in hex, in constant time.
fn hmac_matches(secret: &str, body: &[u8], hex_signature: &str) -> bool {
    let Ok(signature) = hex::decode(hex_signature) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    mac.verify_slice(&signature).is_ok()
}

/// Compares two secrets in time that depends on neither (digests have one length).
fn secrets_match(given: &str, secret: &str) -> bool {
    let (a, b) = (Sha256::digest(given.as_bytes()), Sha256::digest(secret.as_bytes()));
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn text(value: &serde_json::Value, pointer: &str) -> Option<String> {
    value.pointer(pointer).and_then(|v| v.as_str()).filter(|s| !s.is_empty()).map(str::to_string)
}

/// Verifies a webhook from GitHub (`X-Hub-Signature-256: sha256=HEX`), Gitea or Forgejo
/// (`X-Gitea-Signature` / `X-Forgejo-Signature: HEX`), both HMAC-SHA256 of the body with the
/// secret, or GitLab (`X-Gitlab-Token`: the secret itself), and reads what it reports. The
/// signature is checked before the payload is parsed.
pub fn verify_webhook(
    headers: &axum::http::HeaderMap,
    body: &[u8],
    secret: &str,
) -> Result<WebhookEvent, WebhookError> {
    if secret.is_empty() {
        return Err(WebhookError::NoSecret);
    }
    // Gitea also sends GitHub's headers, so its own come first.
    let gitea_signature = header(headers, "x-forgejo-signature").or_else(|| header(headers, "x-gitea-signature"));
    let provider = if let Some(signature) = gitea_signature {
        if !hmac_matches(secret, body, signature) {
            return Err(WebhookError::BadSignature);
        }
        "gitea"
    } else if let Some(signature) = header(headers, "x-hub-signature-256") {
        let hex_signature = signature.strip_prefix("sha256=").ok_or(WebhookError::BadSignature)?;
        if !hmac_matches(secret, body, hex_signature) {
            return Err(WebhookError::BadSignature);
        }
        "github"
    } else if let Some(token) = header(headers, "x-gitlab-token") {
        if !secrets_match(token, secret) {
            return Err(WebhookError::BadSignature);
        }
        "gitlab"
    } else {
        return Err(WebhookError::Unsigned);
    };

    let payload: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| WebhookError::InvalidPayload(e.to_string()))?;
    let tag_ref = text(&payload, "/ref").is_some_and(|r| r.starts_with("refs/tags/"));
    let event = match provider {
        "gitlab" => WebhookEvent {
            provider,
            sender: text(&payload, "/user_username").unwrap_or_default(),
            is_tag_push: text(&payload, "/object_kind").as_deref() == Some("tag_push") || tag_ref,
            repository_url: text(&payload, "/project/git_http_url")
                .or_else(|| text(&payload, "/repository/git_http_url")),
        },
        "gitea" => WebhookEvent {
            provider,
            sender: text(&payload, "/sender/login")
                .or_else(|| text(&payload, "/pusher/login"))
                .or_else(|| text(&payload, "/pusher/username"))
                .unwrap_or_default(),
            is_tag_push: event_is(headers, &["x-forgejo-event", "x-gitea-event"], "push") && tag_ref,
            repository_url: text(&payload, "/repository/clone_url"),
        },
        _ => WebhookEvent {
            provider,
            sender: text(&payload, "/sender/login").unwrap_or_default(),
            is_tag_push: event_is(headers, &["x-github-event"], "push") && tag_ref,
            repository_url: text(&payload, "/repository/clone_url"),
        },
    };
    Ok(event)
}

/// Whether the event header says `push` (a payload without the header is judged by its `ref`).
fn event_is(headers: &axum::http::HeaderMap, names: &[&str], event: &str) -> bool {
    names.iter().find_map(|n| header(headers, n)).is_none_or(|e| e == event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderName, HeaderValue};

    /// A git command in `dir` with a fixed identity and dates.
    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .current_dir(dir)
            .args(["-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "init.defaultBranch=main"])
            .args(args)
            .env("GIT_COMMITTER_DATE", "1700000000 +0000")
            .env("GIT_AUTHOR_DATE", "1700000000 +0000")
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// A repository with a file, an executable, a symlink, a submodule link and a nested folder.
    fn source_repo() -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        git(p, &["init", "-q"]);
        std::fs::write(p.join("go.mod"), "module example.com/m\n").unwrap();
        std::fs::create_dir_all(p.join("sub/deep")).unwrap();
        std::fs::write(p.join("sub/deep/a b.txt"), "hello").unwrap();
        std::fs::write(p.join("run.sh"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(p.join("run.sh"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("go.mod", p.join("link")).unwrap();
        git(p, &["add", "."]);
        git(
            p,
            &[
                "update-index",
                "--add",
                "--cacheinfo",
                "160000,1111111111111111111111111111111111111111,third_party/lib",
            ],
        );
        git(p, &["commit", "-q", "-m", "first"]);
        let commit = git(p, &["rev-parse", "HEAD"]);
        git(p, &["tag", "v1.0.0"]);
        git(p, &["tag", "-a", "-m", "annotated", "sub/v0.1.0"]);
        git(p, &["tag", "-a", "-m", "tag of a tag", "nested", "sub/v0.1.0"]);
        let tree = git(p, &["rev-parse", "HEAD^{tree}"]);
        git(p, &["tag", "a-tree", &tree]);
        (dir, commit)
    }

    #[test]
    fn mirrors_lists_tags_and_reads_trees() {
        let (src, commit) = source_repo();
        let data = tempfile::tempdir().unwrap();
        let source = GitSource::new(src.path().to_str().unwrap(), data.path().join("mirrors/m.git"));
        source.sync().unwrap();

        let mut tags = source.tags().unwrap();
        tags.sort_by(|a, b| a.name.cmp(&b.name));
        let expected = |name: &str| GitTag { name: name.into(), commit: commit.clone(), time: 1_700_000_000 };
        assert_eq!(tags, vec![expected("nested"), expected("sub/v0.1.0"), expected("v1.0.0")]);

        let mut tree = source.tree(&commit).unwrap().entries;
        tree.sort_by(|a, b| a.path.cmp(&b.path));
        let entry = |path: &str, kind: &str, size: u64| GitTreeEntry { path: path.into(), kind: kind.into(), size };
        assert_eq!(
            tree,
            vec![
                entry("go.mod", "file", 21),
                entry("link", "symlink", 6),
                entry("run.sh", "file", 10),
                entry("sub/deep/a b.txt", "file", 5),
                entry("third_party/lib", "submodule", 0),
            ]
        );
        assert_eq!(source.read(&commit, "sub/deep/a b.txt").unwrap(), b"hello");
        assert_eq!(source.read(&commit, "link").unwrap(), b"go.mod");
        assert!(source.read(&commit, "missing").is_err());
        assert!(source.read(&commit, "../go.mod").is_err());
        assert!(source.read(&commit, "./go.mod").is_err());
        assert!(source.tree("HEAD").is_err());
        assert!(source.tree("--output=/tmp/x").is_err());
    }

    #[test]
    fn trees_are_read_as_git_archive_exports_them() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        git(p, &["init", "-q"]);
        std::fs::write(
            p.join(".gitattributes"),
            "*.txt eol=crlf\n*.c ident\nskip.md export-ignore\nsubst.md export-subst\n",
        )
        .unwrap();
        std::fs::write(p.join("a.txt"), "one\ntwo\n").unwrap();
        std::fs::write(p.join("id.c"), "/* $Id$ */\n").unwrap();
        std::fs::write(p.join("skip.md"), "kept\n").unwrap();
        std::fs::write(p.join("subst.md"), "$Format:%H$\n").unwrap();
        // Longer than a tar header's name field: git writes it in a pax header.
        let long = format!("{}/{}.txt", "deep-folder-name".repeat(8), "a-long-file-name".repeat(6));
        std::fs::create_dir_all(p.join(&long).parent().unwrap()).unwrap();
        std::fs::write(p.join(&long), "far down\n").unwrap();
        git(p, &["-c", "core.autocrlf=false", "add", "."]);
        git(p, &["commit", "-q", "-m", "attributes"]);
        let commit = git(p, &["rev-parse", "HEAD"]);
        let data = tempfile::tempdir().unwrap();
        let source = GitSource::new(p.to_str().unwrap(), data.path().join("m.git"));
        source.sync().unwrap();
        let tree = source.tree(&commit).unwrap();
        assert_eq!(tree.read("a.txt").unwrap(), b"one\r\ntwo\r\n");
        let size = tree.entries.iter().find(|e| e.path == "a.txt").unwrap().size;
        assert_eq!(size, 10, "sizes are the exported files'");
        let id = String::from_utf8(tree.read("id.c").unwrap()).unwrap();
        assert!(id.starts_with("/* $Id: ") && id.len() > 50, "{id}");
        // Archive-only attributes are off, as the go command turns them off.
        assert_eq!(tree.read("skip.md").unwrap(), b"kept\n");
        assert_eq!(tree.read("subst.md").unwrap(), b"$Format:%H$\n");
        assert_eq!(tree.read(&long).unwrap(), b"far down\r\n");
        assert!(tree.entries.iter().any(|e| e.path == long && e.size == 10));
    }

    #[test]
    fn non_utf8_file_names_make_a_tree_unusable() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        git(p, &["init", "-q"]);
        std::fs::write(p.join(OsStr::from_bytes(b"caf\xe9.txt")), "x").unwrap();
        git(p, &["add", "."]);
        git(p, &["commit", "-q", "-m", "latin-1"]);
        let commit = git(p, &["rev-parse", "HEAD"]);
        let data = tempfile::tempdir().unwrap();
        let source = GitSource::new(p.to_str().unwrap(), data.path().join("m.git"));
        source.sync().unwrap();
        match source.tree(&commit) {
            Err(TreeError::Unusable(reason)) => {
                assert!(reason.contains("not UTF-8") && reason.contains("caf"), "{reason}")
            }
            Err(other) => panic!("expected an unusable tree, got {other}"),
            Ok(_) => panic!("expected an unusable tree"),
        }
        assert!(matches!(source.tree(&"0".repeat(40)), Err(TreeError::Failed(_))));
    }

    #[test]
    fn sync_fetches_new_tags_and_prunes_deleted_ones() {
        let (src, _) = source_repo();
        let data = tempfile::tempdir().unwrap();
        let source = GitSource::new(src.path().to_str().unwrap(), data.path().join("m.git"));
        source.sync().unwrap();
        std::fs::write(src.path().join("new.go"), "package m").unwrap();
        git(src.path(), &["add", "."]);
        git(src.path(), &["commit", "-q", "-m", "second"]);
        let second = git(src.path(), &["rev-parse", "HEAD"]);
        git(src.path(), &["tag", "v1.1.0"]);
        git(src.path(), &["tag", "-d", "nested"]);
        git(src.path(), &["tag", "-f", "v1.0.0"]);
        source.sync().unwrap();
        let tags = source.tags().unwrap();
        let names: Vec<_> = tags.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, vec!["sub/v0.1.0", "v1.0.0", "v1.1.0"]);
        assert!(tags.iter().filter(|t| t.name != "sub/v0.1.0").all(|t| t.commit == second));
        assert_eq!(source.read(&second, "new.go").unwrap(), b"package m");
    }

    #[test]
    fn sync_reports_unreachable_sources() {
        let data = tempfile::tempdir().unwrap();
        let source = GitSource::new(data.path().join("nope").to_str().unwrap(), data.path().join("m.git"));
        let err = format!("{:#}", source.sync().unwrap_err());
        assert!(err.contains("cloning") && err.contains("git failed"), "{err}");
        assert!(!data.path().join("m.git").exists());
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn sign(secret: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    #[test]
    fn github_webhooks() {
        let body = br#"{"ref":"refs/tags/v1.2.0","sender":{"login":"octo"},"repository":{"clone_url":"https://github.com/o/r.git"}}"#;
        let sig = format!("sha256={}", sign("s3cret", body));
        let event =
            verify_webhook(&headers(&[("x-hub-signature-256", &sig), ("x-github-event", "push")]), body, "s3cret")
                .unwrap();
        assert_eq!(
            event,
            WebhookEvent {
                provider: "github",
                sender: "octo".into(),
                is_tag_push: true,
                repository_url: Some("https://github.com/o/r.git".into())
            }
        );
        let branch = br#"{"ref":"refs/heads/main","sender":{"login":"octo"}}"#;
        let sig = format!("sha256={}", sign("s3cret", branch));
        assert!(
            !verify_webhook(&headers(&[("x-hub-signature-256", &sig), ("x-github-event", "push")]), branch, "s3cret")
                .unwrap()
                .is_tag_push
        );
        assert_eq!(
            verify_webhook(&headers(&[("x-hub-signature-256", &sig)]), body, "s3cret"),
            Err(WebhookError::BadSignature)
        );
        let bare = sign("s3cret", body);
        assert_eq!(
            verify_webhook(&headers(&[("x-hub-signature-256", &bare)]), body, "s3cret"),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify_webhook(&headers(&[("x-github-event", "push")]), body, "s3cret"),
            Err(WebhookError::Unsigned)
        );
        assert_eq!(verify_webhook(&headers(&[("x-hub-signature-256", &sig)]), body, ""), Err(WebhookError::NoSecret));
    }

    #[test]
    fn gitea_and_forgejo_webhooks() {
        let body = br#"{"ref":"refs/tags/v2.0.0","pusher":{"login":"alice"},"repository":{"clone_url":"https://gitea.example/o/r.git"}}"#;
        let sig = sign("k", body);
        // Gitea also sends GitHub's headers; its own signature decides.
        let h =
            headers(&[("x-gitea-signature", &sig), ("x-gitea-event", "push"), ("x-hub-signature-256", "sha256=00")]);
        let event = verify_webhook(&h, body, "k").unwrap();
        assert_eq!((event.provider, event.sender.as_str(), event.is_tag_push), ("gitea", "alice", true));
        assert_eq!(event.repository_url.as_deref(), Some("https://gitea.example/o/r.git"));
        let h = headers(&[("x-forgejo-signature", &sig), ("x-forgejo-event", "push")]);
        assert_eq!(verify_webhook(&h, body, "k").unwrap().provider, "gitea");
        assert_eq!(
            verify_webhook(&headers(&[("x-gitea-signature", &sig)]), body, "other"),
            Err(WebhookError::BadSignature)
        );
        let h = headers(&[("x-gitea-signature", &sig), ("x-gitea-event", "create")]);
        assert!(!verify_webhook(&h, body, "k").unwrap().is_tag_push);
    }

    #[test]
    fn gitlab_webhooks() {
        let body = br#"{"object_kind":"tag_push","ref":"refs/tags/v1.0.0","user_username":"bob","project":{"git_http_url":"https://gitlab.example/g/r.git"}}"#;
        let h = headers(&[("x-gitlab-token", "tok"), ("x-gitlab-event", "Tag Push Hook")]);
        let event = verify_webhook(&h, body, "tok").unwrap();
        assert_eq!(
            event,
            WebhookEvent {
                provider: "gitlab",
                sender: "bob".into(),
                is_tag_push: true,
                repository_url: Some("https://gitlab.example/g/r.git".into())
            }
        );
        assert_eq!(
            verify_webhook(&headers(&[("x-gitlab-token", "tok2")]), body, "tok"),
            Err(WebhookError::BadSignature)
        );
        let push = br#"{"object_kind":"push","ref":"refs/heads/main","user_username":"bob"}"#;
        assert!(!verify_webhook(&h, push, "tok").unwrap().is_tag_push);
        assert!(matches!(verify_webhook(&h, b"not json", "tok"), Err(WebhookError::InvalidPayload(_))));
    }
}
