//! The slice of the V2 OData feed (`LegacyGallery/2.0.0`) that nuget.exe's `list` command needs:
//! with a V3 source it reads the service document, then pages through `Search()` as Atom XML.
//! Without `$metadata` (a 404) the client assumes `Search()` and `IsAbsoluteLatestVersion` exist.

use crate::protocol::{versions, Urls, Versioned};
use crate::search::{flag, matching, Filter};
use quick_xml::escape::escape;
use sluice_plugin_sdk::http::{self, rfc3339_ms};
use sluice_plugin_sdk::{Error, Outcome, PackageView, Registry, Request, Response};
use std::fmt::Write;

/// nuget.exe asks for 30 at a time; a client asking for more gets at most this many.
const MAX_TOP: usize = 100;

pub fn service_document(urls: &Urls) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
         <service xml:base=\"{}/\" xmlns=\"http://www.w3.org/2007/app\" xmlns:atom=\"http://www.w3.org/2005/Atom\">\
         <workspace><atom:title>Default</atom:title>\
         <collection href=\"Packages\"><atom:title>Packages</atom:title></collection>\
         </workspace></service>",
        escape(urls.legacy_feed())
    );
    http::bytes(200, "application/xml; charset=utf-8", body.into_bytes())
}

/// `Search()?searchTerm='x'&$filter=IsLatestVersion&includePrerelease=false&$skip=0&$top=30`.
pub fn search(registry: &impl Registry, urls: &Urls, req: &Request) -> Result<Outcome, Error> {
    let filter = Filter {
        prerelease: flag(req.query_param("includePrerelease")),
        semver2: req.query_param("semVerLevel").is_some_and(|l| l.starts_with('2')),
    };
    let term = req.query_param("searchTerm").map(|t| odata_string(&t)).unwrap_or_default();
    let latest_only = match req.query_param("$filter").as_deref().map(str::trim) {
        Some("IsLatestVersion") | Some("IsAbsoluteLatestVersion") => true,
        None | Some("") => false,
        Some(other) => return Err(Error::unsupported(format!("the $filter `{other}` is not supported"))),
    };
    let number = |name: &str| req.query_param(name).and_then(|v| v.trim().parse::<usize>().ok());
    let (skip, top) = (number("$skip").unwrap_or(0), number("$top").unwrap_or(MAX_TOP).min(MAX_TOP));

    let packages = matching(registry, term.trim(), filter);
    let entries: Vec<(&PackageView, Versioned)> = packages
        .iter()
        .flat_map(|p| {
            let mut visible: Vec<Versioned> = versions(p).into_iter().filter(|v| filter.admits(v)).collect();
            if latest_only {
                visible = visible.pop().into_iter().collect();
            }
            visible.into_iter().map(move |v| (p, v))
        })
        .skip(skip)
        .take(top)
        .collect();

    let mut feed = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
         <feed xml:base=\"{base}\" xmlns=\"http://www.w3.org/2005/Atom\" \
         xmlns:d=\"http://schemas.microsoft.com/ado/2007/08/dataservices\" \
         xmlns:m=\"http://schemas.microsoft.com/ado/2007/08/dataservices/metadata\">\
         <id>{base}/Search</id><title type=\"text\">Search</title>",
        base = escape(urls.legacy_feed())
    );
    for (package, v) in &entries {
        write_entry(&mut feed, urls, package, v);
    }
    feed.push_str("</feed>");
    let response = http::bytes(200, "application/atom+xml; type=feed; charset=utf-8", feed.into_bytes());
    Ok(Outcome::respond(response))
}

/// An OData string literal (`'it''s'`) to its text.
fn odata_string(literal: &str) -> String {
    let inner = literal.trim();
    let inner = inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')).unwrap_or(inner);
    inner.replace("''", "'")
}

fn write_entry(feed: &mut String, urls: &Urls, package: &PackageView, v: &Versioned) {
    let meta = &v.artifact.metadata;
    let (id, version) = (escape(&package.name), escape(v.version.to_string()).into_owned());
    let text = |s: &Option<String>| escape(s.clone().unwrap_or_default()).into_owned();
    let published = rfc3339_ms(v.artifact.published_ms);
    let _ = write!(
        feed,
        "<entry><id>{base}/Packages(Id='{id}',Version='{version}')</id>\
         <title type=\"text\">{id}</title><summary type=\"text\">{summary}</summary>\
         <updated>{published}</updated><author><name>{authors}</name></author>\
         <content type=\"application/zip\" src=\"{content}\"/>\
         <m:properties><d:Id>{id}</d:Id><d:Version>{version}</d:Version>\
         <d:NormalizedVersion>{version}</d:NormalizedVersion>\
         <d:Description>{description}</d:Description><d:Tags>{tags}</d:Tags>\
         <d:ProjectUrl>{project}</d:ProjectUrl>\
         <d:Published m:type=\"Edm.DateTime\">{published}</d:Published>\
         <d:IsPrerelease m:type=\"Edm.Boolean\">{prerelease}</d:IsPrerelease>\
         <d:DownloadCount m:type=\"Edm.Int32\">0</d:DownloadCount>\
         <d:PackageSize m:type=\"Edm.Int64\">{size}</d:PackageSize>\
         </m:properties></entry>",
        base = escape(urls.legacy_feed()),
        summary = text(&meta.summary),
        authors = escape(meta.authors.join(", ")),
        content = escape(urls.package_content(&package.name, &v.version)),
        description = text(&meta.description),
        tags = escape(meta.keywords.join(" ")),
        project = text(&meta.homepage),
        prerelease = v.version.is_prerelease(),
        size = v.artifact.size,
    );
}

#[cfg(test)]
mod tests {
    use crate::protocol::handle;
    use crate::protocol::tests::{registry_with, request};
    use sluice_plugin_sdk::{Registry, Reply};

    fn feed(reg: &impl Registry, query: &str) -> String {
        match handle(
            reg,
            &request("GET", &format!("/api/v2/Search()?{query}")),
            &Vec::new(),
            &sluice_plugin_sdk::Limits::TEST,
        )
        .unwrap()
        .reply
        {
            Reply::Respond(r) => String::from_utf8(r.body).unwrap(),
            _ => panic!("expected a feed"),
        }
    }

    #[test]
    fn search_feed_lists_latest_listed_versions() {
        let reg = registry_with("Sluice.Demo", &[("1.0.0", false), ("1.5.0", true), ("2.0.0-beta", false)]);
        let latest = feed(&reg, "$filter=IsLatestVersion&searchTerm='demo'&includePrerelease=false&$skip=0&$top=30");
        assert_eq!(latest.matches("<entry>").count(), 1);
        assert!(latest.contains("<d:Id>Sluice.Demo</d:Id><d:Version>1.0.0</d:Version>"));
        assert!(
            latest.contains("src=\"http://reg.test/nuget/v3-flatcontainer/sluice.demo/1.0.0/sluice.demo.1.0.0.nupkg\"")
        );
        let all = feed(&reg, "searchTerm=''&includePrerelease=true");
        assert_eq!(all.matches("<entry>").count(), 2, "{all}");
        assert!(all.contains("<d:Version>2.0.0-beta</d:Version>"));
        assert_eq!(feed(&reg, "searchTerm='nope'").matches("<entry>").count(), 0);
        let service = handle(&reg, &request("GET", "/api/v2"), &Vec::new(), &sluice_plugin_sdk::Limits::TEST).unwrap();
        assert!(matches!(service.reply, Reply::Respond(r) if r.status == 200));
    }
}
