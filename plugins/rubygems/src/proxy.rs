//! RubyGems in a proxy repository (`upstream = "https://rubygems.org"`, contract 0.4.0): the
//! plugin asks the upstream's compact index through the host (which adds credentials, guards,
//! times out and keeps the answers for `metadata_ttl`) and merges it with the gems published to
//! this repository, which win per version and platform.
//!
//! The compact index has one rule every merge must keep: the checksum a `/versions` line gives
//! for a gem is the MD5 of the `/info/NAME` body that is served, or Bundler downloads that
//! `/info` again on every run; and each document's `ETag` is the MD5 of its whole body, or
//! Bundler (which checks it after appending a `Range` answer, and after a whole download)
//! retries and then aborts. So:
//!
//! - `/info/NAME` of a gem with no version of this repository's own is the upstream's body,
//!   byte for byte: its MD5 is the checksum the upstream's `/versions` already gives. With own
//!   versions it is the upstream's lines without the versions published here, then this
//!   repository's lines.
//! - `/versions` is the upstream's body, byte for byte, and after it one line per gem whose
//!   `/info` here differs from the upstream's: the versions to add (`1.0.0`) and remove
//!   (`-2.0.0`) to get what this `/info` lists, with its MD5. That is how the compact index
//!   itself appends a push or a yank, so every client reads the gem's last line's checksum and
//!   the versions the lines add up to. Gems only this repository has get the line a local
//!   `/versions` would give. Without own gems the document *is* the upstream's, so while the
//!   upstream only appends, a client holding it fetches the new end with a `Range` request.
//! - A `Range` request (Bundler sends `Range: bytes=N-` with `If-None-Match` the MD5 of its N+1
//!   bytes) is answered 206 only when the MD5 of this document's first N+1 bytes is that ETag:
//!   then the client's copy is a prefix and the tail is right. Otherwise it gets the whole body
//!   (200), which Bundler takes as well. Nothing is kept by the host (the document depends on
//!   the upstream, whose answers the host keeps), so the plugin answers validators itself.
//!
//! `.gem` files not stored here are a `fetch-file` of the upstream's `/gems/FILE` with the
//! `checksum:` (sha256) of the upstream's `/info` line for that version, which the host checks
//! before it stores the file. Quick specs of upstream versions are the upstream's bytes.
//!
//! `min_age`: the compact index has no publish times, so with a cut-off the plugin reads the
//! upstream's `/api/v1/versions/NAME.json` (`created_at` per version and platform, as
//! rubygems.org and Sluice give it) for the gem's `/info`, and withholds the upstream versions
//! published after the cut-off, or with no readable time. A version already fetched stays
//! offered: it was old enough then and only gets older. `/versions` is not filtered (that would
//! cost one request per gem of the upstream): its lines still name young versions with the
//! upstream's checksum, so Bundler fetches the filtered `/info` of such a gem again (a 304 once it
//! holds it) and resolves from that; their `.gem` is never fetched.
//!
//! In a gated proxy (`gate = "pipeline"`) a fetched version whose pipeline has not passed is in
//! quarantine (the SDK's `quarantined_versions`): it is left out of the gem's `/info` and its
//! quick spec is refused, so `gem` and Bundler resolve to a version they may have. That `/info`
//! then differs from the upstream's, so `/versions` gets the gem's correction line with its MD5,
//! as for a gem with own versions. A gem with no visible version at all is not in the view
//! `/versions` reads, so it gets no line: Bundler sees the upstream's checksum, fetches the gem's
//! `/info` again (a 304 once it holds it) and resolves from that, as with `min_age`. Its `.gem`
//! is still a `fetch-file` of the held file, which the host answers with a 403 naming the
//! pipeline and its verdict.
//!
//! When the upstream fails and the host has nothing kept, what is stored here answers, every
//! document rendered from the same files so that they agree. A version fetched before and since
//! deleted upstream is not offered any more, but its stored `.gem` stays downloadable.

use crate::index;
use crate::protocol::{gem_not_found, quick_spec};
use base64::Engine;
use md5::{Digest, Md5};
use sha2::Sha256;
use sluice_plugin_sdk::http;
use sluice_plugin_sdk::{
    quarantined_versions, Artifact, Error, ErrorKind, Outcome, PackageView, Registry, Request, Response, UpstreamFile,
};
use std::collections::{BTreeSet, HashMap, HashSet};

/// What the upstream said, reduced to what a proxy decides on.
enum Upstream {
    Found(Vec<u8>),
    /// 404 or 410: it does not have it (any more).
    Missing,
    /// It failed or answered something unusable with nothing kept to stand in, or the
    /// repository is offline with nothing kept (a `not-found` error): what is stored here
    /// answers, as when the upstream is down.
    Failed(Error),
}

