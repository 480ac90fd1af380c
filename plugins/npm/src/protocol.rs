//! The npm registry protocol as npm 11 speaks it: packuments, tarballs, publish, dist-tags,
//! deprecate, unpublish, whoami, ping, search and the caller's tokens (`npm token list|revoke`).

use crate::{name, packument, parse, proxy, search, tokens};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sluice_plugin_sdk::http;
use sluice_plugin_sdk::io::{BlobReader, ReadAt};
use sluice_plugin_sdk::json_scan::{self, Segment, StringSpan};
use sluice_plugin_sdk::{
    Change, Deprecation, Effect, Error, ErrorKind, Limits, Outcome, PackageSummary, PackageView, PartedBody, Parts,
    Registry, Request, TagChange, Upload, UploadSource, VersionRef,
};
use std::collections::{HashMap, HashSet};

/// The most the package document may hold once its attachments' base64 text is cut out: the
/// versions, dist-tags and READMEs that the plugin parses in memory. Tarballs do not count here;
/// their size is the operator's (`max_upload_mb`), and they never pass through the plugin's memory.
pub const MAX_DOCUMENT: u64 = 64 * 1024 * 1024;

/// The beginning of the message of a stale `_rev`, which `render_error` tells apart from a
/// republished version (both are conflicts).
pub const STALE_REV: &str = "The package changed since it was read";

/// Serves one request of the npm protocol.
pub fn handle(registry: &impl Registry, req: &Request, body: impl ReadAt, limits: &Limits) -> Result<Outcome, Error> {
    let segments = req.segments();
    let method = match req.method.to_ascii_uppercase().as_str() {
        "HEAD" => "GET".to_string(),
        m => m.to_string(),
    };
    if segments.first().map(String::as_str) == Some("-") {
        return registry_route(registry, req, &method, &segments[1..], body);
    }
    let (name, rest) = name::split_name(&segments).ok_or_else(|| Error::not_found("no such route"))?;
    name::validate(&name)?;
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    match (method.as_str(), rest.as_slice()) {
        ("GET", []) => get_packument(registry, req, &name),
        ("GET", ["-", file]) if registry.upstream_configured() => proxy::tarball(registry, &name, file),
        ("GET", ["-", file]) => Ok(Outcome::serve_file(&name, *file, "application/octet-stream")),
        ("GET", [spec]) => get_version(registry, req, &name, spec),
        ("PUT", []) => {
            signed_in(req)?;
            let (doc, texts) = read_document(&body)?;
            if doc.attachments.is_empty() {
                update(registry, &name, doc, None)
            } else {
                publish(&name, doc, texts, &body, limits)
            }
        }
        ("PUT", ["-rev", rev]) => {
            signed_in(req)?;
            update(registry, &name, read_document(&body)?.0, Some(rev))
        }
        ("DELETE", ["-rev", rev]) => {
            signed_in(req)?;
            let summary = current(registry, &name, rev)?;
            Ok(Outcome::with_effects(vec![Effect::DeletePackage(summary.name)], ok()))
        }
        ("DELETE", ["-", file, "-rev", rev]) => {
            signed_in(req)?;
            let summary = current(registry, &name, rev)?;
            // The unpublish PUT before this request usually removed the version already. Files
            // are stored under the name `publish` gives them, so the version names its file.
            let effects = summary
                .files
                .iter()
                .find(|f| name::tarball_file_name(&summary.name, &f.version) == *file)
                .map(|f| {
                    Effect::DeleteVersion(VersionRef { package: summary.name.clone(), version: f.version.clone() })
                })
                .into_iter()
                .collect();
            Ok(Outcome::with_effects(effects, ok()))
        }
        (_, [] | ["-rev", _] | ["-", _] | ["-", _, "-rev", _]) => {
            Err(Error::unsupported(format!("{method} is not supported here")))
        }
        _ => Err(Error::not_found("no such route")),
    }
}

/// Routes under `/-/`, the registry's own endpoints.
fn registry_route(
    registry: &impl Registry,
    req: &Request,
    method: &str,
    segments: &[String],
    body: impl ReadAt,
) -> Result<Outcome, Error> {
    let path: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (method, path.as_slice()) {
        ("GET", ["ping"]) => Ok(Outcome::respond(http::json(200, &json!({}))).keep_forever()),
        // Never kept: the answer is the caller's.
        ("GET", ["whoami"]) => {
            let name = signed_in(req)?;
            Ok(Outcome::respond(http::json(200, &json!({ "username": name }))))
        }
        ("GET", ["v1", "search"]) => Ok(search::handle(registry, req)),
        ("GET", ["npm", "v1", "tokens"]) => {
            signed_in(req)?;
            Ok(Outcome::respond(http::json(200, &tokens::list(&registry.tokens()))))
        }
        ("DELETE", ["npm", "v1", "tokens", "token", key]) => {
            signed_in(req)?;
            // The host refuses a key that is not one of the caller's tokens.
            Ok(Outcome::with_effects(vec![Effect::RevokeToken((*key).to_string())], http::empty(204)))
        }
        (_, ["npm", "v1", "tokens", ..]) => Err(Error::unsupported(format!("{method} is not supported here"))),
        (_, ["package", ..]) => dist_tags(registry, req, method, &segments[1..], body),
        _ => Err(Error::not_found("no such route")),
    }
}

