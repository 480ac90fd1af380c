//! NuGet in a proxy repository (`upstream = "https://api.nuget.org"`, the feed whose service index
//! is `{upstream}/v3/index.json`; contract 0.4.0). The plugin reads the upstream's service index
//! through the host (kept for `metadata_ttl` like every upstream answer) to find its flat
//! container and registrations, which may live anywhere on the upstream's host, and serves:
//!
//! - the service index: this repository's own, so every resource is here;
//! - flat container `index.json`: the upstream's versions merged with the versions pushed here;
//! - registrations: the upstream's leaves (inline pages and linked pages alike, read through) with
//!   every URL of the upstream's flat container and registrations pointing here, merged with the
//!   leaves of versions pushed here (which win), as one inline page;
//! - `.nupkg`: the stored copy, else a `fetch-file` of the upstream's, verified against the
//!   `packageHash` (sha512, base64) the upstream's catalog entry gives, when it gives one (Sluice's
//!   registrations do; nuget.org keeps it in its catalog, so those are stored as fetched);
//! - `.nuspec`, icons and license files of versions not stored here: the upstream's;
//! - search: the upstream's, results pointing here, when its search service is on its own host;
//!   each result checked against the upstream's registration of its id, and this repository's
//!   own packages (pushed here; in a group, the local members') first.
//!
//! With `min_age` (the host's `upstream.published-before` cut-off), upstream versions whose
//! registration leaf was `published` after the cut-off (or gives no real time) are left out of
//! the registrations, the flat container's list and search results, and refused by exact version
//! (leaf, `.nupkg`, `.nuspec`); versions pushed here and packages stored before are never held
//! back.
//!
//! In a gated proxy (`gate = "pipeline"`) a fetched version whose pipeline has not passed is in
//! quarantine (the SDK's `quarantined_versions`): it is left out of the registrations (the one
//! inline page's `count`, `lower` and `upper` are those of what is offered, whether the upstream
//! pages inline or linked), the flat container's list and search results. Its leaf and `.nupkg`
//! by exact version still answer: the package is a `fetch-file` of the held file, which the host
//! answers with a 403 naming the pipeline and its verdict, so a client that has its version
//! (a lock file) learns why it is refused.
//!
//! A version fetched before and since deleted upstream is not offered any more, but its stored
//! package stays downloadable by exact version. When the upstream cannot be reached and nothing is
//! kept, what is stored here answers.

use crate::protocol::{self, Urls};
use crate::registration;
use crate::version::NuGetVersion;
use base64::Engine;
use serde_json::{json, Value};
use sluice_plugin_sdk::http::{self, json};
use sluice_plugin_sdk::{quarantined_versions, Error, ErrorKind, Outcome, Registry, UpstreamFile, UpstreamResponse};

/// Where the upstream's resources are (absolute URLs on its host; the bases end in `/`).
pub struct UpstreamUrls {
    pub flat: String,
    pub registrations: String,
    /// Its `SearchQueryService`, if it has one.
    pub search: Option<String>,
}

/// What the upstream said, reduced to what a proxy decides on.
enum Upstream {
    Found(UpstreamResponse),
    /// 404 or 410, or a miss while offline.
    Missing,
    Failed(Error),
}

/// Asks the upstream `url`, about package `id` when it is about one (a group keeps a private id
/// from the upstream by that name); none for the service index and search.
fn ask(registry: &impl Registry, id: Option<&str>, url: &str) -> Upstream {
    let answer = match id {
        Some(id) => registry.upstream_get_for(id, url, Some("application/json")),
        None => registry.upstream_get(url, Some("application/json")),
    };
    match answer {
        Ok(a) if a.status == 200 => Upstream::Found(a),
        Ok(a) if a.status == 404 || a.status == 410 => Upstream::Missing,
        Ok(a) => Upstream::Failed(Error::unavailable(format!("the upstream answered {} for {url}", a.status))),
        Err(e) if e.kind == ErrorKind::NotFound => Upstream::Missing,
        Err(e) => Upstream::Failed(e),
    }
}

/// The most an upstream document may unpack to (a gzip bomb is refused, not held).
const MAX_DOCUMENT: u64 = 64 << 20;

fn json_of(a: &UpstreamResponse, what: &str) -> Result<Value, Error> {
    let not_json = || Error::unavailable(format!("the upstream's {what} is not JSON"));
    // nuget.org stores its `-gz-` registrations gzipped and sends them so (`Content-Encoding:
    // gzip`) whatever the request accepts.
    if a.body.starts_with(&[0x1f, 0x8b]) {
        use std::io::Read;
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(a.body.as_slice())
            .take(MAX_DOCUMENT + 1)
            .read_to_end(&mut text)
            .map_err(|_| not_json())?;
        if text.len() as u64 > MAX_DOCUMENT {
            return Err(Error::unavailable(format!("the upstream's {what} unpacks to more than 64 MiB")));
        }
        return serde_json::from_slice(&text).map_err(|_| not_json());
    }
    serde_json::from_slice(&a.body).map_err(|_| not_json())
}

/// The upstream's flat container and registrations, from its service index.
pub fn upstream_urls(registry: &impl Registry) -> Result<UpstreamUrls, Error> {
    let index = match ask(registry, None, "/v3/index.json") {
        Upstream::Found(a) => json_of(&a, "service index")?,
        Upstream::Missing => {
            return Err(Error::unavailable("the upstream has no NuGet service index at /v3/index.json"))
        }
        Upstream::Failed(e) => return Err(e),
    };
    resource_urls(&index)
}

