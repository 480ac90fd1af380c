//! The domain error, [`AppError`]: one kind per answer the HTTP API and the plugin contract
//! know, with the one conversion from each lower layer's error (the store's [`DbError`], the
//! blob store's [`BlobError`], a plugin call's [`CallError`]) and the one mapping to each way it
//! is shown: an HTTP/JSON response ([`IntoResponse`]), the plugin contract's error for a
//! format's `render-error` (`From<AppError> for wit::Error`), and the web UI's pages (`UiError`,
//! from this). Internal failures are logged with their detail and shown as a bare message.
//!
//! May call: `store`, `plugin` (the error types only).

use crate::plugin::{wit, CallError};
use crate::store::{BlobError, DbError};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("authentication required: {0}")]
    Unauthorized(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("upload too large: {0}")]
    TooLarge(String),
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
            DbError::NotFound(what) => AppError::NotFound(what),
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

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Plugin(_) | AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The plugin contract's form, for a format's `render-error` (the client protocol). The message
/// is what the format's client shows: an internal failure's detail is logged here instead.
impl From<AppError> for wit::Error {
    fn from(e: AppError) -> Self {
        use wit::ErrorKind as K;
        let (kind, message) = match e {
            AppError::NotFound(_) => (K::NotFound, e.to_string()),
            AppError::BadRequest(m) => (K::Invalid, m),
            AppError::Unauthorized(m) => (K::Unauthorized, m),
            AppError::Forbidden(m) => (K::Forbidden, m),
            AppError::Conflict(m) => (K::Conflict, m),
            AppError::TooLarge(m) => (K::TooLarge, m),
            AppError::Plugin(_) => (K::Internal, e.to_string()),
            AppError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "internal error");
                (K::Internal, INTERNAL_MESSAGE.to_string())
            }
        };
        wit::Error { kind, message }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            AppError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "internal error");
                INTERNAL_MESSAGE.to_string()
            }
            other => other.to_string(),
        };
        let mut resp = (status, Json(serde_json::json!({ "error": message }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert("www-authenticate", "Bearer realm=\"sluice\"".parse().expect("static header"));
        }
        resp
    }
}
