//! A proxy repository's upstream (`upstream = "https://..."`): the only way a plugin reaches
//! another registry. The plugin names a path; this module joins it with the configured URL, adds
//! the repository's credentials, sends it through the outbound client (`outbound.rs`: no
//! redirects, timeouts, and the address guard unless `allow_local_upstream`), and keeps what the
//! upstream answered with 200:
//!
//! - within `metadata_ttl` a kept answer is served without asking;
//! - after it, the answer is revalidated (`If-None-Match`, `If-Modified-Since`), a 304 keeps it;
//! - when the upstream fails (a connection error, a timeout, a 5xx) a kept answer is served
//!   stale (stale-if-error), logged and counted; with nothing kept it is an error;
//! - `offline = true` never sends: kept answers only.
//!
//! Kept answers are files under `DATA/upstream-cache/REPOSITORY/` (two per answer: the body and a
//! small JSON of its status, validators and time), so they survive a restart, which is what an
//! offline or cut-off proxy needs. A 404 or 410 of the upstream drops the kept answer: the
//! package is gone there. Files are not kept here: a fetched file is stored as a push
//! (`registry/upstream.rs`), and the plugin serves it from the store.
//!
//! Names no format. May call: `outbound`, `config`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED,
};
use reqwest::Url;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::RepositoryConfig;

/// The most an upstream's metadata answer may hold (the largest public package documents are
/// tens of MiB); more is refused rather than held.
const MAX_METADATA_BYTES: usize = 128 << 20;

/// What the upstream (or the kept copy) answered.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// Lower-case names: `content-type`, `etag`, `last-modified` when the upstream sent them.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Served from the kept copy past its time to live (upstream failed, or offline).
    pub stale: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// Offline and nothing kept: the client's "not found".
    #[error("{0}")]
    NotCached(String),
    /// The upstream failed and nothing kept can stand in (a 502).
    #[error("{0}")]
    Failed(String),
    /// The plugin named a URL outside the upstream (a bug of the plugin or a hostile upstream
    /// document): refused, nothing sent.
    #[error("{0}")]
    Refused(String),
}

/// Counters for `/metrics`, since start.
#[derive(Debug, Default)]
pub struct UpstreamStats {
    /// Answered from the kept copy within its time to live.
    pub hits: AtomicU64,
    /// Fetched (200) from the upstream.
    pub fetched: AtomicU64,
    /// Kept copies the upstream confirmed (304).
    pub revalidated: AtomicU64,
    /// Kept copies served because the upstream failed or the repository is offline.
    pub stale_served: AtomicU64,
    /// Requests to the upstream that failed (connection, timeout, 5xx).
    pub failures: AtomicU64,
    /// Files downloaded, verified and stored.
    pub files_stored: AtomicU64,
    /// Files refused: digest mismatch, none given, or a download that failed.
    pub files_refused: AtomicU64,
}

/// One repository's upstream.
pub struct Upstream {
    repository: String,
    /// The configured URL, without a trailing slash.
    base: Url,
    /// The `Authorization` header value, if credentials are configured.
    auth: Option<HeaderValue>,
    ttl: Duration,
    offline: bool,
    client: reqwest::Client,
    cache_dir: PathBuf,
    pub stats: UpstreamStats,
}

/// The small JSON beside a kept body.
#[derive(Serialize, Deserialize)]
struct KeptMeta {
    status: u16,
    headers: Vec<(String, String)>,
    /// When the upstream last gave or confirmed it, ms since the epoch.
    fetched_ms: u64,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Runs a future on the server's runtime from a blocking thread (plugin calls run on one), or
/// on a small runtime of its own outside the server (tools, tests).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle.block_on(f),
        Err(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for an upstream request")
            .block_on(f),
    }
}

