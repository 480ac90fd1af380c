//! The NuGet server protocol: the V3 service index and its resources, the push/delete endpoints
//! (`PackagePublish/2.0.0`), and the V2 `Search()` feed that `nuget list` uses.

pub use crate::errors::render_error;
use crate::parse::{EmbeddedRole, StoredManifest};
use crate::version::{same_version, NuGetVersion};
use crate::{multipart, parse, proxy, registration, search, v2feed};
use serde_json::json;
use sluice_plugin_sdk::http::{self, json};
use sluice_plugin_sdk::io::ReadAt;
use sluice_plugin_sdk::{
    Artifact, Effect, Error, ErrorKind, Limits, Outcome, PackageView, Registry, Request, Upload, UploadSource, Yank,
};

/// The URLs of one repository's NuGet resources.
pub struct Urls<'a> {
    base: &'a str,
}

impl<'a> Urls<'a> {
    pub fn new(base: &'a str) -> Self {
        Urls { base: base.trim_end_matches('/') }
    }
    pub fn publish(&self) -> String {
        format!("{}/api/v2/package", self.base)
    }
    pub fn legacy_feed(&self) -> String {
        format!("{}/api/v2", self.base)
    }
    pub fn flat_container(&self) -> String {
        format!("{}/v3-flatcontainer/", self.base)
    }
    pub fn registrations(&self) -> String {
        format!("{}/v3/registration/", self.base)
    }
    pub fn search(&self) -> String {
        format!("{}/v3/search", self.base)
    }
    pub fn autocomplete(&self) -> String {
        format!("{}/v3/autocomplete", self.base)
    }
    pub fn package_content(&self, id: &str, version: &NuGetVersion) -> String {
        let (id, version) = (id.to_lowercase(), version.lower());
        format!("{}/v3-flatcontainer/{id}/{version}/{id}.{version}.nupkg", self.base)
    }
    /// An embedded icon, where nuget.org serves it too.
    pub fn icon(&self, id: &str, version: &NuGetVersion) -> String {
        format!("{}/v3-flatcontainer/{}/{}/icon", self.base, id.to_lowercase(), version.lower())
    }
    /// An embedded license file (`<license type="file">`), beside the package's icon.
    pub fn license(&self, id: &str, version: &NuGetVersion) -> String {
        format!("{}/v3-flatcontainer/{}/{}/license", self.base, id.to_lowercase(), version.lower())
    }
    pub fn registration_index(&self, id: &str) -> String {
        format!("{}/v3/registration/{}/index.json", self.base, id.to_lowercase())
    }
    pub fn registration_leaf(&self, id: &str, version: &NuGetVersion) -> String {
        format!("{}/v3/registration/{}/{}.json", self.base, id.to_lowercase(), version.lower())
    }
    pub fn registration_page(&self, id: &str, lower: &NuGetVersion, upper: &NuGetVersion) -> String {
        format!("{}/v3/registration/{}/page/{}/{}.json", self.base, id.to_lowercase(), lower.lower(), upper.lower())
    }
}

/// A stored version with its parsed NuGet version.
pub struct Versioned<'a> {
    pub version: NuGetVersion,
    pub artifact: &'a Artifact,
}

impl Versioned<'_> {
    pub fn listed(&self) -> bool {
        self.artifact.is_live()
    }
}

/// A package's versions, lowest first.
pub fn versions(package: &PackageView) -> Vec<Versioned<'_>> {
    let mut out: Vec<Versioned<'_>> = package
        .artifacts
        .iter()
        .filter_map(|artifact| Some(Versioned { version: NuGetVersion::parse(&artifact.version).ok()?, artifact }))
        .collect();
    out.sort_by(|a, b| a.version.cmp(&b.version));
    out
}

