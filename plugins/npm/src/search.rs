//! `GET /-/v1/search?text=&size=&from=`, in the shape `npm search` prints.
//!
//! A repository without an upstream searches what it stores. A proxy repository (and a group
//! with a proxy member) passes the search to the upstream's `/-/v1/search` and merges in this
//! repository's own packages (published here; in a group, a local member's), which come first
//! on the first page, replace an upstream result of the same name, and are marked
//! `"local": true` on their result object (as other registries mark theirs; npm ignores it). An
//! upstream result whose name this repository holds versions of is the local package, never the
//! upstream's. When the upstream fails, or answers something that is not a search, what is
//! stored here answers.

use crate::packument;
use serde_json::{json, Map, Value};
use sluice_plugin_sdk::http::{self, rfc3339_ms};
use sluice_plugin_sdk::{Outcome, PackageView, Registry, Request};

const DEFAULT_SEARCH_SIZE: u32 = 20;
const MAX_SEARCH_SIZE: u32 = 250;

/// Serves a search.
pub fn handle(registry: &impl Registry, req: &Request) -> Outcome {
    if registry.upstream_configured() {
        // Not kept, nor is the stored search standing in for it: both depend on the upstream
        // (whose answers the host keeps itself), and a kept stand-in would outlive its outage.
        let doc = passthrough(registry, req).unwrap_or_else(|| {
            let (total, objects) = local(registry, req, |_| true);
            json!({ "objects": objects, "total": total })
        });
        return Outcome::respond(http::json(200, &doc));
    }
    let (total, objects) = local(registry, req, |_| true);
    Outcome::respond(http::json(200, &json!({ "objects": objects, "total": total }))).keep_for_repository()
}

fn size_and_from(req: &Request) -> (u32, u32) {
    let size =
        req.query_param("size").and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_SEARCH_SIZE).clamp(1, MAX_SEARCH_SIZE);
    (size, req.query_param("from").and_then(|s| s.parse().ok()).unwrap_or(0))
}

/// Whether `view` has versions that did not come from the upstream: it is this repository's own
/// package (in a group, a local member's).
fn own(registry: &impl Registry, view: &PackageView) -> bool {
    let cached = registry.cached_versions(&view.name);
    view.artifacts.iter().any(|a| !cached.contains(&a.version))
}

/// Whether this repository holds versions of `name` that did not come from the upstream (by its
/// summary: no metadata read for an upstream result).
fn held(registry: &impl Registry, name: &str) -> bool {
    let Some(summary) = registry.summary(name) else { return false };
    let cached = registry.cached_versions(name);
    summary.files.iter().any(|f| !cached.contains(&f.version))
}

/// The upstream's search with this repository's own packages merged in; none when the upstream
/// gives no usable answer.
fn passthrough(registry: &impl Registry, req: &Request) -> Option<Value> {
    let path = if req.query.is_empty() { "/-/v1/search".to_string() } else { format!("/-/v1/search?{}", req.query) };
    let answer = registry.upstream_get(&path, Some("application/json")).ok().filter(|a| a.status == 200)?;
    let mut doc: Map<String, Value> = match serde_json::from_slice(&answer.body) {
        Ok(Value::Object(doc)) if doc.get("objects").is_some_and(Value::is_array) => doc,
        _ => return None,
    };
    let name_of = |o: &Value| o.get("package").and_then(|p| p.get("name")).and_then(Value::as_str).map(str::to_string);
    let (_, from) = size_and_from(req);
    // Own packages lead the first page; later pages are the upstream's.
    let (own_total, mut mine) = if from == 0 { local(registry, req, |v| own(registry, v)) } else { (0, Vec::new()) };
    for o in &mut mine {
        o["local"] = Value::Bool(true);
    }
    let Some(Value::Array(objects)) = doc.get_mut("objects") else { return None };
    let before = objects.len();
    // A name held here is the local package, whatever the upstream has under it.
    objects.retain(|o| {
        name_of(o)
            .is_none_or(|n| !mine.iter().any(|m| name_of(m).as_deref() == Some(n.as_str())) && !held(registry, &n))
    });
    let dropped = before - objects.len();
    mine.append(objects);
    *objects = mine;
    let total = doc.get("total").and_then(Value::as_u64).unwrap_or(0);
    doc.insert("total".into(), json!(total.saturating_sub(dropped as u64) + own_total));
    Some(Value::Object(doc))
}