impl Upstream {
    /// The repository's upstream, if it has one (the config was validated at load).
    pub fn of(rc: &RepositoryConfig, data: &Path) -> anyhow::Result<Option<Upstream>> {
        let Some(url) = &rc.upstream else { return Ok(None) };
        let base = crate::outbound::check_url(url.trim_end_matches('/'), rc.allow_local_upstream)
            .map_err(|e| anyhow::anyhow!("repository `{}`: upstream {url}: {e}", rc.name))?;
        let auth = match (&rc.upstream_token, &rc.upstream_username, &rc.upstream_password) {
            (Some(token), _, _) => Some(format!("Bearer {token}")),
            (None, Some(user), password) => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{user}:{}", password.as_deref().unwrap_or("")))
            )),
            _ => None,
        };
        let auth = auth
            .map(|v| {
                let mut v = HeaderValue::from_str(&v).map_err(|_| {
                    anyhow::anyhow!("repository `{}`: the upstream credential is not a valid header", rc.name)
                })?;
                v.set_sensitive(true);
                anyhow::Ok(v)
            })
            .transpose()?;
        let cache_dir = data.join("upstream-cache").join(&rc.name);
        std::fs::create_dir_all(&cache_dir).map_err(|e| anyhow::anyhow!("create {}: {e}", cache_dir.display()))?;
        Ok(Some(Upstream {
            repository: rc.name.clone(),
            base,
            auth,
            ttl: rc.metadata_ttl,
            offline: rc.offline,
            client: crate::outbound::client(rc.allow_local_upstream, rc.upstream_timeout),
            cache_dir,
            stats: UpstreamStats::default(),
        }))
    }

    pub fn offline(&self) -> bool {
        self.offline
    }

    /// The URL of `path_or_url`: a path (and query) below the configured URL, or an absolute URL
    /// on the upstream's own scheme, host and port (where its documents point at its files).
    /// Anything else is refused, so the credentials go nowhere else.
    pub fn url_for(&self, path_or_url: &str) -> Result<Url, UpstreamError> {
        if path_or_url.contains("://") {
            let url = Url::parse(path_or_url)
                .map_err(|e| UpstreamError::Refused(format!("`{path_or_url}` is not a valid URL: {e}")))?;
            let same = url.scheme() == self.base.scheme()
                && url.host_str() == self.base.host_str()
                && url.port_or_known_default() == self.base.port_or_known_default();
            if !same || !url.username().is_empty() || url.password().is_some() {
                return Err(UpstreamError::Refused(format!(
                    "`{path_or_url}` is not on the upstream {}; refused",
                    self.base.origin().ascii_serialization()
                )));
            }
            return Ok(url);
        }
        if !path_or_url.starts_with('/') || path_or_url.starts_with("//") {
            return Err(UpstreamError::Refused(format!("`{path_or_url}` is not a path below the upstream")));
        }
        let joined = format!("{}{path_or_url}", self.base.as_str().trim_end_matches('/'));
        Url::parse(&joined).map_err(|e| UpstreamError::Refused(format!("`{joined}` is not a valid URL: {e}")))
    }

    fn request(&self, url: Url) -> reqwest::RequestBuilder {
        let mut r = self.client.get(url);
        if let Some(auth) = &self.auth {
            r = r.header(AUTHORIZATION, auth.clone());
        }
        r
    }

    fn cache_paths(&self, path_and_query: &str, accept: Option<&str>) -> (PathBuf, PathBuf) {
        let key = hex::encode(Sha256::digest(format!("{path_and_query}\n{}", accept.unwrap_or("")).as_bytes()));
        (self.cache_dir.join(format!("{key}.json")), self.cache_dir.join(format!("{key}.body")))
    }

    fn read_kept(&self, meta: &Path, body: &Path) -> Option<(KeptMeta, Vec<u8>)> {
        let m: KeptMeta = serde_json::from_slice(&std::fs::read(meta).ok()?).ok()?;
        Some((m, std::fs::read(body).ok()?))
    }

    /// Writes a kept answer: the body first, then its JSON, each renamed into place, so a
    /// reader never sees a body with another answer's validators.
    fn write_kept(&self, meta_path: &Path, body_path: &Path, meta: &KeptMeta, body: Option<&[u8]>) {
        let write = |path: &Path, bytes: &[u8]| -> std::io::Result<()> {
            let tmp = path.with_extension(format!("tmp{}", rand::random::<u32>()));
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, path)
        };
        let result = body
            .map_or(Ok(()), |b| write(body_path, b))
            .and_then(|()| write(meta_path, &serde_json::to_vec(meta).expect("serialises")));
        if let Err(e) = result {
            tracing::warn!(repository = %self.repository, error = %e, "could not keep an upstream answer");
        }
    }

    fn drop_kept(&self, meta: &Path, body: &Path) {
        let _ = std::fs::remove_file(meta);
        let _ = std::fs::remove_file(body);
    }

    /// GET `path_and_query` below the upstream (or an absolute URL on its scheme, host and
    /// port), through the kept copies (see the module's rules).
    pub fn get(&self, path_and_query: &str, accept: Option<&str>) -> Result<Answer, UpstreamError> {
        // An absolute URL is allowed on the upstream's own origin only (`url_for`): a format's
        // index document may name its other documents by URL (NuGet's service index).
        let url = self.url_for(path_and_query)?;
        let (meta_path, body_path) = self.cache_paths(path_and_query, accept);
        let kept = self.read_kept(&meta_path, &body_path);
        let answer = |m: &KeptMeta, body: Vec<u8>, stale: bool| Answer {
            status: m.status,
            headers: m.headers.clone(),
            body,
            stale,
        };
        if self.offline {
            return match kept {
                Some((m, body)) => {
                    let stale = now_ms().saturating_sub(m.fetched_ms) > self.ttl.as_millis() as u64;
                    if stale {
                        self.stats.stale_served.fetch_add(1, Ordering::Relaxed);
                    } else {
                        self.stats.hits.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(answer(&m, body, stale))
                }
                None => Err(UpstreamError::NotCached(format!(
                    "repository `{}` is offline and has no copy of {path_and_query}",
                    self.repository
                ))),
            };
        }
        if let Some((m, body)) = &kept {
            if now_ms().saturating_sub(m.fetched_ms) <= self.ttl.as_millis() as u64 {
                self.stats.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(answer(m, body.clone(), false));
            }
        }
        let mut request = self.request(url.clone());
        if let Some(accept) = accept {
            request = request.header(ACCEPT, accept);
        }
        if let Some((m, _)) = &kept {
            for (name, header) in [("etag", IF_NONE_MATCH), ("last-modified", IF_MODIFIED_SINCE)] {
                if let Some((_, v)) = m.headers.iter().find(|(k, _)| k == name) {
                    request = request.header(header, v.as_str());
                }
            }
        }
        let started = std::time::Instant::now();
        let sent = block_on(async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let headers = kept_headers(response.headers());
            if response.content_length().is_some_and(|n| n > MAX_METADATA_BYTES as u64) {
                return Ok((status, headers, Err(())));
            }
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, headers, if body.len() > MAX_METADATA_BYTES { Err(()) } else { Ok(body) }))
        });
        // (the detail for the log, what the client is told)
        let (failure, short): (String, String) = match sent {
            Ok((304, _, _)) if kept.is_some() => {
                let (mut m, body) = kept.expect("checked");
                m.fetched_ms = now_ms();
                self.write_kept(&meta_path, &body_path, &m, None);
                self.stats.revalidated.fetch_add(1, Ordering::Relaxed);
                return Ok(answer(&m, body, false));
            }
            Ok((_, _, Err(()))) => {
                let m = format!("answered more than {} MiB", MAX_METADATA_BYTES >> 20);
                (m.clone(), m)
            }
            Ok((200, headers, Ok(body))) => {
                let m = KeptMeta { status: 200, headers, fetched_ms: now_ms() };
                self.write_kept(&meta_path, &body_path, &m, Some(&body));
                self.stats.fetched.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(repository = %self.repository, url = %url, ms = started.elapsed().as_millis() as u64, "fetched from the upstream");
                return Ok(answer(&m, body.to_vec(), false));
            }
            Ok((status, headers, Ok(body))) if status < 500 && status != 304 && status != 429 => {
                // The upstream's own answer (a 404: no such package there, or gone): passed on,
                // and a kept copy of something it no longer has is dropped.
                if matches!(status, 404 | 410) {
                    self.drop_kept(&meta_path, &body_path);
                }
                return Ok(Answer { status, headers, body: body.to_vec(), stale: false });
            }
            Ok((status, _, _)) => (format!("the upstream answered {status}"), format!("answered {status}")),
            Err(e) => {
                let short = if e.is_timeout() { "timed out" } else { "could not be reached" };
                (format!("the request {short}: {}", error_chain(&e)), short.to_string())
            }
        };
        self.stats.failures.fetch_add(1, Ordering::Relaxed);
        match kept {
            Some((m, body)) => {
                self.stats.stale_served.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    repository = %self.repository, url = %url, error = %failure,
                    age_secs = now_ms().saturating_sub(m.fetched_ms) / 1000,
                    "upstream failed; serving the kept copy (stale-if-error)"
                );
                Ok(answer(&m, body, true))
            }
            None => {
                tracing::warn!(repository = %self.repository, url = %url, error = %failure, "upstream failed and nothing is kept");
                Err(UpstreamError::Failed(format!(
                    "the upstream of `{}` {short} and no copy is kept (details are in the server log)",
                    self.repository
                )))
            }
        }
    }

    /// Downloads a file of the upstream into `sink`, chunk by chunk. `sink`'s error stops it.
    pub fn download<E>(
        &self,
        url: &Url,
        mut sink: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<Result<(), E>, UpstreamError> {
        if self.offline {
            return Err(UpstreamError::NotCached(format!(
                "repository `{}` is offline and does not hold {url}",
                self.repository
            )));
        }
        let request = self.request(url.clone());
        let result = block_on(async {
            let mut response = request.send().await?;
            if !response.status().is_success() {
                return Ok(Err(response.status().as_u16()));
            }
            while let Some(chunk) = response.chunk().await? {
                if let Err(e) = sink(&chunk) {
                    return Ok(Ok(Err(e)));
                }
            }
            Ok::<_, reqwest::Error>(Ok(Ok(())))
        });
        match result {
            Ok(Ok(done)) => Ok(done),
            Ok(Err(404 | 410)) => {
                Err(UpstreamError::NotCached(format!("the upstream of `{}` has no such file", self.repository)))
            }
            Ok(Err(status)) => {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(repository = %self.repository, url = %url, status, "upstream refused a file download");
                Err(UpstreamError::Failed(format!(
                    "the upstream of `{}` answered {status} for the file",
                    self.repository
                )))
            }
            Err(e) => {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(repository = %self.repository, url = %url, error = %error_chain(&e), "upstream file download failed");
                Err(UpstreamError::Failed(format!(
                    "the upstream of `{}` could not be reached for the file (details are in the server log)",
                    self.repository
                )))
            }
        }
    }
}

