//! A 200 MB npm package, published with the real `npm publish` (about 270 MB of JSON, the
//! tarball base64-encoded inside) and installed with `npm install`, while the server's memory is
//! watched: the body is spooled to disk, the plugin finds the attachment by scanning the body in
//! pieces, and the host decodes the base64 while it writes the blob, so the tarball is never held
//! whole by the plugin or the host.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use support::npm::{make_package, project, Npm};
use support::{rss, write_noise, Server};

/// The tarball's payload: random bytes gzip cannot shrink.
const PAYLOAD: u64 = 200 << 20;
/// The most the server's resident memory may reach while it takes and serves the package.
const RSS_LIMIT: u64 = 300 << 20;

#[test]
fn a_200_mb_package_publishes_and_installs_in_bounded_memory() {
    // The operator allows 400 MiB bodies (the JSON is 4/3 of the tarball) and gives the plugin's
    // scan and parse of a body this size more than the default 30 s.
    let server = Server::start_with_config(
        "max_upload_mb = 400\nmax_unpacked_mb = 400\nparse_timeout_ms = 300000\n\
         [[repository]]\nname = \"npm\"\nformat = \"npm\"\n",
    );
    let work = server.work.clone();
    let token = server.token("publisher", "read,publish", None);
    let npm = Npm::new(&server, "large", Some(&token));
    let pkg = make_package(&work, "huge-pkg", "1.0.0");
    std::fs::write(pkg.join("README.md"), "# huge-pkg\n\nA package of 200 MB of noise.\n").unwrap();
    let sha256 = write_noise(&pkg.join("data.bin"), PAYLOAD);

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
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    npm.ok(&pkg, &["publish"]);
    let after_publish = peak.load(Ordering::Relaxed);
    let app = project(&work, "app");
    npm.ok(&app, &["install", "huge-pkg"]);
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let peak = peak.load(Ordering::Relaxed);
    println!(
        "server RSS: {} MiB before, peak {} MiB during the publish, {} MiB overall",
        before >> 20,
        after_publish >> 20,
        peak >> 20
    );

    let installed = std::fs::read(app.join("node_modules/huge-pkg/data.bin")).unwrap();
    assert_eq!(installed.len() as u64, PAYLOAD);
    assert_eq!(hex::encode(Sha256::digest(&installed)), sha256, "the installed data is what was published");
    assert!(peak < RSS_LIMIT, "the server's RSS peaked at {} MiB (limit {} MiB)", peak >> 20, RSS_LIMIT >> 20);

    // The README went with the version (for the package page).
    let admin = server.token("admin", "admin", None);
    let stored = server.api_json("/api/v1/repositories/npm/packages/huge-pkg", &admin);
    let readme = stored["files"][0]["metadata"]["readme"].as_str().unwrap_or_default().to_string();
    assert!(readme.starts_with("# huge-pkg"), "{stored}");
}
