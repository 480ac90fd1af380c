//! The kit for plugin authors: `sluice plugin new` writes a plugin crate that builds for
//! `wasm32-wasip2` and loads as it is, and `sluice plugin check` loads a component and exercises
//! the contract the way the host will, listing what is wrong instead of failing at the first
//! problem.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::host::{BlobHandle, RegistryView};
use super::{wit, CallError, Limits, Plugin, PluginRuntime};

/// The placeholders an extraction step may use.
const PLACEHOLDERS: &[&str] = &["{archive}", "{dest}", "{scratch}"];

/// What `plugin new` writes: a crate named `sluice-plugin-NAME` in `dir/NAME`, depending on
/// the SDK at `sdk` (a path). Refuses to overwrite an existing folder.
pub fn new_plugin(dir: &Path, name: &str, sdk: &Path) -> anyhow::Result<PathBuf> {
    let valid = !name.is_empty()
        && name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        anyhow::bail!("the format name `{name}` must be lower-case letters, digits and `-`, starting with a letter");
    }
    if !sdk.join("Cargo.toml").is_file() {
        anyhow::bail!("no SDK crate at {} (pass --sdk with the path of Sluice's `sdk/` folder)", sdk.display());
    }
    let sdk = sdk.canonicalize()?;
    let root = dir.join(name);
    if root.exists() {
        anyhow::bail!("{} already exists", root.display());
    }
    std::fs::create_dir_all(root.join("src"))?;
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{crate}}", &name.replace('-', "_"))
            .replace("{{sdk}}", &sdk.display().to_string())
    };
    std::fs::write(root.join("Cargo.toml"), fill(CARGO_TOML))?;
    std::fs::write(root.join("src/lib.rs"), fill(LIB_RS))?;
    std::fs::write(root.join("README.md"), fill(README))?;
    std::fs::write(root.join(".gitignore"), "/target\n")?;
    Ok(root)
}

const CARGO_TOML: &str = r#"[package]
name = "sluice-plugin-{{name}}"
version = "0.1.0"
edition = "2021"
description = "The {{name}} format for Sluice"

[lib]
# `cdylib` is the wasm component; `rlib` lets `cargo test` run the format logic natively.
crate-type = ["cdylib", "rlib"]

[dependencies]
sluice-plugin-sdk = { path = "{{sdk}}" }
serde_json = "1"

[profile.release]
opt-level = "s"
lto = true

# A plugin crate of its own, not a member of an enclosing workspace.
[workspace]
"#;

const README: &str = r#"# The `{{name}}` format for Sluice

Written by `sluice plugin new {{name}}`. Build, check and load:

```sh
rustup target add wasm32-wasip2
cargo test                                   # the format logic, natively
cargo build --release --target wasm32-wasip2
sluice plugin check target/wasm32-wasip2/release/sluice_plugin_{{crate}}.wasm
```

then in the server's config:

```toml
[[plugin]]
path = "target/wasm32-wasip2/release/sluice_plugin_{{crate}}.wasm"

[[repository]]
name = "{{name}}"
format = "{{name}}"
```

As written, the format stores any file: `PUT /{{name}}/PACKAGE/VERSION` with a `publish` token
uploads the body, `GET /{{name}}/PACKAGE/VERSION` downloads it, `GET /{{name}}/PACKAGE` lists the
versions as JSON. Change `parse` to read your format's files, and `handle` to speak its clients'
protocol.
"#;

const LIB_RS: &str = r#"//! The `{{name}}` format for Sluice.
//!
//! Package files are uploaded with `PUT /PACKAGE/VERSION` (the body is the file), downloaded with
//! `GET /PACKAGE/VERSION`, and `GET /PACKAGE` lists the versions as JSON. The format logic is
//! plain Rust that `cargo test` runs natively; `export!` (wasm only) makes it the component.

use serde_json::json;
use sluice_plugin_sdk::io::ReadAt;
use sluice_plugin_sdk::{
    http, Effect, Error, Extraction, ExtractionStep, FormatInfo, Metadata, Outcome, PublishMode, Registry, Request,
    Response, Trigger, Upload, UploadSource,
};