/// Finds the resources a proxy needs in a service index: the flat container, and the
/// registrations that include SemVer 2 versions when the upstream has them.
pub fn resource_urls(index: &Value) -> Result<UpstreamUrls, Error> {
    let resources = index.get("resources").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let find = |kinds: &[&str]| {
        kinds.iter().find_map(|kind| {
            resources.iter().find_map(|r| {
                let matches = r.get("@type").and_then(Value::as_str) == Some(*kind);
                let id = r.get("@id").and_then(Value::as_str)?;
                matches.then(|| if id.ends_with('/') { id.to_string() } else { format!("{id}/") })
            })
        })
    };
    let search =
        ["SearchQueryService/3.5.0", "SearchQueryService/3.0.0-rc", "SearchQueryService"].iter().find_map(|kind| {
            resources.iter().find_map(|r| {
                (r.get("@type").and_then(Value::as_str) == Some(*kind))
                    .then(|| r.get("@id")?.as_str().map(str::to_string))?
            })
        });
    let flat = find(&["PackageBaseAddress/3.0.0"]);
    let registrations = find(&[
        "RegistrationsBaseUrl/3.6.0",
        "RegistrationsBaseUrl/3.4.0",
        "RegistrationsBaseUrl/3.0.0-rc",
        "RegistrationsBaseUrl",
    ]);
    match (flat, registrations) {
        (Some(flat), Some(registrations)) => Ok(UpstreamUrls { flat, registrations, search }),
        _ => Err(Error::unavailable(
            "the upstream's service index names no PackageBaseAddress/3.0.0 or RegistrationsBaseUrl resource",
        )),
    }
}

/// Versions of `id` stored here that were pushed, not fetched: these win over the upstream's.
fn own_versions(registry: &impl Registry, id: &str) -> Vec<NuGetVersion> {
    let cached: Vec<NuGetVersion> =
        registry.cached_versions(id).iter().filter_map(|v| NuGetVersion::parse(v).ok()).collect();
    registry
        .summary(id)
        .map(|s| s.files.iter().filter_map(|f| NuGetVersion::parse(&f.version).ok()).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|v| !cached.contains(v))
        .collect()
}

/// Versions of `id` fetched from the upstream whose pipeline has not passed (a gated proxy's
/// quarantine, the SDK's rule): not offered in the registrations, the flat container's list or
/// search results, while their leaf and `.nupkg` by exact version still answer (the package is a
/// `fetch-file` the host refuses with a 403 naming the pipeline).
fn quarantined(registry: &impl Registry, id: &str) -> Vec<NuGetVersion> {
    quarantined_versions(registry, id).iter().filter_map(|v| NuGetVersion::parse(v).ok()).collect()
}

/// `/v3-flatcontainer/{id}/index.json`.
pub fn flat_versions(registry: &impl Registry, id: &str) -> Result<Outcome, Error> {
    let stored = registry.summary(id);
    let from = upstream_urls(registry);
    let answer = from
        .as_ref()
        .map_err(Clone::clone)
        .map(|u| ask(registry, Some(id), &format!("{}{}/index.json", u.flat, id.to_lowercase())));
    let mut versions: Vec<NuGetVersion> = match answer {
        Ok(Upstream::Found(a)) => {
            let doc = json_of(&a, "version list")?;
            let mut from_upstream: Vec<NuGetVersion> = doc
                .get("versions")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(|v| NuGetVersion::parse(v.as_str()?).ok())
                .collect();
            if let (Some(_), Ok(from)) = (registry.upstream_published_before(), &from) {
                let offered = offered_versions(registry, from, id);
                from_upstream.retain(|v| offered.contains(v));
            }
            let held = quarantined(registry, id);
            from_upstream.retain(|v| !held.contains(v));
            from_upstream.extend(own_versions(registry, id));
            from_upstream
        }
        Ok(Upstream::Missing) => own_versions(registry, id),
        // Nothing from the upstream and nothing kept: what is stored here.
        Ok(Upstream::Failed(e)) | Err(e) => match &stored {
            Some(s) => s.files.iter().filter_map(|f| NuGetVersion::parse(&f.version).ok()).collect(),
            None => return Err(e),
        },
    };
    if versions.is_empty() {
        return Err(Error::not_found(format!("package '{id}' was not found")));
    }
    versions.sort();
    versions.dedup();
    let list: Vec<String> = versions.iter().map(NuGetVersion::lower).collect();
    Ok(Outcome::respond(json(200, &json!({ "versions": list }))))
}

/// Replaces the upstream's resource URLs in every string of `value` with this repository's.
fn rewrite(value: &mut Value, from: &UpstreamUrls, to: &Urls) {
    match value {
        Value::String(s) => {
            if let Some(rest) = s.strip_prefix(from.registrations.as_str()) {
                *s = format!("{}{rest}", to.registrations());
            } else if let Some(rest) = s.strip_prefix(from.flat.as_str()) {
                *s = format!("{}{rest}", to.flat_container());
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite(v, from, to)),
        Value::Object(map) => map.values_mut().for_each(|v| rewrite(v, from, to)),
        _ => {}
    }
}

/// The upstream's registration leaves of `id` (linked pages read through), as the upstream wrote
/// them; none when the upstream does not have the package.
fn upstream_leaves(registry: &impl Registry, from: &UpstreamUrls, id: &str) -> Result<Option<Vec<Value>>, Error> {
    let index = match ask(registry, Some(id), &format!("{}{}/index.json", from.registrations, id.to_lowercase())) {
        Upstream::Found(a) => json_of(&a, "registration index")?,
        Upstream::Missing => return Ok(None),
        Upstream::Failed(e) => return Err(e),
    };
    let mut leaves = Vec::new();
    for page in index.get("items").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
        let page_items = match page.get("items") {
            Some(items) => items.clone(),
            None => {
                let url = page.get("@id").and_then(Value::as_str).ok_or_else(|| {
                    Error::unavailable("the upstream's registration index has a page with neither items nor @id")
                })?;
                match ask(registry, Some(id), url) {
                    Upstream::Found(a) => json_of(&a, "registration page")?.get("items").cloned().unwrap_or_default(),
                    Upstream::Missing => continue,
                    Upstream::Failed(e) => return Err(e),
                }
            }
        };
        leaves.extend(page_items.as_array().cloned().unwrap_or_default());
    }
    if let Some(cutoff) = registry.upstream_published_before() {
        leaves.retain(|l| leaf_published(l).is_some_and(|at| at <= cutoff));
    }
    Ok(Some(leaves))
}

