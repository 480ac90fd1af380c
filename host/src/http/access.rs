//! Who may do what in the native API: the one place a caller's token is checked. Every `/api/v1`
//! handler asks here, so the rules below hold everywhere:
//!
//! - a runner token (scope `runner` alone) takes jobs and nothing else;
//! - a token limited to a repository acts on that repository only;
//! - a caller who may not read a resource named by id gets the same 404 as for a missing one, so
//!   ids of private repositories' pushes and pipelines do not leak;
//! - a job token is valid only while its job runs, and only for that job and its push's file.

use axum::http::HeaderMap;

use super::principal;
use crate::auth::{self, Principal, Scope};
use crate::domain::state::Status;
use crate::error::AppError;
use crate::registry::Registry;
use crate::store::db::JobRow;

/// Whether the token can only take jobs.
fn runner_only(p: &Principal) -> bool {
    p.scopes.iter().all(|s| *s == Scope::Runner)
}

/// The caller's token, which must exist and be more than a runner token.
pub fn caller(reg: &Registry, headers: &HeaderMap) -> Result<Principal, AppError> {
    let p = principal(reg, headers)?.ok_or_else(|| AppError::Unauthorized("this API needs a token".into()))?;
    if runner_only(&p) {
        return Err(AppError::Forbidden(format!(
            "token `{}` is a runner token: it takes jobs and nothing else",
            p.name
        )));
    }
    Ok(p)
}

/// The caller's token, which must grant `scope` on `repository` (on every repository if `None`).
pub fn require(
    reg: &Registry,
    headers: &HeaderMap,
    scope: Scope,
    repository: Option<&str>,
) -> Result<Principal, AppError> {
    let p = caller(reg, headers)?;
    let ok = match repository {
        Some(r) => p.allows(scope, Some(r)),
        None => p.repository.is_none() && p.allows(scope, None),
    };
    if ok {
        Ok(p)
    } else {
        let scope = format!("{scope:?}").to_lowercase();
        Err(AppError::Forbidden(format!("token `{}` lacks the `{scope}` scope here", p.name)))
    }
}

/// Like [`require`] for a resource named by id (`what`): a caller who may not read it learns
/// nothing more than that it is not found.
pub fn require_or_hide(
    reg: &Registry,
    headers: &HeaderMap,
    scope: Scope,
    repository: &str,
    what: impl FnOnce() -> String,
) -> Result<Principal, AppError> {
    match require(reg, headers, Scope::Read, Some(repository)) {
        Ok(_) if scope != Scope::Read => require(reg, headers, scope, Some(repository)),
        Ok(p) => Ok(p),
        Err(AppError::Unauthorized(_) | AppError::Forbidden(_)) => Err(AppError::NotFound(what())),
        Err(e) => Err(e),
    }
}

/// The caller's runner token. With a repository limit, it takes that repository's jobs only.
pub fn require_runner(reg: &Registry, headers: &HeaderMap) -> Result<Principal, AppError> {
    let p = principal(reg, headers)?
        .ok_or_else(|| AppError::Unauthorized("runners need a token with the runner scope".into()))?;
    if !p.scopes.contains(&Scope::Runner) {
        return Err(AppError::Forbidden(format!("token `{}` is not a runner token", p.name)));
    }
    Ok(p)
}

/// The job a job token belongs to and its push's sha256, with the job's current status: a
/// canceled job's runner still learns (from its log call) that it was canceled.
pub fn job_of_token(reg: &Registry, headers: &HeaderMap) -> Result<(JobRow, String), AppError> {
    let secret =
        auth::credential(headers, &[]).ok_or_else(|| AppError::Unauthorized("this needs a job token".into()))?;
    reg.db
        .job_by_token(&auth::hash_token(&secret))?
        .ok_or_else(|| AppError::Unauthorized("not a token of a running job".into()))
}

/// The running job a job token belongs to: what may read the push's file.
pub fn running_job_of_token(reg: &Registry, headers: &HeaderMap) -> Result<(JobRow, String), AppError> {
    let (job, sha) = job_of_token(reg, headers)?;
    if job.status != Status::Running {
        return Err(AppError::Unauthorized(format!("the job token's job is {}, no longer running", job.status)));
    }
    Ok((job, sha))
}