/// Serves one request of the NuGet protocol.
pub fn handle(registry: &impl Registry, req: &Request, body: &impl ReadAt, limits: &Limits) -> Result<Outcome, Error> {
    let urls = Urls::new(&req.base_url);
    let segments = req.segments();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let read = matches!(req.method.as_str(), "GET" | "HEAD");
    // Every read below renders from the registry view and the request's URL alone, so the host
    // may keep it until what it read changes (the `keep_*` calls leave stored files and errors
    // alone).
    if registry.upstream_configured() && read {
        if let Some(outcome) = proxied(registry, &urls, req, &segments) {
            return outcome;
        }
    }
    match (req.method.as_str(), segments.as_slice()) {
        (_, ["v3", "index.json"]) if read => Ok(Outcome::respond(json(200, &service_index(&urls))).keep_forever()),
        (_, ["v3-flatcontainer", id, "index.json"]) if read => {
            flat_versions(registry, id).map(|o| o.keep_for_package(*id))
        }
        (_, ["v3-flatcontainer", id, version, file]) if read => {
            flat_file(registry, id, version, file).map(|o| o.keep_for_package(*id))
        }
        (_, ["v3", "registration", id, "index.json"]) if read => {
            registration::index(registry, &urls, id).map(|o| o.keep_for_package(*id))
        }
        (_, ["v3", "registration", id, "page", lower, upper]) if read => {
            registration::page(registry, &urls, id, lower, upper).map(|o| o.keep_for_package(*id))
        }
        (_, ["v3", "registration", id, leaf]) if read => {
            registration::leaf(registry, &urls, id, leaf).map(|o| o.keep_for_package(*id))
        }
        (_, ["v3", "search"]) if read => search::query(registry, &urls, req).map(Outcome::keep_for_repository),
        (_, ["v3", "autocomplete"]) if read => search::autocomplete(registry, req).map(Outcome::keep_for_repository),
        (_, ["api", "v2"]) if read => Ok(Outcome::respond(v2feed::service_document(&urls)).keep_forever()),
        (_, ["api", "v2", "Search()"]) if read => {
            v2feed::search(registry, &urls, req).map(Outcome::keep_for_repository)
        }
        ("PUT", ["api", "v2", "package"]) => push(registry, req, body, limits),
        ("DELETE", ["api", "v2", "package", id, version]) => set_listed(registry, req, id, version, false),
        ("POST", ["api", "v2", "package", id, version]) => set_listed(registry, req, id, version, true),
        _ => Err(Error::not_found(format!("no NuGet resource at {} {}", req.method, req.path))),
    }
}

/// The reads a proxy repository answers from its upstream (see `proxy`); none for the others,
/// which it serves as any repository does (the service index is this repository's; pushes and
/// unlists act on its own versions; autocomplete and the V2 feed read what is stored here).
fn proxied(registry: &impl Registry, urls: &Urls, req: &Request, segments: &[&str]) -> Option<Result<Outcome, Error>> {
    Some(match segments {
        ["v3", "search"] => proxy::search(registry, urls, req),
        ["v3-flatcontainer", id, "index.json"] => proxy::flat_versions(registry, id),
        ["v3-flatcontainer", id, version, file] => {
            let stored = registry.package(id).is_some_and(|p| find_version(&p, version).is_ok());
            if stored {
                return None;
            }
            proxy::flat_file(registry, urls, id, version, file)
        }
        ["v3", "registration", id, "index.json"] => proxy::registration_index(registry, urls, id),
        ["v3", "registration", id, leaf] if !leaf.is_empty() => proxy::registration_leaf(registry, urls, id, leaf),
        _ => return None,
    })
}

