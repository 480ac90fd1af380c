//! Serving a format's client protocol: the plugin's `handle` decides, the host authorises and
//! carries out the effects, then replies.

use std::io::{Read, Seek, SeekFrom};

use crate::auth::{Principal, Scope};
use crate::pipeline::{gate, PushFacts};
use crate::plugin::{wit, BlobHandle, CallError};
use crate::store::db::{DbError, NewFile, Pusher};
use crate::store::PendingBlob;

use super::view::RepositoryView;
use super::{Registry, Repository};

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
    /// A stored file, served by the HTTP layer from the blob store (streamed, or a redirect).
    Blob {
        sha256: String,
        content_type: String,
    },
}

/// The HTTP status of an error kind, before the plugin shapes the response.
pub fn status_of(kind: wit::ErrorKind) -> u16 {
    use wit::ErrorKind::*;
    match kind {
        Invalid => 400,
        NotFound => 404,
        Gone => 410,
        Unauthorized => 401,
        Forbidden => 403,
        Conflict => 409,
        TooLarge => 413,
        Unsupported => 405,
        Internal => 500,
    }
}

fn error(kind: wit::ErrorKind, message: impl Into<String>) -> wit::Error {
    wit::Error { kind, message: message.into() }
}

impl Registry {
    /// Serves one protocol request of `repo`. Never fails: every error becomes the response the
    /// format's clients understand.
    pub fn serve_client(&self, repo: &Repository, mut req: ClientRequest) -> Reply {
        match self.serve_inner(repo, &mut req) {
            Ok(reply) => reply,
            Err(err) => Reply::Response(self.render_error(repo, err)),
        }
    }

    fn serve_inner(&self, repo: &Repository, req: &mut ClientRequest) -> Result<Reply, wit::Error> {
        use wit::ErrorKind::{Forbidden, Internal, Unauthorized};
        if req.bad_credential {
            return Err(error(Unauthorized, "the token is not valid (it may have been revoked)"));
        }
        if repo.private() {
            match &req.principal {
                None => return Err(error(Unauthorized, format!("repository `{}` needs a token to read", repo.name()))),
                Some(p) if !p.allows(Scope::Read, Some(repo.name())) => {
                    return Err(error(
                        Forbidden,
                        format!("token `{}` may not read repository `{}`", p.name, repo.name()),
                    ))
                }
                Some(_) => {}
            }
        }
        let body = match &req.body {
            Some(b) => BlobHandle::file(b.reopen().map_err(|e| error(Internal, e.to_string()))?)
                .map_err(|e| error(Internal, format!("open request body: {e}")))?,
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
        let view = RepositoryView::shared(self.db.clone(), repo);
        let outcome = repo.plugin.handle(&wit_req, body, view).map_err(call_failed)??;

        if !outcome.effects.is_empty() {
            self.authorize_write(repo, req)?;
        }
        for effect in outcome.effects {
            self.apply(repo, req, effect)?;
        }
        match outcome.reply {
            wit::Reply::Respond(r) => Ok(Reply::Response(r)),
            wit::Reply::ServeFile(f) => self.serve_file(repo, &f),
        }
    }

    fn authorize_write(&self, repo: &Repository, req: &ClientRequest) -> Result<(), wit::Error> {
        match &req.principal {
            None => Err(error(
                wit::ErrorKind::Unauthorized,
                "authentication required: this needs a token with the `publish` scope",
            )),
            Some(p) if !p.allows(Scope::Publish, Some(repo.name())) => Err(error(
                wit::ErrorKind::Forbidden,
                format!("token `{}` may not publish to repository `{}`", p.name, repo.name()),
            )),
            Some(_) => Ok(()),
        }
    }

    fn apply(&self, repo: &Repository, req: &mut ClientRequest, effect: wit::Effect) -> Result<(), wit::Error> {
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
        };
        result.map_err(db_error)
    }

