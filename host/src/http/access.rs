//! Who may do what: the one authorisation entry of the native API, the pipeline API and the web
//! UI. A handler takes a [`Caller`] (a person's or a runner's token) or a [`JobToken`] (a running
//! job's token) as an axum extractor and asks it; the rules below hold everywhere:
//!
//! - a runner token (scope `runner` alone) takes jobs and nothing else;
//! - a token limited to a repository acts on that repository only;
//! - a caller who may not read a resource named by id gets the same 404 as for a missing one, so
//!   ids of private repositories' pushes and pipelines do not leak;
//! - a job token is valid only while its job runs, and only for that job and its push's file;
//! - the web UI's cookie is read here, for the UI's pages only ([`Caller::viewer`]); the API never
//!   takes it, so another site cannot make a browser act through the API.
//!
//! Extraction only reads the credential from the request; the token is looked up (SQLite) when
//! a handler asks, on its blocking thread, so the order of checks in a handler is the order of
//! its errors.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;

use super::State;
use crate::app::App;
use crate::auth::{self, Principal, Scope};
use crate::domain::state::Status;
use crate::error::AppError;
use crate::store::db::{JobRow, TokenRow};
use crate::store::DbError;

/// Whether the token can only take jobs.
fn runner_only(p: &Principal) -> bool {
    p.scopes.iter().all(|s| *s == Scope::Runner)
}

/// Whether `p` grants `scope` on `repository`, or on every repository when `None` (a token
/// limited to one repository then does not). The one rule, for the API and the UI alike.
pub fn grants(p: &Principal, scope: Scope, repository: Option<&str>) -> bool {
    match repository {
        Some(r) => p.allows(scope, Some(r)),
        None => p.repository.is_none() && p.allows(scope, None),
    }
}

/// The row of the token `secret` is, if it is one (tokens are stored as hashes).
fn token_row(registry: &App, secret: &str) -> Result<Option<TokenRow>, DbError> {
    registry.db.token_by_hash(&auth::hash_token(secret))
}

/// The token a credential names: `Ok(None)` without a credential, an error for a credential
/// that is no valid token.
fn resolve(registry: &App, secret: Option<&str>) -> Result<Option<Principal>, AppError> {
    let Some(secret) = secret else { return Ok(None) };
    match token_row(registry, secret)? {
        Some(row) => Ok(Some(Principal::from_row(row))),
        None => Err(AppError::Unauthorized("the token is not valid".into())),
    }
}

/// The request's token, if it carries a credential (see [`resolve`]). `extra` are a format's own
/// credential headers: the plugins' routes (`http/client.rs`) resolve their callers here too.
pub fn principal_from(registry: &App, headers: &HeaderMap, extra: &[String]) -> Result<Option<Principal>, AppError> {
    resolve(registry, auth::credential(headers, extra).as_deref())
}

/// Whether `secret` (typed into the web UI's sign-in form) is a valid token; the cookie it then
/// becomes is read by [`Caller::viewer`].
pub fn is_token(registry: &App, secret: &str) -> Result<bool, DbError> {
    Ok(token_row(registry, secret)?.is_some())
}

/// Who is calling: the credential of the request (`Authorization`, see [`auth::credential`]) and,
/// for the web UI, its sign-in cookie.
#[derive(Clone)]
pub struct Caller {
    reg: State,
    credential: Option<String>,
    cookie: Option<String>,
}

impl FromRequestParts<State> for Caller {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, Self::Rejection> {
        Ok(Caller::from_headers(state.clone(), &parts.headers))
    }
}

impl Caller {
    /// The caller of a request whose headers are at hand (a middleware, a handler's helper).
    pub fn from_headers(reg: State, headers: &HeaderMap) -> Caller {
        Caller {
            reg,
            credential: auth::credential(headers, &[]),
            cookie: super::ui::cookie(headers, super::ui::COOKIE),
        }
    }

    /// The caller's token, if the request carries a credential; an error for one that is no
    /// valid token.
    pub fn principal(&self) -> Result<Option<Principal>, AppError> {
        resolve(&self.reg, self.credential.as_deref())
    }

    /// The caller's token, which must exist and be more than a runner token.
    pub fn authenticated(&self) -> Result<Principal, AppError> {
        let p = self.principal()?.ok_or_else(|| AppError::Unauthorized("this API needs a token".into()))?;
        if runner_only(&p) {
            return Err(AppError::Forbidden(format!(
                "token `{}` is a runner token: it takes jobs and nothing else",
                p.name
            )));
        }
        Ok(p)
    }

    /// The caller's token, which must grant `scope` on `repository` (on every repository if
    /// `None`).
    pub fn require(&self, scope: Scope, repository: Option<&str>) -> Result<Principal, AppError> {
        let p = self.authenticated()?;
        if grants(&p, scope, repository) {
            Ok(p)
        } else {
            let scope = format!("{scope:?}").to_lowercase();
            Err(AppError::Forbidden(format!("token `{}` lacks the `{scope}` scope here", p.name)))
        }
    }

