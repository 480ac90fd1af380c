//! The GOPROXY protocol in a proxy repository (`upstream = "https://proxy.golang.org"`, contract
//! 0.4.0): the plugin asks the upstream through the host (which adds credentials, guards, times
//! out and keeps the answers for `metadata_ttl`), and serves:
//!
//! - `@v/list`: the upstream's versions, merged with versions this repository holds that did not
//!   come from the upstream; a version fetched before is listed while the upstream lists it, or
//!   while the upstream cannot be reached;
//! - `.info`, `.mod`, `@latest`: the upstream's answer; when the upstream has nothing to say (it
//!   is down with nothing kept, or deleted the version) the stored copy of a version fetched
//!   before answers, so builds that pinned it keep working;
//! - `.zip`: the stored copy, else a `fetch-file` of the upstream's zip, stored once.
//!
//! With `min_age` (the host's `upstream.published-before` cut-off) a version is offered once the
//! `Time` of the upstream's `.info` is before the cut-off: `@v/list` asks each listed version's
//! `.info` (kept by the host for `metadata_ttl` like every answer) and leaves out the younger
//! ones and those without a readable time; `@latest` falls back to the newest version still
//! listed. An exact `.info`, `.mod` or `.zip` of a withheld version is refused too (a 404 that
//! says why), not only left out of the list: a go.mod that requires it (a dependency that just
//! bumped its requirement to a freshly compromised release) is exactly what the cool-off is for,
//! and the go command resolves such a requirement by exact version, never through the list. A
//! version stored here (fetched before) stays served. `Time` is what the GOPROXY protocol gives:
//! proxy.golang.org and Sluice give the commit time of the tagged commit, which is set by whoever
//! made the commit, so the cool-off is as good as that time.
//!
//! In a gated proxy (`gate = "pipeline"`) a version fetched whose pipeline has not passed is in
//! quarantine (the SDK's `quarantined_versions`): it is left out of `@v/list`, and `@latest`
//! falls back to the newest version offered, as with `min_age`. Its `.info`, `.mod` and `.zip`
//! by exact version are answered as before: the zip is a `fetch-file` of the held file, which the
//! host answers with a 403 naming the pipeline and its verdict, so a go.mod that requires it
//! learns why it is refused rather than that it does not exist.
//!
//! In a group (a local member first, this proxy member next), a module with versions that did not
//! come from the upstream is the local member's and is served from there alone (see `handle`).
//!
//! The GOPROXY protocol gives no digest of a zip: the go command verifies it against go.sum and
//! the checksum database (`GOSUMDB`). So a fetched zip is stored as the upstream sent it (its
//! sha256 recorded), after `parse` has checked that it holds exactly the module and version asked
//! for. `/sumdb/` is not proxied: the go command then asks its checksum database directly.

use crate::module_path::{self, GoVersion};
use crate::protocol;
use sluice_plugin_sdk::http::{bytes, text};
use sluice_plugin_sdk::{
    quarantined_versions, Error, ErrorKind, Outcome, PackageView, Registry, UpstreamFile, UpstreamResponse,
};

