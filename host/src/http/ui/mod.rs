//! The web UI: server-rendered HTML pages at `/` and under `/ui/...`, one CSS file, and the
//! pipeline status badges (SVG) for READMEs.
//!
//! Template library: **minijinja**. The templates stay plain Jinja files under `host/templates/`
//! (readable and editable without knowing Rust), embedded in the binary with `include_str!` so
//! the server needs no files at run time and there is no build step; HTML is auto-escaped by
//! file extension. askama would check templates at compile time, but it is a proc-macro that
//! turns every template into Rust: slower builds of the host crate for every template edit,
//! which costs more here than the runtime parse (done once, at first use) saves.
//!
//! Auth is the API's: a private repository's pages (`read = "token"`) need a token with the
//! `read` scope on it. The UI takes the token from a cookie that `/ui/login` sets (HttpOnly,
//! SameSite=Strict); only the UI's pages read that cookie, through `http::access`
//! (`Caller::viewer`, the one authorisation entry): the API and the format plugins' routes never do.
//! Everything works without JavaScript except following a running job's log live.
//!
//! May call: what the rest of `http` may (`registry`, `pipeline`, `store`, `auth`, `domain`,
//! `plugin`, `error`) and `http` itself (its state, [`super::access`], `blocking`); the API
//! (`http/api.rs`) uses its held-versions view ([`gate`]).

pub(crate) mod badge;
pub mod gate;
mod pages;
mod readme;

use std::sync::OnceLock;

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::Environment;
use serde_json::Value;

use crate::app::{App, Repository};
use crate::auth::{Principal, Scope};
use crate::error::AppError;
use crate::http::access::{self, Caller, Viewing};
use crate::store::db::TokenRow;
use crate::store::DbError;

/// The UI's routes, merged into the server's router at the root.
pub fn router() -> Router<crate::http::State> {
    Router::new()
        .route("/ui", get(pages::repositories))
        .route("/ui/", get(pages::repositories))
        .route(
            "/ui/static/sluice.css",
            get(|| async { static_file("text/css; charset=utf-8", include_str!("../../../templates/sluice.css")) }),
        )
        .route(
            "/ui/static/follow.js",
            get(|| async {
                static_file("text/javascript; charset=utf-8", include_str!("../../../templates/follow.js"))
            }),
        )
        .route("/ui/login", get(pages::login_form).post(pages::login))
        .route("/ui/logout", post(pages::logout))
        .route("/ui/pushes", get(pages::pushes))
        .route("/ui/plugins", get(pages::plugins))
        .route("/ui/pipelines/{id}", get(pages::pipeline))
        .route("/ui/jobs/{id}", get(pages::job))
        .route("/ui/jobs/{id}/log", get(pages::job_log))
        .route("/ui/search", get(gate::search))
        .route("/ui/tokens", get(gate::tokens).post(gate::create_token))
        .route("/ui/tokens/{id}/revoke", post(gate::revoke_token))
        .route("/ui/pipelines/{id}/{action}", post(gate::pipeline_action))
        .route("/ui/jobs/{id}/play", post(pages::play_job))
        .route("/ui/{repo}", get(pages::packages))
        .route("/ui/{repo}/held", get(gate::held_page))
        .route("/ui/{repo}/packages/{*name}", get(pages::package))
        .route("/api/v1/pipelines/{id}/badge.svg", get(badge::pipeline))
}

/// Serves `GET /api/v1/repositories/{repo}/packages/{name}/badge.svg`. The API already routes
/// `/api/v1/repositories/{repo}/packages/{*name}` (package names contain `/`), and a wildcard
/// must end a route, so this layer answers badge requests before the router sees them.
pub async fn package_badges(
    axum::extract::State(reg): axum::extract::State<crate::http::State>,
    req: Request,
    next: Next,
) -> Response {
    if req.method() == axum::http::Method::GET || req.method() == axum::http::Method::HEAD {
        if let Some((repo, name)) = badge::package_badge_path(req.uri().path()) {
            return badge::package(reg, req.headers().clone(), repo, name).await;
        }
    }
    next.run(req).await
}

