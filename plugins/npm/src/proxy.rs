//! npm in a proxy repository (`upstream = "..."`, contract 0.4.0): the plugin asks the upstream
//! for packuments through the host (which adds credentials, guards, times out and keeps them),
//! and turns the answer into this repository's document:
//!
//! - every version's `dist.tarball` points at this repository (`{base}/{name}/-/{file}`), so
//!   npm downloads through Sluice;
//! - versions published to this repository are merged in and win over the upstream's of the
//!   same number, as do their dist-tags;
//! - versions this repository holds only because they were fetched from the upstream are listed
//!   while the upstream lists them: one deleted upstream disappears from the document once the
//!   host's kept copy expires (`metadata_ttl`), but its stored tarball stays downloadable, so
//!   lockfiles that name it keep installing.
//!
//! With `min_age` (the host's `upstream.published-before` cut-off), upstream versions the
//! packument's `time` says were published after the cut-off are withheld (a version without a
//! readable time too: it cannot be shown to be old enough), dist-tags that pointed at them move
//! to the newest version offered, and their tarballs are not fetched. Versions published to this
//! registry are never withheld. The cut-off needs `time`, which only the full packument has, so
//! with one the plugin always asks for the full packument (npm installs from it just as well).
//!
//! In a gated proxy (`gate = "pipeline"`) a fetched version whose pipeline has not passed is in
//! quarantine (the SDK's `quarantined_versions`): it is left out of the document as a young one
//! is, so npm resolves to a version it may have. Its tarball is still asked for with
//! `fetch-file`, so a lockfile that names it gets the host's answer of why it is held.
//!
//! A tarball not stored here is a `fetch-file` of the upstream's URL with the packument's
//! `integrity` (sha512) and `shasum` (sha1) for the host to verify. Writes (`?write=true`,
//! publish, dist-tag, deprecate, unpublish) act on this repository's own versions only.

use crate::{name, packument};
use base64::Engine;
use serde_json::{Map, Value};
use sluice_plugin_sdk::http::{self, encode_segment};
use sluice_plugin_sdk::{
    quarantined_versions, Error, ErrorKind, Outcome, PackageView, Registry, Request, UpstreamFile, UpstreamResponse,
};
use std::collections::HashSet;

/// What the plugin asks the upstream for when npm wants the whole packument.
const FULL: &str = "application/json";

/// The upstream's path of a package: a scoped name is one segment (`/@scope%2fname`), as npm
/// itself asks.
pub fn upstream_path(name: &str) -> String {
    format!("/{}", encode_segment(name).replace("%40", "@"))
}

/// The packument of a proxy repository (full, or abbreviated when `abbreviated`).
pub fn packument(registry: &impl Registry, req: &Request, name: &str, abbreviated: bool) -> Result<Outcome, Error> {
    let doc = merged(registry, req, name, abbreviated)?;
    let media_type = if abbreviated { packument::ABBREVIATED } else { "application/json" };
    let body = serde_json::to_vec(&doc).expect("JSON serialises");
    // Not kept: it depends on the upstream, whose kept copy the host already manages.
    Ok(Outcome::respond(http::bytes(200, media_type, body)))
}

/// `GET /{name}/{version or dist-tag}` in a proxy repository.
pub fn version(registry: &impl Registry, req: &Request, name: &str, spec: &str) -> Result<Outcome, Error> {
    let doc = merged(registry, req, name, false)?;
    let version = doc.get("dist-tags").and_then(|t| t.get(spec)).and_then(Value::as_str).unwrap_or(spec).to_string();
    let manifest = doc
        .get("versions")
        .and_then(|v| v.get(&version))
        .ok_or_else(|| Error::not_found(format!("{name} has no version or dist-tag {spec}")))?;
    Ok(Outcome::respond(http::json(200, manifest)))
}