/// `npm dist-tag ls|add|rm`: `/-/package/{name}/dist-tags[/{tag}]`.
fn dist_tags(
    registry: &impl Registry,
    req: &Request,
    method: &str,
    segments: &[String],
    body: impl ReadAt,
) -> Result<Outcome, Error> {
    let (name, rest) = name::split_name(segments).ok_or_else(|| Error::not_found("no such route"))?;
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    let tag = match rest.as_slice() {
        ["dist-tags"] if method == "GET" => {
            let summary = summary(registry, &name)?;
            let tags = Value::Object(packument::summary_tags(&summary));
            return Ok(Outcome::respond(http::json(200, &tags)).keep_for_package(name));
        }
        ["dist-tags", tag] if matches!(method, "PUT" | "POST" | "DELETE") => *tag,
        ["dist-tags", ..] => return Err(Error::unsupported(format!("{method} is not supported here"))),
        _ => return Err(Error::not_found("no such route")),
    };
    signed_in(req)?;
    let view = summary(registry, &name)?;
    let mut tags = packument::summary_tags(&view);
    let version = if method == "DELETE" {
        if tag == "latest" {
            return Err(Error::invalid("the latest tag cannot be removed"));
        }
        if tags.remove(tag).is_none() {
            return Err(Error::not_found(format!("{tag} is not a dist-tag of {name}")));
        }
        None
    } else {
        if tag.is_empty() || semver::VersionReq::parse(tag).is_ok() {
            return Err(Error::invalid(format!("\"{tag}\" cannot be a dist-tag: it reads as a version range")));
        }
        let text = BlobReader::new(body).read_all(4096).map_err(|_| Error::invalid("the version is too long"))?;
        let text = String::from_utf8_lossy(&text);
        // npm sends the version as a JSON string; older clients sent it bare.
        let version = serde_json::from_str::<String>(&text).unwrap_or_else(|_| text.trim().to_string());
        if !view.files.iter().any(|f| f.version == version) {
            return Err(Error::not_found(format!("{name} has no version {version}")));
        }
        tags.insert(tag.to_string(), json!(version));
        Some(version)
    };
    let change = TagChange { package: view.name.clone(), tag: tag.to_string(), version };
    Ok(Outcome::with_effects(vec![Effect::SetTag(change)], http::json(200, &Value::Object(tags))))
}

/// `GET /{name}`: the abbreviated packument when npm asks for it by `Accept`, else the full one.
fn get_packument(registry: &impl Registry, req: &Request, name: &str) -> Result<Outcome, Error> {
    let wants_abbreviated =
        req.header("accept").is_some_and(|a| a.contains(packument::ABBREVIATED)) && req.query_param("write").is_none();
    // A proxy's document merges the upstream's; a write (`?write=true`) reads this repository's own.
    if registry.upstream_configured() && req.query_param("write").is_none() {
        return proxy::packument(registry, req, name, wants_abbreviated);
    }
    let view = package(registry, name)?;
    let (form, content_type) = if wants_abbreviated {
        (packument::Form::Abbreviated, packument::ABBREVIATED)
    } else {
        (packument::Form::Full, "application/json")
    };
    let (body, layout) = packument::whole(&view, &req.base_url, form);
    // Rendered from the package and the request's URL; full or abbreviated by `Accept`; in
    // parts, so that a change re-renders the versions it touches and not the whole history.
    Ok(Outcome::respond(http::bytes(200, content_type, body)).keep_for_package(name).vary("accept").in_parts(layout))
}

/// `render-parts` of a kept packument: the package's fields again (tags, `_rev`, `modified`,
/// the latest version's description) and the items of the versions `changes` name, read by
/// version rather than the package's whole history. None (render whole) for anything else.
pub fn packument_parts(registry: &impl Registry, req: &Request, changes: &[Change]) -> Result<Option<Parts>, Error> {
    let segments = req.segments();
    let Some((name, rest)) = name::split_name(&segments) else { return Ok(None) };
    if !rest.is_empty() || registry.upstream_configured() || req.query_param("write").is_some() {
        return Ok(None);
    }
    let form = if req.header("accept").is_some_and(|a| a.contains(packument::ABBREVIATED)) {
        packument::Form::Abbreviated
    } else {
        packument::Form::Full
    };
    // Gone entirely: the whole render answers (a 404).
    let Some(summary) = registry.summary(&name) else { return Ok(None) };
    let mut changed: Vec<String> = Vec::new();
    for c in changes {
        if !c.version.is_empty() && !changed.contains(&c.version) {
            changed.push(c.version.clone());
        }
    }
    let mut load = changed.clone();
    if let Some(latest) = packument::latest_of(&summary) {
        load.push(latest.to_string());
    }
    let Some(view) = registry.versions(&name, &load) else { return Ok(None) };
    let source = packument::Source::new(&view, std::borrow::Cow::Owned(summary));
    let mut body = PartedBody::changed(changed);
    packument::render(&source, &req.base_url, form, &mut body)?;
    Ok(Some(body.into_parts()))
}

/// `GET /{name}/{version or tag}`: one version's manifest.
fn get_version(registry: &impl Registry, req: &Request, name: &str, spec: &str) -> Result<Outcome, Error> {
    if registry.upstream_configured() {
        return proxy::version(registry, req, name, spec);
    }
    let view = package(registry, name)?;
    let version = view.tags.iter().find(|(t, _)| t == spec).map_or(spec, |(_, v)| v.as_str());
    let artifact = packument::versions(&view)
        .into_iter()
        .find(|a| a.version == version)
        .ok_or_else(|| Error::not_found(format!("{name} has no version or dist-tag {spec}")))?;
    let manifest = packument::version_manifest(&view, artifact, &req.base_url);
    let body = serde_json::to_vec(&manifest).expect("JSON serialises");
    Ok(Outcome::respond(http::bytes(200, "application/json", body)).keep_for_package(name))
}

/// The parts of a packument that publish, deprecate and unpublish send, parsed with the
/// attachments' base64 text cut out (see [`read_document`]).
#[derive(Deserialize)]
pub struct Document {
    name: Option<String>,
    versions: Option<Map<String, Value>>,
    #[serde(rename = "dist-tags", default)]
    dist_tags: Map<String, Value>,
    #[serde(rename = "_attachments", default)]
    attachments: HashMap<String, Attachment>,
}

#[derive(Deserialize)]
struct Attachment {
    length: Option<u64>,
}

/// Where an attachment's base64 text lies in the body, and what a look at every byte found.
pub struct AttachmentText {
    span: StringSpan,
    check: Base64Check,
}