fn service_index(urls: &Urls) -> serde_json::Value {
    let mut resources = vec![
        resource(urls.publish(), "PackagePublish/2.0.0", "Push and delete (unlist) packages"),
        resource(urls.flat_container(), "PackageBaseAddress/3.0.0", "Package contents by lower-case id and version"),
        resource(urls.legacy_feed(), "LegacyGallery/2.0.0", "The V2 feed `nuget list` searches"),
    ];
    for kind in [
        "RegistrationsBaseUrl",
        "RegistrationsBaseUrl/3.0.0-rc",
        "RegistrationsBaseUrl/3.0.0-beta",
        "RegistrationsBaseUrl/3.4.0",
        "RegistrationsBaseUrl/3.6.0",
    ] {
        resources.push(resource(urls.registrations(), kind, "Package metadata, every version including SemVer 2"));
    }
    for kind in [
        "SearchQueryService",
        "SearchQueryService/3.0.0-rc",
        "SearchQueryService/3.0.0-beta",
        "SearchQueryService/3.5.0",
    ] {
        resources.push(resource(urls.search(), kind, "Search listed packages"));
    }
    for kind in [
        "SearchAutocompleteService",
        "SearchAutocompleteService/3.0.0-rc",
        "SearchAutocompleteService/3.0.0-beta",
        "SearchAutocompleteService/3.5.0",
    ] {
        resources.push(resource(urls.autocomplete(), kind, "Package ids and versions for autocompletion"));
    }
    json!({ "version": "3.0.0", "resources": resources })
}

fn resource(id: String, kind: &str, comment: &str) -> serde_json::Value {
    json!({ "@id": id, "@type": kind, "comment": comment })
}

fn find_package(registry: &impl Registry, id: &str) -> Result<PackageView, Error> {
    registry.package(id).ok_or_else(|| Error::not_found(format!("package '{id}' was not found")))
}

fn find_version<'a>(package: &'a PackageView, version: &str) -> Result<&'a Artifact, Error> {
    package
        .artifacts
        .iter()
        .find(|a| same_version(&a.version, version))
        .ok_or_else(|| Error::not_found(format!("package '{}' has no version {version}", package.name)))
}

/// Every version, unlisted ones too: an unlisted version stays restorable by exact version.
fn flat_versions(registry: &impl Registry, id: &str) -> Result<Outcome, Error> {
    let package = find_package(registry, id)?;
    let list: Vec<String> = versions(&package).iter().map(|v| v.version.lower()).collect();
    Ok(Outcome::respond(json(200, &json!({ "versions": list }))))
}

fn flat_file(registry: &impl Registry, id: &str, version: &str, file: &str) -> Result<Outcome, Error> {
    let package = find_package(registry, id)?;
    let artifact = find_version(&package, version)?;
    let canonical = NuGetVersion::parse(&artifact.version).map_err(Error::not_found)?.lower();
    let lower_id = package.name.to_lowercase();
    let file = file.to_lowercase();
    if file == format!("{lower_id}.{canonical}.nupkg") {
        Ok(Outcome::serve_file(package.name.clone(), artifact.file_name.clone(), "application/octet-stream"))
    } else if file == format!("{lower_id}.nuspec") {
        let body = StoredManifest::nuspec_of(&artifact.metadata.manifest).into_owned().into_bytes();
        Ok(Outcome::respond(http::bytes(200, "application/xml", body)))
    } else if let Some(role) = embedded_role(&file) {
        let stored = StoredManifest::read(&artifact.metadata.manifest);
        let embedded = stored
            .file(role)
            .ok_or_else(|| Error::not_found(format!("package '{}' {canonical} embeds no {file} file", package.name)))?;
        let content_type = match role {
            EmbeddedRole::Icon => parse::icon_type(&embedded.path).unwrap_or("application/octet-stream"),
            EmbeddedRole::License => "text/plain; charset=utf-8",
        };
        Ok(Outcome::respond(http::bytes(200, content_type, embedded.bytes())))
    } else {
        Err(Error::not_found(format!("no file '{file}' in package '{}' {canonical}", package.name)))
    }
}

fn embedded_role(file: &str) -> Option<EmbeddedRole> {
    match file {
        "icon" => Some(EmbeddedRole::Icon),
        "license" => Some(EmbeddedRole::License),
        _ => None,
    }
}