/// The headers of an upstream answer worth keeping: its type and validators.
fn kept_headers(h: &HeaderMap) -> Vec<(String, String)> {
    [("content-type", reqwest::header::CONTENT_TYPE), ("etag", ETAG), ("last-modified", LAST_MODIFIED)]
        .into_iter()
        .filter_map(|(name, key)| Some((name.to_string(), h.get(key)?.to_str().ok()?.to_string())))
        .collect()
}

/// An error with its causes (reqwest's top line alone says "error sending request").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(url: &str) -> Upstream {
        let dir = tempfile::tempdir().unwrap();
        let rc: RepositoryConfig = toml::from_str(&format!(
            "name = \"public\"\nformat = \"web\"\nupstream = {url:?}\nallow_local_upstream = true\nupstream_token = \"s3cret\""
        ))
        .unwrap();
        Upstream::of(&rc, dir.path()).unwrap().unwrap()
    }

    #[test]
    fn urls_stay_on_the_upstream() {
        let u = upstream("http://127.0.0.1:9000/reg/");
        assert_eq!(u.url_for("/@scope%2fx").unwrap().as_str(), "http://127.0.0.1:9000/reg/@scope%2fx");
        assert_eq!(
            u.url_for("http://127.0.0.1:9000/reg/x/-/x-1.0.0.tgz").unwrap().as_str(),
            "http://127.0.0.1:9000/reg/x/-/x-1.0.0.tgz"
        );
        for bad in [
            "http://127.0.0.1:9001/reg/x",
            "https://127.0.0.1:9000/x",
            "http://evil.example/x",
            "x",
            "//evil.example/x",
            "http://u:p@127.0.0.1:9000/x",
        ] {
            assert!(matches!(u.url_for(bad), Err(UpstreamError::Refused(_))), "{bad} must be refused");
        }
        assert!(u.auth.as_ref().unwrap().to_str().unwrap() == "Bearer s3cret");
    }

    #[test]
    fn offline_without_a_copy_is_not_cached_and_sends_nothing() {
        let dir = tempfile::tempdir().unwrap();
        // Port 9 (discard) on loopback: nothing listens there; offline must not even try.
        let rc: RepositoryConfig = toml::from_str(
            "name = \"public\"\nformat = \"web\"\nupstream = \"http://127.0.0.1:9/\"\nallow_local_upstream = true\noffline = true",
        )
        .unwrap();
        let u = Upstream::of(&rc, dir.path()).unwrap().unwrap();
        assert!(matches!(u.get("/demo", None), Err(UpstreamError::NotCached(_))));
        assert_eq!(u.stats.failures.load(Ordering::Relaxed), 0);
        let (meta, body) = u.cache_paths("/demo", None);
        u.write_kept(&meta, &body, &KeptMeta { status: 200, headers: vec![], fetched_ms: 0 }, Some(b"{}"));
        let a = u.get("/demo", None).unwrap();
        assert!(a.stale && a.body == b"{}");
    }
}
