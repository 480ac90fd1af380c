//! The server's configuration: a TOML file, with every top-level setting also readable from the
//! environment (`SLUICE_LISTEN`, `SLUICE_DATA`, ...; see the README's configuration reference).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Data folder: `sluice.db`, `blobs/`, `plugin-cache/`.
    #[serde(default = "default_data")]
    pub data: PathBuf,
    /// The external URL clients reach the server at (`https://registry.example`); by default
    /// taken from each request's `Host` header.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Largest request body accepted, in MiB.
    #[serde(default = "default_max_upload_mb")]
    pub max_upload_mb: u64,
    /// The most a package file may unpack to, in MiB; plugins refuse larger (decompression bombs).
    #[serde(default = "default_max_unpacked_mb")]
    pub max_unpacked_mb: u64,
    /// Memory limit of one plugin call, in MiB.
    #[serde(default = "default_plugin_memory_mb")]
    pub plugin_memory_mb: u64,
    /// Time limit of one protocol call into a plugin, in milliseconds.
    #[serde(default = "default_plugin_timeout_ms")]
    pub plugin_timeout_ms: u64,
    /// Time limit of parsing one package file, in milliseconds.
    #[serde(default = "default_parse_timeout_ms")]
    pub parse_timeout_ms: u64,
    /// Time limit of rendering a kept document again after a change, in milliseconds. A render
    /// that fails leaves the previous document serving.
    #[serde(default = "default_render_timeout_ms")]
    pub render_timeout_ms: u64,
    /// Where compiled plugins are cached (default: `DATA/plugin-cache`).
    #[serde(default)]
    pub plugin_cache: Option<PathBuf>,
    /// Extra plugins, loaded from files.
    #[serde(default, rename = "plugin")]
    pub plugins: Vec<PluginConfig>,
    /// Repositories. With none configured, every loaded format gets one named after it.
    #[serde(default, rename = "repository")]
    pub repositories: Vec<RepositoryConfig>,
    /// Who may read `/metrics`: anyone (private repositories' series then need a token that
    /// may read them), or only callers with a token.
    #[serde(default)]
    pub metrics: MetricsAccess,
    /// Deliver webhooks to loopback, private and link-local addresses too (refused by default,
    /// so that a webhook cannot reach services inside the network).
    #[serde(default)]
    pub allow_local_webhooks: bool,
    /// Seconds a client has to send a request's headers.
    #[serde(default = "default_header_timeout_secs")]
    pub header_timeout_secs: u64,
    /// Seconds a request body may go without a byte before the upload is dropped.
    #[serde(default = "default_body_idle_timeout_secs")]
    pub body_idle_timeout_secs: u64,
    /// Seconds an idle keep-alive connection stays open.
    #[serde(default = "default_keepalive_idle_secs")]
    pub keepalive_idle_secs: u64,
    /// Connections served at once; more wait to be accepted. Kept below the open-file limit.
    #[serde(default = "default_max_connections")]
    pub max_connections: u64,
    /// Largest body a request without a publishing credential may send, in KiB (such clients
    /// send small searches and audits; a large anonymous body is refused before it is read).
    #[serde(default = "default_anonymous_body_kb")]
    pub anonymous_body_kb: u64,
    /// Seconds an unreferenced blob or a temp upload file is left alone before clean-up removes
    /// it, so that a publish in flight is never touched.
    #[serde(default = "default_blob_grace_secs")]
    pub blob_grace_secs: u64,
    /// Where the store's database is: unset for the SQLite file `sluice.db` in the data folder, or
    /// `postgres://user@host:port/db` for PostgreSQL (see the README's "PostgreSQL").
    #[serde(default)]
    pub database: Option<String>,
    /// Most connections the store keeps open to its database.
    #[serde(default = "default_database_pool_size")]
    pub database_pool_size: u64,
    /// Milliseconds a database connection, a statement (a write waiting for another to commit
    /// included) or a wait for a free pooled connection may take before it fails.
    #[serde(default = "default_database_timeout_ms")]
    pub database_timeout_ms: u64,
    /// Where package files are kept: unset for the `blobs/` folder in the data folder, or
    /// `s3://bucket/prefix` for S3-compatible object storage (endpoint, region and credentials
    /// from the standard `AWS_*` environment variables; see the README's "Blob storage").
    #[serde(default)]
    pub blobs: Option<String>,
    /// Answer downloads from object storage with a redirect to a presigned URL instead of
    /// streaming the bytes through the server.
    #[serde(default)]
    pub blob_redirect: bool,
    /// Seconds between clean-up passes over the blob store (one also runs at start).
    #[serde(default = "default_cleanup_interval_secs")]
    pub cleanup_interval_secs: u64,
    /// The most memory kept protocol documents (packuments, indexes) may hold, in MiB; the least
    /// recently read go first.
    #[serde(default = "default_document_cache_mb")]
    pub document_cache_mb: u64,
    /// Seconds an append-only document (a compact index's version list) grows by appends before
    /// its next change renders it whole again (a compaction; clients then fetch it whole once).
    #[serde(default = "default_document_compact_secs")]
    pub document_compact_secs: u64,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum MetricsAccess {
    /// Anyone may scrape; private repositories' series need a token that may read them.
    #[default]
    Anonymous,
    /// Scraping needs a token.
    Token,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// Path of the `.wasm` component (relative to the config file).
    pub path: PathBuf,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Gate {
    /// Versions are served as soon as they are stored.
    #[default]
    None,
    /// Versions are served once their pipeline succeeded.
    Pipeline,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ReadAccess {
    /// Anyone may read.
    #[default]
    Anonymous,
    /// Reading needs a token with the `read` scope.
    Token,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoryConfig {
    pub name: String,
    /// The format plugin's name (`npm`, `nuget`, ...).
    pub format: String,
    #[serde(default)]
    pub gate: Gate,
    #[serde(default)]
    pub read: ReadAccess,
    /// The repository's pipeline file (relative to the config file).
    #[serde(default)]
    pub pipeline: Option<PathBuf>,
    /// Git repositories whose tags are versions, for git-tag formats: a URL or path, or
    /// `{ url = "...", module = "..." }` naming the packages the source publishes.
    #[serde(default)]
    pub git: Vec<GitSourceConfig>,
    /// How often to poll the git repositories for new tags, in seconds (0: never).
    #[serde(default = "default_poll_seconds")]
    pub poll_seconds: u64,
    /// Secret that git hosts' webhooks must present.
    #[serde(default)]
    pub webhook_secret: Option<String>,
    /// Receivers of pipeline status changes.
    #[serde(default, rename = "webhook")]
    pub webhooks: Vec<WebhookConfig>,
    /// A proxy repository's upstream registry (`https://registry.example`): what clients ask
    /// for and the repository does not hold is fetched from it (see `upstream.rs`).
    #[serde(default)]
    pub upstream: Option<String>,
    /// A bearer token sent to the upstream (`SLUICE_UPSTREAM_TOKEN_<REPOSITORY>` overrides it).
    #[serde(default, skip_serializing)]
    pub upstream_token: Option<String>,
    /// Basic credentials for the upstream (`SLUICE_UPSTREAM_USERNAME_<REPOSITORY>`,
    /// `SLUICE_UPSTREAM_PASSWORD_<REPOSITORY>`).
    #[serde(default)]
    pub upstream_username: Option<String>,
    #[serde(default, skip_serializing)]
    pub upstream_password: Option<String>,
    /// How long an upstream's metadata answer is served without asking it again (`5m`, `30s`).
    #[serde(default = "default_metadata_ttl", with = "duration_text")]
    pub metadata_ttl: std::time::Duration,
    /// Time limit of one request to the upstream (`30s`).
    #[serde(default = "default_upstream_timeout", with = "duration_text")]
    pub upstream_timeout: std::time::Duration,
    /// Never contact the upstream: serve what was kept and stored.
    #[serde(default)]
    pub offline: bool,
    /// Let the upstream be a loopback, private or link-local address (refused by default, as
    /// for webhooks; a registry inside the same network needs it).
    #[serde(default)]
    pub allow_local_upstream: bool,
    /// A proxy's cool-off (`3d`): upstream versions published less than this long ago are not
    /// offered, against freshly compromised releases.
    #[serde(default, with = "optional_duration_text", skip_serializing_if = "Option::is_none")]
    pub min_age: Option<std::time::Duration>,
    /// A gated proxy's (`gate = "pipeline"`) patience with a file its pipeline is still checking:
    /// the client's request waits up to this long for the verdict (`30s` unless set; `0s`
    /// answers at once), so that a quick pipeline does not fail the first install of a new
    /// version. Longer waits hold a server thread and come near clients' own timeouts.
    #[serde(default, with = "optional_duration_text", skip_serializing_if = "Option::is_none")]
    pub quarantine_wait: Option<std::time::Duration>,
    /// A group repository's members, read in this order (local members first): one URL over
    /// them, publishes going to the first local member.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    /// Package name patterns (`@acme/*`, `acme-*`; `*` is any run of characters) of a local
    /// repository: in a group, such names (and every name this repository holds) are never
    /// resolved through a proxy member (dependency confusion).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub private: Vec<String>,
}

/// An optional duration written as text.
mod optional_duration_text {
    use serde::{Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::duration_text::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        super::duration_text::deserialize(d).map(Some)
    }
}

/// Durations written as text (`5m`, `90s`, `1h 30m`).
mod duration_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .map_err(|e| serde::de::Error::custom(format!("`{text}` is not a duration such as \"5m\" or \"30s\": {e}")))
    }
}

/// `quarantine_wait` unless set: a pipeline of a job or two on a runner that is already
/// long-polling (it gets the job at once) finishes in seconds; 30 s leaves room for a slower
/// scan and stays far below what clients wait for a download before giving up (npm 5 min,
/// NuGet 100 s).
pub const DEFAULT_QUARANTINE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);
/// The most `quarantine_wait` may be: a longer one ties up a server thread per waiting request
/// and outlasts clients' download timeouts; a slow pipeline should answer "held" instead.
pub const MAX_QUARANTINE_WAIT: std::time::Duration = std::time::Duration::from_secs(300);

