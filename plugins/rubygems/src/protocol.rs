//! The HTTP protocol `gem` and `bundle` speak: push, yank, the compact index, the Marshal
//! indexes and gem downloads.

pub use crate::errors::render_error;
use crate::index::{self, SpecsIndex};
use crate::parse::{read_gem, Check};
use crate::proxy;
use crate::spec::{Gemspec, RUBY_PLATFORM};
use base64::Engine;
use flate2::write::{GzEncoder, ZlibEncoder};
use flate2::Compression;
use sha2::{Digest, Sha256};
use sluice_plugin_sdk::http::{self, query_pairs};
use sluice_plugin_sdk::io::{BlobReader, ReadAt};
use sluice_plugin_sdk::{
    Change, ChangeKind, Effect, Error, ErrorKind, Outcome, PackageView, Registry, Request, Response, Upload,
    UploadSource, VersionState, Yank,
};
use std::collections::HashMap;
use std::io::Write;

/// Largest form body of a yank request.
const FORM_LIMIT: u64 = 64 << 10;

pub fn handle(registry: &impl Registry, req: &Request, body: impl ReadAt) -> Result<Outcome, Error> {
    let segments = req.segments();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let read = matches!(req.method.as_str(), "GET" | "HEAD");
    match (req.method.as_str(), segments.as_slice()) {
        // `gem` probes the source root before it uses the compact index.
        (_, []) if read => Ok(Outcome::respond(http::text(200, "Sluice RubyGems repository\n")).keep_forever()),
        // A proxy repository merges the upstream's compact index with its own gems.
        (_, ["versions"]) if read && registry.upstream_configured() => proxy::versions(registry, req),
        (_, ["names"]) if read && registry.upstream_configured() => proxy::names(registry, req),
        (_, ["info", name]) if read && registry.upstream_configured() => proxy::info(registry, req, name),
        (_, ["quick", "Marshal.4.8", file]) if read && registry.upstream_configured() => {
            let stem = file.strip_suffix(".gemspec.rz").ok_or_else(|| Error::not_found("no such file"))?;
            proxy::quick(registry, stem)
        }
        (_, ["gems", file]) if read && registry.upstream_configured() => match find_file(registry, file) {
            Ok((package, _, _)) => Ok(Outcome::serve_file(package, *file, "application/octet-stream")),
            Err(e) if e.kind == ErrorKind::NotFound => proxy::gem_file(registry, file),
            Err(e) => Err(e),
        },
        // Appended to on each push and yank (see `extend`), so clients holding it fetch the
        // new end with a `Range` request. The host computes the validators of what it serves
        // (ETag, Repr-Digest) over the whole extended body.
        (_, ["versions"]) if read => {
            let body = index::versions(&registry.all_packages())?;
            Ok(Outcome::respond(compact(body)).keep_for_repository().append_only())
        }
        (_, ["names"]) if read => {
            Ok(Outcome::respond(compact(index::names(&registry.all_packages()))).keep_for_repository())
        }
        (_, ["info", name]) if read => {
            let package = registry.package(name).ok_or_else(|| gem_not_found(name))?;
            Ok(Outcome::respond(compact(index::info(&package)?)).keep_for_package(*name))
        }
        (_, ["specs.4.8.gz"]) if read => specs_index(registry, SpecsIndex::All),
        (_, ["latest_specs.4.8.gz"]) if read => specs_index(registry, SpecsIndex::Latest),
        (_, ["prerelease_specs.4.8.gz"]) if read => specs_index(registry, SpecsIndex::Prerelease),
        (_, ["quick", "Marshal.4.8", file]) if read => {
            let stem = file.strip_suffix(".gemspec.rz").ok_or_else(|| Error::not_found("no such file"))?;
            quick_spec(registry, stem)
        }
        (_, ["api", "v1", "versions", file]) if read => {
            let name = file.strip_suffix(".json").ok_or_else(|| Error::not_found("no such resource"))?;
            versions_json(registry, name)
        }
        (_, ["gems", file]) if read => {
            let (package, _, _) = find_file(registry, file)?;
            Ok(Outcome::serve_file(package, *file, "application/octet-stream"))
        }
        ("POST", ["api", "v1", "gems"]) => push(body),
        ("DELETE", ["api", "v1", "gems", "yank"]) => yank(registry, req, body, true),
        ("PUT", ["api", "v1", "gems", "unyank"]) => yank(registry, req, body, false),
        // The old dependency API: a 404 sends Bundler to the compact index.
        (_, ["api", "v1", "dependencies" | "dependencies.json"]) => {
            Err(Error::not_found("the dependency API is not served here; use the compact index"))
        }
        (_, ["api", "v1", "gems"] | ["api", "v1", "gems", "yank" | "unyank"]) => {
            Err(Error::unsupported(format!("{} is not allowed on {}", req.method, req.path)))
        }
        _ => Err(Error::not_found(format!("no such resource: {}", req.path))),
    }
}

