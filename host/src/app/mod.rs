//! The app state, [`App`]: the configuration, the store, the plugin runtime and loaded plugins,
//! the configured repositories, the wake-up signals ([`Events`]), the kept protocol documents
//! ([`documents`]) and the git syncs' jobs ([`git_sync`]); opening it, and the blob store's
//! clean-up. The behaviour over it lives in services that take `&App`: `registry` (the client
//! protocol, git tags, the plugins' view of the store) and `pipeline` (planning, jobs, webhooks).
//!
//! May call: `config`, `store`, `plugin`, `error`, `upstream`. Called by `registry`, `pipeline` and `http`;
//! it calls none of them.

pub mod documents;
pub mod git_sync;
pub mod leader;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::config::{Config, Gate, ReadAccess, RepositoryConfig};
use crate::error::AppError;
use crate::plugin::{builtin, Limits, Plugin, PluginRuntime};
use crate::store::{db::Visibility, BlobStore, Db};
use crate::upstream::Upstream;

/// A configured repository and the plugin that serves it.
pub struct Repository {
    pub config: RepositoryConfig,
    pub plugin: Arc<Plugin>,
    /// A proxy repository's upstream (`upstream = "..."`).
    pub upstream: Option<Arc<Upstream>>,
    /// The `private` name patterns of a local repository, compiled (whole-name matches).
    pub private: Vec<regex::Regex>,
}

impl Repository {
    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn gated(&self) -> bool {
        self.config.gate == Gate::Pipeline
    }

    pub fn private(&self) -> bool {
        self.config.read == ReadAccess::Token
    }

    /// What clients of this repository may see.
    pub fn client_visibility(&self) -> Visibility {
        Visibility::Clients(self.config.gate)
    }

    /// A group repository (`members = [...]`): it stores nothing itself and reads its members.
    pub fn is_group(&self) -> bool {
        !self.config.members.is_empty()
    }

    /// Whether `name` matches one of this repository's `private` patterns.
    pub fn private_name(&self, name: &str) -> bool {
        self.private.iter().any(|p| p.is_match(name))
    }

    /// The key a package name is stored and compared under.
    pub fn key(&self, name: &str) -> String {
        if self.plugin.info.case_insensitive_names {
            name.to_lowercase()
        } else {
            name.to_string()
        }
    }
}

/// Wake-ups for the long-polling runners and the webhook sender.
#[derive(Default)]
pub struct Events {
    pub jobs: Notify,
    pub webhooks: Notify,
}

/// The app state every request and background task shares (as `Arc<App>`).
pub struct App {
    pub config: Config,
    pub db: Db,
    pub blobs: BlobStore,
    pub runtime: PluginRuntime,
    /// Every loaded plugin by its format name.
    pub plugins: BTreeMap<String, Arc<Plugin>>,
    pub repositories: BTreeMap<String, Repository>,
    /// Wakes runners waiting for jobs and the webhook sender.
    pub events: Events,
    /// Whether this replica runs the one-at-a-time background work ([`leader`]).
    pub lead: leader::Lead,
    /// Git syncs run one at a time.
    pub git_sync: git_sync::GitSync,
    /// Protocol documents kept between changes.
    pub documents: documents::Documents,
}

