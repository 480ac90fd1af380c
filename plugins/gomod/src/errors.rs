//! Errors as the go command prints them.

use sluice_plugin_sdk::http::text;
use sluice_plugin_sdk::{Error, ErrorKind};

/// Errors as plain text: the go command prints the body after the status line.
pub fn render_error(err: &Error) -> sluice_plugin_sdk::Response {
    let status = err.kind.status();
    let body = if err.kind == ErrorKind::Internal { "internal server error".to_string() } else { err.message.clone() };
    let response = text(status, format!("{body}\n"));
    if err.kind == ErrorKind::Unauthorized {
        response.with_header("www-authenticate", "Basic realm=\"sluice\"")
    } else {
        response
    }
}