/// Asks the upstream `path`, about gem `name` when it is about one (a group keeps a private gem
/// from the upstream by that name); none for `/versions` and `/names`.
fn ask(registry: &impl Registry, name: Option<&str>, path: &str, accept: &str) -> Upstream {
    let answer = match name {
        Some(name) => registry.upstream_get_for(name, path, Some(accept)),
        None => registry.upstream_get(path, Some(accept)),
    };
    match answer {
        Ok(a) if a.status == 200 => Upstream::Found(a.body),
        Ok(a) if a.status == 404 || a.status == 410 => Upstream::Missing,
        Ok(a) => Upstream::Failed(Error::unavailable(format!("the upstream answered {} for {path}", a.status))),
        Err(e) => Upstream::Failed(e),
    }
}

const COMPACT: &str = "text/plain";

/// The `VERSION[-PLATFORM]` a compact index line or file name uses for an artifact.
fn key_of(a: &Artifact) -> String {
    if a.qualifier.is_empty() {
        a.version.clone()
    } else {
        format!("{}-{}", a.version, a.qualifier)
    }
}

/// The compact index body's lines after its `---` header.
fn lines_of(body: &str) -> impl Iterator<Item = &str> {
    let rest = match body.split_once("---\n") {
        Some((_, rest)) => rest,
        None => body,
    };
    rest.lines().filter(|l| !l.is_empty())
}

/// The `VERSION[-PLATFORM]` of an `/info` line.
fn info_key(line: &str) -> &str {
    line.split(' ').next().unwrap_or_default()
}

/// The version of a `VERSION[-PLATFORM]` key (a RubyGems version has no `-`).
fn version_of(key: &str) -> &str {
    key.split('-').next().unwrap_or_default()
}

/// The `checksum:` (sha256 hex) of an `/info` line.
fn info_checksum(line: &str) -> Option<String> {
    let (_, requirements) = line.split_once('|')?;
    requirements
        .split(',')
        .find_map(|r| r.strip_prefix("checksum:"))
        .map(str::trim)
        .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_ascii_lowercase)
}

/// A gem as this repository holds it: the view, and which of its versions were published here
/// (not fetched from the upstream).
struct Local {
    view: Option<PackageView>,
    /// Published here: these win over the upstream's files of the same version and platform.
    own: PackageView,
    /// Versions held because they were fetched from the upstream.
    cached: HashSet<String>,
}

fn local(registry: &impl Registry, name: &str) -> Local {
    let view = registry.package(name);
    let cached: HashSet<String> = registry.cached_versions(name).into_iter().collect();
    let own = own_of(view.as_ref(), name, &cached);
    Local { view, own, cached }
}

fn own_of(view: Option<&PackageView>, name: &str, cached: &HashSet<String>) -> PackageView {
    match view {
        Some(v) => PackageView {
            artifacts: v.artifacts.iter().filter(|a| !cached.contains(&a.version)).cloned().collect(),
            ..v.clone()
        },
        None => {
            PackageView { name: name.into(), created_ms: 0, modified_ms: 0, tags: Vec::new(), artifacts: Vec::new() }
        }
    }
}

/// The upstream versions a repository with `min_age` may offer.
struct Gate {
    /// `VERSION[-PLATFORM]` keys the upstream says were published before the cut-off.
    keys: HashSet<String>,
    /// Versions fetched before: they were old enough then.
    fetched: HashSet<String>,
}

impl Gate {
    fn allows(&self, key: &str) -> bool {
        self.keys.contains(key) || self.fetched.contains(key.split('-').next().unwrap_or_default())
    }
}

/// The `min_age` gate of a gem, from the upstream's `/api/v1/versions/NAME.json`; none when the
/// repository sets no cut-off. Without readable times nothing new can be shown to be old enough.
fn gate(registry: &impl Registry, name: &str, fetched: &HashSet<String>) -> Option<Gate> {
    let cutoff = registry.upstream_published_before()?;
    let path = format!("/api/v1/versions/{}.json", http::encode_segment(name));
    let keys = match ask(registry, Some(name), &path, "application/json") {
        Upstream::Found(body) => published_before(&body, cutoff),
        Upstream::Missing | Upstream::Failed(_) => HashSet::new(),
    };
    Some(Gate { keys, fetched: fetched.clone() })
}

/// The `VERSION[-PLATFORM]` keys of a `/api/v1/versions/NAME.json` body published at or before
/// `cutoff` (ms since the epoch).
pub fn published_before(body: &[u8], cutoff: u64) -> HashSet<String> {
    let Ok(serde_json::Value::Array(items)) = serde_json::from_slice(body) else { return HashSet::new() };
    items
        .iter()
        .filter_map(|item| {
            let number = item.get("number")?.as_str()?;
            let platform = item.get("platform").and_then(|p| p.as_str()).unwrap_or("ruby");
            let at = humantime::parse_rfc3339_weak(item.get("created_at")?.as_str()?).ok()?;
            let at = at.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as u64;
            (at <= cutoff).then(|| if platform == "ruby" { number.to_string() } else { format!("{number}-{platform}") })
        })
        .collect()
}

