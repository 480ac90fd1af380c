//! Registrations (`RegistrationsBaseUrl`): a package's versions with their metadata, which
//! `nuget install` resolves against. Unlisted versions stay in, marked `listed: false` as
//! nuget.org does, so that they remain installable by exact version.
//!
//! A package with at most [`PAGE_SIZE`] versions has one page inlined in its index; a larger one
//! has pages of [`PAGE_SIZE`] versions, each a separate document the client fetches as needed.

use crate::parse::{self, Group, License};
use crate::protocol::{versions, Urls, Versioned};
use crate::version::NuGetVersion;
use base64::Engine;
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
pub(crate) fn leaf_item(urls: &Urls, package: &PackageView, v: &Versioned) -> Value {
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
    let details = parse::details(&meta.manifest);
    let published = if v.listed() { rfc3339_ms(v.artifact.published_ms) } else { UNLISTED_PUBLISHED.to_string() };
    // The stored version is normalised without build metadata; nuget.org shows the full string.
    let version =
        details.as_ref().filter(|d| d.version == v.version).map_or(v.version.to_string(), |d| d.version.full());
    let mut entry = json!({
        "@id": urls.registration_leaf(&package.name, &v.version),
        "@type": "PackageDetails",
        "id": package.name,
        "version": version,
        "authors": meta.authors.join(", "),
        "description": meta.description.clone().unwrap_or_default(),
        "summary": meta.summary.clone().unwrap_or_default(),
        "tags": meta.keywords,
        "projectUrl": meta.homepage.clone().unwrap_or_default(),
        "listed": v.listed(),
        "published": published,
        "requireLicenseAcceptance": false,
        "packageContent": urls.package_content(&package.name, &v.version),
        "dependencyGroups": match &details {
            Some(d) => dependency_groups(urls, &d.groups),
            None => dependency_groups(urls, &flat_groups(meta)),
        },
    });
    let links = Links::of(urls, &package.name, &v.version, details.as_ref(), meta);
    // What nuget.org's catalog gives: a proxy of this repository verifies the package with it.
    if let Some(sha512) = hex::decode(&v.artifact.sha512).ok().filter(|d| d.len() == 64) {
        entry["packageHash"] = json!(base64::engine::general_purpose::STANDARD.encode(sha512));
        entry["packageHashAlgorithm"] = json!("SHA512");
    }
    if let Some(url) = links.license_url {
        entry["licenseUrl"] = json!(url);
    }
    if let Some(expression) = links.license_expression {
        entry["licenseExpression"] = json!(expression);
    }
    if let Some(url) = links.icon_url {
        entry["iconUrl"] = json!(url);
    }
    if let Some(message) = &v.artifact.deprecated {
        entry["deprecation"] = json!({ "reasons": ["Other"], "message": message });
    }
    entry
}

/// The license and icon URLs of a version, as nuget.org renders them: a license file and an
/// embedded icon are served from the package; `licenseExpression` only for an SPDX expression.
pub struct Links {
    pub license_url: Option<String>,
    pub license_expression: Option<String>,
    pub icon_url: Option<String>,
}

impl Links {
    pub fn of(
        urls: &Urls,
        id: &str,
        version: &NuGetVersion,
        details: Option<&parse::Details>,
        meta: &sluice_plugin_sdk::Metadata,
    ) -> Links {
        let Some(details) = details else {
            // A manifest this plugin cannot read again: what the metadata record says.
            let license = meta.license.clone();
            let is_url = license.as_deref().is_some_and(|l| l.contains("://"));
            return Links {
                license_url: license.clone().filter(|_| is_url),
                license_expression: license.filter(|_| !is_url),
                icon_url: None,
            };
        };
        let (license_url, license_expression) = match &details.license {
            License::Expression(expression) => (None, Some(expression.clone())),
            License::File(_) => (Some(urls.license(id, version)), None),
            License::Url(url) => (Some(url.clone()), None),
            License::None => (None, None),
        };
        let icon_url = match &details.icon {
            Some(_) => Some(urls.icon(id, version)),
            None => details.icon_url.clone(),
        };
        Links { license_url, license_expression, icon_url }
    }
}

/// Groups from the flat dependency list of the metadata record, for a manifest that no longer
/// parses (an empty group cannot be told from it).
fn flat_groups(meta: &sluice_plugin_sdk::Metadata) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for dep in &meta.dependencies {
        let pair = (dep.name.clone(), dep.requirement.clone());
        match groups.iter_mut().find(|g| g.target_framework == dep.group) {
            Some(group) => group.dependencies.push(pair),
            None => groups.push(Group { target_framework: dep.group.clone(), dependencies: vec![pair] }),
        }
    }
    groups
}

