//! The native API under `/api/v1`: pushes (the audit log), repositories and their packages,
//! plugins, tokens. Every endpoint needs a token, and checks it before it looks a repository up,
//! so a caller learns nothing of which repositories exist; a resource named by id answers 404 to
//! a caller who may not read it, as if it did not exist (`access::require_or_hide`).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::{grants, Caller};
use super::blocking;
use super::openapi::{self as doc, Errors};
use crate::auth::{self, Scope};
use crate::domain::gate;
use crate::error::AppError;
use crate::registry::artifact_of;
use crate::store::db::ui::AuditPush;
use crate::store::db::Visibility;

/// The routes: `routes!` registers each handler at the path of its `#[utoipa::path]` block, which
/// also puts it in the OpenAPI document (see openapi.rs).
pub fn router() -> OpenApiRouter<super::State> {
    OpenApiRouter::new()
        .routes(routes!(list_pushes))
        .routes(routes!(get_push))
        .routes(routes!(list_repositories))
        .routes(routes!(list_packages))
        // A wildcard, which OpenAPI has no syntax for: documented in openapi.rs's ApiDoc.
        .route("/repositories/{repo}/packages/{*name}", get(get_package))
        .routes(routes!(sync_repository))
        .routes(routes!(get_sync_job))
        .routes(routes!(git_webhook))
        .routes(routes!(list_git_tags))
        .routes(routes!(list_held))
        .routes(routes!(release_pipeline))
        .routes(routes!(list_plugins))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PushQuery {
    /// Only this repository's pushes (a token limited to one repository sees only its own).
    repository: Option<String>,
    /// Only pushes with a smaller id: the next page.
    before: Option<i64>,
    /// At most this many (default 100, at most 1000).
    limit: Option<u32>,
}

/// The push audit log, newest first: who pushed what from where, and an admin's release of a
/// push past its pipeline (who, when, why).
#[utoipa::path(get, path = "/pushes", tag = "audit", params(PushQuery), security(("token" = ["read"])),
    responses((status = 200, body = doc::PushList), Errors))]
async fn list_pushes(
    State(reg): State<super::State>,
    caller: Caller,
    Query(q): Query<PushQuery>,
) -> Result<Json<Value>, AppError> {
    blocking(move || {
        let p = caller.authenticated()?;
        // A token limited to one repository sees that repository's pushes only.
        let repository = match (&p.repository, q.repository) {
            (Some(mine), Some(asked)) if *mine != asked => {
                return Err(AppError::Forbidden(format!("token `{}` is limited to `{mine}`", p.name)))
            }
            (Some(mine), _) => Some(mine.clone()),
            (None, asked) => asked,
        };
        if !grants(&p, Scope::Read, repository.as_deref()) {
            return Err(AppError::Forbidden(format!("token `{}` may not read pushes", p.name)));
        }
        let pushes = reg.db.audit_pushes(repository.as_deref(), q.before, q.limit.unwrap_or(100).min(1000))?;
        Ok(Json(json!({ "pushes": pushes })))
    })
    .await
}

/// One push, with an admin's release of it past its pipeline (who, when, why) if there was one.
#[utoipa::path(get, path = "/pushes/{id}", tag = "audit", params(("id" = i64, Path)), security(("token" = ["read"])),
    responses((status = 200, body = AuditPush), Errors))]
async fn get_push(
    State(reg): State<super::State>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, AppError> {
    blocking(move || {
        let missing = || format!("push {id}");
        let push = reg.db.audit_push(id)?.ok_or_else(|| AppError::not_found(missing()))?;
        caller.require_or_hide(Scope::Read, &push.push.repository, missing)?;
        Ok(Json(json!(push)))
    })
    .await
}

/// The repositories the token may read (public ones for every token).
#[utoipa::path(get, path = "/repositories", tag = "repositories", security(("token" = [])),
    responses((status = 200, body = doc::RepositoryList), Errors))]