/// The merged `/info/NAME`; none when neither the upstream nor this repository has the gem.
fn merged_info(registry: &impl Registry, name: &str) -> Result<Option<String>, Error> {
    let local = local(registry, name);
    let own_lines = index::info(&local.own)?;
    let own_keys: HashSet<String> = local.own.artifacts.iter().map(key_of).collect();
    let upstream = match ask(registry, Some(name), &format!("/info/{}", http::encode_segment(name)), COMPACT) {
        Upstream::Found(body) => String::from_utf8(body)
            .map_err(|_| Error::unavailable(format!("the upstream's /info/{name} is not text")))?,
        Upstream::Missing => {
            return Ok(local.own.artifacts.iter().any(Artifact::is_live).then_some(own_lines));
        }
        // Nothing from the upstream and nothing kept: everything stored here, fetched or not.
        Upstream::Failed(e) => {
            return match &local.view {
                Some(v) => Ok(Some(index::info(v)?)),
                None => Err(e),
            }
        }
    };
    let gate = gate(registry, name, &local.cached);
    let held = quarantined_versions(registry, name);
    let keep = |line: &&str| {
        let key = info_key(line);
        !own_keys.contains(key) && gate.as_ref().is_none_or(|g| g.allows(key)) && !held.contains(version_of(key))
    };
    let kept: Vec<&str> = lines_of(&upstream).filter(keep).collect();
    if kept.len() == lines_of(&upstream).count() && own_keys.is_empty() {
        // The upstream's bytes: the checksum its `/versions` gives is this body's MD5.
        return Ok(Some(upstream));
    }
    let mut body = String::from("---\n");
    for line in kept {
        body.push_str(line);
        body.push('\n');
    }
    body.push_str(own_lines.strip_prefix("---\n").unwrap_or(&own_lines));
    Ok(Some(body))
}

/// `GET /info/NAME` of a proxy repository.
pub fn info(registry: &impl Registry, req: &Request, name: &str) -> Result<Outcome, Error> {
    let info = merged_info(registry, name)?.ok_or_else(|| gem_not_found(name))?;
    Ok(Outcome::respond(conditional(req, info.into_bytes(), Digests::Both)))
}

/// `GET /versions` of a proxy repository: the upstream's, then a line for each gem whose `/info`
/// here is not the upstream's (see the module comment).
pub fn versions(registry: &impl Registry, req: &Request) -> Result<Outcome, Error> {
    let upstream = match ask(registry, None, "/versions", COMPACT) {
        Upstream::Found(body) => body,
        // No compact index to merge with: this repository's own, from every stored file.
        Upstream::Missing | Upstream::Failed(_) => {
            let body = index::versions(&registry.all_packages())?;
            return Ok(Outcome::respond(conditional(req, body.into_bytes(), Digests::EtagOnly)));
        }
    };
    let packages = registry.all_packages();
    if packages.is_empty() {
        // Nothing here: the upstream's bytes as they are (no pass over them but the ETag's).
        return Ok(Outcome::respond(conditional(req, upstream, Digests::EtagOnly)));
    }
    let mut text =
        String::from_utf8(upstream).map_err(|_| Error::unavailable("the upstream's /versions is not text"))?;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    // Gems with versions of their own: only their lines of the upstream's are read.
    let mut owners: HashMap<String, PackageView> = HashMap::new();
    for p in &packages {
        let cached: HashSet<String> = registry.cached_versions(&p.name).into_iter().collect();
        let own = own_of(Some(p), &p.name, &cached);
        // A version held but not visible is in quarantine (the SDK's rule, on the view already
        // read): the gem's `/info` here leaves it out, so it needs a line as an own one does.
        let quarantined = cached.iter().any(|v| !p.artifacts.iter().any(|a| &a.version == v));
        if !own.artifacts.is_empty() || quarantined {
            owners.insert(p.name.clone(), own);
        }
    }
    if owners.is_empty() {
        return Ok(Outcome::respond(conditional(req, text.into_bytes(), Digests::EtagOnly)));
    }
    let listed = upstream_versions(&text, &owners);
    let mut tail = String::new();
    let mut names: Vec<&String> = owners.keys().collect();
    names.sort();
    for name in names {
        let own = &owners[name];
        let line = match listed.get(name.as_str()) {
            // Only held in quarantine, and gone upstream: nothing to list.
            None if own.artifacts.is_empty() => continue,
            // Only here: the line a local `/versions` gives.
            None => index::versions(std::slice::from_ref(own))?
                .split_once("---\n")
                .map(|(_, l)| l.to_string())
                .unwrap_or_default(),
            Some(upstream_set) => {
                let Some(info) = merged_info(registry, name)? else { continue };
                let here: BTreeSet<String> = lines_of(&info).map(|l| info_key(l).to_string()).collect();
                correction(name, upstream_set, &here, &index::md5_hex(info.as_bytes()))
            }
        };
        tail.push_str(&line);
    }
    text.push_str(&tail);
    Ok(Outcome::respond(conditional(req, text.into_bytes(), Digests::EtagOnly)))
}

