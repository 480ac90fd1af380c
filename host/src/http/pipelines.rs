//! The pipeline part of the native API: pipelines and jobs for people, the job queue for
//! runners (its wire types are `runner::protocol`'s), manual jobs' play for approvers, the push
//! file for job tokens, and the repositories' pipeline files for admins.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::{grants, Caller, JobToken};
use super::blocking;
use super::openapi::{self as doc, Errors};
use crate::app::App;
use crate::auth::Scope;
use crate::domain::gate;
use crate::error::AppError;
use crate::pipeline::Pipelines;
use crate::runner::protocol::{Finish, LogAnswer};
use crate::store::db::{JobRow, PipelineRow};

/// The routes: `routes!` registers each handler at the path of its `#[utoipa::path]` block, which
/// also puts it in the OpenAPI document (see openapi.rs).
pub fn router() -> OpenApiRouter<super::State> {
    OpenApiRouter::new()
        .routes(routes!(list_pipelines))
        .routes(routes!(get_pipeline))
        .routes(routes!(retry_pipeline))
        .routes(routes!(cancel_pipeline))
        .routes(routes!(request_job))
        .routes(routes!(get_job))
        .routes(routes!(get_job_log, append_log))
        .routes(routes!(finish_job))
        .routes(routes!(play_job))
        .routes(routes!(push_file))
        .routes(routes!(get_pipeline_file, put_pipeline_file))
        .routes(routes!(list_deliveries))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only this repository's.
    repository: Option<String>,
    /// At most this many.
    limit: Option<u32>,
}

/// Pipelines, newest first.
#[utoipa::path(get, path = "/pipelines", tag = "pipelines", params(ListQuery), security(("token" = ["read"])),
    responses((status = 200, body = doc::PipelineList), Errors))]
async fn list_pipelines(
    State(reg): State<super::State>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, AppError> {
    blocking(move || {
        let p = caller.authenticated()?;
        let repository = q.repository.or(p.repository.clone());
        if !grants(&p, Scope::Read, repository.as_deref()) {
            return Err(AppError::Forbidden(format!("token `{}` may not read pipelines here", p.name)));
        }
        let pipelines = reg.db.pipelines(repository.as_deref(), q.limit.unwrap_or(50).min(500))?;
        Ok(Json(json!({ "pipelines": pipelines })))
    })
    .await
}

/// A pipeline by id, for a caller with `scope` on its repository; hidden (404) from callers who
/// may not read it.
fn pipeline_for(reg: &App, caller: &Caller, id: i64, scope: Scope) -> Result<(PipelineRow, Vec<JobRow>), AppError> {
    let missing = || format!("pipeline {id}");
    let found = reg.db.pipeline(id)?.ok_or_else(|| AppError::not_found(missing()))?;
    caller.require_or_hide(scope, &found.0.repository, missing)?;
    Ok(found)
}

fn pipeline_json(reg: &App, caller: &Caller, id: i64) -> Result<Value, AppError> {
    let (p, jobs) = pipeline_for(reg, caller, id, Scope::Read)?;
    let push = reg.db.push(p.push_id)?;
    // An admin's release past the gate (who, when): the audit record a failed pipeline carries.
    let release = reg.db.ui_release_of(id)?;
    Ok(json!({ "pipeline": p, "push": push, "jobs": jobs, "release": release }))
}

/// A pipeline with its push and jobs.
#[utoipa::path(get, path = "/pipelines/{id}", tag = "pipelines", params(("id" = i64, Path)), security(("token" = ["read"])),
    responses((status = 200, body = doc::PipelineDetail), Errors))]
async fn get_pipeline(
    State(reg): State<super::State>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, AppError> {
    blocking(move || pipeline_json(&reg, &caller, id).map(Json)).await
}

/// Runs a finished pipeline's failed and canceled jobs again (with the repository's current pipeline file).
#[utoipa::path(post, path = "/pipelines/{id}/retry", tag = "pipelines", params(("id" = i64, Path)), security(("token" = ["admin"])),
    responses((status = 200, body = doc::PipelineDetail), Errors))]