async fn list_repositories(State(reg): State<super::State>, caller: Caller) -> Result<Json<Value>, AppError> {
    blocking(move || {
        let p = caller.authenticated()?;
        let repos: Vec<Value> = reg
            .repositories
            .values()
            .filter(|r| !r.private() || grants(&p, Scope::Read, Some(r.name())))
            .map(|r| {
                json!({
                    "name": r.name(),
                    "format": r.plugin.name(),
                    "plugin": r.plugin.source,
                    "gate": r.config.gate,
                    "read": r.config.read,
                })
            })
            .collect();
        Ok(Json(json!({ "repositories": repos })))
    })
    .await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PackageQuery {
    /// Only packages whose name contains this.
    q: Option<String>,
    /// Skip this many.
    offset: Option<u32>,
    /// At most this many (default 50, at most 500).
    limit: Option<u32>,
}

/// A repository's packages, by name, paged.
#[utoipa::path(get, path = "/repositories/{repo}/packages", tag = "repositories",
    params(("repo" = String, Path), PackageQuery), security(("token" = ["read"])),
    responses((status = 200, body = doc::PackageList), Errors))]
async fn list_packages(
    State(reg): State<super::State>,
    caller: Caller,
    Path(repo): Path<String>,
    Query(q): Query<PackageQuery>,
) -> Result<Json<Value>, AppError> {
    blocking(move || {
        caller.require(Scope::Read, Some(&repo))?;
        reg.repository(&repo)?;
        let (total, packages) = reg.db.search(
            &repo,
            q.q.as_deref().unwrap_or(""),
            q.offset.unwrap_or(0),
            q.limit.unwrap_or(50).min(500),
            Visibility::All,
        )?;
        let packages: Vec<Value> = packages
            .iter()
            .map(|p| json!({ "name": p.package.name, "versions": p.files.len(), "modified_at": p.package.modified_at }))
            .collect();
        Ok(Json(json!({ "total": total, "packages": packages })))
    })
    .await
}

/// A package with its files (every version, released or not) and tags. The name may contain `/`.
#[utoipa::path(get, path = "/api/v1/repositories/{repo}/packages/{name}", tag = "repositories",
    params(("repo" = String, Path), ("name" = String, Path, description = "The package name; may contain `/` (scoped names)")),
    security(("token" = ["read"])), responses((status = 200, body = doc::PackageDetail), Errors))]