/// The versions a compact index `/versions` body lists for each of `names`, as Bundler adds them
/// up (`-VERSION` removes one).
fn upstream_versions<'a, T>(text: &str, names: &'a HashMap<String, T>) -> HashMap<&'a str, BTreeSet<String>> {
    let mut out: HashMap<&str, BTreeSet<String>> = HashMap::new();
    for line in lines_of(text) {
        let mut parts = line.split(' ').filter(|p| !p.is_empty());
        let (Some(name), Some(list)) = (parts.next(), parts.next()) else { continue };
        let Some((name, _)) = names.get_key_value(name) else { continue };
        let set = out.entry(name.as_str()).or_default();
        for v in list.split(',') {
            match v.strip_prefix('-') {
                Some(gone) => set.remove(gone),
                None => set.insert(v.to_string()),
            };
        }
    }
    out
}

/// The line that turns what the upstream's `/versions` lists for `name` into what `here` (this
/// repository's `/info`) lists, with its checksum. A line must name a version (clients split it
/// on spaces), so one that would change nothing but the checksum removes and adds one again.
fn correction(name: &str, upstream: &BTreeSet<String>, here: &BTreeSet<String>, md5: &str) -> String {
    let mut list: Vec<String> = here.difference(upstream).cloned().collect();
    list.extend(upstream.difference(here).map(|v| format!("-{v}")));
    if list.is_empty() {
        match here.iter().next() {
            Some(v) => list = vec![format!("-{v}"), v.clone()],
            None => return String::new(),
        }
    }
    format!("{name} {} {md5}\n", list.join(","))
}

/// `GET /names`: the upstream's names and this repository's, sorted.
pub fn names(registry: &impl Registry, req: &Request) -> Result<Outcome, Error> {
    let mut names: BTreeSet<String> = registry
        .all_packages()
        .iter()
        .filter(|p| p.artifacts.iter().any(Artifact::is_live))
        .map(|p| p.name.clone())
        .collect();
    if let Upstream::Found(body) = ask(registry, None, "/names", COMPACT) {
        names.extend(lines_of(&String::from_utf8_lossy(&body)).map(str::to_string));
    }
    let names: Vec<String> = names.into_iter().collect();
    Ok(Outcome::respond(conditional(req, format!("---\n{}\n", names.join("\n")).into_bytes(), Digests::Both)))
}

/// An upstream gem file by its `NAME-VERSION[-PLATFORM]` stem: the gem's name, its version, and
/// the `/info` line that offers it (min_age applied). Names may contain `-`; a version starts
/// with a digit, so each `-` followed by one is a candidate split.
fn upstream_release(registry: &impl Registry, stem: &str) -> Result<Option<(String, String, String)>, Error> {
    let mut failure = None;
    for (dash, _) in stem.match_indices('-') {
        let (name, rest) = (&stem[..dash], &stem[dash + 1..]);
        if !rest.starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        let body = match ask(registry, Some(name), &format!("/info/{}", http::encode_segment(name)), COMPACT) {
            Upstream::Found(body) => String::from_utf8_lossy(&body).into_owned(),
            Upstream::Missing => continue,
            Upstream::Failed(e) => {
                failure = Some(e);
                continue;
            }
        };
        let Some(line) = lines_of(&body).find(|l| info_key(l) == rest) else { continue };
        let cached: HashSet<String> = registry.cached_versions(name).into_iter().collect();
        if gate(registry, name, &cached).is_some_and(|g| !g.allows(rest)) {
            continue;
        }
        let version = rest.split('-').next().unwrap_or(rest).to_string();
        return Ok(Some((name.to_string(), version, line.to_string())));
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(None),
    }
}

/// `GET /gems/FILE` of a file not stored here: the upstream's, verified against its `/info`'s
/// checksum.
pub fn gem_file(registry: &impl Registry, file: &str) -> Result<Outcome, Error> {
    let not_found = || Error::not_found(format!("no such gem file: {file}"));
    let stem = file.strip_suffix(".gem").ok_or_else(not_found)?;
    let (name, version, line) = upstream_release(registry, stem)?.ok_or_else(not_found)?;
    Ok(Outcome::fetch_file(UpstreamFile {
        url: format!("/gems/{}", http::encode_segment(file)),
        package: name,
        version,
        file_name: file.to_string(),
        content_type: "application/octet-stream".into(),
        sha512: None,
        sha256: info_checksum(&line),
        sha1: None,
    }))
}

