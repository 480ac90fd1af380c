//! The GOPROXY protocol (`go help goproxy`): every request is a GET of
//! `/{escaped module}/@v/list`, `/@v/{version}.info`, `.mod`, `.zip`, or `/{module}/@latest`.
//! Module paths and versions are `!`-escaped in URLs (`!azure` is `Azure`). A 404 or 410 tells the
//! go command to try the next proxy in GOPROXY, so every "not here" answer is one of those.
//!
//! Yanked versions are left out of `list` and `@latest` but still served by exact version, so
//! builds that already pinned one keep working (as Go's own retractions do).
//!
//! `+incompatible` versions are listed the way the go command lists a repository's versions
//! (`appendIncompatibleVersions`): not at all once the latest v0/v1 version has a go.mod (its
//! author wants users on that line), and always served by exact version.

pub use crate::errors::render_error;
use crate::module_path::{self, GoVersion};
use crate::parse::Manifest;
use sluice_plugin_sdk::http::{json, text};
use sluice_plugin_sdk::{Artifact, Error, Outcome, PackageView, Registry, Request};

fn not_found(message: String) -> Error {
    Error::not_found(format!("not found: {message}"))
}

/// The visible package of exactly this module path (module paths are case-sensitive).
fn module(registry: &impl Registry, path: &str) -> Result<PackageView, Error> {
    registry
        .package(path)
        .filter(|p| p.name == path)
        .ok_or_else(|| not_found(format!("module {path} is not in this repository")))
}

/// Artifacts with their parsed versions; files whose version Go would not accept are skipped.
fn versions(view: &PackageView) -> Vec<(GoVersion, &Artifact)> {
    let mut out: Vec<_> = view
        .artifacts
        .iter()
        .filter_map(|a| module_path::parse_served_version(&a.version).ok().map(|v| (v, a)))
        .collect();
    out.sort_by(|a, b| a.0.semver.cmp(&b.0.semver));
    out
}

/// The live versions the go command would list: compatible ones, then `+incompatible` ones
/// unless the latest compatible version has a real go.mod.
pub(crate) fn listed(view: &PackageView) -> Vec<(GoVersion, &Artifact)> {
    let live: Vec<_> = versions(view).into_iter().filter(|(_, a)| a.is_live()).collect();
    let latest_compatible_has_go_mod = live.iter().rev().find(|(v, _)| !v.incompatible).is_some_and(|(_, a)| {
        Manifest::read(&a.metadata.manifest).go_mod != crate::from_tag::synthesized_go_mod(&view.name)
    });
    live.into_iter().filter(|(v, _)| !(v.incompatible && latest_compatible_has_go_mod)).collect()
}

/// `.info`: the version and its commit time (the publish time for versions stored without one).
fn info(artifact: &Artifact) -> sluice_plugin_sdk::Response {
    let time_ms =
        Manifest::read(&artifact.metadata.manifest).time.map_or(artifact.published_ms, |s| s.saturating_mul(1000));
    let time = sluice_plugin_sdk::http::rfc3339_ms(time_ms);
    // Go prints whole seconds without a fraction (time.RFC3339Nano drops trailing zeros).
    let time = time.strip_suffix(".000Z").map_or(time.clone(), |t| format!("{t}Z"));
    json(200, &serde_json::json!({ "Version": artifact.version, "Time": time }))
}

/// Serves one GOPROXY request.
pub fn handle(registry: &impl Registry, req: &Request) -> Result<Outcome, Error> {
    if req.method != "GET" && req.method != "HEAD" {
        return Err(Error::unsupported(
            "Go modules are published by pushing a version tag to the module's git repository; this repository takes no uploads",
        ));
    }
    let path = sluice_plugin_sdk::http::decode(req.path.trim_start_matches('/'));
    if path.starts_with("sumdb/") {
        // The go command then asks its checksum database itself (see `proxy`).
        return Err(not_found("this proxy does not serve checksum databases".into()));
    }
    if registry.upstream_configured() {
        let (module_path, ask) = proxy_ask(&path)?;
        return crate::proxy::handle(registry, &module_path, ask);
    }
    handle_local(registry, &path)
}

