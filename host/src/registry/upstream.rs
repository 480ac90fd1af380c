//! A plugin's `fetch-file` reply in a proxy repository: serve the stored copy, or download the
//! upstream's file once, verify it against the digests the plugin read in the upstream's
//! metadata, store it as a push by `upstream` (the URL it came from recorded as the push's
//! client address, so the audit log says where it came from), and serve it. A file that does not
//! match is refused and stored nowhere. A file the plugin gives no digest for (its format's
//! metadata has none, such as the GOPROXY protocol's zips, which clients check themselves) is
//! stored as fetched, its sha256 recorded, and logged as unverified.
//!
//! Quarantine: in a gated proxy (`gate = "pipeline"`) the stored file is a push like any other,
//! held until its pipeline passes. A request for a held file never gets its bytes: it waits up
//! to `quarantine_wait` while the pipeline can still pass without anyone acting (so that the
//! first install of a new version does not fail when the check is quick), then is answered
//! 403 with the pipeline's verdict and where to see it. The wait polls the store (no
//! transaction, no lock) after the plugin call has returned (no instance is held).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::app::Repository;
use crate::domain::gate;
use crate::domain::state::Status;
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
    /// `site` is the server's external URL as the client reached it (for the links of a
    /// quarantine answer).
    pub(super) fn fetch_file(&self, repo: &Repository, f: &wit::UpstreamFile, site: &str) -> Result<Reply, AppError> {
        let file_ref = wit::FileRef {
            package: f.package.clone(),
            file_name: f.file_name.clone(),
            content_type: f.content_type.clone(),
        };
        if let Some((_, stored)) = self.db.file_by_name(repo.name(), &repo.key(&f.package), &f.file_name)? {
            if !gate::visible(repo.config.gate, stored.released) {
                self.await_verdict(repo, f, stored.push_id, site)?;
            }
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
        if let Some((_, stored)) = self.db.file_by_name(repo.name(), &repo.key(&f.package), &f.file_name)? {
            if !gate::visible(repo.config.gate, stored.released) {
                self.await_verdict(repo, f, stored.push_id, site)?;
            }
        }
        self.serve_file(repo, &file_ref)
    }

    /// A held file's push: waits (up to `quarantine_wait`) while its pipeline may still release
    /// it unattended, then is `Ok` if it was released, else the client's 403 saying why.
    fn await_verdict(
        &self,
        repo: &Repository,
        f: &wit::UpstreamFile,
        push_id: i64,
        site: &str,
    ) -> Result<(), AppError> {
        let started = Instant::now();
        let deadline = started + repo.config.quarantine_wait();
        loop {
            let released = self
                .db
                .file_by_name(repo.name(), &repo.key(&f.package), &f.file_name)?
                .is_some_and(|(_, file)| gate::visible(repo.config.gate, file.released));
            if released {
                if !started.elapsed().is_zero() {
                    tracing::info!(
                        repository = repo.name(), package = %f.package, version = %f.version, push_id,
                        waited_ms = started.elapsed().as_millis() as u64,
                        "a quarantined file was released while its client waited"
                    );
                }
                return Ok(());
            }
            let pipeline = self.db.pipeline_of_push(push_id)?;
            let waiting = pipeline.as_ref().is_some_and(|p| gate::may_release_unattended(p.status));
            if !waiting || Instant::now() >= deadline {
                let jobs = match &pipeline {
                    Some(p) => self.db.pipeline(p.id)?.map(|(_, jobs)| jobs).unwrap_or_default(),
                    None => Vec::new(),
                };
                let held = Held {
                    package: &f.package,
                    version: &f.version,
                    pipeline: pipeline.as_ref().map(|p| (p.id, p.status)),
                    failed_jobs: jobs
                        .iter()
                        .filter(|j| j.status == Status::Failed && !j.allow_failure)
                        .map(|j| j.name.as_str())
                        .collect(),
                    waited: started.elapsed(),
                    site,
                };
                tracing::info!(
                    repository = repo.name(), package = %f.package, version = %f.version, push_id,
                    pipeline = ?held.pipeline.map(|(id, _)| id), status = ?held.pipeline.map(|(_, s)| s.as_str()),
                    "refused a file held in quarantine"
                );
                return Err(AppError::Forbidden(held.message()));
            }
            // Short enough that a quick pipeline's client hardly notices; one indexed read each.
            std::thread::sleep(POLL.min(deadline.saturating_duration_since(Instant::now())));
        }
    }
}

/// How often a waiting file request looks at its pipeline again.
const POLL: Duration = Duration::from_millis(100);

/// What a client is told about a file its gate holds.
struct Held<'a> {
    package: &'a str,
    version: &'a str,
    pipeline: Option<(i64, Status)>,
    /// The jobs that failed it (allowed failures are not why).
    failed_jobs: Vec<&'a str>,
    waited: Duration,
    /// The server's external URL (`public_url`, else as the client reached it).
    site: &'a str,
}

impl Held<'_> {
    fn message(&self) -> String {
        let Some((id, status)) = self.pipeline else {
            return format!(
                "{} {} is held in quarantine and has no pipeline to release it",
                self.package, self.version
            );
        };
        let verdict = match status {
            Status::Failed if self.failed_jobs.is_empty() => "failed".to_string(),
            Status::Failed => format!("failed (job {})", self.failed_jobs.join(", ")),
            Status::Canceled => "was canceled".to_string(),
            Status::Manual => "waits for an approval".to_string(),
            Status::Success => "passed and the version is being released; try again".to_string(),
            _ => {
                let state = if status == Status::Running { "is still running" } else { "waits for a runner" };
                match self.waited.as_secs_f64().round() as u64 {
                    0 => format!("{state}; try again shortly"),
                    secs => format!("{state} after {secs}s; try again shortly"),
                }
            }
        };
        let base = self.site.trim_end_matches('/');
        format!(
            "{} {} is held in quarantine: pipeline #{id} {verdict}. See {base}/ui/pipelines/{id} \
             (API: {base}/api/v1/pipelines/{id}); an admin may retry or release it",
            self.package, self.version
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(status: Status, failed_jobs: Vec<&'static str>, waited: u64) -> Held<'static> {
        Held {
            package: "lodash",
            version: "4.17.21",
            pipeline: Some((12, status)),
            failed_jobs,
            waited: Duration::from_secs(waited),
            site: "https://registry.example/",
        }
    }

    #[test]
    fn the_client_is_told_why_and_where_to_look() {
        assert_eq!(
            held(Status::Failed, vec!["scan"], 0).message(),
            "lodash 4.17.21 is held in quarantine: pipeline #12 failed (job scan). \
             See https://registry.example/ui/pipelines/12 (API: https://registry.example/api/v1/pipelines/12); \
             an admin may retry or release it"
        );
        assert!(held(Status::Running, vec![], 30).message().contains("pipeline #12 is still running after 30s"));
        assert!(held(Status::Pending, vec![], 0).message().contains("pipeline #12 waits for a runner; try again"));
        assert!(held(Status::Manual, vec![], 0).message().contains("waits for an approval"));
        let local = Held { site: "http://127.0.0.1:8080", ..held(Status::Canceled, vec![], 0) };
        assert!(local.message().contains("was canceled. See http://127.0.0.1:8080/ui/pipelines/12 (API: "));
    }
}
