//! Publishing by git tag: the repository's git sources are mirrored, each new tag is offered to
//! the format plugin with the commit's tree, and what the plugin builds is published as a push
//! like any upload (with the commit sha). Tags the plugin rejects are recorded with the reason and
//! reported; a tag moved to another commit after it was published keeps serving the first file.
//!
//! A sync runs in the background as a [`SyncJob`] that the API answers with at once and that
//! shows its progress: a large repository's first sync reads hundreds of tags, far longer than a
//! client or a git host's webhook waits for a response. One bad tag or one unreachable source is
//! reported and the sync goes on with the rest.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use crate::app::git_sync::{SyncJob, SyncProgress, SyncReport, SyncStatus, TagOutcome};
use crate::app::{App, Repository};
use crate::config::GitSourceConfig;
use crate::error::AppError;
use crate::git_source::{GitSource, GitTag, TreeError};
use crate::plugin::{wit, BlobHandle, TreeHandle};
use crate::registry::{NewPush, Registry};
use crate::store::db::git_tags::NewGitTag;
use crate::store::db::{now_ms, Pusher};

/// Finished jobs kept for polling, per registry.
const KEPT_JOBS: usize = 100;

/// Starts a background sync of a git-tag repository (or returns the one running for it).
pub fn start_sync(app: &Arc<App>, repo: &Repository, actor: &str) -> Result<SyncJob, AppError> {
    check_git_tag(repo)?;
    let name = repo.name().to_string();
    let job = {
        let mut jobs = app.git_sync.jobs.lock().unwrap_or_else(|p| p.into_inner());
        let running = jobs.values().find(|j| {
            let j = j.lock().unwrap_or_else(|p| p.into_inner());
            j.repository == name && j.status == SyncStatus::Running
        });
        if let Some(job) = running {
            return Ok(job.lock().unwrap_or_else(|p| p.into_inner()).clone());
        }
        if jobs.len() >= KEPT_JOBS {
            let oldest_finished = jobs
                .iter()
                .filter(|(_, j)| j.lock().unwrap_or_else(|p| p.into_inner()).status != SyncStatus::Running)
                .map(|(id, _)| *id)
                .min();
            if let Some(id) = oldest_finished {
                jobs.remove(&id);
            }
        }
        let id = app.git_sync.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let job = Arc::new(Mutex::new(SyncJob {
            id,
            repository: name.clone(),
            actor: actor.to_string(),
            status: SyncStatus::Running,
            started_ms: now_ms(),
            finished_ms: None,
            progress: SyncProgress::default(),
            report: SyncReport::default(),
            error: None,
        }));
        jobs.insert(id, job.clone());
        job
    };
    let snapshot = job.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let worker = app.clone();
    let actor = actor.to_string();
    std::thread::Builder::new()
        .name(format!("sync-{name}"))
        .spawn(move || {
            // A panic must not leave the job "running" for whoever polls it.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let registry = Registry(&worker);
                registry.repository(&name).and_then(|repo| registry.sync_git_with(repo, &actor, &job))
            }))
            .unwrap_or_else(|_| {
                Err(AppError::Internal(anyhow::anyhow!("the sync stopped unexpectedly (see the server log)")))
            });
            let mut j = job.lock().unwrap_or_else(|p| p.into_inner());
            j.finished_ms = Some(now_ms());
            match result {
                Ok(report) => {
                    j.status = SyncStatus::Done;
                    j.report = report;
                }
                Err(e) => {
                    tracing::error!(repository = %name, error = %e, "git sync failed");
                    j.status = SyncStatus::Failed;
                    j.error = Some(e.to_string());
                }
            }
        })
        .map_err(|e| {
            app.git_sync.jobs.lock().unwrap_or_else(|p| p.into_inner()).remove(&snapshot.id);
            AppError::Internal(anyhow::anyhow!("starting a sync thread: {e}"))
        })?;
    Ok(snapshot)
}

/// A sync job of this repository, by id.
pub fn sync_job(app: &App, repository: &str, id: u64) -> Option<SyncJob> {
    let jobs = app.git_sync.jobs.lock().unwrap_or_else(|p| p.into_inner());
    let job = jobs.get(&id)?.lock().unwrap_or_else(|p| p.into_inner()).clone();
    (job.repository == repository).then_some(job)
}

