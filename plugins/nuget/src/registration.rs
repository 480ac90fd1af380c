//! Registrations (`RegistrationsBaseUrl`): a package's versions with their metadata, which
//! `nuget install` resolves against. Unlisted versions stay in, marked `listed: false` as
//! nuget.org does, so that they remain installable by exact version.
//!
//! A package with at most [`PAGE_SIZE`] versions has one page inlined in its index; a larger one
//! has pages of [`PAGE_SIZE`] versions, each a separate document the client fetches as needed.

use crate::protocol::{versions, Urls, Versioned};
use crate::version::NuGetVersion;
use serde_json::{json, Value};
use sluice_plugin_sdk::http::{json, rfc3339_ms};
use sluice_plugin_sdk::{Error, Outcome, PackageView, Registry};

pub const PAGE_SIZE: usize = 64;

/// The date nuget.org gives unlisted versions; clients read it as "unlisted".
const UNLISTED_PUBLISHED: &str = "1900-01-01T00:00:00+00:00";

fn package(registry: &impl Registry, id: &str) -> Result<PackageView, Error> {
    registry.package(id).ok_or_else(|| Error::not_found(format!("package '{id}' was not found")))
}

pub fn index(registry: &impl Registry, urls: &Urls, id: &str) -> Result<Outcome, Error> {
    let package = package(registry, id)?;
    let all = versions(&package);
    let index_url = urls.registration_index(&package.name);
    let pages: Vec<Value> = if all.len() <= PAGE_SIZE {
        vec![page_document(urls, &package, &all, format!("{index_url}#page/{}", page_bounds(&all)))]
    } else {
        all.chunks(PAGE_SIZE)
            .map(|chunk| {
                let (lower, upper) = (&chunk[0].version, &chunk[chunk.len() - 1].version);
                json!({
                    "@id": urls.registration_page(&package.name, lower, upper),
                    "@type": "catalog:CatalogPage",
                    "count": chunk.len(),
                    "lower": lower.to_string(),
                    "upper": upper.to_string(),
                })
            })
            .collect()
    };
    Ok(Outcome::respond(json(
        200,
        &json!({
            "@id": index_url,
            "@type": ["catalog:CatalogRoot", "PackageRegistration", "catalog:Permalink"],
            "count": pages.len(),
            "items": pages,
        }),
    )))
}

fn page_bounds(items: &[Versioned]) -> String {
    match (items.first(), items.last()) {
        (Some(first), Some(last)) => format!("{}/{}", first.version.lower(), last.version.lower()),
        _ => String::new(),
    }
}

/// A page document: `/registration/{id}/page/{lower}/{upper}.json`.
pub fn page(registry: &impl Registry, urls: &Urls, id: &str, lower: &str, upper_file: &str) -> Result<Outcome, Error> {
    let bad_page = || Error::not_found(format!("no registration page {lower}/{upper_file} for '{id}'"));
    let upper = upper_file.strip_suffix(".json").ok_or_else(bad_page)?;
    let (lower, upper) =
        (NuGetVersion::parse(lower).map_err(|_| bad_page())?, NuGetVersion::parse(upper).map_err(|_| bad_page())?);
    let package = package(registry, id)?;
    let items: Vec<Versioned> =
        versions(&package).into_iter().filter(|v| v.version >= lower && v.version <= upper).collect();
    if items.is_empty() {
        return Err(bad_page());
    }
    let page_url = urls.registration_page(&package.name, &lower, &upper);
    Ok(Outcome::respond(json(200, &page_document(urls, &package, &items, page_url))))
}

fn page_document(urls: &Urls, package: &PackageView, items: &[Versioned], page_url: String) -> Value {
    let (lower, upper) = match (items.first(), items.last()) {
        (Some(first), Some(last)) => (first.version.to_string(), last.version.to_string()),
        _ => (String::new(), String::new()),
    };
    json!({
        "@id": page_url,
        "@type": "catalog:CatalogPage",
        "count": items.len(),
        "lower": lower,
        "upper": upper,
        "parent": urls.registration_index(&package.name),
        "items": items.iter().map(|v| leaf_item(urls, package, v)).collect::<Vec<_>>(),
    })
}

/// A version as it appears in a page and in its own leaf document.
fn leaf_item(urls: &Urls, package: &PackageView, v: &Versioned) -> Value {
    json!({
        "@id": urls.registration_leaf(&package.name, &v.version),
        "@type": "Package",
        "catalogEntry": catalog_entry(urls, package, v),
        "packageContent": urls.package_content(&package.name, &v.version),
        "registration": urls.registration_index(&package.name),
    })
}

fn catalog_entry(urls: &Urls, package: &PackageView, v: &Versioned) -> Value {
    let meta = &v.artifact.metadata;
    let published = if v.listed() { rfc3339_ms(v.artifact.published_ms) } else { UNLISTED_PUBLISHED.to_string() };
    let mut entry = json!({
        "@id": urls.registration_leaf(&package.name, &v.version),
        "@type": "PackageDetails",
        "id": package.name,
        "version": v.version.to_string(),
        "authors": meta.authors.join(", "),
        "description": meta.description.clone().unwrap_or_default(),
        "summary": meta.summary.clone().unwrap_or_default(),
        "tags": meta.keywords,
        "projectUrl": meta.homepage.clone().unwrap_or_default(),
        "listed": v.listed(),
        "published": published,
        "requireLicenseAcceptance": false,
        "packageContent": urls.package_content(&package.name, &v.version),
        "dependencyGroups": dependency_groups(urls, meta),
    });
    if let Some(license) = &meta.license {
        let key = if license.contains("://") { "licenseUrl" } else { "licenseExpression" };
        entry[key] = json!(license);
    }
    if let Some(message) = &v.artifact.deprecated {
        entry["deprecation"] = json!({ "reasons": ["Other"], "message": message });
    }
    entry
}