/// A proxy repository's request: the module path and what is asked of it.
fn proxy_ask(path: &str) -> Result<(String, crate::proxy::Ask), Error> {
    use crate::proxy::Ask;
    let unescape = |s: &str| module_path::unescape(s).map_err(|e| Error::invalid(e.0));
    if let Some(escaped) = path.strip_suffix("/@latest") {
        return Ok((unescape(escaped)?, Ask::Latest));
    }
    let (escaped, file) = path.split_once("/@v/").ok_or_else(|| not_found(format!("{path} is not a GOPROXY path")))?;
    let module_path = unescape(escaped)?;
    if file == "list" {
        return Ok((module_path, Ask::List));
    }
    let (version, suffix) = file
        .rsplit_once('.')
        .and_then(|(v, s)| ["info", "mod", "zip"].into_iter().find(|k| *k == s).map(|k| (v, k)))
        .ok_or_else(|| not_found(format!("{file} is not one of @v/list, @v/VERSION.info, .mod or .zip")))?;
    let version = unescape(version)?;
    // Only a version Go would ask for goes upstream (no `..`, queries or other paths).
    let parsed = module_path::parse_served_version(&version).map_err(|e| Error::invalid(e.0))?;
    if parsed.canonical != version {
        return Err(not_found(format!("{module_path}@{version}: not a canonical version")));
    }
    Ok((module_path, Ask::File(version, suffix)))
}