impl RepositoryConfig {
    /// How long a file request waits for a gated proxy's pipeline before answering "held".
    pub fn quarantine_wait(&self) -> std::time::Duration {
        self.quarantine_wait.unwrap_or(DEFAULT_QUARANTINE_WAIT)
    }
}

fn default_metadata_ttl() -> std::time::Duration {
    std::time::Duration::from_secs(300)
}
fn default_upstream_timeout() -> std::time::Duration {
    std::time::Duration::from_secs(30)
}

/// A repository's name as the tail of an environment variable: `web-public` -> `WEB_PUBLIC`.
pub fn env_suffix(repository: &str) -> String {
    repository.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect()
}

/// One git source: the plain string form (`"https://..."`) or a table with a name.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum GitSourceConfig {
    Url(String),
    Named(NamedGitSource),
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NamedGitSource {
    /// What `git clone` accepts: a URL or a local path.
    pub url: String,
    /// The package name, or name prefix, this source publishes (a Go module path). The format
    /// plugin decides what it means; without it, a plugin may derive one from the URL.
    #[serde(default)]
    pub module: Option<String>,
}

impl GitSourceConfig {
    pub fn url(&self) -> &str {
        match self {
            GitSourceConfig::Url(url) | GitSourceConfig::Named(NamedGitSource { url, .. }) => url,
        }
    }