pub(super) async fn get_package(
    State(reg): State<super::State>,
    caller: Caller,
    Path((repo, name)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    blocking(move || {
        caller.require(Scope::Read, Some(&repo))?;
        let repository = reg.repository(&repo)?;
        let p = reg
            .db
            .package(&repo, &repository.key(&name), Visibility::All)?
            .ok_or_else(|| AppError::not_found(format!("package `{name}`")))?;
        let files: Vec<Value> = p
            .files
            .iter()
            .map(|f| {
                let mut a = artifact_of(f);
                // The README is stored beside the metadata (renders never read it); the API shows it in.
                a.metadata.readme = reg.db.file_readme(f.id).ok().flatten();
                let pipeline = reg.db.pipeline_of_push(f.push_id).ok().flatten();
                json!({
                    "pipeline": pipeline.map(|p| json!({ "id": p.id, "status": p.status })),
                    "version": f.version,
                    "qualifier": f.qualifier,
                    "file_name": f.file_name,
                    "size": f.size,
                    "sha256": f.sha256,
                    "push_id": f.push_id,
                    "created_at": f.created_at,
                    "released": gate::visible(repository.config.gate, f.released),
                    "deprecated": f.deprecated,
                    "yanked": f.yanked,
                    "metadata": a.metadata,
                })
            })
            .collect();
        Ok(Json(json!({
            "repository": repo,
            "name": p.package.name,
            "created_at": p.package.created_at,
            "modified_at": p.package.modified_at,
            "tags": p.tags.iter().map(|(t, v)| (t.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "files": files,
        })))
    })
    .await
}

/// What a gated repository holds back from clients (the web UI's held view, as JSON).
#[utoipa::path(get, path = "/repositories/{repo}/held", tag = "repositories",
    params(("repo" = String, Path), PackageQuery), security(("token" = ["read"])),
    responses((status = 200, body = doc::HeldList), Errors))]
async fn list_held(
    State(reg): State<super::State>,
    caller: Caller,
    Path(repo): Path<String>,
    Query(q): Query<PackageQuery>,
) -> Result<Json<Value>, AppError> {
    blocking(move || {
        caller.require(Scope::Read, Some(&repo))?;
        let repository = reg.repository(&repo)?;
        let (total, held) =
            super::ui::gate::held(&reg, repository, q.offset.unwrap_or(0), q.limit.unwrap_or(50).min(500))?;
        Ok(Json(json!({ "repository": repo, "gated": repository.gated(), "total": total, "held": held })))
    })
    .await
}

#[derive(Deserialize, Default, ToSchema)]
struct ReleaseBody {
    /// Why the version is released past its pipeline (a quarantined public package that was
    /// checked by hand, a false positive): one line, trimmed, kept with the release (the
    /// pipeline's `release`, the audit log's push). Required past a failed pipeline (400
    /// without); optional past one still running, waiting for approval or canceled.
    #[schema(max_length = 1000, example = "reviewed by hand: a false positive")]
    reason: Option<String>,
}

/// An admin lets clients have a held version now, whatever its pipeline says (in a gated proxy:
/// a version in quarantine); recorded on the pipeline (who, when, why: see `GET
/// /pipelines/{id}` and the push audit log) and in the server's log. Overriding a failed
/// pipeline needs a `reason`.
#[utoipa::path(post, path = "/pipelines/{id}/release", tag = "pipelines", params(("id" = i64, Path)),
    request_body(content = ReleaseBody, description = "Required with a `reason` past a failed pipeline; optional otherwise"),
    security(("token" = ["admin"])), responses((status = 200, body = doc::Released), Errors))]
async fn release_pipeline(
    State(reg): State<super::State>,
    caller: Caller,
    Path(id): Path<i64>,
    body: Option<Json<ReleaseBody>>,
) -> Result<Json<Value>, AppError> {
    let reason = body.and_then(|b| b.0.reason);
    blocking(move || {
        let missing = || format!("pipeline {id}");
        let (p, _) = reg.db.pipeline(id)?.ok_or_else(|| AppError::not_found(missing()))?;
        let admin = caller.require_or_hide(Scope::Admin, &p.repository, missing)?;
        let release = super::ui::gate::release(&reg, &p, &admin.name, reason.as_deref())?;
        tracing::info!(
            repository = %p.repository, pipeline = p.id, push_id = p.push_id, released_by = %admin.name,
            token_id = admin.token_id, reason = release.reason.as_deref().unwrap_or("(none given)"),
            "release of a held version through the API"
        );
        Ok(Json(json!({ "pipeline": {
            "id": p.id, "repository": p.repository, "push_id": p.push_id, "status": p.status,
            "released_by": release.released_by, "released_at": release.released_at,
            "release_reason": release.reason,
        } })))
    })
    .await
}

/// The loaded format plugins.
#[utoipa::path(get, path = "/plugins", tag = "meta", security(("token" = [])),
    responses((status = 200, body = doc::PluginList), Errors))]
async fn list_plugins(State(reg): State<super::State>, caller: Caller) -> Result<Json<Value>, AppError> {
    blocking(move || {
        caller.authenticated()?;
        let plugins: Vec<Value> = reg
            .plugins
            .values()
            .map(|p| json!({ "name": p.name(), "source": p.source, "sha256": p.sha256, "info": p.info }))
            .collect();
        Ok(Json(json!({ "plugins": plugins })))
    })
    .await
}