/// Dependencies grouped by target framework, in the order the nuspec lists them, empty groups
/// included.
pub fn dependency_groups(urls: &Urls, groups: &[Group]) -> Vec<Value> {
    groups
        .iter()
        .map(|g| {
            let dependencies: Vec<Value> = g
                .dependencies
                .iter()
                .map(|(id, requirement)| {
                    let range = if requirement.is_empty() { "(, )".to_string() } else { requirement.clone() };
                    json!({
                        "@type": "PackageDependency",
                        "id": id,
                        "range": range,
                        "registration": urls.registration_index(id),
                    })
                })
                .collect();
            let mut group = json!({ "@type": "PackageDependencyGroup", "dependencies": dependencies });
            if !g.target_framework.is_empty() {
                group["targetFramework"] = json!(g.target_framework);
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
        respond_json(handle(registry, &request("GET", path), &Vec::new(), &sluice_plugin_sdk::Limits::TEST).unwrap())
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

    /// A registry holding one version whose manifest is this nuspec (embedding `files`).
    fn registry_of(nuspec: &str, files: &[(&str, &[u8])]) -> sluice_plugin_sdk::MemoryRegistry {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, body) in [("Real.World.nuspec", nuspec.as_bytes())].into_iter().chain(files.iter().copied()) {
            zip.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
            std::io::Write::write_all(&mut zip, body).unwrap();
        }
        let meta = crate::parse::parse(zip.finish().unwrap().into_inner(), &sluice_plugin_sdk::Limits::TEST).unwrap();
        let mut reg = registry_with("Real.World", &[(meta.version.as_str(), false)]);
        reg.packages[0].artifacts[0].metadata = meta;
        reg
    }

    #[test]
    fn empty_groups_license_files_icons_and_full_versions() {
        let nuspec = "<package><metadata><id>Real.World</id><version>5.0.0-beta.1+build.5</version>\
            <license type=\"file\">LICENSE.txt</license><licenseUrl>https://aka.ms/deprecateLicenseUrl</licenseUrl>\
            <icon>icon.png</icon><dependencies>\
            <group targetFramework=\".NETStandard1.0\"><dependency id=\"NETStandard.Library\" version=\"1.6.1\" /></group>\
            <group targetFramework=\".NETStandard2.0\" /></dependencies></metadata></package>";
        let reg = registry_of(nuspec, &[("LICENSE.txt", b"the license"), ("icon.png", b"png bytes")]);
        let index = get(&reg, "/v3/registration/real.world/index.json");
        let entry = &index["items"][0]["items"][0]["catalogEntry"];
        assert_eq!(entry["version"], "5.0.0-beta.1+build.5");
        assert_eq!(
            index["items"][0]["items"][0]["@id"],
            "http://reg.test/nuget/v3/registration/real.world/5.0.0-beta.1.json"
        );
        let groups = entry["dependencyGroups"].as_array().unwrap();
        assert_eq!(groups.len(), 2, "{groups:?}");
        assert_eq!(
            groups[1],
            json!({"@type": "PackageDependencyGroup", "targetFramework": ".NETStandard2.0", "dependencies": []})
        );
        let license_url = "http://reg.test/nuget/v3-flatcontainer/real.world/5.0.0-beta.1/license";
        assert_eq!(entry["licenseUrl"], license_url);
        assert!(entry.get("licenseExpression").is_none(), "{entry}");
        let icon_url = "http://reg.test/nuget/v3-flatcontainer/real.world/5.0.0-beta.1/icon";
        assert_eq!(entry["iconUrl"], icon_url);

        let served =
            |path: &str| match handle(&reg, &request("GET", path), &Vec::new(), &sluice_plugin_sdk::Limits::TEST)
                .unwrap()
                .reply
            {
                sluice_plugin_sdk::Reply::Respond(r) => (r.headers[0].1.clone(), r.body),
                _ => panic!("expected the embedded file"),
            };
        assert_eq!(
            served("/v3-flatcontainer/real.world/5.0.0-beta.1/license"),
            ("text/plain; charset=utf-8".into(), b"the license".to_vec())
        );
        assert_eq!(
            served("/v3-flatcontainer/real.world/5.0.0-beta.1/icon"),
            ("image/png".into(), b"png bytes".to_vec())
        );
        let (_, nuspec_served) = served("/v3-flatcontainer/real.world/5.0.0-beta.1/real.world.nuspec");
        assert_eq!(nuspec_served, nuspec.as_bytes());

        let found = get(&reg, "/v3/search?q=real&prerelease=true&semVerLevel=2.0.0");
        assert_eq!(found["data"][0]["version"], "5.0.0-beta.1+build.5");
        assert_eq!(found["data"][0]["licenseUrl"], license_url);
        assert_eq!(found["data"][0]["iconUrl"], icon_url);

        // An expression stays an expression; a package without an icon has no iconUrl.
        let expression =
            nuspec.replace("type=\"file\">LICENSE.txt", "type=\"expression\">MIT").replace("<icon>icon.png</icon>", "");
        let reg = registry_of(&expression, &[]);
        let entry = &get(&reg, "/v3/registration/real.world/index.json")["items"][0]["items"][0]["catalogEntry"];
        assert_eq!(entry["licenseExpression"], "MIT");
        assert!(entry.get("licenseUrl").is_none() && entry.get("iconUrl").is_none(), "{entry}");
        assert_eq!(
            handle(
                &reg,
                &request("GET", "/v3-flatcontainer/real.world/5.0.0-beta.1/icon"),
                &Vec::new(),
                &sluice_plugin_sdk::Limits::TEST
            )
            .unwrap_err()
            .kind,
            sluice_plugin_sdk::ErrorKind::NotFound
        );
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