/// A window of the request body, so the package inside a multipart body reads as a file.
struct BodyRange<'a, B: ReadAt> {
    body: &'a B,
    offset: u64,
    len: u64,
}

impl<B: ReadAt> ReadAt for BodyRange<'_, B> {
    fn size(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, len: u32) -> Vec<u8> {
        if offset >= self.len {
            return Vec::new();
        }
        let len = (len as u64).min(self.len - offset) as u32;
        self.body.read_at(self.offset + offset, len)
    }
}

/// `nuget push`: the package is a part of a multipart body. It is read here too (central
/// directory and nuspec only) to name the stored file after its id and version and to refuse an
/// invalid package or an existing version before anything is stored.
fn push(registry: &impl Registry, req: &Request, body: &impl ReadAt, limits: &Limits) -> Result<Outcome, Error> {
    require_api_key(req)?;
    let boundary = multipart::boundary(req.header("content-type").unwrap_or(""))?;
    let (offset, len) = multipart::file_part(body, &boundary)?;
    let meta = parse::parse(BodyRange { body, offset, len }, limits)?;
    // The summary (versions without metadata) is all a duplicate check needs.
    if let Some(existing) = registry.summary(&meta.name) {
        if let Some(file) = existing.files.iter().find(|f| same_version(&f.version, &meta.version)) {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("package '{}' {} already exists and cannot be modified", existing.name, file.version),
            ));
        }
    }
    let version = NuGetVersion::parse(&meta.version).map_err(Error::invalid)?;
    let publish = Effect::Publish(Upload {
        file_name: format!("{}.{}.nupkg", meta.name.to_lowercase(), version.lower()),
        source: UploadSource::BodyRange((offset, len)),
        package: Some(meta.name.clone()),
        tags: Vec::new(),
    });
    Ok(Outcome::with_effects(vec![publish], http::text(201, format!("Created {} {}", meta.name, meta.version))))
}

/// The host enforces the publish scope on effects; refusing an anonymous change up front too
/// keeps a client without a key from learning anything about the package first.
fn require_api_key(req: &Request) -> Result<(), Error> {
    match req.principal {
        Some(_) => Ok(()),
        None => Err(Error::unauthorized("this needs an API key with the publish scope (-ApiKey)")),
    }
}