/// The body read in one pass through the blob, never whole: `npm publish` of a 200 MB tarball
/// sends about 270 MB of JSON, nearly all of it one base64 string. The scanner finds each
/// `_attachments.*.data` string and checks its text as it goes by; the rest of the document,
/// small, is parsed normally.
pub fn read_document(body: &impl ReadAt) -> Result<(Document, HashMap<String, AttachmentText>), Error> {
    let not_json = |e: std::io::Error| Error::invalid(format!("the request body is not a valid package document: {e}"));
    let mut checks: HashMap<String, Base64Check> = HashMap::new();
    let spans = json_scan::scan_strings(
        BlobReader::new(body),
        |path| matches!(path, [Segment::Key(a), Segment::Key(_), Segment::Key(d)] if a == "_attachments" && d == "data"),
        |path, piece| checks.entry(path[1].key().unwrap_or_default().to_string()).or_default().add(piece),
    )
    .map_err(not_json)?;
    let kept = BlobReader::new(body).size() - spans.iter().map(|s| s.len).sum::<u64>();
    if kept > MAX_DOCUMENT {
        return Err(Error::too_large(format!(
            "the package document is larger than {} MiB without its tarballs",
            MAX_DOCUMENT >> 20
        )));
    }
    let rest = json_scan::without_spans(&BlobReader::new(body), &spans).map_err(not_json)?;
    let doc: Document = serde_json::from_slice(&rest)
        .map_err(|e| Error::invalid(format!("the request body is not a valid package document: {e}")))?;
    let texts = spans
        .into_iter()
        .filter_map(|span| {
            let key = span.path[1].key()?.to_string();
            let check = checks.remove(&key).unwrap_or_default();
            Some((key, AttachmentText { span, check }))
        })
        .collect();
    Ok((doc, texts))
}

/// Standard base64 (padded, no line breaks) as npm writes it, checked a piece at a time.
#[derive(Default)]
pub struct Base64Check {
    len: u64,
    padding: u64,
    bad: bool,
}

impl Base64Check {
    fn add(&mut self, piece: &[u8]) {
        for &b in piece {
            match b {
                b'=' => self.padding += 1,
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' if self.padding == 0 => {}
                _ => self.bad = true,
            }
        }
        self.len += piece.len() as u64;
    }

    /// The decoded length, if the text is valid.
    fn decoded_len(&self) -> Option<u64> {
        (!self.bad && self.len.is_multiple_of(4) && self.padding <= 2).then(|| self.len / 4 * 3 - self.padding)
    }
}

/// `npm publish`: one version and its tarball as a base64 attachment. The tarball's own
/// package.json is checked against the file name by `parse`, which the host calls next.
pub fn publish(
    name: &str,
    mut doc: Document,
    mut texts: HashMap<String, AttachmentText>,
    body: &impl ReadAt,
    limits: &Limits,
) -> Result<Outcome, Error> {
    if doc.name.as_deref() != Some(name) {
        return Err(Error::invalid(format!(
            "the package name in the request ({}) does not match the URL ({name})",
            doc.name.as_deref().unwrap_or("none")
        )));
    }
    let versions = doc.versions.unwrap_or_default();
    let [(version, manifest)] = <[_; 1]>::try_from(versions.into_iter().collect::<Vec<_>>())
        .map_err(|_| Error::invalid("a publish request must carry exactly one version"))?;
    if manifest.get("name").and_then(Value::as_str).is_some_and(|n| n != name)
        || manifest.get("version").and_then(Value::as_str).is_some_and(|v| v != version)
    {
        return Err(Error::invalid(format!("the manifest of {name}@{version} names another package or version")));
    }
    let version = parse::normalize_version(&version)?;
    let key = format!("{name}-{version}.tgz");
    let attachment = doc
        .attachments
        .remove(&key)
        .ok_or_else(|| Error::invalid(format!("the publish request has no attachment {key}")))?;
    let text = texts.remove(&key).ok_or_else(|| Error::invalid(format!("the attachment {key} has no base64 data")))?;
    let not_base64 = || Error::invalid(format!("the attachment {key} is not valid base64"));
    let (source, decoded_len) = if text.span.escaped {
        // JSON escapes in base64 (`\/`) are legal but no npm client writes them: such a (small)
        // attachment is decoded here, the plain way.
        let raw = BlobReader::new(body).read_range(text.span.start, text.span.len)?;
        let quoted = [&b"\""[..], &raw, b"\""].concat();
        let data: String = serde_json::from_slice(&quoted).map_err(|_| not_base64())?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(data.as_bytes()).map_err(|_| not_base64())?;
        let len = bytes.len() as u64;
        (UploadSource::Bytes(bytes), len)
    } else {
        let len = text.check.decoded_len().ok_or_else(not_base64)?;
        (UploadSource::BodyBase64Range((text.span.start, text.span.len)), len)
    };
    if attachment.length.is_some_and(|len| len != decoded_len) {
        return Err(Error::invalid(format!("the attachment {key} is not as long as its length says: it was cut off")));
    }
    if decoded_len > limits.max_upload_bytes {
        return Err(Error::too_large(format!(
            "the tarball is larger than this registry's limit of {} MiB",
            limits.max_upload_bytes >> 20
        )));
    }
    // No look at the package's other versions: the store's unique key refuses a republished
    // version inside the publish's transaction, and `errors::render` words that conflict as npm
    // does. A publish so costs the same at 10,000 versions as at one.
    let tags =
        doc.dist_tags.iter().filter(|(_, v)| v.as_str() == Some(version.as_str())).map(|(t, _)| t.clone()).collect();
    let upload =
        Upload { file_name: name::tarball_file_name(name, &version), source, package: Some(name.to_string()), tags };
    Ok(Outcome::with_effects(vec![Effect::Publish(upload)], ok()))
}

