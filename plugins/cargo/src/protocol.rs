//! The HTTP protocol cargo speaks to an alternative registry: the sparse index under `/index/`
//! and the web API under `/api/v1/` (publish, yank, search, owners, downloads).

pub use crate::errors::render_error;
use crate::index::{self, index_path, own_index};
use crate::manifest::{canonical_name, CrateManifest};
use crate::parse::{read_crate, Check, Slice};
use crate::publish;
use serde_json::json;
use sha2::{Digest, Sha256};
use sluice_plugin_sdk::http;
use sluice_plugin_sdk::io::ReadAt;
use sluice_plugin_sdk::{
    summary_of, Effect, Error, ErrorKind, Outcome, PackageView, Registry, Request, Response, Upload, UploadSource, Yank,
};

/// The tag prefix that records who published a crate: the contract has no publisher field in
/// the registry view, so each publisher's name is a tag on the newest version they published.
pub const OWNER_TAG: &str = "owner:";

pub fn handle(registry: &impl Registry, req: &Request, body: impl ReadAt) -> Result<Outcome, Error> {
    let segments = req.segments();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let read = matches!(req.method.as_str(), "GET" | "HEAD");
    match (req.method.as_str(), segments.as_slice()) {
        (_, []) if read => Ok(Outcome::respond(http::text(
            200,
            format!("Sluice Cargo registry. Index: sparse+{}/index/\n", req.base_url),
        ))),
        // Not kept: whether it says `auth-required` depends on the request carrying a principal.
        (_, ["index", "config.json"]) if read => Ok(Outcome::respond(cached(req, config_json(req)))),
        (_, ["index", rest @ ..]) if read => index_file(registry, req, rest),
        ("PUT", ["api", "v1", "crates", "new"]) => publish(registry, req, body),
        (_, ["api", "v1", "crates"]) if read => search(registry, req).map(Outcome::keep_for_repository),
        ("DELETE", ["api", "v1", "crates", name, version, "yank"]) => yank(registry, name, version, true),
        ("PUT", ["api", "v1", "crates", name, version, "unyank"]) => yank(registry, name, version, false),
        (_, ["api", "v1", "crates", name, "owners"]) if read => {
            owners(registry, name).map(|o| o.keep_for_package(*name))
        }
        (_, ["api", "v1", "crates", _, "owners"]) => Err(Error::unsupported(
            "owners are the tokens that published the crate; grant publishing with a token of the repository instead",
        )),
        (_, ["api", "v1", "crates", name, version, "download"]) if read => download(registry, name, version),
        _ => Err(Error::not_found(format!("no such resource: {} {}", req.method, req.path))),
    }
}

pub(crate) fn already_uploaded(version: &str) -> Error {
    Error::new(ErrorKind::Conflict, format!("crate version `{version}` is already uploaded"))
}

/// `config.json`. The plugin does not learn whether the repository is private, but cargo only
/// authenticates this request after the host answered it with 401 (cargo's `auth-required`
/// handshake), so a request that carries a principal is one of a repository that needs a token.
fn config_json(req: &Request) -> Response {
    let mut config = json!({
        "dl": format!("{}/api/v1/crates", req.base_url),
        "api": req.base_url,
    });
    if req.principal.is_some() {
        config["auth-required"] = json!(true);
    }
    http::json(200, &config)
}

/// A response with an ETag of its body, answered with 304 when the client has it.
fn cached(req: &Request, response: Response) -> Response {
    let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&response.body))[..32]);
    let hit = req
        .header("if-none-match")
        .is_some_and(|tags| tags.split(',').any(|t| t.trim().trim_start_matches("W/") == etag));
    if hit {
        return http::empty(304).with_header("etag", etag);
    }
    response.with_header("etag", etag)
}

fn not_found(name: &str) -> Error {
    Error::not_found(format!("crate `{name}` does not exist"))
}

fn index_file(registry: &impl Registry, req: &Request, rest: &[&str]) -> Result<Outcome, Error> {
    let Some(name) = rest.last() else {
        return Err(Error::not_found("no such index file"));
    };
    // Only the RFC's path for the name is the name's file.
    if rest.join("/") != index_path(name) {
        return Err(Error::not_found(format!("no index file at /index/{}", rest.join("/"))));
    }
    let package = registry.package(name).ok_or_else(|| not_found(name))?;
    let body = index::file(&package, &own_index(&req.base_url))?;
    let response = cached(req, http::bytes(200, "text/plain; charset=utf-8", body.into_bytes()));
    Ok(Outcome::respond(response).keep_for_package(*name))
}