/// `/`: the repositories page.
pub use pages::repositories as home;

/// The name of the cookie that keeps the UI's token.
pub const COOKIE: &str = "sluice_token";

fn static_file(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=300")], body).into_response()
}

/// Who is looking: the token from the UI's cookie (or, for badges fetched by tools, the
/// request's `Authorization`), if valid.
pub struct Viewer {
    pub principal: Option<Principal>,
    /// The token's row (its scopes, expiry, last use), for the tokens page.
    pub token: Option<TokenRow>,
    /// The signed-in session's CSRF token, which every form that changes something carries.
    pub csrf: Option<String>,
}

impl Viewer {
    /// The viewer of the caller's request, through the one authorisation entry
    /// ([`Caller::viewer`]).
    pub fn of(caller: &Caller) -> Result<Viewer, UiError> {
        let Viewing { principal, session } = caller.viewer()?;
        let (token, csrf) = match session {
            Some((token, secret)) => (Some(token), Some(csrf_token(&secret))),
            None => (None, None),
        };
        Ok(Viewer { principal, token, csrf })
    }

    /// Whether the viewer's token grants `scope` on `repository` (on every repository if `None`):
    /// the rule `http::access` applies to the same action in the API ([`access::grants`]).
    fn grants(&self, scope: Scope, repository: Option<&str>) -> bool {
        self.principal.as_ref().is_some_and(|p| access::grants(p, scope, repository))
    }

    /// Whether the viewer's token grants `scope` on `repository`.
    pub fn may(&self, scope: Scope, repository: &str) -> bool {
        self.grants(scope, Some(repository))
    }

    /// An admin of every repository: who may list, create and revoke tokens (as in the API).
    pub fn is_admin(&self) -> bool {
        self.grants(Scope::Admin, None)
    }

    /// Checks a form that changes something: it must come from this site's own pages (the
    /// Origin check) and carry this session's CSRF token. The cookie is SameSite=Strict, so
    /// another site's form gets no cookie; but other ports of the same host are the same
    /// "site" to a browser, hence the Origin check, and the token covers browsers that send
    /// neither Origin nor Sec-Fetch-Site.
    pub fn check_form(&self, reg: &App, headers: &HeaderMap, csrf: Option<&str>) -> Result<(), UiError> {
        same_origin(reg, headers)?;
        match (&self.csrf, csrf) {
            (Some(mine), Some(sent)) if constant_time_eq(mine.as_bytes(), sent.as_bytes()) => Ok(()),
            (None, _) => Err(UiError::App(AppError::Forbidden("sign in first: this needs a signed-in session".into()))),
            _ => Err(UiError::App(AppError::Forbidden(
                "the form's CSRF token is missing or wrong; reload the page and try again".into(),
            ))),
        }
    }

    pub fn can_read(&self, repo: &Repository) -> bool {
        !repo.private() || self.may(Scope::Read, repo.name())
    }

    /// Whether pushers' addresses and agents may be shown for this repository's pushes: only
    /// to a token that may read the repository (anonymous readers of public ones see no IPs).
    pub fn sees_clients(&self, repo: &str) -> bool {
        self.may(Scope::Read, repo)
    }

    /// The repository, if it exists and the viewer may read it.
    pub fn repository<'r>(&self, reg: &'r App, name: &str, next: &str) -> Result<&'r Repository, UiError> {
        let repo = reg
            .repositories
            .get(name)
            .ok_or_else(|| UiError::App(AppError::not_found(format!("repository `{name}`"))))?;
        if !self.can_read(repo) {
            return Err(self.login_needed(next));
        }
        Ok(repo)
    }

    pub fn login_needed(&self, next: &str) -> UiError {
        UiError::Login { next: next.to_string(), signed_in: self.principal.is_some() }
    }

    /// Whether the viewer may play this repository's manual jobs (an admin, or the `approve`
    /// scope on it).
    pub fn can_approve(&self, repo: &str) -> bool {
        self.may(Scope::Approve, repo)
    }

    pub fn name(&self) -> Option<&str> {
        self.principal.as_ref().map(|p| p.name.as_str())
    }
}