/// When a registration leaf says its version was published (its catalog entry's `published`), in
/// milliseconds since the Unix epoch. None without a readable one, and for the date nuget.org
/// gives unlisted versions (1900-01-01), which says nothing of when it was published.
pub fn leaf_published(leaf: &Value) -> Option<u64> {
    let text = leaf.get("catalogEntry")?.get("published")?.as_str()?;
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    if at.year() <= 1900 {
        return None;
    }
    u64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

/// The upstream versions of `id` a client may be offered: those of its registration, with
/// `min_age` only those whose leaf is old enough (the flat container's list and search results
/// give no times); none when the registration cannot be read.
fn offered_versions(registry: &impl Registry, from: &UpstreamUrls, id: &str) -> Vec<NuGetVersion> {
    upstream_leaves(registry, from, id).ok().flatten().unwrap_or_default().iter().filter_map(leaf_version).collect()
}

fn leaf_version(leaf: &Value) -> Option<NuGetVersion> {
    NuGetVersion::parse(leaf.get("catalogEntry")?.get("version")?.as_str()?).ok()
}

/// The merged leaves of `id`, lowest version first, with URLs pointing here; none when neither
/// the upstream nor this repository has the package. `Err` when the upstream failed.
fn merged_leaves(registry: &impl Registry, urls: &Urls, id: &str) -> Result<Option<Vec<Value>>, Error> {
    let from = upstream_urls(registry)?;
    let upstream = upstream_leaves(registry, &from, id)?;
    let own = own_versions(registry, id);
    let local: Vec<Value> = match registry.package(id) {
        Some(package) => protocol::versions(&package)
            .iter()
            .filter(|v| own.contains(&v.version))
            .map(|v| registration::leaf_item(urls, &package, v))
            .collect(),
        None => Vec::new(),
    };
    let Some(mut leaves) = upstream else {
        return Ok((!local.is_empty()).then_some(local));
    };
    leaves.retain(|l| leaf_version(l).is_some_and(|v| !own.contains(&v)));
    for leaf in &mut leaves {
        rewrite(leaf, &from, urls);
    }
    leaves.extend(local);
    leaves.sort_by_key(leaf_version);
    // Every upstream version withheld (`min_age`) and none here: as if the package were not here.
    Ok((!leaves.is_empty()).then_some(leaves))
}

/// `/v3/registration/{id}/index.json`: every version in one inline page.
pub fn registration_index(registry: &impl Registry, urls: &Urls, id: &str) -> Result<Outcome, Error> {
    let held = quarantined(registry, id);
    let offered = merged_leaves(registry, urls, id).map(|leaves| {
        let leaves =
            leaves.unwrap_or_default().into_iter().filter(|l| leaf_version(l).is_none_or(|v| !held.contains(&v)));
        Some(leaves.collect::<Vec<_>>()).filter(|l| !l.is_empty())
    });
    let leaves = match offered {
        Ok(Some(leaves)) => leaves,
        Ok(None) => return Err(Error::not_found(format!("package '{id}' was not found"))),
        // The upstream cannot be asked: the registration of what is stored here.
        Err(e) if registry.package(id).is_some() => return registration::index(registry, urls, id).or(Err(e)),
        Err(e) => return Err(e),
    };
    let index_url = urls.registration_index(id);
    let (lower, upper) = bounds(&leaves);
    Ok(Outcome::respond(json(
        200,
        &json!({
            "@id": index_url,
            "@type": ["catalog:CatalogRoot", "PackageRegistration", "catalog:Permalink"],
            "count": 1,
            "items": [{
                "@id": format!("{index_url}#page/{}/{}", lower.to_lowercase(), upper.to_lowercase()),
                "@type": "catalog:CatalogPage",
                "count": leaves.len(),
                "lower": lower,
                "upper": upper,
                "parent": index_url,
                "items": leaves,
            }],
        }),
    )))
}

fn bounds(leaves: &[Value]) -> (String, String) {
    let version = |l: Option<&Value>| l.and_then(leaf_version).map(|v| v.to_string()).unwrap_or_default();
    (version(leaves.first()), version(leaves.last()))
}

/// `/v3/registration/{id}/{version}.json`.
pub fn registration_leaf(registry: &impl Registry, urls: &Urls, id: &str, file: &str) -> Result<Outcome, Error> {
    let not_found = || Error::not_found(format!("no registration leaf {file} for '{id}'"));
    let version = file.strip_suffix(".json").and_then(|v| NuGetVersion::parse(v).ok()).ok_or_else(not_found)?;
    let leaves = match merged_leaves(registry, urls, id) {
        Ok(leaves) => leaves.ok_or_else(not_found)?,
        Err(e) if registry.package(id).is_some() => return registration::leaf(registry, urls, id, file).or(Err(e)),
        Err(e) => return Err(e),
    };
    let leaf = leaves.into_iter().find(|l| leaf_version(l).as_ref() == Some(&version)).ok_or_else(not_found)?;
    Ok(Outcome::respond(json(200, &leaf)))
}

/// `/v3/search`: the upstream's search with its results pointing here, when the upstream's search
/// service is on its own host (the host refuses others: nuget.org's is not, and its credentials
/// must not follow); else, and when the upstream fails, the search of what is stored here.
pub fn search(registry: &impl Registry, urls: &Urls, req: &sluice_plugin_sdk::Request) -> Result<Outcome, Error> {
    let local = || crate::search::query(registry, urls, req);
    let Ok(from) = upstream_urls(registry) else { return local() };
    let Some(service) = &from.search else { return local() };
    let url = if req.query.is_empty() { service.clone() } else { format!("{service}?{}", req.query) };
    match ask(registry, None, &url) {
        Upstream::Found(a) => match serde_json::from_slice::<Value>(&a.body) {
            Ok(mut doc) if doc.get("data").is_some_and(Value::is_array) => {
                check_results(registry, &from, &mut doc);
                rewrite(&mut doc, &from, urls);
                merge_own(registry, urls, req, &mut doc);
                Ok(Outcome::respond(json(200, &doc)))
            }
            _ => local(),
        },
        _ => local(),
    }
}

/// Checks the upstream's search results against the upstream's registration of each (one
/// document per result, kept by the host like every answer): a result keeps only the versions its
/// registration offers (with `min_age`, those old enough), its `version` becomes the newest of
/// them, and a result with none is left out. That also leaves out what the host keeps from the
/// upstream: in a group, an id a local member holds or marks `private` (the host answers nothing
/// for its registration, asked about that id, but cannot see ids inside a search answer).
fn check_results(registry: &impl Registry, from: &UpstreamUrls, doc: &mut Value) {
    let Some(Value::Array(data)) = doc.get_mut("data") else { return };
    let before = data.len();
    data.retain_mut(|item| {
        let Some(id) = item.get("id").and_then(Value::as_str) else { return false };
        let held = quarantined(registry, id);
        let mut offered = offered_versions(registry, from, id);
        offered.retain(|v| !held.contains(v));
        let Some(Value::Array(versions)) = item.get_mut("versions") else { return !offered.is_empty() };
        let parsed = |v: &Value| v.get("version").and_then(Value::as_str).and_then(|s| NuGetVersion::parse(s).ok());
        versions.retain(|v| parsed(v).is_some_and(|v| offered.contains(&v)));
        let newest =
            versions.iter().filter_map(|v| Some((parsed(v)?, v.get("version")?.clone()))).max_by(|a, b| a.0.cmp(&b.0));
        match newest {
            Some((_, version)) => {
                item["version"] = version;
                true
            }
            None => false,
        }
    });
    let dropped = (before - data.len()) as u64;
    if let Some(total) = doc.get("totalHits").and_then(Value::as_u64) {
        doc["totalHits"] = json!(total.saturating_sub(dropped));
    }
}

/// Puts this repository's own packages (versions pushed here; in a group, the local members')
/// that match the search first, on the first page, in place of an upstream result of the same id:
/// local first, as the registrations do.
fn merge_own(registry: &impl Registry, urls: &Urls, req: &sluice_plugin_sdk::Request, doc: &mut Value) {
    if req.query_param("skip").and_then(|s| s.trim().parse::<usize>().ok()).unwrap_or(0) > 0 {
        return;
    }
    let (total, own) = crate::search::results(registry, urls, req, |p| !own_versions(registry, &p.name).is_empty());
    if own.is_empty() {
        return;
    }
    let id = |v: &Value| v.get("id").and_then(Value::as_str).map(str::to_lowercase);
    let own_ids: Vec<Option<String>> = own.iter().map(id).collect();
    let Some(Value::Array(data)) = doc.get_mut("data") else { return };
    let before = data.len();
    data.retain(|item| !own_ids.contains(&id(item)));
    let replaced = before - data.len();
    // The first page grows by the own results rather than dropping upstream ones, which the
    // next page (the upstream's) would not show.
    let mut merged = own;
    merged.append(data);
    *data = merged;
    let upstream_total = doc.get("totalHits").and_then(Value::as_u64).unwrap_or(0) as usize;
    doc["totalHits"] = json!(upstream_total.saturating_sub(replaced) + total);
}

/// A file of a version not stored here: the `.nupkg` is fetched (and kept); the others are read
/// from the upstream's flat container.
pub fn flat_file(registry: &impl Registry, urls: &Urls, id: &str, version: &str, file: &str) -> Result<Outcome, Error> {
    let not_found = || Error::not_found(format!("package '{id}' has no version {version}"));
    let parsed = NuGetVersion::parse(version).map_err(|_| not_found())?;
    let from = upstream_urls(registry)?;
    let (lower_id, lower_version) = (id.to_lowercase(), parsed.lower());
    let file = file.to_lowercase();
    let is_package = file == format!("{lower_id}.{lower_version}.nupkg");
    let cutoff = registry.upstream_published_before();
    // The catalog entry names the id as its author spelled it, and maybe the package's hash.
    let leaf = (is_package || cutoff.is_some())
        .then(|| merged_leaves(registry, urls, id).ok().flatten())
        .flatten()
        .and_then(|leaves| leaves.into_iter().find(|l| leaf_version(l).as_ref() == Some(&parsed)));
    // With `min_age` a version without an old enough leaf is not offered, by exact version either:
    // a package that just bumped a dependency to a freshly compromised release is what the
    // cool-off is for.
    if leaf.is_none() && cutoff.is_some() {
        return Err(Error::not_found(format!(
            "package '{id}' has no version {version} published upstream longer than this repository's min_age ago"
        )));
    }
    if !is_package {
        let url = format!("{}{lower_id}/{lower_version}/{file}", from.flat);
        return match ask(registry, Some(id), &url) {
            Upstream::Found(a) => {
                let content_type = a.header("content-type").unwrap_or("application/octet-stream").to_string();
                Ok(Outcome::respond(http::bytes(200, &content_type, a.body)))
            }
            Upstream::Missing => Err(Error::not_found(format!("no file '{file}' in package '{id}' {version}"))),
            Upstream::Failed(e) => Err(e),
        };
    }
    let entry = leaf.as_ref().and_then(|l| l.get("catalogEntry"));
    let package = entry.and_then(|e| e.get("id")).and_then(Value::as_str).unwrap_or(id).to_string();
    Ok(Outcome::fetch_file(UpstreamFile {
        url: format!("{}{lower_id}/{lower_version}/{file}", from.flat),
        package,
        version: parsed.to_string(),
        file_name: file,
        content_type: "application/octet-stream".into(),
        sha512: entry.and_then(package_hash),
        sha256: None,
        sha1: None,
    }))
}

/// The sha512 (hex) of a catalog entry's `packageHash`, when its algorithm is SHA512.
pub fn package_hash(entry: &Value) -> Option<String> {
    let algorithm = entry.get("packageHashAlgorithm").and_then(Value::as_str)?;
    if !algorithm.eq_ignore_ascii_case("SHA512") {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(entry.get("packageHash")?.as_str()?).ok()?;
    (bytes.len() == 64).then(|| hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::tests::registry_with;
    use sluice_plugin_sdk::{MemoryProxy, MemoryRegistry, Reply, Request, UpstreamResponse as Answer};
    use std::collections::HashMap;

    const UP: &str = "http://up.test/nuget";
    const BASE: &str = "http://here.test/nugetorg";

    fn leaf(version: &str, hash: Option<&str>) -> Value {
        let mut entry = json!({
            "@id": format!("{UP}/v3/registration/demo/{version}.json"),
            "id": "Demo",
            "version": version,
            "packageContent": format!("{UP}/v3-flatcontainer/demo/{version}/demo.{version}.nupkg"),
            "dependencyGroups": [{ "dependencies": [{ "id": "Dep", "range": "[1.0.0, )",
                "registration": format!("{UP}/v3/registration/dep/index.json") }] }],
        });
        if let Some(hash) = hash {
            entry["packageHash"] = json!(hash);
            entry["packageHashAlgorithm"] = json!("SHA512");
        }
        json!({
            "@id": format!("{UP}/v3/registration/demo/{version}.json"),
            "catalogEntry": entry,
            "packageContent": format!("{UP}/v3-flatcontainer/demo/{version}/demo.{version}.nupkg"),
        })
    }

    /// An upstream with `Demo` at 1.0.0 and 2.0.0: one inline page, or (`linked`) one page per
    /// version, each its own document.
    fn upstream(linked: bool) -> HashMap<String, Value> {
        let mut docs = HashMap::new();
        docs.insert(
            format!("{UP}/v3/index.json"),
            json!({ "version": "3.0.0", "resources": [
                { "@id": format!("{UP}/v3-flatcontainer/"), "@type": "PackageBaseAddress/3.0.0" },
                { "@id": format!("{UP}/v3/registration/"), "@type": "RegistrationsBaseUrl/3.6.0" },
            ]}),
        );
        docs.insert(format!("{UP}/v3-flatcontainer/demo/index.json"), json!({ "versions": ["1.0.0", "2.0.0"] }));
        let hash = base64::engine::general_purpose::STANDARD.encode([9u8; 64]);
        let leaves = [leaf("1.0.0", None), leaf("2.0.0", Some(&hash))];
        let pages: Vec<Value> = if linked {
            leaves
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let url = format!("{UP}/v3/registration/demo/page/{i}.json");
                    docs.insert(url.clone(), json!({ "items": [l] }));
                    json!({ "@id": url, "count": 1 })
                })
                .collect()
        } else {
            vec![json!({ "items": leaves })]
        };
        docs.insert(format!("{UP}/v3/registration/demo/index.json"), json!({ "count": pages.len(), "items": pages }));
        docs
    }

    fn proxy(local: MemoryRegistry, cached: &[&str], linked: bool) -> MemoryProxy {
        proxy_with(local, cached, upstream(linked))
    }

    /// A proxy whose upstream answers these documents by URL.
    fn proxy_with(local: MemoryRegistry, cached: &[&str], docs: HashMap<String, Value>) -> MemoryProxy {
        let mut p = MemoryProxy {
            local,
            base: UP.into(),
            cached: cached.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        for (url, doc) in docs {
            p.answer(url.strip_prefix(UP).unwrap_or(&url), doc.to_string());
        }
        p
    }

    fn get(p: &MemoryProxy, path: &str) -> Result<Outcome, Error> {
        let req = Request {
            method: "GET".into(),
            path: path.into(),
            query: String::new(),
            headers: vec![],
            base_url: BASE.into(),
            principal: None,
        };
        protocol::handle(p, &req, &Vec::<u8>::new(), &sluice_plugin_sdk::Limits::TEST)
    }

    fn body(o: Outcome) -> Value {
        match o.reply {
            Reply::Respond(r) => serde_json::from_slice(&r.body).unwrap(),
            other => panic!("not a response: {other:?}"),
        }
    }

    #[test]
    fn search_passes_through_with_urls_pointing_here() {
        let mut docs = upstream(false);
        let index = format!("{UP}/v3/index.json");
        docs.get_mut(&index).unwrap()["resources"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "@id": format!("{UP}/v3/search"), "@type": "SearchQueryService/3.5.0" }));
        docs.insert(
            format!("{UP}/v3/search?q=demo"),
            json!({ "totalHits": 1, "data": [{ "id": "Demo", "registration": format!("{UP}/v3/registration/demo/index.json") }] }),
        );
        let p = proxy_with(MemoryRegistry::default(), &[], docs);
        let req = Request {
            method: "GET".into(),
            path: "/v3/search".into(),
            query: "q=demo".into(),
            headers: vec![],
            base_url: BASE.into(),
            principal: None,
        };
        let doc = body(protocol::handle(&p, &req, &Vec::<u8>::new(), &sluice_plugin_sdk::Limits::TEST).unwrap());
        assert_eq!(doc["data"][0]["registration"], format!("{BASE}/v3/registration/demo/index.json"));
        // No search upstream: what is stored here.
        let p = proxy(MemoryRegistry::default(), &[], false);
        let doc = body(protocol::handle(&p, &req, &Vec::<u8>::new(), &sluice_plugin_sdk::Limits::TEST).unwrap());
        assert_eq!(doc["totalHits"], 0);
    }

    #[test]
    fn gzipped_registrations_are_read() {
        use std::io::Write;
        let doc = json!({ "versions": ["1.0.0"] });
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(doc.to_string().as_bytes()).unwrap();
        let answer = Answer { status: 200, headers: vec![], body: gz.finish().unwrap(), stale: false };
        assert_eq!(json_of(&answer, "x").unwrap(), doc);
        let bad = Answer { body: vec![0x1f, 0x8b, 0, 1], ..answer };
        assert_eq!(json_of(&bad, "x").unwrap_err().kind, ErrorKind::Unavailable);
    }

    #[test]
    fn the_service_index_is_this_repositorys() {
        let p = proxy(MemoryRegistry::default(), &[], false);
        let doc = body(get(&p, "/v3/index.json").unwrap());
        let ids: Vec<&str> = doc["resources"].as_array().unwrap().iter().map(|r| r["@id"].as_str().unwrap()).collect();
        assert!(ids.iter().all(|id| id.starts_with(BASE)), "{ids:?}");
    }

    #[test]
    fn registrations_inline_linked_pages_and_point_here() {
        for linked in [false, true] {
            let p = proxy(MemoryRegistry::default(), &[], linked);
            let doc = body(get(&p, "/v3/registration/demo/index.json").unwrap());
            let page = &doc["items"][0];
            assert_eq!((page["lower"].as_str(), page["upper"].as_str()), (Some("1.0.0"), Some("2.0.0")));
            let leaves = page["items"].as_array().unwrap();
            assert_eq!(leaves.len(), 2, "linked: {linked}");
            assert_eq!(leaves[1]["packageContent"], format!("{BASE}/v3-flatcontainer/demo/2.0.0/demo.2.0.0.nupkg"));
            assert_eq!(
                leaves[0]["catalogEntry"]["dependencyGroups"][0]["dependencies"][0]["registration"],
                format!("{BASE}/v3/registration/dep/index.json")
            );
            assert!(!doc.to_string().contains(UP), "nothing points at the upstream: {doc}");
        }
    }

    #[test]
    fn pushed_versions_are_merged_and_fetched_ones_follow_the_upstream() {
        // 2.0.0 pushed here wins; 0.9.0 was fetched before and is gone upstream.
        let local = registry_with("Demo", &[("2.0.0", false), ("0.9.0", false), ("3.0.0", false)]);
        let p = proxy(local, &["0.9.0"], false);
        let doc = body(get(&p, "/v3-flatcontainer/demo/index.json").unwrap());
        assert_eq!(doc["versions"], json!(["1.0.0", "2.0.0", "3.0.0"]));
        let doc = body(get(&p, "/v3/registration/demo/index.json").unwrap());
        let versions: Vec<&str> = doc["items"][0]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["catalogEntry"]["version"].as_str().unwrap())
            .collect();
        assert_eq!(versions, ["1.0.0", "2.0.0", "3.0.0"]);
        // The stored 0.9.0 is still served by exact version.
        assert!(matches!(get(&p, "/v3-flatcontainer/demo/0.9.0/demo.0.9.0.nupkg").unwrap().reply, Reply::ServeFile(_)));
        // Down with nothing kept: what is stored answers.
        let p = MemoryProxy { down: true, ..p };
        let doc = body(get(&p, "/v3-flatcontainer/demo/index.json").unwrap());
        assert_eq!(doc["versions"], json!(["0.9.0", "2.0.0", "3.0.0"]));
        assert!(body(get(&p, "/v3/registration/demo/index.json").unwrap())["items"].is_array());
        assert_eq!(get(&p, "/v3-flatcontainer/other/index.json").unwrap_err().kind, ErrorKind::Unavailable);
    }

    #[test]
    fn a_package_only_the_upstream_has_is_fetched_with_its_hash_when_given() {
        let p = proxy(MemoryRegistry::default(), &[], true);
        let Reply::FetchFile(f) = get(&p, "/v3-flatcontainer/demo/2.0.0/demo.2.0.0.nupkg").unwrap().reply else {
            panic!("not a fetch")
        };
        assert_eq!(f.url, format!("{UP}/v3-flatcontainer/demo/2.0.0/demo.2.0.0.nupkg"));
        assert_eq!(
            (f.package.as_str(), f.version.as_str(), f.file_name.as_str()),
            ("Demo", "2.0.0", "demo.2.0.0.nupkg")
        );
        assert_eq!(f.sha512, Some(hex::encode([9u8; 64])));
        let Reply::FetchFile(f) = get(&p, "/v3-flatcontainer/demo/1.0.0/demo.1.0.0.nupkg").unwrap().reply else {
            panic!("not a fetch")
        };
        assert_eq!(f.sha512, None, "no hash upstream: stored as fetched");
        assert_eq!(get(&p, "/v3-flatcontainer/ghost/index.json").unwrap_err().kind, ErrorKind::NotFound);
    }

    #[test]
    fn every_upstream_request_about_a_package_names_it() {
        // Linked registration pages too; only the service index is about no package.
        let p = proxy(MemoryRegistry::default(), &[], true);
        for path in [
            "/v3-flatcontainer/demo/index.json",
            "/v3/registration/demo/index.json",
            "/v3-flatcontainer/demo/2.0.0/demo.2.0.0.nupkg",
            "/v3-flatcontainer/demo/2.0.0/demo.nuspec",
        ] {
            let _ = get(&p, path);
        }
        let asked = p.asked.borrow();
        let about: Vec<_> = asked.iter().filter(|(_, path)| !path.ends_with("/v3/index.json")).collect();
        assert!(about.len() >= 5, "{asked:?}");
        assert!(about.iter().all(|(id, _)| id.as_deref() == Some("demo")), "{asked:?}");
    }

    /// `upstream(false)` with these `published` times on the leaves of 1.0.0 and 2.0.0.
    fn published(times: [&str; 2]) -> HashMap<String, Value> {
        let mut docs = upstream(false);
        let index = docs.get_mut(&format!("{UP}/v3/registration/demo/index.json")).unwrap();
        for (i, time) in times.iter().enumerate() {
            index["items"][0]["items"][i]["catalogEntry"]["published"] = json!(time);
        }
        docs
    }

    fn leaf_versions(doc: &Value) -> Vec<String> {
        doc["items"][0]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["catalogEntry"]["version"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn min_age_withholds_versions_the_registration_says_are_young() {
        let docs = published(["2020-01-01T00:00:00+00:00", "2020-03-01T00:30:00.123+01:00"]);
        let mut p = proxy_with(MemoryRegistry::default(), &[], docs.clone());
        // Old enough: published by 2020-02-01.
        p.published_before = Some(1_580_515_200_000);
        assert_eq!(body(get(&p, "/v3-flatcontainer/demo/index.json").unwrap())["versions"], json!(["1.0.0"]));
        assert_eq!(leaf_versions(&body(get(&p, "/v3/registration/demo/index.json").unwrap())), ["1.0.0"]);
        for path in [
            "/v3/registration/demo/2.0.0.json",
            "/v3-flatcontainer/demo/2.0.0/demo.2.0.0.nupkg",
            "/v3-flatcontainer/demo/2.0.0/demo.nuspec",
        ] {
            let refused = get(&p, path).unwrap_err();
            assert_eq!(refused.kind, ErrorKind::NotFound, "{path}");
        }
        assert!(get(&p, "/v3-flatcontainer/demo/2.0.0/demo.2.0.0.nupkg").unwrap_err().message.contains("min_age"));
        assert!(matches!(get(&p, "/v3-flatcontainer/demo/1.0.0/demo.1.0.0.nupkg").unwrap().reply, Reply::FetchFile(_)));
        // Past the cut-off both are offered (the offset counts: 2.0.0 was 2020-02-29T23:30:00.123Z).
        p.published_before = Some(1_583_019_000_123);
        assert_eq!(body(get(&p, "/v3-flatcontainer/demo/index.json").unwrap())["versions"], json!(["1.0.0", "2.0.0"]));
        p.published_before = Some(1_583_019_000_122);
        assert_eq!(body(get(&p, "/v3-flatcontainer/demo/index.json").unwrap())["versions"], json!(["1.0.0"]));
        // Everything too young and nothing here: as if the package were not here.
        p.published_before = Some(1);
        assert_eq!(get(&p, "/v3-flatcontainer/demo/index.json").unwrap_err().kind, ErrorKind::NotFound);
        assert_eq!(get(&p, "/v3/registration/demo/index.json").unwrap_err().kind, ErrorKind::NotFound);
        // Versions pushed here are offered however new (the test artifacts are from 2023).
        let mut mine = proxy_with(registry_with("Demo", &[("3.0.0", false)]), &[], docs);
        mine.published_before = Some(1);
        assert_eq!(body(get(&mine, "/v3-flatcontainer/demo/index.json").unwrap())["versions"], json!(["3.0.0"]));
        assert_eq!(leaf_versions(&body(get(&mine, "/v3/registration/demo/index.json").unwrap())), ["3.0.0"]);
    }

    #[test]
    fn a_version_in_quarantine_is_not_offered_but_its_package_still_reaches_the_host() {
        // 1.0.0 was fetched and passed its pipeline (visible); 2.0.0 was fetched and has not
        // passed (held, not visible): in quarantine.
        let old = "2020-01-01T00:00:00+00:00";
        for linked in [false, true] {
            let p = proxy(registry_with("Demo", &[("1.0.0", false)]), &["1.0.0", "2.0.0"], linked);
            assert_eq!(body(get(&p, "/v3-flatcontainer/demo/index.json").unwrap())["versions"], json!(["1.0.0"]));
            let doc = body(get(&p, "/v3/registration/demo/index.json").unwrap());
            assert_eq!(leaf_versions(&doc), ["1.0.0"], "linked: {linked}");
            let page = &doc["items"][0];
            assert_eq!(
                (page["count"].as_u64(), page["lower"].as_str(), page["upper"].as_str()),
                (Some(1), Some("1.0.0"), Some("1.0.0"))
            );
            // The package by exact version is asked of the host (its 403 says why it is held),
            // verified against the upstream's hash as any fetch.
            let Reply::FetchFile(f) = get(&p, "/v3-flatcontainer/demo/2.0.0/demo.2.0.0.nupkg").unwrap().reply else {
                panic!("the package of a held version is asked of the host")
            };
            assert_eq!((f.version.as_str(), f.sha512), ("2.0.0", Some(hex::encode([9u8; 64]))));
            // Its leaf by exact address still answers, so a client that has its version leads
            // to the package's answer.
            let leaf = body(get(&p, "/v3/registration/demo/2.0.0.json").unwrap());
            assert_eq!(leaf["catalogEntry"]["version"], "2.0.0");
        }
        // Search offers what the registrations offer.
        let mut p = searchable(MemoryRegistry::default(), [old, old]);
        p.cached = vec!["2.0.0".into()];
        let doc = search_for(&p, "demo");
        assert_eq!(doc["data"][0]["version"], "1.0.0", "{doc}");
        assert_eq!(doc["data"][0]["versions"], json!([{ "version": "1.0.0", "downloads": 0 }]));
        // Every version held: not offered at all.
        let p = proxy(MemoryRegistry::default(), &["1.0.0", "2.0.0"], false);
        assert_eq!(get(&p, "/v3-flatcontainer/demo/index.json").unwrap_err().kind, ErrorKind::NotFound);
        assert_eq!(get(&p, "/v3/registration/demo/index.json").unwrap_err().kind, ErrorKind::NotFound);
        // Released (visible): offered again.
        let p = proxy(registry_with("Demo", &[("1.0.0", false), ("2.0.0", false)]), &["1.0.0", "2.0.0"], false);
        assert_eq!(body(get(&p, "/v3-flatcontainer/demo/index.json").unwrap())["versions"], json!(["1.0.0", "2.0.0"]));
    }

    #[test]
    fn a_leaf_without_a_real_publish_time_is_not_old_enough() {
        let leaf = |published: Value| json!({ "catalogEntry": { "version": "1.0.0", "published": published } });
        assert_eq!(leaf_published(&leaf(json!("2020-01-01T00:00:00Z"))), Some(1_577_836_800_000));
        assert_eq!(leaf_published(&leaf(json!("2020-01-01T01:00:00.5+01:00"))), Some(1_577_836_800_500));
        // What nuget.org gives an unlisted version.
        assert_eq!(leaf_published(&leaf(json!("1900-01-01T00:00:00+00:00"))), None);
        assert_eq!(leaf_published(&leaf(json!("yesterday"))), None);
        assert_eq!(leaf_published(&json!({ "catalogEntry": { "version": "1.0.0" } })), None);
    }

    /// A proxy whose upstream has a search service answering `q=demo` with Demo (1.0.0, 2.0.0)
    /// and Ghost (which has no registration upstream).
    fn searchable(local: MemoryRegistry, times: [&str; 2]) -> MemoryProxy {
        let mut docs = published(times);
        docs.get_mut(&format!("{UP}/v3/index.json")).unwrap()["resources"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "@id": format!("{UP}/v3/search"), "@type": "SearchQueryService/3.5.0" }));
        let result = |id: &str| {
            json!({ "id": id, "version": "2.0.0", "registration": format!("{UP}/v3/registration/{}/index.json", id.to_lowercase()),
                "versions": [{ "version": "1.0.0", "downloads": 0 }, { "version": "2.0.0", "downloads": 0 }] })
        };
        docs.insert(
            format!("{UP}/v3/search?q=demo"),
            json!({ "totalHits": 2, "data": [result("Demo"), result("Ghost")] }),
        );
        proxy_with(local, &[], docs)
    }

    fn search_for(p: &MemoryProxy, q: &str) -> Value {
        let req = Request {
            method: "GET".into(),
            path: "/v3/search".into(),
            query: format!("q={q}"),
            headers: vec![],
            base_url: BASE.into(),
            principal: None,
        };
        body(protocol::handle(p, &req, &Vec::<u8>::new(), &sluice_plugin_sdk::Limits::TEST).unwrap())
    }

    #[test]
    fn search_results_are_checked_against_their_registrations() {
        let old = "2020-01-01T00:00:00+00:00";
        let mut p = searchable(MemoryRegistry::default(), [old, "2020-03-01T00:00:00+00:00"]);
        // Ghost has no registration upstream (in a group: one the host keeps from the upstream).
        let doc = search_for(&p, "demo");
        assert_eq!(doc["data"].as_array().unwrap().len(), 1, "{doc}");
        assert_eq!(doc["data"][0]["versions"].as_array().unwrap().len(), 2);
        // With min_age, the young version is left out and `version` follows.
        p.published_before = Some(1_580_515_200_000);
        let doc = search_for(&p, "demo");
        assert_eq!(doc["data"][0]["version"], "1.0.0");
        assert_eq!(doc["data"][0]["versions"], json!([{ "version": "1.0.0", "downloads": 0 }]));
        p.published_before = Some(1);
        assert_eq!(search_for(&p, "demo")["data"], json!([]));
    }

    #[test]
    fn search_puts_packages_of_this_repository_first() {
        // Local.Demo pushed here (in a group: a local member's), Demo fetched from the upstream.
        let mut local = registry_with("Local.Demo", &[("0.1.0", false)]);
        local.packages.extend(registry_with("Demo", &[("1.0.0", false)]).packages);
        let old = "2020-01-01T00:00:00+00:00";
        let mut p = searchable(local, [old, old]);
        p.cached = vec!["1.0.0".into()];
        let doc = search_for(&p, "demo");
        let ids: Vec<&str> = doc["data"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["Local.Demo", "Demo"], "{doc}");
        assert_eq!(doc["data"][1]["versions"].as_array().unwrap().len(), 2, "the upstream's result, every version");
        assert_eq!(doc["data"][0]["registration"], format!("{BASE}/v3/registration/local.demo/index.json"));
        assert_eq!(doc["totalHits"], 2);
    }
}
