//! Serving a format's client protocol: the plugin's `handle` decides, the host authorises and
//! carries out the effects, then replies.

use std::io::{Read, Seek, SeekFrom};

use crate::app::documents::{self, DocRequest, Kept, Slot};
use crate::app::{App, Repository};
use crate::auth::{Principal, Scope};
use crate::domain::gate;
use crate::error::AppError;
use crate::pipeline::{Pipelines, PushFacts};
use crate::plugin::{wit, BlobHandle};
use crate::store::db::{NewFile, Pusher};
use crate::store::PendingBlob;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::view::RepositoryView;
use super::Registry;

/// What rendering a kept document again gave.
pub enum Rerender {
    /// The document to serve (new, or the previous one when the render failed).
    Kept(Arc<Kept>),
    /// The plugin answers something that is not kept any more (an error: the package is gone).
    Answer(Result<wit::Response, AppError>),
}

/// A read the document cache may answer: no body, GET or HEAD.
fn is_read(req: &ClientRequest) -> bool {
    req.body.is_none() && (req.method == "GET" || req.method == "HEAD")
}

fn doc_request<'a>(repo: &'a Repository, req: &'a ClientRequest) -> DocRequest<'a> {
    DocRequest {
        repository: repo.name(),
        path: &req.path,
        query: &req.query,
        base_url: &req.base_url,
        headers: &req.headers,
    }
}

/// A client's request to `/{repository}/...`, credentials already resolved and stripped.
pub struct ClientRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub base_url: String,
    pub principal: Option<Principal>,
    /// A credential was sent but is not a valid token.
    pub bad_credential: bool,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
    /// The spooled request body, if it had one.
    pub body: Option<PendingBlob>,
}

/// A file being pushed: its name, who pushed it, and what the push asks for.
pub struct NewPush<'a> {
    pub file_name: &'a str,
    pub pusher: Pusher<'a>,
    /// Tags to point at the new version.
    pub tags: &'a [String],
    /// The package the client published to, when its protocol names one; the file must be it.
    pub package: Option<&'a str>,
}

/// What the HTTP layer sends back.
pub enum Reply {
    Response(wit::Response),
    /// A kept document: the HTTP layer answers `If-None-Match` and `Range` from it.
    Kept(Arc<Kept>),
    /// A stored file, served by the HTTP layer from the blob store (streamed, or a redirect).
    Blob {
        sha256: String,
        content_type: String,
    },
}

/// Renders again, in the background, the stale documents readers use, after each change.
pub async fn refresh_documents(app: Arc<App>) {
    loop {
        app.db.changes().notify.notified().await;
        // Let a burst of changes (a pipeline releasing, a script publishing) settle first.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let app = app.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let reg = Registry(&app);
            for slot in reg.documents.stale_in_use(reg.db.changes()) {
                if let Ok(repo) = reg.repository(slot.repository()) {
                    reg.render_again(repo, &slot);
                }
            }
        })
        .await;
    }
}

