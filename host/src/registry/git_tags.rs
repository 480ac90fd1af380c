//! Publishing by git tag: the repository's git sources are mirrored, each new tag is offered to
//! the format plugin with the commit's tree, and what the plugin builds is published as a push
//! like any upload (with the commit sha). Tags the plugin rejects are recorded with the reason and
//! reported; a tag moved to another commit after it was published keeps serving the first file.

use std::sync::Arc;

use serde::Serialize;

use crate::error::AppError;
use crate::git_source::{GitSource, GitTag};
use crate::store::db::git_tags::NewGitTag;
use crate::store::db::Pusher;
use crate::plugin::{wit, TreeHandle};
use crate::registry::{NewPush, Registry, Repository};

/// What one sync did, per tag.
#[derive(Debug, Default, Serialize)]
pub struct SyncReport {
    pub published: Vec<TagOutcome>,
    pub rejected: Vec<TagOutcome>,
    pub moved: Vec<TagOutcome>,
    pub ignored: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct TagOutcome {
    pub source: String,
    pub tag: String,
    pub commit: String,
    pub detail: String,
}

impl Registry {
    /// Fetches every git source of a git-tag repository and publishes its new tags.
    /// Syncs of one registry run one at a time (git mirrors take locks).
    pub fn sync_git(&self, repo: &Repository, actor: &str) -> Result<SyncReport, AppError> {
        if repo.plugin.info.publish != wit::PublishMode::GitTag {
            return Err(AppError::BadRequest(format!("repository `{}` is not a git-tag repository", repo.name())));
        }
        let _one_at_a_time = self.git_sync.lock().unwrap_or_else(|p| p.into_inner());
        let mut report = SyncReport::default();
        for url in &repo.config.git {
            let source = GitSource::new(url.clone(), self.mirror_dir(repo, url));
            source.sync().map_err(|e| AppError::Internal(e.context(format!("sync git source {url}"))))?;
            let tags = source.tags().map_err(|e| AppError::Internal(e.context(format!("list tags of {url}"))))?;
            for tag in tags {
                self.offer_tag(repo, &source, url, tag, actor, &mut report)?;
            }
        }
        tracing::info!(
            repository = repo.name(), actor, published = report.published.len(), rejected = report.rejected.len(),
            moved = report.moved.len(), "git sync"
        );
        Ok(report)
    }

    fn mirror_dir(&self, repo: &Repository, url: &str) -> std::path::PathBuf {
        use sha2::Digest;
        let id = hex::encode(&sha2::Sha256::digest(url.as_bytes())[..8]);
        self.config.data.join("git").join(repo.name()).join(id)
    }

    fn offer_tag(&self, repo: &Repository, source: &GitSource, url: &str, tag: GitTag, actor: &str, report: &mut SyncReport) -> Result<(), AppError> {
        let outcome = |detail: String| TagOutcome { source: url.to_string(), tag: tag.name.clone(), commit: tag.commit.clone(), detail };
        if let Some(seen) = self.db.git_tag(repo.name(), url, &tag.name)? {
            if seen.commit_sha != tag.commit && seen.status == "published" && seen.moved_to.as_deref() != Some(tag.commit.as_str()) {
                tracing::warn!(
                    repository = repo.name(), tag = %tag.name, first = %seen.commit_sha, now = %tag.commit,
                    "a published tag moved to another commit; the first version stays served"
                );
                self.db.mark_git_tag_moved(repo.name(), url, &tag.name, &tag.commit)?;
                report.moved.push(outcome(format!("published from {}; moved to {} is not served", seen.commit_sha, tag.commit)));
            }
            return Ok(());
        }
        let entries = source.tree(&tag.commit).map_err(|e| AppError::Internal(e.context(format!("tree of {}", tag.commit))))?;
        let reader_source = source.clone();
        let commit = tag.commit.clone();
        let tree = TreeHandle {
            entries: entries.into_iter().map(|e| wit::TreeEntry { path: e.path, kind: e.kind, size: e.size }).collect(),
            reader: Box::new(move |path| reader_source.read(&commit, path).map_err(|e| format!("{e:#}"))),
        };
        let info = wit::TagInfo { name: tag.name.clone(), commit: tag.commit.clone(), time: tag.time };
        let file = match repo.plugin.from_tag(&info, tree) {
            Ok(Ok(Some(file))) => file,
            Ok(Ok(None)) => {
                self.record(repo, url, &tag, "ignored", None, None)?;
                report.ignored.push(tag.name.clone());
                return Ok(());
            }
            Ok(Err(e)) => {
                self.reject(repo, url, &tag, &e.message, report);
                return Ok(());
            }
            Err(call) => {
                self.reject(repo, url, &tag, &call.to_string(), report);
                return Ok(());
            }
        };
        let pending = self.write_blob(&file.bytes[..], self.config.max_upload_mb << 20).map_err(|e| AppError::BadRequest(e.message))?;
        let push = NewPush {
            file_name: &file.file_name,
            pusher: Pusher {
                actor,
                token_id: None,
                token_name: None,
                client_addr: None,
                user_agent: Some("sluice git sync"),
                commit_sha: Some(&tag.commit),
            },
            tags: &[],
            package: None,
        };
        match self.publish_file(repo, pending, &push) {
            Ok(push_id) => {
                self.record(repo, url, &tag, "published", None, Some(push_id))?;
                report.published.push(outcome(format!("push {push_id}: {}", file.file_name)));
            }
            Err(e) => self.reject(repo, url, &tag, &e.message, report),
        }
        Ok(())
    }

    fn reject(&self, repo: &Repository, url: &str, tag: &GitTag, reason: &str, report: &mut SyncReport) {
        tracing::warn!(repository = repo.name(), source = url, tag = %tag.name, reason, "tag not served");
        if let Err(e) = self.record(repo, url, tag, "rejected", Some(reason), None) {
            tracing::error!(error = %e, "could not record a rejected tag");
        }
        report.rejected.push(TagOutcome { source: url.to_string(), tag: tag.name.clone(), commit: tag.commit.clone(), detail: reason.to_string() });
    }

    fn record(&self, repo: &Repository, url: &str, tag: &GitTag, status: &str, reason: Option<&str>, push_id: Option<i64>) -> Result<(), crate::store::DbError> {
        self.db.record_git_tag(&NewGitTag {
            repository: repo.name(),
            source: url,
            tag: &tag.name,
            commit: &tag.commit,
            status,
            reason,
            push_id,
        })
    }

    /// Polls the git sources of every git-tag repository that asks for it.
    pub async fn poll_git(self: Arc<Self>) {
        let repos: Vec<(String, u64)> = self
            .repositories
            .values()
            .filter(|r| r.plugin.info.publish == wit::PublishMode::GitTag && !r.config.git.is_empty() && r.config.poll_seconds > 0)
            .map(|r| (r.name().to_string(), r.config.poll_seconds))
            .collect();
        for (name, seconds) in repos {
            let reg = self.clone();
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(std::time::Duration::from_secs(seconds));
                loop {
                    interval.tick().await;
                    let (r, n) = (reg.clone(), name.clone());
                    let result = tokio::task::spawn_blocking(move || r.repository(&n).and_then(|repo| r.sync_git(repo, "poller"))).await;
                    if let Ok(Err(e)) = result {
                        tracing::error!(repository = %name, error = %e, "git poll failed");
                    }
                }
            });
        }
    }
}