pub fn info() -> FormatInfo {
    FormatInfo {
        name: "{{name}}".into(),
        display_name: "{{name}}".into(),
        case_insensitive_names: false,
        publish: PublishMode::Upload,
        credential_headers: Vec::new(),
        install_hint: "curl -fO {url}/{name}/{version}".into(),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

fn valid_version(version: &str) -> bool {
    version.starts_with(|c: char| c.is_ascii_digit()) && valid_name(version)
}

/// The host stores each file as `PACKAGE@VERSION.bin`; `parse` reads the identity back from it.
/// A real format reads it from the file's own manifest instead.
pub fn parse(file_name: &str, file: impl ReadAt) -> Result<Metadata, Error> {
    let stem = file_name
        .strip_suffix(".bin")
        .ok_or_else(|| Error::invalid(format!("`{file_name}` is not a file of this format (PACKAGE@VERSION.bin)")))?;
    let (name, version) = stem
        .rsplit_once('@')
        .filter(|(n, v)| valid_name(n) && valid_version(v))
        .ok_or_else(|| Error::invalid(format!("`{file_name}` does not name a package and a version")))?;
    if file.size() == 0 {
        return Err(Error::invalid("the file is empty"));
    }
    Ok(Metadata::new(name, version))
}

/// Runners get the file as it is, in their `pkg/` folder.
pub fn extraction() -> Extraction {
    Extraction {
        media_type: "application/octet-stream".into(),
        steps: vec![ExtractionStep { tool: "cp".into(), argv: vec!["{archive}".into(), "{dest}/".into()] }],
        image: None,
    }
}

pub fn trigger(meta: &Metadata) -> Trigger {
    Trigger {
        event: "package_push".into(),
        variables: vec![("PACKAGE".into(), meta.name.clone()), ("VERSION".into(), meta.version.clone())],
        jobs: Vec::new(),
    }
}

pub fn handle(registry: &impl Registry, req: &Request, body: impl ReadAt) -> Result<Outcome, Error> {
    let segments = req.segments();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let read = matches!(req.method.as_str(), "GET" | "HEAD");
    match (req.method.as_str(), segments.as_slice()) {
        ("PUT", [package, version]) => {
            if !valid_name(package) || !valid_version(version) {
                return Err(Error::invalid("use PUT /PACKAGE/VERSION"));
            }
            if body.size() == 0 {
                return Err(Error::invalid("the request has no file"));
            }
            let upload = Upload {
                file_name: format!("{package}@{version}.bin"),
                source: UploadSource::Body,
                package: Some(package.to_string()),
                tags: Vec::new(),
            };
            Ok(Outcome::with_effects(vec![Effect::Publish(upload)], http::json(201, &json!({ "ok": true }))))
        }
        (_, [package]) if read => {
            let found = registry.package(package).ok_or_else(|| Error::not_found(format!("no package `{package}`")))?;
            let versions: Vec<_> = found.artifacts.iter().filter(|a| !a.yanked).map(|a| a.version.clone()).collect();
            Ok(Outcome::respond(http::json(200, &json!({ "name": found.name, "versions": versions }))))
        }
        (_, [package, version]) if read => {
            let found = registry.package(package).ok_or_else(|| Error::not_found(format!("no package `{package}`")))?;
            let file = found
                .artifacts
                .iter()
                .find(|a| a.version == *version)
                .ok_or_else(|| Error::not_found(format!("`{package}` has no version `{version}`")))?;
            Ok(Outcome::serve_file(found.name.clone(), file.file_name.clone(), "application/octet-stream"))
        }
        _ => Err(Error::not_found(format!("no such resource: {} {}", req.method, req.path))),
    }
}

/// Errors as JSON with the contract's status for their kind.
pub fn render_error(err: &Error) -> Response {
    http::json(err.kind.status(), &json!({ "error": err.message }))
}

/// The plugin: the SDK's `Plugin` trait, whose other methods have defaults (`from_tag` refuses,
/// `extend` asks for whole renders), exported by one macro for wasm32 builds.
pub struct Plugin;

impl sluice_plugin_sdk::Plugin for Plugin {
    fn info() -> FormatInfo {
        info()
    }
    // `limits` are the operator's (max upload, max unpacked): check sizes against them.
    fn parse(file_name: &str, file: impl ReadAt, _limits: &sluice_plugin_sdk::Limits) -> Result<Metadata, Error> {
        parse(file_name, file)
    }
    fn extraction_for(_meta: &Metadata) -> Extraction {
        extraction()
    }
    fn trigger_for(meta: &Metadata) -> Trigger {
        trigger(meta)
    }
    fn handle(
        registry: &impl Registry,
        req: &Request,
        body: impl ReadAt,
        _limits: &sluice_plugin_sdk::Limits,
    ) -> Result<Outcome, Error> {
        handle(registry, req, body)
    }
    fn render_error(err: &Error) -> Response {
        render_error(err)
    }
}

sluice_plugin_sdk::export!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_plugin_sdk::{ErrorKind, MemoryRegistry};

    fn request(method: &str, path: &str) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            query: String::new(),
            headers: Vec::new(),
            base_url: "http://reg.test/{{name}}".into(),
            principal: Some("ci".into()),
        }
    }

    #[test]
    fn publishes_and_parses_files() {
        let outcome = handle(&MemoryRegistry::default(), &request("PUT", "/tool/1.0.0"), b"bytes".to_vec()).unwrap();
        let [Effect::Publish(upload)] = &outcome.effects[..] else { panic!("one publish") };
        assert_eq!(upload.file_name, "tool@1.0.0.bin");
        let meta = parse(&upload.file_name, b"bytes".to_vec()).unwrap();
        assert_eq!((meta.name.as_str(), meta.version.as_str()), ("tool", "1.0.0"));
        assert_eq!(parse("garbage", b"x".to_vec()).unwrap_err().kind, ErrorKind::Invalid);
        assert_eq!(render_error(&Error::invalid("no")).status, 400);
    }
}
"#;

