//! Search (`SearchQueryService`) and autocomplete: listed versions only, prerelease and SemVer 2
//! versions only when the client asks for them.

use crate::parse;
use crate::protocol::{versions, Urls, Versioned};
use crate::registration::Links;
use serde_json::json;
use sluice_plugin_sdk::http::json;
use sluice_plugin_sdk::{Error, Outcome, PackageView, Registry, Request};

/// How many packages one registry search call returns while filtering.
const HOST_PAGE: u32 = 200;
const MAX_TAKE: usize = 1000;

/// Which versions a client may see in search results.
#[derive(Clone, Copy)]
pub struct Filter {
    pub prerelease: bool,
    pub semver2: bool,
}

impl Filter {
    pub fn from_request(req: &Request) -> Self {
        Filter {
            prerelease: flag(req.query_param("prerelease")),
            semver2: req.query_param("semVerLevel").is_some_and(|l| l.starts_with('2')),
        }
    }

    pub fn admits(&self, v: &Versioned) -> bool {
        v.listed() && (self.prerelease || !v.version.is_prerelease()) && (self.semver2 || !v.version.is_semver2())
    }
}

pub fn flag(value: Option<String>) -> bool {
    value.is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// Every package matching `query` that has a version the filter admits, by name; the host's
/// search cannot filter on listing or prerelease, so its pages are walked here.
pub fn matching(registry: &impl Registry, query: &str, filter: Filter) -> Vec<PackageView> {
    let mut found = Vec::new();
    let mut offset = 0;
    loop {
        let page = registry.search(query, offset, HOST_PAGE);
        let count = page.packages.len() as u32;
        found.extend(page.packages.into_iter().filter(|p| versions(p).iter().any(|v| filter.admits(v))));
        offset += count;
        if count == 0 || u64::from(offset) >= page.total {
            return found;
        }
    }
}

fn skip_take(req: &Request, default_take: usize) -> (usize, usize) {
    let number = |name: &str| req.query_param(name).and_then(|v| v.trim().parse::<usize>().ok());
    (number("skip").unwrap_or(0), number("take").unwrap_or(default_take).min(MAX_TAKE))
}

pub fn query(registry: &impl Registry, urls: &Urls, req: &Request) -> Result<Outcome, Error> {
    let (total, data) = results(registry, urls, req, |_| true);
    Ok(Outcome::respond(json(200, &json!({ "totalHits": total, "data": data }))))
}

/// The search results of `req` (its page) among the packages `keep` admits, and how many there
/// are in all.
pub fn results(
    registry: &impl Registry,
    urls: &Urls,
    req: &Request,
    keep: impl Fn(&PackageView) -> bool,
) -> (usize, Vec<serde_json::Value>) {
    let filter = Filter::from_request(req);
    let (skip, take) = skip_take(req, 20);
    let q = req.query_param("q").unwrap_or_default();
    let mut packages = matching(registry, q.trim(), filter);
    packages.retain(|p| keep(p));
    let data: Vec<serde_json::Value> = packages
        .iter()
        .skip(skip)
        .take(take)
        .map(|package| {
            let visible: Vec<Versioned> = versions(package).into_iter().filter(|v| filter.admits(v)).collect();
            let latest = visible.last().expect("matching() keeps packages with a visible version");
            let meta = &latest.artifact.metadata;
            let details = parse::details(&meta.manifest);
            let links = Links::of(urls, &package.name, &latest.version, details.as_ref(), meta);
            json!({
                "@id": urls.registration_index(&package.name),
                "@type": "Package",
                "registration": urls.registration_index(&package.name),
                "id": package.name,
                "version": full_version(latest, details.as_ref()),
                "description": meta.description.clone().unwrap_or_default(),
                "summary": meta.summary.clone().unwrap_or_default(),
                "title": package.name,
                "projectUrl": meta.homepage.clone().unwrap_or_default(),
                "licenseUrl": links.license_url.unwrap_or_default(),
                "iconUrl": links.icon_url.unwrap_or_default(),
                "tags": meta.keywords,
                "authors": meta.authors,
                "totalDownloads": 0,
                "verified": false,
                "packageTypes": [{ "name": "Dependency" }],
                "versions": visible.iter().map(|v| json!({
                    "version": full_version(v, parse::details(&v.artifact.metadata.manifest).as_ref()),
                    "downloads": 0,
                    "@id": urls.registration_leaf(&package.name, &v.version),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    (packages.len(), data)
}

/// The version with its build metadata, as nuget.org's search shows SemVer 2 versions.
fn full_version(v: &Versioned, details: Option<&parse::Details>) -> String {
    details.filter(|d| d.version == v.version).map_or(v.version.to_string(), |d| d.version.full())
}

/// Package ids matching `q`, or with `id`, the visible versions of that package.
pub fn autocomplete(registry: &impl Registry, req: &Request) -> Result<Outcome, Error> {
    let filter = Filter::from_request(req);
    if let Some(id) = req.query_param("id") {
        let list: Vec<String> = registry
            .package(&id)
            .map(|p| versions(&p).iter().filter(|v| filter.admits(v)).map(|v| v.version.to_string()).collect())
            .unwrap_or_default();
        return Ok(Outcome::respond(json(200, &json!({ "totalHits": list.len(), "data": list }))));
    }
    let (skip, take) = skip_take(req, 20);
    let packages = matching(registry, req.query_param("q").unwrap_or_default().trim(), filter);
    let ids: Vec<&str> = packages.iter().skip(skip).take(take).map(|p| p.name.as_str()).collect();
    Ok(Outcome::respond(json(200, &json!({ "totalHits": packages.len(), "data": ids }))))
}

#[cfg(test)]
mod tests {
    use crate::protocol::handle;
    use crate::protocol::tests::{registry_with, request, respond_json};
    use serde_json::json;

    #[test]
    fn search_hides_unlisted_prerelease_and_semver2_unless_asked() {
        let mut reg = registry_with(
            "Sluice.Demo",
            &[("1.0.0", false), ("1.1.0", true), ("2.0.0-beta", false), ("2.0.0-rc.1", false)],
        );
        reg.packages.extend(registry_with("Only.Unlisted", &[("1.0.0", true)]).packages);
        let search = |q: &str| {
            respond_json(
                handle(
                    &reg,
                    &request("GET", &format!("/v3/search?{q}")),
                    &Vec::new(),
                    &sluice_plugin_sdk::Limits::TEST,
                )
                .unwrap(),
            )
        };

        let plain = search("q=&take=10");
        assert_eq!(plain["totalHits"], 1);
        assert_eq!(plain["data"][0]["id"], "Sluice.Demo");
        assert_eq!(plain["data"][0]["version"], "1.0.0");
        assert_eq!(plain["data"][0]["versions"].as_array().unwrap().len(), 1);

        let pre = search("q=demo&prerelease=true");
        assert_eq!(pre["data"][0]["version"], "2.0.0-beta");
        let semver2 = search("q=demo&prerelease=true&semVerLevel=2.0.0");
        assert_eq!(semver2["data"][0]["version"], "2.0.0-rc.1");
        assert_eq!(search("q=demo&skip=1")["data"], json!([]));
        assert_eq!(search("q=nothing")["totalHits"], 0);
    }

    #[test]
    fn autocomplete_lists_ids_and_versions() {
        let reg = registry_with("Sluice.Demo", &[("1.0.0", false), ("1.1.0", true)]);
        let ids = respond_json(
            handle(&reg, &request("GET", "/v3/autocomplete?q=sluice"), &Vec::new(), &sluice_plugin_sdk::Limits::TEST)
                .unwrap(),
        );
        assert_eq!(ids["data"], json!(["Sluice.Demo"]));
        let versions = respond_json(
            handle(
                &reg,
                &request("GET", "/v3/autocomplete?id=sluice.demo"),
                &Vec::new(),
                &sluice_plugin_sdk::Limits::TEST,
            )
            .unwrap(),
        );
        assert_eq!(versions["data"], json!(["1.0.0"]));
    }
}