/// A tarball: the stored copy when this repository has the version (published, or fetched
/// before), else the upstream's, fetched and verified by the host.
pub fn tarball(registry: &impl Registry, name: &str, file: &str) -> Result<Outcome, Error> {
    let stored = registry
        .summary(name)
        .is_some_and(|s| s.files.iter().any(|f| name::tarball_file_name(&s.name, &f.version) == file));
    if stored {
        return Ok(Outcome::serve_file(name, file, "application/octet-stream"));
    }
    let not_found = || Error::not_found(format!("{name} has no file {file}"));
    let cutoff = registry.upstream_published_before();
    // The packument `npm install` just read: usually the host's kept copy.
    let accept = if cutoff.is_some() { FULL } else { packument::ABBREVIATED };
    let answer = registry.upstream_get_for(name, &upstream_path(name), Some(accept))?;
    if answer.status == 404 || answer.status == 410 {
        return Err(not_found());
    }
    let mut doc = upstream_document(&answer)?;
    if let Some(cutoff) = cutoff {
        withhold_young(&mut doc, cutoff);
    }
    let (version, manifest) = doc
        .get("versions")
        .and_then(Value::as_object)
        .and_then(|versions| versions.iter().find(|(v, _)| name::tarball_file_name(name, v) == file))
        .ok_or_else(not_found)?;
    let dist = manifest.get("dist").ok_or_else(not_found)?;
    let url = dist.get("tarball").and_then(Value::as_str).ok_or_else(not_found)?;
    Ok(Outcome::fetch_file(UpstreamFile {
        url: url.to_string(),
        package: name.to_string(),
        version: version.clone(),
        file_name: file.to_string(),
        content_type: "application/octet-stream".into(),
        sha512: dist.get("integrity").and_then(Value::as_str).and_then(sha512_hex),
        sha256: None,
        sha1: dist.get("shasum").and_then(Value::as_str).filter(|s| is_hex(s, 40)).map(str::to_ascii_lowercase),
    }))
}

