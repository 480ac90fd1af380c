//! `npm token list`: the caller's tokens in the shape the npm registry gives them
//! (`GET /-/npm/v1/tokens`), which npm pages through by `urls.next` and prints.

use serde_json::{json, Value};
use sluice_plugin_sdk::http::rfc3339_ms;
use sluice_plugin_sdk::TokenInfo;

/// What npm shows before `…` in place of the secret, which the host never keeps: every Sluice
/// token begins with it.
pub const PREVIEW: &str = "sluice_";

/// One page holding every token (a caller has few); no `urls.next`, so npm stops here.
pub fn list(tokens: &[TokenInfo]) -> Value {
    let objects: Vec<Value> = tokens.iter().map(object).collect();
    json!({ "objects": objects, "total": objects.len(), "urls": {} })
}

fn object(token: &TokenInfo) -> Value {
    let can_publish = token.scopes.iter().any(|s| s == "publish" || s == "admin");
    let mut object = json!({
        "key": token.key,
        "token": PREVIEW,
        "name": token.name,
        "created": rfc3339_ms(token.created_ms),
        "updated": rfc3339_ms(token.last_used_ms.unwrap_or(token.created_ms)),
        "readonly": !can_publish,
        "automation": false,
        "cidr_whitelist": null,
        "scopes": token.scopes,
    });
    if let Some(expires) = token.expires_ms {
        object["expires"] = json!(rfc3339_ms(expires));
    }
    if let Some(repository) = &token.repository {
        object["repository"] = json!(repository);
    }
    object
}
