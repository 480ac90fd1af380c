//! The domain error, [`AppError`]: one variant per kind of failure the plugin contract knows
//! (`wit::ErrorKind`; `invalid` is `BadRequest`), plus a plugin call that failed
//! ([`CallError`]). Each lower layer's error converts once (the store's [`DbError`], the blob
//! store's [`BlobError`], a plugin's answer `wit::Error`, whose message is kept), and
//! [`AppError::status`] is the one kind → HTTP status table. It is shown three ways, each written
//! once: as HTTP/JSON ([`IntoResponse`]), through a format's `render-error` (`From<AppError> for
//! wit::Error`, used by `registry/protocol.rs`), and as a web UI page (`UiError::into_page`,
//! `http/ui/mod.rs`). A client error keeps its message everywhere; an internal failure is always
//! a 5xx, logged with its detail and shown as [`INTERNAL_MESSAGE`].
//!
//! May call: `store`, `plugin` (the error types only).

use crate::plugin::{wit, CallError};
use crate::store::{BlobError, DbError};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request or the package is malformed (the contract's `invalid`).
    #[error("{0}")]
    BadRequest(String),
    /// No such thing; the message says what ([`AppError::not_found`] words the host's own).
    #[error("{0}")]
    NotFound(String),
    /// It existed once and was removed for good.
    #[error("{0}")]
    Gone(String),
    #[error("authentication required: {0}")]
    Unauthorized(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("upload too large: {0}")]
    TooLarge(String),
    /// The format has no such operation (a method its protocol does not take).
    #[error("{0}")]
    Unsupported(String),
    /// A proxy repository's upstream failed and nothing kept can stand in, or it sent a file
    /// that does not match its own metadata (the contract's `unavailable`, a 502). The message
    /// says so without the upstream's address or error detail, which are logged.
    #[error("{0}")]
    Unavailable(String),
    /// A plugin call failed (trapped, ran out of time or memory): a 500 that names the plugin
    /// and what happened, which is no secret and what an operator needs to see.
    #[error(transparent)]
    Plugin(#[from] CallError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// What clients are told in place of an internal failure's detail (which the log has).
pub const INTERNAL_MESSAGE: &str = "internal server error (details are in the server log)";

impl From<DbError> for AppError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::NotFound(what) => AppError::not_found(what),
            DbError::Conflict(what) => AppError::Conflict(format!("{what} already exists")),
            other => AppError::Internal(other.into()),
        }
    }
}

impl From<BlobError> for AppError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::TooLarge { .. } => AppError::TooLarge(e.to_string()),
            other => AppError::Internal(other.into()),
        }
    }
}

/// A plugin's answer. A client error keeps the plugin's message, which is what the format's
/// client shows; the plugin's own internal error becomes an internal failure like any other, so
/// its detail goes to the log and not to the client.
impl From<wit::Error> for AppError {
    fn from(e: wit::Error) -> Self {
        use wit::ErrorKind as K;
        let m = e.message;
        match e.kind {
            K::Invalid => AppError::BadRequest(m),
            K::NotFound => AppError::NotFound(m),
            K::Gone => AppError::Gone(m),
            K::Unauthorized => AppError::Unauthorized(m),
            K::Forbidden => AppError::Forbidden(m),
            K::Conflict => AppError::Conflict(m),
            K::TooLarge => AppError::TooLarge(m),
            K::Unsupported => AppError::Unsupported(m),
            K::Internal => AppError::Internal(anyhow::anyhow!("the plugin answered an internal error: {m}")),
            K::Unavailable => AppError::Unavailable(m),
        }
    }
}

