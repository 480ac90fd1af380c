//! A 200 MB npm package, published with the real `npm publish` (about 270 MB of JSON, the
//! tarball base64-encoded inside) and installed with `npm install`, while the server's memory is
//! watched: the body is spooled to disk, the plugin finds the attachment by scanning the body in
//! pieces, and the host decodes the base64 while it writes the blob, so the tarball is never held
//! whole by the plugin or the host.

mod support;

use std::io::{BufWriter, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use support::npm::{make_package, project, Npm};
use support::Server;

/// The tarball's payload: random bytes gzip cannot shrink.
const PAYLOAD: u64 = 200 << 20;
/// The most the server's resident memory may reach while it takes and serves the package.
const RSS_LIMIT: u64 = 300 << 20;

/// Writes `len` pseudo-random bytes (xorshift) to `path`; returns their sha256.
fn write_noise(path: &std::path::Path, len: u64) -> String {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let mut hash = Sha256::new();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..len / chunk.len() as u64 {
        for word in chunk.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        hash.update(&chunk);
        out.write_all(&chunk).unwrap();
    }
    out.flush().unwrap();
    hex::encode(hash.finalize())
}

/// The resident set size of process `pid`, in bytes (`VmRSS` of /proc/PID/status).
fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

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
