//! The UI's pages. Each handler runs on a blocking thread (SQLite, plugin calls), checks what
//! the viewer may read, and renders a template; lists are paginated.

use axum::extract::{Form, OriginalUri, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{html_response, moving, moving_word, render, UiError, Viewer};
use crate::app::App;
use crate::error::AppError;
use crate::http::access::{self, Caller};
use crate::http::State as AppState;
use crate::pipeline::Pipelines;
use crate::plugin::wit;
use crate::registry::artifact_of;

/// Packages and versions per page.
const PAGE: u32 = 50;
/// Pushes per page of the activity list.
const PUSHES_PAGE: u32 = 50;

/// Runs `f` on a blocking thread with the viewer, rendering any error as a page.
pub(super) async fn page(
    reg: AppState,
    caller: Caller,
    f: impl FnOnce(&App, &Viewer) -> Result<Response, UiError> + Send + 'static,
) -> Response {
    let out = tokio::task::spawn_blocking(move || {
        let viewer = match Viewer::of(&caller) {
            Ok(v) => v,
            Err(e) => return e.into_page(None),
        };
        match f(&reg, &viewer) {
            Ok(r) => r,
            Err(e) => e.into_page(viewer.name()),
        }
    })
    .await;
    out.unwrap_or_else(|e| UiError::App(AppError::Internal(anyhow::anyhow!("page task failed: {e}"))).into_page(None))
}

pub(super) fn ok(name: &str, viewer: &Viewer, ctx: Value) -> Result<Response, UiError> {
    ok_with(StatusCode::OK, name, viewer, ctx)
}

/// Renders a page for the viewer, with the session's CSRF token for its forms.
pub(super) fn ok_with(status: StatusCode, name: &str, viewer: &Viewer, mut ctx: Value) -> Result<Response, UiError> {
    if let Value::Object(map) = &mut ctx {
        map.insert("csrf".into(), json!(viewer.csrf));
    }
    Ok(html_response(status, render(name, viewer.name(), ctx)?))
}

/// The path and query the request asked for, to come back to after signing in.
pub(super) fn here(uri: &OriginalUri) -> String {
    uri.0.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into())
}

// ---- repositories ------------------------------------------------------------------------------

pub async fn repositories(State(reg): State<AppState>, caller: Caller) -> Response {
    page(reg, caller, |reg, viewer| {
        let mut repos = Vec::new();
        for r in reg.repositories.values() {
            let readable = viewer.can_read(r);
            let counts = if readable { Some(reg.db.ui_repository_counts(r.name())?) } else { None };
            repos.push(json!({
                "name": r.name(),
                "format": r.plugin.info.display_name,
                "format_name": r.plugin.name(),
                "plugin": r.plugin.source,
                "gate": r.config.gate,
                "private": r.private(),
                "readable": readable,
                "packages": counts.map(|c| c.0),
                "files": counts.map(|c| c.1),
            }));
        }
        ok("repositories.html", viewer, json!({ "title": "Repositories", "repositories": repos }))
    })
    .await
}

// ---- packages of a repository --------------------------------------------------------------------

#[derive(Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    page: Option<u32>,
}

pub async fn packages(
    State(reg): State<AppState>,
    caller: Caller,
    uri: OriginalUri,
    Path(repo): Path<String>,
    Query(q): Query<ListQuery>,
) -> Response {
    page(reg, caller, move |reg, viewer| {
        let repository = viewer.repository(reg, &repo, &here(&uri))?;
        let query = q.q.unwrap_or_default().trim().to_string();
        let page_no = q.page.unwrap_or(1).max(1);
        let (total, packages) = reg.db.ui_packages(&repo, &query, (page_no - 1).saturating_mul(PAGE), PAGE)?;
        ok(
            "packages.html",
            viewer,
            json!({
                "title": repo,
                "repo": repo,
                "format": repository.plugin.info.display_name,
                "gated": repository.gated(),
                "private": repository.private(),
                "query": query,
                "total": total,
                "packages": packages,
                "page": page_no,
                "pages": pages(total, PAGE),
            }),
        )
    })
    .await
}

pub(super) fn pages(total: i64, per: u32) -> i64 {
    ((total + per as i64 - 1) / per as i64).max(1)
}

// ---- one package ---------------------------------------------------------------------------------

#[derive(Deserialize)]
pub struct PackageQuery {
    version: Option<String>,
    page: Option<u32>,
}