impl Registry<'_> {
    /// Serves one protocol request of `repo`. Never fails: every error becomes the response the
    /// format's clients understand.
    pub fn serve_client(&self, repo: &Repository, mut req: ClientRequest) -> Reply {
        match self.serve_inner(repo, &mut req) {
            Ok(reply) => reply,
            Err(err) => Reply::Response(self.render_error(repo, err)),
        }
    }

    /// Whether the caller may read `repo` through its protocol.
    pub fn may_read(&self, repo: &Repository, req: &ClientRequest) -> Result<(), AppError> {
        // A group shows its members' packages: whoever reads it must be allowed to read each.
        if repo.is_group() {
            for member in self.members(repo)? {
                self.may_read(member, req)?;
            }
        }
        if req.bad_credential {
            return Err(AppError::Unauthorized("the token is not valid (it may have been revoked)".into()));
        }
        if repo.private() {
            match &req.principal {
                None => {
                    return Err(AppError::Unauthorized(format!("repository `{}` needs a token to read", repo.name())))
                }
                Some(p) if !p.allows(Scope::Read, Some(repo.name())) => {
                    return Err(AppError::Forbidden(format!(
                        "token `{}` may not read repository `{}`",
                        p.name,
                        repo.name()
                    )))
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// A fresh kept document for a read, if there is one: answered without a plugin call or a
    /// query (the HTTP layer calls this before going to a blocking thread).
    pub fn fresh_document(&self, repo: &Repository, req: &ClientRequest) -> Option<Arc<Kept>> {
        if !is_read(req) || self.may_read(repo, req).is_err() {
            return None;
        }
        let slot = self.documents.find(&doc_request(repo, req))?;
        self.fresh(repo, &slot)
    }

    /// The slot's document if no change it depends on came after its render, counted as a hit:
    /// the one freshness check of a read, on the async thread and on a blocking one alike.
    fn fresh(&self, repo: &Repository, slot: &Slot) -> Option<Arc<Kept>> {
        let kept = slot.current();
        kept.is_fresh(self.db.changes(), repo.name()).then(|| {
            self.documents.stats.hits.fetch_add(1, Ordering::Relaxed);
            kept
        })
    }

    fn serve_inner(&self, repo: &Repository, req: &mut ClientRequest) -> Result<Reply, AppError> {
        self.may_read(repo, req)?;
        if is_read(req) {
            if let Some(slot) = self.documents.find(&doc_request(repo, req)) {
                return self.serve_kept(repo, req, &slot);
            }
        }
        let body = match &req.body {
            Some(b) => BlobHandle::file(b.reopen()?).map_err(|e| anyhow::anyhow!("open request body: {e}"))?,
            None => BlobHandle::Memory(Vec::new()),
        };
        let wit_req = wit::Request {
            method: req.method.clone(),
            path: req.path.clone(),
            query: req.query.clone(),
            headers: req.headers.clone(),
            base_url: req.base_url.clone(),
            principal: req.principal.as_ref().map(|p| p.name.clone()),
        };
        // Taken before the plugin reads the view: the document reflects at least this much.
        let rendered_at = self.db.changes().seen();
        let principal = req.principal.as_ref().map(|p| p.name.as_str());
        let view: Arc<dyn crate::plugin::RegistryView> = if repo.is_group() {
            Arc::new(self.group_view(repo, principal)?)
        } else {
            RepositoryView::shared(self.db.clone(), repo, principal)
        };
        let mut outcome = repo.plugin.handle(&wit_req, body, view)??;
        if repo.is_group() {
            // Its members' changes are logged under their names, not the group's, so a kept
            // document of the group would never go stale: groups render every read.
            outcome.keep = None;
        }

        if let (true, true, Some(keep)) =
            (is_read(req) && req.method == "GET", outcome.effects.is_empty(), &outcome.keep)
        {
            if let wit::Reply::Respond(response) = outcome.reply {
                let request = wit::Request { principal: None, ..wit_req };
                let depends = documents::dependencies(keep, |n| repo.key(n));
                let kept = Kept::new(response, keep, depends, rendered_at, request);
                return Ok(Reply::Kept(self.documents.insert(&doc_request(repo, req), &keep.vary, kept)));
            }
        }
        if !outcome.effects.is_empty() {
            // A group's changes land in its first local member, authorised there.
            let target = if repo.is_group() { self.publish_target(repo)? } else { repo };
            self.authorize_effects(target, req, &outcome.effects)?;
            for effect in std::mem::take(&mut outcome.effects) {
                self.apply(target, req, effect)?;
            }
        }
        match outcome.reply {
            wit::Reply::Respond(r) => Ok(Reply::Response(r)),
            wit::Reply::ServeFile(f) if repo.is_group() => self.serve_group_file(repo, &f),
            // The server's address as this client reaches it, for the links of a quarantine answer.
            wit::Reply::FetchFile(f) if repo.is_group() => self.fetch_group_file(repo, &f, site_of(repo, req)),
            wit::Reply::ServeFile(f) => self.serve_file(repo, &f),
            wit::Reply::FetchFile(f) => self.fetch_file(repo, &f, site_of(repo, req)),
        }
    }

    /// A kept document: as it is while fresh; rendered again (one render at a time) when
    /// stale, and served stale only when that render fails.
    fn serve_kept(&self, repo: &Repository, req: &ClientRequest, slot: &Slot) -> Result<Reply, AppError> {
        if let Some(kept) = self.fresh(repo, slot) {
            return Ok(Reply::Kept(kept));
        }
        match self.render_again(repo, slot) {
            Rerender::Kept(kept) => Ok(Reply::Kept(kept)),
            Rerender::Answer(result) => {
                self.documents.remove(&doc_request(repo, req));
                result.map(Reply::Response)
            }
        }
    }

    /// Renders a stale kept document again: extends an append-only one with the changes since
    /// it was rendered (when the plugin can), else renders it whole. A failed render keeps the
    /// previous bytes (logged and counted; the next read or change tries again).
    pub fn render_again(&self, repo: &Repository, slot: &Slot) -> Rerender {
        let _one_render = slot.rendering.lock().unwrap_or_else(|e| e.into_inner());
        let kept = slot.current();
        let feed = self.db.changes();
        if kept.is_fresh(feed, repo.name()) {
            // Another reader rendered it while this one waited (not a hit: this read found it
            // stale).
            return Rerender::Kept(kept);
        }
        let rendered_at = feed.seen();
        let compact_after = std::time::Duration::from_secs(self.config.document_compact_secs);
        if kept.append_only && kept.whole_since.elapsed() < compact_after {
            match self.extend(repo, &kept, rendered_at) {
                Ok(Some(longer)) => {
                    self.documents.stats.appends.fetch_add(1, Ordering::Relaxed);
                    return Rerender::Kept(self.documents.replace(slot, longer));
                }
                Ok(None) => {}
                Err(e) => return self.keep_stale(repo, &kept, &e),
            }
        }
        if kept.layout.is_some() {
            match self.render_parts(repo, &kept, rendered_at) {
                Ok(Some(spliced)) => {
                    self.documents.stats.part_renders.fetch_add(1, Ordering::Relaxed);
                    return Rerender::Kept(self.documents.replace(slot, spliced));
                }
                Ok(None) => {}
                // The whole render below is the retry; if that fails too, the previous bytes
                // keep serving.
                Err(e) => tracing::warn!(
                    repository = repo.name(), path = %kept.request.path, error = %format!("{e:#}"),
                    "rendering a kept document's changed parts failed; rendering it whole"
                ),
            }
        }
        let view = RepositoryView::shared(self.db.clone(), repo, None);
        let rendered = repo.plugin.render(&kept.request, view).map_err(AppError::from);
        // A failure of the server or the plugin is no answer about the document: the previous
        // bytes keep serving. A client error (the package is gone) is the answer now.
        match rendered.and_then(|r| r.map_err(AppError::from)) {
            Err(e) if e.is_internal() => self.keep_stale(repo, &kept, &e),
            Err(e) => Rerender::Answer(Err(e)),
            Ok(outcome) => match (outcome.reply, outcome.keep, outcome.effects.is_empty()) {
                (wit::Reply::Respond(response), Some(keep), true) => {
                    self.documents.stats.renders.fetch_add(1, Ordering::Relaxed);
                    let depends = documents::dependencies(&keep, |n| repo.key(n));
                    Rerender::Kept(
                        self.documents
                            .replace(slot, Kept::new(response, &keep, depends, rendered_at, kept.request.clone())),
                    )
                }
                (wit::Reply::Respond(response), _, true) => Rerender::Answer(Ok(response)),
                _ => self.keep_stale(
                    repo,
                    &kept,
                    &AppError::Internal(anyhow::anyhow!("a render of a kept document asked for effects or a file")),
                ),
            },
        }
    }

    /// The append-only document with the lines for the changes since its render, or none to
    /// render it whole (the plugin asked for it, or the log no longer reaches back that far).
    fn extend(&self, repo: &Repository, kept: &Kept, rendered_at: u64) -> Result<Option<Kept>, AppError> {
        let Some((changes, newest)) = self.changes_since(repo, kept, 10_000, rendered_at, false)? else {
            return Ok(None);
        };
        let view = RepositoryView::shared(self.db.clone(), repo, None);
        Ok(repo.plugin.extend(&kept.request, &changes, view)??.map(|tail| kept.extended(&tail, newest)))
    }

    /// The document in parts with the parts the changes since its render touch spliced in, or
    /// none to render it whole: the plugin asked for it, too much changed for parts to pay, or
    /// the log no longer reaches back that far.
    fn render_parts(&self, repo: &Repository, kept: &Kept, rendered_at: u64) -> Result<Option<Kept>, AppError> {
        // Past this many changes a whole render costs about what the parts do.
        const MAX_CHANGES: u32 = 256;
        let Some((changes, newest)) = self.changes_since(repo, kept, MAX_CHANGES, rendered_at, true)? else {
            return Ok(None);
        };
        let view = RepositoryView::shared(self.db.clone(), repo, None);
        let Some(parts) = repo.plugin.render_parts(&kept.request, &changes, view)?? else { return Ok(None) };
        kept.spliced(&parts, newest).map(Some).map_err(|e| AppError::Internal(anyhow::anyhow!("splicing parts: {e}")))
    }

    /// The changes of the repository since `kept` was rendered, oldest first, and the change-log
    /// position the result reflects; with `own`, only those of the packages it depends on. None
    /// when more than `max` (the caller renders whole) or the log no longer reaches back.
    fn changes_since(
        &self,
        repo: &Repository,
        kept: &Kept,
        max: u32,
        rendered_at: u64,
        own: bool,
    ) -> Result<Option<(Vec<wit::Change>, u64)>, AppError> {
        let oldest = self.db.oldest_change(repo.name())?;
        if oldest > kept.rendered_at + 1 {
            return Ok(None);
        }
        let packages: Vec<&str> = kept
            .depends_on
            .iter()
            .filter_map(|d| match d {
                documents::Dependency::Package(key) => Some(key.as_str()),
                documents::Dependency::Repository => None,
            })
            .collect();
        let rows = if own && packages.len() == kept.depends_on.len() {
            let mut rows = Vec::new();
            for key in packages {
                rows.extend(self.db.package_changes_since(repo.name(), key, kept.rendered_at, max)?);
            }
            rows.sort_by_key(|r| r.seq);
            rows
        } else {
            self.db.changes_since(repo.name(), kept.rendered_at, max)?
        };
        if rows.len() as u32 >= max {
            return Ok(None);
        }
        // Whatever came after its render, the document now reflects the log up to this.
        let newest = rows.last().map(|r| r.seq as u64).unwrap_or(0).max(rendered_at);
        let changes = rows
            .into_iter()
            .map(|r| wit::Change {
                seq: r.seq as u64,
                package: r.name,
                kind: match r.kind.as_str() {
                    "added" => wit::ChangeKind::Added,
                    "removed" => wit::ChangeKind::Removed,
                    _ => wit::ChangeKind::Updated,
                },
                version: r.version,
                qualifier: r.qualifier,
                at_ms: r.at as u64,
            })
            .collect();
        Ok(Some((changes, newest)))
    }

    /// Serves the previous bytes after a failed render; any error of an extension counts, since
    /// a whole render comes next anyway. The detail is logged for the operator only.
    fn keep_stale(&self, repo: &Repository, kept: &Arc<Kept>, why: &AppError) -> Rerender {
        self.documents.stats.failed_renders.fetch_add(1, Ordering::Relaxed);
        self.documents.stats.stale_served.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            repository = repo.name(), path = %kept.request.path, error = %format!("{why:#}"),
            "rendering a kept document again failed; serving the previous one until a render succeeds"
        );
        Rerender::Kept(kept.clone())
    }

    /// Effects need the `publish` scope, except revoking one's own token, which needs a token.
    fn authorize_effects(
        &self,
        repo: &Repository,
        req: &ClientRequest,
        effects: &[wit::Effect],
    ) -> Result<(), AppError> {
        if effects.iter().all(|e| matches!(e, wit::Effect::RevokeToken(_))) {
            return match req.principal {
                Some(_) => Ok(()),
                None => Err(AppError::Unauthorized("authentication required: this needs a token".into())),
            };
        }
        match &req.principal {
            None => Err(AppError::Unauthorized(
                "authentication required: this needs a token with the `publish` scope".into(),
            )),
            Some(p) if !p.allows(Scope::Publish, Some(repo.name())) => {
                Err(AppError::Forbidden(format!("token `{}` may not publish to repository `{}`", p.name, repo.name())))
            }
            Some(_) => Ok(()),
        }
    }

    fn apply(&self, repo: &Repository, req: &mut ClientRequest, effect: wit::Effect) -> Result<(), AppError> {
        let name = repo.name();
        let result = match effect {
            wit::Effect::Publish(upload) => return self.publish_upload(repo, req, upload),
            wit::Effect::SetTag(t) => {
                self.db.set_tag(name, &repo.key(&t.package), &t.tag, t.version.as_deref(), repo.client_visibility())
            }
            wit::Effect::Deprecate(d) => {
                self.db.deprecate(name, &repo.key(&d.package), &d.version, d.message.as_deref())
            }
            wit::Effect::Yank(y) => {
                self.db.yank(name, &repo.key(&y.package), &y.version, y.qualifier.as_deref(), y.yanked)
            }
            wit::Effect::DeleteVersion(v) => {
                self.db.delete(name, &repo.key(&v.package), Some(&v.version)).map(|shas| {
                    tracing::info!(repository = name, package = %v.package, version = %v.version, "deleted version");
                    self.collect_blobs(&shas);
                })
            }
            wit::Effect::DeletePackage(p) => self.db.delete(name, &repo.key(&p), None).map(|shas| {
                tracing::info!(repository = name, package = %p, "deleted package");
                self.collect_blobs(&shas);
            }),
            wit::Effect::RevokeToken(key) => {
                let principal = req.principal.as_ref().expect("authorised before effects");
                self.db.revoke_token_named(&principal.name, &key).map(|()| {
                    tracing::info!(repository = name, token = %principal.name, "revoked a token through the client protocol");
                })
            }
        };
        Ok(result?)
    }

    /// Stores an uploaded file: write it to a pending blob, let the plugin parse it, refuse
    /// duplicates, then make blob and rows visible together.
    fn publish_upload(&self, repo: &Repository, req: &mut ClientRequest, upload: wit::Upload) -> Result<(), AppError> {
        let file_name = upload.file_name.clone();
        if file_name.is_empty() || file_name.contains(['/', '\\']) || file_name.starts_with('.') {
            // The plugin's fault, not the client's: a server error.
            return Err(AppError::Internal(anyhow::anyhow!(
                "plugin `{}` named an invalid file `{file_name}`",
                repo.plugin.name()
            )));
        }
        let limit = self.config.max_upload_mb << 20;
        let pending = match upload.source {
            wit::UploadSource::Body => req.body.take().ok_or_else(no_body)?,
            wit::UploadSource::BodyRange((offset, length)) => {
                self.write_blob(body_range(req, offset, length)?, limit)?
            }
            wit::UploadSource::BodyBase64Range((offset, length)) => {
                // Decoded while it is written: a large upload's text is never held whole, here or
                // in the plugin.
                let text = body_range(req, offset, length)?;
                let decoded = base64::read::DecoderReader::new(text, &base64::engine::general_purpose::STANDARD);
                self.write_blob_with(decoded, limit, |e| match e.kind() {
                    std::io::ErrorKind::InvalidData => {
                        AppError::BadRequest(format!("the package's base64 text is not valid: {e}"))
                    }
                    _ => AppError::Internal(anyhow::anyhow!("read the request body: {e}")),
                })?
            }
            wit::UploadSource::Bytes(bytes) => self.write_blob(&bytes[..], limit)?,
        };
        let principal = req.principal.as_ref().expect("authorised before effects");
        let push = NewPush {
            file_name: &file_name,
            pusher: Pusher {
                actor: &principal.name,
                token_id: Some(principal.token_id),
                token_name: Some(&principal.name),
                client_addr: req.client_addr.as_deref(),
                user_agent: req.user_agent.as_deref(),
                commit_sha: None,
            },
            tags: &upload.tags,
            package: upload.package.as_deref(),
        };
        self.publish_file(repo, pending, &push).map(|_| ())
    }

    /// Stores a package file as a push: the plugin parses it, the pipeline is planned, then the
    /// blob, the rows and the pipeline become visible together. Returns the push id.
    pub fn publish_file(&self, repo: &Repository, pending: PendingBlob, push: &NewPush) -> Result<i64, AppError> {
        let handle = BlobHandle::file(pending.reopen()?).map_err(|e| anyhow::anyhow!("open pending blob: {e}"))?;
        // A parse that traps or runs out of time or memory is the file's doing (a zip bomb, a
        // huge manifest): the client is told its package could not be read, not a 500.
        let meta = repo
            .plugin
            .parse(push.file_name, handle)
            .map_err(|e| AppError::BadRequest(format!("the package could not be read: {e}")))??;
        let key = repo.key(&meta.name);
        if let Some(expected) = push.package.filter(|p| repo.key(p) != key) {
            return Err(AppError::BadRequest(format!(
                "the file holds package `{}`, but it was published as `{expected}`",
                meta.name
            )));
        }
        // The README is stored beside the metadata, not in it: renders read every version's
        // metadata and never its README.
        let readme = meta.readme.clone();
        let metadata_json =
            serde_json::to_string(&wit::Metadata { readme: None, ..meta.clone() }).map_err(anyhow::Error::from)?;
        let digests = pending.digests.clone();
        let facts =
            PushFacts { meta: &meta, digests: &digests, file_name: push.file_name, commit_sha: push.pusher.commit_sha };
        let pipeline = Pipelines(self.0).plan_pipeline(repo, &facts).map_err(|e| match e {
            AppError::BadRequest(msg) => {
                AppError::BadRequest(format!("the repository's pipeline file is invalid: {msg}"))
            }
            other => other,
        })?;
        let new = NewFile {
            repository: repo.name(),
            key: &key,
            name: &meta.name,
            version: &meta.version,
            qualifier: &meta.qualifier,
            file_name: push.file_name,
            digests: &digests,
            metadata_json: &metadata_json,
            readme: readme.as_deref(),
            pusher: &push.pusher,
            released: gate::released_at_publish(repo.config.gate),
            tags: push.tags,
            pipeline: Some(&pipeline),
        };
        let (push_id, _) = self.db.publish(&new, move || pending.persist().map_err(|e| e.to_string()))?;
        tracing::info!(
            repository = repo.name(), package = %meta.name, version = %meta.version, push_id,
            sha256 = %digests.sha256, size = digests.size, actor = push.pusher.actor, "published"
        );
        match self.db.pipeline_of_push(push_id) {
            Ok(Some(p)) => Pipelines(self.0).advance_pipeline(p.id),
            Ok(None) => {}
            Err(e) => tracing::error!(push_id, error = %e, "pipeline of a new push not found"),
        }
        Ok(push_id)
    }

    pub(super) fn write_blob(&self, from: impl Read, limit: u64) -> Result<PendingBlob, AppError> {
        self.write_blob_with(from, limit, |e| AppError::Internal(anyhow::anyhow!("read a file to store: {e}")))
    }

    /// Like `write_blob`, with `read_error` naming what a failed read of `from` means.
    fn write_blob_with(
        &self,
        mut from: impl Read,
        limit: u64,
        read_error: impl Fn(std::io::Error) -> AppError,
    ) -> Result<PendingBlob, AppError> {
        let mut w = self.blobs.writer(limit)?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = from.read(&mut buf).map_err(&read_error)?;
            if n == 0 {
                break;
            }
            w.write_chunk(&buf[..n])?;
        }
        Ok(w.finish()?)
    }

    pub(super) fn serve_file(&self, repo: &Repository, f: &wit::FileRef) -> Result<Reply, AppError> {
        let not_found = || AppError::NotFound(format!("{} has no file {}", f.package, f.file_name));
        let (_, file) =
            self.db.file_by_name(repo.name(), &repo.key(&f.package), &f.file_name)?.ok_or_else(not_found)?;
        if !gate::visible(repo.config.gate, file.released) {
            return Err(not_found());
        }
        Ok(Reply::Blob { sha256: file.sha256, content_type: f.content_type.clone() })
    }

    /// The plugin's rendering of an error, in the contract's form (an internal failure's detail
    /// is logged there, in this repository's span, and the plugin gets the bare message); plain
    /// text with the kind's status when the plugin itself fails.
    pub fn render_error(&self, repo: &Repository, err: AppError) -> wit::Response {
        let _span = tracing::error_span!("client_protocol", repository = repo.name()).entered();
        if let AppError::Plugin(e) = &err {
            tracing::error!(error = %e, "a plugin call failed");
        }
        let status = err.status().as_u16();
        let err = wit::Error::from(err);
        match repo.plugin.render_error(&err) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(repository = repo.name(), error = %e, "render-error failed");
                wit::Response {
                    status,
                    headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
                    body: err.message.into_bytes(),
                }
            }
        }
    }
}

/// The server's external URL as the request reached it: its repository's base URL without the
/// repository.
fn site_of<'r>(repo: &Repository, req: &'r ClientRequest) -> &'r str {
    req.base_url.strip_suffix(&format!("/{}", repo.name())).unwrap_or(&req.base_url)
}

/// `length` bytes of the request body from `offset`, checked to lie inside it.
fn body_range(
    req: &ClientRequest,
    offset: u64,
    length: u64,
) -> Result<std::io::Take<std::io::BufReader<std::fs::File>>, AppError> {
    let body = req.body.as_ref().ok_or_else(no_body)?;
    if offset.checked_add(length).is_none_or(|end| end > body.digests.size) {
        return Err(AppError::BadRequest("the package part lies outside the request body".into()));
    }
    let mut file = body.reopen()?;
    file.seek(SeekFrom::Start(offset)).map_err(|e| anyhow::anyhow!("seek request body: {e}"))?;
    // Buffered: the base64 decoder reads in small pieces.
    Ok(std::io::BufReader::with_capacity(256 * 1024, file).take(length))
}

/// The plugin asked to store the body of a request that has none.
fn no_body() -> AppError {
    AppError::BadRequest("the request has no body".into())
}