#[derive(Deserialize, ToSchema)]
struct NewToken {
    #[schema(pattern = r"\S", example = "ci-publisher")]
    name: String,
    /// Comma-separated scopes: `read`, `publish`, `admin`, `runner`.
    #[schema(
        pattern = r"^ *(read|publish|admin|runner) *(, *(read|publish|admin|runner) *)*$",
        example = "read,publish"
    )]
    scopes: String,
    /// Limits the token to this repository.
    repository: Option<String>,
    /// A lifetime such as `90d`; none: the token never expires.
    expires: Option<String>,
}

/// Issues a token; its secret is in this answer only.
#[utoipa::path(post, path = "/tokens", tag = "tokens", request_body = NewToken, security(("token" = ["admin"])),
    responses((status = 200, body = doc::IssuedToken), Errors))]
async fn create_token(
    State(reg): State<super::State>,
    caller: Caller,
    Json(t): Json<NewToken>,
) -> Result<Json<Value>, AppError> {
    blocking(move || {
        caller.require(Scope::Admin, None)?;
        if let Some(r) = &t.repository {
            reg.repository(r)?;
        }
        let issued = auth::issue_token(&reg.db, &t.name, &t.scopes, t.repository.as_deref(), t.expires.as_deref())?;
        Ok(Json(json!({ "id": issued.id, "name": t.name, "token": issued.secret, "expires_at": issued.expires_at })))
    })
    .await
}

/// Every token (never their secrets), with its last use, for admins.
#[utoipa::path(get, path = "/tokens", tag = "tokens", security(("token" = ["admin"])),
    responses((status = 200, body = doc::TokenList), Errors))]
async fn list_tokens(State(reg): State<super::State>, caller: Caller) -> Result<Json<Value>, AppError> {
    blocking(move || {
        caller.require(Scope::Admin, None)?;
        Ok(Json(json!({ "tokens": reg.db.tokens()? })))
    })
    .await
}

/// Revokes a token; it is refused from the next request on, on every replica.
#[utoipa::path(delete, path = "/tokens/{id}", tag = "tokens", params(("id" = i64, Path)), security(("token" = ["admin"])),
    responses((status = 200, body = doc::Revoked), Errors))]
async fn revoke_token(
    State(reg): State<super::State>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, AppError> {
    blocking(move || {
        let admin = caller.require(Scope::Admin, None)?;
        reg.db.revoke_token(id)?;
        tracing::info!(token = id, by = %admin.name, "token revoked");
        Ok(Json(json!({ "id": id, "revoked": true })))
    })
    .await
}

/// Starts a background sync of a git-tag repository's sources: 202 with the job to poll.
#[utoipa::path(post, path = "/repositories/{repo}/sync", tag = "repositories", params(("repo" = String, Path)),
    security(("token" = ["publish"])), responses((status = 202, body = doc::SyncJobAnswer), Errors))]
async fn sync_repository(
    State(reg): State<super::State>,
    caller: Caller,
    Path(repo): Path<String>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    blocking(move || {
        let p = caller.require(Scope::Publish, Some(&repo))?;
        let repository = reg.repository(&repo)?;
        let job = crate::registry::start_sync(&reg, repository, &p.name)?;
        Ok((StatusCode::ACCEPTED, Json(sync_job_json(&job))))
    })
    .await
}

fn sync_job_json(job: &crate::app::git_sync::SyncJob) -> Value {
    json!({ "job": job, "url": format!("/api/v1/repositories/{}/sync/{}", job.repository, job.id) })
}

/// A sync job's state, progress and (once done) report.
#[utoipa::path(get, path = "/repositories/{repo}/sync/{id}", tag = "repositories",
    params(("repo" = String, Path), ("id" = u64, Path)), security(("token" = ["read"])),
    responses((status = 200, body = doc::SyncJobAnswer), Errors))]
