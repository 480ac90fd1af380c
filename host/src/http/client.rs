//! `/{repository}/...`: format clients' requests, handed to the repository's plugin.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use crate::app::documents::Kept;
use crate::auth::{Scope, CREDENTIAL_HEADERS};
use crate::error::AppError;
use crate::plugin::wit;
use crate::registry::{ClientRequest, Registry, Reply};
use crate::store::PendingBlob;

pub async fn serve(
    State(registry): State<super::State>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    match serve_inner(registry, addr, request).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn serve_inner(registry: super::State, addr: SocketAddr, request: Request) -> Result<Response, AppError> {
    let (parts, body) = request.into_parts();
    let raw_path = parts.uri.path();
    let (repo_name, rest) = match raw_path.trim_start_matches('/').split_once('/') {
        Some((r, rest)) => (r.to_string(), format!("/{rest}")),
        None => (raw_path.trim_start_matches('/').to_string(), "/".to_string()),
    };
    if repo_name.is_empty() {
        return Ok((
            StatusCode::OK,
            "Sluice package registry. Repositories are served under /{repository}/; the API is under /api/v1/.\n",
        )
            .into_response());
    }
    let extra_credentials = registry.repository(&repo_name)?.plugin.info.credential_headers.clone();
    let base_url = format!("{}/{repo_name}", super::external_url(&registry, &parts.headers));
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter(|(k, _)| {
            !CREDENTIAL_HEADERS.contains(&k.as_str()) && !extra_credentials.iter().any(|h| h == k.as_str())
        })
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let user_agent = parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_string);

    // Who is asking is settled before the body is read, so that a body nobody may send is
    // refused without storing it.
    let (reg, headers_map, extra) = (registry.clone(), parts.headers.clone(), extra_credentials.clone());
    let (principal, bad_credential) =
        super::blocking(move || match super::principal_from(&reg, &headers_map, &extra) {
            Ok(p) => Ok((p, false)),
            Err(AppError::Unauthorized(_)) => Ok((None, true)),
            Err(e) => Err(e),
        })
        .await?;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let has_body = parts.headers.contains_key(header::TRANSFER_ENCODING) || declared.is_some_and(|n| n > 0);
    let spooled = if has_body {
        let max_upload = registry.config.max_upload_mb << 20;
        let anonymous_limit = registry.config.anonymous_body_kb << 10;
        // A group's writes land in its first local member: that is where the token must publish.
        let target = registry.write_target(&repo_name).map_or(repo_name.as_str(), |r| r.name());
        let may_publish = principal.as_ref().is_some_and(|p| p.allows(Scope::Publish, Some(target)));
        let writes = matches!(parts.method, Method::PUT | Method::PATCH | Method::DELETE);
        let refusal = if bad_credential {
            Some(AppError::Unauthorized("the token is not valid (it may have been revoked or expired)".to_string()))
        } else if declared.is_some_and(|n| n > max_upload) {
            Some(AppError::TooLarge(format!(
                "the request body is larger than the limit of {} MiB",
                registry.config.max_upload_mb
            )))
        } else if !may_publish && (writes || declared.is_some_and(|n| n > anonymous_limit)) {
            Some(match &principal {
                None => AppError::Unauthorized(
                    "authentication required: this needs a token with the `publish` scope".to_string(),
                ),
                Some(p) => {
                    AppError::Forbidden(format!("token `{}` may not publish to repository `{repo_name}`", p.name))
                }
            })
        } else {
            None
        };
        if let Some(refusal) = refusal {
            tracing::info!(repository = %repo_name, method = %parts.method, client = %addr.ip(), declared, error = %refusal.client_message(), "request body refused before reading");
            return render(&registry, &repo_name, refusal).await;
        }
        match spool(&registry, body, if may_publish { max_upload } else { anonymous_limit }).await {
            Ok(b) => Some(b),
            // The client's protocol shapes every error of its request, through the domain error.
            Err(e) => return render(&registry, &repo_name, e).await,
        }
    } else {
        None
    };
    let is_head = parts.method == Method::HEAD;
    let req = ClientRequest {
        method: parts.method.to_string(),
        path: rest,
        query: parts.uri.query().unwrap_or("").to_string(),
        headers,
        base_url,
        principal,
        bad_credential,
        client_addr: Some(addr.ip().to_string()),
        user_agent,
        body: spooled,
    };
    // A kept document that is still fresh costs what serving stored bytes costs: no blocking
    // thread, no plugin call, no query.
    if let Some(kept) = Registry(&registry).fresh_document(registry.repository(&repo_name)?, &req) {
        return Ok(kept_response(&registry, &kept, &parts.headers, is_head, &req.path));
    }
    let (reg, path) = (registry.clone(), req.path.clone());
    let reply = super::blocking(move || {
        let repo = reg.repository(&repo_name)?;
        Ok(Registry(&reg).serve_client(repo, req))
    })
    .await?;
    match reply {
        Reply::Response(r) => Ok(response_of(r)),
        Reply::Kept(kept) => Ok(kept_response(&registry, &kept, &parts.headers, is_head, &path)),
        Reply::Blob { sha256, content_type } => {
            super::blob::blob_response(&registry, &sha256, &content_type, is_head).await
        }
    }
}