/// `GET /quick/Marshal.4.8/STEM.gemspec.rz`: this repository's for a stored file, else the
/// upstream's bytes for a version it offers.
pub fn quick(registry: &impl Registry, stem: &str) -> Result<Outcome, Error> {
    match quick_spec(registry, stem) {
        Ok(outcome) => return Ok(Outcome { keep: None, ..outcome }),
        Err(e) if e.kind != ErrorKind::NotFound => return Err(e),
        Err(_) => {}
    }
    let not_found = || Error::not_found(format!("no such gem file: {stem}.gem"));
    let (name, version, _) = upstream_release(registry, stem)?.ok_or_else(not_found)?;
    // In quarantine: not offered (its `.gem` answers why it is held).
    if quarantined_versions(registry, &name).contains(&version) {
        return Err(Error::not_found(format!("{name} {version} is not offered: it is held in quarantine")));
    }
    let path = format!("/quick/Marshal.4.8/{}.gemspec.rz", http::encode_segment(stem));
    match ask(registry, Some(&name), &path, "application/octet-stream") {
        Upstream::Found(body) => Ok(Outcome::respond(http::bytes(200, "application/octet-stream", body))),
        Upstream::Missing => Err(not_found()),
        Upstream::Failed(e) => Err(e),
    }
}

/// How a proxied compact index document is sent.
#[derive(Clone, Copy, PartialEq)]
pub enum Digests {
    /// `ETag` (MD5) and the sha256 `Repr-Digest`/`Digest` that newer Bundlers verify.
    Both,
    /// `ETag` only: for `/versions`, which a proxy of rubygems.org gets at about 20 MB and hashes
    /// on every request; a second hash of it would take about as long again within the plugin's
    /// time limit. Bundler 2.3 checks the ETag; later ones verify a digest only when given one.
    EtagOnly,
}

/// A compact index body with its validators, answering the request's `If-None-Match` (304) and
/// Bundler's `Range: bytes=N-` (206, only when the MD5 of the first N+1 bytes is the ETag the
/// client sent, i.e. its copy is this body's start; else the whole body).
pub fn conditional(req: &Request, body: Vec<u8>, digests: Digests) -> Response {
    let if_none_match = req.header("if-none-match").map(|v| v.trim().trim_start_matches("W/").to_string());
    let start = req
        .header("range")
        .and_then(|r| r.trim().strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .filter(|&n| n > 0 && n < body.len() && if_none_match.is_some());
    // One pass of MD5 gives both the client's prefix's and the whole body's.
    let mut md5 = Md5::new();
    let mut prefix = None;
    match start {
        Some(n) => {
            md5.update(&body[..=n]);
            prefix = Some(format!("\"{}\"", hex::encode(md5.clone().finalize())));
            md5.update(&body[n + 1..]);
        }
        None => md5.update(&body),
    }
    let etag = format!("\"{}\"", hex::encode(md5.finalize()));
    let mut headers = vec![("etag".to_string(), etag.clone()), ("accept-ranges".to_string(), "bytes".to_string())];
    if digests == Digests::Both {
        let sha256 = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&body));
        headers.push(("repr-digest".into(), format!("sha-256=:{sha256}:")));
        // RFC 3230's older form, which Bundler versions before Repr-Digest read.
        headers.push(("digest".into(), format!("sha-256={sha256}")));
    }
    if if_none_match.as_deref() == Some(etag.as_str()) {
        let mut r = http::empty(304);
        r.headers = headers;
        return r;
    }
    if let (Some(n), Some(prefix)) = (start, prefix) {
        if Some(&prefix) == if_none_match.as_ref() {
            let len = body.len();
            let mut r = http::bytes(206, COMPACT_TYPE, body[n..].to_vec());
            r.headers.extend(headers);
            r.headers.push(("content-range".into(), format!("bytes {n}-{}/{len}", len - 1)));
            return r;
        }
    }
    let mut r = http::bytes(200, COMPACT_TYPE, body);
    r.headers.extend(headers);
    r
}

const COMPACT_TYPE: &str = "text/plain; charset=utf-8";