/// The error npmjs gives for a republished version; npm shows its text.
pub fn publish_over(version: &str) -> Error {
    Error::new(ErrorKind::Conflict, format!("You cannot publish over the previously published versions: {version}."))
}

/// A `PUT` of the packument without attachments: `npm deprecate` sends it to `/{name}` with
/// `deprecated` fields changed; `npm unpublish` of one version sends it to `/{name}/-rev/{rev}`
/// without that version and with dist-tags moved off it. Versions are only removed and tags only
/// changed under a matching `rev`, so a document read before someone else's publish cannot undo it.
pub fn update(registry: &impl Registry, name: &str, doc: Document, rev: Option<&str>) -> Result<Outcome, Error> {
    let view = match rev {
        Some(rev) => current(registry, name, rev)?,
        None => summary(registry, name)?,
    };
    let sent = doc.versions.ok_or_else(|| Error::invalid("the package document has no versions"))?;
    let stored = packument::summary_versions(&view);

    let mut deprecations = Vec::new();
    let mut deletions = Vec::new();
    for artifact in &stored {
        match sent.get(&artifact.version) {
            Some(manifest) => {
                let message = manifest.get("deprecated").and_then(Value::as_str).filter(|m| !m.is_empty());
                if message != artifact.deprecated.as_deref().filter(|m| !m.is_empty()) {
                    deprecations.push(Effect::Deprecate(Deprecation {
                        package: view.name.clone(),
                        version: artifact.version.clone(),
                        message: message.map(str::to_string),
                    }));
                }
            }
            None if rev.is_some() => deletions.push(Effect::DeleteVersion(VersionRef {
                package: view.name.clone(),
                version: artifact.version.clone(),
            })),
            None => {}
        }
    }
    if !stored.is_empty() && deletions.len() == stored.len() {
        return Err(Error::invalid("an update cannot remove every version; unpublish the whole package instead"));
    }

    // Tags move first, so that none points at a version about to be removed.
    let mut effects = Vec::new();
    if rev.is_some() {
        let before = packument::summary_tags(&view);
        let stored_versions: HashSet<&str> = stored.iter().map(|f| f.version.as_str()).collect();
        let remaining = |v: &str| stored_versions.contains(v) && sent.contains_key(v);
        for (tag, version) in &doc.dist_tags {
            let Some(version) = version.as_str() else { continue };
            if before.get(tag).and_then(Value::as_str) != Some(version) && remaining(version) {
                effects.push(tag_change(&view, tag, Some(version)));
            }
        }
        for tag in before.keys().filter(|t| !doc.dist_tags.contains_key(*t)) {
            effects.push(tag_change(&view, tag, None));
        }
    }
    effects.extend(deprecations);
    effects.extend(deletions);
    Ok(Outcome::with_effects(effects, ok()))
}

fn tag_change(view: &PackageSummary, tag: &str, version: Option<&str>) -> Effect {
    Effect::SetTag(TagChange { package: view.name.clone(), tag: tag.to_string(), version: version.map(str::to_string) })
}

/// The principal's name; writes and `whoami` need one. The message names the `.npmrc` line
/// that npm reads a token from for this registry.
fn signed_in(req: &Request) -> Result<&str, Error> {
    req.principal.as_deref().ok_or_else(|| {
        let key = req.base_url.split_once("//").map_or(req.base_url.as_str(), |(_, rest)| rest);
        Error::unauthorized(format!("this needs a valid token: add //{key}/:_authToken=TOKEN to your .npmrc"))
    })
}

fn package(registry: &impl Registry, name: &str) -> Result<PackageView, Error> {
    registry.package(name).ok_or_else(|| Error::not_found(format!("{name} is not in this registry")))
}

fn summary(registry: &impl Registry, name: &str) -> Result<PackageSummary, Error> {
    registry.summary(name).ok_or_else(|| Error::not_found(format!("{name} is not in this registry")))
}

/// The package's summary, if `rev` is still its revision.
fn current(registry: &impl Registry, name: &str, rev: &str) -> Result<PackageSummary, Error> {
    let view = summary(registry, name)?;
    let now = packument::rev(&view);
    if now != rev {
        return Err(Error::new(
            ErrorKind::Conflict,
            format!("{STALE_REV} (revision {rev}, now {now}); run the command again"),
        ));
    }
    Ok(view)
}

