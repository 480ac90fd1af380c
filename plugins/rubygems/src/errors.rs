//! Errors as `gem` and `bundle` print them: plain text.

use sluice_plugin_sdk::http;
use sluice_plugin_sdk::{Error, ErrorKind, Response};

/// Renders an error as plain text with its status; `gem` prints the body as it is.
pub fn render_error(err: &Error) -> Response {
    let message = match err.kind {
        ErrorKind::Unauthorized | ErrorKind::Forbidden => format!("Access Denied. {}", err.message),
        // The host refuses a second file with the same name, version and platform.
        ErrorKind::Conflict => format!("Repushing of gem versions is not allowed.\n{}", err.message),
        ErrorKind::Internal => "Internal server error".to_string(),
        _ => err.message.clone(),
    };
    http::text(err.kind.status(), format!("{}\n", message.trim_end()))
}