impl AppError {
    /// "`what` not found", the host's wording for something missing.
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        AppError::NotFound(format!("{what} not found"))
    }

    /// The one kind → HTTP status table: the JSON API's status, a web page's, and the status
    /// of a client protocol's error when the plugin cannot render it.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Gone(_) => StatusCode::GONE,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Unsupported(_) => StatusCode::METHOD_NOT_ALLOWED,
            AppError::Unavailable(_) => StatusCode::BAD_GATEWAY,
            AppError::Plugin(_) | AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A failure of the server (a 5xx), not of the request: a kept document keeps serving and
    /// a git tag is tried again at the next sync instead of being rejected.
    pub fn is_internal(&self) -> bool {
        self.status().is_server_error()
    }

    /// The message in a client's own words, for a format's client (which prints it after its
    /// own "error:") and for reports: a client error's message, a failed plugin call's summary,
    /// or for an internal failure the bare [`INTERNAL_MESSAGE`], the detail logged here.
    pub fn client_message(&self) -> String {
        match self {
            AppError::BadRequest(m)
            | AppError::NotFound(m)
            | AppError::Gone(m)
            | AppError::Unauthorized(m)
            | AppError::Forbidden(m)
            | AppError::Conflict(m)
            | AppError::TooLarge(m)
            | AppError::Unsupported(m)
            | AppError::Unavailable(m) => m.clone(),
            AppError::Plugin(e) => e.to_string(),
            AppError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "internal error");
                INTERNAL_MESSAGE.to_string()
            }
        }
    }
}

/// The plugin contract's form, for a format's `render-error` (the client protocol).
impl From<AppError> for wit::Error {
    fn from(e: AppError) -> Self {
        use wit::ErrorKind as K;
        let kind = match &e {
            AppError::BadRequest(_) => K::Invalid,
            AppError::NotFound(_) => K::NotFound,
            AppError::Gone(_) => K::Gone,
            AppError::Unauthorized(_) => K::Unauthorized,
            AppError::Forbidden(_) => K::Forbidden,
            AppError::Conflict(_) => K::Conflict,
            AppError::TooLarge(_) => K::TooLarge,
            AppError::Unsupported(_) => K::Unsupported,
            AppError::Unavailable(_) => K::Unavailable,
            AppError::Plugin(_) | AppError::Internal(_) => K::Internal,
        };
        wit::Error { kind, message: e.client_message() }
    }
}