/// One GOPROXY request, already split into the unescaped module path and what is asked of it.
pub enum Ask {
    List,
    Latest,
    /// A version's `info`, `mod` or `zip`.
    File(String, &'static str),
}

/// The upstream's path of `ask` for `module`: the same GOPROXY path, escaped as Go escapes it.
pub fn upstream_path(module: &str, ask: &Ask) -> String {
    let m = module_path::escape(module);
    match ask {
        Ask::List => format!("/{m}/@v/list"),
        Ask::Latest => format!("/{m}/@latest"),
        Ask::File(version, suffix) => format!("/{m}/@v/{}.{suffix}", module_path::escape(version)),
    }
}

/// What the upstream said, reduced to what a proxy decides on.
enum Upstream {
    Found(UpstreamResponse),
    /// 404 or 410: the upstream does not have it (any more).
    Missing,
    /// It failed, answered something unusable, or could not be reached with nothing kept.
    Failed(Error),
}

/// Asks the upstream `path` about `module`, named so that a group keeps a private module from
/// the upstream by its path as written, whatever Go's escaping makes of it in the URL.
fn ask(registry: &impl Registry, module: &str, path: &str) -> Upstream {
    match registry.upstream_get_for(module, path, None) {
        Ok(a) if a.status == 200 => Upstream::Found(a),
        Ok(a) if a.status == 404 || a.status == 410 => Upstream::Missing,
        Ok(a) => Upstream::Failed(Error::unavailable(format!("the upstream answered {} for {path}", a.status))),
        // Offline with nothing kept is a miss, as the contract says.
        Err(e) if e.kind == ErrorKind::NotFound => Upstream::Missing,
        Err(e) => Upstream::Failed(e),
    }
}

/// Serves one GOPROXY request of a proxy repository.
pub fn handle(registry: &impl Registry, module: &str, ask_for: Ask) -> Result<Outcome, Error> {
    module_path::check_module_path(module).map_err(|e| Error::invalid(format!("module path {module:?}: {e}")))?;
    let view = registry.package(module).filter(|p| p.name == module);
    let cached = registry.cached_versions(module);
    let path = upstream_path(module, &ask_for);
    // A module with versions that did not come from the upstream is this repository's own: in a
    // group, a local member's (a proxy repository has no git and takes no uploads). It is served
    // as its repository serves it and never merged with the upstream's, which is the group's
    // "local first". The host keeps such names from the upstream too (each request names its
    // module, see `ask`), but its 404 would leave a proxy's merge with nothing to list: serving
    // the module as a local one is what lists its own versions.
    if view.as_ref().is_some_and(|v| v.artifacts.iter().any(|a| !cached.contains(&a.version))) {
        return local(registry, &path);
    }
    let cutoff = registry.upstream_published_before();
    match ask_for {
        Ask::List => {
            let versions = offered(registry, module, view.as_ref(), &path, cutoff)?;
            let body: String = versions.iter().map(|v| format!("{}\n", v.canonical)).collect();
            Ok(Outcome::respond(text(200, body)))
        }
        Ask::Latest => match ask(registry, module, &path) {
            // With `min_age`, the upstream's latest may be too young, and in a gated proxy it
            // may be in quarantine: then the newest version still offered, as the go command
            // would pick it from the list.
            Upstream::Found(a)
                if cutoff.is_some_and(|c| info_time(&a.body).is_none_or(|t| t > c))
                    || info_version(&a.body).is_some_and(|v| quarantined_versions(registry, module).contains(&v)) =>
            {
                let list = offered(registry, module, view.as_ref(), &upstream_path(module, &Ask::List), cutoff)?;
                let newest =
                    list.iter().rev().find(|v| !v.is_prerelease()).or_else(|| list.last()).ok_or_else(|| {
                        Error::not_found(format!(
                            "not found: {module}: no upstream version is offered yet (younger than this repository's \
                         min_age, or in quarantine)"
                        ))
                    })?;
                handle(registry, module, Ask::File(newest.canonical.clone(), "info"))
            }
            Upstream::Found(a) => info_answer(a),
            Upstream::Missing => local(registry, &format!("/{}/@latest", module_path::escape(module))),
            Upstream::Failed(e) => local(registry, &format!("/{}/@latest", module_path::escape(module))).map_err(|_| e),
        },
        Ask::File(version, suffix) => {
            let stored = view.as_ref().and_then(|v| v.artifacts.iter().find(|a| a.version == version));
            if suffix == "zip" {
                if let Some(a) = stored {
                    return Ok(Outcome::serve_file(module, a.file_name.clone(), "application/zip"));
                }
                if cutoff.is_some_and(|c| published_ms(registry, module, &version).is_none_or(|t| t > c)) {
                    return Err(too_young(module, &version));
                }
                return Ok(Outcome::fetch_file(UpstreamFile {
                    url: path,
                    package: module.to_string(),
                    version: version.clone(),
                    file_name: crate::zip_file_name(&version),
                    content_type: "application/zip".into(),
                    // The protocol gives none; see the module comment.
                    sha512: None,
                    sha256: None,
                    sha1: None,
                }));
            }
            match ask(registry, module, &path) {
                Upstream::Found(a) => {
                    // A version stored here was offered when it was fetched; an upstream one
                    // only once it is older than `min_age`, by exact version too (see the
                    // module comment).
                    if let (Some(c), None) = (cutoff, stored) {
                        let at = if suffix == "info" {
                            info_time(&a.body)
                        } else {
                            published_ms(registry, module, &version)
                        };
                        if at.is_none_or(|t| t > c) {
                            return Err(too_young(module, &version));
                        }
                    }
                    if suffix == "info" {
                        return info_answer(a);
                    }
                    match String::from_utf8(a.body) {
                        Ok(go_mod) => Ok(Outcome::respond(text(200, go_mod))),
                        Err(_) => Err(Error::unavailable(format!("the upstream's {path} is not text"))),
                    }
                }
                // Deleted upstream or unreachable: a version fetched before stays installable.
                Upstream::Missing if stored.is_some() => local(registry, &path),
                Upstream::Missing => {
                    Err(Error::not_found(format!("not found: {module}@{version}: no such version upstream")))
                }
                Upstream::Failed(e) => {
                    if stored.is_some() {
                        local(registry, &path)
                    } else {
                        Err(e)
                    }
                }
            }
        }
    }
}

/// The refusal of a version younger than `min_age`: a 404, which the go command reports with
/// this text (and after which it tries the next GOPROXY entry, if any).
fn too_young(module: &str, version: &str) -> Error {
    Error::not_found(format!(
        "not found: {module}@{version}: published upstream less than this repository's min_age ago; not offered yet"
    ))
}

/// The time the upstream's `.info` of `version` gives (milliseconds since the Unix epoch); none
/// when it has no readable one or cannot be had.
fn published_ms(registry: &impl Registry, module: &str, version: &str) -> Option<u64> {
    match ask(registry, module, &upstream_path(module, &Ask::File(version.to_string(), "info"))) {
        Upstream::Found(a) => info_time(&a.body),
        _ => None,
    }
}

/// The `Version` of a `.info` or `@latest` answer.
fn info_version(body: &[u8]) -> Option<String> {
    let info: serde_json::Value = serde_json::from_slice(body).ok()?;
    Some(info.get("Version")?.as_str()?.to_string())
}

/// The `Time` of a `.info` or `@latest` answer, in milliseconds since the Unix epoch.
pub fn info_time(body: &[u8]) -> Option<u64> {
    let info: serde_json::Value = serde_json::from_slice(body).ok()?;
    let at = time::OffsetDateTime::parse(info.get("Time")?.as_str()?, &time::format_description::well_known::Rfc3339)
        .ok()?;
    u64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

/// The answer this repository gives from what it stores, as a repository without an upstream.
fn local(registry: &impl Registry, path: &str) -> Result<Outcome, Error> {
    protocol::handle_local(registry, &sluice_plugin_sdk::http::decode(path.trim_start_matches('/')))
        .map(|o| Outcome { keep: None, ..o })
}

/// An upstream `.info` or `@latest`, checked to be the JSON the go command reads.
fn info_answer(a: UpstreamResponse) -> Result<Outcome, Error> {
    match serde_json::from_slice::<serde_json::Value>(&a.body) {
        Ok(v) if v.get("Version").and_then(|v| v.as_str()).is_some() => {
            Ok(Outcome::respond(bytes(200, "application/json", a.body)))
        }
        _ => Err(Error::unavailable("the upstream's version info is not the JSON the GOPROXY protocol gives")),
    }
}

/// The versions `@v/list` offers: the upstream's (each older than `min_age` by its `.info`, when
/// the repository sets one), with the stored ones as the fallback; sorted as Go sorts them.
fn offered(
    registry: &impl Registry,
    module: &str,
    view: Option<&PackageView>,
    path: &str,
    cutoff: Option<u64>,
) -> Result<Vec<GoVersion>, Error> {
    let stored: Vec<GoVersion> = view.map(protocol::listed).unwrap_or_default().into_iter().map(|(v, _)| v).collect();
    let upstream = ask(registry, module, path);
    // An empty list from the upstream is an answer (a module with only pseudo-versions, which
    // the go command then resolves with `@latest`), not a miss.
    let known = view.is_some() || matches!(upstream, Upstream::Found(_));
    let mut versions: Vec<GoVersion> = match upstream {
        Upstream::Found(a) => {
            let body = String::from_utf8_lossy(&a.body);
            let mut from_upstream: Vec<GoVersion> =
                body.lines().filter_map(|l| module_path::parse_served_version(l.trim()).ok()).collect();
            if let Some(c) = cutoff {
                // The list gives no times: each version's `.info` does (kept by the host like
                // every upstream answer, so this costs one request per version per
                // `metadata_ttl`). One without a readable time cannot be shown to be old enough.
                from_upstream.retain(|v| published_ms(registry, module, &v.canonical).is_some_and(|t| t <= c));
            }
            // Fetched, but its pipeline has not passed: not offered, so that the go command
            // resolves to a version it may have (its files by exact version still reach the
            // host, whose 403 says why it is held).
            let quarantined = quarantined_versions(registry, module);
            from_upstream.retain(|v| !quarantined.contains(&v.canonical));
            // Versions fetched before are offered only while the upstream offers them (every
            // stored version here was fetched: a module with others is served by `local`).
            from_upstream
        }
        Upstream::Missing => Vec::new(),
        Upstream::Failed(e) if view.is_none() => return Err(e),
        // The upstream cannot be asked: everything stored here is the best answer.
        Upstream::Failed(_) => stored,
    };
    if versions.is_empty() && !known {
        return Err(Error::not_found(format!("not found: module {module} is not in this repository or its upstream")));
    }
    versions.sort_by(|a, b| a.semver.cmp(&b.semver).then_with(|| a.canonical.cmp(&b.canonical)));
    versions.dedup_by(|a, b| a.canonical == b.canonical);
    Ok(versions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_plugin_sdk::{Artifact, MemoryProxy, MemoryRegistry, Metadata, Reply, Request};

    const MODULE: &str = "github.com/Azure/m";

    fn artifact(version: &str) -> Artifact {
        let mut metadata = Metadata::new(MODULE, version);
        metadata.manifest = "module github.com/Azure/m\n\ngo 1.19\n".into();
        Artifact {
            version: version.into(),
            qualifier: String::new(),
            file_name: crate::zip_file_name(version),
            size: 10,
            sha256: String::new(),
            sha512: String::new(),
            sha1: String::new(),
            published_ms: 1_700_000_000_000,
            metadata,
            deprecated: None,
            yanked: false,
        }
    }

    fn proxy(stored: &[&str], cached: &[&str], upstream: &[(&str, &str)]) -> MemoryProxy {
        let packages = if stored.is_empty() {
            vec![]
        } else {
            vec![PackageView {
                name: MODULE.into(),
                created_ms: 0,
                modified_ms: 0,
                tags: vec![],
                artifacts: stored.iter().map(|v| artifact(v)).collect(),
            }]
        };
        let mut p = MemoryProxy {
            local: MemoryRegistry { tokens: Vec::new(), packages },
            cached: cached.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        for (path, body) in upstream {
            p.answer(path, *body);
        }
        p
    }

    fn get(p: &MemoryProxy, path: &str) -> Result<Outcome, Error> {
        let req = Request {
            method: "GET".into(),
            path: path.into(),
            query: String::new(),
            headers: vec![],
            base_url: "http://localhost/goproxy".into(),
            principal: None,
        };
        protocol::handle(p, &req)
    }

    fn body(outcome: Outcome) -> String {
        match outcome.reply {
            Reply::Respond(r) => String::from_utf8(r.body).unwrap(),
            other => panic!("expected a response, got {other:?}"),
        }
    }

    const INFO: &str = r#"{"Version":"v1.1.0","Time":"2023-01-01T00:00:00Z"}"#;

    #[test]
    fn paths_are_escaped_as_go_escapes_them() {
        assert_eq!(upstream_path(MODULE, &Ask::List), "/github.com/!azure/m/@v/list");
        assert_eq!(
            upstream_path(MODULE, &Ask::File("v1.0.0-RC".into(), "zip")),
            "/github.com/!azure/m/@v/v1.0.0-!r!c.zip"
        );
    }

    #[test]
    fn list_is_the_upstreams_and_drops_fetched_versions_it_no_longer_has() {
        // v1.0.0 fetched before and since deleted upstream (the upstream's list is unsorted, as
        // some proxies send it).
        let p = proxy(
            &["v1.0.0", "v1.1.0"],
            &["v1.0.0", "v1.1.0"],
            &[("/github.com/!azure/m/@v/list", "v1.10.0\nv1.1.0\n")],
        );
        assert_eq!(body(get(&p, "/github.com/!azure/m/@v/list").unwrap()), "v1.1.0\nv1.10.0\n");
        // The upstream unreachable with nothing kept: everything stored is listed.
        let p = MemoryProxy { down: true, ..p };
        assert_eq!(body(get(&p, "/github.com/!azure/m/@v/list").unwrap()), "v1.0.0\nv1.1.0\n");
        let empty = MemoryProxy { down: true, ..proxy(&[], &[], &[]) };
        assert_eq!(get(&empty, "/github.com/!azure/m/@v/list").unwrap_err().kind, ErrorKind::Unavailable);
        assert_eq!(get(&proxy(&[], &[], &[]), "/github.com/!azure/m/@v/list").unwrap_err().kind, ErrorKind::NotFound);
        let pseudo_only = proxy(&[], &[], &[("/github.com/!azure/m/@v/list", "")]);
        assert_eq!(body(get(&pseudo_only, "/github.com/!azure/m/@v/list").unwrap()), "");
    }

    #[test]
    fn every_upstream_request_names_the_module_unescaped() {
        // The host compares the name with a group's `private` patterns: `github.com/Azure/m`, not
        // the `!azure` the path spells. With `min_age`, the list also asks every version's `.info`.
        let upstream = [("/github.com/!azure/m/@v/list", "v1.1.0\n"), ("/github.com/!azure/m/@v/v1.1.0.info", INFO)];
        let p = MemoryProxy { published_before: Some(u64::MAX), ..proxy(&[], &[], &upstream) };
        for path in
            ["/github.com/!azure/m/@v/list", "/github.com/!azure/m/@latest", "/github.com/!azure/m/@v/v1.1.0.mod"]
        {
            let _ = get(&p, path);
        }
        let _ = get(&p, "/github.com/!azure/m/@v/v1.1.0.zip");
        let asked = p.asked_for();
        assert!(asked.len() >= 4, "{asked:?}");
        assert!(asked.iter().all(|a| a.as_deref() == Some(MODULE)), "{:?}", p.asked.borrow());
    }

    #[test]
    fn a_module_with_versions_of_its_own_is_never_merged_with_the_upstreams() {
        // In a group: the local member holds v1.0.0 of the module (not fetched), and the
        // upstream, asked by the escaped path the host cannot match to the name, has v9.9.9.
        let upstream = [
            ("/github.com/!azure/m/@v/list", "v1.0.0\nv9.9.9\n"),
            ("/github.com/!azure/m/@latest", r#"{"Version":"v9.9.9","Time":"2023-01-01T00:00:00Z"}"#),
            ("/github.com/!azure/m/@v/v9.9.9.info", r#"{"Version":"v9.9.9","Time":"2023-01-01T00:00:00Z"}"#),
        ];
        let p = proxy(&["v1.0.0"], &[], &upstream);
        assert_eq!(body(get(&p, "/github.com/!azure/m/@v/list").unwrap()), "v1.0.0\n");
        assert!(body(get(&p, "/github.com/!azure/m/@latest").unwrap()).contains("\"v1.0.0\""));
        assert_eq!(get(&p, "/github.com/!azure/m/@v/v9.9.9.info").unwrap_err().kind, ErrorKind::NotFound);
        assert_eq!(get(&p, "/github.com/!azure/m/@v/v9.9.9.zip").unwrap_err().kind, ErrorKind::NotFound);
        assert!(matches!(get(&p, "/github.com/!azure/m/@v/v1.0.0.zip").unwrap().reply, Reply::ServeFile(_)));
    }

    fn info(version: &str, time: &str) -> String {
        format!(r#"{{"Version":"{version}","Time":"{time}"}}"#)
    }

    #[test]
    fn min_age_withholds_versions_the_upstream_info_says_are_young() {
        let m = "/github.com/!azure/m";
        let answers = [
            (format!("{m}/@v/list"), "v1.0.0\nv1.1.0\nv1.2.0-rc.1\nv1.2.0\nv1.0.1\n".to_string()),
            (format!("{m}/@v/v1.0.0.info"), info("v1.0.0", "2020-01-01T00:00:00Z")),
            // No readable time: cannot be shown to be old enough.
            (format!("{m}/@v/v1.1.0.info"), r#"{"Version":"v1.1.0"}"#.to_string()),
            (format!("{m}/@v/v1.2.0-rc.1.info"), info("v1.2.0-rc.1", "2020-01-05T00:00:00.5+01:00")),
            (format!("{m}/@v/v1.2.0.info"), info("v1.2.0", "2020-03-01T00:00:00Z")),
            // A backport published after v1.2.0-rc.1, lower in semver: times decide, not order.
            (format!("{m}/@v/v1.0.1.info"), info("v1.0.1", "2020-02-20T00:00:00Z")),
            (format!("{m}/@v/v1.2.0.mod"), "module github.com/Azure/m\n".to_string()),
            (format!("{m}/@latest"), info("v1.2.0", "2020-03-01T00:00:00Z")),
        ];
        let answers: Vec<(&str, &str)> = answers.iter().map(|(p, b)| (p.as_str(), b.as_str())).collect();
        let mut p = proxy(&[], &[], &answers);
        // Old enough: published by 2020-02-01.
        p.published_before = Some(1_580_515_200_000);
        assert_eq!(body(get(&p, &format!("{m}/@v/list")).unwrap()), "v1.0.0\nv1.2.0-rc.1\n");
        // The upstream's latest is too young: the newest release still offered.
        assert_eq!(body(get(&p, &format!("{m}/@latest")).unwrap()), info("v1.0.0", "2020-01-01T00:00:00Z"));
        // Not by exact version either, and not fetched.
        for file in ["v1.2.0.info", "v1.2.0.mod", "v1.2.0.zip", "v1.1.0.zip"] {
            let refused = get(&p, &format!("{m}/@v/{file}")).unwrap_err();
            assert_eq!(refused.kind, ErrorKind::NotFound, "{file}");
            assert!(refused.message.contains("min_age"), "{}", refused.message);
        }
        assert!(matches!(get(&p, &format!("{m}/@v/v1.0.0.zip")).unwrap().reply, Reply::FetchFile(_)));
        // Once the cut-off passes them they are offered.
        p.published_before = Some(1_600_000_000_000);
        assert_eq!(body(get(&p, &format!("{m}/@v/list")).unwrap()), "v1.0.0\nv1.0.1\nv1.2.0-rc.1\nv1.2.0\n");
        assert!(body(get(&p, &format!("{m}/@latest")).unwrap()).contains("\"v1.2.0\""));
        assert!(matches!(get(&p, &format!("{m}/@v/v1.2.0.zip")).unwrap().reply, Reply::FetchFile(_)));
        // Everything too young: nothing to offer as latest.
        p.published_before = Some(1);
        assert_eq!(body(get(&p, &format!("{m}/@v/list")).unwrap()), "");
        assert_eq!(get(&p, &format!("{m}/@latest")).unwrap_err().kind, ErrorKind::NotFound);
        // A version stored here (fetched before) stays served by exact version.
        let mut stored = proxy(&["v1.2.0"], &["v1.2.0"], &answers);
        stored.published_before = Some(1);
        assert!(matches!(get(&stored, &format!("{m}/@v/v1.2.0.zip")).unwrap().reply, Reply::ServeFile(_)));
        assert!(body(get(&stored, &format!("{m}/@v/v1.2.0.info")).unwrap()).contains("v1.2.0"));
    }

    #[test]
    fn a_version_in_quarantine_is_not_listed_but_its_files_still_reach_the_host() {
        let m = "/github.com/!azure/m";
        let answers = [
            (format!("{m}/@v/list"), "v1.0.0\nv1.1.0\nv1.2.0-rc.1\nv1.2.0\n".to_string()),
            (format!("{m}/@latest"), info("v1.2.0", "2023-01-03T00:00:00Z")),
            (format!("{m}/@v/v1.0.0.info"), info("v1.0.0", "2023-01-01T00:00:00Z")),
            (format!("{m}/@v/v1.1.0.info"), info("v1.1.0", "2023-01-02T00:00:00Z")),
            (format!("{m}/@v/v1.2.0.info"), info("v1.2.0", "2023-01-03T00:00:00Z")),
            (format!("{m}/@v/v1.2.0.mod"), "module github.com/Azure/m\n".to_string()),
        ];
        let answers: Vec<(&str, &str)> = answers.iter().map(|(p, b)| (p.as_str(), b.as_str())).collect();
        // v1.0.0 was fetched and passed its pipeline (visible); v1.2.0 was fetched and has not
        // passed (held, not visible): in quarantine.
        let p = proxy(&["v1.0.0"], &["v1.0.0", "v1.2.0"], &answers);
        assert_eq!(body(get(&p, &format!("{m}/@v/list")).unwrap()), "v1.0.0\nv1.1.0\nv1.2.0-rc.1\n");
        // The upstream's latest is held: the newest release still offered.
        assert_eq!(body(get(&p, &format!("{m}/@latest")).unwrap()), info("v1.1.0", "2023-01-02T00:00:00Z"));
        // By exact version the go command still reaches the host, whose 403 says why it is held.
        assert!(body(get(&p, &format!("{m}/@v/v1.2.0.info")).unwrap()).contains("\"v1.2.0\""));
        assert_eq!(body(get(&p, &format!("{m}/@v/v1.2.0.mod")).unwrap()), "module github.com/Azure/m\n");
        let Reply::FetchFile(f) = get(&p, &format!("{m}/@v/v1.2.0.zip")).unwrap().reply else {
            panic!("the zip of a held version is asked of the host")
        };
        assert_eq!(f.version, "v1.2.0");
        // Once it passes (visible) it is offered again.
        let released = proxy(&["v1.0.0", "v1.2.0"], &["v1.0.0", "v1.2.0"], &answers);
        assert_eq!(body(get(&released, &format!("{m}/@v/list")).unwrap()), "v1.0.0\nv1.1.0\nv1.2.0-rc.1\nv1.2.0\n");
        assert!(body(get(&released, &format!("{m}/@latest")).unwrap()).contains("\"v1.2.0\""));
        // Every release held: a pre-release is the newest offered, as the go command picks it.
        let all_held = proxy(&[], &["v1.0.0", "v1.1.0", "v1.2.0"], &answers);
        assert_eq!(body(get(&all_held, &format!("{m}/@v/list")).unwrap()), "v1.2.0-rc.1\n");
    }

    #[test]
    fn info_mod_latest_come_from_the_upstream_and_fall_back_to_the_stored_copy() {
        let upstream = [
            ("/github.com/!azure/m/@v/v1.1.0.info", INFO),
            ("/github.com/!azure/m/@v/v1.1.0.mod", "module github.com/Azure/m\n"),
            ("/github.com/!azure/m/@latest", INFO),
        ];
        let p = proxy(&["v1.0.0"], &["v1.0.0"], &upstream);
        assert_eq!(body(get(&p, "/github.com/!azure/m/@v/v1.1.0.info").unwrap()), INFO);
        assert_eq!(body(get(&p, "/github.com/!azure/m/@v/v1.1.0.mod").unwrap()), "module github.com/Azure/m\n");
        assert_eq!(body(get(&p, "/github.com/!azure/m/@latest").unwrap()), INFO);
        // v1.0.0 is gone upstream but was fetched before: still served by exact version.
        assert!(body(get(&p, "/github.com/!azure/m/@v/v1.0.0.info").unwrap()).contains("\"v1.0.0\""));
        assert_eq!(get(&p, "/github.com/!azure/m/@v/v9.0.0.info").unwrap_err().kind, ErrorKind::NotFound);
        let p = MemoryProxy { down: true, ..p };
        assert!(body(get(&p, "/github.com/!azure/m/@v/v1.0.0.mod").unwrap()).contains("go 1.19"));
        assert!(body(get(&p, "/github.com/!azure/m/@latest").unwrap()).contains("\"v1.0.0\""));
        assert_eq!(get(&p, "/github.com/!azure/m/@v/v1.1.0.info").unwrap_err().kind, ErrorKind::Unavailable);
    }

    #[test]
    fn an_upstream_answer_that_is_not_version_info_is_refused() {
        let p = proxy(&[], &[], &[("/github.com/!azure/m/@v/v1.1.0.info", "<html>")]);
        assert_eq!(get(&p, "/github.com/!azure/m/@v/v1.1.0.info").unwrap_err().kind, ErrorKind::Unavailable);
    }

    #[test]
    fn a_zip_is_served_when_stored_and_fetched_once_otherwise() {
        let p = proxy(&["v1.0.0"], &["v1.0.0"], &[]);
        assert!(matches!(get(&p, "/github.com/!azure/m/@v/v1.0.0.zip").unwrap().reply, Reply::ServeFile(_)));
        let Reply::FetchFile(f) = get(&p, "/github.com/!azure/m/@v/v1.1.0.zip").unwrap().reply else {
            panic!("an unstored zip is fetched from the upstream")
        };
        assert_eq!(f.url, "/github.com/!azure/m/@v/v1.1.0.zip");
        assert_eq!((f.package.as_str(), f.version.as_str(), f.file_name.as_str()), (MODULE, "v1.1.0", "v1.1.0.zip"));
        // A path that is not a module path never reaches the upstream.
        assert_eq!(get(&p, "/../etc/@v/list").unwrap_err().kind, ErrorKind::Invalid);
    }
}