async fn retry_pipeline(
    State(reg): State<super::State>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, AppError> {
    blocking(move || {
        pipeline_for(&reg, &caller, id, Scope::Admin)?;
        Pipelines(&reg).retry_pipeline(id)?;
        pipeline_json(&reg, &caller, id).map(Json)
    })
    .await
}

/// Cancels a pipeline's pending and running jobs.
#[utoipa::path(post, path = "/pipelines/{id}/cancel", tag = "pipelines", params(("id" = i64, Path)), security(("token" = ["admin"])),
    responses((status = 200, body = doc::PipelineDetail), Errors))]
async fn cancel_pipeline(
    State(reg): State<super::State>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, AppError> {
    blocking(move || {
        pipeline_for(&reg, &caller, id, Scope::Admin)?;
        Pipelines(&reg).cancel_pipeline(id)?;
        pipeline_json(&reg, &caller, id).map(Json)
    })
    .await
}

fn job_json(reg: &App, caller: &Caller, id: i64) -> Result<(JobRow, String), AppError> {
    let missing = || format!("job {id}");
    let (job, log) = reg.db.job(id)?.ok_or_else(|| AppError::not_found(missing()))?;
    let (p, _) = reg.db.pipeline(job.pipeline_id)?.ok_or_else(|| AppError::not_found(missing()))?;
    caller.require_or_hide(Scope::Read, &p.repository, missing)?;
    Ok((job, log))
}

/// A job with its log.
#[utoipa::path(get, path = "/jobs/{id}", tag = "pipelines", params(("id" = i64, Path)), security(("token" = ["read"])),
    responses((status = 200, body = doc::JobDetail), Errors))]
async fn get_job(
    State(reg): State<super::State>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, AppError> {
    blocking(move || {
        let (job, log) = job_json(&reg, &caller, id)?;
        Ok(Json(json!({ "job": job, "log": log })))
    })
    .await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct LogQuery {
    /// Byte offset to read from, for following a running job.
    offset: Option<usize>,
}

/// A job's log from a byte offset, as text; its status is in the `X-Job-Status` header.
#[utoipa::path(get, path = "/jobs/{id}/log", tag = "pipelines", params(("id" = i64, Path), LogQuery), security(("token" = ["read"])),
    responses((status = 200, description = "The log from `offset` on", content_type = "text/plain", body = String,
        headers(("x-job-status" = String, description = "The job's status"))), Errors))]
async fn get_job_log(
    State(reg): State<super::State>,
    caller: Caller,
    Path(id): Path<i64>,
    Query(q): Query<LogQuery>,
) -> Result<Response, AppError> {
    blocking(move || {
        let (job, log) = job_json(&reg, &caller, id)?;
        let from = q.offset.unwrap_or(0).min(log.len());
        let from = (from..=log.len()).find(|i| log.is_char_boundary(*i)).unwrap_or(log.len());
        Ok((
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_string()),
                (header::HeaderName::from_static("x-job-status"), job.status.to_string()),
            ],
            log[from..].to_string(),
        )
            .into_response())
    })
    .await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct RequestQuery {
    /// Seconds to wait for a job (default 30, at most 120).
    wait: Option<u64>,
}

#[derive(Deserialize, Default, ToSchema)]
struct RunnerInfo {
    /// The runner's name, shown on its jobs.
    runner: Option<String>,
}

/// Long-polls for a job: 201 with the job, or 204 after `wait` seconds without one.
#[utoipa::path(post, path = "/jobs/request", tag = "runners", params(RequestQuery), request_body(content = RunnerInfo, description = "Optional"),
    security(("token" = ["runner"])),
    responses((status = 201, description = "A job, with its job token, script and the push's file URL", body = Object),
        (status = 204, description = "No job within `wait` seconds"), Errors))]