/// One finding of `plugin check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    Ok(String),
    Problem(String),
}

/// What `plugin check` found.
#[derive(Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    fn ok(&mut self, what: impl Into<String>) {
        self.findings.push(Finding::Ok(what.into()));
    }
    fn problem(&mut self, what: impl Into<String>) {
        self.findings.push(Finding::Problem(what.into()));
    }
    pub fn problems(&self) -> Vec<&str> {
        self.findings.iter().filter_map(|f| if let Finding::Problem(p) = f { Some(p.as_str()) } else { None }).collect()
    }
}

/// An error kind as the contract spells it.
fn kind_name(kind: wit::ErrorKind) -> &'static str {
    use wit::ErrorKind::*;
    match kind {
        Invalid => "invalid",
        NotFound => "not-found",
        Gone => "gone",
        Unauthorized => "unauthorized",
        Forbidden => "forbidden",
        Conflict => "conflict",
        TooLarge => "too-large",
        Unsupported => "unsupported",
        Internal => "internal",
        Unavailable => "unavailable",
    }
}

/// A repository with nothing in it, for exercising `handle`.
struct EmptyView;

impl RegistryView for EmptyView {
    fn package(&self, _name: &str) -> Option<wit::PackageView> {
        None
    }
    fn search(&self, _query: &str, _offset: u32, _limit: u32) -> wit::SearchPage {
        wit::SearchPage { total: 0, packages: Vec::new() }
    }
    fn all_packages(&self) -> Vec<wit::PackageView> {
        Vec::new()
    }
    fn summary(&self, _name: &str) -> Option<wit::PackageSummary> {
        None
    }
    fn tokens(&self) -> Vec<wit::TokenInfo> {
        Vec::new()
    }
}

