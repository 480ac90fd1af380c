//! The HTTP protocol `gem` and `bundle` speak: push, yank, the compact index, the Marshal
//! indexes and gem downloads.

use crate::gem::{read_gem, Check};
use crate::index::{self, SpecsIndex};
use crate::spec::{Gemspec, RUBY_PLATFORM};
use base64::Engine;
use flate2::write::{GzEncoder, ZlibEncoder};
use flate2::Compression;
use sha2::{Digest, Sha256};
use sluice_plugin_sdk::http::{self, query_pairs};
use sluice_plugin_sdk::io::{BlobReader, ReadAt};
use sluice_plugin_sdk::{
    Artifact, Effect, Error, ErrorKind, Outcome, PackageView, Registry, Request, Response, Upload, UploadSource, Yank,
};
use std::io::Write;

/// Largest form body of a yank request.
const FORM_LIMIT: u64 = 64 << 10;

pub fn handle(registry: &impl Registry, req: &Request, body: impl ReadAt) -> Result<Outcome, Error> {
    let segments = req.segments();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let read = matches!(req.method.as_str(), "GET" | "HEAD");
    match (req.method.as_str(), segments.as_slice()) {
        // `gem` probes the source root before it uses the compact index.
        (_, []) if read => Ok(Outcome::respond(http::text(200, "Sluice RubyGems repository\n"))),
        (_, ["versions"]) if read => Ok(Outcome::respond(compact(req, index::versions(&registry.all_packages())?))),
        (_, ["names"]) if read => Ok(Outcome::respond(compact(req, index::names(&registry.all_packages())))),
        (_, ["info", name]) if read => {
            let package = registry.package(name).ok_or_else(|| gem_not_found(name))?;
            Ok(Outcome::respond(compact(req, index::info(&package)?)))
        }
        (_, ["specs.4.8.gz"]) if read => specs_index(registry, SpecsIndex::All),
        (_, ["latest_specs.4.8.gz"]) if read => specs_index(registry, SpecsIndex::Latest),
        (_, ["prerelease_specs.4.8.gz"]) if read => specs_index(registry, SpecsIndex::Prerelease),
        (_, ["quick", "Marshal.4.8", file]) if read => {
            let stem = file.strip_suffix(".gemspec.rz").ok_or_else(|| Error::not_found("no such file"))?;
            let (_, artifact) = find_file(registry, &format!("{stem}.gem"))?;
            let spec = Gemspec::from_manifest(&artifact.metadata.manifest)?;
            let mut zlib = ZlibEncoder::new(Vec::new(), Compression::default());
            zlib.write_all(&index::gemspec_marshal(&spec)).expect("writing to memory succeeds");
            let body = zlib.finish().expect("writing to memory succeeds");
            Ok(Outcome::respond(http::bytes(200, "application/octet-stream", body)))
        }
        (_, ["gems", file]) if read => {
            let (package, artifact) = find_file(registry, file)?;
            Ok(Outcome::serve_file(package, artifact.file_name, "application/octet-stream"))
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

/// Renders an error as plain text with its status; `gem` prints the body as it is.
pub fn render_error(err: &Error) -> Response {
    let message = match err.kind {
        ErrorKind::Unauthorized | ErrorKind::Forbidden => format!("Access Denied. {}", err.message),
        // The host refuses a second file with the same name, version and platform.
        ErrorKind::Conflict => format!("Repushing of gem versions is not allowed.\n{}", err.message),
        ErrorKind::Internal => "Internal server error".to_string(),
        _ => err.message.clone(),
    };
    http::text(err.kind.status(), format!("{}\n", message.trim_end()))
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
    let package = registry.package(&name).ok_or_else(|| gem_not_found(&name))?;
    if !package.artifacts.iter().any(|a| a.version == version && a.qualifier == qualifier) {
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

fn gem_not_found(name: &str) -> Error {
    Error::not_found(format!("This rubygem could not be found: {name}"))
}

fn specs_index(registry: &impl Registry, which: SpecsIndex) -> Result<Outcome, Error> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&index::specs(&registry.all_packages(), which)?).expect("writing to memory succeeds");
    let body = gz.finish().expect("writing to memory succeeds");
    Ok(Outcome::respond(http::bytes(200, "application/octet-stream", body)))
}

/// A live file by name, `NAME-VERSION[-PLATFORM].gem`. Names, versions and platforms all may
/// contain `-`, so each prefix before a `-` is tried as the gem's name.
fn find_file(registry: &impl Registry, file_name: &str) -> Result<(String, Artifact), Error> {
    let not_found = || Error::not_found(format!("no such gem file: {file_name}"));
    let stem = file_name.strip_suffix(".gem").ok_or_else(not_found)?;
    for (dash, _) in stem.match_indices('-') {
        let Some(PackageView { name, artifacts, .. }) = registry.package(&stem[..dash]) else { continue };
        if let Some(artifact) = artifacts.into_iter().find(|a| a.file_name == file_name) {
            // A yanked file is gone for clients: not in the indexes, not downloadable.
            return if artifact.yanked { Err(not_found()) } else { Ok((name, artifact)) };
        }
    }
    Err(not_found())
}

/// A compact index file: ETag (quoted MD5 of the whole body, which Bundler checks after
/// appending a range), `Repr-Digest` and `Digest`, and `Range: bytes=N-` answered with the tail.
fn compact(req: &Request, body: String) -> Response {
    let body = body.into_bytes();
    let etag = format!("\"{}\"", index::md5_hex(&body));
    let sha256 = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&body));
    let digest = format!("sha-256=:{sha256}:");
    // RFC 3230's older form, which Bundler versions before Repr-Digest read.
    let legacy_digest = format!("sha-256={sha256}");
    let with_headers = |response: Response| {
        response
            .with_header("etag", etag.clone())
            .with_header("repr-digest", digest.clone())
            .with_header("digest", legacy_digest.clone())
            .with_header("accept-ranges", "bytes")
    };
    let cached = req
        .header("if-none-match")
        .is_some_and(|tags| tags.split(',').any(|t| t.trim().trim_start_matches("W/") == etag));
    if cached {
        return with_headers(http::empty(304));
    }
    let len = body.len();
    match req.header("range").and_then(parse_range) {
        Some((start, _)) if start >= len => {
            with_headers(http::empty(416)).with_header("content-range", format!("bytes */{len}"))
        }
        Some((start, end)) => {
            let end = end.map_or(len - 1, |e| e.min(len - 1));
            with_headers(http::bytes(206, "text/plain; charset=utf-8", body[start..=end].to_vec()))
                .with_header("content-range", format!("bytes {start}-{end}/{len}"))
        }
        None => with_headers(http::bytes(200, "text/plain; charset=utf-8", body)),
    }
}

/// One `bytes=START-[END]` range; other forms are ignored (the whole body is sent).
fn parse_range(header: &str) -> Option<(usize, Option<usize>)> {
    let spec = header.trim().strip_prefix("bytes=")?;
    let (start, end) = spec.split_once('-')?;
    let start = start.trim().parse().ok()?;
    let end = match end.trim() {
        "" => None,
        e => Some(e.parse().ok()?),
    };
    if end.is_some_and(|e| e < start) {
        return None;
    }
    Some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gem::tests::HELLO_GEM;
    use crate::index::tests::{artifact, hello, package, with};
    use flate2::read::{GzDecoder, ZlibDecoder};
    use sluice_plugin_sdk::{MemoryRegistry, Reply};
    use std::io::Read;

    fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> Request {
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
            Reply::ServeFile(f) => panic!("expected a response, got a file {f:?}"),
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
        let outcome =
            handle(&registry(), &req, b"gem_name=sluice-hello&version=1.2.0&platform=x86_64-linux".to_vec()).unwrap();
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
    fn compact_index_with_etag_digest_and_ranges() {
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

        let tail = get("/info/sluice-hello", &[("range", "bytes=10-")]).unwrap();
        assert_eq!(tail.status, 206);
        assert_eq!(tail.body, &body[10..]);
        assert_eq!(header(&tail, "etag"), etag, "the ETag is the whole body's");
        assert_eq!(header(&tail, "content-range"), format!("bytes 10-{}/{}", body.len() - 1, body.len()));
        let past = get("/info/sluice-hello", &[("range", &format!("bytes={}-", body.len()))]).unwrap();
        assert_eq!(past.status, 416);
        assert_eq!(get("/info/sluice-hello", &[("if-none-match", &etag)]).unwrap().status, 304);

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
            Reply::Respond(r) => panic!("expected a file, got {}", r.status),
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
}