    /// Like [`Caller::require`] for a resource named by id (`what`) in `repository`: a caller who
    /// may not read it learns nothing more than that it is not found.
    pub fn require_or_hide(
        &self,
        scope: Scope,
        repository: &str,
        what: impl FnOnce() -> String,
    ) -> Result<Principal, AppError> {
        match self.require(Scope::Read, Some(repository)) {
            Ok(_) if scope != Scope::Read => self.require(scope, Some(repository)),
            Ok(p) => Ok(p),
            Err(AppError::Unauthorized(_) | AppError::Forbidden(_)) => Err(AppError::not_found(what())),
            Err(e) => Err(e),
        }
    }

    /// The caller's runner token. With a repository limit, it takes that repository's jobs only.
    pub fn require_runner(&self) -> Result<Principal, AppError> {
        let p = self
            .principal()?
            .ok_or_else(|| AppError::Unauthorized("runners need a token with the runner scope".into()))?;
        if !p.scopes.contains(&Scope::Runner) {
            return Err(AppError::Forbidden(format!("token `{}` is not a runner token", p.name)));
        }
        Ok(p)
    }

    /// Who looks at a web UI page: the token of the UI's sign-in cookie (a revoked or unknown one
    /// reads as signed out), or else, for badges fetched by tools, the request's credential if it
    /// is valid. With a cookie, also its token's row (for the tokens page) and its secret (from
    /// which the session's CSRF token is derived).
    pub fn viewer(&self) -> Result<Viewing, DbError> {
        if let Some(secret) = &self.cookie {
            let token = token_row(&self.reg, secret)?;
            let principal = token.clone().map(Principal::from_row);
            return Ok(Viewing { principal, session: token.map(|t| (t, secret.clone())) });
        }
        Ok(Viewing { principal: self.principal().unwrap_or(None), session: None })
    }
}

/// Who looks at a web UI page (see [`Caller::viewer`]).
pub struct Viewing {
    pub principal: Option<Principal>,
    /// The signed-in session: its token's row and the cookie's secret.
    pub session: Option<(TokenRow, String)>,
}

/// A job's token (the credential of a runner's calls for that job).
pub struct JobToken {
    reg: State,
    credential: Option<String>,
}

impl FromRequestParts<State> for JobToken {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, Self::Rejection> {
        Ok(JobToken { reg: state.clone(), credential: auth::credential(&parts.headers, &[]) })
    }
}

impl JobToken {
    /// The job the token belongs to and its push's sha256, with the job's current status: a
    /// canceled job's runner still learns (from its log call) that it was canceled.
    pub fn job(&self) -> Result<(JobRow, String), AppError> {
        let secret =
            self.credential.as_deref().ok_or_else(|| AppError::Unauthorized("this needs a job token".into()))?;
        self.reg
            .db
            .job_by_token(&auth::hash_token(secret))?
            .ok_or_else(|| AppError::Unauthorized("not a token of a running job".into()))
    }

    /// [`JobToken::job`] for job `id` (the job named in the path): another job's token is refused.
    pub fn job_for(&self, id: i64) -> Result<JobRow, AppError> {
        let (job, _) = self.job()?;
        if job.id != id {
            return Err(AppError::Forbidden("the job token belongs to another job".into()));
        }
        Ok(job)
    }

    /// The running job the token belongs to: what may read the push's file.
    pub fn running(&self) -> Result<(JobRow, String), AppError> {
        let (job, sha) = self.job()?;
        if job.status != Status::Running {
            return Err(AppError::Unauthorized(format!("the job token's job is {}, no longer running", job.status)));
        }
        Ok((job, sha))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(scopes: &[Scope], repository: Option<&str>) -> Principal {
        Principal {
            token_id: 1,
            name: "t".into(),
            scopes: scopes.to_vec(),
            repository: repository.map(str::to_string),
            kind: "personal".into(),
        }
    }

    #[test]
    fn a_token_limited_to_a_repository_grants_nothing_on_every_repository() {
        let limited = token(&[Scope::Admin], Some("libs"));
        assert!(grants(&limited, Scope::Admin, Some("libs")));
        assert!(!grants(&limited, Scope::Admin, Some("tools")));
        assert!(!grants(&limited, Scope::Admin, None), "an admin of one repository is no admin of all");
        assert!(!grants(&limited, Scope::Read, None));
        let admin = token(&[Scope::Admin], None);
        assert!(grants(&admin, Scope::Admin, None) && grants(&admin, Scope::Read, Some("tools")));
    }

    #[test]
    fn a_runner_token_grants_only_the_runner_scope() {
        let runner = token(&[Scope::Runner], None);
        assert!(runner_only(&runner));
        assert!(grants(&runner, Scope::Runner, None));
        for scope in [Scope::Read, Scope::Publish, Scope::Approve, Scope::Admin] {
            assert!(!grants(&runner, scope, Some("libs")), "{scope:?}");
        }
        assert!(!runner_only(&token(&[Scope::Runner, Scope::Read], None)));
    }
}