async fn request_job(
    State(reg): State<super::State>,
    caller: Caller,
    headers: HeaderMap,
    Query(q): Query<RequestQuery>,
    body: Option<Json<RunnerInfo>>,
) -> Result<Response, AppError> {
    let limited_to = blocking(move || Ok(caller.require_runner()?.repository)).await?;
    let runner = body.and_then(|b| b.0.runner).unwrap_or_else(|| "runner".into());
    let base = super::external_url(&reg, &headers);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(q.wait.unwrap_or(30).min(120));
    loop {
        // Register for the wake-up before looking, so a job queued in between is not missed.
        let notified = reg.events.jobs.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let (r, runner_name, b, only) = (reg.clone(), runner.clone(), base.clone(), limited_to.clone());
        if let Some(job) = blocking(move || Pipelines(&r).claim_job(&runner_name, only.as_deref(), &b)).await? {
            return Ok((StatusCode::CREATED, Json(job)).into_response());
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
    }
}

/// Appends to the job's log; answers the job's status (a canceled job learns it here).
#[utoipa::path(post, path = "/jobs/{id}/log", tag = "runners", params(("id" = i64, Path)),
    request_body(content = String, content_type = "text/plain"), security(("token" = ["job"])),
    responses((status = 200, body = doc::JobState), Errors))]
async fn append_log(
    State(reg): State<super::State>,
    job_token: JobToken,
    Path(id): Path<i64>,
    body: String,
) -> Result<Json<LogAnswer>, AppError> {
    blocking(move || {
        job_token.job_for(id)?;
        let status = reg.db.append_log(id, &body)?;
        Ok(Json(LogAnswer { status }))
    })
    .await
}

/// The body of a finish, as the document describes it (the handler reads `runner::protocol::Finish`).
#[derive(ToSchema)]
#[allow(dead_code)]
struct FinishBody {
    /// `success` or `failed`.
    #[schema(example = "success")]
    status: String,
    exit_code: Option<i64>,
    /// Why a failed job failed: `script_failure`, `job_timeout`, `unpack_failure`, ...
    failure_reason: Option<String>,
}

/// Reports the job's end.
#[utoipa::path(post, path = "/jobs/{id}/finish", tag = "runners", params(("id" = i64, Path)), request_body = FinishBody,
    security(("token" = ["job"])), responses((status = 200, body = doc::JobState), Errors))]
async fn finish_job(
    State(reg): State<super::State>,
    job_token: JobToken,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> Result<Json<LogAnswer>, AppError> {
    // Read by hand so that a bad body is a 400 that says what is wrong.
    let f: Finish = serde_json::from_slice(&body).map_err(|e| {
        AppError::BadRequest(format!(
            "a finish is {{\"status\": \"success\" | \"failed\", \"exit_code\", \"failure_reason\"}}: {e}"
        ))
    })?;
    blocking(move || {
        let job = job_token.job_for(id)?;
        let status = Pipelines(&reg).finish_job(&job, &f)?;
        Ok(Json(LogAnswer { status }))
    })
    .await
}

/// Plays a manual job: for admins and tokens with the `approve` scope on the job's repository.
/// Who played it is recorded with the job; a job not waiting in `manual` is a 409.
#[utoipa::path(post, path = "/jobs/{id}/play", tag = "pipelines", params(("id" = i64, Path)),
    security(("token" = ["approve"]), ("token" = ["admin"])), responses((status = 200, body = doc::PlayedJob), Errors))]
async fn play_job(
    State(reg): State<super::State>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, AppError> {
    blocking(move || {
        let missing = || format!("job {id}");
        let (job, _) = reg.db.job(id)?.ok_or_else(|| AppError::not_found(missing()))?;
        let (p, _) = reg.db.pipeline(job.pipeline_id)?.ok_or_else(|| AppError::not_found(missing()))?;
        let approver = caller.require_or_hide(Scope::Approve, &p.repository, missing)?;
        Pipelines(&reg).play_job(&job, &p.repository, &approver)?;
        let (job, _) = reg.db.job(id)?.ok_or_else(|| AppError::not_found(missing()))?;
        Ok(Json(json!({ "job": job })))
    })
    .await
}

/// A push's file: for the job token of a running job of that push, for an admin, and for readers
/// of a repository whose clients can see the file. A file the gate hides is not served by its
/// address either.
#[utoipa::path(get, path = "/pushes/{sha256}/file", tag = "runners", params(("sha256" = String, Path)),
    security(("token" = ["job"]), ("token" = ["read"])),
    responses((status = 200, description = "The file", content_type = "application/octet-stream", body = String), Errors))]