/// An error in the way the repository's clients show errors.
async fn render(registry: &super::State, repo_name: &str, err: AppError) -> Result<Response, AppError> {
    let (reg, name) = (registry.clone(), repo_name.to_string());
    let r = super::blocking(move || Ok(Registry(&reg).render_error(reg.repository(&name)?, err))).await?;
    Ok(response_of(r))
}

/// Streams the body to a pending blob, refusing more than `limit` bytes. A client that
/// disconnects, or stalls past the body idle timeout, leaves only a temp file that is removed
/// when the pending blob drops.
async fn spool(registry: &super::State, body: Body, limit: u64) -> Result<PendingBlob, AppError> {
    let mut writer = registry.blobs.writer(limit)?;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| AppError::BadRequest(format!("reading the request body failed: {e}")))?;
        writer.write_chunk(&chunk)?;
    }
    Ok(writer.finish()?)
}

/// A kept document, with its validators: `If-None-Match` that matches is a 304, a single
/// `Range` of bytes is a 206 (RubyGems clients fetch only the new end of `/versions`), an
/// unsatisfiable one a 416.
fn kept_response(registry: &super::State, kept: &Kept, headers: &HeaderMap, is_head: bool, path: &str) -> Response {
    use std::sync::atomic::Ordering;
    let mut resp = response_of(wit::Response { status: kept.status, headers: kept.headers.clone(), body: Vec::new() });
    let h = resp.headers_mut();
    if kept.status == 200 {
        h.insert(header::ETAG, HeaderValue::from_str(&kept.etag).expect("hex is a valid header"));
        h.insert("repr-digest", HeaderValue::from_str(&kept.digest).expect("base64 is a valid header"));
        // The older RFC 3230 form too, which RubyGems clients and rubygems.org still use.
        let legacy = kept.digest.replace("=:", "=").trim_end_matches(':').to_string();
        h.insert("digest", HeaderValue::from_str(&legacy).expect("base64 is a valid header"));
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    }
    let if_none_match = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok());
    if kept.status == 200 && if_none_match.is_some_and(|v| etag_matches(v, &kept.etag)) {
        registry.documents.stats.not_modified.fetch_add(1, Ordering::Relaxed);
        *resp.status_mut() = StatusCode::NOT_MODIFIED;
        resp.headers_mut().remove(header::CONTENT_TYPE);
        return resp;
    }
    let len = kept.body.len() as u64;
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).filter(|_| kept.status == 200);
    let (body, status) = match range.map(|r| byte_range(r, len)) {
        Some(Some((start, end))) => {
            tracing::info!(path, range = %format!("{start}-{end}"), size = len, "served a range of a kept document");
            resp.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")).expect("digits are a valid header"),
            );
            (kept.body.slice(start as usize..=end as usize), StatusCode::PARTIAL_CONTENT)
        }
        Some(None) => {
            resp.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{len}")).expect("digits are a valid header"),
            );
            (bytes::Bytes::new(), StatusCode::RANGE_NOT_SATISFIABLE)
        }
        None => {
            let status = StatusCode::from_u16(kept.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            match kept.gzip.as_ref().filter(|_| accepts_gzip(headers)) {
                Some(gz) => {
                    // Another representation of the same bytes: its validator is the weak form of
                    // the document's (as nginx's gzip does), so a client's If-None-Match still
                    // matches either, and Bundler, which drops `W/`, still sees the MD5.
                    let h = resp.headers_mut();
                    h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                    h.insert(
                        header::ETAG,
                        HeaderValue::from_str(&format!("W/{}", kept.etag)).expect("hex is a valid header"),
                    );
                    (gz.clone(), status)
                }
                None => (kept.body.clone(), status),
            }
        }
    };
    if kept.gzip.is_some() {
        resp.headers_mut().append(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    if !is_head {
        *resp.body_mut() = Body::from(body);
    }
    resp
}

/// Whether the client takes gzip (`Accept-Encoding: gzip`, not with `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |c| {
            let mut parts = c.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let refused =
                parts.any(|p| matches!(p.trim().replace(' ', "").as_str(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        },
    )
}

/// Whether an `If-None-Match` list names this entity tag (weak comparison, as RFC 9110 says
/// for this header; `*` matches any).
fn etag_matches(list: &str, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").trim_matches('"').to_string();
    list.split(',').any(|t| t.trim() == "*" || bare(t) == bare(etag))
}

/// The one byte range of `bytes=A-B`, `bytes=A-` or `bytes=-N` within `len` bytes, inclusive;
/// none when it lies outside. Several ranges are answered with the whole document (allowed).
fn byte_range(spec: &str, len: u64) -> Option<(u64, u64)> {
    let spec = spec.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || len == 0 {
        return if spec.contains(',') { Some((0, len.saturating_sub(1))) } else { None };
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        return (n > 0).then(|| (len.saturating_sub(n), len - 1));
    }
    let start: u64 = a.parse().ok()?;
    let end = if b.is_empty() { len - 1 } else { b.parse::<u64>().ok()?.min(len - 1) };
    (start < len && start <= end).then_some((start, end))
}

/// A plugin's response. Unless the plugin says otherwise, clients must revalidate it: what a
/// repository lists changes with every publish and every pipeline that releases a version, and
/// a cached 404 would hide a version that was released a moment later.
fn response_of(r: wit::Response) -> Response {
    let mut resp = Response::new(Body::from(r.body));
    *resp.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in r.headers {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
            resp.headers_mut().append(k, v);
        }
    }
    if !resp.headers().contains_key(header::CACHE_CONTROL) {
        resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_as_clients_send_them() {
        assert_eq!(byte_range("bytes=10-", 100), Some((10, 99)));
        assert_eq!(byte_range("bytes=10-19", 100), Some((10, 19)));
        assert_eq!(byte_range("bytes=90-200", 100), Some((90, 99)));
        assert_eq!(byte_range("bytes=-5", 100), Some((95, 99)));
        assert_eq!(byte_range("bytes=100-", 100), None, "past the end is unsatisfiable");
        assert_eq!(byte_range("bytes=0-1,5-6", 100), Some((0, 99)));
        assert_eq!(byte_range("items=0-1", 100), None);
    }

    #[test]
    fn gzip_is_taken_unless_refused() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
            accepts_gzip(&h)
        };
        assert!(with("gzip, deflate, br"));
        assert!(with("deflate, gzip;q=0.5"));
        assert!(with("*"));
        assert!(!with("gzip;q=0"));
        assert!(!with("br, identity"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn if_none_match_compares_weakly() {
        assert!(etag_matches("\"abc\"", "\"abc\""));
        assert!(etag_matches("W/\"abc\", \"def\"", "\"def\""));
        assert!(etag_matches("abc", "\"abc\""));
        assert!(etag_matches("*", "\"x\""));
        assert!(!etag_matches("\"abd\"", "\"abc\""));
    }
}