/// The Marshal gemspec of a stored file (`/quick/Marshal.4.8/STEM.gemspec.rz`), zlib-deflated.
pub(crate) fn quick_spec(registry: &impl Registry, stem: &str) -> Result<Outcome, Error> {
    let (name, version, qualifier) = find_file(registry, &format!("{stem}.gem"))?;
    let package = registry.package(&name).ok_or_else(|| gem_not_found(&name))?;
    let artifact = package
        .artifacts
        .iter()
        .find(|a| a.version == version && a.qualifier == qualifier)
        .ok_or_else(|| Error::not_found(format!("no such gem file: {stem}.gem")))?;
    let spec = Gemspec::from_manifest(&artifact.metadata.manifest)?;
    let mut zlib = ZlibEncoder::new(Vec::new(), Compression::default());
    zlib.write_all(&index::gemspec_marshal(&spec)).expect("writing to memory succeeds");
    let body = zlib.finish().expect("writing to memory succeeds");
    Ok(Outcome::respond(http::bytes(200, "application/octet-stream", body)).keep_for_package(name))
}

/// `/api/v1/versions/NAME.json`, as rubygems.org gives it: each installable file, newest first,
/// with its publish time (`created_at`), which a proxy of this repository with `min_age` reads.
fn versions_json(registry: &impl Registry, name: &str) -> Result<Outcome, Error> {
    let package = registry.package(name).ok_or_else(|| gem_not_found(name))?;
    let mut items: Vec<serde_json::Value> = index::releases(&package)?
        .iter()
        .filter(|r| !r.artifact.yanked)
        .map(|r| {
            serde_json::json!({
                "number": r.spec.version,
                "platform": r.spec.platform,
                "prerelease": crate::spec::is_prerelease(&r.spec.version),
                "created_at": http::rfc3339_ms(r.artifact.published_ms),
                "summary": r.spec.summary,
                "licenses": r.spec.licenses,
                "sha": r.artifact.sha256,
            })
        })
        .collect();
    items.reverse();
    Ok(Outcome::respond(http::json(200, &serde_json::Value::Array(items))).keep_for_package(name))
}

/// `gem push`: the body is the gem. Its spec names the stored file before the host stores it.
fn push(body: impl ReadAt) -> Result<Outcome, Error> {
    let spec = read_gem(body, Check::SpecOnly)?;
    let publish = Effect::Publish(Upload {
        file_name: spec.file_name(),
        source: UploadSource::Body,
        package: None,
        tags: Vec::new(),
    });
    let message = format!("Successfully registered gem: {} ({})", spec.name, spec.version_and_platform());
    Ok(Outcome::with_effects(vec![publish], http::text(200, message)))
}

