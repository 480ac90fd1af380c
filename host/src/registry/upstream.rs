//! A plugin's `fetch-file` reply in a proxy repository: serve the stored copy, or download the
//! upstream's file once, verify it against the digests the plugin read in the upstream's
//! metadata, store it as a push by `upstream` (the URL it came from recorded as the push's
//! client address, so the audit log says where it came from), and serve it. A file that does not
//! match is refused and stored nowhere. A file the plugin gives no digest for (its format's
//! metadata has none, such as the GOPROXY protocol's zips, which clients check themselves) is
//! stored as fetched, its sha256 recorded, and logged as unverified.

use std::sync::atomic::Ordering;

use crate::app::Repository;
use crate::error::AppError;
use crate::plugin::wit;
use crate::store::db::upstream::UPSTREAM_ACTOR;
use crate::store::db::Pusher;
use crate::upstream::UpstreamError;

use super::protocol::{NewPush, Reply};
use super::view::upstream_error_kind;
use super::Registry;

impl From<UpstreamError> for AppError {
    fn from(e: UpstreamError) -> Self {
        AppError::from(wit::Error { kind: upstream_error_kind(&e), message: e.to_string() })
    }
}

impl Registry<'_> {
    pub(super) fn fetch_file(&self, repo: &Repository, f: &wit::UpstreamFile) -> Result<Reply, AppError> {
        let file_ref = wit::FileRef {
            package: f.package.clone(),
            file_name: f.file_name.clone(),
            content_type: f.content_type.clone(),
        };
        if self.db.file_by_name(repo.name(), &repo.key(&f.package), &f.file_name)?.is_some() {
            return self.serve_file(repo, &file_ref);
        }
        let upstream = repo.upstream.as_ref().ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!(
                "plugin `{}` asked to fetch a file in repository `{}`, which has no upstream",
                repo.plugin.name(),
                repo.name()
            ))
        })?;
        let expected = [("sha512", &f.sha512), ("sha256", &f.sha256), ("sha1", &f.sha1)];
        let unverified = expected.iter().all(|(_, d)| d.is_none());
        // The URL is the upstream's own document's: one pointing elsewhere is the upstream's
        // fault (a 502), and the credentials must not follow it.
        let url = upstream.url_for(&f.url).map_err(|e| {
            upstream.stats.files_refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(repository = repo.name(), package = %f.package, error = %e, "refused an upstream file URL");
            AppError::Unavailable(format!(
                "the upstream's metadata points {} at another host; refused (details are in the server log)",
                f.file_name
            ))
        })?;
        let mut writer = self.blobs.writer(self.config.max_upload_mb << 20)?;
        if let Err(e) = upstream.download(&url, |chunk| writer.write_chunk(chunk))? {
            upstream.stats.files_refused.fetch_add(1, Ordering::Relaxed);
            return Err(e.into());
        }
        let pending = writer.finish()?;
        let got = &pending.digests;
        for (algorithm, want) in expected {
            let Some(want) = want else { continue };
            let have = match algorithm {
                "sha512" => &got.sha512,
                "sha256" => &got.sha256,
                _ => &got.sha1,
            };
            if !have.eq_ignore_ascii_case(want) {
                upstream.stats.files_refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    repository = repo.name(), package = %f.package, version = %f.version, url = %url,
                    algorithm, expected = %want, got = %have,
                    "an upstream file does not match the upstream's metadata; refused, not stored"
                );
                // `pending` drops here: its temp file is removed.
                return Err(AppError::Unavailable(format!(
                    "{} from the upstream does not match the {algorithm} digest its metadata gives; refused",
                    f.file_name
                )));
            }
        }
        let url_text = url.to_string();
        let got_sha256 = got.sha256.clone();
        let push = NewPush {
            file_name: &f.file_name,
            pusher: Pusher {
                actor: UPSTREAM_ACTOR,
                token_id: None,
                token_name: None,
                client_addr: Some(&url_text),
                user_agent: Some(concat!("sluice/", env!("CARGO_PKG_VERSION"), " upstream fetch")),
                commit_sha: None,
            },
            tags: &[],
            package: Some(&f.package),
        };
        match self.publish_file(repo, pending, &push) {
            Ok(push_id) => {
                upstream.stats.files_stored.fetch_add(1, Ordering::Relaxed);
                if unverified {
                    tracing::info!(
                        repository = repo.name(), package = %f.package, version = %f.version, url = %url_text, push_id,
                        sha256 = %got_sha256,
                        "stored a file from the upstream as fetched: its metadata gives no digest to verify"
                    );
                } else {
                    tracing::info!(
                        repository = repo.name(), package = %f.package, version = %f.version, url = %url_text, push_id,
                        "stored a file from the upstream"
                    );
                }
            }
            // Another request fetched the same file first: serve that one.
            Err(AppError::Conflict(_)) => {}
            Err(e) => {
                upstream.stats.files_refused.fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        }
        self.serve_file(repo, &file_ref)
    }
}
