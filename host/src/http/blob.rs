//! Stored files as responses: the one place a blob becomes an HTTP response, whichever backend
//! holds it (the client protocol's file downloads and the runner API's push files both end here).

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::Response;

use crate::app::App;
use crate::error::AppError;

/// The blob with this sha256: its size alone for a HEAD; for a GET, a redirect to a presigned URL
/// when `blob_redirect` is set and the backend gives one, else the bytes, streamed (never held
/// whole). 404 when the store has no such blob.
pub async fn blob_response(registry: &App, sha256: &str, content_type: &str, head: bool) -> Result<Response, AppError> {
    let missing = || AppError::not_found(format!("file {sha256}"));
    let internal = AppError::from;
    let builder = Response::builder().status(StatusCode::OK).header(header::CONTENT_TYPE, content_type);
    if head {
        let size = registry.blobs.size(sha256).await.map_err(internal)?.ok_or_else(missing)?;
        return Ok(builder.header(header::CONTENT_LENGTH, size).body(Body::empty()).expect("valid response"));
    }
    if registry.config.blob_redirect {
        if let Some(url) = registry.blobs.presigned_url(sha256).await.map_err(internal)? {
            // The URL expires: a cached redirect would outlive it.
            return Ok(Response::builder()
                .status(StatusCode::TEMPORARY_REDIRECT)
                .header(header::LOCATION, url)
                .header(header::CACHE_CONTROL, "no-store")
                .body(Body::empty())
                .expect("valid response"));
        }
    }
    let read = registry.blobs.read(sha256).await.map_err(internal)?.ok_or_else(missing)?;
    Ok(builder.header(header::CONTENT_LENGTH, read.size).body(Body::from_stream(read.stream)).expect("valid response"))
}
