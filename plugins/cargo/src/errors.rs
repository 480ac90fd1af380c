//! Errors as cargo prints a registry's.

use crate::protocol::already_uploaded;
use serde_json::json;
use sluice_plugin_sdk::http;
use sluice_plugin_sdk::{Error, ErrorKind, Response};

/// Renders an error the way cargo prints a registry's: `{"errors":[{"detail":"..."}]}`, shown
/// after the status line.
pub fn render_error(err: &Error) -> Response {
    let detail = match err.kind {
        // The host refuses a duplicate (name, version) it cannot see the gate hiding; say it the
        // way crates.io does.
        ErrorKind::Conflict => republish_detail(&err.message),
        ErrorKind::Internal => "internal server error".to_string(),
        _ => err.message.clone(),
    };
    http::json(err.kind.status(), &json!({ "errors": [{ "detail": detail }] }))
}

fn republish_detail(message: &str) -> String {
    if message.starts_with("crate version") {
        return message.to_string();
    }
    let version = message
        .split(|c: char| c.is_whitespace() || "\"'`,;:()".contains(c))
        .rfind(|w| semver::Version::parse(w).is_ok());
    match version {
        Some(v) => already_uploaded(v).message,
        None => message.to_string(),
    }
}