    pub fn name(&self) -> Option<&str> {
        match self {
            GitSourceConfig::Url(_) => None,
            GitSourceConfig::Named(named) => named.module.as_deref().filter(|m| !m.is_empty()),
        }
    }

    fn url_mut(&mut self) -> &mut String {
        match self {
            GitSourceConfig::Url(url) | GitSourceConfig::Named(NamedGitSource { url, .. }) => url,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    /// Key of the HMAC-SHA256 signature in `X-Sluice-Signature`.
    pub secret: String,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_data() -> PathBuf {
    "./sluice-data".into()
}
fn default_database_pool_size() -> u64 {
    16
}
fn default_database_timeout_ms() -> u64 {
    10_000
}
fn default_max_upload_mb() -> u64 {
    1024
}
fn default_max_unpacked_mb() -> u64 {
    512
}
fn default_plugin_memory_mb() -> u64 {
    256
}
fn default_plugin_timeout_ms() -> u64 {
    1000
}
fn default_parse_timeout_ms() -> u64 {
    30_000
}
fn default_render_timeout_ms() -> u64 {
    10_000
}
fn default_poll_seconds() -> u64 {
    300
}
fn default_header_timeout_secs() -> u64 {
    30
}
fn default_body_idle_timeout_secs() -> u64 {
    60
}
fn default_keepalive_idle_secs() -> u64 {
    75
}
fn default_max_connections() -> u64 {
    4096
}
fn default_anonymous_body_kb() -> u64 {
    1024
}
fn default_blob_grace_secs() -> u64 {
    3600
}
fn default_cleanup_interval_secs() -> u64 {
    3600
}
fn default_document_cache_mb() -> u64 {
    256
}
fn default_document_compact_secs() -> u64 {
    86_400
}

impl Default for Config {
    fn default() -> Self {
        toml::from_str("").expect("the empty config is valid")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("read config {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config {path}: {source}")]
    Parse { path: PathBuf, source: toml::de::Error },
    #[error("environment variable {name}: {message}")]
    Env { name: String, message: String },
    #[error("config: {0}")]
    Invalid(String),
}

/// Paths of the server's own that no repository may take (the API, health, the web UI's pages).
const RESERVED_NAMES: &[&str] =
    &["api", "health", "metrics", "ui", "static", "pushes", "plugins", "login", "logout", "pipelines", "jobs"];

impl Config {
    /// Reads the config file (if any), then applies `SLUICE_*` environment variables.
    /// Relative paths in the file are resolved against the file's folder.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut config = match path {
            None => Config::default(),
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
                let mut c: Config =
                    toml::from_str(&text).map_err(|source| ConfigError::Parse { path: path.into(), source })?;
                let base = path.parent().unwrap_or(Path::new("."));
                c.resolve_paths(base);
                c
            }
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        config.validate()?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        resolve(&mut self.data);
        if let Some(c) = &mut self.plugin_cache {
            resolve(c);
        }
        for p in &mut self.plugins {
            resolve(&mut p.path);
        }
        for r in &mut self.repositories {
            if let Some(p) = &mut r.pipeline {
                resolve(p);
            }
            for g in r.git.iter_mut().map(GitSourceConfig::url_mut) {
                if !g.contains("://") && !g.starts_with('/') && !g.contains('@') {
                    *g = base.join(&*g).display().to_string();
                }
            }
        }
    }

    /// Every scalar setting has an environment variable named `SLUICE_` + its upper-cased key;
    /// `SLUICE_PLUGINS` adds plugin files (separated by `:`).
    fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn num(name: &str, v: String) -> Result<u64, ConfigError> {
            v.parse().map_err(|_| ConfigError::Env { name: name.into(), message: format!("`{v}` is not a number") })
        }
        if let Some(v) = get("SLUICE_LISTEN") {
            self.listen = v;
        }
        if let Some(v) = get("SLUICE_DATA") {
            self.data = v.into();
        }
        if let Some(v) = get("SLUICE_PUBLIC_URL") {
            self.public_url = Some(v);
        }
        if let Some(v) = get("SLUICE_DATABASE") {
            self.database = Some(v).filter(|v| !v.is_empty());
        }
        if let Some(v) = get("SLUICE_BLOBS") {
            self.blobs = Some(v).filter(|v| !v.is_empty());
        }
        if let Some(v) = get("SLUICE_BLOB_REDIRECT") {
            self.blob_redirect = matches!(v.as_str(), "1" | "true" | "yes");
        }
        if let Some(v) = get("SLUICE_PLUGIN_CACHE") {
            self.plugin_cache = Some(v.into());
        }
        for (name, field) in [
            ("SLUICE_MAX_UPLOAD_MB", &mut self.max_upload_mb),
            ("SLUICE_MAX_UNPACKED_MB", &mut self.max_unpacked_mb),
            ("SLUICE_PLUGIN_MEMORY_MB", &mut self.plugin_memory_mb),
            ("SLUICE_PLUGIN_TIMEOUT_MS", &mut self.plugin_timeout_ms),
            ("SLUICE_PARSE_TIMEOUT_MS", &mut self.parse_timeout_ms),
            ("SLUICE_RENDER_TIMEOUT_MS", &mut self.render_timeout_ms),
            ("SLUICE_HEADER_TIMEOUT_SECS", &mut self.header_timeout_secs),
            ("SLUICE_BODY_IDLE_TIMEOUT_SECS", &mut self.body_idle_timeout_secs),
            ("SLUICE_KEEPALIVE_IDLE_SECS", &mut self.keepalive_idle_secs),
            ("SLUICE_MAX_CONNECTIONS", &mut self.max_connections),
            ("SLUICE_ANONYMOUS_BODY_KB", &mut self.anonymous_body_kb),
            ("SLUICE_BLOB_GRACE_SECS", &mut self.blob_grace_secs),
            ("SLUICE_CLEANUP_INTERVAL_SECS", &mut self.cleanup_interval_secs),
            ("SLUICE_DOCUMENT_CACHE_MB", &mut self.document_cache_mb),
            ("SLUICE_DOCUMENT_COMPACT_SECS", &mut self.document_compact_secs),
            ("SLUICE_DATABASE_POOL_SIZE", &mut self.database_pool_size),
            ("SLUICE_DATABASE_TIMEOUT_MS", &mut self.database_timeout_ms),
        ] {
            if let Some(v) = get(name) {
                *field = num(name, v)?;
            }
        }
        if let Some(v) = get("SLUICE_ALLOW_LOCAL_WEBHOOKS") {
            self.allow_local_webhooks = matches!(v.as_str(), "1" | "true" | "yes");
        }
        if let Some(v) = get("SLUICE_METRICS") {
            self.metrics = match v.as_str() {
                "anonymous" => MetricsAccess::Anonymous,
                "token" => MetricsAccess::Token,
                other => {
                    return Err(ConfigError::Env {
                        name: "SLUICE_METRICS".into(),
                        message: format!("`{other}` is not anonymous or token"),
                    })
                }
            };
        }
        // Upstream secrets belong in the environment, not the file: one variable per repository.
        for r in &mut self.repositories {
            let suffix = env_suffix(&r.name);
            for (name, field) in [
                ("SLUICE_UPSTREAM_TOKEN_", &mut r.upstream_token),
                ("SLUICE_UPSTREAM_USERNAME_", &mut r.upstream_username),
                ("SLUICE_UPSTREAM_PASSWORD_", &mut r.upstream_password),
            ] {
                if let Some(v) = get(&format!("{name}{suffix}")) {
                    *field = Some(v).filter(|v| !v.is_empty());
                }
            }
        }
        if let Some(v) = get("SLUICE_PLUGINS") {
            self.plugins.extend(v.split(':').filter(|p| !p.is_empty()).map(|p| PluginConfig { path: p.into() }));
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let mut seen = std::collections::HashSet::new();
        for r in &self.repositories {
            let valid = !r.name.is_empty()
                && r.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
                && !RESERVED_NAMES.contains(&r.name.as_str());
            if !valid {
                return Err(ConfigError::Invalid(format!(
                    "repository name `{}` must be letters, digits, `-`, `_` or `.`, and not a reserved path",
                    r.name
                )));
            }
            if !seen.insert(&r.name) {
                return Err(ConfigError::Invalid(format!("repository `{}` is configured twice", r.name)));
            }
            r.validate_upstream().map_err(|e| ConfigError::Invalid(format!("repository `{}`: {e}", r.name)))?;
            self.validate_group(r).map_err(|e| ConfigError::Invalid(format!("repository `{}`: {e}", r.name)))?;
            for hook in &r.webhooks {
                crate::outbound::check_url(&hook.url, self.allow_local_webhooks)
                    .map_err(|e| ConfigError::Invalid(format!("repository `{}`: webhook {}: {e}", r.name, hook.url)))?;
            }
        }
        if let Some(url) = &self.blobs {
            if !url.strip_prefix("s3://").is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/')) {
                return Err(ConfigError::Invalid(format!(
                    "`blobs = {url:?}` is not an `s3://bucket/prefix` URL (leave it unset for the local folder)"
                )));
            }
        }
        if let Some(url) = &self.database {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(ConfigError::Invalid(format!(
                    "`database = {url:?}` is not a `postgres://user@host:port/db` URL (leave it unset for SQLite)"
                )));
            }
        }
        if self.blob_redirect && self.blobs.is_none() {
            return Err(ConfigError::Invalid("`blob_redirect` needs `blobs = \"s3://...\"`".into()));
        }
        for (name, value) in [
            ("header_timeout_secs", self.header_timeout_secs),
            ("body_idle_timeout_secs", self.body_idle_timeout_secs),
            ("keepalive_idle_secs", self.keepalive_idle_secs),
            ("max_connections", self.max_connections),
            ("database_pool_size", self.database_pool_size),
            ("database_timeout_ms", self.database_timeout_ms),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid(format!("`{name}` must be more than 0")));
            }
        }
        Ok(())
    }

    /// A group's members exist, share its format, are no groups themselves (so there is no
    /// nesting and no cycle) and hold at most one proxy (which upstream a name resolves through
    /// must be one answer); a group has nothing of its own (no upstream, git, pipeline or
    /// `private`: those are its members'). `private` patterns are for local repositories.
    fn validate_group(&self, r: &RepositoryConfig) -> Result<(), String> {
        for pattern in &r.private {
            if pattern.is_empty() {
                return Err("`private` has an empty pattern".into());
            }
        }
        if r.members.is_empty() {
            if !r.private.is_empty() && r.upstream.is_some() {
                return Err("`private` names packages of a local repository; a proxy has none of its own".into());
            }
            return Ok(());
        }
        let own = [
            ("upstream", r.upstream.is_some()),
            ("git", !r.git.is_empty()),
            ("pipeline", r.pipeline.is_some()),
            ("private", !r.private.is_empty()),
            ("min_age", r.min_age.is_some()),
            ("gate", r.gate != Gate::None),
        ];
        if let Some((name, _)) = own.iter().find(|(_, set)| *set) {
            return Err(format!("a group (`members`) has no `{name}` of its own; set it on the member repositories"));
        }
        let mut seen = std::collections::HashSet::new();
        let mut proxies = Vec::new();
        for name in &r.members {
            if !seen.insert(name) {
                return Err(format!("member `{name}` is listed twice"));
            }
            if name == &r.name {
                return Err("a group cannot be its own member".into());
            }
            let member = self
                .repositories
                .iter()
                .find(|m| &m.name == name)
                .ok_or_else(|| format!("member `{name}` is not a configured repository"))?;
            if member.format != r.format {
                return Err(format!(
                    "member `{name}` is format `{}`, the group is `{}`: a group's members share its format",
                    member.format, r.format
                ));
            }
            if !member.members.is_empty() {
                return Err(format!("member `{name}` is a group itself; groups do not nest"));
            }
            if member.upstream.is_some() {
                proxies.push(name.as_str());
            }
        }
        if proxies.len() > 1 {
            return Err(format!(
                "members {} are all proxies; a group has at most one, so that each name resolves through one upstream",
                proxies.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ")
            ));
        }
        Ok(())
    }

    pub fn plugin_cache_dir(&self) -> PathBuf {
        self.plugin_cache.clone().unwrap_or_else(|| self.data.join("plugin-cache"))
    }
}

