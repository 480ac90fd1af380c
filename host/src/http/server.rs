//! The accept loop, and the guards a server on a network needs against slow and abusive
//! clients: a limit on connections served at once (kept below the open-file limit, which is
//! raised at start where the hard limit allows, so `/health` keeps answering), a time limit on
//! a request's headers (hyper's, which also holds a client that sends one byte every few
//! seconds to the limit), an idle timeout on keep-alive connections, and (in [`super::router`])
//! an idle timeout on request bodies.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt as _;

/// Descriptors kept free for the database, blobs, plugins' cache and outbound requests.
const RESERVED_FILES: u64 = 256;

/// Raises the soft open-file limit to the hard one and returns how many connections fit below
/// it: at most `wanted`.
fn connection_limit(wanted: u64) -> usize {
    let soft = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!(error = %e, "could not read or raise the open-file limit");
            1024
        }
    };
    let fit = soft.saturating_sub(RESERVED_FILES).max(16);
    if fit < wanted {
        tracing::warn!(
            open_file_limit = soft,
            max_connections = fit,
            configured = wanted,
            "connections limited by the open-file limit"
        );
    }
    wanted.min(fit) as usize
}

/// The answer to every request while the server is starting: `/health` is live (200,
/// `starting`), everything else (`/ready` included) is 503 with a `Retry-After`.
fn starting(path: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    let body = axum::Json(serde_json::json!({ "status": "starting" }));
    if path == "/health" {
        return body.into_response();
    }
    (axum::http::StatusCode::SERVICE_UNAVAILABLE, [(axum::http::header::RETRY_AFTER, "2")], body).into_response()
}

/// Serves on `listener` until the process ends: [`starting`] until `app` is set, then `app`.
pub async fn run(
    listener: tokio::net::TcpListener,
    app: Arc<std::sync::OnceLock<axum::Router>>,
    config: &crate::config::Config,
) -> anyhow::Result<()> {
    let limit = connection_limit(config.max_connections);
    let permits = Arc::new(tokio::sync::Semaphore::new(limit));
    let header_timeout = Duration::from_secs(config.header_timeout_secs);
    let idle = Duration::from_secs(config.keepalive_idle_secs);
    tracing::info!(
        max_connections = limit,
        header_timeout_secs = config.header_timeout_secs,
        keepalive_idle_secs = config.keepalive_idle_secs,
        "accepting connections"
    );
    loop {
        // Waiting for a permit before accepting leaves further clients in the listen backlog.
        let permit = permits.clone().acquire_owned().await.expect("the semaphore is never closed");
        let (stream, addr) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of descriptors or a connection reset before accept: wait a moment, go on.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let busy = Arc::new(AtomicUsize::new(0));
        let io = TokioIo::new(IdleTimeout::new(stream, idle, busy.clone()));
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(addr));
            let busy = Busy::start(busy.clone());
            let app = app.get().cloned();
            async move {
                let response = match app {
                    Some(app) => app.oneshot(req.map(axum::body::Body::new)).await,
                    None => Ok(starting(req.uri().path())),
                };
                drop(busy);
                response
            }
        });
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .keep_alive(true)
                .serve_connection(io, service);
            if let Err(e) = conn.await {
                tracing::debug!(client = %addr, error = %e, "connection ended");
            }
            drop(permit);
        });
    }
}

/// Counts a request in flight on its connection for as long as it lives.
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn start(count: Arc<AtomicUsize>) -> Busy {
        count.fetch_add(1, Ordering::SeqCst);
        Busy(count)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A connection that fails its read once it has been idle (nothing read or written, no request
/// being answered) for `idle`: how a keep-alive connection nobody uses gets closed. A request
/// being answered (a runner's long poll, a slow plugin call) is never idle.
struct IdleTimeout<S> {
    inner: S,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
    busy: Arc<AtomicUsize>,
}

impl<S> IdleTimeout<S> {
    fn new(inner: S, idle: Duration, busy: Arc<AtomicUsize>) -> Self {
        IdleTimeout { inner, idle, deadline: Box::pin(tokio::time::sleep(idle)), busy }
    }

    fn active(&mut self) {
        let next = Instant::now() + self.idle;
        self.deadline.as_mut().reset(next);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for IdleTimeout<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.active();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                if self.busy.load(Ordering::SeqCst) == 0 && self.deadline.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "idle keep-alive connection closed",
                    )));
                }
                Poll::Pending
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.active();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.active();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