/// The sha512 of a Subresource Integrity string (`sha512-<base64>`, maybe among others), hex.
pub fn sha512_hex(integrity: &str) -> Option<String> {
    integrity.split_whitespace().find_map(|part| {
        let b64 = part.strip_prefix("sha512-")?;
        let b64 = b64.split('?').next()?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        (bytes.len() == 64).then(|| hex::encode(bytes))
    })
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Removes the versions published after `cutoff` (milliseconds since the Unix epoch) from an
/// upstream packument, by its `time`, and points dist-tags that named one at the newest version
/// left (`latest` at the newest release; other tags are dropped).
pub fn withhold_young(doc: &mut Map<String, Value>, cutoff: u64) {
    let times = doc.get("time").and_then(Value::as_object).cloned().unwrap_or_default();
    let published = |version: &str| -> Option<u64> {
        let text = times.get(version)?.as_str()?;
        let at = humantime::parse_rfc3339_weak(text).ok()?;
        Some(at.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as u64)
    };
    let Some(Value::Object(versions)) = doc.get_mut("versions") else { return };
    let young: Vec<String> = versions.keys().filter(|v| published(v).is_none_or(|at| at > cutoff)).cloned().collect();
    withhold(doc, &young);
}

/// Removes `withheld` versions from an upstream packument (versions, time) and points dist-tags
/// that named one at the newest version left (`latest` at the newest release; other tags are
/// dropped): what `min_age` and quarantine both do.
pub fn withhold(doc: &mut Map<String, Value>, withheld: &[String]) {
    let Some(Value::Object(versions)) = doc.get_mut("versions") else { return };
    if !withheld.iter().any(|v| versions.contains_key(v)) {
        return;
    }
    for v in withheld {
        versions.remove(v);
    }
    let newest = versions
        .keys()
        .filter_map(|v| semver::Version::parse(v).ok())
        .filter(|v| v.pre.is_empty())
        .max()
        .map(|v| v.to_string());
    if let Some(Value::Object(time)) = doc.get_mut("time") {
        for v in withheld {
            time.remove(v);
        }
    }
    if let Some(Value::Object(tags)) = doc.get_mut("dist-tags") {
        let moved: Vec<String> = tags
            .iter()
            .filter(|(_, v)| v.as_str().is_some_and(|v| withheld.iter().any(|y| y == v)))
            .map(|(t, _)| t.clone())
            .collect();
        for tag in moved {
            match (&newest, tag.as_str()) {
                (Some(newest), "latest") => {
                    tags.insert(tag, Value::String(newest.clone()));
                }
                _ => {
                    tags.remove(&tag);
                }
            }
        }
    }
}

fn upstream_document(answer: &UpstreamResponse) -> Result<Map<String, Value>, Error> {
    match serde_json::from_slice(&answer.body) {
        Ok(Value::Object(doc)) => Ok(doc),
        _ => Err(Error::unavailable("the upstream's packument is not a JSON object")),
    }
}

/// The upstream's packument with tarballs pointing here and this repository's own versions
/// merged in (they win). Falls back to what is stored here when the upstream has nothing and
/// nothing is kept.
fn merged(registry: &impl Registry, req: &Request, name: &str, abbreviated: bool) -> Result<Map<String, Value>, Error> {
    let cutoff = registry.upstream_published_before();
    let accept = if abbreviated && cutoff.is_none() { packument::ABBREVIATED } else { FULL };
    let view = registry.package(name);
    let cached: HashSet<String> = registry.cached_versions(name).into_iter().collect();
    let render = |view: &PackageView| -> Map<String, Value> {
        let doc = if abbreviated {
            serde_json::to_value(packument::abbreviated(view, &req.base_url))
        } else {
            serde_json::to_value(packument::full(view, &req.base_url))
        };
        match doc.expect("packuments serialise") {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    };
    // Published here, as opposed to fetched from the upstream.
    let own = view.as_ref().map(|v| PackageView {
        artifacts: v.artifacts.iter().filter(|a| !cached.contains(&a.version)).cloned().collect(),
        ..v.clone()
    });
    let own = own.filter(|v| !v.artifacts.is_empty());
    let answer = match registry.upstream_get_for(name, &upstream_path(name), Some(accept)) {
        Ok(a) => a,
        // Nothing from the upstream and nothing kept: what is stored here is the best answer.
        Err(e) => {
            return match &view {
                Some(v) if e.kind != ErrorKind::Internal => Ok(render(v)),
                _ => Err(e),
            }
        }
    };
    match answer.status {
        200 => {}
        404 | 410 => {
            return own.as_ref().map(render).ok_or_else(|| Error::not_found(format!("{name} is not in this registry")))
        }
        status => {
            return match &own {
                Some(v) => Ok(render(v)),
                None => Err(Error::unavailable(format!("the upstream answered {status} for {name}"))),
            }
        }
    }
    let mut doc = upstream_document(&answer)?;
    if let Some(cutoff) = cutoff {
        withhold_young(&mut doc, cutoff);
    }
    // Held here but its pipeline has not passed: not offered (its tarball answers why).
    let quarantined: Vec<String> = quarantined_versions(registry, name).into_iter().collect();
    withhold(&mut doc, &quarantined);
    if let Some(Value::Object(versions)) = doc.get_mut("versions") {
        for (version, manifest) in versions.iter_mut() {
            if let Some(Value::Object(dist)) = manifest.get_mut("dist") {
                let url = packument::tarball_url(&req.base_url, name, &name::tarball_file_name(name, version));
                dist.insert("tarball".into(), Value::String(url));
            }
        }
    }
    let Some(own) = own else { return Ok(doc) };
    let mine = render(&own);
    for field in ["versions", "time", "dist-tags"] {
        let Some(Value::Object(from)) = mine.get(field) else { continue };
        let into = doc.entry(field).or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(into) = into {
            for (k, v) in from {
                if field == "time" && (k == "created" || k == "modified") {
                    continue;
                }
                into.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packument::tests::{view, BASE};
    use sluice_plugin_sdk::{MemoryProxy, MemoryRegistry, Reply, UpstreamResponse as Answer};
    use std::collections::HashMap;

    const UP: &str = "http://up.test/npm";

    fn upstream_doc(name: &str, versions: &[&str], latest: &str) -> Vec<u8> {
        let mut vs = Map::new();
        for v in versions {
            let file = name::tarball_file_name(name, v);
            vs.insert(
                v.to_string(),
                serde_json::json!({
                    "name": name, "version": v,
                    "dist": {
                        "tarball": format!("{UP}/{name}/-/{file}"),
                        "integrity": format!("sha512-{}", base64::engine::general_purpose::STANDARD.encode([7u8; 64])),
                        "shasum": "0123456789abcdef0123456789abcdef01234567",
                    }
                }),
            );
        }
        serde_json::to_vec(&serde_json::json!({ "name": name, "dist-tags": { "latest": latest }, "versions": vs }))
            .unwrap()
    }

    fn proxy(name: &str, local: Vec<PackageView>, versions: &[&str], cached: &[&str]) -> MemoryProxy {
        let body = upstream_doc(name, versions, versions.last().unwrap());
        let mut upstream = HashMap::new();
        for accept in [packument::ABBREVIATED, FULL] {
            upstream.insert(
                (upstream_path(name), accept.to_string()),
                Ok(Answer { status: 200, headers: vec![], body: body.clone(), stale: false }),
            );
        }
        MemoryProxy {
            local: MemoryRegistry::with_packages(local),
            upstream,
            cached: cached.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn req() -> Request {
        Request {
            method: "GET".into(),
            path: "/x".into(),
            query: String::new(),
            headers: vec![],
            base_url: BASE.into(),
            principal: None,
        }
    }

    fn body_of(o: &Outcome) -> Value {
        body(o)
    }

    fn body(o: &Outcome) -> Value {
        match &o.reply {
            Reply::Respond(r) => serde_json::from_slice(&r.body).unwrap(),
            other => panic!("not a response: {other:?}"),
        }
    }

    #[test]
    fn scoped_names_are_one_upstream_segment() {
        assert_eq!(upstream_path("@acme/widget"), "/@acme%2Fwidget");
        assert_eq!(upstream_path("left-pad"), "/left-pad");
    }

    #[test]
    fn tarballs_point_here_and_local_versions_win() {
        let local = view("@acme/widget", &["1.0.0", "3.0.0"], &[("latest", "3.0.0")]);
        let p = proxy("@acme/widget", vec![local], &["1.0.0", "2.0.0"], &[]);
        for abbreviated in [true, false] {
            let doc = body(&packument(&p, &req(), "@acme/widget", abbreviated).unwrap());
            let versions = doc["versions"].as_object().unwrap();
            assert_eq!(versions.keys().collect::<Vec<_>>(), ["1.0.0", "2.0.0", "3.0.0"]);
            assert_eq!(
                doc["versions"]["2.0.0"]["dist"]["tarball"],
                format!("{BASE}/@acme/widget/-/widget-2.0.0.tgz"),
                "an upstream version downloads through this repository"
            );
            // 1.0.0 is published here too: ours wins (our digest, not the upstream's).
            assert_ne!(doc["versions"]["1.0.0"]["dist"]["shasum"], "0123456789abcdef0123456789abcdef01234567");
            assert_eq!(doc["dist-tags"]["latest"], "3.0.0", "a local dist-tag wins");
        }
    }

    #[test]
    fn every_upstream_request_names_the_package() {
        let p = proxy("@acme/widget", vec![], &["2.0.0"], &[]);
        packument(&p, &req(), "@acme/widget", true).unwrap();
        version(&p, &req(), "@acme/widget", "2.0.0").unwrap();
        tarball(&p, "@acme/widget", "widget-2.0.0.tgz").unwrap();
        let asked = p.asked_for();
        assert_eq!(asked.len(), 3, "{asked:?}");
        assert!(asked.iter().all(|a| a.as_deref() == Some("@acme/widget")), "{asked:?}");
    }

    #[test]
    fn a_version_fetched_before_is_listed_only_while_the_upstream_lists_it() {
        let stored = view("demo", &["1.0.0", "1.0.1"], &[("latest", "1.0.1")]);
        let p = proxy("demo", vec![stored], &["1.0.0"], &["1.0.0", "1.0.1"]);
        let doc = body(&packument(&p, &req(), "demo", true).unwrap());
        assert_eq!(doc["versions"].as_object().unwrap().keys().collect::<Vec<_>>(), ["1.0.0"]);
        assert_eq!(doc["dist-tags"]["latest"], "1.0.0");
        // Still downloadable by its file: served from the store, no upstream needed.
        assert!(matches!(tarball(&p, "demo", "demo-1.0.1.tgz").unwrap().reply, Reply::ServeFile(_)));
    }

    #[test]
    fn a_version_in_quarantine_is_not_offered_but_its_tarball_is_still_asked_for() {
        // 1.0.0 and 2.0.0 were fetched; 1.0.0's pipeline passed (visible), 2.0.0's did not.
        let visible = view("demo", &["1.0.0"], &[("latest", "1.0.0")]);
        let p = proxy("demo", vec![visible], &["1.0.0", "1.5.0", "2.0.0"], &["1.0.0", "2.0.0"]);
        for abbreviated in [true, false] {
            let doc = body(&packument(&p, &req(), "demo", abbreviated).unwrap());
            assert_eq!(doc["versions"].as_object().unwrap().keys().collect::<Vec<_>>(), ["1.0.0", "1.5.0"]);
            assert_eq!(doc["dist-tags"]["latest"], "1.5.0", "latest moves off the quarantined version");
        }
        assert_eq!(version(&p, &req(), "demo", "2.0.0").unwrap_err().kind, ErrorKind::NotFound);
        // A lockfile naming it asks for the file, and the host answers why it is held.
        let out = tarball(&p, "demo", "demo-2.0.0.tgz").unwrap();
        assert!(matches!(out.reply, Reply::FetchFile(ref f) if f.version == "2.0.0"), "{:?}", out.reply);
    }

    #[test]
    fn a_tarball_only_the_upstream_has_is_fetched_with_its_digests() {
        let p = proxy("@acme/widget", vec![], &["2.0.0"], &[]);
        let out = tarball(&p, "@acme/widget", "widget-2.0.0.tgz").unwrap();
        let Reply::FetchFile(f) = out.reply else { panic!("not a fetch: {:?}", out.reply) };
        assert_eq!(f.url, format!("{UP}/@acme/widget/-/widget-2.0.0.tgz"));
        assert_eq!((f.package.as_str(), f.version.as_str()), ("@acme/widget", "2.0.0"));
        assert_eq!(f.sha512.as_deref(), Some(hex::encode([7u8; 64]).as_str()));
        assert_eq!(f.sha1.as_deref(), Some("0123456789abcdef0123456789abcdef01234567"));
        let missing = tarball(&p, "@acme/widget", "widget-9.9.9.tgz").unwrap_err();
        assert_eq!(missing.kind, ErrorKind::NotFound);
    }

    #[test]
    fn without_the_upstream_what_is_stored_answers() {
        let stored = view("demo", &["1.0.0"], &[("latest", "1.0.0")]);
        let mut p = proxy("demo", vec![stored], &["1.0.0"], &["1.0.0"]);
        let down = Err(Error::unavailable("the upstream could not be reached"));
        for accept in [packument::ABBREVIATED, FULL] {
            p.upstream.insert((upstream_path("demo"), accept.to_string()), down.clone());
        }
        let doc = body(&packument(&p, &req(), "demo", true).unwrap());
        assert!(doc["versions"]["1.0.0"].is_object());
        let none = proxy("other", vec![], &["1.0.0"], &[]);
        let mut none = none;
        none.upstream.insert((upstream_path("ghost"), packument::ABBREVIATED.to_string()), down);
        assert_eq!(packument(&none, &req(), "ghost", true).unwrap_err().kind, ErrorKind::Unavailable);
        assert_eq!(packument(&none, &req(), "nothing", true).unwrap_err().kind, ErrorKind::NotFound);
    }

    #[test]
    fn min_age_withholds_young_upstream_versions_but_never_local_ones() {
        let name = "left-pad";
        let mut doc: Map<String, Value> =
            serde_json::from_slice(&upstream_doc(name, &["1.0.0", "1.1.0", "2.0.0-rc.1", "2.0.0"], "2.0.0")).unwrap();
        doc.insert(
            "time".into(),
            serde_json::json!({
                "created": "2020-01-01T00:00:00.000Z",
                "1.0.0": "2020-01-01T00:00:00.000Z",
                "1.1.0": "2020-02-01T00:00:00.000Z",
                "2.0.0-rc.1": "2020-03-01T00:00:00.000Z",
                "2.0.0": "2020-03-02T00:00:00.000Z",
            }),
        );
        doc["dist-tags"]["next"] = Value::from("2.0.0");
        doc["dist-tags"]["beta"] = Value::from("2.0.0-rc.1");
        let body = serde_json::to_vec(&doc).unwrap();
        let mut p = proxy(name, vec![], &["1.0.0"], &[]);
        p.upstream.insert(
            (upstream_path(name), FULL.to_string()),
            Ok(Answer { status: 200, headers: vec![], body, stale: false }),
        );
        // Published since the middle of February 2020: 2.0.0-rc.1 and 2.0.0 are too young.
        p.published_before = Some(1_582_000_000_000);
        for abbreviated in [true, false] {
            let doc = body_of(&packument(&p, &req(), name, abbreviated).unwrap());
            assert_eq!(doc["versions"].as_object().unwrap().keys().collect::<Vec<_>>(), ["1.0.0", "1.1.0"]);
            assert_eq!(doc["dist-tags"]["latest"], "1.1.0", "latest moves to the newest version offered");
            assert!(doc["dist-tags"].get("next").is_none() && doc["dist-tags"].get("beta").is_none());
            assert!(doc["time"].get("2.0.0").is_none());
        }
        assert_eq!(tarball(&p, name, "left-pad-2.0.0.tgz").unwrap_err().kind, ErrorKind::NotFound, "not fetched");
        assert!(matches!(tarball(&p, name, "left-pad-1.1.0.tgz").unwrap().reply, Reply::FetchFile(_)));
        // A version published here is offered however new it is (the test views are from 2023).
        p.local = MemoryRegistry::with_packages(vec![view(name, &["3.0.0"], &[("latest", "3.0.0")])]);
        p.published_before = Some(1);
        let doc = body_of(&packument(&p, &req(), name, true).unwrap());
        assert_eq!(doc["versions"].as_object().unwrap().keys().collect::<Vec<_>>(), ["3.0.0"]);
        assert_eq!(doc["dist-tags"]["latest"], "3.0.0");
        // A version with no time cannot be shown to be old enough.
        let mut timeless: Map<String, Value> =
            serde_json::from_slice(&upstream_doc(name, &["1.0.0"], "1.0.0")).unwrap();
        withhold_young(&mut timeless, u64::MAX);
        assert!(timeless["versions"].as_object().unwrap().is_empty());
    }

    #[test]
    fn integrity_strings() {
        let sri = format!("sha1-abc= sha512-{}", base64::engine::general_purpose::STANDARD.encode([1u8; 64]));
        assert_eq!(sha512_hex(&sri), Some(hex::encode([1u8; 64])));
        assert_eq!(sha512_hex("sha512-short"), None);
        assert_eq!(sha512_hex("sha256-abc"), None);
    }
}