/// The CSRF token of a signed-in session: derived from the cookie's secret (one-way), so it
/// needs no server-side state, changes with every sign-in token, and tells nothing of the secret.
fn csrf_token(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(format!("sluice-ui-csrf\0{secret}").as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether a state-changing request came from this site's own pages: its `Origin` (which
/// browsers send with every POST) is this server's origin; without one, `Sec-Fetch-Site` must say
/// `same-origin`, or else the `Referer` must be one of this server's pages.
pub fn same_origin(reg: &App, headers: &HeaderMap) -> Result<(), UiError> {
    let ours = crate::http::external_url(reg, headers);
    let value = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let ok = if let Some(origin) = value(header::ORIGIN) {
        origin.eq_ignore_ascii_case(&ours)
    } else if let Some(site) = value(header::HeaderName::from_static("sec-fetch-site")) {
        site == "same-origin"
    } else if let Some(referer) = value(header::REFERER) {
        referer.starts_with(&format!("{ours}/"))
    } else {
        false
    };
    if ok {
        Ok(())
    } else {
        tracing::warn!(origin = value(header::ORIGIN).unwrap_or_default(), expected = %ours, "web UI form refused: not from this site's pages");
        Err(UiError::App(AppError::Forbidden("this form did not come from this site's pages".into())))
    }
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Whether the request came over https (directly or through a proxy that says so).
pub fn over_https(reg: &App, headers: &HeaderMap) -> bool {
    let forwarded =
        headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("https"));
    forwarded || crate::http::external_url(reg, headers).starts_with("https://")
}

/// Why a page cannot be shown; each renders as an HTML page with its status: the domain error
/// (mapped to a page once, in [`UiError::into_page`]), or the login form a page needs.
#[derive(Debug)]
pub enum UiError {
    /// The page needs a token: the login form, which comes back to `next`.
    Login {
        next: String,
        signed_in: bool,
    },
    App(AppError),
}

impl From<AppError> for UiError {
    fn from(e: AppError) -> Self {
        UiError::App(e)
    }
}

/// Through the domain error, so the store's errors mean the same on a page as in the API.
impl From<DbError> for UiError {
    fn from(e: DbError) -> Self {
        UiError::App(e.into())
    }
}

impl From<minijinja::Error> for UiError {
    fn from(e: minijinja::Error) -> Self {
        UiError::App(AppError::Internal(anyhow::anyhow!("template: {e:#}")))
    }
}

impl UiError {
    pub fn into_page(self, viewer: Option<&str>) -> Response {
        let e = match self {
            UiError::App(e) => e,
            UiError::Login { next, signed_in } => {
                let message = if signed_in {
                    "Your token may not read this page. Sign in with another token."
                } else {
                    "This page belongs to a private repository. Sign in with a token that may read it."
                };
                let ctx = serde_json::json!({ "title": "Sign in", "next": next, "message": message });
                return match render("login.html", viewer, ctx) {
                    Ok(html) => html_response(StatusCode::UNAUTHORIZED, html),
                    Err(e) => e.into_page(viewer),
                };
            }
        };
        // The status is the domain error's (one table); a server failure shows neither its
        // detail nor a plugin's, which the log has.
        let status = e.status();
        let title = match &e {
            AppError::NotFound(_) => "Not found",
            AppError::BadRequest(_) => "Bad request",
            AppError::Forbidden(_) => "Not allowed",
            AppError::Conflict(_) => "Not now",
            AppError::Unauthorized(_) => "Sign in needed",
            AppError::TooLarge(_) => "Too large",
            AppError::Gone(_) => "Gone",
            AppError::Unsupported(_) => "Not supported",
            AppError::Unavailable(_) => "Upstream unavailable",
            AppError::Plugin(_) | AppError::Internal(_) => "Server error",
        };
        let message = match &e {
            AppError::Plugin(_) => {
                tracing::error!(error = %e, "web UI: a plugin call failed");
                crate::error::INTERNAL_MESSAGE.to_string()
            }
            other => other.client_message(),
        };
        let ctx = serde_json::json!({ "title": title, "message": message });
        match render("error.html", viewer, ctx) {
            Ok(html) => html_response(status, html),
            Err(_) => (status, "error").into_response(),
        }
    }
}

/// Security headers of every HTML page: no inline script, no framing.
pub fn html_response(status: StatusCode, html: String) -> Response {
    let mut resp = (status, html).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Images may come from https too: a README's images are the only ones, and the sanitiser keeps
    // only https sources (readme.rs). Scripts stay same-origin only.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data: https:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    resp
}

/// Renders a template with `ctx` (a JSON object) plus `user`, the viewer's token name.
pub fn render(name: &str, viewer: Option<&str>, mut ctx: Value) -> Result<String, UiError> {
    if let Value::Object(map) = &mut ctx {
        map.insert("user".into(), serde_json::json!(viewer));
    }
    Ok(env().get_template(name)?.render(&ctx)?)
}

macro_rules! templates {
    ($env:ident, $($name:literal),* $(,)?) => {
        $( $env.add_template($name, include_str!(concat!("../../../templates/", $name))).expect(concat!("template ", $name, " parses")); )*
    };
}

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        templates!(
            env,
            "base.html",
            "macros.html",
            "repositories.html",
            "packages.html",
            "package.html",
            "pipeline.html",
            "job.html",
            "pushes.html",
            "plugins.html",
            "login.html",
            "error.html",
            "held.html",
            "tokens.html",
            "search.html",
        );
        env.add_filter("datetime", filters::datetime);
        env.add_filter("bytes", filters::bytes);
        env.add_filter("duration", filters::duration);
        env.add_filter("pathenc", filters::pathenc);
        env.add_filter("qenc", filters::qenc);
        env
    })
}