/// Serves a GOPROXY request (its path percent-decoded, without the leading `/`) from what this
/// repository stores.
pub(crate) fn handle_local(registry: &impl Registry, path: &str) -> Result<Outcome, Error> {
    let path = path.to_string();
    if let Some(escaped) = path.strip_suffix("/@latest") {
        let module_path = module_path::unescape(escaped).map_err(|e| Error::invalid(e.0))?;
        let view = module(registry, &module_path)?;
        let live = listed(&view);
        let latest = live
            .iter()
            .rev()
            .find(|(v, _)| !v.is_prerelease())
            .or_else(|| live.last())
            .ok_or_else(|| not_found(format!("module {module_path} has no versions")))?;
        return Ok(Outcome::respond(info(latest.1)).keep_for_package(module_path));
    }
    let Some((escaped, file)) = path.split_once("/@v/") else {
        return Err(not_found(format!(
            "{path} is not a GOPROXY path (module/@v/list, module/@v/VERSION.info, .mod, .zip, module/@latest)"
        )));
    };
    let module_path = module_path::unescape(escaped).map_err(|e| Error::invalid(e.0))?;
    if file == "list" {
        let view = module(registry, &module_path)?;
        let mut list: Vec<String> = listed(&view).into_iter().map(|(v, _)| v.canonical).collect();
        list.dedup();
        let body: String = list.iter().map(|v| format!("{v}\n")).collect();
        return Ok(Outcome::respond(text(200, body)).keep_for_package(module_path));
    }
    let (escaped_version, suffix) = file
        .rsplit_once('.')
        .filter(|(_, s)| matches!(*s, "info" | "mod" | "zip"))
        .ok_or_else(|| not_found(format!("{file} is not one of @v/list, @v/VERSION.info, .mod or .zip")))?;
    let version = module_path::unescape(escaped_version).map_err(|e| Error::invalid(e.0))?;
    let view = module(registry, &module_path)?;
    let artifact = view.artifacts.iter().find(|a| a.version == version).ok_or_else(|| {
        not_found(format!("{module_path}@{version}: no such version (this repository serves tagged versions only)"))
    })?;
    // `.info` and `.mod` are rendered from the module's view alone; the zip is a stored file.
    Ok(match suffix {
        "info" => Outcome::respond(info(artifact)).keep_for_package(module_path),
        "mod" => Outcome::respond(text(200, Manifest::read(&artifact.metadata.manifest).go_mod))
            .keep_for_package(module_path),
        _ => Outcome::serve_file(view.name.clone(), artifact.file_name.clone(), "application/zip"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_plugin_sdk::ErrorKind;
    use sluice_plugin_sdk::{MemoryRegistry, Metadata, Reply, Source};

    fn artifact(version: &str, published_ms: u64, yanked: bool) -> Artifact {
        let mut metadata = Metadata::new("github.com/Azure/m", version);
        metadata.manifest = "module github.com/Azure/m\n".into();
        Artifact {
            version: version.into(),
            qualifier: String::new(),
            file_name: crate::zip_file_name(version),
            size: 10,
            sha256: String::new(),
            sha512: String::new(),
            sha1: String::new(),
            published_ms,
            metadata,
            deprecated: None,
            yanked,
        }
    }

    fn registry(artifacts: Vec<Artifact>) -> MemoryRegistry {
        MemoryRegistry {
            tokens: Vec::new(),
            packages: vec![PackageView {
                name: "github.com/Azure/m".into(),
                created_ms: 0,
                modified_ms: 0,
                tags: vec![],
                artifacts,
            }],
        }
    }

    fn get(registry: &MemoryRegistry, path: &str) -> Result<Outcome, Error> {
        let req = Request {
            method: "GET".into(),
            path: path.into(),
            query: String::new(),
            headers: vec![],
            base_url: "http://localhost/go".into(),
            principal: None,
        };
        handle(registry, &req)
    }

    fn body(outcome: Outcome) -> (u16, String) {
        match outcome.reply {
            Reply::Respond(r) => (r.status, String::from_utf8(r.body).unwrap()),
            other => panic!("expected a response, got {other:?}"),
        }
    }

    #[test]
    fn list_sorts_by_semver_and_hides_yanked() {
        let reg = registry(vec![
            artifact("v1.10.0", 3, false),
            artifact("v1.2.0", 1, false),
            artifact("v1.3.0-rc.1", 2, false),
            artifact("v1.9.0", 4, true),
        ]);
        assert_eq!(
            body(get(&reg, "/github.com/!azure/m/@v/list").unwrap()),
            (200, "v1.2.0\nv1.3.0-rc.1\nv1.10.0\n".into())
        );
        assert_eq!(get(&reg, "/github.com/azure/m/@v/list").unwrap_err().kind, ErrorKind::NotFound);
        assert_eq!(get(&reg, "/github.com/Azure/m/@v/list").unwrap_err().kind, ErrorKind::Invalid);
    }

    #[test]
    fn info_mod_and_zip() {
        let reg = registry(vec![artifact("v1.0.0", 1_700_000_000_123, false), artifact("v1.1.0", 1, true)]);
        let (status, info) = body(get(&reg, "/github.com/!azure/m/@v/v1.0.0.info").unwrap());
        assert_eq!(status, 200);
        let info: serde_json::Value = serde_json::from_str(&info).unwrap();
        assert_eq!(info, serde_json::json!({"Version": "v1.0.0", "Time": "2023-11-14T22:13:20.123Z"}));
        assert_eq!(body(get(&reg, "/github.com/!azure/m/@v/v1.0.0.mod").unwrap()).1, "module github.com/Azure/m\n");
        match get(&reg, "/github.com/%21azure/m/@v/v1.0.0.zip").unwrap().reply {
            Reply::ServeFile(f) => {
                assert_eq!(
                    (f.package.as_str(), f.file_name.as_str(), f.content_type.as_str()),
                    ("github.com/Azure/m", "v1.0.0.zip", "application/zip")
                )
            }
            _ => panic!("zip must be a stored file"),
        }
        // A yanked version is still there for builds that pinned it.
        assert_eq!(body(get(&reg, "/github.com/!azure/m/@v/v1.1.0.info").unwrap()).0, 200);
        let missing = get(&reg, "/github.com/!azure/m/@v/v9.9.9.info").unwrap_err();
        assert_eq!(missing.kind, ErrorKind::NotFound);
        assert!(missing.message.contains("v9.9.9"));
        assert_eq!(get(&reg, "/github.com/!azure/m/@v/v1.0.0.tar").unwrap_err().kind, ErrorKind::NotFound);
        assert_eq!(get(&reg, "/github.com/!azure/m/other").unwrap_err().kind, ErrorKind::NotFound);
        assert_eq!(get(&reg, "/sumdb/sum.golang.org/supported").unwrap_err().kind, ErrorKind::NotFound);
    }

    #[test]
    fn latest_prefers_releases() {
        let reg = registry(vec![
            artifact("v1.0.0", 1, false),
            artifact("v1.1.0-beta.1", 2, false),
            artifact("v1.2.0", 3, true),
        ]);
        let (_, info) = body(get(&reg, "/github.com/!azure/m/@latest").unwrap());
        assert!(info.contains("\"v1.0.0\""), "{info}");
        let reg = registry(vec![artifact("v0.1.0-alpha", 1, false), artifact("v0.1.0-beta", 2, false)]);
        assert!(body(get(&reg, "/github.com/!azure/m/@latest").unwrap()).1.contains("v0.1.0-beta"));
        let reg = registry(vec![artifact("v1.0.0", 1, true)]);
        assert_eq!(get(&reg, "/github.com/!azure/m/@latest").unwrap_err().kind, ErrorKind::NotFound);
    }

    #[test]
    fn uploads_are_unsupported_and_errors_are_text() {
        let reg = registry(vec![]);
        let req = Request {
            method: "PUT".into(),
            path: "/example.com/m/@v/v1.0.0.zip".into(),
            query: String::new(),
            headers: vec![],
            base_url: String::new(),
            principal: None,
        };
        assert_eq!(handle(&reg, &req).unwrap_err().kind, ErrorKind::Unsupported);
        let r = render_error(&Error::not_found("not found: x"));
        assert_eq!((r.status, String::from_utf8(r.body).unwrap()), (404, "not found: x\n".into()));
        assert_eq!(render_error(&Error::new(ErrorKind::Internal, "db path /secret")).body, b"internal server error\n");
    }

    fn stored(version: &str, go_mod: &str, time: Option<u64>) -> Artifact {
        let mut a = artifact(version, 5, false);
        a.metadata.manifest = serde_json::to_string(&Manifest { go_mod: go_mod.into(), time }).unwrap();
        a
    }

    #[test]
    fn info_time_is_the_commit_time() {
        let legacy = "module github.com/Azure/m\n";
        let reg = registry(vec![stored("v1.0.0", legacy, Some(1_600_000_001))]);
        let (_, info) = body(get(&reg, "/github.com/!azure/m/@v/v1.0.0.info").unwrap());
        assert_eq!(serde_json::from_str::<serde_json::Value>(&info).unwrap()["Time"], "2020-09-13T12:26:41Z");
        assert_eq!(body(get(&reg, "/github.com/!azure/m/@v/v1.0.0.mod").unwrap()).1, legacy);
    }

    #[test]
    fn incompatible_versions_are_listed_as_go_lists_them() {
        let legacy = "module github.com/Azure/m\n";
        let real = "module github.com/Azure/m\n\ngo 1.19\n";
        // Before modules throughout: the v2+ tags are listed as +incompatible.
        let reg = registry(vec![stored("v1.0.0", legacy, None), stored("v2.0.0+incompatible", legacy, None)]);
        assert_eq!(body(get(&reg, "/github.com/!azure/m/@v/list").unwrap()).1, "v1.0.0\nv2.0.0+incompatible\n");
        assert!(body(get(&reg, "/github.com/!azure/m/@latest").unwrap()).1.contains("v2.0.0+incompatible"));
        // Once the latest v1 has a go.mod, the +incompatible line is not offered, but still served.
        let reg = registry(vec![stored("v2.0.0+incompatible", legacy, None), stored("v1.1.0", real, None)]);
        assert_eq!(body(get(&reg, "/github.com/!azure/m/@v/list").unwrap()).1, "v1.1.0\n");
        assert_eq!(body(get(&reg, "/github.com/!azure/m/@v/v2.0.0+incompatible.info").unwrap()).0, 200);
    }

    #[test]
    fn reads_declare_what_they_depend_on() {
        let reg = registry(vec![artifact("v1.0.0", 1, false)]);
        let module = [Source::Package("github.com/Azure/m".into())];
        for path in ["@v/list", "@v/v1.0.0.info", "@v/v1.0.0.mod", "@latest"] {
            let outcome = get(&reg, &format!("/github.com/!azure/m/{path}")).unwrap();
            assert_eq!(outcome.kept_for(), Some(&module[..]), "{path}");
            assert!(outcome.keep.unwrap().vary.is_empty());
        }
        assert!(get(&reg, "/github.com/!azure/m/@v/v1.0.0.zip").unwrap().keep.is_none());
    }

    /// A module with 10,000 versions lists each once, in semver order.
    #[test]
    fn ten_thousand_versions() {
        let artifacts = (0..10_000).rev().map(|i| artifact(&format!("v1.{}.{}", i / 100, i % 100), i, false)).collect();
        let reg = registry(artifacts);
        let (_, list) = body(get(&reg, "/github.com/!azure/m/@v/list").unwrap());
        let lines: Vec<&str> = list.lines().collect();
        assert_eq!(lines.len(), 10_000);
        assert_eq!((lines[0], lines[1], lines[9_999]), ("v1.0.0", "v1.0.1", "v1.99.99"));
        assert!(body(get(&reg, "/github.com/!azure/m/@latest").unwrap()).1.contains("\"v1.99.99\""));
    }
}