fn publish(registry: &impl Registry, req: &Request, body: impl ReadAt) -> Result<Outcome, Error> {
    let framed = publish::split(&body)?;
    let new = publish::new_crate(&framed.json)?;
    let krate = Slice { inner: &body, offset: framed.crate_offset, len: framed.crate_len };
    let manifest = read_crate(krate, Check::ManifestOnly)?;
    publish::check(&new, &manifest, &own_index(&req.base_url))?;
    check_new_version(registry, &manifest)?;
    let upload = Upload {
        file_name: manifest.file_name(),
        // The .crate is stored from the request body as it is, never copied through the plugin.
        source: UploadSource::BodyRange((framed.crate_offset, framed.crate_len)),
        package: Some(manifest.name.clone()),
        tags: req.principal.iter().map(|p| format!("{OWNER_TAG}{p}")).collect(),
    };
    let warnings = json!({ "warnings": { "invalid_categories": [], "invalid_badges": [], "other": [] } });
    Ok(Outcome::with_effects(vec![Effect::Publish(upload)], http::json(200, &warnings)))
}

/// crates.io's rules for a new version: a name differing only in case, `-` or `_` from an
/// existing crate is that crate's, spelled as it was first published; a version is never
/// uploaded twice, yanked or not, nor with only other build metadata.
fn check_new_version(registry: &impl Registry, manifest: &CrateManifest) -> Result<(), Error> {
    let canonical = canonical_name(&manifest.name);
    // The summary (versions without metadata) is all the check needs.
    let existing = match registry.summary(&manifest.name) {
        Some(p) => Some(p),
        // Another spelling with `-` and `_` swapped: search is by substring, so look among the
        // crates sharing the name's longest run without separators (only for a new name).
        None if manifest.name.contains(['-', '_']) => {
            let probe = manifest.name.split(['-', '_']).max_by_key(|s| s.len()).unwrap_or(&manifest.name);
            let found =
                registry.search(probe, 0, 1000).packages.into_iter().find(|p| canonical_name(&p.name) == canonical);
            found.as_ref().map(summary_of)
        }
        None => None,
    };
    let Some(existing) = existing else {
        return Ok(());
    };
    if existing.name != manifest.name {
        return Err(Error::invalid(format!(
            "crate `{}` is already published as `{}`; publish it under that name",
            manifest.name, existing.name
        )));
    }
    let version = semver::Version::parse(&manifest.vers).map_err(|e| Error::invalid(e.to_string()))?;
    for a in &existing.files {
        if let Ok(v) = semver::Version::parse(&a.version) {
            if (v.major, v.minor, v.patch, &v.pre) == (version.major, version.minor, version.patch, &version.pre) {
                return Err(already_uploaded(&a.version));
            }
        }
    }
    Ok(())
}

fn find_package(registry: &impl Registry, name: &str) -> Result<PackageView, Error> {
    registry.package(name).ok_or_else(|| not_found(name))
}

fn yank(registry: &impl Registry, name: &str, version: &str, yanked: bool) -> Result<Outcome, Error> {
    let package = registry.summary(name).ok_or_else(|| not_found(name))?;
    if !package.files.iter().any(|f| f.version == version) {
        return Err(Error::not_found(format!("crate `{name}` does not have a version `{version}`")));
    }
    let effect = Effect::Yank(Yank { package: package.name, version: version.to_string(), qualifier: None, yanked });
    Ok(Outcome::with_effects(vec![effect], http::json(200, &json!({ "ok": true }))))
}

/// The highest version clients can resolve (the highest of all when every version is yanked).
fn max_version(package: &PackageView) -> String {
    let best = |live: bool| {
        package
            .artifacts
            .iter()
            .filter(|a| !live || !a.yanked)
            .filter_map(|a| semver::Version::parse(&a.version).ok())
            .max()
    };
    best(true).or_else(|| best(false)).map(|v| v.to_string()).unwrap_or_default()
}

