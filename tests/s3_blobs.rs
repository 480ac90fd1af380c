//! Package files in S3-compatible object storage (`blobs = "s3://bucket/prefix"`), against a real
//! S3 server (`s3s-fs`, SigV4 credentials, on loopback) and the real `npm` and `curl`: what is
//! published lands in the bucket under its sha256 and nowhere else, large files go up in parts and
//! come back intact while the server's memory stays bounded, `/ready` follows the bucket, objects
//! no row references are cleaned up, and `blob_redirect` hands clients a presigned URL.

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use support::npm::{make_package, project, Npm};
use support::s3::S3Server;
use support::{require_tool, rss, run, write_noise, Server};

const NPM_REPO: &str = "[[repository]]\nname = \"npm\"\nformat = \"npm\"\n";

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The tarball URL of `name@version` in the packument.
fn tarball_url(server: &Server, name: &str, version: &str) -> String {
    let (status, body) = server.get(&format!("/npm/{name}"));
    assert_eq!(status, 200, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    doc["versions"][version]["dist"]["tarball"].as_str().expect("a tarball URL").to_string()
}

/// Downloads `url` with curl (following redirects when `follow`) into `out`; returns the
/// response headers curl printed.
fn curl(url: &str, out: &Path, follow: bool) -> String {
    require_tool("curl");
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--fail", "-D", "-", "-o"]).arg(out);
    if follow {
        cmd.arg("-L");
    }
    let (ok, headers, err) = run(cmd.arg(url));
    assert!(ok, "curl {url} failed: {err}");
    headers
}

/// The sha256 in a stored object's name, for each object in the bucket.
fn object_names(s3: &S3Server) -> Vec<String> {
    let mut names: Vec<String> =
        s3.objects().iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn npm_publish_install_and_unpublish_through_the_bucket() {
    let s3 = S3Server::start();
    let server = Server::start_on_s3(Some(NPM_REPO), &s3);
    let token = server.token("publisher", "read,publish", None);
    let npm = Npm::new(&server, "s3", Some(&token));
    let pkg = make_package(&server.work, "bucketed", "1.0.0");
    npm.ok(&pkg, &["publish"]);

    // The tarball a client downloads is the one object in the bucket, named by its sha256 under
    // the configured prefix, and the data folder keeps no copy.
    let url = tarball_url(&server, "bucketed", "1.0.0");
    let downloaded = server.work.join("bucketed.tgz");
    curl(&url, &downloaded, false);
    let bytes = std::fs::read(&downloaded).unwrap();
    let sha = sha256_hex(&bytes);
    let objects = s3.objects();
    assert_eq!(object_names(&s3), vec![sha.clone()], "the bucket holds the tarball under its sha256: {objects:?}");
    let key = objects[0].strip_prefix(s3.root.join(support::s3::BUCKET)).unwrap().to_string_lossy().into_owned();
    assert_eq!(key, format!("{}/{}/{}/{sha}", support::s3::PREFIX, &sha[0..2], &sha[2..4]));
    assert_eq!(std::fs::read(&objects[0]).unwrap(), bytes, "the object holds the published bytes");
    let local: Vec<_> = server.blob_files().into_iter().filter(|p| p.starts_with(&server.data)).collect();
    assert!(local.is_empty(), "nothing is kept in the data folder: {local:?}");

    // npm installs it, and its integrity check passes (npm verifies the sha512 from the packument).
    let app = project(&server.work, "app");
    npm.ok(&app, &["install", "bucketed@1.0.0"]);
    let installed = std::fs::read_to_string(app.join("node_modules/bucketed/index.js")).unwrap();
    assert_eq!(installed, support::npm::index_js("bucketed", "1.0.0"));

    // HEAD answers with the size, without a body.
    let head = server.http().head(&url).send().unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"].to_str().unwrap(), bytes.len().to_string());

    // Unpublishing removes the object.
    npm.ok(&pkg, &["unpublish", "bucketed@1.0.0", "--force"]);
    assert!(s3.objects().is_empty(), "the unpublished tarball left the bucket: {:?}", s3.objects());
    let (status, _) = server.get("/npm/bucketed/-/bucketed-1.0.0.tgz");
    assert_eq!(status, 404);
}

/// A payload many times the upload part size (8 MiB).
const PAYLOAD: u64 = 96 << 20;
/// The most the server's resident memory may grow while it takes and serves the package: well
/// under the package's size, so neither the upload nor the download holds it whole.
const RSS_GROWTH_LIMIT: u64 = 64 << 20;

#[test]
fn a_large_package_goes_up_in_parts_and_comes_back_intact_in_bounded_memory() {
    let s3 = S3Server::start();
    let server = Server::start_on_s3(Some(&format!("max_upload_mb = 200\n{NPM_REPO}")), &s3);
    let token = server.token("publisher", "read,publish", None);
    let npm = Npm::new(&server, "large", Some(&token));
    let pkg = make_package(&server.work, "large-pkg", "1.0.0");
    let data_sha = write_noise(&pkg.join("data.bin"), PAYLOAD);

    // Warm up (plugins instantiated, connections to the bucket open) before the baseline.
    let small = make_package(&server.work, "warm-up", "1.0.0");
    npm.ok(&small, &["publish"]);
    let pid = server.pid();
    let before = rss(pid).expect("the server's /proc status is readable");
    let peak = Arc::new(AtomicU64::new(before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Some(now) = rss(pid) {
                    peak.fetch_max(now, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };

    let started = std::time::Instant::now();
    npm.ok(&pkg, &["publish"]);
    let publish_secs = started.elapsed().as_secs_f64();
    let after_publish = peak.load(Ordering::Relaxed);
    let url = tarball_url(&server, "large-pkg", "1.0.0");
    let downloaded = server.work.join("large.tgz");
    let started = std::time::Instant::now();
    curl(&url, &downloaded, false);
    let download_secs = started.elapsed().as_secs_f64();
    let app = project(&server.work, "app");
    npm.ok(&app, &["install", "large-pkg@1.0.0"]);
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let peak = peak.load(Ordering::Relaxed);
    let tgz_size = std::fs::metadata(&downloaded).unwrap().len();
    println!(
        "server RSS: {} MiB before, peak {} MiB during the publish, {} MiB overall; tarball {} MiB: \
         publish {publish_secs:.1} s, download {download_secs:.2} s ({:.0} MiB/s)",
        before >> 20,
        after_publish >> 20,
        peak >> 20,
        tgz_size >> 20,
        (tgz_size >> 20) as f64 / download_secs
    );

    // Intact: the tarball's sha256 is the object's name, and the installed file is the published one.
    let tgz_sha = sha256_hex(&std::fs::read(&downloaded).unwrap());
    assert!(object_names(&s3).contains(&tgz_sha), "the bucket holds {tgz_sha}: {:?}", object_names(&s3));
    let installed = std::fs::read(app.join("node_modules/large-pkg/data.bin")).unwrap();
    assert_eq!(installed.len() as u64, PAYLOAD);
    assert_eq!(sha256_hex(&installed), data_sha, "the installed data is what was published");
    assert!(
        peak - before < RSS_GROWTH_LIMIT,
        "the server's RSS grew by {} MiB for a {} MiB package (limit {} MiB)",
        (peak - before) >> 20,
        tgz_size >> 20,
        RSS_GROWTH_LIMIT >> 20
    );
}

#[test]
fn ready_follows_the_bucket_and_a_publish_during_an_outage_leaves_nothing() {
    let mut s3 = S3Server::start();
    let server = Server::start_on_s3(Some(NPM_REPO), &s3);
    let token = server.token("publisher", "read,publish", None);
    let npm = Npm::new(&server, "ready", Some(&token));
    let pkg = make_package(&server.work, "during-outage", "1.0.0");
    let status = || server.get("/ready").0;
    assert_eq!(status(), 200);

    s3.stop();
    assert!(server.wait_for(Duration::from_secs(30), || status() == 503), "/ready turns 503 when the bucket is gone");
    assert_eq!(server.get("/health").0, 200, "the process itself is live");
    // A publish while the bucket is gone fails, and leaves no version behind.
    let (ok, _, err) = npm.run(&pkg, &["publish", "--fetch-retries", "0"]);
    assert!(!ok, "a publish with the bucket down is refused");
    assert!(err.contains("500") || err.contains("503"), "a server error, not a client one: {err}");
    assert_eq!(server.get("/npm/during-outage").0, 404, "nothing of the failed publish is visible");

    s3.start_again();
    assert!(server.wait_for(Duration::from_secs(30), || status() == 200), "/ready is 200 once the bucket is back");
    // The same version publishes now: the failed attempt left no row that would refuse it.
    npm.ok(&pkg, &["publish"]);
    assert_eq!(s3.objects().len(), 1);
    let app = project(&server.work, "app");
    npm.ok(&app, &["install", "during-outage@1.0.0"]);
}

/// Sets a file's modification time `age` into the past (what s3s-fs reports as LastModified).
fn age_file(path: &Path, age: Duration) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
}

#[test]
fn cleanup_removes_old_unreferenced_objects_only() {
    let s3 = S3Server::start();
    let config = format!("blob_grace_secs = 600\ncleanup_interval_secs = 1\n{NPM_REPO}");
    let mut server = Server::start_on_s3(Some(&config), &s3);
    let token = server.token("publisher", "read,publish", None);
    let npm = Npm::new(&server, "gc", Some(&token));
    npm.ok(&make_package(&server.work, "kept", "1.0.0"), &["publish"]);
    let referenced = s3.objects();
    assert_eq!(referenced.len(), 1);

    // What a publish that stored its object but never committed leaves: objects no row names,
    // one older than the grace period and one younger (a publish in flight).
    let stray = |bytes: &[u8]| {
        let sha = sha256_hex(bytes);
        let path = s3.root.join(support::s3::BUCKET).join(support::s3::PREFIX).join(&sha[0..2]).join(&sha[2..4]);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(path.join(&sha), bytes).unwrap();
        path.join(sha)
    };
    let old = stray(b"an upload whose transaction never committed");
    let young = stray(b"an upload still in flight");
    age_file(&old, Duration::from_secs(3600));
    age_file(&referenced[0], Duration::from_secs(3600));
    server.restart();

    assert!(server.wait_for(Duration::from_secs(30), || !old.exists()), "the old unreferenced object is removed");
    std::thread::sleep(Duration::from_secs(2));
    assert!(young.exists(), "an object younger than the grace period is left alone");
    assert!(referenced[0].exists(), "a referenced object stays, however old");
    // The restarted server has a new address: a new client.
    let npm = Npm::new(&server, "gc-after", None);
    let app = project(&server.work, "app");
    npm.ok(&app, &["install", "kept@1.0.0"]);
}

#[test]
fn blob_redirect_sends_clients_to_a_presigned_url() {
    let s3 = S3Server::start();
    let server = Server::start_on_s3(Some(&format!("blob_redirect = true\n{NPM_REPO}")), &s3);
    let token = server.token("publisher", "read,publish", None);
    let npm = Npm::new(&server, "redirect", Some(&token));
    let pkg = make_package(&server.work, "redirected", "1.0.0");
    npm.ok(&pkg, &["publish"]);
    let url = tarball_url(&server, "redirected", "1.0.0");

    // The server answers with a redirect to the bucket, signed (SigV4 query parameters)...
    let headers = curl(&url, &server.work.join("redirect.body"), false);
    let location = headers
        .lines()
        .find_map(|l| l.strip_prefix("location: ").or_else(|| l.strip_prefix("Location: ")))
        .unwrap_or_else(|| panic!("a Location header: {headers}"))
        .trim()
        .to_string();
    assert!(headers.starts_with("HTTP/1.1 307"), "{headers}");
    assert!(location.starts_with(&s3.endpoint()), "the redirect goes to the bucket: {location}");
    assert!(location.contains("X-Amz-Signature="), "the URL is presigned: {location}");

    // ...that curl follows to the right bytes, and that only works signed.
    let followed = server.work.join("followed.tgz");
    curl(&url, &followed, true);
    let bytes = std::fs::read(&followed).unwrap();
    assert_eq!(object_names(&s3), vec![sha256_hex(&bytes)], "the bytes are the stored object's");
    let unsigned = location.split('?').next().unwrap();
    let (ok, _, _) = run(Command::new("curl").args(["-sS", "--fail", "-o", "/dev/null", unsigned]));
    assert!(!ok, "the bucket refuses the same URL unsigned");

    // npm follows the redirect too.
    let app = project(&server.work, "app");
    npm.ok(&app, &["install", "redirected@1.0.0"]);
    assert!(app.join("node_modules/redirected/index.js").is_file());
}