fn ok() -> sluice_plugin_sdk::Response {
    http::json(200, &json!({ "ok": true }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packument::tests::{view, BASE};
    use crate::parse::tests::good_tgz;
    use sluice_plugin_sdk::{MemoryRegistry, Reply, Response, Source, SummaryOnly, TokenInfo};

    fn request(method: &str, path: &str, principal: Option<&str>) -> Request {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        Request {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            headers: vec![("accept".into(), "application/json".into())],
            base_url: BASE.into(),
            principal: principal.map(str::to_string),
        }
    }

    fn registry() -> MemoryRegistry {
        let mut scoped = view("@scope/demo", &["1.0.0", "1.1.0"], &[("latest", "1.1.0"), ("beta", "1.0.0")]);
        scoped.artifacts[0].deprecated = Some("old".into());
        MemoryRegistry { tokens: Vec::new(), packages: vec![view("demo", &["1.0.0"], &[("latest", "1.0.0")]), scoped] }
    }

    /// A kept packument (full and abbreviated) rendered in parts, then each change a user makes
    /// (publish, deprecate, a dist-tag move, unpublish, republish of a removed version as the
    /// newest) applied with `render-parts` and spliced the way the host splices: the bytes equal
    /// a whole render of the new state every time, and only the changed versions are loaded.
    #[test]
    fn packument_parts_spliced_equal_a_whole_render_after_every_change() {
        use crate::packument::tests::artifact;
        use sluice_plugin_sdk::parts::splice;
        use sluice_plugin_sdk::{Change, ChangeKind};
        let versions: Vec<String> = (0..50).map(|i| format!("1.0.{i}")).collect();
        let refs: Vec<&str> = versions.iter().map(String::as_str).collect();
        let mut reg =
            MemoryRegistry { tokens: Vec::new(), packages: vec![view("@scope/big", &refs, &[("latest", "1.0.49")])] };
        let change = |kind, version: &str| Change {
            seq: 0,
            package: "@scope/big".into(),
            kind,
            version: version.into(),
            qualifier: String::new(),
            at_ms: 0,
        };
        type Step = Box<dyn Fn(&mut PackageView) -> Vec<Change>>;
        let steps: Vec<Step> = vec![
            Box::new(move |v| {
                v.artifacts.push(artifact("@scope/big", "2.0.0", 1_800_000_000_000));
                v.tags = vec![("latest".into(), "2.0.0".into())];
                v.modified_ms += 1;
                vec![change(ChangeKind::Added, "2.0.0"), change(ChangeKind::Updated, "")]
            }),
            Box::new(move |v| {
                v.artifacts[3].deprecated = Some("broken".into());
                vec![change(ChangeKind::Updated, "1.0.3")]
            }),
            Box::new(move |v| {
                v.tags = vec![("latest".into(), "1.0.7".into()), ("next".into(), "2.0.0".into())];
                vec![change(ChangeKind::Updated, "")]
            }),
            Box::new(move |v| {
                v.artifacts.retain(|a| a.version != "1.0.5");
                vec![change(ChangeKind::Removed, "1.0.5")]
            }),
            Box::new(move |v| {
                v.artifacts.push(artifact("@scope/big", "1.0.5", 1_900_000_000_000));
                vec![change(ChangeKind::Added, "1.0.5")]
            }),
        ];
        for accept in ["application/json", packument::ABBREVIATED] {
            let req =
                Request { headers: vec![("accept".into(), accept.into())], ..request("GET", "/@scope%2fbig", None) };
            let first = handle(&reg, &req, Vec::new(), &Limits::TEST).unwrap();
            let Reply::Respond(Response { body: mut kept, .. }) = first.reply else { panic!("a response") };
            let mut layout = first.keep.unwrap().layout.expect("a packument is kept in parts");
            let original = reg.packages[0].clone();
            for (i, step) in steps.iter().enumerate() {
                let changes = step(&mut reg.packages[0]);
                let parts = packument_parts(&reg, &req, &changes).unwrap().expect("parts");
                assert!(parts.items.len() <= 1, "step {i}: only the changed version is rendered");
                kept = splice(&kept, &layout, &parts);
                let whole = handle(&reg, &req, Vec::new(), &Limits::TEST).unwrap();
                let Reply::Respond(Response { body, .. }) = whole.reply else { panic!("a response") };
                assert_eq!(String::from_utf8_lossy(&kept), String::from_utf8_lossy(&body), "{accept}, step {i}");
                layout = whole.keep.unwrap().layout.unwrap();
            }
            reg.packages[0] = original;
        }
    }

    /// A request as alice; writes get a registry that refuses to load whole packages, so every
    /// write test also shows that a write reads only the package's summary.
    fn call(method: &str, path: &str, body: Value) -> Result<Outcome, Error> {
        let body = if body.is_null() { Vec::new() } else { serde_json::to_vec(&body).unwrap() };
        let req = request(method, path, Some("alice"));
        if method == "GET" {
            handle(&registry(), &req, body, &Limits::TEST)
        } else {
            handle(&SummaryOnly(&registry()), &req, body, &Limits::TEST)
        }
    }

    fn response(outcome: &Outcome) -> (u16, Value) {
        match &outcome.reply {
            Reply::Respond(Response { status, body, .. }) => (*status, serde_json::from_slice(body).unwrap()),
            _ => panic!("a file, not a response"),
        }
    }

    fn publish_body(name: &str, version: &str, tgz: &[u8]) -> Value {
        let data = base64::engine::general_purpose::STANDARD.encode(tgz);
        json!({
            "_id": name, "name": name, "dist-tags": {"next": version},
            "versions": {version: {"name": name, "version": version}},
            "_attachments": {format!("{name}-{version}.tgz"): {"content_type": "application/octet-stream", "data": data, "length": tgz.len()}},
        })
    }

    #[test]
    fn packuments_by_accept_header() {
        let mut req = request("GET", "/@scope%2fdemo", None);
        let (status, doc) = response(&handle(&registry(), &req, Vec::new(), &Limits::TEST).unwrap());
        assert_eq!(status, 200);
        let summary = registry().summary("@scope/demo").unwrap();
        assert_eq!(doc["_rev"], packument::rev(&summary));
        req.headers =
            vec![("accept".into(), "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*".into())];
        let outcome = handle(&registry(), &req, Vec::new(), &Limits::TEST).unwrap();
        let Reply::Respond(r) = &outcome.reply else { panic!() };
        assert_eq!(r.headers, [("content-type".to_string(), packument::ABBREVIATED.to_string())]);
        let (_, doc) = response(&outcome);
        assert!(doc.get("_rev").is_none() && doc["modified"].is_string());
        req.query = "write=true".into();
        let (_, doc) = response(&handle(&registry(), &req, Vec::new(), &Limits::TEST).unwrap());
        assert!(doc["_rev"].is_string(), "?write=true always gets the full packument");

        let (_, doc) = response(&call("GET", "/@scope%2fdemo/beta", Value::Null).unwrap());
        assert_eq!(doc["version"], "1.0.0");
        assert_eq!(call("GET", "/nope", Value::Null).unwrap_err().kind, ErrorKind::NotFound);
    }

    #[test]
    fn tarballs_are_served_files() {
        for path in ["/@scope/demo/-/demo-1.0.0.tgz", "/@scope%2fdemo/-/demo-1.0.0.tgz"] {
            let outcome = call("GET", path, Value::Null).unwrap();
            let Reply::ServeFile(f) = outcome.reply else { panic!("{path}") };
            assert_eq!((f.package.as_str(), f.file_name.as_str()), ("@scope/demo", "demo-1.0.0.tgz"));
            assert_eq!(f.content_type, "application/octet-stream");
        }
    }

    #[test]
    fn publish_decodes_the_attachment() {
        let tgz = good_tgz("@scope/demo", "2.0.0");
        let outcome = call("PUT", "/@scope%2fdemo", publish_body("@scope/demo", "2.0.0", &tgz)).unwrap();
        let [Effect::Publish(upload)] = outcome.effects.as_slice() else { panic!("{:?}", effects(&outcome)) };
        assert_eq!(upload.file_name, "demo-2.0.0.tgz");
        assert_eq!(upload.tags, ["next"]);
        // The host decodes the attachment from the body: the range is exactly its base64 text.
        let body = serde_json::to_vec(&publish_body("@scope/demo", "2.0.0", &tgz)).unwrap();
        let UploadSource::BodyBase64Range((start, len)) = upload.source else { panic!("not a base64 range") };
        let text = &body[start as usize..(start + len) as usize];
        assert_eq!(base64::engine::general_purpose::STANDARD.decode(text).unwrap(), tgz);
    }

    #[test]
    fn publish_follows_the_operators_limit() {
        let tgz = good_tgz("demo", "2.0.0");
        let body = serde_json::to_vec(&publish_body("demo", "2.0.0", &tgz)).unwrap();
        let small = Limits { max_upload_bytes: tgz.len() as u64 - 1, ..Limits::TEST };
        let e = handle(&registry(), &request("PUT", "/demo", Some("alice")), body.clone(), &small).unwrap_err();
        assert_eq!(e.kind, ErrorKind::TooLarge, "{}", e.message);
        // A body far over the old fixed 64 MiB cap is fine when the operator allows it: only the
        // document around the attachment is held.
        let limits = Limits { max_upload_bytes: tgz.len() as u64, ..Limits::TEST };
        assert!(handle(&registry(), &request("PUT", "/demo", Some("alice")), body, &limits).is_ok());
    }

    #[test]
    fn escaped_attachments_are_decoded_in_the_plugin() {
        let tgz = good_tgz("demo", "2.0.0");
        let text = serde_json::to_string(&publish_body("demo", "2.0.0", &tgz)).unwrap().replace('/', "\\/");
        let outcome =
            handle(&registry(), &request("PUT", "/demo", Some("alice")), text.into_bytes(), &Limits::TEST).unwrap();
        let [Effect::Publish(upload)] = outcome.effects.as_slice() else { panic!("{:?}", effects(&outcome)) };
        assert!(matches!(&upload.source, UploadSource::Bytes(b) if *b == tgz));
    }

    #[test]
    fn publish_refuses_mismatches() {
        let tgz = good_tgz("demo", "2.0.0");
        let e = call("PUT", "/other", publish_body("demo", "2.0.0", &tgz)).unwrap_err();
        assert!(e.message.contains("does not match the URL"), "{}", e.message);

        let mut body = publish_body("demo", "2.0.0", &tgz);
        body["versions"]["2.0.0"]["version"] = json!("3.0.0");
        let e = call("PUT", "/demo", body).unwrap_err();
        assert!(e.message.contains("another package or version"), "{}", e.message);

        let mut body = publish_body("demo", "2.0.0", &tgz);
        body["_attachments"] = json!({"demo-3.0.0.tgz": body["_attachments"]["demo-2.0.0.tgz"].clone()});
        let e = call("PUT", "/demo", body).unwrap_err();
        assert!(e.message.contains("no attachment demo-2.0.0.tgz"), "{}", e.message);

        let mut body = publish_body("demo", "2.0.0", &tgz);
        body["_attachments"]["demo-2.0.0.tgz"]["length"] = json!(tgz.len() + 1);
        assert!(call("PUT", "/demo", body).unwrap_err().message.contains("cut off"));

        let mut body = publish_body("demo", "2.0.0", &tgz);
        body["_attachments"]["demo-2.0.0.tgz"]["data"] = json!("not base64!");
        assert!(call("PUT", "/demo", body).unwrap_err().message.contains("not valid base64"));

        // A republished version is the store's to refuse (its unique key, in the publish's
        // transaction); `errors::render` words that as npm does, and tests/npm.rs sees npm print it.
        let outcome = call("PUT", "/demo", publish_body("demo", "1.0.0", &good_tgz("demo", "1.0.0"))).unwrap();
        assert_eq!(effects(&outcome), ["publish demo-1.0.0.tgz"]);

        let e = call("PUT", "/demo", json!({"name": "demo", "_attachments": {"x": {"data": ""}}})).unwrap_err();
        assert!(e.message.contains("exactly one version"), "{}", e.message);

        let e = call("PUT", "/demo", json!("not a document")).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid);

        let e = handle(&registry(), &request("PUT", "/demo", None), Vec::new(), &Limits::TEST).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unauthorized);
    }

    /// The revision npm would have read from the packument.
    fn rev_of(name: &str) -> String {
        full_doc(name)["_rev"].as_str().unwrap().to_string()
    }

    fn full_doc(name: &str) -> Value {
        let view = registry().package(name).unwrap();
        serde_json::to_value(packument::full(&view, BASE)).unwrap()
    }

    /// The effects in a short form that tests compare.
    fn effects(outcome: &Outcome) -> Vec<String> {
        outcome
            .effects
            .iter()
            .map(|e| match e {
                Effect::Publish(u) => format!("publish {}", u.file_name),
                Effect::SetTag(t) => format!("tag {} {}={}", t.package, t.tag, t.version.as_deref().unwrap_or("-")),
                Effect::Deprecate(d) => {
                    format!("deprecate {}@{} {}", d.package, d.version, d.message.as_deref().unwrap_or("-"))
                }
                Effect::Yank(y) => format!("yank {}@{}", y.package, y.version),
                Effect::DeleteVersion(v) => format!("delete {}@{}", v.package, v.version),
                Effect::DeletePackage(p) => format!("delete {p}"),
                Effect::RevokeToken(key) => format!("revoke {key}"),
            })
            .collect()
    }

    #[test]
    fn deprecate_diffs_versions() {
        let mut doc = full_doc("@scope/demo");
        doc["versions"]["1.0.0"]["deprecated"] = json!("");
        doc["versions"]["1.1.0"]["deprecated"] = json!("use 2");
        let outcome = call("PUT", "/@scope%2fdemo", doc).unwrap();
        assert_eq!(effects(&outcome), ["deprecate @scope/demo@1.0.0 -", "deprecate @scope/demo@1.1.0 use 2"]);

        // A plain PUT never removes versions or moves tags, even when they are missing.
        let mut doc = full_doc("@scope/demo");
        doc["versions"].as_object_mut().unwrap().remove("1.0.0");
        doc["dist-tags"] = json!({});
        assert!(call("PUT", "/@scope%2fdemo", doc).unwrap().effects.is_empty());
    }

    #[test]
    fn unpublish_one_version() {
        // What npm sends: the version removed, its tags removed, `latest` moved.
        let mut doc = full_doc("@scope/demo");
        doc["versions"].as_object_mut().unwrap().remove("1.1.0");
        doc["dist-tags"] = json!({"latest": "1.0.0", "beta": "1.0.0"});
        let outcome = call("PUT", &format!("/@scope%2fdemo/-rev/{}", rev_of("@scope/demo")), doc).unwrap();
        assert_eq!(effects(&outcome), ["tag @scope/demo latest=1.0.0", "delete @scope/demo@1.1.0"]);

        let mut doc = full_doc("@scope/demo");
        doc["dist-tags"] = json!({"latest": "1.1.0"});
        let outcome = call("PUT", &format!("/@scope%2fdemo/-rev/{}", rev_of("@scope/demo")), doc).unwrap();
        assert_eq!(effects(&outcome), ["tag @scope/demo beta=-"]);

        let e = call("PUT", "/@scope%2fdemo/-rev/1-0", full_doc("@scope/demo")).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Conflict);
        assert!(e.message.starts_with(STALE_REV));

        let mut doc = full_doc("demo");
        doc["versions"] = json!({});
        assert!(call("PUT", &format!("/demo/-rev/{}", rev_of("demo")), doc)
            .unwrap_err()
            .message
            .contains("every version"));

        let outcome =
            call("DELETE", &format!("/@scope/demo/-/demo-1.1.0.tgz/-rev/{}", rev_of("@scope/demo")), Value::Null)
                .unwrap();
        assert_eq!(effects(&outcome), ["delete @scope/demo@1.1.0"]);
        let outcome =
            call("DELETE", &format!("/@scope/demo/-/demo-9.0.0.tgz/-rev/{}", rev_of("@scope/demo")), Value::Null)
                .unwrap();
        assert!(outcome.effects.is_empty(), "a tarball already gone is fine");
    }

    #[test]
    fn unpublish_whole_package() {
        let outcome = call("DELETE", &format!("/demo/-rev/{}", rev_of("demo")), Value::Null).unwrap();
        assert_eq!(effects(&outcome), ["delete demo"]);
        assert_eq!(call("DELETE", "/gone/-rev/1-0", Value::Null).unwrap_err().kind, ErrorKind::NotFound);
    }

    #[test]
    fn dist_tag_routes() {
        let (_, tags) = response(&call("GET", "/-/package/@scope%2fdemo/dist-tags", Value::Null).unwrap());
        assert_eq!(tags, json!({"latest": "1.1.0", "beta": "1.0.0"}));

        let outcome = call("PUT", "/-/package/@scope%2fdemo/dist-tags/next", json!("1.0.0")).unwrap();
        assert_eq!(effects(&outcome), ["tag @scope/demo next=1.0.0"]);
        assert_eq!(response(&outcome).1["next"], "1.0.0");

        let outcome = call("DELETE", "/-/package/@scope%2fdemo/dist-tags/beta", Value::Null).unwrap();
        assert_eq!(effects(&outcome), ["tag @scope/demo beta=-"]);

        let e = call("PUT", "/-/package/demo/dist-tags/next", json!("9.9.9")).unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert_eq!(call("PUT", "/-/package/demo/dist-tags/1.x", json!("1.0.0")).unwrap_err().kind, ErrorKind::Invalid);
        assert_eq!(
            call("DELETE", "/-/package/demo/dist-tags/latest", Value::Null).unwrap_err().kind,
            ErrorKind::Invalid
        );
    }

    #[test]
    fn whoami_ping_and_search() {
        let (_, me) = response(&call("GET", "/-/whoami", Value::Null).unwrap());
        assert_eq!(me, json!({"username": "alice"}));
        let e = handle(&registry(), &request("GET", "/-/whoami", None), Vec::new(), &Limits::TEST).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unauthorized);
        assert!(e.message.contains("add //reg.test/npm/:_authToken=TOKEN"), "{}", e.message);
        assert_eq!(response(&call("GET", "/-/ping", Value::Null).unwrap()).1, json!({}));

        let (_, found) = response(&call("GET", "/-/v1/search?text=scope&size=5&from=0", Value::Null).unwrap());
        assert_eq!(found["total"], 1);
        let pkg = &found["objects"][0]["package"];
        assert_eq!(
            (pkg["name"].as_str(), pkg["version"].as_str(), pkg["scope"].as_str()),
            (Some("@scope/demo"), Some("1.1.0"), Some("scope"))
        );
        assert_eq!(pkg["maintainers"], json!([]));
    }

    #[test]
    fn reads_declare_what_they_depend_on() {
        let package = |name: &str| Some(vec![Source::Package(name.into())]);
        let mut req = request("GET", "/@scope%2fdemo", None);
        for accept in ["application/json", packument::ABBREVIATED] {
            req.headers = vec![("accept".into(), accept.into())];
            let keep = handle(&registry(), &req, Vec::new(), &Limits::TEST).unwrap().keep.expect("kept");
            assert_eq!(Some(keep.depends_on), package("@scope/demo"));
            assert_eq!(keep.vary, ["accept"], "full and abbreviated are two documents");
            assert!(!keep.append_only);
        }
        let version = call("GET", "/@scope%2fdemo/beta", Value::Null).unwrap();
        assert_eq!(version.kept_for().map(<[Source]>::to_vec), package("@scope/demo"));
        let tags = call("GET", "/-/package/@scope%2fdemo/dist-tags", Value::Null).unwrap();
        assert_eq!(tags.kept_for().map(<[Source]>::to_vec), package("@scope/demo"));
        let search = call("GET", "/-/v1/search?text=demo", Value::Null).unwrap();
        assert_eq!(search.kept_for(), Some(&[Source::Repository][..]));
        assert_eq!(call("GET", "/-/ping", Value::Null).unwrap().kept_for(), Some(&[][..]));

        // The caller's own answers, files and writes are never kept.
        assert!(call("GET", "/-/whoami", Value::Null).unwrap().keep.is_none());
        assert!(call("GET", "/-/npm/v1/tokens", Value::Null).unwrap().keep.is_none());
        assert!(call("GET", "/demo/-/demo-1.0.0.tgz", Value::Null).unwrap().keep.is_none());
        let tag = call("PUT", "/-/package/@scope%2fdemo/dist-tags/next", json!("1.0.0")).unwrap();
        assert!(tag.keep.is_none());
    }

    fn token(key: &str, scopes: &[&str]) -> TokenInfo {
        TokenInfo {
            key: key.into(),
            name: format!("{key}-name"),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            repository: None,
            created_ms: 1_700_000_000_000,
            expires_ms: None,
            last_used_ms: Some(1_700_000_500_000),
        }
    }

    #[test]
    fn token_list_and_revoke() {
        let mut reg = registry();
        reg.tokens = vec![token("a1b2c3d4", &["read"]), token("e5f6a7b8", &["read", "publish"])];
        let req = request("GET", "/-/npm/v1/tokens", Some("alice"));
        let (status, list) = response(&handle(&reg, &req, Vec::new(), &Limits::TEST).unwrap());
        assert_eq!(status, 200);
        assert_eq!(list["total"], 2);
        assert!(list["urls"]["next"].is_null(), "npm pages by urls.next; one page holds all");
        let first = &list["objects"][0];
        assert_eq!(first["key"], "a1b2c3d4");
        assert_eq!(first["token"], "sluice_");
        assert_eq!(first["name"], "a1b2c3d4-name");
        assert_eq!(first["readonly"], true);
        assert_eq!(first["automation"], false);
        assert!(first["cidr_whitelist"].is_null());
        assert_eq!(first["created"], "2023-11-14T22:13:20.000Z");
        assert_eq!(first["updated"], "2023-11-14T22:21:40.000Z");
        assert_eq!(list["objects"][1]["readonly"], false);

        let anonymous = request("GET", "/-/npm/v1/tokens", None);
        assert_eq!(handle(&reg, &anonymous, Vec::new(), &Limits::TEST).unwrap_err().kind, ErrorKind::Unauthorized);

        let revoke = call("DELETE", "/-/npm/v1/tokens/token/e5f6a7b8", Value::Null).unwrap();
        assert_eq!(effects(&revoke), ["revoke e5f6a7b8"]);
        let Reply::Respond(r) = &revoke.reply else { panic!() };
        assert_eq!(r.status, 204);
        let anonymous = request("DELETE", "/-/npm/v1/tokens/token/e5f6a7b8", None);
        assert_eq!(handle(&reg, &anonymous, Vec::new(), &Limits::TEST).unwrap_err().kind, ErrorKind::Unauthorized);
        assert_eq!(call("PUT", "/-/npm/v1/tokens", Value::Null).unwrap_err().kind, ErrorKind::Unsupported);
    }

    /// A package with 10,000 versions renders right (the render is linear in versions; see
    /// `packument::versions`) and a write against it reads only its summary.
    #[test]
    fn ten_thousand_versions() {
        let versions: Vec<String> = (0..10_000).map(|i| format!("1.{}.{}", i / 100, i % 100)).collect();
        let refs: Vec<&str> = versions.iter().map(String::as_str).collect();
        let big = view("big", &refs, &[("latest", "1.99.99"), ("old", "1.0.0")]);
        let reg = MemoryRegistry::with_packages(vec![big]);

        let mut req = request("GET", "/big", None);
        let (_, full) = response(&handle(&reg, &req, Vec::new(), &Limits::TEST).unwrap());
        assert_eq!(full["versions"].as_object().unwrap().len(), 10_000);
        assert_eq!(full["time"].as_object().unwrap().len(), 10_002);
        assert_eq!(full["dist-tags"], json!({"latest": "1.99.99", "old": "1.0.0"}));
        assert_eq!(full["versions"]["1.42.7"]["dist"]["tarball"], "http://reg.test/npm/big/-/big-1.42.7.tgz");
        req.headers = vec![("accept".into(), packument::ABBREVIATED.into())];
        let (_, abbreviated) = response(&handle(&reg, &req, Vec::new(), &Limits::TEST).unwrap());
        assert_eq!(abbreviated["versions"].as_object().unwrap().len(), 10_000);

        let tgz = good_tgz("big", "2.0.0");
        let req = request("PUT", "/big", Some("alice"));
        let body = serde_json::to_vec(&publish_body("big", "2.0.0", &tgz)).unwrap();
        // A publish reads nothing of the package: an empty registry gives the same outcome.
        let outcome = handle(&MemoryRegistry::default(), &req, body, &Limits::TEST).unwrap();
        assert_eq!(effects(&outcome), ["publish big-2.0.0.tgz"]);
    }
}