impl RepositoryConfig {
    /// A proxy's settings: a URL the outbound guard accepts, one kind of credential, and no
    /// proxy setting on a repository without an upstream.
    fn validate_upstream(&self) -> Result<(), String> {
        let Some(url) = &self.upstream else {
            let stray = [
                ("upstream_token", self.upstream_token.is_some()),
                ("upstream_username", self.upstream_username.is_some()),
                ("upstream_password", self.upstream_password.is_some()),
                ("offline", self.offline),
                ("allow_local_upstream", self.allow_local_upstream),
                ("min_age", self.min_age.is_some()),
                ("quarantine_wait", self.quarantine_wait.is_some()),
            ];
            return match stray.iter().find(|(_, set)| *set) {
                Some((name, _)) => Err(format!("`{name}` needs `upstream = \"https://...\"`")),
                None => Ok(()),
            };
        };
        crate::outbound::check_url(url, self.allow_local_upstream).map_err(|e| {
            let e = e.replace("allow_local_webhooks", "allow_local_upstream");
            format!("upstream {url}: {e}")
        })?;
        if !self.git.is_empty() {
            return Err("a repository takes versions from git tags or from an upstream, not both".into());
        }
        if self.upstream_token.is_some() && (self.upstream_username.is_some() || self.upstream_password.is_some()) {
            return Err("set `upstream_token` or `upstream_username`/`upstream_password`, not both".into());
        }
        if self.upstream_password.is_some() != self.upstream_username.is_some() {
            return Err("`upstream_username` and `upstream_password` go together".into());
        }
        if self.upstream_timeout.is_zero() {
            return Err("`upstream_timeout` must be more than 0".into());
        }
        if self.quarantine_wait.is_some_and(|w| w > MAX_QUARANTINE_WAIT) {
            return Err(format!(
                "`quarantine_wait` is at most {}: a longer wait outlasts clients' download timeouts",
                humantime::format_duration(MAX_QUARANTINE_WAIT)
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_sources_are_strings_or_tables() {
        let toml = "[[repository]]\nname = \"mods\"\nformat = \"tagged\"\ngit = [\"https://example.com/a.git\", { url = \"https://example.com/b.git\", module = \"example.com/b\" }, { url = \"/srv/c\" }]\n";
        let config: Config = toml::from_str(toml).unwrap();
        let git = &config.repositories[0].git;
        assert_eq!(
            git.iter().map(GitSourceConfig::url).collect::<Vec<_>>(),
            ["https://example.com/a.git", "https://example.com/b.git", "/srv/c"]
        );
        assert_eq!(git.iter().map(GitSourceConfig::name).collect::<Vec<_>>(), [None, Some("example.com/b"), None]);
        let typo = "[[repository]]\nname = \"mods\"\nformat = \"tagged\"\ngit = [{ url = \"x\", modul = \"y\" }]\n";
        assert!(toml::from_str::<Config>(typo).is_err(), "an unknown key in a git source is an error");
    }

    #[test]
    fn file_then_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sluice.toml");
        std::fs::write(
            &path,
            "listen = \"0.0.0.0:9000\"\n[[repository]]\nname = \"web-internal\"\nformat = \"web\"\ngate = \"pipeline\"\npipeline = \"ci.yml\"\n",
        )
        .unwrap();
        let mut c = Config::load(Some(&path)).unwrap();
        assert_eq!(c.listen, "0.0.0.0:9000");
        assert_eq!(c.repositories[0].gate, Gate::Pipeline);
        assert_eq!(c.repositories[0].pipeline.as_deref(), Some(dir.path().join("ci.yml").as_path()));
        c.apply_env(|k| (k == "SLUICE_PLUGIN_TIMEOUT_MS").then(|| "250".to_string())).unwrap();
        assert_eq!(c.plugin_timeout_ms, 250);
        assert!(c.apply_env(|k| (k == "SLUICE_MAX_UPLOAD_MB").then(|| "lots".to_string())).is_err());
    }

    #[test]
    fn blobs_are_the_local_folder_or_an_s3_url() {
        let mut c = Config::default();
        c.apply_env(|k| (k == "SLUICE_BLOBS").then(|| "s3://pkgs/prefix".to_string())).unwrap();
        assert_eq!(c.blobs.as_deref(), Some("s3://pkgs/prefix"));
        assert!(c.validate().is_ok());
        let local: Config = toml::from_str("blobs = \"/srv/blobs\"").unwrap();
        assert!(local.validate().is_err(), "only s3:// URLs; the local folder is the default");
        let redirect: Config = toml::from_str("blob_redirect = true").unwrap();
        assert!(redirect.validate().is_err(), "a redirect needs object storage");
    }

    #[test]
    fn database_is_sqlite_or_a_postgres_url() {
        let mut c = Config::default();
        assert!(c.database.is_none(), "SQLite in the data folder by default");
        c.apply_env(|k| match k {
            "SLUICE_DATABASE" => Some("postgres://sluice@db.internal:5432/registry".to_string()),
            "SLUICE_DATABASE_POOL_SIZE" => Some("4".to_string()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.database.as_deref(), Some("postgres://sluice@db.internal:5432/registry"));
        assert_eq!((c.database_pool_size, c.database_timeout_ms), (4, 10_000));
        assert!(c.validate().is_ok());
        let file: Config = toml::from_str("database = \"/srv/sluice.db\"").unwrap();
        assert!(file.validate().is_err(), "only postgres:// URLs; the SQLite file is the default");
        let empty: Config = toml::from_str("database_pool_size = 0").unwrap();
        assert!(empty.validate().is_err());
    }

    #[test]
    fn proxy_settings_are_checked_and_secrets_come_from_the_environment() {
        let ok: Config = toml::from_str(
            "[[repository]]\nname = \"web-public\"\nformat = \"web\"\nupstream = \"https://registry.example\"\nmetadata_ttl = \"90s\"\n",
        )
        .unwrap();
        assert!(ok.validate().is_ok());
        assert_eq!(ok.repositories[0].metadata_ttl, std::time::Duration::from_secs(90));
        let mut c = ok.clone();
        c.apply_env(|k| (k == "SLUICE_UPSTREAM_TOKEN_WEB_PUBLIC").then(|| "t0k".to_string())).unwrap();
        assert_eq!(c.repositories[0].upstream_token.as_deref(), Some("t0k"));
        assert!(!toml::to_string(&c).unwrap().contains("t0k"), "secrets are never written back out");
        let default: Config =
            toml::from_str("[[repository]]\nname = \"p\"\nformat = \"web\"\nupstream = \"https://r.example\"\n")
                .unwrap();
        assert_eq!(default.repositories[0].metadata_ttl, std::time::Duration::from_secs(300));
        for (bad, says) in [
            ("upstream = \"http://127.0.0.1:4873\"", "allow_local_upstream"),
            ("upstream = \"ftp://r.example\"", "http"),
            ("offline = true", "needs `upstream"),
            ("upstream = \"https://r.example\"\nupstream_token = \"a\"\nupstream_username = \"u\"\nupstream_password = \"p\"", "not both"),
            ("upstream = \"https://r.example\"\nupstream_username = \"u\"", "go together"),
        ] {
            let c: Config =
                toml::from_str(&format!("[[repository]]\nname = \"p\"\nformat = \"web\"\n{bad}\n")).unwrap();
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
        assert!(toml::from_str::<Config>(
            "[[repository]]\nname = \"p\"\nformat = \"web\"\nupstream = \"https://r.example\"\nmetadata_ttl = \"soon\"\n"
        )
        .is_err());
        let local: Config = toml::from_str(
            "[[repository]]\nname = \"p\"\nformat = \"web\"\nupstream = \"http://127.0.0.1:4873\"\nallow_local_upstream = true\n",
        )
        .unwrap();
        assert!(local.validate().is_ok());
    }

    #[test]
    fn groups_are_checked() {
        let base = "[[repository]]\nname = \"local\"\nformat = \"web\"\nprivate = [\"@acme/*\"]\n\
                    [[repository]]\nname = \"public\"\nformat = \"web\"\nupstream = \"https://r.example\"\nmin_age = \"3d\"\n\
                    [[repository]]\nname = \"other\"\nformat = \"text\"\n\
                    [[repository]]\nname = \"mirror\"\nformat = \"web\"\nupstream = \"https://m.example\"\n";
        let ok: Config = toml::from_str(&format!(
            "{base}[[repository]]\nname = \"all\"\nformat = \"web\"\nmembers = [\"local\", \"public\"]\n"
        ))
        .unwrap();
        assert!(ok.validate().is_ok(), "{:?}", ok.validate());
        assert_eq!(ok.repositories[1].min_age, Some(std::time::Duration::from_secs(3 * 86_400)));
        for (group, says) in [
            ("members = [\"local\", \"ghost\"]", "not a configured repository"),
            ("members = [\"local\", \"other\"]", "share its format"),
            ("members = [\"local\", \"public\", \"mirror\"]", "at most one"),
            ("members = [\"local\", \"local\"]", "twice"),
            ("members = [\"all\"]", "its own member"),
            ("members = [\"local\"]\nupstream = \"https://r.example\"", "no `upstream`"),
            ("members = [\"local\"]\nprivate = [\"x\"]", "no `private`"),
        ] {
            let c: Config =
                toml::from_str(&format!("{base}[[repository]]\nname = \"all\"\nformat = \"web\"\n{group}\n")).unwrap();
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains(says), "{group}: {err}");
        }
        let nested: Config = toml::from_str(&format!(
            "{base}[[repository]]\nname = \"all\"\nformat = \"web\"\nmembers = [\"local\"]\n[[repository]]\nname = \"top\"\nformat = \"web\"\nmembers = [\"all\"]\n"
        ))
        .unwrap();
        assert!(nested.validate().unwrap_err().to_string().contains("do not nest"));
        let stray: Config =
            toml::from_str("[[repository]]\nname = \"p\"\nformat = \"web\"\nmin_age = \"1h\"\n").unwrap();
        assert!(stray.validate().unwrap_err().to_string().contains("needs `upstream"));
        let stray: Config =
            toml::from_str("[[repository]]\nname = \"p\"\nformat = \"web\"\nquarantine_wait = \"5s\"\n").unwrap();
        assert!(stray.validate().unwrap_err().to_string().contains("needs `upstream"));
        let proxy =
            "[[repository]]\nname = \"p\"\nformat = \"web\"\nupstream = \"https://r.example\"\ngate = \"pipeline\"\n";
        let default: Config = toml::from_str(proxy).unwrap();
        assert_eq!(default.repositories[0].quarantine_wait(), DEFAULT_QUARANTINE_WAIT);
        let long: Config = toml::from_str(&format!("{proxy}quarantine_wait = \"1h\"\n")).unwrap();
        assert!(long.validate().unwrap_err().to_string().contains("at most 5m"));
        let now: Config = toml::from_str(&format!("{proxy}quarantine_wait = \"0s\"\n")).unwrap();
        assert!(now.validate().is_ok());
        assert!(now.repositories[0].quarantine_wait().is_zero());
    }

    #[test]
    fn rejects_reserved_and_duplicate_names() {
        let bad: Config = toml::from_str("[[repository]]\nname = \"api\"\nformat = \"web\"\n").unwrap();
        assert!(bad.validate().is_err());
        let dup: Config = toml::from_str(
            "[[repository]]\nname = \"a\"\nformat = \"web\"\n[[repository]]\nname = \"a\"\nformat = \"web\"\n",
        )
        .unwrap();
        assert!(dup.validate().is_err());
    }
}
