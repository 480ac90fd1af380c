//! The repository as a plugin sees it, behind a trait so that protocol code unit-tests natively.

use crate::{Error, PackageSummary, PackageView, SearchPage, TokenInfo, UpstreamResponse, VersionState};

/// Read access to the repository's visible packages (the host has applied the gate).
pub trait Registry {
    /// A package with every visible file's metadata: what a render needs.
    fn package(&self, name: &str) -> Option<PackageView>;
    fn search(&self, query: &str, offset: u32, limit: u32) -> SearchPage;
    fn all_packages(&self) -> Vec<PackageView>;
    /// A package's tags and files without metadata: what a write compares against, at a
    /// fraction of the cost of [`Registry::package`].
    fn summary(&self, name: &str) -> Option<PackageSummary>;
    /// The tokens of the request's caller; empty without a credential.
    fn tokens(&self) -> Vec<TokenInfo>;
    /// A package with only the visible files of `versions` (tags, created and modified as
    /// [`Registry::package`] gives them): what a render of a few changed versions reads. The
    /// host reads only those rows; this default filters [`Registry::package`].
    fn versions(&self, name: &str, versions: &[String]) -> Option<PackageView> {
        let mut view = self.package(name)?;
        view.artifacts.retain(|a| versions.contains(&a.version));
        Some(view)
    }
    /// Whether the repository has an upstream (a proxy repository). Defaults keep registries
    /// without one (and unit tests) unchanged.
    fn upstream_configured(&self) -> bool {
        false
    }
    /// GET `path_and_query` below the repository's upstream; the host adds credentials, applies
    /// its guard and timeouts, and answers from its cache within `metadata_ttl` (or when the
    /// upstream fails). Any status the upstream gives is a response; an error means nothing
    /// could be had.
    fn upstream_get(&self, _path_and_query: &str, _accept: Option<&str>) -> Result<UpstreamResponse, Error> {
        Err(Error::unsupported("this repository has no upstream"))
    }
    /// [`Registry::upstream_get`] for a request about one package, named as the format names it
    /// (the unescaped Go module path, not the path's `!`-escaped spelling): in a group the host
    /// answers 404 for a name a local member holds or keeps `private`, by the format's own name
    /// rules. Every per-package upstream request goes through this; the default (registries that
    /// keep no names) is the plain GET.
    fn upstream_get_for(
        &self,
        _package: &str,
        path_and_query: &str,
        accept: Option<&str>,
    ) -> Result<UpstreamResponse, Error> {
        self.upstream_get(path_and_query, accept)
    }
    /// Versions of `package` held because they were fetched from the upstream, not published.
    fn cached_versions(&self, _package: &str) -> Vec<String> {
        Vec::new()
    }
    /// The `min_age` cut-off (milliseconds since the Unix epoch): upstream versions published
    /// after it are not to be offered; none when the repository sets no `min_age`.
    fn upstream_published_before(&self) -> Option<u64> {
        None
    }
}

/// The host's registry, through the plugin's imports.
pub struct HostRegistry;

impl Registry for HostRegistry {
    fn package(&self, name: &str) -> Option<PackageView> {
        crate::sluice::plugin::registry::package(name)
    }
    fn search(&self, query: &str, offset: u32, limit: u32) -> SearchPage {
        crate::sluice::plugin::registry::search(query, offset, limit)
    }
    fn all_packages(&self) -> Vec<PackageView> {
        crate::sluice::plugin::registry::all_packages()
    }
    fn summary(&self, name: &str) -> Option<PackageSummary> {
        crate::sluice::plugin::registry::summary(name)
    }
    fn tokens(&self) -> Vec<TokenInfo> {
        crate::sluice::plugin::registry::tokens()
    }
    fn versions(&self, name: &str, versions: &[String]) -> Option<PackageView> {
        crate::sluice::plugin::registry::versions(name, versions)
    }
    fn upstream_configured(&self) -> bool {
        crate::sluice::plugin::upstream::configured()
    }
    fn upstream_get(&self, path_and_query: &str, accept: Option<&str>) -> Result<UpstreamResponse, Error> {
        crate::sluice::plugin::upstream::get(path_and_query, accept)
    }
    fn upstream_get_for(
        &self,
        package: &str,
        path_and_query: &str,
        accept: Option<&str>,
    ) -> Result<UpstreamResponse, Error> {
        crate::sluice::plugin::upstream::get_for(package, path_and_query, accept)
    }
    fn cached_versions(&self, package: &str) -> Vec<String> {
        crate::sluice::plugin::upstream::cached_versions(package)
    }
    fn upstream_published_before(&self) -> Option<u64> {
        crate::sluice::plugin::upstream::published_before()
    }
}

/// The summary the host would give for a package view (what [`MemoryRegistry`] answers).
pub fn summary_of(view: &PackageView) -> PackageSummary {
    PackageSummary {
        name: view.name.clone(),
        tags: view.tags.clone(),
        files: view
            .artifacts
            .iter()
            .map(|a| VersionState {
                version: a.version.clone(),
                qualifier: a.qualifier.clone(),
                deprecated: a.deprecated.clone(),
                yanked: a.yanked,
            })
            .collect(),
    }
}

/// An in-memory registry for unit tests of protocol handlers.
#[derive(Default)]
pub struct MemoryRegistry {
    pub packages: Vec<PackageView>,
    /// What `tokens` lists: the caller's tokens.
    pub tokens: Vec<TokenInfo>,
}

impl MemoryRegistry {
    /// A registry holding these packages and no tokens.
    pub fn with_packages(packages: Vec<PackageView>) -> Self {
        MemoryRegistry { packages, tokens: Vec::new() }
    }
}

