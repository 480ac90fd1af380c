use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimitsBuilder, Trap,
    UpdateDeadline,
};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::WasiCtxBuilder;

use super::bindings::{self, current as wit, Instance, PluginPre};
use super::host::{BlobHandle, CallState, RegistryView, TreeHandle};

/// How often the epoch ticks; deadlines are whole ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Most plugin output kept per call for the log.
const MAX_OUTPUT: usize = 64 * 1024;

/// Per-call limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Linear memory a plugin instance may grow to.
    pub memory_bytes: usize,
    /// Wall-clock limit of a protocol call (`handle`, `render-error`, `info`...).
    pub call_timeout: Duration,
    /// Wall-clock limit of a call that reads a whole package (`parse`, `from-tag`).
    pub parse_timeout: Duration,
    /// Wall-clock limit of rendering a kept document again (off the readers' path).
    pub render_timeout: Duration,
    /// The operator's size limits, passed to `parse` and `handle` (contract 0.2.0 and later).
    pub sizes: wit::Limits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 256 << 20,
            call_timeout: Duration::from_secs(1),
            parse_timeout: Duration::from_secs(30),
            render_timeout: Duration::from_secs(10),
            sizes: wit::Limits { max_upload_bytes: 1 << 30, max_unpacked_bytes: 512 << 20 },
        }
    }
}

/// Why a plugin call failed. The server keeps running; only this call is lost.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("plugin `{plugin}` exceeded its time limit of {ms} ms")]
    Timeout { plugin: String, ms: u128 },
    #[error("plugin `{plugin}` exceeded its memory limit of {mib} MiB")]
    OutOfMemory { plugin: String, mib: usize },
    #[error("plugin `{plugin}` failed: {message}")]
    Trap { plugin: String, message: String },
}

/// The engine and every loaded plugin.
pub struct PluginRuntime {
    engine: Engine,
    linker: Linker<CallState>,
    limits: Limits,
    cache_dir: PathBuf,
}

/// One loaded plugin: compiled, linked, ready to instantiate.
pub struct Plugin {
    pub info: wit::FormatInfo,
    /// sha256 of the component, hex.
    pub sha256: String,
    /// Where it came from: `builtin:NAME` or the file path.
    pub source: String,
    /// The contract version it was built against (`0.2.0`).
    pub contract: &'static str,
    pre: PluginPre,
    engine: Engine,
    limits: Limits,
    /// Counters for `/metrics`.
    pub stats: CallStats,
}

/// How a plugin's calls went, since the server started.
#[derive(Debug, Default)]
pub struct CallStats {
    pub calls: AtomicU64,
    pub timeouts: AtomicU64,
    pub out_of_memory: AtomicU64,
    pub traps: AtomicU64,
    /// Sum of call durations, in microseconds.
    pub micros: AtomicU64,
}

impl PluginRuntime {
    pub fn new(limits: Limits, cache_dir: PathBuf) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        let mut pool = PoolingAllocationConfig::default();
        // Concurrent calls in flight; each call holds one instance for microseconds to seconds.
        pool.total_component_instances(512);
        pool.total_core_instances(1024);
        pool.total_memories(512);
        pool.total_tables(512);
        pool.max_memory_size(limits.memory_bytes);
        // Reset the first MiBs of a returned memory (and its tables) by overwriting them rather than
        // handing them back to the kernel: a fresh instance per call would otherwise page-fault its
        // heap back in every time, and the unmapping costs a TLB shootdown on every core.
        pool.linear_memory_keep_resident(4 << 20);
        pool.table_keep_resident(64 << 10);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(wasm_err)?;
        start_epoch_ticker(&engine);
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(wasm_err)?;
        bindings::add_to_linker(&mut linker).map_err(wasm_err)?;
        std::fs::create_dir_all(&cache_dir)
            .map_err(|e| anyhow::anyhow!("create plugin cache {}: {e}", cache_dir.display()))?;
        Ok(PluginRuntime { engine, linker, limits, cache_dir })
    }

    /// Compiles (or loads from the cache) and links a component, then asks it what it is.
    pub fn load(&self, wasm: &[u8], source: &str) -> anyhow::Result<Plugin> {
        let sha256 = hex::encode(Sha256::digest(wasm));
        let component = self.compile_cached(wasm, &sha256)?;
        let contract = bindings::contract_of(&component, &self.engine).ok_or_else(|| {
            anyhow::anyhow!(
                "{source} is not a Sluice format plugin: it exports no `sluice:plugin/format` of a contract this host \
                 loads ({})",
                bindings::VERSIONS.join(", ")
            )
        })?;
        let pre = PluginPre::new(&self.linker, &component, contract).map_err(|e| {
            anyhow::anyhow!("{source} is not a Sluice format plugin of contract {contract}: {}", wasm_err(e))
        })?;
        let mut plugin = Plugin {
            info: wit::FormatInfo {
                name: String::new(),
                display_name: String::new(),
                case_insensitive_names: false,
                publish: wit::PublishMode::Upload,
                credential_headers: Vec::new(),
                install_hint: String::new(),
            },
            sha256,
            source: source.to_string(),
            contract,
            pre,
            engine: self.engine.clone(),
            limits: self.limits,
            stats: CallStats::default(),
        };
        plugin.info = plugin.call("info", self.limits.call_timeout, None, |p, s| p.call_info(s))?;
        Ok(plugin)
    }

    /// Loads a plugin from a file.
    pub fn load_file(&self, path: &Path) -> anyhow::Result<Plugin> {
        let wasm = std::fs::read(path).map_err(|e| anyhow::anyhow!("read plugin {}: {e}", path.display()))?;
        self.load(&wasm, &path.display().to_string())
    }

    fn compile_cached(&self, wasm: &[u8], sha256: &str) -> anyhow::Result<Component> {
        let mut h = DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut h);
        let path = self.cache_dir.join(format!("{sha256}-{:016x}.cwasm", h.finish()));
        if path.is_file() {
            // SAFETY: the file was written by `precompile_component` of an engine with the same
            // compatibility hash, into the operator's own data folder.
            match unsafe { Component::deserialize_file(&self.engine, &path) } {
                Ok(c) => return Ok(c),
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "ignoring unusable plugin cache entry"),
            }
        }
        let started = std::time::Instant::now();
        let compiled = self.engine.precompile_component(wasm).map_err(wasm_err)?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, &compiled)
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|e| anyhow::anyhow!("write plugin cache {}: {e}", path.display()))?;
        tracing::info!(sha256, ms = started.elapsed().as_millis() as u64, "compiled plugin");
        // SAFETY: just produced by this engine.
        Ok(unsafe { Component::deserialize(&self.engine, &compiled).map_err(wasm_err)? })
    }
}

