//! What the host gives a plugin during one call: the store's state, the `blob` and `tree`
//! resources, and the read-only `registry` view. WASI is linked with nothing granted: no
//! preopened directories, no environment, no sockets; stdout and stderr go to memory and then
//! to the host's log.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use wasmtime::component::{Resource, ResourceTable};
use wasmtime::StoreLimits;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::current::{
    self as wit, sluice::plugin::registry, sluice::plugin::types, sluice::plugin::upstream,
};

/// The most a plugin may read from a blob in one `read` call; larger requests get this much
/// (the contract allows short reads only at the end, so the SDK's reader asks again).
const MAX_READ: u32 = 16 << 20;

/// A file or request body offered to a plugin.
pub enum BlobHandle {
    File { file: File, size: u64 },
    Memory(Vec<u8>),
}

impl BlobHandle {
    pub fn file(file: File) -> std::io::Result<Self> {
        let size = file.metadata()?.len();
        Ok(BlobHandle::File { file, size })
    }

    pub fn size(&self) -> u64 {
        match self {
            BlobHandle::File { size, .. } => *size,
            BlobHandle::Memory(b) => b.len() as u64,
        }
    }

    fn read(&self, offset: u64, len: u32) -> std::io::Result<Vec<u8>> {
        let size = self.size();
        let len = (len.min(MAX_READ) as u64).min(size.saturating_sub(offset)) as usize;
        match self {
            BlobHandle::File { file, .. } => {
                let mut buf = vec![0; len];
                file.read_exact_at(&mut buf, offset)?;
                Ok(buf)
            }
            BlobHandle::Memory(b) => {
                let start = offset.min(size) as usize;
                Ok(b[start..start + len].to_vec())
            }
        }
    }
}

/// Reads one file of a tree by path.
pub type TreeReader = Box<dyn Fn(&str) -> Result<Vec<u8>, String> + Send + Sync>;

/// A commit's tree offered to a git-tag plugin, read through the host's git access.
pub struct TreeHandle {
    pub entries: Vec<wit::TreeEntry>,
    pub reader: TreeReader,
}

/// The repository as plugins see it during a protocol call (gate applied by the implementor).
pub trait RegistryView: Send + Sync {
    fn package(&self, name: &str) -> Option<wit::PackageView>;
    fn search(&self, query: &str, offset: u32, limit: u32) -> wit::SearchPage;
    fn all_packages(&self) -> Vec<wit::PackageView>;
    fn summary(&self, name: &str) -> Option<wit::PackageSummary>;
    /// A package with only the visible files of `versions`. The default filters `package`; a
    /// store-backed view reads only those rows.
    fn versions(&self, name: &str, versions: &[String]) -> Option<wit::PackageView> {
        let mut view = self.package(name)?;
        view.artifacts.retain(|a| versions.contains(&a.version));
        Some(view)
    }
    /// The tokens of the request's caller.
    fn tokens(&self) -> Vec<wit::TokenInfo>;
    /// Whether the repository has an upstream (a proxy repository).
    fn upstream_configured(&self) -> bool {
        false
    }
    /// GET below the repository's upstream, through the host's cache (blocking: the time it
    /// waits does not count against the plugin's deadline, see `CallState::waited`).
    fn upstream_get(&self, _path_and_query: &str, _accept: Option<&str>) -> Result<wit::UpstreamResponse, wit::Error> {
        Err(wit::Error { kind: wit::ErrorKind::Unsupported, message: "this repository has no upstream".into() })
    }
    /// `upstream_get` for a request about `package` (as the plugin names it): a view that keeps
    /// names from its upstream (a group) checks the name as well as the path. The default, for
    /// a view that keeps none, is the plain GET.
    fn upstream_get_for(
        &self,
        _package: &str,
        path_and_query: &str,
        accept: Option<&str>,
    ) -> Result<wit::UpstreamResponse, wit::Error> {
        self.upstream_get(path_and_query, accept)
    }
    /// Versions of a package held because they were fetched from the upstream.
    fn cached_versions(&self, _package: &str) -> Vec<String> {
        Vec::new()
    }
    /// The cut-off of `min_age` (milliseconds since the Unix epoch): upstream versions published
    /// later are not offered. None without `min_age`.
    fn published_before(&self) -> Option<u64> {
        None
    }
}