/// `gem yank` (a DELETE with form fields `gem_name`, `version`, `platform`) and its undo.
fn yank(registry: &impl Registry, req: &Request, body: impl ReadAt, yanked: bool) -> Result<Outcome, Error> {
    let form = BlobReader::new(body).read_all(FORM_LIMIT).map_err(|_| Error::too_large("the form is too large"))?;
    let mut params = query_pairs(&req.query);
    params.extend(query_pairs(&String::from_utf8_lossy(&form)));
    let param = |name: &str| {
        params.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim().to_string()).filter(|v| !v.is_empty())
    };
    let (Some(name), Some(version)) = (param("gem_name"), param("version")) else {
        return Err(Error::invalid("gem_name and version are required"));
    };
    // As on rubygems.org, no platform means the pure-Ruby file.
    let platform = param("platform").unwrap_or_else(|| RUBY_PLATFORM.to_string());
    let qualifier = if platform == RUBY_PLATFORM { String::new() } else { platform.clone() };
    let package = registry.summary(&name).ok_or_else(|| gem_not_found(&name))?;
    if !package.files.iter().any(|f| f.version == version && f.qualifier == qualifier) {
        return Err(Error::not_found(format!("The version {version} ({platform}) of {name} does not exist.")));
    }
    let shown = if qualifier.is_empty() { version.clone() } else { format!("{version}-{qualifier}") };
    let message = if yanked {
        format!("Successfully deleted gem: {name} ({shown})")
    } else {
        format!("Successfully unyanked gem: {name} ({shown})")
    };
    let effect = Effect::Yank(Yank { package: package.name, version, qualifier: Some(qualifier), yanked });
    Ok(Outcome::with_effects(vec![effect], http::text(200, message)))
}

pub(crate) fn gem_not_found(name: &str) -> Error {
    Error::not_found(format!("This rubygem could not be found: {name}"))
}

fn specs_index(registry: &impl Registry, which: SpecsIndex) -> Result<Outcome, Error> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&index::specs(&registry.all_packages(), which)?).expect("writing to memory succeeds");
    let body = gz.finish().expect("writing to memory succeeds");
    Ok(Outcome::respond(http::bytes(200, "application/octet-stream", body)).keep_for_repository())
}

/// A live file by name, `NAME-VERSION[-PLATFORM].gem`: its gem's name, version and qualifier.
/// Names, versions and platforms all may contain `-`, so each prefix before a `-` is tried as
/// the gem's name, against its summary (push stores each file under this name).
fn find_file(registry: &impl Registry, file_name: &str) -> Result<(String, String, String), Error> {
    let not_found = || Error::not_found(format!("no such gem file: {file_name}"));
    let stem = file_name.strip_suffix(".gem").ok_or_else(not_found)?;
    for (dash, _) in stem.match_indices('-') {
        let Some(summary) = registry.summary(&stem[..dash]) else { continue };
        let rest = &stem[dash + 1..];
        let same = |f: &&VersionState| {
            if f.qualifier.is_empty() {
                f.version == rest
            } else {
                rest.strip_prefix(f.version.as_str()).and_then(|r| r.strip_prefix('-')) == Some(f.qualifier.as_str())
            }
        };
        if let Some(file) = summary.files.iter().find(same) {
            // A yanked file is gone for clients: not in the indexes, not downloadable.
            return if file.yanked {
                Err(not_found())
            } else {
                Ok((summary.name.clone(), file.version.clone(), file.qualifier.clone()))
            };
        }
    }
    Err(not_found())
}

/// The compact index's media type.
const COMPACT_TYPE: &str = "text/plain; charset=utf-8";

/// Past this many changes since the kept `/versions` was rendered, a compaction (a whole new
/// render) is smaller for clients than the appended lines.
pub const MAX_APPENDED_CHANGES: usize = 256;

/// The lines to append to the kept `/versions` for `changes`, as rubygems.org appends them: a
/// push or unyank `NAME VERSION[-PLATFORM] MD5`, a yank or deletion `NAME -VERSION[-PLATFORM] MD5`,
/// where MD5 is that of the gem's `/info/NAME` now. An `updated` change (a tag, a deprecation)
/// changes nothing `/info` shows, so it needs no line. None (render it whole) for another
/// document or too many changes.
pub fn extend(registry: &impl Registry, req: &Request, changes: &[Change]) -> Result<Option<Vec<u8>>, Error> {
    if req.segments() != ["versions"] || changes.len() > MAX_APPENDED_CHANGES {
        return Ok(None);
    }
    let mut checksums: HashMap<&str, String> = HashMap::new();
    let mut out = String::new();
    for change in changes {
        let sign = match change.kind {
            ChangeKind::Added => "",
            ChangeKind::Removed => "-",
            ChangeKind::Updated => continue,
        };
        let name = change.package.as_str();
        if !checksums.contains_key(name) {
            let info = match registry.package(name) {
                Some(package) => index::info(&package)?,
                // Every file deleted: the gem's `/info` is empty.
                None => index::info(&PackageView {
                    name: name.to_string(),
                    created_ms: 0,
                    modified_ms: 0,
                    tags: Vec::new(),
                    artifacts: Vec::new(),
                })?,
            };
            checksums.insert(name, index::md5_hex(info.as_bytes()));
        }
        let version = if change.qualifier.is_empty() {
            change.version.clone()
        } else {
            format!("{}-{}", change.version, change.qualifier)
        };
        out.push_str(&format!("{name} {sign}{version} {}\n", checksums[name]));
    }
    Ok(Some(out.into_bytes()))
}