/// The stored packages matching the search that `keep` admits: how many, and the page asked for.
fn local(registry: &impl Registry, req: &Request, keep: impl Fn(&PackageView) -> bool) -> (u64, Vec<Value>) {
    let text = req.query_param("text").unwrap_or_default();
    let (size, from) = size_and_from(req);
    let page = registry.search(text.trim(), from, size);
    let kept: Vec<&PackageView> = page.packages.iter().filter(|v| keep(v)).collect();
    let total = page.total - (page.packages.len() - kept.len()) as u64;
    let objects = kept
        .into_iter()
        .filter_map(|view| {
            let latest = packument::latest(view)?;
            let meta = &latest.metadata;
            let scope = view.name.strip_prefix('@').and_then(|n| n.split_once('/')).map_or("unscoped", |(s, _)| s);
            let mut links = Map::new();
            links.extend(meta.homepage.clone().map(|h| ("homepage".to_string(), json!(h))));
            links.extend(meta.repository.clone().map(|r| ("repository".to_string(), json!(r))));
            Some(json!({
                "package": {
                    "name": view.name,
                    "scope": scope,
                    "version": latest.version,
                    "description": meta.summary,
                    "keywords": meta.keywords,
                    "date": rfc3339_ms(latest.published_ms),
                    "links": links,
                    "maintainers": [],
                },
                "score": {"final": 1.0, "detail": {"quality": 1.0, "popularity": 1.0, "maintenance": 1.0}},
                "searchScore": 1.0,
            }))
        })
        .collect();
    (total, objects)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packument::tests::{view, BASE};
    use sluice_plugin_sdk::{MemoryProxy, MemoryRegistry, Reply};

    fn req(query: &str) -> Request {
        Request {
            method: "GET".into(),
            path: "/-/v1/search".into(),
            query: query.into(),
            headers: vec![],
            base_url: BASE.into(),
            principal: None,
        }
    }

    fn body(o: &Outcome) -> Value {
        match &o.reply {
            Reply::Respond(r) => serde_json::from_slice(&r.body).unwrap(),
            other => panic!("not a response: {other:?}"),
        }
    }

    fn names(doc: &Value) -> Vec<(String, bool)> {
        doc["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| (o["package"]["name"].as_str().unwrap().to_string(), o["local"] == true))
            .collect()
    }

    fn upstream_result(name: &str, version: &str) -> Value {
        json!({ "package": { "name": name, "version": version }, "score": { "final": 0.5 }, "searchScore": 0.5 })
    }

    /// A proxy holding `local` whose upstream answers `text=demo` with these results.
    fn proxy(local: Vec<PackageView>, cached: &[&str], upstream: &[Value]) -> MemoryProxy {
        let mut p = MemoryProxy {
            local: MemoryRegistry::with_packages(local),
            cached: cached.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        p.answer("/-/v1/search?text=demo", json!({ "objects": upstream, "total": upstream.len() + 40 }).to_string());
        p
    }

    #[test]
    fn a_proxy_passes_search_to_the_upstream_with_its_own_packages_first() {
        // demo-local published here; demo-cached only fetched from the upstream; the upstream
        // also has a `demo-local` of its own (another package under the same name).
        let local = vec![
            view("demo-local", &["1.0.0"], &[("latest", "1.0.0")]),
            view("demo-cached", &["2.0.0"], &[("latest", "2.0.0")]),
        ];
        let mut p = proxy(
            local,
            &["2.0.0"],
            &[
                upstream_result("demo-up", "3.0.0"),
                upstream_result("demo-local", "9.9.9"),
                upstream_result("demo-cached", "2.1.0"),
            ],
        );
        // `cached` is per package in the host; here it names demo-cached's version only.
        p.cached = vec!["2.0.0".into()];
        let out = handle(&p, &req("text=demo"));
        assert!(out.keep.is_none(), "a passthrough depends on the upstream: not kept");
        let doc = body(&out);
        assert_eq!(
            names(&doc),
            [("demo-local".into(), true), ("demo-up".into(), false), ("demo-cached".into(), false)],
            "{doc}"
        );
        assert_eq!(doc["objects"][0]["package"]["version"], "1.0.0", "the local package, not the upstream's 9.9.9");
        assert_eq!(doc["objects"][2]["package"]["version"], "2.1.0", "a fetched package is the upstream's result");
        assert_eq!(doc["total"], 43);
        // Later pages are the upstream's alone.
        p.answer(
            "/-/v1/search?text=demo&from=20",
            json!({ "objects": [upstream_result("demo-z", "1.0.0")], "total": 43 }).to_string(),
        );
        assert_eq!(names(&body(&handle(&p, &req("text=demo&from=20")))), [("demo-z".into(), false)]);
    }

    #[test]
    fn without_a_usable_upstream_answer_what_is_stored_answers() {
        let local = vec![view("demo-local", &["1.0.0"], &[("latest", "1.0.0")])];
        let mut p = proxy(local, &[], &[]);
        p.answer("/-/v1/search?text=demo", "<html>");
        assert_eq!(names(&body(&handle(&p, &req("text=demo")))), [("demo-local".into(), false)]);
        let p = MemoryProxy { down: true, ..p };
        let out = handle(&p, &req("text=demo"));
        assert!(out.keep.is_none(), "a stand-in for the upstream's answer is not kept past the outage");
        assert_eq!(names(&body(&out)), [("demo-local".into(), false)]);
        // No upstream at all: the repository's own search, kept until the repository changes.
        let plain = MemoryRegistry::with_packages(vec![view("demo-local", &["1.0.0"], &[("latest", "1.0.0")])]);
        let out = handle(&plain, &req("text=demo"));
        assert!(out.keep.is_some());
        assert_eq!(body(&out)["total"], 1);
    }
}
