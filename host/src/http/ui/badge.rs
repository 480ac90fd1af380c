//! Pipeline status badges as SVG, for READMEs: a package's (its newest push's pipeline) and a
//! pipeline's. Same auth as the API and the UI: public repositories' badges are anonymous.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::Viewer;
use crate::http::access::Caller;
use crate::http::blocking;

/// `(repo, name)` of `/api/v1/repositories/{repo}/packages/{name...}/badge.svg`.
pub fn package_badge_path(path: &str) -> Option<(String, String)> {
    let rest = path.strip_prefix("/api/v1/repositories/")?.strip_suffix("/badge.svg")?;
    let (repo, name) = rest.split_once("/packages/")?;
    if repo.is_empty() || repo.contains('/') || name.is_empty() {
        return None;
    }
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8().ok().map(|c| c.into_owned());
    Some((decode(repo)?, decode(name)?))
}

/// A package's pipeline badge: the status of its newest push's pipeline. Served by the
/// `package_badges` middleware (a package name may contain `/`); this carries its OpenAPI entry.
#[utoipa::path(get, path = "/api/v1/repositories/{repo}/packages/{name}/badge.svg", tag = "badges",
    params(("repo" = String, Path), ("name" = String, Path, description = "The package name; may contain `/`")),
    security((), ("token" = ["read"])),
    responses((status = 200, description = "The badge", content_type = "image/svg+xml", body = String),
        (status = 404, description = "An `unknown` badge: no such package or pipeline, or one the caller may not read", content_type = "image/svg+xml", body = String)))]
#[allow(dead_code)]
pub fn package_badge_doc() {}

pub async fn package(reg: crate::http::State, headers: HeaderMap, repo: String, name: String) -> Response {
    let caller = Caller::from_headers(reg.clone(), &headers);
    let answer = blocking(move || {
        let viewer = Viewer::of(&caller).map_err(to_app)?;
        let Some(repository) = reg.repositories.get(&repo) else {
            return Ok((StatusCode::NOT_FOUND, "unknown".to_string()));
        };
        if !viewer.can_read(repository) {
            return Ok((StatusCode::NOT_FOUND, "unknown".to_string()));
        }
        Ok(match reg.db.ui_latest_pipeline(&repo, &repository.key(&name))? {
            None => (StatusCode::NOT_FOUND, "unknown".to_string()),
            Some((_, status, _)) => (StatusCode::OK, status.unwrap_or_else(|| "none".into())),
        })
    })
    .await;
    respond(answer)
}

/// A pipeline's status badge.
#[utoipa::path(get, path = "/api/v1/pipelines/{id}/badge.svg", tag = "badges", params(("id" = i64, Path)),
    security((), ("token" = ["read"])),
    responses((status = 200, description = "The badge", content_type = "image/svg+xml", body = String),
        (status = 400, description = "An id that is no integer (axum's plain-text rejection)", content_type = "text/plain", body = String),
        (status = 404, description = "An `unknown` badge: no such pipeline, or one the caller may not read", content_type = "image/svg+xml", body = String)))]
pub async fn pipeline(State(reg): State<crate::http::State>, caller: Caller, Path(id): Path<i64>) -> Response {
    let answer = blocking(move || {
        let viewer = Viewer::of(&caller).map_err(to_app)?;
        let Some((p, _)) = reg.db.pipeline(id)? else { return Ok((StatusCode::NOT_FOUND, "unknown".to_string())) };
        let Some(repository) = reg.repositories.get(&p.repository) else {
            return Ok((StatusCode::NOT_FOUND, "unknown".to_string()));
        };
        if !viewer.can_read(repository) {
            return Ok((StatusCode::NOT_FOUND, "unknown".to_string()));
        }
        Ok((StatusCode::OK, p.status.to_string()))
    })
    .await;
    respond(answer)
}

fn to_app(e: super::UiError) -> crate::error::AppError {
    match e {
        super::UiError::App(e) => e,
        other => crate::error::AppError::Internal(anyhow::anyhow!("{other:?}")),
    }
}

fn respond(answer: Result<(StatusCode, String), crate::error::AppError>) -> Response {
    let (status, text) = match answer {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "badge");
            (StatusCode::INTERNAL_SERVER_ERROR, "error".to_string())
        }
    };
    (
        status,
        [(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "no-cache, max-age=0")],
        svg("pipeline", &text),
    )
        .into_response()
}

/// The colour of a status (the badge's text: a pipeline status, or `none`/`unknown`), shared
/// with the CSS of the HTML badges.
pub fn colour(status: &str) -> &'static str {
    use crate::domain::state::Status;
    match status.parse::<Status>() {
        Ok(Status::Success) => "#2e7d32",
        Ok(Status::Failed) => "#c62828",
        Ok(Status::Running) => "#1565c0",
        Ok(Status::Pending) => "#b26a00",
        Ok(Status::Canceled) => "#5f6368",
        Ok(Status::Manual) => "#6a1b9a",
        Ok(Status::Created | Status::Skipped) | Err(_) => "#757575",
    }
}

/// A flat two-part badge: `label | status`. Widths come from a rough per-character width of
/// Verdana 11px, as the common badge services do.
pub fn svg(label: &str, status: &str) -> String {
    let text_width = |s: &str| s.chars().map(|c| if c.is_ascii_lowercase() { 6.5 } else { 7.5 }).sum::<f64>();
    let lw = (text_width(label) + 12.0).round();
    let rw = (text_width(status) + 12.0).round();
    let w = lw + rw;
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    let (label, status_text) = (esc(label), esc(status));
    let colour = colour(status);
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="20" role="img" aria-label="{label}: {status_text}"><title>{label}: {status_text}</title><linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient><clipPath id="r"><rect width="{w}" height="20" rx="3" fill="#fff"/></clipPath><g clip-path="url(#r)"><rect width="{lw}" height="20" fill="#555"/><rect x="{lw}" width="{rw}" height="20" fill="{colour}"/><rect width="{w}" height="20" fill="url(#s)"/></g><g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11"><text x="{lx}" y="14">{label}</text><text x="{rx}" y="14">{status_text}</text></g></svg>"##,
        lx = lw / 2.0,
        rx = lw + rw / 2.0,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn badge_paths() {
        assert_eq!(
            package_badge_path("/api/v1/repositories/libs/packages/@s/n/badge.svg"),
            Some(("libs".into(), "@s/n".into()))
        );
        assert_eq!(
            package_badge_path("/api/v1/repositories/libs/packages/%40s%2Fn/badge.svg"),
            Some(("libs".into(), "@s/n".into()))
        );
        assert_eq!(package_badge_path("/api/v1/repositories/libs/packages/x"), None);
        assert_eq!(package_badge_path("/api/v1/repositories/libs/packages//badge.svg"), None);
        assert!(svg("pipeline", "success").contains("#2e7d32"));
        assert!(svg("a", "<b>").contains("&lt;b&gt;"));
    }
}