/// `cargo search`: `GET /api/v1/crates?q=TEXT&per_page=N`.
fn search(registry: &impl Registry, req: &Request) -> Result<Outcome, Error> {
    let query = req.query_param("q").unwrap_or_default();
    let per_page = req.query_param("per_page").and_then(|n| n.parse().ok()).unwrap_or(10u32).clamp(1, 100);
    let page = req.query_param("page").and_then(|n| n.parse().ok()).unwrap_or(1u32).max(1);
    let found = registry.search(query.trim(), (page - 1).saturating_mul(per_page), per_page);
    let crates: Vec<_> = found
        .packages
        .iter()
        .map(|p| {
            let max = max_version(p);
            let description =
                p.artifacts.iter().rev().find(|a| a.version == max).and_then(|a| a.metadata.summary.clone());
            json!({ "name": p.name, "max_version": max, "description": description })
        })
        .collect();
    Ok(Outcome::respond(http::json(200, &json!({ "crates": crates, "meta": { "total": found.total } }))))
}

/// `cargo owner --list`: the principals that published versions of the crate.
fn owners(registry: &impl Registry, name: &str) -> Result<Outcome, Error> {
    let package = registry.summary(name).ok_or_else(|| not_found(name))?;
    let users: Vec<_> = package
        .tags
        .iter()
        .filter_map(|(tag, _)| tag.strip_prefix(OWNER_TAG))
        .enumerate()
        .map(|(i, login)| json!({ "id": i + 1, "login": login, "name": login }))
        .collect();
    Ok(Outcome::respond(http::json(200, &json!({ "users": users }))))
}