/// A compact index file with an ETag (quoted MD5 of the whole body, which Bundler compares with
/// its copy's MD5), `Repr-Digest` and `Digest`. Always the whole body: the host keeps it and
/// answers `If-None-Match` (304) and `Range` (206) from the kept bytes, so that a revalidation
/// never reaches the plugin.
fn compact(body: String) -> Response {
    let body = body.into_bytes();
    let etag = format!("\"{}\"", index::md5_hex(&body));
    let sha256 = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&body));
    // RFC 3230's older form, which Bundler versions before Repr-Digest read.
    let legacy_digest = format!("sha-256={sha256}");
    http::bytes(200, COMPACT_TYPE, body)
        .with_header("etag", etag)
        .with_header("repr-digest", format!("sha-256=:{sha256}:"))
        .with_header("digest", legacy_digest)
        .with_header("accept-ranges", "bytes")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::index::tests::{artifact, hello, package, with};
    use crate::parse::tests::HELLO_GEM;
    use flate2::read::{GzDecoder, ZlibDecoder};
    use sluice_plugin_sdk::ErrorKind;
    use sluice_plugin_sdk::{MemoryRegistry, Reply, Source, SummaryOnly};
    use std::collections::{BTreeMap, BTreeSet};
    use std::io::Read;

    pub(crate) fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            query: String::new(),
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            base_url: "http://reg.test/rubygems".into(),
            principal: Some("ci".into()),
        }
    }

    fn registry() -> MemoryRegistry {
        let spec = hello();
        MemoryRegistry {
            tokens: Vec::new(),
            packages: vec![package(
                "sluice-hello",
                vec![
                    artifact(&spec, false, 1),
                    artifact(&with(&spec, "1.2.0", "x86_64-linux"), false, 2),
                    artifact(&with(&spec, "0.9.0", "ruby"), true, 3),
                ],
            )],
        }
    }

    fn respond(outcome: Outcome) -> Response {
        match outcome.reply {
            Reply::Respond(r) => r,
            other => panic!("expected a response, got {other:?}"),
        }
    }

    fn get(path: &str, headers: &[(&str, &str)]) -> Result<Response, Error> {
        handle(&registry(), &request("GET", path, headers), Vec::new()).map(respond)
    }

    fn header<'a>(r: &'a Response, name: &str) -> &'a str {
        r.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("")
    }

    #[test]
    fn push_names_the_file_from_the_spec() {
        let outcome = handle(&registry(), &request("POST", "/api/v1/gems", &[]), HELLO_GEM.to_vec()).unwrap();
        match &outcome.effects[..] {
            [Effect::Publish(Upload { file_name, source: UploadSource::Body, .. })] => {
                assert_eq!(file_name, "sluice-hello-1.2.0.gem")
            }
            other => panic!("unexpected effects {other:?}"),
        }
        let body = respond(outcome).body;
        assert_eq!(String::from_utf8(body).unwrap(), "Successfully registered gem: sluice-hello (1.2.0)");

        let err = handle(&registry(), &request("POST", "/api/v1/gems", &[]), b"junk".to_vec()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid);
    }

    #[test]
    fn yank_reads_the_form_body() {
        let req = request("DELETE", "/api/v1/gems/yank", &[]);
        let reg = registry();
        let outcome =
            handle(&SummaryOnly(&reg), &req, b"gem_name=sluice-hello&version=1.2.0&platform=x86_64-linux".to_vec())
                .unwrap();
        match &outcome.effects[..] {
            [Effect::Yank(y)] => {
                assert_eq!(
                    (y.package.as_str(), y.version.as_str(), y.qualifier.as_deref(), y.yanked),
                    ("sluice-hello", "1.2.0", Some("x86_64-linux"), true)
                )
            }
            other => panic!("unexpected effects {other:?}"),
        }
        let outcome = handle(
            &registry(),
            &request("PUT", "/api/v1/gems/unyank", &[]),
            b"gem_name=sluice-hello&version=0.9.0".to_vec(),
        )
        .unwrap();
        assert!(
            matches!(&outcome.effects[..], [Effect::Yank(Yank { yanked: false, qualifier: Some(q), .. })] if q.is_empty())
        );
        let missing = handle(&registry(), &req, b"gem_name=sluice-hello&version=5.0".to_vec()).unwrap_err();
        assert_eq!(missing.kind, ErrorKind::NotFound);
        let incomplete = handle(&registry(), &req, b"gem_name=sluice-hello".to_vec()).unwrap_err();
        assert_eq!(incomplete.kind, ErrorKind::Invalid);
    }

    #[test]
    fn compact_index_with_etag_and_digest() {
        let full = get("/info/sluice-hello", &[]).unwrap();
        assert_eq!(full.status, 200);
        let body = full.body.clone();
        assert!(String::from_utf8_lossy(&body).starts_with("---\n1.2.0 sluice-dep:>= 1.0&< 3|checksum:"));
        assert!(!String::from_utf8_lossy(&body).contains("0.9.0"), "yanked versions are not installable");
        let etag = format!("\"{}\"", index::md5_hex(&body));
        assert_eq!(header(&full, "etag"), etag);
        assert_eq!(header(&full, "accept-ranges"), "bytes");
        let digest = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&body));
        assert_eq!(header(&full, "repr-digest"), format!("sha-256=:{digest}:"));
        assert_eq!(header(&full, "digest"), format!("sha-256={digest}"));

        // Conditional and ranged requests are the host's, from the kept bytes: the plugin always
        // renders the whole document.
        let ranged = handle(&registry(), &request("GET", "/info/sluice-hello", &[("range", "bytes=10-")]), Vec::new());
        let ranged = ranged.unwrap();
        assert_eq!(ranged.kept_for(), Some(&[Source::Package("sluice-hello".into())][..]));
        assert_eq!(respond(ranged).body, body);
        assert_eq!(get("/info/sluice-hello", &[("if-none-match", &etag)]).unwrap().status, 200);

        let versions = String::from_utf8(get("/versions", &[]).unwrap().body).unwrap();
        assert!(
            versions
                .ends_with(&format!("\n---\nsluice-hello 1.2.0,1.2.0-x86_64-linux,-0.9.0 {}\n", index::md5_hex(&body))),
            "{versions}"
        );
        assert_eq!(get("/names", &[]).unwrap().body, b"---\nsluice-hello\n");
        assert_eq!(get("/info/nope", &[]).unwrap_err().kind, ErrorKind::NotFound);
        assert_eq!(get("/", &[]).unwrap().status, 200);
    }

    #[test]
    fn marshal_indexes_and_quick_specs() {
        let gz = get("/specs.4.8.gz", &[]).unwrap().body;
        let mut specs = Vec::new();
        GzDecoder::new(&gz[..]).read_to_end(&mut specs).unwrap();
        assert!(specs.starts_with(b"\x04\x08[\x07"), "two live files");

        let rz = get("/quick/Marshal.4.8/sluice-hello-1.2.0-x86_64-linux.gemspec.rz", &[]).unwrap().body;
        let mut spec = Vec::new();
        ZlibDecoder::new(&rz[..]).read_to_end(&mut spec).unwrap();
        assert_eq!(spec, index::gemspec_marshal(&with(&hello(), "1.2.0", "x86_64-linux")));
        assert_eq!(get("/quick/Marshal.4.8/sluice-hello-0.9.0.gemspec.rz", &[]).unwrap_err().kind, ErrorKind::NotFound);
    }

    #[test]
    fn downloads_are_served_files_unless_yanked() {
        let outcome = handle(&registry(), &request("GET", "/gems/sluice-hello-1.2.0.gem", &[]), Vec::new()).unwrap();
        match outcome.reply {
            Reply::ServeFile(f) => {
                assert_eq!((f.package.as_str(), f.file_name.as_str()), ("sluice-hello", "sluice-hello-1.2.0.gem"))
            }
            other => panic!("expected a file, got {other:?}"),
        }
        let yanked = handle(&registry(), &request("GET", "/gems/sluice-hello-0.9.0.gem", &[]), Vec::new()).unwrap_err();
        assert_eq!(yanked.kind, ErrorKind::NotFound);
        let other = handle(&registry(), &request("GET", "/api/v1/dependencies", &[]), Vec::new()).unwrap_err();
        assert_eq!(other.kind, ErrorKind::NotFound);
    }

    #[test]
    fn errors_are_plain_text_for_gem() {
        let r = render_error(&Error::new(ErrorKind::Conflict, "sluice-hello 1.2.0 exists"));
        assert_eq!(r.status, 409);
        assert!(String::from_utf8(r.body).unwrap().starts_with("Repushing of gem versions is not allowed.\n"));
        let r = render_error(&Error::new(ErrorKind::Internal, "disk on fire at /var/x"));
        assert_eq!((r.status, r.body), (500, b"Internal server error\n".to_vec()));
    }

    #[test]
    fn reads_declare_what_they_depend_on() {
        let reg = registry();
        let kept = |path: &str| handle(&reg, &request("GET", path, &[]), Vec::new()).unwrap().keep;
        let hello = vec![Source::Package("sluice-hello".into())];
        assert_eq!(kept("/info/sluice-hello").unwrap().depends_on, hello);
        assert_eq!(kept("/quick/Marshal.4.8/sluice-hello-1.2.0.gemspec.rz").unwrap().depends_on, hello);
        for path in ["/names", "/specs.4.8.gz", "/latest_specs.4.8.gz", "/prerelease_specs.4.8.gz"] {
            let keep = kept(path).unwrap();
            assert_eq!((keep.depends_on, keep.append_only), (vec![Source::Repository], false), "{path}");
        }
        let versions = kept("/versions").unwrap();
        assert_eq!((versions.depends_on, versions.append_only), (vec![Source::Repository], true));
        assert!(kept("/gems/sluice-hello-1.2.0.gem").is_none(), "a stored file");
        let push = handle(&reg, &request("POST", "/api/v1/gems", &[]), HELLO_GEM.to_vec()).unwrap();
        assert!(push.keep.is_none());
    }

    /// `/versions` as Bundler's compact index client reads it (`CompactIndexClient::Cache#versions`):
    /// after `---`, each line adds its versions to the gem's list, or removes a `-VERSION`, and
    /// the last line of a gem gives its `/info` checksum.
    pub(crate) fn bundler_reads(versions: &str) -> BTreeMap<String, (BTreeSet<String>, String)> {
        let (_, lines) = versions.split_once("---\n").expect("a header");
        let mut gems: BTreeMap<String, (BTreeSet<String>, String)> = BTreeMap::new();
        for line in lines.lines() {
            let mut parts = line.splitn(3, ' ');
            let (name, list, checksum) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap_or(""));
            let gem = gems.entry(name.to_string()).or_default();
            gem.1 = checksum.to_string();
            for version in list.split(',') {
                match version.strip_prefix('-') {
                    Some(gone) => gem.0.remove(gone),
                    None => gem.0.insert(version.to_string()),
                };
            }
        }
        gems
    }

    fn change(seq: u64, package: &str, kind: ChangeKind, version: &str, qualifier: &str) -> Change {
        Change {
            seq,
            package: package.into(),
            kind,
            version: version.into(),
            qualifier: qualifier.into(),
            at_ms: 1_700_000_000_000 + seq,
        }
    }

    #[test]
    fn versions_extends_with_the_changes() {
        let req = request("GET", "/versions", &[]);
        let base = String::from_utf8(respond(handle(&registry(), &req, Vec::new()).unwrap()).body).unwrap();
        assert!(base.starts_with("created_at: 1970-01-01T00:00:00Z\n---\n"), "from the data: {base}");

        // A push of 1.3.0, a yank of the linux build, an unyank of 0.9.0, a new gem, a tag move.
        let spec = hello();
        let mut after = registry();
        let files = &mut after.packages[0].artifacts;
        files[1].yanked = true;
        files[2].yanked = false;
        files.push(artifact(&with(&spec, "1.3.0", "ruby"), false, 4));
        let other = crate::spec::Gemspec { name: "other-gem".into(), ..with(&spec, "0.1.0", "java") };
        after.packages.push(package("other-gem", vec![artifact(&other, false, 5)]));
        let changes = [
            change(1, "sluice-hello", ChangeKind::Added, "1.3.0", ""),
            change(2, "sluice-hello", ChangeKind::Removed, "1.2.0", "x86_64-linux"),
            change(3, "sluice-hello", ChangeKind::Added, "0.9.0", ""),
            change(4, "other-gem", ChangeKind::Added, "0.1.0", "java"),
            change(5, "other-gem", ChangeKind::Updated, "", ""),
        ];
        let appended = String::from_utf8(extend(&after, &req, &changes).unwrap().expect("appended")).unwrap();
        let hello_md5 = index::md5_hex(index::info(&after.packages[0]).unwrap().as_bytes());
        let other_md5 = index::md5_hex(index::info(&after.packages[1]).unwrap().as_bytes());
        assert_eq!(
            appended,
            format!(
                "sluice-hello 1.3.0 {hello_md5}\nsluice-hello -1.2.0-x86_64-linux {hello_md5}\n\
                 sluice-hello 0.9.0 {hello_md5}\nother-gem 0.1.0-java {other_md5}\n"
            )
        );

        // What a client holding base + the appended lines sees is what a fresh render says.
        let full = String::from_utf8(respond(handle(&after, &req, Vec::new()).unwrap()).body).unwrap();
        assert_eq!(bundler_reads(&format!("{base}{appended}")), bundler_reads(&full));
        let read = bundler_reads(&full);
        let hello_versions: Vec<&str> = read["sluice-hello"].0.iter().map(String::as_str).collect();
        assert_eq!(hello_versions, ["0.9.0", "1.2.0", "1.3.0"]);
        assert_eq!(read["other-gem"].1, other_md5);

        // Another document, or so many changes that a compaction is smaller: render it whole.
        assert_eq!(extend(&after, &request("GET", "/names", &[]), &changes).unwrap(), None);
        let many: Vec<Change> = (0..=MAX_APPENDED_CHANGES as u64)
            .map(|i| change(i, "sluice-hello", ChangeKind::Added, "1.3.0", ""))
            .collect();
        assert_eq!(extend(&after, &req, &many).unwrap(), None);
        // A gem whose every file was deleted: its lines remove them, with the empty info's MD5.
        let gone = [change(9, "vanished", ChangeKind::Removed, "1.0.0", "")];
        let line = String::from_utf8(extend(&after, &req, &gone).unwrap().unwrap()).unwrap();
        assert_eq!(line, format!("vanished -1.0.0 {}\n", index::md5_hex(b"---\n")));
    }

    /// A gem with 10,000 versions: `/info`, `/versions` and the Marshal indexes list each once.
    #[test]
    fn ten_thousand_versions() {
        let spec = hello();
        let artifacts = (0..10_000u64)
            .map(|i| artifact(&with(&spec, &format!("1.{}.{}", i / 100, i % 100), "ruby"), false, i))
            .collect();
        let reg = MemoryRegistry::with_packages(vec![package("sluice-hello", artifacts)]);
        let get = |path: &str| respond(handle(&reg, &request("GET", path, &[]), Vec::new()).unwrap()).body;
        let info = String::from_utf8(get("/info/sluice-hello")).unwrap();
        assert_eq!(info.lines().count(), 10_001);
        let versions = String::from_utf8(get("/versions")).unwrap();
        assert_eq!(bundler_reads(&versions)["sluice-hello"].0.len(), 10_000);
        let mut latest = Vec::new();
        GzDecoder::new(&get("/latest_specs.4.8.gz")[..]).read_to_end(&mut latest).unwrap();
        assert_eq!(latest, index::specs(&reg.packages, SpecsIndex::Latest).unwrap());
        assert!(latest.windows(7).any(|w| w == b"1.99.99"), "the highest version is the latest");
        assert!(!latest.windows(7).any(|w| w == b"1.99.98"));
    }
}