/// wasmtime's errors as anyhow's, keeping the whole chain in the message.
fn wasm_err(e: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!("{e:#}")
}

/// Whole epoch ticks for a duration, at least one.
fn ticks_for(d: Duration) -> u64 {
    (d.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
}

fn start_epoch_ticker(engine: &Engine) {
    static STARTED: OnceLock<()> = OnceLock::new();
    let engine = engine.clone();
    STARTED.get_or_init(move || {
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || loop {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            })
            .expect("spawn epoch thread");
    });
}

impl Plugin {
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// Runs `f` against a fresh instance with this plugin's limits.
    fn call<R>(
        &self,
        what: &str,
        timeout: Duration,
        registry: Option<Arc<dyn RegistryView>>,
        f: impl FnOnce(&Instance, &mut Store<CallState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        self.call_with(what, timeout, registry, |_| Ok(()), |p, s, ()| f(p, s))
    }

    /// Like `call`, with `setup` preparing resources in the store before the call.
    fn call_with<A, R>(
        &self,
        what: &str,
        timeout: Duration,
        registry: Option<Arc<dyn RegistryView>>,
        setup: impl FnOnce(&mut Store<CallState>) -> wasmtime::Result<A>,
        f: impl FnOnce(&Instance, &mut Store<CallState>, A) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        let started = std::time::Instant::now();
        let output = MemoryOutputPipe::new(MAX_OUTPUT);
        let wasi = WasiCtxBuilder::new().stdout(output.clone()).stderr(output.clone()).build();
        let limits = StoreLimitsBuilder::new().memory_size(self.limits.memory_bytes).trap_on_grow_failure(true).build();
        let state = CallState { wasi, table: ResourceTable::new(), limits, registry, waited: Duration::ZERO };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(ticks_for(timeout));
        // At the deadline, time the call spent waiting for the repository's upstream (a host
        // import with timeouts of its own) is given back: the limit is on the plugin's work.
        store.epoch_deadline_callback(move |ctx| {
            let budget = timeout + ctx.data().waited;
            match budget.checked_sub(started.elapsed()) {
                Some(left) if !left.is_zero() => Ok(UpdateDeadline::Continue(ticks_for(left))),
                _ => Err(Trap::Interrupt.into()),
            }
        });
        let result = setup(&mut store)
            .and_then(|a| Ok((self.pre.instantiate(&mut store)?, a)))
            .and_then(|(bindings, a)| f(&bindings, &mut store, a));
        let printed = output.contents();
        if !printed.is_empty() {
            tracing::info!(plugin = %self.info.name, call = what, output = %String::from_utf8_lossy(&printed), "plugin output");
        }
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        self.stats.micros.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        result.map_err(|e| {
            let failure = self.classify(e, timeout, &String::from_utf8_lossy(&printed));
            let counter = match failure {
                CallError::Timeout { .. } => &self.stats.timeouts,
                CallError::OutOfMemory { .. } => &self.stats.out_of_memory,
                CallError::Trap { .. } => &self.stats.traps,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            failure
        })
    }

    /// Names a failed call's cause in one line: the deadline, the memory limit, or the trap with
    /// the plugin's own panic message when it printed one.
    fn classify(&self, e: wasmtime::Error, timeout: Duration, printed: &str) -> CallError {
        let plugin = self.info.name.clone();
        let trap = e.downcast_ref::<Trap>().copied();
        if trap == Some(Trap::Interrupt) {
            return CallError::Timeout { plugin, ms: timeout.as_millis() };
        }
        let text = format!("{e:#}");
        if text.contains("forcing trap when growing memory") || text.contains("memory minimum size") {
            return CallError::OutOfMemory { plugin, mib: self.limits.memory_bytes >> 20 };
        }
        let mut message = match trap {
            Some(t) => t.to_string(),
            None => text.lines().next().unwrap_or_default().to_string(),
        };
        if let Some(panic) = printed.lines().find(|l| l.contains("panicked at")) {
            message = format!("{message} ({})", panic.trim());
        }
        CallError::Trap { plugin, message }
    }

    /// Reads a package file. The outer error is the call failing; the inner is the plugin's
    /// verdict on the file.
    pub fn parse(&self, file_name: &str, file: BlobHandle) -> Result<Result<wit::Metadata, wit::Error>, CallError> {
        self.call_with(
            "parse",
            self.limits.parse_timeout,
            None,
            |s| Ok(s.data_mut().table.push(file)?),
            |p, s, blob| p.call_parse(s, file_name, blob, self.limits.sizes),
        )
    }

    pub fn extraction_for(&self, meta: &wit::Metadata) -> Result<wit::Extraction, CallError> {
        self.call("extraction-for", self.limits.call_timeout, None, |p, s| p.call_extraction_for(s, meta))
    }

    pub fn trigger_for(&self, meta: &wit::Metadata) -> Result<wit::Trigger, CallError> {
        self.call("trigger-for", self.limits.call_timeout, None, |p, s| p.call_trigger_for(s, meta))
    }

    /// Serves one protocol request.
    pub fn handle(
        &self,
        req: &wit::Request,
        body: BlobHandle,
        registry: Arc<dyn RegistryView>,
    ) -> Result<Result<wit::Outcome, wit::Error>, CallError> {
        // A request with a body is an upload the plugin may have to read whole (npm scans its
        // publish JSON for the attachment): it gets the time a parse gets. Everything else is a quick protocol answer.
        let timeout = if body.size() > 0 { self.limits.parse_timeout } else { self.limits.call_timeout };
        self.call_with(
            "handle",
            timeout,
            Some(registry),
            |s| Ok(s.data_mut().table.push(body)?),
            |p, s, blob| p.call_handle(s, req, blob, self.limits.sizes),
        )
    }

    /// Renders a kept response again for the document cache, off the readers' path: it gets
    /// `render_timeout`, since a large package's document is rendered once per change and a
    /// failure only means the previous document keeps serving.
    pub fn render(
        &self,
        req: &wit::Request,
        registry: Arc<dyn RegistryView>,
    ) -> Result<Result<wit::Outcome, wit::Error>, CallError> {
        self.call_with(
            "render",
            self.limits.render_timeout,
            Some(registry),
            |s| Ok(s.data_mut().table.push(BlobHandle::Memory(Vec::new()))?),
            |p, s, blob| p.call_handle(s, req, blob, self.limits.sizes),
        )
    }

    /// The bytes to append to a kept append-only response for `changes`; none: render it whole.
    pub fn extend(
        &self,
        req: &wit::Request,
        changes: &[wit::Change],
        registry: Arc<dyn RegistryView>,
    ) -> Result<Result<Option<Vec<u8>>, wit::Error>, CallError> {
        self.call("extend", self.limits.render_timeout, Some(registry), |p, s| p.call_extend(s, req, changes))
    }

    /// The new parts of a kept response with a layout for `changes`; none: render it whole.
    pub fn render_parts(
        &self,
        req: &wit::Request,
        changes: &[wit::Change],
        registry: Arc<dyn RegistryView>,
    ) -> Result<Result<Option<wit::Parts>, wit::Error>, CallError> {
        self.call("render-parts", self.limits.render_timeout, Some(registry), |p, s| {
            p.call_render_parts(s, req, changes)
        })
    }

    pub fn render_error(&self, err: &wit::Error) -> Result<wit::Response, CallError> {
        self.call("render-error", self.limits.call_timeout, None, |p, s| p.call_render_error(s, err))
    }

    pub fn from_tag(
        &self,
        tag: &wit::TagInfo,
        tree: TreeHandle,
    ) -> Result<Result<Option<wit::TagFile>, wit::Error>, CallError> {
        self.call_with(
            "from-tag",
            self.limits.parse_timeout,
            None,
            |s| Ok(s.data_mut().table.push(tree)?),
            |p, s, tree| p.call_from_tag(s, tag, tree),
        )
    }
}