/// A store's data for one call.
pub struct CallState {
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) limits: StoreLimits,
    pub(super) registry: Option<Arc<dyn RegistryView>>,
    /// Time spent waiting for the upstream inside this call: the deadline is the plugin's own
    /// computing time, so a slow upstream (which has its own timeouts) does not trap the plugin.
    pub(super) waited: std::time::Duration,
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl types::HostBlob for CallState {
    fn size(&mut self, blob: Resource<BlobHandle>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&blob)?.size())
    }

    fn read(&mut self, blob: Resource<BlobHandle>, offset: u64, len: u32) -> wasmtime::Result<Vec<u8>> {
        Ok(self.table.get(&blob)?.read(offset, len)?)
    }

    fn drop(&mut self, blob: Resource<BlobHandle>) -> wasmtime::Result<()> {
        self.table.delete(blob)?;
        Ok(())
    }
}

impl types::HostTree for CallState {
    fn entries(&mut self, tree: Resource<TreeHandle>) -> wasmtime::Result<Vec<wit::TreeEntry>> {
        Ok(self.table.get(&tree)?.entries.clone())
    }

    fn read(&mut self, tree: Resource<TreeHandle>, path: String) -> wasmtime::Result<Result<Vec<u8>, String>> {
        Ok((self.table.get(&tree)?.reader)(&path))
    }

    fn drop(&mut self, tree: Resource<TreeHandle>) -> wasmtime::Result<()> {
        self.table.delete(tree)?;
        Ok(())
    }
}

impl types::Host for CallState {}

impl registry::Host for CallState {
    fn package(&mut self, name: String) -> wasmtime::Result<Option<wit::PackageView>> {
        Ok(self.registry.as_ref().and_then(|r| r.package(&name)))
    }

    fn search(&mut self, query: String, offset: u32, limit: u32) -> wasmtime::Result<wit::SearchPage> {
        Ok(match &self.registry {
            Some(r) => r.search(&query, offset, limit),
            None => wit::SearchPage { total: 0, packages: Vec::new() },
        })
    }

    fn all_packages(&mut self) -> wasmtime::Result<Vec<wit::PackageView>> {
        Ok(self.registry.as_ref().map(|r| r.all_packages()).unwrap_or_default())
    }

    fn summary(&mut self, name: String) -> wasmtime::Result<Option<wit::PackageSummary>> {
        Ok(self.registry.as_ref().and_then(|r| r.summary(&name)))
    }

    fn versions(&mut self, name: String, versions: Vec<String>) -> wasmtime::Result<Option<wit::PackageView>> {
        Ok(self.registry.as_ref().and_then(|r| r.versions(&name, &versions)))
    }

    fn tokens(&mut self) -> wasmtime::Result<Vec<wit::TokenInfo>> {
        Ok(self.registry.as_ref().map(|r| r.tokens()).unwrap_or_default())
    }
}

impl CallState {
    /// One upstream request of the plugin, its wait not counted against the plugin's deadline.
    fn ask_upstream(
        &mut self,
        ask: impl FnOnce(&dyn RegistryView) -> Result<wit::UpstreamResponse, wit::Error>,
    ) -> Result<wit::UpstreamResponse, wit::Error> {
        let Some(registry) = self.registry.clone() else {
            return Err(wit::Error { kind: wit::ErrorKind::Unsupported, message: "no upstream in this call".into() });
        };
        let started = std::time::Instant::now();
        let answer = ask(registry.as_ref());
        self.waited += started.elapsed();
        answer
    }
}

impl upstream::Host for CallState {
    fn configured(&mut self) -> wasmtime::Result<bool> {
        Ok(self.registry.as_ref().is_some_and(|r| r.upstream_configured()))
    }

    fn get(
        &mut self,
        path_and_query: String,
        accept: Option<String>,
    ) -> wasmtime::Result<Result<wit::UpstreamResponse, wit::Error>> {
        Ok(self.ask_upstream(|r| r.upstream_get(&path_and_query, accept.as_deref())))
    }

    fn get_for(
        &mut self,
        package: String,
        path_and_query: String,
        accept: Option<String>,
    ) -> wasmtime::Result<Result<wit::UpstreamResponse, wit::Error>> {
        Ok(self.ask_upstream(|r| r.upstream_get_for(&package, &path_and_query, accept.as_deref())))
    }

    fn cached_versions(&mut self, package: String) -> wasmtime::Result<Vec<String>> {
        Ok(self.registry.as_ref().map(|r| r.cached_versions(&package)).unwrap_or_default())
    }

    fn published_before(&mut self) -> wasmtime::Result<Option<u64>> {
        Ok(self.registry.as_ref().and_then(|r| r.published_before()))
    }
}