async fn push_file(
    State(reg): State<super::State>,
    caller: Caller,
    job_token: JobToken,
    Path(sha256): Path<String>,
) -> Result<Response, AppError> {
    let r = reg.clone();
    let sha = sha256.clone();
    let allowed = blocking(move || {
        Ok(match job_token.running() {
            Ok((_, job_sha)) => job_sha == sha,
            Err(_) => {
                let p = caller.authenticated()?;
                r.db.files_by_sha(&sha)?.iter().any(|(repository, released)| {
                    let Ok(repo) = r.repository(repository) else { return false };
                    let visible = gate::visible(repo.config.gate, *released);
                    grants(&p, Scope::Admin, Some(repository)) || (visible && grants(&p, Scope::Read, Some(repository)))
                })
            }
        })
    })
    .await?;
    if !allowed {
        return Err(AppError::not_found(format!("file {sha256}")));
    }
    super::blob::blob_response(&reg, &sha256, "application/octet-stream", false).await
}

/// A repository's pipeline file (YAML).
#[utoipa::path(get, path = "/repositories/{repo}/pipeline", tag = "pipelines", params(("repo" = String, Path)),
    security(("token" = ["read"])),
    responses((status = 200, description = "The pipeline file (empty when the repository has none)", content_type = "application/yaml", body = Value), Errors))]
async fn get_pipeline_file(
    State(reg): State<super::State>,
    caller: Caller,
    Path(repo): Path<String>,
) -> Result<Response, AppError> {
    blocking(move || {
        caller.require(Scope::Read, Some(&repo))?;
        let repository = reg.repository(&repo)?;
        let (_, yaml) = Pipelines(&reg).pipeline_config(repository)?;
        Ok(([(header::CONTENT_TYPE, "application/yaml")], yaml).into_response())
    })
    .await
}

/// Replaces a repository's pipeline file (validated first); later pushes and retries use it.
#[utoipa::path(put, path = "/repositories/{repo}/pipeline", tag = "pipelines", params(("repo" = String, Path)),
    request_body(content = Object, content_type = "application/yaml", description = "The pipeline file: a mapping of `stages`, `variables` and jobs"),
    security(("token" = ["admin"])),
    responses((status = 200, body = doc::PipelineFileSaved), Errors))]
async fn put_pipeline_file(
    State(reg): State<super::State>,
    caller: Caller,
    Path(repo): Path<String>,
    body: String,
) -> Result<Json<Value>, AppError> {
    blocking(move || {
        caller.require(Scope::Admin, Some(&repo))?;
        reg.repository(&repo)?;
        let config = crate::pipeline::PipelineConfig::parse(&body).map_err(|e| AppError::BadRequest(e.to_string()))?;
        reg.db.set_pipeline_config(&repo, &body)?;
        tracing::info!(repository = %repo, jobs = config.jobs.len(), "pipeline file replaced");
        Ok(Json(json!({ "repository": repo, "stages": config.stages, "jobs": config.jobs.iter().map(|j| &j.name).collect::<Vec<_>>() })))
    })
    .await
}

/// Outgoing pipeline webhook deliveries, newest first, for admins.
#[utoipa::path(get, path = "/webhooks/deliveries", tag = "pipelines", params(ListQuery), security(("token" = ["admin"])),
    responses((status = 200, body = doc::DeliveryList), Errors))]
async fn list_deliveries(
    State(reg): State<super::State>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, AppError> {
    blocking(move || {
        let p = caller.authenticated()?;
        if !grants(&p, Scope::Admin, None) {
            return Err(AppError::Forbidden("webhook deliveries are for admins".into()));
        }
        Ok(Json(json!({ "deliveries": reg.db.deliveries(q.repository.as_deref(), q.limit.unwrap_or(100).min(1000))? })))
    })
    .await
}