#[cfg(test)]
fn header<'a>(r: &'a Response, name: &str) -> &'a str {
    r.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::tests::{artifact, hello, package, with};
    use crate::protocol::handle;
    use crate::protocol::tests::{bundler_reads, request};
    use sluice_plugin_sdk::{MemoryProxy, MemoryRegistry, Reply};

    /// An upstream with `sluice-hello` 1.0.0 and 1.1.0 and `rack` 2.0.0, and its `/versions`
    /// listing a yank, as rubygems.org appends them.
    fn upstream() -> MemoryProxy {
        let mut p = MemoryProxy::default();
        let hello_info =
            format!("---\n1.0.0 |checksum:{}\n1.1.0 sluice-dep:>= 1.0|checksum:{}\n", "a".repeat(64), "b".repeat(64));
        let rack_info = format!("---\n2.0.0 |checksum:{},ruby:>= 2.3\n", "c".repeat(64));
        let versions = format!(
            "created_at: 2024-01-01T00:00:00Z\n---\nrack 1.0.0 0\nsluice-hello 1.0.0,1.1.0,1.2.0 1\nrack 2.0.0,-1.0.0 {}\nsluice-hello -1.2.0 {}\n",
            index::md5_hex(rack_info.as_bytes()),
            index::md5_hex(hello_info.as_bytes())
        );
        p.answer("/versions", versions);
        p.answer("/names", "---\nrack\nsluice-hello\n");
        p.answer("/info/sluice-hello", hello_info);
        p.answer("/info/rack", rack_info);
        p.answer("/quick/Marshal.4.8/rack-2.0.0.gemspec.rz", b"rz bytes".to_vec());
        p
    }

    fn get(p: &MemoryProxy, path: &str, headers: &[(&str, &str)]) -> Result<Response, Error> {
        match handle(p, &request("GET", path, headers), Vec::new())?.reply {
            Reply::Respond(r) => Ok(r),
            other => panic!("not a response: {other:?}"),
        }
    }

    fn text(r: &Response) -> String {
        String::from_utf8(r.body.clone()).unwrap()
    }

    /// Every gem's checksum in `/versions` is the MD5 of the `/info` served, and its versions
    /// are the `/info`'s.
    fn assert_consistent(p: &MemoryProxy) {
        let versions = text(&get(p, "/versions", &[]).unwrap());
        for (name, (listed, checksum)) in bundler_reads(&versions) {
            let info = get(p, &format!("/info/{name}"), &[]).unwrap();
            assert_eq!(checksum, index::md5_hex(&info.body), "{name} in {versions}");
            let keys: BTreeSet<String> = lines_of(&text(&info)).map(|l| info_key(l).to_string()).collect();
            assert_eq!(listed, keys, "{name}");
        }
    }

    #[test]
    fn without_own_gems_the_documents_are_the_upstreams_bytes() {
        let p = upstream();
        let versions = get(&p, "/versions", &[]).unwrap();
        assert_eq!(versions.body, p.upstream_get("/versions", None).unwrap().body);
        let info = get(&p, "/info/sluice-hello", &[]).unwrap();
        assert_eq!(info.body, p.upstream_get("/info/sluice-hello", None).unwrap().body);
        assert_eq!(header(&info, "etag"), format!("\"{}\"", index::md5_hex(&info.body)));
        assert_consistent(&p);
        assert_eq!(get(&p, "/info/nope", &[]).unwrap_err().kind, ErrorKind::NotFound);
        assert_eq!(text(&get(&p, "/names", &[]).unwrap()), "---\nrack\nsluice-hello\n");
    }

    #[test]
    fn own_versions_win_and_versions_gets_a_line_that_agrees() {
        let mut p = upstream();
        let spec = hello();
        // 1.1.0 published here too (ours wins), 3.0.0 only here, and a gem the upstream lacks.
        let local_only = crate::spec::Gemspec { name: "acme-tools".into(), ..with(&spec, "0.1.0", "ruby") };
        p.local = MemoryRegistry::with_packages(vec![
            package("acme-tools", vec![artifact(&local_only, false, 5)]),
            package(
                "sluice-hello",
                vec![
                    artifact(&with(&spec, "1.1.0", "ruby"), false, 7),
                    artifact(&with(&spec, "3.0.0", "ruby"), false, 9),
                ],
            ),
        ]);
        let info = text(&get(&p, "/info/sluice-hello", &[]).unwrap());
        assert!(info.starts_with("---\n1.0.0 |checksum:aaaa"), "{info}");
        assert!(!info.contains("bbbb"), "the upstream's 1.1.0 is replaced by ours: {info}");
        assert!(info.contains(&format!("\n1.1.0 sluice-dep:>= 1.0&< 3|checksum:{:064x},", 7)), "{info}");
        assert!(info.contains("\n3.0.0 "), "{info}");
        let versions = text(&get(&p, "/versions", &[]).unwrap());
        let upstream = String::from_utf8(p.upstream_get("/versions", None).unwrap().body).unwrap();
        assert!(versions.starts_with(&upstream), "the upstream's bytes come first");
        let tail = &versions[upstream.len()..];
        assert!(tail.starts_with("acme-tools 0.1.0 "), "{tail}");
        assert!(tail.contains("\nsluice-hello -1.1.0,1.1.0 ") || tail.contains("\nsluice-hello 3.0.0 "), "{tail}");
        assert_consistent(&p);
        assert!(text(&get(&p, "/names", &[]).unwrap()).contains("\nacme-tools\n"));

        // A version fetched before counts as the upstream's, not ours.
        p.cached = vec!["3.0.0".into()];
        let info = text(&get(&p, "/info/sluice-hello", &[]).unwrap());
        assert!(!info.contains("3.0.0"), "the upstream does not list it: {info}");
        assert_consistent(&p);
    }

    #[test]
    fn ranges_are_answered_only_for_a_prefix_of_the_body() {
        let p = upstream();
        let whole = get(&p, "/versions", &[]).unwrap().body;
        let held = &whole[..40];
        let etag = format!("\"{}\"", index::md5_hex(held));
        let range = format!("bytes={}-", held.len() - 1);
        let r = get(&p, "/versions", &[("range", &range), ("if-none-match", &etag)]).unwrap();
        assert_eq!(r.status, 206);
        assert_eq!(r.body, whole[held.len() - 1..]);
        assert_eq!(
            header(&r, "content-range"),
            format!("bytes {}-{}/{}", held.len() - 1, whole.len() - 1, whole.len())
        );
        assert_eq!(header(&r, "etag"), format!("\"{}\"", index::md5_hex(&whole)), "the whole body's");
        // A copy that is not this body's start gets the whole body.
        let other = format!("\"{}\"", index::md5_hex(b"something else entirely, same length as it!"));
        let r = get(&p, "/versions", &[("range", &range), ("if-none-match", &other)]).unwrap();
        assert_eq!((r.status, r.body.len()), (200, whole.len()));
        let current = format!("\"{}\"", index::md5_hex(&whole));
        let r = get(&p, "/versions", &[("range", &range), ("if-none-match", &current)]).unwrap();
        assert_eq!((r.status, r.body.len()), (304, 0));
    }

    #[test]
    fn gems_only_the_upstream_has_are_fetched_with_its_checksum() {
        let p = upstream();
        let out = handle(&p, &request("GET", "/gems/sluice-hello-1.1.0.gem", &[]), Vec::new()).unwrap();
        let Reply::FetchFile(f) = out.reply else { panic!("not a fetch: {:?}", out.reply) };
        assert_eq!(f.url, "/gems/sluice-hello-1.1.0.gem");
        assert_eq!((f.package.as_str(), f.version.as_str()), ("sluice-hello", "1.1.0"));
        assert_eq!(f.sha256, Some("b".repeat(64)));
        for missing in ["/gems/sluice-hello-1.2.0.gem", "/gems/nope-1.0.gem", "/gems/rack.gem"] {
            let err = handle(&p, &request("GET", missing, &[]), Vec::new()).unwrap_err();
            assert_eq!(err.kind, ErrorKind::NotFound, "{missing}");
        }
        assert_eq!(get(&p, "/quick/Marshal.4.8/rack-2.0.0.gemspec.rz", &[]).unwrap().body, b"rz bytes");
        assert_eq!(get(&p, "/quick/Marshal.4.8/rack-1.0.0.gemspec.rz", &[]).unwrap_err().kind, ErrorKind::NotFound);
        // Stored here: served from the store.
        let mut stored = upstream();
        stored.local = MemoryRegistry::with_packages(vec![package(
            "rack",
            vec![artifact(&crate::spec::Gemspec { name: "rack".into(), ..with(&hello(), "2.0.0", "ruby") }, false, 3)],
        )]);
        stored.cached = vec!["2.0.0".into()];
        let out = handle(&stored, &request("GET", "/gems/rack-2.0.0.gem", &[]), Vec::new()).unwrap();
        assert!(matches!(out.reply, Reply::ServeFile(_)));
    }

    #[test]
    fn every_upstream_request_about_a_gem_names_it() {
        // A file name is split at each `-` before a digit: each candidate is asked by its name.
        let p = MemoryProxy { published_before: Some(u64::MAX), ..upstream() };
        for path in ["/info/rack", "/gems/sluice-hello-1.1.0.gem", "/quick/Marshal.4.8/rack-2.0.0.gemspec.rz"] {
            let _ = handle(&p, &request("GET", path, &[]), Vec::new());
        }
        let asked = p.asked.borrow();
        let about: Vec<_> = asked.iter().filter(|(_, path)| path != "/versions" && path != "/names").collect();
        assert!(about.len() >= 5, "{asked:?}");
        for (name, path) in about {
            let name = name.as_deref().unwrap_or_else(|| panic!("{path} names no gem: {asked:?}"));
            assert!(path.contains(&format!("/{name}")), "{path} is not about {name}");
        }
    }

    #[test]
    fn min_age_withholds_young_upstream_versions() {
        let mut p = upstream();
        p.answer(
            "/api/v1/versions/sluice-hello.json",
            r#"[{"number":"1.1.0","platform":"ruby","created_at":"2024-03-01T00:00:00.000Z"},
                {"number":"1.0.0","platform":"ruby","created_at":"2020-01-01T00:00:00.000Z"}]"#,
        );
        p.published_before = Some(1_700_000_000_000); // November 2023
        let info = text(&get(&p, "/info/sluice-hello", &[]).unwrap());
        assert_eq!(info, format!("---\n1.0.0 |checksum:{}\n", "a".repeat(64)));
        let err = handle(&p, &request("GET", "/gems/sluice-hello-1.1.0.gem", &[]), Vec::new()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotFound, "a young version is not fetched");
        assert!(handle(&p, &request("GET", "/gems/sluice-hello-1.0.0.gem", &[]), Vec::new()).is_ok());
        // No times at all: nothing new is offered, but a version fetched before still is.
        let info = text(&get(&p, "/info/rack", &[]).unwrap());
        assert_eq!(info, "---\n");
        // (Fetched and stored: visible, as in a proxy without a gate.)
        p.local = MemoryRegistry::with_packages(vec![package(
            "rack",
            vec![artifact(&crate::spec::Gemspec { name: "rack".into(), ..with(&hello(), "2.0.0", "ruby") }, false, 3)],
        )]);
        p.cached = vec!["2.0.0".into()];
        assert!(text(&get(&p, "/info/rack", &[]).unwrap()).contains("\n2.0.0 "));
        assert_eq!(published_before(b"not json", 1), HashSet::new());
    }

    #[test]
    fn a_version_in_quarantine_is_not_offered_but_its_gem_still_reaches_the_host() {
        let mut p = upstream();
        p.answer("/quick/Marshal.4.8/sluice-hello-1.1.0.gemspec.rz", b"rz 1.1.0".to_vec());
        // 1.0.0 was fetched and passed its pipeline (visible); 1.1.0 was fetched and has not
        // passed (held, not visible): in quarantine.
        p.local = MemoryRegistry::with_packages(vec![package(
            "sluice-hello",
            vec![artifact(&with(&hello(), "1.0.0", "ruby"), false, 7)],
        )]);
        p.cached = vec!["1.0.0".into(), "1.1.0".into()];
        let info = text(&get(&p, "/info/sluice-hello", &[]).unwrap());
        assert_eq!(info, format!("---\n1.0.0 |checksum:{}\n", "a".repeat(64)));
        // `/versions` says so with the MD5 of that `/info`, as for a version of our own.
        let versions = text(&get(&p, "/versions", &[]).unwrap());
        assert!(
            versions.ends_with(&format!("\nsluice-hello -1.1.0 {}\n", index::md5_hex(info.as_bytes()))),
            "{versions}"
        );
        assert_consistent(&p);
        assert_eq!(
            get(&p, "/quick/Marshal.4.8/sluice-hello-1.1.0.gemspec.rz", &[]).unwrap_err().kind,
            ErrorKind::NotFound
        );
        // The `.gem` by exact name is asked of the host (its 403 says why it is held).
        let out = handle(&p, &request("GET", "/gems/sluice-hello-1.1.0.gem", &[]), Vec::new()).unwrap();
        let Reply::FetchFile(f) = out.reply else { panic!("not a fetch: {:?}", out.reply) };
        assert_eq!((f.version.as_str(), f.sha256), ("1.1.0", Some("b".repeat(64))));
        // Released (visible): offered again, and the documents are the upstream's bytes again.
        p.local = MemoryRegistry::with_packages(vec![package(
            "sluice-hello",
            vec![
                artifact(&with(&hello(), "1.0.0", "ruby"), false, 7),
                artifact(&with(&hello(), "1.1.0", "ruby"), false, 8),
            ],
        )]);
        let info = get(&p, "/info/sluice-hello", &[]).unwrap();
        assert_eq!(info.body, p.upstream_get("/info/sluice-hello", None).unwrap().body);
        assert_eq!(get(&p, "/versions", &[]).unwrap().body, p.upstream_get("/versions", None).unwrap().body);
        assert!(get(&p, "/quick/Marshal.4.8/sluice-hello-1.1.0.gemspec.rz", &[]).is_ok());
    }

    #[test]
    fn without_the_upstream_what_is_stored_answers_and_agrees() {
        let mut p = upstream();
        p.down = true;
        let spec = hello();
        p.local = MemoryRegistry::with_packages(vec![package(
            "sluice-hello",
            vec![artifact(&with(&spec, "1.1.0", "ruby"), false, 7)],
        )]);
        p.cached = vec!["1.1.0".into()];
        let info = text(&get(&p, "/info/sluice-hello", &[]).unwrap());
        assert!(info.contains("\n1.1.0 "), "the fetched copy: {info}");
        assert_consistent(&p);
        assert_eq!(get(&p, "/info/rack", &[]).unwrap_err().kind, ErrorKind::Unavailable);
    }

    #[test]
    fn offline_with_nothing_kept_serves_what_is_stored() {
        let mut p = MemoryProxy::default();
        let miss = Err(Error::not_found("offline, and nothing is kept for it"));
        for path in ["/versions", "/info/sluice-hello", "/info/rack"] {
            p.upstream.insert((path.to_string(), String::new()), miss.clone());
        }
        let spec = hello();
        p.local = MemoryRegistry::with_packages(vec![package(
            "sluice-hello",
            vec![artifact(&with(&spec, "1.1.0", "ruby"), false, 7)],
        )]);
        p.cached = vec!["1.1.0".into()];
        assert!(text(&get(&p, "/info/sluice-hello", &[]).unwrap()).contains("\n1.1.0 "));
        assert_consistent(&p);
        assert_eq!(get(&p, "/info/rack", &[]).unwrap_err().kind, ErrorKind::NotFound, "a miss, not a failure");
    }
}