pub async fn package(
    State(reg): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    uri: OriginalUri,
    Path((repo, name)): Path<(String, String)>,
    Query(q): Query<PackageQuery>,
) -> Response {
    let base = crate::http::external_url(&reg, &headers);
    page(reg, caller, move |reg, viewer| {
        let repository = viewer.repository(reg, &repo, &here(&uri))?;
        let package = reg
            .db
            .ui_package(&repo, &repository.key(&name))?
            .ok_or_else(|| UiError::App(AppError::not_found(format!("package `{name}`"))))?;
        let page_no = q.page.unwrap_or(1).max(1);
        let (total, files) = reg.db.ui_files(package.id, (page_no - 1).saturating_mul(PAGE), PAGE)?;
        if total == 0 {
            return Err(UiError::App(AppError::not_found(format!("package `{name}`"))));
        }
        let selected = reg.db.ui_version(package.id, q.version.as_deref())?;
        let Some(first) = selected.first() else {
            return Err(UiError::App(AppError::not_found(format!(
                "version {} of `{name}`",
                q.version.unwrap_or_default()
            ))));
        };
        let version = first.file.version.clone();
        let meta = artifact_of(&first.file).metadata;
        // The shown version's README, rendered and sanitised; the raw text stays out of the page.
        let readme = reg.db.file_readme(first.file.id)?.as_deref().and_then(super::readme::render);
        let hint = &repository.plugin.info.install_hint;
        let install = (!hint.is_empty()).then(|| {
            hint.replace("{url}", &format!("{base}/{repo}"))
                .replace("{name}", &package.name)
                .replace("{version}", &version)
        });
        let tags = reg.db.ui_tags(package.id)?;
        // Why a gated version is held (its pipeline's failed or waiting jobs, the failed logs'
        // last lines), or who released it past its pipeline.
        let mut files_of_version = Vec::with_capacity(selected.len());
        for f in &selected {
            let mut v = json!(f);
            if let Some(pid) = f.pipeline_id {
                if repository.gated() && !f.file.released {
                    v["held"] = json!(super::gate::why_held(reg, pid)?);
                }
                v["release"] = json!(reg.db.ui_release_of(pid)?);
            }
            files_of_version.push(v);
        }
        let badge_path =
            format!("/api/v1/repositories/{repo}/packages/{}/badge.svg", super::filters::pathenc(package.name.clone()));
        ok(
            "package.html",
            viewer,
            json!({
                "title": package.name,
                "repo": repo,
                "gated": repository.gated(),
                "package": package,
                "version": version,
                "selected": files_of_version,
                "meta": meta,
                "readme": readme,
                "install": install,
                "tags": tags,
                "files": files,
                "total": total,
                "page": page_no,
                "pages": pages(total, PAGE),
                "badge_path": badge_path,
                "badge_url": format!("{base}{badge_path}"),
                "refresh": selected.iter().any(|f| f.status.as_deref().is_some_and(moving_word)),
            }),
        )
    })
    .await
}

// ---- pipelines and jobs ----------------------------------------------------------------------------

pub async fn pipeline(State(reg): State<AppState>, caller: Caller, uri: OriginalUri, Path(id): Path<i64>) -> Response {
    page(reg, caller, move |reg, viewer| {
        let (p, jobs) =
            reg.db.pipeline(id)?.ok_or_else(|| UiError::App(AppError::not_found(format!("pipeline {id}"))))?;
        let repository = viewer.repository(reg, &p.repository, &here(&uri))?;
        let push = reg.db.push(p.push_id)?;
        let sees_clients = viewer.sees_clients(&p.repository);
        let push = push.map(|mut push| {
            if !sees_clients {
                push.client_addr = None;
                push.user_agent = None;
            }
            push
        });
        ok(
            "pipeline.html",
            viewer,
            json!({
                "title": format!("Pipeline #{id}"),
                "repo": repository.name(),
                "pipeline": p,
                "push": push,
                "jobs": jobs,
                "release": reg.db.ui_release_of(id)?,
                // The held view's actions, here too, for the same admins.
                "held": repository.gated() && reg.db.ui_push_held(p.push_id)?,
                "release_needs_reason": crate::domain::gate::release_needs_reason(p.status),
                "may_act": viewer.may(crate::auth::Scope::Admin, &p.repository),
                "final": p.status.is_final(),
                "here": format!("/ui/pipelines/{id}"),
                "can_approve": viewer.can_approve(&p.repository),
                "refresh": moving(p.status),
            }),
        )
    })
    .await
}