/// Bytes that are no package of any format: not an archive, not text, not JSON.
fn garbage() -> Vec<u8> {
    (0u32..4096).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

/// Times a call and flags it when it takes more than a quarter of its limit: the host gives
/// every call a deadline, and a plugin near it fails under load.
fn timed<R>(report: &mut Report, what: &str, limit: Duration, f: impl FnOnce() -> R) -> R {
    let started = Instant::now();
    let r = f();
    let took = started.elapsed();
    if took > limit / 4 {
        report.problem(format!(
            "{what} took {} ms, over a quarter of its {} ms limit",
            took.as_millis(),
            limit.as_millis()
        ));
    }
    r
}

fn failed(report: &mut Report, what: &str, e: CallError) {
    report.problem(format!("{what} did not return: {e}"));
}

/// Loads a component and exercises the contract the way the host will.
pub fn check(runtime: &PluginRuntime, limits: Limits, path: &Path) -> Report {
    let mut report = Report::default();
    let plugin = match runtime.load_file(path) {
        Ok(p) => p,
        Err(e) => {
            report.problem(format!("does not load: {e:#}"));
            return report;
        }
    };
    report.ok(format!("loads as a plugin of contract sluice:plugin@{} (sha256 {})", plugin.contract, plugin.sha256));
    check_info(&mut report, &plugin.info);
    check_parse(&mut report, &plugin, limits);
    check_render_error(&mut report, &plugin, limits);
    check_extraction(&mut report, &plugin, limits);
    let sample = wit::Metadata::named("example", "1.0.0");
    match timed(&mut report, "trigger-for", limits.call_timeout, || plugin.trigger_for(&sample)) {
        Ok(t) if t.event.trim().is_empty() => report.problem("trigger-for names no event"),
        Ok(t) => report.ok(format!(
            "trigger-for: event `{}`, {} variables, {} jobs",
            t.event,
            t.variables.len(),
            t.jobs.len()
        )),
        Err(e) => failed(&mut report, "trigger-for", e),
    }
    check_handle(&mut report, &plugin, limits);
    if report.problems().is_empty() {
        report.ok(call_costs(&plugin));
    }
    report
}

/// What a call costs the host, instance included: the median of a few rounds of a trivial call
/// and of a protocol request (printed for authors comparing toolchains, never judged).
fn call_costs(plugin: &Plugin) -> String {
    const ROUNDS: usize = 25;
    let median = |f: &dyn Fn()| {
        let mut samples: Vec<Duration> = (0..ROUNDS)
            .map(|_| {
                let started = Instant::now();
                f();
                started.elapsed()
            })
            .collect();
        samples.sort();
        samples[ROUNDS / 2]
    };
    let err = wit::Error { kind: wit::ErrorKind::NotFound, message: "timing".into() };
    let trivial = median(&|| drop(plugin.render_error(&err)));
    let view: Arc<dyn RegistryView> = Arc::new(EmptyView);
    let req = wit::Request {
        method: "GET".into(),
        path: "/".into(),
        query: String::new(),
        headers: Vec::new(),
        base_url: "http://127.0.0.1:1/check".into(),
        principal: None,
    };
    let request = median(&|| drop(plugin.handle(&req, BlobHandle::Memory(Vec::new()), view.clone())));
    format!(
        "cost per call, fresh instance included (median of {ROUNDS}): render-error {} µs, handle(GET /) {} µs",
        trivial.as_micros(),
        request.as_micros()
    )
}

fn check_info(report: &mut Report, info: &wit::FormatInfo) {
    let name_ok = !info.name.is_empty()
        && info.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if name_ok {
        report.ok(format!("info: format `{}` ({})", info.name, info.display_name));
    } else {
        report.problem(format!("info: the format name `{}` must be non-empty lower-case letters, digits, `-` or `_` (it names the default repository)", info.name));
    }
    if info.display_name.trim().is_empty() {
        report.problem("info: display-name is empty");
    }
    if info.install_hint.trim().is_empty() {
        report.problem("info: install-hint is empty (the package page shows it)");
    }
    for h in &info.credential_headers {
        if h.is_empty() || h.chars().any(|c| c.is_ascii_uppercase() || c.is_whitespace() || c == ':') {
            report.problem(format!("info: credential header `{h}` must be a lower-case header name"));
        }
    }
}

fn check_parse(report: &mut Report, plugin: &Plugin, limits: Limits) {
    for (file_name, label, bytes) in [("garbage", "a garbage file", garbage()), ("empty", "an empty file", Vec::new())]
    {
        let what = format!("parse of {label}");
        match timed(report, &what, limits.parse_timeout, || plugin.parse(file_name, BlobHandle::Memory(bytes))) {
            Ok(Err(e)) if e.kind == wit::ErrorKind::Invalid => {
                report.ok(format!("{what} answers `invalid`: {}", e.message))
            }
            Ok(Err(e)) => {
                report.problem(format!("{what} answers `{}`, not `invalid`: {}", kind_name(e.kind), e.message))
            }
            Ok(Ok(meta)) => report.problem(format!("{what} is accepted as {} {}", meta.name, meta.version)),
            Err(e) => failed(report, &what, e),
        }
    }
}

fn check_render_error(report: &mut Report, plugin: &Plugin, limits: Limits) {
    use wit::ErrorKind::*;
    let mut rendered = 0;
    for kind in [Invalid, NotFound, Gone, Unauthorized, Forbidden, Conflict, TooLarge, Unsupported, Internal] {
        let err = wit::Error { kind, message: "checked by sluice plugin check".into() };
        match timed(report, "render-error", limits.call_timeout, || plugin.render_error(&err)) {
            Ok(r) => {
                let client_error = kind != Internal;
                let fits = if client_error { (400..500).contains(&r.status) } else { (500..600).contains(&r.status) };
                if fits {
                    rendered += 1;
                } else {
                    report.problem(format!(
                        "render-error of `{}` answers status {}, not {}",
                        kind_name(kind),
                        r.status,
                        if client_error { "4xx" } else { "5xx" }
                    ));
                }
            }
            Err(e) => failed(report, &format!("render-error of `{}`", kind_name(kind)), e),
        }
    }
    if rendered == 9 {
        report.ok("render-error renders every error kind with a fitting status");
    }
}

fn check_extraction(report: &mut Report, plugin: &Plugin, limits: Limits) {
    let sample = wit::Metadata::named("example", "1.0.0");
    let ex = match timed(report, "extraction-for", limits.call_timeout, || plugin.extraction_for(&sample)) {
        Ok(ex) => ex,
        Err(e) => return failed(report, "extraction-for", e),
    };
    let before = report.problems().len();
    if ex.steps.is_empty() {
        report.problem("extraction-for names no steps: runners could not unpack a file");
    }
    let mut uses_archive = false;
    for (i, step) in ex.steps.iter().enumerate() {
        if step.tool.trim().is_empty() || step.tool.contains(['/', ' ']) {
            report.problem(format!("extraction step {} must name a tool (`tar`, `unzip`), not `{}`", i + 1, step.tool));
        }
        for arg in &step.argv {
            uses_archive |= arg.contains("{archive}");
            let mut rest = arg.as_str();
            while let Some(start) = rest.find('{') {
                let end = rest[start..].find('}').map(|e| start + e + 1).unwrap_or(rest.len());
                let placeholder = &rest[start..end];
                if !PLACEHOLDERS.contains(&placeholder) {
                    report.problem(format!(
                        "extraction step {} uses `{placeholder}`; only {} are filled in",
                        i + 1,
                        PLACEHOLDERS.join(", ")
                    ));
                }
                rest = &rest[end..];
            }
        }
    }
    if !ex.steps.is_empty() && !uses_archive {
        report.problem("no extraction step reads `{archive}`, the downloaded file");
    }
    if report.problems().len() == before {
        let tools: Vec<_> = ex.steps.iter().map(|s| s.tool.as_str()).collect();
        report.ok(format!("extraction: {} step(s) with {}", ex.steps.len(), tools.join(", ")));
    }
}

fn check_handle(report: &mut Report, plugin: &Plugin, limits: Limits) {
    let view: Arc<dyn RegistryView> = Arc::new(EmptyView);
    for (method, path) in [("GET", "/"), ("GET", "/no/such/thing"), ("PUT", "/%00/..")] {
        let req = wit::Request {
            method: method.into(),
            path: path.into(),
            query: String::new(),
            headers: Vec::new(),
            base_url: "http://127.0.0.1:1/check".into(),
            principal: None,
        };
        let what = format!("handle({method} {path}) on an empty repository");
        match timed(report, &what, limits.call_timeout, || {
            plugin.handle(&req, BlobHandle::Memory(Vec::new()), view.clone())
        }) {
            Ok(Ok(_)) => report.ok(format!("{what} answers")),
            Ok(Err(e)) => report.ok(format!("{what} answers `{}`", kind_name(e.kind))),
            Err(e) => failed(report, &what, e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_refuses_bad_names_and_existing_folders() {
        let dir = tempfile::tempdir().unwrap();
        let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
        assert!(new_plugin(dir.path(), "Bad Name", &sdk).is_err());
        assert!(new_plugin(dir.path(), "ok", dir.path()).unwrap_err().to_string().contains("no SDK crate"));
        let root = new_plugin(dir.path(), "my-format", &sdk).unwrap();
        let lib = std::fs::read_to_string(root.join("src/lib.rs")).unwrap();
        assert!(lib.contains("name: \"my-format\".into()") && !lib.contains("{{"), "placeholders filled");
        assert!(std::fs::read_to_string(root.join("README.md")).unwrap().contains("sluice_plugin_my_format.wasm"));
        assert!(new_plugin(dir.path(), "my-format", &sdk).unwrap_err().to_string().contains("already exists"));
    }
}