/// Polls the git sources of every git-tag repository that asks for it.
pub async fn poll_git(app: Arc<App>) {
    let repos: Vec<(String, u64)> = app
        .repositories
        .values()
        .filter(|r| {
            r.plugin.info.publish == wit::PublishMode::GitTag && !r.config.git.is_empty() && r.config.poll_seconds > 0
        })
        .map(|r| (r.name().to_string(), r.config.poll_seconds))
        .collect();
    for (name, seconds) in repos {
        let app = app.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(std::time::Duration::from_secs(seconds));
            loop {
                interval.tick().await;
                if !app.lead.is_leading() {
                    // Another replica polls (see `app::leader`).
                    continue;
                }
                let (r, n) = (app.clone(), name.clone());
                // A background job like any other sync, so a poll's progress is visible too;
                // a poll while a sync of this repository runs joins it.
                let result = tokio::task::spawn_blocking(move || {
                    r.repository(&n).and_then(|repo| start_sync(&r, repo, "poller"))
                })
                .await;
                if let Ok(Err(e)) = result {
                    tracing::error!(repository = %name, error = %e, "git poll failed");
                }
            }
        });
    }
}

impl Registry<'_> {
    /// The sync itself, recording progress and outcomes in `job` as it goes.
    fn sync_git_with(&self, repo: &Repository, actor: &str, job: &Mutex<SyncJob>) -> Result<SyncReport, AppError> {
        check_git_tag(repo)?;
        let _one_at_a_time = self.git_sync.one_at_a_time.lock().unwrap_or_else(|p| p.into_inner());
        let update = |f: &mut dyn FnMut(&mut SyncJob)| f(&mut job.lock().unwrap_or_else(|p| p.into_inner()));
        update(&mut |j| j.progress.sources_total = repo.config.git.len());
        for configured in &repo.config.git {
            let url = configured.url();
            update(&mut |j| {
                j.progress.source = Some(url.to_string());
                j.progress.tags_total = 0;
                j.progress.tags_done = 0;
            });
            let source = GitSource::new(url, self.mirror_dir(repo, url));
            let tags = source.sync().and_then(|()| source.tags());
            match tags {
                Err(e) => {
                    tracing::error!(repository = repo.name(), source = url, error = %format!("{e:#}"), "git source unreadable");
                    let detail = format!("{e:#}");
                    update(&mut |j| {
                        j.report.errors.push(TagOutcome {
                            source: url.to_string(),
                            tag: String::new(),
                            commit: String::new(),
                            detail: detail.clone(),
                        })
                    });
                }
                Ok(tags) => {
                    update(&mut |j| j.progress.tags_total = tags.len());
                    for tag in tags {
                        let mut report = SyncReport::default();
                        self.offer_tag(repo, &source, configured, tag, actor, &mut report)?;
                        update(&mut |j| {
                            j.progress.tags_done += 1;
                            let r = &mut j.report;
                            r.published.extend(report.published.iter().cloned());
                            r.rejected.extend(report.rejected.iter().cloned());
                            r.moved.extend(report.moved.iter().cloned());
                            r.ignored.extend(report.ignored.iter().cloned());
                            r.errors.extend(report.errors.iter().cloned());
                        });
                    }
                }
            }
            update(&mut |j| j.progress.sources_done += 1);
        }
        let report = job.lock().unwrap_or_else(|p| p.into_inner()).report.clone();
        tracing::info!(
            repository = repo.name(),
            actor,
            published = report.published.len(),
            rejected = report.rejected.len(),
            moved = report.moved.len(),
            errors = report.errors.len(),
            "git sync"
        );
        Ok(report)
    }

    fn mirror_dir(&self, repo: &Repository, url: &str) -> std::path::PathBuf {
        use sha2::Digest;
        let id = hex::encode(&sha2::Sha256::digest(url.as_bytes())[..8]);
        self.config.data.join("git").join(repo.name()).join(id)
    }

    fn offer_tag(
        &self,
        repo: &Repository,
        source: &GitSource,
        configured: &GitSourceConfig,
        tag: GitTag,
        actor: &str,
        report: &mut SyncReport,
    ) -> Result<(), AppError> {
        let url = configured.url();
        let outcome = |detail: String| TagOutcome {
            source: url.to_string(),
            tag: tag.name.clone(),
            commit: tag.commit.clone(),
            detail,
        };
        if let Some(seen) = self.db.git_tag(repo.name(), url, &tag.name)? {
            if seen.commit_sha != tag.commit
                && seen.status == "published"
                && seen.moved_to.as_deref() != Some(tag.commit.as_str())
            {
                tracing::warn!(
                    repository = repo.name(), tag = %tag.name, first = %seen.commit_sha, now = %tag.commit,
                    "a published tag moved to another commit; the first version stays served"
                );
                self.db.mark_git_tag_moved(repo.name(), url, &tag.name, &tag.commit)?;
                report.moved.push(outcome(format!(
                    "published from {}; moved to {} is not served",
                    seen.commit_sha, tag.commit
                )));
            }
            return Ok(());
        }
        let exported = match source.tree(&tag.commit) {
            Ok(tree) => Arc::new(tree),
            Err(TreeError::Unusable(reason)) => {
                self.reject(repo, url, &tag, &format!("tag {}: {reason}", tag.name), report);
                return Ok(());
            }
            Err(TreeError::Failed(e)) => {
                tracing::error!(repository = repo.name(), source = url, tag = %tag.name, error = %format!("{e:#}"), "reading a tagged tree failed");
                report.errors.push(outcome(format!("{e:#}")));
                return Ok(());
            }
        };
        let reader_tree = exported.clone();
        let tree = TreeHandle {
            entries: exported
                .entries
                .iter()
                .map(|e| wit::TreeEntry { path: e.path.clone(), kind: e.kind.clone(), size: e.size })
                .collect(),
            reader: Box::new(move |path| reader_tree.read(path).map_err(|e| format!("{e:#}"))),
        };
        let info = wit::TagInfo {
            name: tag.name.clone(),
            commit: tag.commit.clone(),
            time: tag.time,
            source: url.to_string(),
            source_name: configured.name().map(str::to_string),
        };
        let file = match repo.plugin.from_tag(&info, tree) {
            Ok(Ok(Some(file))) => file,
            Ok(Ok(None)) => {
                self.record(repo, url, &tag, "ignored", None, None)?;
                report.ignored.push(tag.name.clone());
                return Ok(());
            }
            Ok(Err(e)) => {
                // The plugin's reason, in its words, whatever kind it gave.
                self.reject(repo, url, &tag, &e.message, report);
                return Ok(());
            }
            Err(call) => {
                self.reject(repo, url, &tag, &call.to_string(), report);
                return Ok(());
            }
        };
        // A package belongs to the git source that first published it: another source of the
        // repository (one that the plugin let claim any name, such as a local path) cannot add
        // versions to it.
        if let Ok(Ok(meta)) = repo.plugin.parse(&file.file_name, BlobHandle::Memory(file.bytes.clone())) {
            if let Some(owner) = self.db.git_source_of_package(repo.name(), &meta.name, url)? {
                let reason = format!(
                    "tag {}: package {} is published from another git source ({owner}); a source adds versions only to its own packages",
                    tag.name, meta.name
                );
                self.reject(repo, url, &tag, &reason, report);
                return Ok(());
            }
        }
        // An internal failure (the blob store, the database) is not the tag's fault: it is reported
        // (as the bare message; the log has the detail) but not recorded, so the next sync tries
        // the tag again. A client error (too large, invalid) rejects the tag for good.
        let pending = match self.write_blob(&file.bytes[..], self.config.max_upload_mb << 20) {
            Ok(pending) => pending,
            Err(e) if e.is_internal() => {
                report.errors.push(outcome(e.client_message()));
                return Ok(());
            }
            Err(e) => {
                self.reject(repo, url, &tag, &e.client_message(), report);
                return Ok(());
            }
        };
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
            Err(e) if e.is_internal() => report.errors.push(outcome(e.client_message())),
            Err(e) => self.reject(repo, url, &tag, &e.client_message(), report),
        }
        Ok(())
    }

    fn reject(&self, repo: &Repository, url: &str, tag: &GitTag, reason: &str, report: &mut SyncReport) {
        tracing::warn!(repository = repo.name(), source = url, tag = %tag.name, reason, "tag not served");
        if let Err(e) = self.record(repo, url, tag, "rejected", Some(reason), None) {
            tracing::error!(error = %e, "could not record a rejected tag");
        }
        report.rejected.push(TagOutcome {
            source: url.to_string(),
            tag: tag.name.clone(),
            commit: tag.commit.clone(),
            detail: reason.to_string(),
        });
    }

    fn record(
        &self,
        repo: &Repository,
        url: &str,
        tag: &GitTag,
        status: &str,
        reason: Option<&str>,
        push_id: Option<i64>,
    ) -> Result<(), crate::store::DbError> {
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
}

fn check_git_tag(repo: &Repository) -> Result<(), AppError> {
    if repo.plugin.info.publish != wit::PublishMode::GitTag {
        return Err(AppError::BadRequest(format!("repository `{}` is not a git-tag repository", repo.name())));
    }
    Ok(())
}