pub async fn job(State(reg): State<AppState>, caller: Caller, uri: OriginalUri, Path(id): Path<i64>) -> Response {
    page(reg, caller, move |reg, viewer| {
        let (job, log) = reg.db.job(id)?.ok_or_else(|| UiError::App(AppError::not_found(format!("job {id}"))))?;
        let (p, _) = reg
            .db
            .pipeline(job.pipeline_id)?
            .ok_or_else(|| UiError::App(AppError::not_found(format!("pipeline {}", job.pipeline_id))))?;
        viewer.repository(reg, &p.repository, &here(&uri))?;
        let push = reg.db.push(p.push_id)?;
        ok(
            "job.html",
            viewer,
            json!({
                "title": format!("Job #{id} {}", job.name),
                "job": job,
                "pipeline": p,
                "push": push,
                "log": log,
                "log_bytes": log.len(),
                "final": job.status.is_final(),
                "finals": crate::domain::state::Status::ALL.into_iter().filter(|s| s.is_final()).collect::<Vec<_>>(),
            }),
        )
    })
    .await
}

/// The pipeline page's "play" button: plays a manual job for an approver, then shows the
/// pipeline again. The form posts with the UI's cookie, which is SameSite=Strict, so another site
/// cannot make a signed-in approver's browser send it.
pub async fn play_job(State(reg): State<AppState>, caller: Caller, Path(id): Path<i64>) -> Response {
    page(reg, caller, move |reg, viewer| {
        let (job, _) = reg.db.job(id)?.ok_or_else(|| UiError::App(AppError::not_found(format!("job {id}"))))?;
        let (p, _) =
            reg.db.pipeline(job.pipeline_id)?.ok_or_else(|| UiError::App(AppError::not_found(format!("job {id}"))))?;
        let back = format!("/ui/pipelines/{}", p.id);
        viewer.repository(reg, &p.repository, &back)?;
        let Some(approver) = viewer.principal.as_ref().filter(|_| viewer.can_approve(&p.repository)) else {
            return Err(viewer.login_needed(&back));
        };
        Pipelines(reg).play_job(&job, &p.repository, approver).map_err(|e| match e {
            AppError::Conflict(m) => UiError::App(AppError::BadRequest(m)),
            other => other.into(),
        })?;
        Ok(Redirect::to(&back).into_response())
    })
    .await
}

#[derive(Deserialize)]
pub struct LogQuery {
    offset: Option<usize>,
}

/// The log from byte `offset` and the job's status in `x-job-status`: the contract of
/// `GET /api/v1/jobs/{id}/log`, for the job page's script. The API endpoint wants the token in
/// `Authorization`, which a script cannot take from the UI's HttpOnly cookie (nor has for an
/// anonymous reader of a public repository), so the UI answers it itself with the UI's auth.
pub async fn job_log(
    State(reg): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Query(q): Query<LogQuery>,
) -> Response {
    let out = crate::http::blocking(move || {
        let viewer = Viewer::of(&caller).map_err(|e| crate::error::AppError::Internal(anyhow::anyhow!("{e:?}")))?;
        let (job, log) = reg.db.job(id)?.ok_or_else(|| crate::error::AppError::not_found(format!("job {id}")))?;
        let (p, _) =
            reg.db.pipeline(job.pipeline_id)?.ok_or_else(|| crate::error::AppError::not_found(format!("job {id}")))?;
        let readable = reg.repositories.get(&p.repository).is_some_and(|r| viewer.can_read(r));
        if !readable {
            return Err(crate::error::AppError::Unauthorized("sign in to read this job".into()));
        }
        let from = q.offset.unwrap_or(0).min(log.len());
        let from = (from..=log.len()).find(|i| log.is_char_boundary(*i)).unwrap_or(log.len());
        Ok((
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_string()),
                (header::CACHE_CONTROL, "no-store".to_string()),
                (header::HeaderName::from_static("x-job-status"), job.status.to_string()),
            ],
            log[from..].to_string(),
        )
            .into_response())
    })
    .await;
    out.unwrap_or_else(|e| e.into_response())
}

// ---- activity ----------------------------------------------------------------------------------------

#[derive(Deserialize)]
pub struct PushesQuery {
    before: Option<i64>,
    repository: Option<String>,
}

