//! The `registry` import plugins render protocol responses from: the store's rows as the
//! contract's records, with the repository's gate applied.

use std::sync::Arc;

use crate::plugin::{wit, RegistryView};
use crate::store::db::{FileRow, PackageWithFiles, Visibility};
use crate::store::Db;
use crate::upstream::{Upstream, UpstreamError};

pub(super) struct RepositoryView {
    pub db: Db,
    pub repository: String,
    pub visibility: Visibility,
    pub case_insensitive: bool,
    /// The caller's token name, for `tokens`.
    pub principal: Option<String>,
    /// A proxy repository's upstream, for the `upstream` import.
    pub upstream: Option<Arc<Upstream>>,
    /// A proxy's `min_age`.
    pub min_age: Option<std::time::Duration>,
}

impl RepositoryView {
    /// The view for a request of `principal` (none for renders of kept documents, which must
    /// not depend on who asked).
    pub fn shared(db: Db, repo: &crate::app::Repository, principal: Option<&str>) -> Arc<dyn RegistryView> {
        Arc::new(Self::member(db, repo, principal))
    }

    /// The view of one repository for `principal`: of a group's member, the group's caller with
    /// the member's gate and upstream.
    pub fn member(db: Db, repo: &crate::app::Repository, principal: Option<&str>) -> RepositoryView {
        RepositoryView {
            db,
            repository: repo.name().to_string(),
            visibility: repo.client_visibility(),
            case_insensitive: repo.plugin.info.case_insensitive_names,
            principal: principal.map(str::to_string),
            upstream: repo.upstream.clone(),
            min_age: repo.config.min_age,
        }
    }

    pub fn name(&self) -> &str {
        &self.repository
    }

    pub fn key(&self, name: &str) -> String {
        if self.case_insensitive {
            name.to_lowercase()
        } else {
            name.to_string()
        }
    }

    fn log_err<T: Default>(&self, what: &str, r: Result<T, crate::store::DbError>) -> T {
        r.unwrap_or_else(|e| {
            tracing::error!(repository = %self.repository, error = %e, "registry view: {what}");
            T::default()
        })
    }
}

/// A stored file as the contract's `artifact`.
pub fn artifact_of(f: &FileRow) -> wit::Artifact {
    let metadata = serde_json::from_str(&f.metadata).unwrap_or_else(|e| {
        tracing::error!(file = %f.file_name, error = %e, "stored metadata does not parse");
        wit::Metadata { qualifier: f.qualifier.clone(), ..wit::Metadata::named("", f.version.clone()) }
    });
    wit::Artifact {
        version: f.version.clone(),
        qualifier: f.qualifier.clone(),
        file_name: f.file_name.clone(),
        size: f.size as u64,
        sha256: f.sha256.clone(),
        sha512: f.sha512.clone(),
        sha1: f.sha1.clone(),
        published_ms: f.created_at as u64,
        metadata,
        deprecated: f.deprecated.clone(),
        yanked: f.yanked,
    }
}

fn package_view(p: PackageWithFiles) -> wit::PackageView {
    wit::PackageView {
        name: p.package.name,
        created_ms: p.package.created_at as u64,
        modified_ms: p.package.modified_at as u64,
        tags: p.tags,
        // READMEs are for the web UI; the contract leaves them out of the plugins' view.
        artifacts: p
            .files
            .iter()
            .map(artifact_of)
            .map(|a| wit::Artifact { metadata: wit::Metadata { readme: None, ..a.metadata }, ..a })
            .collect(),
    }
}

impl RegistryView for RepositoryView {
    fn package(&self, name: &str) -> Option<wit::PackageView> {
        self.log_err("package", self.db.package(&self.repository, &self.key(name), self.visibility)).map(package_view)
    }

    fn versions(&self, name: &str, versions: &[String]) -> Option<wit::PackageView> {
        self.log_err(
            "package versions",
            self.db.package_versions(&self.repository, &self.key(name), self.visibility, versions),
        )
        .map(package_view)
    }

    fn search(&self, query: &str, offset: u32, limit: u32) -> wit::SearchPage {
        let (total, packages) =
            self.log_err("search", self.db.search(&self.repository, query, offset, limit.min(1000), self.visibility));
        wit::SearchPage { total, packages: packages.into_iter().map(package_view).collect() }
    }

    fn all_packages(&self) -> Vec<wit::PackageView> {
        let (_, packages) =
            self.log_err("all packages", self.db.search(&self.repository, "", 0, u32::MAX, self.visibility));
        packages.into_iter().map(package_view).collect()
    }

    fn summary(&self, name: &str) -> Option<wit::PackageSummary> {
        let s = self.log_err("summary", self.db.package_summary(&self.repository, &self.key(name), self.visibility))?;
        Some(wit::PackageSummary {
            name: s.name,
            tags: s.tags,
            files: s
                .files
                .into_iter()
                .map(|(version, qualifier, deprecated, yanked)| wit::VersionState {
                    version,
                    qualifier,
                    deprecated,
                    yanked,
                })
                .collect(),
        })
    }

    fn upstream_configured(&self) -> bool {
        self.upstream.is_some()
    }

    fn upstream_get(&self, path_and_query: &str, accept: Option<&str>) -> Result<wit::UpstreamResponse, wit::Error> {
        let Some(upstream) = &self.upstream else {
            return Err(wit::Error {
                kind: wit::ErrorKind::Unsupported,
                message: "this repository has no upstream".into(),
            });
        };
        upstream
            .get(path_and_query, accept)
            .map(|a| wit::UpstreamResponse { status: a.status, headers: a.headers, body: a.body, stale: a.stale })
            .map_err(|e| wit::Error { kind: upstream_error_kind(&e), message: e.to_string() })
    }

    fn cached_versions(&self, package: &str) -> Vec<String> {
        if self.upstream.is_none() {
            return Vec::new();
        }
        self.log_err("upstream versions", self.db.upstream_versions(&self.repository, &self.key(package)))
    }

    fn published_before(&self) -> Option<u64> {
        self.upstream.as_ref()?;
        let cut = std::time::SystemTime::now().checked_sub(self.min_age?)?;
        Some(cut.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as u64)
    }

    fn tokens(&self) -> Vec<wit::TokenInfo> {
        let Some(name) = &self.principal else { return Vec::new() };
        self.log_err("tokens", self.db.tokens_named(name))
            .into_iter()
            .map(|(t, hash)| wit::TokenInfo {
                key: hash,
                name: t.name,
                scopes: t.scopes.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect(),
                repository: t.repository,
                created_ms: t.created_at as u64,
                expires_ms: t.expires_at.map(|v| v as u64),
                last_used_ms: t.last_used_at.map(|v| v as u64),
            })
            .collect()
    }
}

/// The contract's kind for an upstream failure: a miss while offline is "not found"; a refused
/// URL is the plugin's bug (internal); a failed upstream with nothing kept is "unavailable".
pub fn upstream_error_kind(e: &UpstreamError) -> wit::ErrorKind {
    match e {
        UpstreamError::NotCached(_) => wit::ErrorKind::NotFound,
        UpstreamError::Refused(_) => wit::ErrorKind::Internal,
        UpstreamError::Failed(_) => wit::ErrorKind::Unavailable,
    }
}