impl App {
    /// Opens the store, loads the built-in and configured plugins, and sets up repositories.
    pub fn open(config: Config) -> anyhow::Result<App> {
        std::fs::create_dir_all(&config.data)
            .map_err(|e| anyhow::anyhow!("create data folder {}: {e}", config.data.display()))?;
        let db = Db::open_configured(&config)?;
        let blobs = BlobStore::open_configured(config.data.join("blobs"), config.blobs.as_deref())?;
        let limits = Limits {
            memory_bytes: (config.plugin_memory_mb as usize) << 20,
            call_timeout: Duration::from_millis(config.plugin_timeout_ms),
            parse_timeout: Duration::from_millis(config.parse_timeout_ms),
            render_timeout: Duration::from_millis(config.render_timeout_ms),
            sizes: crate::plugin::wit::Limits {
                max_upload_bytes: config.max_upload_mb << 20,
                max_unpacked_bytes: config.max_unpacked_mb << 20,
            },
        };
        let runtime = PluginRuntime::new(limits, config.plugin_cache_dir())?;

        // Compile plugins in parallel: a cold cache costs a second or two per plugin.
        let loaded: Vec<anyhow::Result<Plugin>> = std::thread::scope(|s| {
            let runtime = &runtime;
            let builtins = builtin::PLUGINS
                .iter()
                .map(|(name, wasm)| s.spawn(move || runtime.load(wasm, &format!("builtin:{name}"))));
            let files = config.plugins.iter().map(|p| s.spawn(move || runtime.load_file(&p.path)));
            builtins
                .chain(files)
                .collect::<Vec<_>>()
                .into_iter()
                .map(|h| h.join().expect("plugin loader panicked"))
                .collect()
        });
        let mut plugins = BTreeMap::new();
        for plugin in loaded {
            let plugin = plugin?;
            tracing::info!(format = plugin.name(), source = %plugin.source, sha256 = %plugin.sha256, "loaded plugin");
            if let Some(previous) = plugins.insert(plugin.name().to_string(), Arc::new(plugin)) {
                tracing::warn!(format = previous.name(), replaced = %previous.source, "a configured plugin replaces another of the same format");
            }
        }

        let repo_configs = if config.repositories.is_empty() {
            plugins
                .keys()
                .map(|name| {
                    toml::from_str::<RepositoryConfig>(&format!("name = {name:?}\nformat = {name:?}")).expect("valid")
                })
                .collect()
        } else {
            config.repositories.clone()
        };
        let mut repositories = BTreeMap::new();
        for rc in repo_configs {
            let plugin = plugins.get(&rc.format).cloned().ok_or_else(|| {
                anyhow::anyhow!(
                    "repository `{}` uses format `{}`, but no plugin of that format is loaded (loaded: {})",
                    rc.name,
                    rc.format,
                    plugins.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            })?;
            let upstream = Upstream::of(&rc, &config.data)?.map(Arc::new);
            if upstream.is_some() {
                // Only a plugin of contract 0.4.0 or later can ask an upstream (older ones have no
                // `upstream` import). A repository of a git-tag format with an upstream is a proxy
                // of another registry of that format: the config refuses `git` sources next to an
                // `upstream`, so its versions come from the upstream alone.
                if matches!(plugin.contract, "0.1.0" | "0.2.0" | "0.3.0") {
                    anyhow::bail!(
                        "repository `{}` has an upstream, but plugin `{}` ({}) was built against contract {}, which \
                         cannot proxy (0.4.0 or later can)",
                        rc.name,
                        plugin.name(),
                        plugin.source,
                        plugin.contract
                    );
                }
            }
            let private = rc
                .private
                .iter()
                .map(|p| name_pattern(p, plugin.info.case_insensitive_names))
                .collect::<anyhow::Result<_>>()
                .map_err(|e| anyhow::anyhow!("repository `{}`: {e}", rc.name))?;
            repositories.insert(rc.name.clone(), Repository { config: rc, plugin, upstream, private });
        }
        Ok(App {
            db,
            blobs,
            runtime,
            plugins,
            repositories,
            events: Events::default(),
            lead: Default::default(),
            git_sync: Default::default(),
            documents: documents::Documents::new(config.document_cache_mb << 20),
            config,
        })
    }

    /// Where writes to `name` land: the repository itself, or a group's first local member
    /// (none when the group has no local member).
    pub fn write_target(&self, name: &str) -> Option<&Repository> {
        let repo = self.repositories.get(name)?;
        if !repo.is_group() {
            return Some(repo);
        }
        repo.config.members.iter().filter_map(|m| self.repositories.get(m)).find(|m| m.upstream.is_none())
    }

    pub fn repository(&self, name: &str) -> Result<&Repository, AppError> {
        self.repositories.get(name).ok_or_else(|| AppError::not_found(format!("repository `{name}`")))
    }

    /// Removes blobs that no file row references any more (after deletes), atomically with
    /// respect to publishes of the same bytes (see [`crate::store::Db::remove_blob_if_unreferenced`]).
    pub fn collect_blobs(&self, shas: &[String]) -> usize {
        let mut removed = 0;
        for sha in shas {
            match self.db.remove_blob_if_unreferenced(sha, || self.blobs.remove(sha).map_err(|e| e.to_string())) {
                Ok(true) => removed += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(sha256 = %sha, error = %e, "could not remove an unreferenced blob"),
            }
        }
        removed
    }

    /// One clean-up pass over the blob store: temp files a crash or a lost upload left, and blobs
    /// no row references (renamed into place by a publish that never committed, or left by a
    /// failed removal), each only once older than `blob_grace_secs`.
    pub fn clean_blob_store(&self) -> CleanReport {
        let grace = Duration::from_secs(self.config.blob_grace_secs);
        let mut report = CleanReport::default();
        for temp in self.blobs.stale_temp_files(grace) {
            match std::fs::remove_file(&temp) {
                Ok(()) => report.temp_files += 1,
                Err(e) => tracing::warn!(path = %temp.display(), error = %e, "could not remove a stale temp file"),
            }
        }
        report.blobs = self.collect_blobs(&self.blobs.blobs_older_than(grace));
        if report.temp_files + report.blobs > 0 {
            tracing::info!(temp_files = report.temp_files, blobs = report.blobs, "cleaned the blob store");
        }
        report
    }

    /// Runs [`App::clean_blob_store`] now and then every `cleanup_interval_secs`.
    pub async fn clean_periodically(self: Arc<Self>) {
        let every = Duration::from_secs(self.config.cleanup_interval_secs.max(1));
        loop {
            let reg = self.clone();
            let _ = tokio::task::spawn_blocking(move || reg.clean_blob_store()).await;
            tokio::time::sleep(every).await;
        }
    }
}

/// A `private` pattern as a whole-name regular expression: `*` is any run of characters (`/`
/// too, so `@acme/*` covers every package of the scope), everything else is literal; compared
/// case-insensitively for formats whose names are.
pub fn name_pattern(glob: &str, case_insensitive: bool) -> anyhow::Result<regex::Regex> {
    let body = glob.split('*').map(regex::escape).collect::<Vec<_>>().join(".*");
    regex::RegexBuilder::new(&format!("^{body}$"))
        .case_insensitive(case_insensitive)
        .build()
        .map_err(|e| anyhow::anyhow!("`private` pattern `{glob}`: {e}"))
}

/// What a clean-up pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CleanReport {
    pub temp_files: usize,
    pub blobs: usize,
}

#[cfg(test)]
mod tests {
    #[test]
    fn private_patterns_match_whole_names() {
        let scope = super::name_pattern("@acme/*", false).unwrap();
        assert!(scope.is_match("@acme/secret") && scope.is_match("@acme/a/b"));
        assert!(!scope.is_match("@acme") && !scope.is_match("x@acme/secret") && !scope.is_match("@acmex/y"));
        let prefix = super::name_pattern("acme-*", false).unwrap();
        assert!(prefix.is_match("acme-tools") && !prefix.is_match("acme") && !prefix.is_match("notacme-x"));
        let dotted = super::name_pattern("Acme.*", true).unwrap();
        assert!(dotted.is_match("acme.lib") && !dotted.is_match("acmeXlib"), "a dot is literal");
    }
}
