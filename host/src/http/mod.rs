//! The HTTP server: `/{repository}/...` goes to the repository's format plugin, `/api/v1/...` is
//! the native API, `/` and `/ui/...` are the web UI ([`ui`]), `/health` answers load balancers.
//! Who may do what is settled in [`access`], the one authorisation entry.
//!
//! May call: every module below it (`registry`, `pipeline`, `store`, `auth`, `domain`, `plugin`,
//! `config`, `error`, `git_source`, and `runner::protocol` for the jobs API's wire types). Nothing
//! but `main` calls it.

pub mod access;
mod api;
mod blob;
mod client;
mod metrics;
mod openapi;
mod pipelines;
mod server;
pub mod ui;

pub use access::{principal_from, Caller, JobToken};

use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;

use crate::app::App;
use crate::error::AppError;

pub type State = Arc<App>;

pub fn router(registry: State) -> Router {
    Router::new()
        .route("/health", get(|| async { axum::Json(serde_json::json!({ "status": "ok" })) }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics::metrics))
        // The native API, with its OpenAPI document at /api/v1/openapi.json.
        .merge(openapi::router())
        // The web UI: `/` is its repositories page; its other pages live under `/ui/`.
        .route("/", get(ui::home))
        .merge(ui::router())
        .fallback(client::serve)
        .layer(axum::middleware::from_fn_with_state(registry.clone(), ui::package_badges))
        // A body that sends nothing for this long is dropped (its spooled temp file with it).
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(Duration::from_secs(
            registry.config.body_idle_timeout_secs,
        )))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(registry)
}

/// Binds, serves `/health` (as `starting`) while the plugins compile and the store opens, then
/// prints `sluice listening on http://ADDR` (scripts and tests read it: from then on every route
/// answers) and serves until the process ends.
pub async fn serve(config: crate::config::Config) -> anyhow::Result<()> {
    let listen = config.listen.clone();
    let listener =
        tokio::net::TcpListener::bind(&listen).await.map_err(|e| anyhow::anyhow!("listen on {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    let app: Arc<std::sync::OnceLock<Router>> = Arc::default();
    let accepting = {
        let (app, config) = (app.clone(), config.clone());
        tokio::spawn(async move { server::run(listener, app, &config).await })
    };
    let started = std::time::Instant::now();
    tracing::info!(%addr, "starting: loading plugins and the store; /health answers `starting` meanwhile");
    let registry = Arc::new(tokio::task::spawn_blocking(move || App::open(config)).await??);
    tracing::info!(%addr, seconds = started.elapsed().as_secs_f64(), repositories = ?registry.repositories.keys().collect::<Vec<_>>(), "ready");
    // Several replicas: hear the others' writes, and take the lead of the background work if no
    // replica has it (a lone server always does).
    registry.db.listen_to_other_replicas();
    {
        let r = registry.clone();
        tokio::task::spawn_blocking(move || crate::app::leader::first_step(&r)).await?;
    }
    tokio::spawn(crate::app::leader::keep_leading(registry.clone()));
    tokio::spawn(wake_on_other_replicas_writes(registry.clone()));
    tokio::spawn(crate::pipeline::run_background(registry.clone()));
    tokio::spawn(crate::registry::poll_git(registry.clone()));
    tokio::spawn(registry.clone().clean_periodically());
    tokio::spawn(crate::registry::refresh_documents(registry.clone()));
    let _ = app.set(router(registry));
    println!("sluice listening on http://{addr}");
    accepting.await?
}

/// Another replica's write may have queued a job or a webhook delivery: the runners waiting here
/// and the webhook sender look again.
async fn wake_on_other_replicas_writes(app: Arc<App>) {
    loop {
        app.db.changes().writes.notified().await;
        app.events.jobs.notify_waiters();
        app.events.webhooks.notify_one();
    }
}

/// `/ready`, for load balancers: 200 once the store answers, 503 otherwise (and while starting).
async fn ready(axum::extract::State(registry): axum::extract::State<State>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let reg = registry.clone();
    let check = move || -> anyhow::Result<()> {
        reg.db.ping()?;
        reg.blobs.ping()?;
        Ok(())
    };
    match tokio::task::spawn_blocking(check).await {
        Ok(Ok(())) => axum::Json(serde_json::json!({ "status": "ready" })).into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready");
            (axum::http::StatusCode::SERVICE_UNAVAILABLE, axum::Json(serde_json::json!({ "status": "unavailable" })))
                .into_response()
        }
        Err(_) => axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

/// Runs blocking work (SQLite, plugin calls) off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("blocking task failed: {e}")))?
}

/// The server's external URL without a trailing slash: the configured `public_url`, or the
/// scheme and host the request came to.
pub fn external_url(registry: &App, headers: &HeaderMap) -> String {
    if let Some(u) = &registry.config.public_url {
        return u.trim_end_matches('/').to_string();
    }
    let host = headers.get(axum::http::header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("localhost");
    let proto = headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).unwrap_or("http");
    format!("{proto}://{host}")
}
