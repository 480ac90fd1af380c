//! Pipeline status changes as signed webhooks: each change is recorded as a delivery per
//! configured receiver, then sent (and retried with backoff) by the background task.

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use crate::app::App;
use crate::store::db::StatusChange;

/// Attempts per delivery: at once, then after 1, 2, 4, 8 and 16 seconds.
const MAX_ATTEMPTS: i64 = 6;

/// `sha256=` + hex HMAC-SHA256 of the body with the receiver's secret.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

pub(super) fn enqueue(reg: &App, change: &StatusChange) {
    let p = &change.pipeline;
    let Ok(repo) = reg.repository(&p.repository) else { return };
    if repo.config.webhooks.is_empty() {
        return;
    }
    let push = reg.db.push(p.push_id).ok().flatten();
    let payload = json!({
        "event": "pipeline",
        "repository": p.repository,
        "format": repo.plugin.name(),
        "pipeline": {
            "id": p.id,
            "status": p.status,
            "previous_status": change.previous,
            "source": p.source,
            "created_at": p.created_at,
            "finished_at": p.finished_at,
        },
        "push": push,
    })
    .to_string();
    for hook in &repo.config.webhooks {
        if let Err(e) = reg.db.insert_delivery(&p.repository, &hook.url, p.id, &payload) {
            tracing::error!(repository = %p.repository, pipeline = p.id, error = %e, "could not record webhook delivery");
        }
    }
    reg.events.webhooks.notify_one();
}

pub(super) async fn deliver_due(reg: &std::sync::Arc<App>, http: &reqwest::Client) {
    let r = reg.clone();
    let due = match tokio::task::spawn_blocking(move || r.db.due_deliveries(MAX_ATTEMPTS)).await {
        Ok(Ok(d)) => d,
        _ => return,
    };
    for d in due {
        let Some(secret) = reg
            .repository(&d.repository)
            .ok()
            .and_then(|r| r.config.webhooks.iter().find(|h| h.url == d.url).map(|h| h.secret.clone()))
        else {
            continue;
        };
        // Checked again at each delivery: the config may have changed since it was recorded.
        if let Err(e) = crate::outbound::check_url(&d.url, reg.config.allow_local_webhooks) {
            tracing::warn!(url = %d.url, delivery = d.id, error = %e, "webhook target refused");
            let r = reg.clone();
            let _ = tokio::task::spawn_blocking(move || {
                r.db.record_attempt(d.id, None, Some(&format!("refused: {e}")), false, i64::MAX / 4)
            })
            .await;
            continue;
        }
        let result = http
            .post(&d.url)
            .header("content-type", "application/json")
            .header("x-sluice-event", "pipeline")
            .header("x-sluice-delivery", d.id.to_string())
            .header("x-sluice-signature", signature(&secret, d.payload.as_bytes()))
            .body(d.payload.clone())
            .send()
            .await;
        let (code, error) = match result {
            Ok(resp) if resp.status().is_success() => (Some(resp.status().as_u16()), None),
            Ok(resp) => (Some(resp.status().as_u16()), Some(format!("receiver answered {}", resp.status()))),
            Err(e) => (None, Some(e.to_string())),
        };
        let delivered = error.is_none();
        let retry_in = 1000i64 << d.attempts.min(10);
        if !delivered {
            tracing::warn!(url = %d.url, delivery = d.id, attempt = d.attempts + 1, error = error.as_deref().unwrap_or(""), "webhook delivery failed");
        }
        let r = reg.clone();
        let _ =
            tokio::task::spawn_blocking(move || r.db.record_attempt(d.id, code, error.as_deref(), delivered, retry_in))
                .await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn signature_is_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            super::signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
