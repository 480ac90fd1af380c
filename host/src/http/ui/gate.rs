//! The gate's pages (what a gated repository holds back, why, and an admin's retry, cancel and
//! release), tokens in the UI, and the top bar's search across repositories. The held list and
//! the release are shared with the API (`GET /api/v1/repositories/{repo}/held`,
//! `POST /api/v1/pipelines/{id}/release`), so both say the same.
//!
//! Every form here changes something and goes through [`Viewer::check_form`] (same origin and
//! the session's CSRF token); who may do what is the API's rule, asked through [`Viewer`].

use axum::extract::{Form, OriginalUri, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::pages::{here, ok, ok_with, page, pages, safe_next};
use super::{UiError, Viewer};
use crate::app::{App, Repository};
use crate::auth::{self, Scope};
use crate::domain::gate;
use crate::domain::state::Status;
use crate::error::AppError;
use crate::http::access::Caller;
use crate::http::State as AppState;
use crate::pipeline::Pipelines;
use crate::store::db::ui::{ReleaseOutcome, UiRelease};
use crate::store::db::{now_ms, JobRow, PipelineRow};
use crate::store::DbError;

/// Rows per page of the held list and the search results.
const PAGE: u32 = 50;
/// How much of a failed job's log the version page shows.
const LOG_TAIL_LINES: usize = 12;

// ---- what the gate holds -------------------------------------------------------------------------

#[derive(Debug, Serialize)]
pub struct HeldJob {
    pub id: i64,
    pub name: String,
    pub status: String,
    pub exit_code: Option<i64>,
    pub failure_reason: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct HeldPipeline {
    pub id: i64,
    pub status: String,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    /// Whether an admin's release past it must give a reason (it failed).
    pub release_needs_reason: bool,
}

/// A version clients cannot have yet, with its pipeline and why it waits.
#[derive(Debug, Serialize)]
pub struct Held {
    pub package: String,
    pub version: String,
    pub qualifier: String,
    pub file_name: String,
    pub push_id: i64,
    pub pushed_by: String,
    pub token_name: Option<String>,
    pub pushed_at: i64,
    pub pipeline: Option<HeldPipeline>,
    /// Whether the pipeline finished (it can be retried) or still runs (it can be canceled).
    pub finished: bool,
    /// Why it is held, in a few words: `failed`, `waiting for approval`, `waiting for a runner`...
    pub why: String,
    /// The jobs `why` is about: the failed ones, those waiting for approval, the running ones.
    pub jobs: Vec<HeldJob>,
}

/// Why a pipeline holds its push, and the jobs that reason names. Jobs waiting for someone's
/// approval (status `manual`) come first: that is what the version waits for.
pub fn reason(status: Option<Status>, jobs: &[JobRow]) -> (&'static str, Vec<&JobRow>) {
    let with = |s: Status| jobs.iter().filter(|j| j.status == s).collect::<Vec<_>>();
    let manual = with(Status::Manual);
    if !manual.is_empty() {
        return ("waiting for approval", manual);
    }
    match status {
        None => ("no pipeline", Vec::new()),
        Some(Status::Failed) => {
            ("failed", jobs.iter().filter(|j| j.status == Status::Failed && !j.allow_failure).collect())
        }
        Some(Status::Canceled) => ("canceled", Vec::new()),
        Some(Status::Running) => ("running", with(Status::Running)),
        Some(Status::Pending | Status::Created) => ("waiting for a runner", with(Status::Pending)),
        Some(Status::Manual) => ("waiting for approval", Vec::new()),
        Some(Status::Success) => ("passed, not released yet", Vec::new()),
        Some(Status::Skipped) => ("in progress", Vec::new()),
    }
}

fn held_job(j: &JobRow) -> HeldJob {
    HeldJob {
        id: j.id,
        name: j.name.clone(),
        status: j.status.to_string(),
        exit_code: j.exit_code,
        failure_reason: j.failure_reason.clone(),
    }
}

/// One page of what a repository's gate holds, newest push first, with the total. A repository
/// without a gate holds nothing.
pub fn held(reg: &App, repo: &Repository, offset: u32, limit: u32) -> Result<(i64, Vec<Held>), DbError> {
    if !repo.gated() {
        return Ok((0, Vec::new()));
    }
    let (total, rows) = reg.db.ui_held(repo.name(), offset, limit)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let found = match row.pipeline_id {
            Some(id) => reg.db.pipeline(id)?,
            None => None,
        };
        let (why, jobs) = match &found {
            Some((p, jobs)) => reason(Some(p.status), jobs),
            None => reason(None, &[]),
        };
        let jobs = jobs.into_iter().map(held_job).collect();
        let push = row.push;
        out.push(Held {
            package: push.package,
            version: push.version,
            qualifier: push.qualifier,
            file_name: push.file_name,
            push_id: push.id,
            pushed_by: push.actor,
            token_name: push.token_name,
            pushed_at: push.created_at,
            finished: found.as_ref().is_some_and(|(p, _)| p.status.is_final()),
            pipeline: found.as_ref().map(|(p, _)| HeldPipeline {
                id: p.id,
                status: p.status.to_string(),
                created_at: p.created_at,
                finished_at: p.finished_at,
                release_needs_reason: gate::release_needs_reason(p.status),
            }),
            why: why.to_string(),
            jobs,
        });
    }
    Ok((total, out))
}

/// Why one version is held, for its page: the reason, and the jobs it names with the last lines
/// of the failed ones' logs.
pub(super) fn why_held(reg: &App, pipeline_id: i64) -> Result<Option<Value>, UiError> {
    let Some((p, jobs)) = reg.db.pipeline(pipeline_id)? else { return Ok(None) };
    let (why, named) = reason(Some(p.status), &jobs);
    let mut listed = Vec::new();
    for j in named {
        let tail = if j.status == Status::Failed { Some(reg.db.ui_log_tail(j.id, LOG_TAIL_LINES)?) } else { None };
        listed.push(json!({ "job": held_job(j), "tail": tail }));
    }
    Ok(Some(json!({ "why": why, "status": p.status, "pipeline_id": p.id, "jobs": listed })))
}

/// An admin's release of a held push past its gate: the one place it happens (UI and API), and
/// the audit record of it (the pipeline's `released_by`/`released_at`/`release_reason`, and this
/// log line). `reason` is what the admin typed: trimmed, and required past a failed pipeline
/// (`gate::release_needs_reason`); a refusal is a 400 that releases nothing.
pub fn release(reg: &App, pipeline: &PipelineRow, by: &str, reason: Option<&str>) -> Result<UiRelease, AppError> {
    let reason = gate::release_reason(reason).map_err(AppError::BadRequest)?;
    match reg.db.ui_release(pipeline.id, by, reason.as_deref())? {
        ReleaseOutcome::Released { files, release } => {
            tracing::info!(
                repository = %pipeline.repository,
                pipeline = pipeline.id,
                push_id = pipeline.push_id,
                pipeline_status = %pipeline.status,
                released_by = %by,
                reason = release.reason.as_deref().unwrap_or("(none given)"),
                files,
                "held version released past its gate by an admin"
            );
            Ok(release)
        }
        ReleaseOutcome::ReasonRequired(status) => Err(AppError::BadRequest(format!(
            "pipeline {} {status}: a release past a {status} pipeline needs a reason, saying why clients may \
             have the version anyway (reviewed by hand, a false positive)",
            pipeline.id
        ))),
        ReleaseOutcome::AlreadyReleased(Some(r)) => Err(AppError::Conflict(format!(
            "pipeline {}'s push was already released by {} at {}",
            pipeline.id,
            r.released_by,
            super::filters::datetime(Some(r.released_at))
        ))),
        ReleaseOutcome::AlreadyReleased(None) => Err(AppError::Conflict(format!(
            "pipeline {}'s push is not held: its pipeline passed, or its repository has no gate",
            pipeline.id
        ))),
    }
}

#[derive(Deserialize)]
pub struct HeldQuery {
    page: Option<u32>,
    /// After an action: what was done (`retried`, `canceled`, `released`) to which pipeline.
    done: Option<String>,
    pipeline: Option<i64>,
}

/// `/ui/{repo}/held`: what the gate holds, with the admin's actions.
pub async fn held_page(
    State(reg): State<AppState>,
    caller: Caller,
    uri: OriginalUri,
    Path(repo): Path<String>,
    Query(q): Query<HeldQuery>,
) -> Response {
    page(reg, caller, move |reg, viewer| {
        let repository = viewer.repository(reg, &repo, &here(&uri))?;
        let page_no = q.page.unwrap_or(1).max(1);
        let (total, held) = held(reg, repository, (page_no - 1).saturating_mul(PAGE), PAGE)?;
        let notice = match (q.done.as_deref(), q.pipeline) {
            (Some(done @ ("retried" | "canceled" | "released")), Some(id)) => Some(format!("Pipeline #{id} {done}.")),
            _ => None,
        };
        ok(
            "held.html",
            viewer,
            json!({
                "title": format!("Held · {repo}"),
                "repo": repo,
                "gated": repository.gated(),
                "total": total,
                "held": held,
                "page": page_no,
                "pages": pages(total, PAGE),
                // The API's rule for retry, cancel and release: admin on this repository.
                "may_act": viewer.may(Scope::Admin, &repo),
                "here": format!("/ui/{}/held", super::filters::pathenc(repo.clone())),
                "notice": notice,
            }),
        )
    })
    .await
}

#[derive(Deserialize)]
pub struct ActionForm {
    csrf: Option<String>,
    next: Option<String>,
    /// The release form's reason field (the other actions have none).
    reason: Option<String>,
}

/// `POST /ui/pipelines/{id}/{retry|cancel|release}` from the held view's buttons.
pub async fn pipeline_action(
    State(reg): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((id, action)): Path<(i64, String)>,
    Form(f): Form<ActionForm>,
) -> Response {
    page(reg, caller, move |reg, viewer| {
        viewer.check_form(reg, &headers, f.csrf.as_deref())?;
        let missing = || UiError::App(AppError::not_found(format!("pipeline {id}")));
        let (p, _) = reg.db.pipeline(id)?.ok_or_else(missing)?;
        // As the API: a pipeline the viewer may not read does not exist for it.
        if !reg.repositories.get(&p.repository).is_some_and(|r| viewer.can_read(r)) {
            return Err(missing());
        }
        let who = viewer.name().unwrap_or_default().to_string();
        if !viewer.may(Scope::Admin, &p.repository) {
            return Err(UiError::App(AppError::Forbidden(format!(
                "token `{who}` lacks the admin scope on `{}`: it may not {action} pipelines",
                p.repository
            ))));
        }
        let done = match action.as_str() {
            "retry" => {
                Pipelines(reg).retry_pipeline(id)?;
                tracing::info!(repository = %p.repository, pipeline = id, by = %who, "pipeline retried from the web UI");
                "retried"
            }
            "cancel" => {
                Pipelines(reg).cancel_pipeline(id)?;
                tracing::info!(repository = %p.repository, pipeline = id, by = %who, "pipeline canceled from the web UI");
                "canceled"
            }
            "release" => {
                release(reg, &p, &who, f.reason.as_deref())?;
                "released"
            }
            other => return Err(UiError::App(AppError::not_found(format!("action `{other}`")))),
        };
        let fallback = format!("/ui/pipelines/{id}");
        let next = safe_next(Some(f.next.as_deref().unwrap_or(&fallback)));
        let sep = if next.contains('?') { '&' } else { '?' };
        Ok(Redirect::to(&format!("{next}{sep}done={done}&pipeline={id}")).into_response())
    })
    .await
}

// ---- tokens ----------------------------------------------------------------------------------------

/// The tokens page: the viewer's own token for everyone signed in; every token, the create
/// form and revoke buttons for admins. `extra` adds an error, a notice or a just-created token.
fn tokens_page(reg: &App, viewer: &Viewer, status: StatusCode, extra: Value) -> Result<Response, UiError> {
    let Some(mine) = &viewer.token else { return Err(viewer.login_needed("/ui/tokens")) };
    let admin = viewer.is_admin();
    let now = now_ms();
    let tokens: Vec<Value> = if admin {
        reg.db
            .tokens()?
            .into_iter()
            .map(|t| {
                let expired = t.expires_at.is_some_and(|at| at <= now);
                let mut v = json!(t);
                v["expired"] = json!(expired);
                v
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut ctx = json!({
        "title": "Tokens",
        "mine": mine,
        "mine_scopes": mine.scopes.split(',').map(str::trim).filter(|s| !s.is_empty()).collect::<Vec<_>>(),
        "admin": admin,
        "tokens": tokens,
        "repositories": reg.repositories.keys().collect::<Vec<_>>(),
        "form": {},
    });
    if let (Value::Object(ctx), Value::Object(extra)) = (&mut ctx, extra) {
        ctx.extend(extra);
    }
    let mut resp = ok_with(status, "tokens.html", viewer, ctx)?;
    // A page with a new token's secret must not stay in any cache.
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

pub async fn tokens(State(reg): State<AppState>, caller: Caller) -> Response {
    page(reg, caller, |reg, viewer| tokens_page(reg, viewer, StatusCode::OK, json!({}))).await
}

#[derive(Deserialize)]
pub struct NewTokenForm {
    csrf: Option<String>,
    name: Option<String>,
    scope_read: Option<String>,
    scope_publish: Option<String>,
    scope_admin: Option<String>,
    scope_runner: Option<String>,
    repository: Option<String>,
    expires: Option<String>,
}

/// Creates a token (admins of every repository, as `POST /api/v1/tokens`) and shows its secret
/// this once.
pub async fn create_token(
    State(reg): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Form(f): Form<NewTokenForm>,
) -> Response {
    page(reg, caller, move |reg, viewer| {
        viewer.check_form(reg, &headers, f.csrf.as_deref())?;
        if !viewer.is_admin() {
            return Err(UiError::App(AppError::Forbidden("only a token with the admin scope on every repository may create tokens".into())));
        }
        let scopes: Vec<&str> = [("read", &f.scope_read), ("publish", &f.scope_publish), ("admin", &f.scope_admin), ("runner", &f.scope_runner)]
            .into_iter()
            .filter(|(_, on)| on.is_some())
            .map(|(s, _)| s)
            .collect();
        let scopes = scopes.join(",");
        let name = f.name.unwrap_or_default().trim().to_string();
        let repository = f.repository.map(|r| r.trim().to_string()).filter(|r| !r.is_empty());
        let expires = f.expires.map(|e| e.trim().to_string()).filter(|e| !e.is_empty());
        let refused = |error: String| {
            tokens_page(reg, viewer, StatusCode::BAD_REQUEST, json!({ "error": error, "form": { "name": name, "expires": expires } }))
        };
        if let Some(r) = &repository {
            if !reg.repositories.contains_key(r) {
                return refused(format!("there is no repository `{r}`"));
            }
        }
        match auth::issue_token(&reg.db, &name, &scopes, repository.as_deref(), expires.as_deref()) {
            Ok(t) => {
                tracing::info!(token = t.id, name = %name, scopes = %scopes, repository = ?repository, by = viewer.name().unwrap_or(""), "token created in the web UI");
                tokens_page(reg, viewer, StatusCode::OK, json!({ "created": { "id": t.id, "name": name, "secret": t.secret } }))
            }
            Err(auth::IssueError::Invalid(msg)) => refused(msg),
            Err(auth::IssueError::Store(e)) => Err(e.into()),
        }
    })
    .await
}

/// Revokes a token (admins of every repository, as `DELETE /api/v1/tokens/{id}`).
pub async fn revoke_token(
    State(reg): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(f): Form<ActionForm>,
) -> Response {
    page(reg, caller, move |reg, viewer| {
        viewer.check_form(reg, &headers, f.csrf.as_deref())?;
        if !viewer.is_admin() {
            return Err(UiError::App(AppError::Forbidden(
                "only a token with the admin scope on every repository may revoke tokens".into(),
            )));
        }
        reg.db.revoke_token(id)?;
        tracing::info!(token = id, by = viewer.name().unwrap_or(""), "token revoked in the web UI");
        Ok(Redirect::to("/ui/tokens").into_response())
    })
    .await
}

// ---- search across repositories ------------------------------------------------------------------

#[derive(Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
    page: Option<u32>,
}

/// `/ui/search?q=…&page=…`: packages whose name contains the query, in every repository the
/// viewer may read (public ones signed out).
pub async fn search(State(reg): State<AppState>, caller: Caller, Query(q): Query<SearchQuery>) -> Response {
    page(reg, caller, move |reg, viewer| {
        let readable: Vec<String> =
            reg.repositories.values().filter(|r| viewer.can_read(r)).map(|r| r.name().to_string()).collect();
        let query = q.q.unwrap_or_default().trim().to_string();
        let page_no = q.page.unwrap_or(1).max(1);
        let (total, packages) = reg.db.ui_search(&readable, &query, (page_no - 1).saturating_mul(PAGE), PAGE)?;
        ok(
            "search.html",
            viewer,
            json!({
                "title": if query.is_empty() { "Search".to_string() } else { format!("Search: {query}") },
                "query": query,
                "topq": query,
                "total": total,
                "packages": packages,
                "page": page_no,
                "pages": pages(total, PAGE),
                "searched": readable.len(),
                "anonymous": viewer.principal.is_none(),
            }),
        )
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: i64, status: &str, allow_failure: bool) -> JobRow {
        JobRow {
            id,
            pipeline_id: 1,
            name: format!("job-{id}"),
            stage: "test".into(),
            stage_index: 1,
            kind: "runner".into(),
            script: Vec::new(),
            variables: Default::default(),
            allow_failure,
            timeout_seconds: 60,
            status: status.parse().expect("a status"),
            manual: status == "manual",
            approved_by: None,
            approved_at: None,
            runner: None,
            exit_code: None,
            failure_reason: None,
            created_at: 0,
            started_at: None,
            finished_at: None,
        }
    }

    fn named(status: Option<&str>, jobs: &[JobRow]) -> (&'static str, Vec<i64>) {
        let (why, named) = reason(status.map(|s| s.parse().expect("a status")), jobs);
        (why, named.iter().map(|j| j.id).collect())
    }

    #[test]
    fn the_reason_names_the_jobs_a_version_waits_for() {
        let failed =
            [job(1, "success", false), job(2, "failed", true), job(3, "failed", false), job(4, "skipped", false)];
        assert_eq!(
            named(Some("failed"), &failed),
            ("failed", vec![3]),
            "a job allowed to fail does not hold the version"
        );
        // Approval jobs (another change adds the `manual` status) come first, whatever the rest does.
        let manual = [job(1, "success", false), job(2, "manual", false), job(3, "created", false)];
        assert_eq!(named(Some("running"), &manual), ("waiting for approval", vec![2]));
        assert_eq!(named(Some("manual"), &[]), ("waiting for approval", vec![]));
        let pending = [job(1, "success", false), job(2, "pending", false)];
        assert_eq!(named(Some("pending"), &pending), ("waiting for a runner", vec![2]));
        assert_eq!(named(Some("running"), &[job(5, "running", false)]), ("running", vec![5]));
        assert_eq!(named(Some("canceled"), &[job(6, "canceled", false)]), ("canceled", vec![]));
        assert_eq!(named(None, &[]), ("no pipeline", vec![]));
    }
}