/// A `.crate` download. Yanked versions stay downloadable: a locked build still needs them.
fn download(registry: &impl Registry, name: &str, version: &str) -> Result<Outcome, Error> {
    let package = find_package(registry, name)?;
    let artifact = package
        .artifacts
        .iter()
        .find(|a| a.version == version)
        .ok_or_else(|| Error::not_found(format!("crate `{name}` does not have a version `{version}`")))?;
    Ok(Outcome::serve_file(package.name.clone(), artifact.file_name.clone(), "application/gzip"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::tests::artifact;
    use crate::manifest::tests::APP_TOML;
    use crate::parse::tests::app_crate;
    use crate::publish::tests::{app_json, frame};
    use serde_json::Value;
    use sluice_plugin_sdk::{MemoryRegistry, Reply, Source, SummaryOnly};

    fn request(method: &str, path: &str, query: &str, headers: &[(&str, &str)]) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            base_url: "http://127.0.0.1:9/cargo".into(),
            principal: Some("ci".into()),
        }
    }

    fn registry() -> MemoryRegistry {
        let meta = CrateManifest::from_toml(APP_TOML).unwrap().to_metadata();
        let mut old = CrateManifest::from_toml(APP_TOML).unwrap();
        old.vers = "0.1.0".into();
        MemoryRegistry {
            tokens: Vec::new(),
            packages: vec![PackageView {
                name: "sluice-app".into(),
                created_ms: 0,
                modified_ms: 0,
                tags: vec![("owner:ci".into(), "0.2.0".into()), ("owner:ada".into(), "0.1.0".into())],
                artifacts: vec![artifact(old.to_metadata(), false), artifact(meta, true)],
            }],
        }
    }

    fn respond(outcome: Outcome) -> Response {
        match outcome.reply {
            Reply::Respond(r) => r,
            other => panic!("expected a response, got {other:?}"),
        }
    }

    fn get(path: &str, query: &str, headers: &[(&str, &str)]) -> Result<Response, Error> {
        handle(&registry(), &request("GET", path, query, headers), Vec::new()).map(respond)
    }

    fn body_json(r: &Response) -> Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    #[test]
    fn config_json_and_index_files_with_etags() {
        let config = get("/index/config.json", "", &[]).unwrap();
        assert_eq!(
            body_json(&config),
            json!({"dl": "http://127.0.0.1:9/cargo/api/v1/crates", "api": "http://127.0.0.1:9/cargo", "auth-required": true})
        );
        let mut anonymous = request("GET", "/index/config.json", "", &[]);
        anonymous.principal = None;
        let public = respond(handle(&registry(), &anonymous, Vec::new()).unwrap());
        assert!(body_json(&public).get("auth-required").is_none());

        let file = get("/index/sl/ui/sluice-app", "", &[]).unwrap();
        let text = String::from_utf8(file.body.clone()).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!((lines[0]["vers"].as_str(), lines[0]["yanked"].as_bool()), (Some("0.1.0"), Some(false)));
        assert_eq!(lines[1]["yanked"], true);
        let etag = file.headers.iter().find(|(k, _)| k == "etag").unwrap().1.clone();
        assert_eq!(get("/index/sl/ui/sluice-app", "", &[("if-none-match", &etag)]).unwrap().status, 304);
        assert_eq!(get("/index/sl/ui/nope-crate", "", &[]).unwrap_err().kind, ErrorKind::NotFound);
        assert_eq!(get("/index/3/s/sluice-app", "", &[]).unwrap_err().kind, ErrorKind::NotFound, "wrong path");
    }

    #[test]
    fn publish_stores_the_crate_as_a_body_range() {
        let mut json = app_json();
        json["vers"] = json!("0.3.0");
        let toml = APP_TOML.replace("version = \"0.2.0\"", "version = \"0.3.0\"");
        let krate = crate::parse::tests::crate_file(&[("sluice-app-0.3.0/Cargo.toml", &toml)]);
        let body = frame(&json, &krate);
        let outcome =
            handle(&SummaryOnly(&registry()), &request("PUT", "/api/v1/crates/new", "", &[]), body.clone()).unwrap();
        match &outcome.effects[..] {
            [Effect::Publish(Upload { file_name, source: UploadSource::BodyRange((offset, len)), package, tags })] => {
                assert_eq!(file_name, "sluice-app-0.3.0.crate");
                assert_eq!(&body[*offset as usize..(*offset + *len) as usize], &krate[..]);
                assert_eq!(package.as_deref(), Some("sluice-app"));
                assert_eq!(tags, &["owner:ci".to_string()]);
            }
            other => panic!("unexpected effects {other:?}"),
        }
        assert!(body_json(&respond(outcome))["warnings"].is_object());

        // A yanked version is still taken: crates.io never reuses a version.
        let again = frame(&app_json(), &app_crate());
        let err = handle(&SummaryOnly(&registry()), &request("PUT", "/api/v1/crates/new", "", &[]), again).unwrap_err();
        assert_eq!(
            (err.kind, err.message.as_str()),
            (ErrorKind::Conflict, "crate version `0.2.0` is already uploaded")
        );

        let mut plus = app_json();
        plus["vers"] = json!("0.2.0+build.5");
        let toml = APP_TOML.replace("version = \"0.2.0\"", "version = \"0.2.0+build.5\"");
        let krate = crate::parse::tests::crate_file(&[("sluice-app-0.2.0+build.5/Cargo.toml", &toml)]);
        let err =
            handle(&registry(), &request("PUT", "/api/v1/crates/new", "", &[]), frame(&plus, &krate)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Conflict, "only build metadata differs");

        let renamed = APP_TOML.replace("name = \"sluice-app\"", "name = \"sluice_app\"");
        let mut json = app_json();
        json["name"] = json!("sluice_app");
        let krate = crate::parse::tests::crate_file(&[("sluice_app-0.2.0/Cargo.toml", &renamed)]);
        let err =
            handle(&registry(), &request("PUT", "/api/v1/crates/new", "", &[]), frame(&json, &krate)).unwrap_err();
        assert!(err.message.contains("already published as `sluice-app`"), "{}", err.message);

        let junk = handle(&registry(), &request("PUT", "/api/v1/crates/new", "", &[]), b"junk".to_vec()).unwrap_err();
        assert_eq!(junk.kind, ErrorKind::Invalid);
    }

    #[test]
    fn yank_search_owners_and_downloads() {
        let reg = registry();
        let writes = SummaryOnly(&reg);
        let outcome =
            handle(&writes, &request("DELETE", "/api/v1/crates/sluice-app/0.1.0/yank", "", &[]), Vec::new()).unwrap();
        assert!(matches!(&outcome.effects[..], [Effect::Yank(Yank { yanked: true, qualifier: None, .. })]));
        let outcome =
            handle(&writes, &request("PUT", "/api/v1/crates/sluice-app/0.2.0/unyank", "", &[]), Vec::new()).unwrap();
        assert!(matches!(&outcome.effects[..], [Effect::Yank(Yank { yanked: false, .. })]));
        let missing = handle(&writes, &request("DELETE", "/api/v1/crates/sluice-app/9.0.0/yank", "", &[]), Vec::new());
        assert_eq!(missing.unwrap_err().kind, ErrorKind::NotFound);

        let found = body_json(&get("/api/v1/crates", "q=sluice&per_page=5", &[]).unwrap());
        assert_eq!(found["meta"]["total"], 1);
        assert_eq!(found["crates"][0]["max_version"], "0.1.0", "0.2.0 is yanked");

        let owners = body_json(&get("/api/v1/crates/sluice-app/owners", "", &[]).unwrap());
        let logins: Vec<_> = owners["users"].as_array().unwrap().iter().map(|u| u["login"].clone()).collect();
        assert_eq!(logins, [json!("ci"), json!("ada")]);

        let outcome =
            handle(&reg, &request("GET", "/api/v1/crates/sluice-app/0.2.0/download", "", &[]), Vec::new()).unwrap();
        match outcome.reply {
            Reply::ServeFile(f) => assert_eq!(f.file_name, "sluice-app-0.2.0.crate", "yanked files stay downloadable"),
            other => panic!("expected a file, got {other:?}"),
        }
    }

    #[test]
    fn errors_are_what_cargo_prints() {
        let r = render_error(&Error::new(ErrorKind::Conflict, "version 1.2.3 of sluice-app already exists"));
        assert_eq!(r.status, 409);
        assert_eq!(body_json(&r), json!({"errors": [{"detail": "crate version `1.2.3` is already uploaded"}]}));
        let r = render_error(&Error::new(ErrorKind::Internal, "disk on fire at /var/x"));
        assert_eq!(body_json(&r)["errors"][0]["detail"], "internal server error");
        let r = render_error(&Error::unauthorized("needs a token"));
        assert_eq!(r.status, 401);
    }

    fn outcome(path: &str, query: &str) -> Outcome {
        handle(&registry(), &request("GET", path, query, &[]), Vec::new()).unwrap()
    }

    #[test]
    fn reads_declare_what_they_depend_on() {
        let package = [Source::Package("sluice-app".into())];
        assert_eq!(outcome("/index/sl/ui/sluice-app", "").kept_for(), Some(&package[..]));
        assert_eq!(outcome("/api/v1/crates/sluice-app/owners", "").kept_for(), Some(&package[..]));
        assert_eq!(outcome("/api/v1/crates", "q=sluice").kept_for(), Some(&[Source::Repository][..]));
        // config.json says `auth-required` by the request's principal: never kept.
        assert!(outcome("/index/config.json", "").keep.is_none());
        assert!(outcome("/api/v1/crates/sluice-app/0.2.0/download", "").keep.is_none());
        let etag = respond(outcome("/index/sl/ui/sluice-app", "")).headers.into_iter().find(|(k, _)| k == "etag");
        let revalidated = handle(
            &registry(),
            &request("GET", "/index/sl/ui/sluice-app", "", &[("if-none-match", &etag.unwrap().1)]),
            Vec::new(),
        )
        .unwrap();
        assert!(revalidated.keep.is_none(), "a 304 is not the document");
    }

    /// A crate with 10,000 versions: its index file lists each once, in order, and a publish
    /// against it reads only the summary.
    #[test]
    fn ten_thousand_versions() {
        let mut reg = registry();
        let template = reg.packages[0].artifacts[0].clone();
        reg.packages[0].artifacts = (0..10_000)
            .map(|i| {
                let mut manifest = CrateManifest::from_stored(&template.metadata.manifest).unwrap();
                manifest.vers = format!("1.{}.{}", i / 100, i % 100);
                artifact(manifest.to_metadata(), false)
            })
            .collect();
        let file = respond(handle(&reg, &request("GET", "/index/sl/ui/sluice-app", "", &[]), Vec::new()).unwrap());
        let text = String::from_utf8(file.body).unwrap();
        let versions: Vec<String> = text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["vers"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(versions.len(), 10_000);
        assert_eq!((versions[0].as_str(), versions[9_999].as_str()), ("1.0.0", "1.99.99"));

        let mut json = app_json();
        json["vers"] = json!("1.42.7");
        let toml = APP_TOML.replace("version = \"0.2.0\"", "version = \"1.42.7\"");
        let krate = crate::parse::tests::crate_file(&[("sluice-app-1.42.7/Cargo.toml", &toml)]);
        let req = request("PUT", "/api/v1/crates/new", "", &[]);
        let err = handle(&SummaryOnly(&reg), &req, frame(&json, &krate)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Conflict);
    }
}