/// `nuget delete` unlists (NuGet never deletes from a feed); a POST to the same URL relists.
fn set_listed(
    registry: &impl Registry,
    req: &Request,
    id: &str,
    version: &str,
    listed: bool,
) -> Result<Outcome, Error> {
    require_api_key(req)?;
    let package = registry.summary(id).ok_or_else(|| Error::not_found(format!("package '{id}' was not found")))?;
    let file = package
        .files
        .iter()
        .find(|f| same_version(&f.version, version))
        .ok_or_else(|| Error::not_found(format!("package '{}' has no version {version}", package.name)))?;
    let yank = Effect::Yank(Yank {
        package: package.name.clone(),
        version: file.version.clone(),
        qualifier: None,
        yanked: !listed,
    });
    let what = if listed { "relisted" } else { "unlisted" };
    let message = format!("{} {} {what}", package.name, file.version);
    Ok(Outcome::with_effects(vec![yank], http::text(200, message)))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::parse::tests::DEMO_NUSPEC;
    use sluice_plugin_sdk::{MemoryRegistry, Metadata, Reply, Source, SummaryOnly};
    use std::io::Write;

    pub fn request(method: &str, path_and_query: &str) -> Request {
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        Request {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            headers: Vec::new(),
            base_url: "http://reg.test/nuget".into(),
            principal: Some("alice".into()),
        }
    }

    pub fn artifact(id: &str, version: &str, yanked: bool) -> Artifact {
        let mut metadata = Metadata::new(id, version);
        metadata.description = Some(format!("{id} description"));
        metadata.authors = vec!["Alice".into()];
        metadata.dependencies = vec![sluice_plugin_sdk::Dependency {
            name: "Dep.One".into(),
            requirement: "1.0".into(),
            kind: "runtime".into(),
            group: "net6.0".into(),
        }];
        metadata.manifest = format!(
            "<package><metadata><id>{id}</id><version>{version}</version><dependencies>\
             <group targetFramework=\"net6.0\"><dependency id=\"Dep.One\" version=\"1.0\" /></group>\
             </dependencies></metadata></package>"
        );
        Artifact {
            version: version.into(),
            qualifier: String::new(),
            file_name: format!("{}.{}.nupkg", id.to_lowercase(), version.to_lowercase()),
            size: 100,
            sha256: "00".into(),
            sha512: "11".into(),
            sha1: "22".into(),
            published_ms: 1_700_000_000_000,
            metadata,
            deprecated: None,
            yanked,
        }
    }

    pub fn registry_with(id: &str, versions: &[(&str, bool)]) -> MemoryRegistry {
        MemoryRegistry {
            tokens: Vec::new(),
            packages: vec![PackageView {
                name: id.into(),
                created_ms: 0,
                modified_ms: 0,
                tags: Vec::new(),
                artifacts: versions.iter().map(|(v, yanked)| artifact(id, v, *yanked)).collect(),
            }],
        }
    }

    pub fn respond_json(outcome: Outcome) -> serde_json::Value {
        match outcome.reply {
            Reply::Respond(r) => {
                assert_eq!(r.status, 200);
                serde_json::from_slice(&r.body).unwrap()
            }
            _ => panic!("expected a response"),
        }
    }

    fn get(registry: &MemoryRegistry, path: &str) -> Result<Outcome, Error> {
        handle(registry, &request("GET", path), &Vec::new(), &Limits::TEST)
    }

    fn nupkg() -> Vec<u8> {
        let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        out.start_file("Sluice.Demo.nuspec", zip::write::SimpleFileOptions::default()).unwrap();
        out.write_all(DEMO_NUSPEC.as_bytes()).unwrap();
        out.finish().unwrap().into_inner()
    }

    fn push_request(package: &[u8]) -> (Request, Vec<u8>) {
        let mut req = request("PUT", "/api/v2/package");
        req.headers.push(("content-type".into(), "multipart/form-data; boundary=\"XyZ\"".into()));
        let mut body = b"--XyZ\r\nContent-Type: application/octet-stream\r\nContent-Disposition: form-data; name=package; filename=package.nupkg\r\n\r\n".to_vec();
        body.extend_from_slice(package);
        body.extend_from_slice(b"\r\n--XyZ--\r\n");
        (req, body)
    }

    #[test]
    fn service_index_advertises_every_resource() {
        let index = respond_json(get(&MemoryRegistry::default(), "/v3/index.json").unwrap());
        let types: Vec<&str> =
            index["resources"].as_array().unwrap().iter().map(|r| r["@type"].as_str().unwrap()).collect();
        for t in [
            "PackagePublish/2.0.0",
            "PackageBaseAddress/3.0.0",
            "RegistrationsBaseUrl/3.6.0",
            "SearchQueryService",
            "LegacyGallery/2.0.0",
        ] {
            assert!(types.contains(&t), "{t}");
        }
        let publish =
            index["resources"].as_array().unwrap().iter().find(|r| r["@type"] == "PackagePublish/2.0.0").unwrap();
        assert_eq!(publish["@id"], "http://reg.test/nuget/api/v2/package");
    }

    #[test]
    fn flat_container_lists_every_version_and_serves_files() {
        let reg = registry_with("Sluice.Demo", &[("1.0.0", false), ("1.0.0-Beta", false), ("2.0.0", true)]);
        let versions = respond_json(get(&reg, "/v3-flatcontainer/sluice.demo/index.json").unwrap());
        assert_eq!(versions["versions"], json!(["1.0.0-beta", "1.0.0", "2.0.0"]));
        let file = get(&reg, "/v3-flatcontainer/sluice.demo/2.0.0/sluice.demo.2.0.0.nupkg").unwrap();
        match file.reply {
            Reply::ServeFile(f) => {
                assert_eq!((f.package.as_str(), f.file_name.as_str()), ("Sluice.Demo", "sluice.demo.2.0.0.nupkg"))
            }
            _ => panic!("expected serve-file"),
        }
        match get(&reg, "/v3-flatcontainer/sluice.demo/1.0.0-beta/sluice.demo.nuspec").unwrap().reply {
            Reply::Respond(r) => assert!(String::from_utf8(r.body).unwrap().contains("<id>Sluice.Demo</id>")),
            _ => panic!("expected the manifest"),
        }
        assert_eq!(get(&reg, "/v3-flatcontainer/other/index.json").unwrap_err().kind, ErrorKind::NotFound);
        assert_eq!(
            get(&reg, "/v3-flatcontainer/sluice.demo/3.0.0/sluice.demo.3.0.0.nupkg").unwrap_err().kind,
            ErrorKind::NotFound
        );
    }

    #[test]
    fn push_publishes_the_multipart_file_range() {
        let package = nupkg();
        let (req, body) = push_request(&package);
        let outcome = handle(&MemoryRegistry::default(), &req, &body, &Limits::TEST).unwrap();
        match &outcome.effects[..] {
            [Effect::Publish(upload)] => {
                assert_eq!(upload.file_name, "sluice.demo.1.0.0.nupkg");
                let UploadSource::BodyRange((offset, len)) = upload.source else { panic!("expected a body range") };
                assert_eq!(&body[offset as usize..(offset + len) as usize], &package[..]);
            }
            other => panic!("unexpected effects {other:?}"),
        }
        let Reply::Respond(r) = outcome.reply else { panic!() };
        assert_eq!(r.status, 201);
    }

    #[test]
    fn push_refuses_duplicates_and_invalid_packages() {
        let (req, body) = push_request(&nupkg());
        let existing = registry_with("sluice.demo", &[("1.0", false)]);
        let err = handle(&SummaryOnly(&existing), &req, &body, &Limits::TEST).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Conflict);
        let (req, body) = push_request(b"not a zip");
        let err = handle(&MemoryRegistry::default(), &req, &body, &Limits::TEST).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid);
        assert!(err.message.contains(".nupkg"));
        let mut plain = request("PUT", "/api/v2/package");
        plain.headers.push(("content-type".into(), "application/octet-stream".into()));
        assert_eq!(
            handle(&MemoryRegistry::default(), &plain, &nupkg(), &Limits::TEST).unwrap_err().kind,
            ErrorKind::Invalid
        );
        let (mut anonymous, body) = push_request(&nupkg());
        anonymous.principal = None;
        assert_eq!(
            handle(&MemoryRegistry::default(), &anonymous, &body, &Limits::TEST).unwrap_err().kind,
            ErrorKind::Unauthorized
        );
    }

    #[test]
    fn delete_unlists_and_post_relists() {
        let reg = registry_with("Sluice.Demo", &[("1.0.0-Beta", false)]);
        let reg = SummaryOnly(&reg);
        let outcome =
            handle(&reg, &request("DELETE", "/api/v2/package/sluice.demo/1.0.0-beta"), &Vec::new(), &Limits::TEST)
                .unwrap();
        match &outcome.effects[..] {
            [Effect::Yank(y)] => {
                assert_eq!((y.package.as_str(), y.version.as_str(), y.yanked), ("Sluice.Demo", "1.0.0-Beta", true))
            }
            other => panic!("unexpected effects {other:?}"),
        }
        let outcome =
            handle(&reg, &request("POST", "/api/v2/package/Sluice.Demo/1.0.0-beta"), &Vec::new(), &Limits::TEST)
                .unwrap();
        assert!(matches!(&outcome.effects[..], [Effect::Yank(y)] if !y.yanked));
        let missing = handle(&reg, &request("DELETE", "/api/v2/package/sluice.demo/9.0.0"), &Vec::new(), &Limits::TEST);
        assert_eq!(missing.unwrap_err().kind, ErrorKind::NotFound);
        let mut anonymous = request("DELETE", "/api/v2/package/sluice.demo/1.0.0-beta");
        anonymous.principal = None;
        assert_eq!(handle(&reg, &anonymous, &Vec::new(), &Limits::TEST).unwrap_err().kind, ErrorKind::Unauthorized);
    }

    #[test]
    fn errors_render_as_plain_text() {
        let r = render_error(&Error::new(ErrorKind::Conflict, "package 'A' 1.0.0 already exists"));
        assert_eq!(r.status, 409);
        assert_eq!(String::from_utf8(r.body).unwrap(), "package 'A' 1.0.0 already exists");
        assert_eq!(render_error(&Error::new(ErrorKind::Internal, "db path /x")).body, b"internal server error");
    }

    #[test]
    fn reads_declare_what_they_depend_on() {
        let reg = registry_with("Sluice.Demo", &[("1.0.0", false), ("2.0.0", true)]);
        let package = |id: &str| vec![Source::Package(id.into())];
        for path in [
            "/v3-flatcontainer/sluice.demo/index.json",
            "/v3-flatcontainer/sluice.demo/1.0.0/sluice.demo.nuspec",
            "/v3/registration/sluice.demo/index.json",
            "/v3/registration/sluice.demo/1.0.0.json",
        ] {
            let outcome = get(&reg, path).unwrap();
            assert_eq!(outcome.kept_for().map(<[Source]>::to_vec), Some(package("sluice.demo")), "{path}");
        }
        for path in ["/v3/search?q=demo", "/v3/autocomplete?q=demo", "/api/v2/Search()?searchTerm='demo'"] {
            assert_eq!(get(&reg, path).unwrap().kept_for(), Some(&[Source::Repository][..]), "{path}");
        }
        for path in ["/v3/index.json", "/api/v2"] {
            assert_eq!(get(&reg, path).unwrap().kept_for(), Some(&[][..]), "{path}: depends on nothing");
        }
        let nupkg = get(&reg, "/v3-flatcontainer/sluice.demo/1.0.0/sluice.demo.1.0.0.nupkg").unwrap();
        assert!(nupkg.keep.is_none(), "a stored file is not a kept response");
    }

    /// A package with 10,000 versions: the flat container lists each once, lowest first, the
    /// registration index pages them, and a push against it reads only the summary.
    #[test]
    fn ten_thousand_versions() {
        let versions: Vec<(String, bool)> =
            (0..10_000).rev().map(|i| (format!("1.{}.{}", i / 100, i % 100), i % 7 == 0)).collect();
        let refs: Vec<(&str, bool)> = versions.iter().map(|(v, y)| (v.as_str(), *y)).collect();
        let reg = registry_with("Sluice.Demo", &refs);
        let list = respond_json(get(&reg, "/v3-flatcontainer/sluice.demo/index.json").unwrap());
        let list = list["versions"].as_array().unwrap();
        assert_eq!(list.len(), 10_000);
        assert_eq!(
            (list[0].as_str(), list[1].as_str(), list[9_999].as_str()),
            (Some("1.0.0"), Some("1.0.1"), Some("1.99.99"))
        );
        let index = respond_json(get(&reg, "/v3/registration/sluice.demo/index.json").unwrap());
        assert_eq!(index["count"], 10_000_usize.div_ceil(crate::registration::PAGE_SIZE));
        // Sluice.Demo 1.0.0 is among them (1.0 is 1.0.0).
        let (req, body) = push_request(&nupkg());
        let err = handle(&SummaryOnly(&reg), &req, &body, &Limits::TEST).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Conflict);
    }
}