async fn get_sync_job(
    State(reg): State<super::State>,
    caller: Caller,
    Path((repo, id)): Path<(String, u64)>,
) -> Result<Json<Value>, AppError> {
    blocking(move || {
        caller.require(Scope::Read, Some(&repo))?;
        reg.repository(&repo)?;
        let job = crate::registry::sync_job(&reg, &repo, id)
            .ok_or_else(|| AppError::not_found(format!("no sync job {id} in `{repo}`")))?;
        Ok(Json(sync_job_json(&job)))
    })
    .await
}

/// A git host's push webhook (GitHub, GitLab, Gitea/Forgejo), verified with the repository's
/// `webhook_secret`; a tag push starts a background sync (git hosts wait seconds, not minutes).
/// Authenticated by the delivery's signature (`X-Hub-Signature-256`, `X-Gitea-Signature`,
/// `X-Gitlab-Token`), not a token.
#[utoipa::path(post, path = "/repositories/{repo}/webhook", tag = "repositories", params(("repo" = String, Path)),
    request_body(content = Object, description = "The git host's push event, as it sends it"), security(()),
    responses((status = 200, description = "Verified, nothing to sync", body = doc::WebhookAnswer),
        (status = 202, description = "A tag push: sync started", body = doc::WebhookAnswer), Errors))]
async fn git_webhook(
    State(reg): State<super::State>,
    headers: HeaderMap,
    Path(repo): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), AppError> {
    blocking(move || {
        let repository = reg.repository(&repo)?;
        let secret = repository.config.webhook_secret.clone().unwrap_or_default();
        let event = crate::git_source::verify_webhook(&headers, &body, &secret).map_err(|e| match e {
            crate::git_source::WebhookError::InvalidPayload(_) => AppError::BadRequest(e.to_string()),
            other => AppError::Unauthorized(other.to_string()),
        })?;
        // A verified delivery is acted on once: a replay of the same signed body is ignored.
        if let Some(id) = delivery_id(&headers) {
            if !reg.db.record_webhook_receipt(&repo, &id)? {
                tracing::warn!(repository = %repo, delivery = %id, "replayed git webhook delivery ignored");
                return Ok((
                    StatusCode::OK,
                    Json(json!({ "synced": false, "reason": "this delivery was already received" })),
                ));
            }
        }
        if !event.is_tag_push {
            return Ok((StatusCode::OK, Json(json!({ "synced": false, "reason": "not a tag push" }))));
        }
        let actor = format!("{}:{}", event.provider, event.sender);
        let job = crate::registry::start_sync(&reg, repository, &actor)?;
        let mut answer = sync_job_json(&job);
        answer["synced"] = json!(true);
        answer["actor"] = json!(actor);
        Ok((StatusCode::ACCEPTED, Json(answer)))
    })
    .await
}

/// The id a git host gives each webhook delivery (GitHub, Gitea, Forgejo, GitLab).
fn delivery_id(headers: &HeaderMap) -> Option<String> {
    ["x-github-delivery", "x-gitea-delivery", "x-forgejo-delivery", "x-gitlab-event-uuid", "x-gitlab-webhook-uuid"]
        .iter()
        .find_map(|h| headers.get(*h))
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty() && v.len() <= 200)
}

/// The git tags a git-tag repository has seen, with what became of each.
#[utoipa::path(get, path = "/repositories/{repo}/git-tags", tag = "repositories", params(("repo" = String, Path)),
    security(("token" = ["read"])), responses((status = 200, body = doc::GitTagList), Errors))]
async fn list_git_tags(
    State(reg): State<super::State>,
    caller: Caller,
    Path(repo): Path<String>,
) -> Result<Json<Value>, AppError> {
    blocking(move || {
        caller.require(Scope::Read, Some(&repo))?;
        reg.repository(&repo)?;
        Ok(Json(json!({ "tags": reg.db.git_tags(&repo)? })))
    })
    .await
}