impl Registry for MemoryRegistry {
    fn package(&self, name: &str) -> Option<PackageView> {
        self.packages.iter().find(|p| p.name.eq_ignore_ascii_case(name)).cloned()
    }
    fn search(&self, query: &str, offset: u32, limit: u32) -> SearchPage {
        let q = query.to_lowercase();
        let hits: Vec<_> = self.packages.iter().filter(|p| p.name.to_lowercase().contains(&q)).cloned().collect();
        SearchPage {
            total: hits.len() as u64,
            packages: hits.into_iter().skip(offset as usize).take(limit as usize).collect(),
        }
    }
    fn all_packages(&self) -> Vec<PackageView> {
        self.packages.clone()
    }
    fn summary(&self, name: &str) -> Option<PackageSummary> {
        self.packages.iter().find(|p| p.name.eq_ignore_ascii_case(name)).map(summary_of)
    }
    fn tokens(&self) -> Vec<TokenInfo> {
        self.tokens.clone()
    }
}

/// A proxy repository in memory, for plugins' unit tests: the stored packages, the upstream's
/// answers by path (and `Accept`), whether the upstream is down, the versions fetched from it and
/// the `min_age` cut-off.
#[derive(Default)]
pub struct MemoryProxy {
    pub local: MemoryRegistry,
    /// Answers by (path, accept); an answer stored with accept `""` serves any. A path the map
    /// lacks answers 404.
    pub upstream: std::collections::HashMap<(String, String), Result<UpstreamResponse, Error>>,
    /// The upstream's base URL: an absolute URL below it is looked up as its path.
    pub base: String,
    /// Every `upstream_get` fails as the host's does when the upstream cannot be reached.
    pub down: bool,
    pub cached: Vec<String>,
    pub published_before: Option<u64>,
    /// Every upstream request made, in order: the package it was made for
    /// ([`Registry::upstream_get_for`]) or none (a plain [`Registry::upstream_get`]), and the
    /// path. A test shows with it that each request about a package names it, so that a group
    /// can keep a private name from the upstream however the path spells it.
    pub asked: std::cell::RefCell<Vec<(Option<String>, String)>>,
}

impl MemoryProxy {
    /// `path` answers 200 with `body`, whatever the `Accept`.
    pub fn answer(&mut self, path: &str, body: impl Into<Vec<u8>>) {
        let ok = UpstreamResponse { status: 200, headers: vec![], body: body.into(), stale: false };
        self.upstream.insert((path.to_string(), String::new()), Ok(ok));
    }
}

impl Registry for MemoryProxy {
    fn package(&self, name: &str) -> Option<PackageView> {
        self.local.package(name)
    }
    fn search(&self, query: &str, offset: u32, limit: u32) -> SearchPage {
        self.local.search(query, offset, limit)
    }
    fn all_packages(&self) -> Vec<PackageView> {
        self.local.all_packages()
    }
    fn summary(&self, name: &str) -> Option<PackageSummary> {
        self.local.summary(name)
    }
    fn tokens(&self) -> Vec<TokenInfo> {
        self.local.tokens()
    }
    fn upstream_configured(&self) -> bool {
        true
    }
    fn upstream_get(&self, path: &str, accept: Option<&str>) -> Result<UpstreamResponse, Error> {
        self.asked.borrow_mut().push((None, path.to_string()));
        self.answer_of(path, accept)
    }
    fn upstream_get_for(&self, package: &str, path: &str, accept: Option<&str>) -> Result<UpstreamResponse, Error> {
        self.asked.borrow_mut().push((Some(package.to_string()), path.to_string()));
        self.answer_of(path, accept)
    }
    fn cached_versions(&self, _package: &str) -> Vec<String> {
        self.cached.clone()
    }
    fn upstream_published_before(&self) -> Option<u64> {
        self.published_before
    }
}

impl MemoryProxy {
    /// The packages named by the requests made so far, in order (none for a plain GET).
    pub fn asked_for(&self) -> Vec<Option<String>> {
        self.asked.borrow().iter().map(|(p, _)| p.clone()).collect()
    }

    fn answer_of(&self, path: &str, accept: Option<&str>) -> Result<UpstreamResponse, Error> {
        if self.down {
            return Err(Error::unavailable("the upstream could not be reached"));
        }
        let path = path.strip_prefix(self.base.as_str()).filter(|_| !self.base.is_empty()).unwrap_or(path);
        let exact = (path.to_string(), accept.unwrap_or("").to_string());
        let any = (path.to_string(), String::new());
        self.upstream.get(&exact).or_else(|| self.upstream.get(&any)).cloned().unwrap_or_else(|| {
            Ok(UpstreamResponse { status: 404, headers: vec![], body: b"not found".to_vec(), stale: false })
        })
    }
}

/// A registry for unit tests of write handlers: it answers `summary` and `tokens` from a
/// [`MemoryRegistry`] and panics on the calls that load every file's metadata (`package`,
/// `all_packages`, `search`), so a test shows that a write costs the change, not the package.
pub struct SummaryOnly<'a>(pub &'a MemoryRegistry);

impl Registry for SummaryOnly<'_> {
    fn package(&self, name: &str) -> Option<PackageView> {
        panic!("a write loaded the whole package {name}; it needs only its summary")
    }
    fn search(&self, query: &str, _offset: u32, _limit: u32) -> SearchPage {
        panic!("a write searched the repository for {query:?}")
    }
    fn all_packages(&self) -> Vec<PackageView> {
        panic!("a write loaded every package of the repository")
    }
    fn summary(&self, name: &str) -> Option<PackageSummary> {
        self.0.summary(name)
    }
    fn tokens(&self) -> Vec<TokenInfo> {
        self.0.tokens()
    }
}