/// Dependencies grouped by target framework, in the order the nuspec lists them.
pub fn dependency_groups(urls: &Urls, meta: &sluice_plugin_sdk::Metadata) -> Vec<Value> {
    let mut groups: Vec<(String, Vec<Value>)> = Vec::new();
    for dep in &meta.dependencies {
        let range = if dep.requirement.is_empty() { "(, )".to_string() } else { dep.requirement.clone() };
        let item = json!({
            "@type": "PackageDependency",
            "id": dep.name,
            "range": range,
            "registration": urls.registration_index(&dep.name),
        });
        match groups.iter_mut().find(|(g, _)| *g == dep.group) {
            Some((_, items)) => items.push(item),
            None => groups.push((dep.group.clone(), vec![item])),
        }
    }
    groups
        .into_iter()
        .map(|(framework, dependencies)| {
            let mut group = json!({ "@type": "PackageDependencyGroup", "dependencies": dependencies });
            if !framework.is_empty() {
                group["targetFramework"] = json!(framework);
            }
            group
        })
        .collect()
}

/// A single version's leaf document: `/registration/{id}/{version}.json`.
pub fn leaf(registry: &impl Registry, urls: &Urls, id: &str, file: &str) -> Result<Outcome, Error> {
    let not_found = || Error::not_found(format!("no registration leaf {file} for '{id}'"));
    let version = file.strip_suffix(".json").and_then(|v| NuGetVersion::parse(v).ok()).ok_or_else(not_found)?;
    let package = package(registry, id)?;
    let all = versions(&package);
    let v = all.iter().find(|v| v.version == version).ok_or_else(not_found)?;
    let published = if v.listed() { rfc3339_ms(v.artifact.published_ms) } else { UNLISTED_PUBLISHED.to_string() };
    Ok(Outcome::respond(json(
        200,
        &json!({
            "@id": urls.registration_leaf(&package.name, &v.version),
            "@type": ["Package", "http://schema.nuget.org/catalog#Permalink"],
            "listed": v.listed(),
            "published": published,
            "packageContent": urls.package_content(&package.name, &v.version),
            "registration": urls.registration_index(&package.name),
        }),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::handle;
    use crate::protocol::tests::{registry_with, request, respond_json};

    fn get(registry: &impl Registry, path: &str) -> Value {
        respond_json(handle(registry, &request("GET", path), &Vec::new()).unwrap())
    }

    #[test]
    fn small_packages_inline_one_page_with_unlisted_versions_marked() {
        let reg = registry_with("Sluice.Demo", &[("2.0.0", true), ("1.0.0", false)]);
        let index = get(&reg, "/v3/registration/sluice.demo/index.json");
        assert_eq!(index["count"], 1);
        let page = &index["items"][0];
        assert_eq!((page["lower"].as_str(), page["upper"].as_str()), (Some("1.0.0"), Some("2.0.0")));
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        let entry = &items[0]["catalogEntry"];
        assert_eq!(
            (entry["id"].as_str(), entry["version"].as_str(), entry["listed"].as_bool()),
            (Some("Sluice.Demo"), Some("1.0.0"), Some(true))
        );
        assert_eq!(entry["dependencyGroups"][0]["targetFramework"], "net6.0");
        assert_eq!(entry["dependencyGroups"][0]["dependencies"][0]["range"], "1.0");
        assert_eq!(
            items[0]["packageContent"],
            "http://reg.test/nuget/v3-flatcontainer/sluice.demo/1.0.0/sluice.demo.1.0.0.nupkg"
        );
        assert_eq!(items[1]["catalogEntry"]["listed"], false);
        assert_eq!(items[1]["catalogEntry"]["published"], UNLISTED_PUBLISHED);
    }

    #[test]
    fn large_packages_are_paged() {
        let names: Vec<String> = (0..150).map(|i| format!("1.0.{i}")).collect();
        let versions: Vec<(&str, bool)> = names.iter().map(|n| (n.as_str(), false)).collect();
        let reg = registry_with("Big", &versions);
        let index = get(&reg, "/v3/registration/big/index.json");
        assert_eq!(index["count"], 3);
        let pages = index["items"].as_array().unwrap();
        assert!(pages.iter().all(|p| p.get("items").is_none()));
        assert_eq!(
            (pages[2]["lower"].as_str(), pages[2]["upper"].as_str(), pages[2]["count"].as_u64()),
            (Some("1.0.128"), Some("1.0.149"), Some(22))
        );
        let url = pages[1]["@id"].as_str().unwrap();
        assert_eq!(url, "http://reg.test/nuget/v3/registration/big/page/1.0.64/1.0.127.json");
        let page = get(&reg, url.strip_prefix("http://reg.test/nuget").unwrap());
        assert_eq!(page["items"].as_array().unwrap().len(), 64);
        assert_eq!(page["items"][0]["catalogEntry"]["version"], "1.0.64");
        let leaf = get(&reg, "/v3/registration/big/1.0.7.json");
        assert_eq!(leaf["listed"], true);
    }
}
