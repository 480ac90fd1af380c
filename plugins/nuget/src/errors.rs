//! Errors as nuget.exe shows them: the status line and a plain-text body.

use sluice_plugin_sdk::http;
use sluice_plugin_sdk::{Error, ErrorKind, Response};

/// nuget.exe shows the status line and the plain-text body of a failed request.
pub fn render_error(err: &Error) -> Response {
    if err.kind == ErrorKind::Internal {
        return http::text(500, "internal server error");
    }
    http::text(err.kind.status(), err.message.clone())
}