/// The JSON API's form: `{"error": "..."}` with the kind's status.
impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            AppError::Internal(_) => self.client_message(),
            other => other.to_string(),
        };
        let mut resp = (status, Json(serde_json::json!({ "error": message }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert("www-authenticate", "Bearer realm=\"sluice\"".parse().expect("static header"));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wit::ErrorKind as K;

    /// Every kind of the contract with the status a client gets for it. The match makes a kind
    /// added to the contract fail to compile here until it has a row.
    fn every_kind() -> Vec<(K, u16)> {
        let all = [
            K::Invalid,
            K::NotFound,
            K::Gone,
            K::Unauthorized,
            K::Forbidden,
            K::Conflict,
            K::TooLarge,
            K::Unsupported,
            K::Internal,
            K::Unavailable,
        ];
        all.into_iter()
            .map(|k| {
                let status = match k {
                    K::Invalid => 400,
                    K::NotFound => 404,
                    K::Gone => 410,
                    K::Unauthorized => 401,
                    K::Forbidden => 403,
                    K::Conflict => 409,
                    K::TooLarge => 413,
                    K::Unsupported => 405,
                    K::Internal => 500,
                    K::Unavailable => 502,
                };
                (k, status)
            })
            .collect()
    }

    #[test]
    fn every_contract_kind_round_trips_with_its_status_and_message() {
        for (kind, status) in every_kind() {
            let message = format!("the plugin's words for {kind:?}");
            let domain = AppError::from(wit::Error { kind, message: message.clone() });
            assert_eq!(domain.status().as_u16(), status, "{kind:?}");
            assert_eq!(domain.is_internal(), matches!(kind, K::Internal | K::Unavailable), "{kind:?}");
            let back = wit::Error::from(domain);
            assert_eq!(back.kind, kind, "the kind comes back");
            if kind == K::Internal {
                assert_eq!(back.message, INTERNAL_MESSAGE, "a plugin's internal detail is logged, not shown");
            } else {
                assert_eq!(back.message, message, "a client error keeps the plugin's message");
            }
        }
    }

    #[test]
    fn every_domain_error_has_a_contract_kind_and_back() {
        let call = CallError::Timeout { plugin: "p".into(), ms: 5 };
        let errors = [
            AppError::BadRequest("m".into()),
            AppError::not_found("package `x`"),
            AppError::Gone("m".into()),
            AppError::Unavailable("m".into()),
            AppError::Unauthorized("m".into()),
            AppError::Forbidden("m".into()),
            AppError::Conflict("m".into()),
            AppError::TooLarge("m".into()),
            AppError::Unsupported("m".into()),
            AppError::Plugin(call),
            AppError::Internal(anyhow::anyhow!("m")),
        ];
        let statuses: std::collections::HashMap<_, _> = every_kind().into_iter().map(|(k, s)| (k as u8, s)).collect();
        for e in errors {
            let status = e.status().as_u16();
            let shown = e.to_string();
            let out = wit::Error::from(e);
            assert_eq!(statuses[&(out.kind as u8)], status, "{shown}: one table for both sides");
            let again = AppError::from(out.clone());
            assert_eq!(again.status().as_u16(), status, "{shown}: comes back as the same kind");
            let message = wit::Error::from(again).message;
            if status < 500 || status == 502 {
                // An upstream failure's message is the host's own words, shown as they are.
                assert_eq!(message, out.message, "{shown}: and the same message");
            } else {
                // A plugin's internal error is an internal failure: its words are not shown.
                assert_eq!(message, INTERNAL_MESSAGE, "{shown}");
            }
        }
    }

    #[test]
    fn the_hosts_wording_reaches_every_client_alike() {
        let e = AppError::not_found("repository `x`");
        assert_eq!(e.to_string(), "repository `x` not found");
        assert_eq!(wit::Error::from(e).message, "repository `x` not found");
        let db = AppError::from(DbError::NotFound("version 1.0.0 of `x`".into()));
        assert_eq!(db.status(), StatusCode::NOT_FOUND);
        assert_eq!(wit::Error::from(db).message, "version 1.0.0 of `x` not found");
        let conflict = AppError::from(DbError::Conflict("x 1.0.0".into()));
        assert_eq!(wit::Error::from(conflict).message, "x 1.0.0 already exists");
        let too_large = AppError::from(BlobError::TooLarge { limit: 10 });
        assert_eq!(too_large.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    /// Internal failures of the store and the blob store: never a 4xx, never their detail.
    #[test]
    fn internal_detail_is_hidden_everywhere() {
        let secret = "/var/lib/sluice/blobs/ab/cd: permission denied";
        let failures = [
            AppError::from(BlobError::Io {
                context: secret.into(),
                source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
            }),
            AppError::from(BlobError::Config(secret.into())),
            AppError::from(DbError::Aborted(secret.into())),
            AppError::from(DbError::Sqlite(rusqlite::Error::InvalidPath(secret.into()))),
            AppError::from(wit::Error { kind: K::Internal, message: secret.into() }),
            AppError::Internal(anyhow::anyhow!("{secret}")),
        ];
        for e in failures {
            assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR, "{e:#}");
            assert!(e.is_internal());
            assert_eq!(e.client_message(), INTERNAL_MESSAGE);
            let out = wit::Error::from(e);
            assert_eq!(out.kind, K::Internal);
            assert!(!out.message.contains("permission") && !out.message.contains("/var"), "{}", out.message);
        }
    }

    #[tokio::test]
    async fn the_json_form_hides_internal_detail_and_keeps_client_messages() {
        let body = |e: AppError| async move {
            let resp = e.into_response();
            let status = resp.status();
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16).await.unwrap();
            let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            (status, json["error"].as_str().unwrap().to_string())
        };
        let (status, message) = body(AppError::Internal(anyhow::anyhow!("disk /srv/x on fire"))).await;
        assert_eq!((status, message.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_MESSAGE));
        let (status, message) = body(AppError::Gone("x 1.0.0 was deleted".into())).await;
        assert_eq!((status, message.as_str()), (StatusCode::GONE, "x 1.0.0 was deleted"));
        let (status, message) = body(AppError::Forbidden("token `t` may not publish".into())).await;
        assert_eq!((status, message.as_str()), (StatusCode::FORBIDDEN, "forbidden: token `t` may not publish"));
    }
}