    /// Stores an uploaded file: write it to a pending blob, let the plugin parse it, refuse
    /// duplicates, then make blob and rows visible together.
    fn publish_upload(
        &self,
        repo: &Repository,
        req: &mut ClientRequest,
        upload: wit::Upload,
    ) -> Result<(), wit::Error> {
        use wit::ErrorKind::{Internal, Invalid};
        let file_name = upload.file_name.clone();
        if file_name.is_empty() || file_name.contains(['/', '\\']) || file_name.starts_with('.') {
            return Err(error(
                Internal,
                format!("plugin `{}` named an invalid file `{file_name}`", repo.plugin.name()),
            ));
        }
        let limit = self.config.max_upload_mb << 20;
        let pending = match upload.source {
            wit::UploadSource::Body => req.body.take().ok_or_else(|| error(Invalid, "the request has no body"))?,
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
                        error(Invalid, format!("the package's base64 text is not valid: {e}"))
                    }
                    _ => error(Internal, e.to_string()),
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
    pub fn publish_file(&self, repo: &Repository, pending: PendingBlob, push: &NewPush) -> Result<i64, wit::Error> {
        use wit::ErrorKind::{Internal, Invalid};
        let file = pending.reopen().map_err(|e| error(Internal, e.to_string()))?;
        let handle = BlobHandle::file(file).map_err(|e| error(Internal, format!("open pending blob: {e}")))?;
        let meta = repo
            .plugin
            .parse(push.file_name, handle)
            .map_err(|e| error(Invalid, format!("the package could not be read: {e}")))??;
        let key = repo.key(&meta.name);
        if let Some(expected) = push.package.filter(|p| repo.key(p) != key) {
            return Err(error(
                Invalid,
                format!("the file holds package `{}`, but it was published as `{expected}`", meta.name),
            ));
        }
        let metadata_json = serde_json::to_string(&meta).map_err(|e| error(Internal, e.to_string()))?;
        let digests = pending.digests.clone();
        let facts =
            PushFacts { meta: &meta, digests: &digests, file_name: push.file_name, commit_sha: push.pusher.commit_sha };
        let pipeline = self.plan_pipeline(repo, &facts).map_err(|e| match e {
            crate::error::AppError::BadRequest(msg) => {
                error(Invalid, format!("the repository's pipeline file is invalid: {msg}"))
            }
            other => error(Internal, other.to_string()),
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
            pusher: &push.pusher,
            released: gate::released_at_publish(repo.config.gate),
            tags: push.tags,
            pipeline: Some(&pipeline),
        };
        let (push_id, _) = self
            .db
            .publish(&new, move || pending.persist().map(|_| ()).map_err(|e| e.to_string()))
            .map_err(db_error)?;
        tracing::info!(
            repository = repo.name(), package = %meta.name, version = %meta.version, push_id,
            sha256 = %digests.sha256, size = digests.size, actor = push.pusher.actor, "published"
        );
        match self.db.pipeline_of_push(push_id) {
            Ok(Some(p)) => self.advance_pipeline(p.id),
            Ok(None) => {}
            Err(e) => tracing::error!(push_id, error = %e, "pipeline of a new push not found"),
        }
        Ok(push_id)
    }

    pub(super) fn write_blob(&self, from: impl Read, limit: u64) -> Result<PendingBlob, wit::Error> {
        self.write_blob_with(from, limit, |e| error(wit::ErrorKind::Internal, e.to_string()))
    }

    /// Like `write_blob`, with `read_error` naming what a failed read of `from` means.
    fn write_blob_with(
        &self,
        mut from: impl Read,
        limit: u64,
        read_error: impl Fn(std::io::Error) -> wit::Error,
    ) -> Result<PendingBlob, wit::Error> {
        let internal = |e: &dyn std::fmt::Display| error(wit::ErrorKind::Internal, e.to_string());
        let mut w = self.blobs.writer(limit).map_err(|e| internal(&e))?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = from.read(&mut buf).map_err(&read_error)?;
            if n == 0 {
                break;
            }
            w.write_chunk(&buf[..n]).map_err(|e| match e {
                crate::store::BlobError::TooLarge { .. } => error(wit::ErrorKind::TooLarge, e.to_string()),
                other => internal(&other),
            })?;
        }
        w.finish().map_err(|e| internal(&e))
    }

    fn serve_file(&self, repo: &Repository, f: &wit::FileRef) -> Result<Reply, wit::Error> {
        let not_found = || error(wit::ErrorKind::NotFound, format!("{} has no file {}", f.package, f.file_name));
        let (_, file) = self
            .db
            .file_by_name(repo.name(), &repo.key(&f.package), &f.file_name)
            .map_err(db_error)?
            .ok_or_else(not_found)?;
        if !gate::visible(repo.config.gate, file.released) {
            return Err(not_found());
        }
        Ok(Reply::Blob { sha256: file.sha256, content_type: f.content_type.clone() })
    }

    /// The plugin's rendering of an error; plain text when the plugin itself fails.
    pub fn render_error(&self, repo: &Repository, err: wit::Error) -> wit::Response {
        if err.kind == wit::ErrorKind::Internal {
            tracing::error!(repository = repo.name(), error = %err.message, "internal error");
        }
        let status = status_of(err.kind);
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

/// `length` bytes of the request body from `offset`, checked to lie inside it.
fn body_range(
    req: &ClientRequest,
    offset: u64,
    length: u64,
) -> Result<std::io::Take<std::io::BufReader<std::fs::File>>, wit::Error> {
    use wit::ErrorKind::{Internal, Invalid};
    let body = req.body.as_ref().ok_or_else(|| error(Invalid, "the request has no body"))?;
    if offset.checked_add(length).is_none_or(|end| end > body.digests.size) {
        return Err(error(Invalid, "the package part lies outside the request body"));
    }
    let mut file = body.reopen().map_err(|e| error(Internal, e.to_string()))?;
    file.seek(SeekFrom::Start(offset)).map_err(|e| error(Internal, format!("seek request body: {e}")))?;
    // Buffered: the base64 decoder reads in small pieces.
    Ok(std::io::BufReader::with_capacity(256 * 1024, file).take(length))
}

/// A failed plugin call as the error the client gets (and the log records, in `render_error`).
fn call_failed(e: CallError) -> wit::Error {
    error(wit::ErrorKind::Internal, e.to_string())
}

fn db_error(e: DbError) -> wit::Error {
    match e {
        DbError::Conflict(what) => error(wit::ErrorKind::Conflict, format!("{what} already exists")),
        DbError::NotFound(what) => error(wit::ErrorKind::NotFound, format!("{what} not found")),
        other => {
            tracing::error!(error = %other, "store failure");
            error(wit::ErrorKind::Internal, "internal server error (details are in the server log)")
        }
    }
}