pub async fn pushes(State(reg): State<AppState>, caller: Caller, Query(q): Query<PushesQuery>) -> Response {
    page(reg, caller, move |reg, viewer| {
        // Only the repositories the viewer may read: public ones, and private ones its token reads.
        let readable: Vec<String> = reg
            .repositories
            .values()
            .filter(|r| viewer.can_read(r))
            .filter(|r| q.repository.as_deref().is_none_or(|only| only == r.name()))
            .map(|r| r.name().to_string())
            .collect();
        let mut pushes = reg.db.ui_pushes(&readable, q.before, PUSHES_PAGE + 1)?;
        let more = pushes.len() > PUSHES_PAGE as usize;
        pushes.truncate(PUSHES_PAGE as usize);
        for p in &mut pushes {
            if !viewer.sees_clients(&p.push.repository) {
                p.push.client_addr = None;
                p.push.user_agent = None;
            }
        }
        let next = if more { pushes.last().map(|p| p.push.id) } else { None };
        let repos: Vec<&str> = reg.repositories.values().filter(|r| viewer.can_read(r)).map(|r| r.name()).collect();
        ok(
            "pushes.html",
            viewer,
            json!({
                "title": "Activity",
                "pushes": pushes,
                "next": next,
                "repository": q.repository,
                "repositories": repos,
                "anonymous": viewer.principal.is_none(),
            }),
        )
    })
    .await
}

// ---- plugins -------------------------------------------------------------------------------------------

/// The metadata `sluice plugin inspect` asks plugins about.
fn sample_metadata() -> wit::Metadata {
    wit::Metadata::named("example", "1.0.0")
}

pub async fn plugins(State(reg): State<AppState>, caller: Caller, uri: OriginalUri) -> Response {
    page(reg, caller, move |reg, viewer| {
        // As `GET /api/v1/plugins`: any valid token (plugin sources are server paths).
        if viewer.principal.is_none() {
            return Err(viewer.login_needed(&here(&uri)));
        }
        let sample = sample_metadata();
        let plugins: Vec<Value> = reg
            .plugins
            .values()
            .map(|p| {
                let extraction = p.extraction_for(&sample).map(|e| json!(e)).map_err(|e| e.to_string());
                let trigger = p.trigger_for(&sample).map(|t| json!(t)).map_err(|e| e.to_string());
                let repositories: Vec<&str> =
                    reg.repositories.values().filter(|r| r.plugin.name() == p.name()).map(|r| r.name()).collect();
                json!({
                    "name": p.name(),
                    "info": p.info,
                    "source": p.source,
                    "sha256": p.sha256,
                    "repositories": repositories,
                    "extraction": extraction.as_ref().ok(),
                    "extraction_error": extraction.as_ref().err(),
                    "trigger": trigger.as_ref().ok(),
                    "trigger_error": trigger.as_ref().err(),
                })
            })
            .collect();
        ok("plugins.html", viewer, json!({ "title": "Plugins", "plugins": plugins }))
    })
    .await
}

// ---- sign in and out ---------------------------------------------------------------------------------

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// Only local paths: never send a signed-in user to another site.
pub(super) fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\") && !n.contains(['\r', '\n']) => {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

pub async fn login_form(State(reg): State<AppState>, caller: Caller, Query(q): Query<NextQuery>) -> Response {
    page(reg, caller, move |_reg, viewer| {
        ok("login.html", viewer, json!({ "title": "Sign in", "next": safe_next(q.next.as_deref()) }))
    })
    .await
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
    next: Option<String>,
}

pub async fn login(
    State(reg): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let secure = super::over_https(&reg, &headers);
    page(reg, caller, move |reg, viewer| {
        // No session yet, so no CSRF token: the Origin check alone keeps other sites from
        // signing a browser in with their token.
        super::same_origin(reg, &headers)?;
        let token = form.token.trim().to_string();
        let next = safe_next(form.next.as_deref());
        let valid = !token.is_empty()
            && token.bytes().all(|b| b.is_ascii_graphic() && b != b';' && b != b',' && b != b'"' && b != b'\\')
            && access::is_token(reg, &token)?;
        if !valid {
            let html = render(
                "login.html",
                viewer.name(),
                json!({ "title": "Sign in", "next": next, "error": "That token is not valid." }),
            )?;
            return Ok(html_response(StatusCode::UNAUTHORIZED, html));
        }
        let cookie = format!(
            "{}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age=2592000{}",
            super::COOKIE,
            if secure { "; Secure" } else { "" }
        );
        let mut resp = Redirect::to(&next).into_response();
        resp.headers_mut().insert(
            header::SET_COOKIE,
            HeaderValue::from_str(&cookie).map_err(|e| UiError::App(AppError::Internal(e.into())))?,
        );
        Ok(resp)
    })
    .await
}

pub async fn logout(State(reg): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(e) = super::same_origin(&reg, &headers) {
        return e.into_page(None);
    }
    let secure = super::over_https(&reg, &headers);
    let cookie = format!(
        "{}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
        super::COOKIE,
        if secure { "; Secure" } else { "" }
    );
    let mut resp = Redirect::to("/").into_response();
    resp.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).expect("valid cookie"));
    resp
}