mod filters {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

    /// Characters left alone in a path segment (`@scope/name` keeps its `@` and `/`).
    const PATH: &AsciiSet =
        &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'@').remove(b'/');
    const QUERY: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

    /// Milliseconds since the epoch as `2026-11-24 06:40:12 UTC`.
    pub fn datetime(ms: Option<i64>) -> String {
        let Some(ms) = ms else { return String::new() };
        let Ok(t) = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000) else {
            return ms.to_string();
        };
        t.format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC"))
            .unwrap_or_else(|_| ms.to_string())
    }

    pub fn bytes(n: i64) -> String {
        const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
        if n < 1024 {
            return format!("{n} B");
        }
        let mut v = n as f64;
        let mut unit = "B";
        for u in UNITS {
            if v < 1024.0 {
                break;
            }
            v /= 1024.0;
            unit = u;
        }
        format!("{v:.1} {unit}")
    }

    /// The time between two instants in ms, as `1m 05s`.
    pub fn duration(start: Option<i64>, end: Option<i64>) -> String {
        let (Some(s), Some(e)) = (start, end) else { return String::new() };
        let secs = (e - s).max(0) / 1000;
        if secs >= 60 {
            format!("{}m {:02}s", secs / 60, secs % 60)
        } else {
            format!("{secs}s")
        }
    }

    pub fn pathenc(s: String) -> String {
        utf8_percent_encode(&s, PATH).to_string()
    }

    pub fn qenc(s: String) -> String {
        utf8_percent_encode(&s, QUERY).to_string()
    }
}

/// Whether a page showing this status should reload to follow it: the status will change without
/// anyone's action (not final, and not waiting for someone to play a manual job).
pub fn moving(status: crate::domain::state::Status) -> bool {
    !status.is_final() && status != crate::domain::state::Status::Manual
}

/// [`moving`] for a status the UI's queries read as text; an unknown word does not move, so no
/// page reloads forever.
pub fn moving_word(status: &str) -> bool {
    status.parse().is_ok_and(moving)
}
