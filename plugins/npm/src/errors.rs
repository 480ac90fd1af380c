//! Errors as npm shows them: a JSON body whose `error` field npm prints after the status line.

use crate::protocol::{publish_over, STALE_REV};
use serde_json::json;
use sluice_plugin_sdk::{http, Error, ErrorKind, Response};

/// Renders an error for npm. npmjs answers a republished version with 403 and a fixed sentence,
/// so a conflict from the host (which does not know npm's wording) is reworded the same way.
///
/// A 401 carries no `www-authenticate` header on purpose: with one, npm replaces the message by
/// "Unable to authenticate, need: ..."; without it, npm prints the status and this message.
pub fn render(err: Error) -> Response {
    let (status, message) = match err.kind {
        ErrorKind::Conflict if !err.message.starts_with(STALE_REV) => (403, republish_message(err.message)),
        kind => (kind.status(), err.message),
    };
    http::json(status, &json!({ "error": message }))
}

/// npm's sentence for a republished version, with the version taken from the host's message
/// (`NAME VERSION already exists`: the last word that is a version, as a name may look like one).
fn republish_message(message: String) -> String {
    if message.starts_with("You cannot publish over") {
        return message;
    }
    let version = message
        .split(|c: char| c.is_whitespace() || "\"'`,;:()".contains(c))
        .map(|word| word.trim_end_matches('.'))
        .rfind(|word| semver::Version::parse(word.trim_start_matches('v')).is_ok());
    match version {
        Some(v) => publish_over(v.trim_start_matches('v')).message,
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(kind: ErrorKind, message: &str) -> (u16, serde_json::Value) {
        let r = render(Error::new(kind, message));
        assert!(r.headers.iter().all(|(k, _)| k != "www-authenticate"));
        (r.status, serde_json::from_slice(&r.body).unwrap())
    }

    #[test]
    fn errors_are_json_with_npm_statuses() {
        assert_eq!(rendered(ErrorKind::Invalid, "bad"), (400, json!({"error": "bad"})));
        assert_eq!(rendered(ErrorKind::Unauthorized, "who").0, 401);
        assert_eq!(rendered(ErrorKind::TooLarge, "big").0, 413);
        assert_eq!(
            rendered(ErrorKind::Conflict, "1.0.0 1.2.3-beta.1 already exists"),
            (403, json!({"error": "You cannot publish over the previously published versions: 1.2.3-beta.1."}))
        );
        assert_eq!(rendered(ErrorKind::Conflict, "already exists").1["error"], "already exists");
        assert_eq!(rendered(ErrorKind::Conflict, &format!("{STALE_REV} (x)")).0, 409);
    }
}
