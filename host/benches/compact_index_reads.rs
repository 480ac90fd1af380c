//! The RubyGems compact index as kept documents (issue 13), beside `GET /health` measured in the
//! same run: with 10,000 gems published, one sequential client's p50/p99 of the full
//! `GET /versions`, a ranged one (the last ~1 KB, as Bundler asks for what it lacks),
//! `GET /info/NAME`, and a revalidation of `/versions` with `If-None-Match` (304).
//!
//! Run with `cargo bench -p sluice --bench compact_index_reads`; `GEMS=200 REQUESTS=50` make a short
//! run. Needs the real `gem` (one gem is built with `gem build`; the others are copies of it
//! with their gemspec renamed, checksums recomputed).

mod common;
#[allow(dead_code)]
#[path = "../../tests/support/gem_fixture.rs"]
mod gem_fixture;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;

const NAME: &str = "bench-gem";

fn count(var: &str, default: usize) -> usize {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One gem made by the real `gem build`, with a HOME of its own.
fn build_seed(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir.join("lib")).unwrap();
    std::fs::write(dir.join("lib/bench-gem.rb"), "module BenchGem\n  VERSION = \"1.0.0\"\nend\n").unwrap();
    std::fs::write(
        dir.join("bench-gem.gemspec"),
        "Gem::Specification.new do |s|\n  s.name = \"bench-gem\"\n  s.version = \"1.0.0\"\n  s.summary = \"A benchmark gem\"\n  \
         s.authors = [\"Sluice\"]\n  s.license = \"MIT\"\n  s.files = [\"lib/bench-gem.rb\"]\n  \
         s.add_runtime_dependency \"rake\", \">= 12\"\nend\n",
    )
    .unwrap();
    let out = Command::new("gem")
        .args(["build", "bench-gem.gemspec"])
        .current_dir(dir)
        .env("HOME", dir)
        .output()
        .expect("the real `gem` (RubyGems) is needed to build the benchmark's gem");
    assert!(out.status.success(), "gem build: {}", String::from_utf8_lossy(&out.stderr));
    dir.join("bench-gem-1.0.0.gem")
}

/// Sequential requests built by `request`, each expecting `status`: sorted latencies.
fn sequential(n: usize, status: u16, request: impl Fn() -> reqwest::blocking::RequestBuilder) -> Vec<Duration> {
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let r = request().send().unwrap();
        assert_eq!(r.status().as_u16(), status);
        let _ = r.bytes().unwrap();
        lat.push(t.elapsed());
    }
    lat.sort();
    lat
}

fn say_latencies(what: &str, lat: &[Duration], base: &[Duration]) {
    let p = |l: &[Duration], q| common::micros(common::percentile(l, q));
    common::say(&format!(
        "{what}: p50 {:.0} µs, p99 {:.0} µs ({} requests; p50 {:.1}x that of /health)",
        p(lat, 50.0),
        p(lat, 99.0),
        lat.len(),
        p(lat, 50.0) / p(base, 50.0)
    ));
}

fn main() {
    let gems = count("GEMS", 10_000);
    let requests = count("REQUESTS", 500);
    let server = common::Server::start("[[repository]]\nname = \"rubygems\"\nformat = \"rubygems\"\n", &[]);
    let key = server.token("bench", "publish");
    let url = format!("{}/rubygems", server.url);
    let seed = build_seed(&server.dir.path().join("seed"));
    let client = Client::new();

    let t = Instant::now();
    for i in 0..gems {
        let name = format!("{NAME}-{i:05}");
        let gem = gem_fixture::with_edited_metadata(&seed, |yaml| {
            yaml.replacen(&format!("name: {NAME}\n"), &format!("name: {name}\n"), 1)
        });
        let r = client
            .post(format!("{url}/api/v1/gems"))
            .header("Authorization", &key)
            .header("Content-Type", "application/octet-stream")
            .body(gem)
            .send()
            .unwrap();
        let status = r.status();
        assert!(status.is_success(), "push {name}: {status} {}", r.text().unwrap_or_default());
        if i % 2000 == 1999 {
            common::say(&format!("  {} gems published, {:.0} s", i + 1, t.elapsed().as_secs_f64()));
        }
    }
    common::say(&format!("published {gems} gems in {:.0} s", t.elapsed().as_secs_f64()));

    let versions = format!("{url}/versions");
    let t = Instant::now();
    let r = client.get(&versions).send().unwrap();
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let full = r.bytes().unwrap();
    let size = full.len();
    common::say(&format!(
        "first GET /versions (renders it): {:.1} ms, {} KB",
        t.elapsed().as_secs_f64() * 1e3,
        size / 1024
    ));
    let from = size.saturating_sub(1024);
    let info = format!("{url}/info/{NAME}-{:05}", gems / 2);
    // What is timed answers what a client needs: the tail it lacks, the gem's dependencies.
    let r = client.get(&versions).header("range", format!("bytes={from}-")).send().unwrap();
    assert_eq!(r.status().as_u16(), 206);
    assert_eq!(r.bytes().unwrap(), full[from..], "a range is the end of the full file");
    let body = client.get(&info).send().unwrap().text().unwrap();
    assert!(body.contains("1.0.0 rake:>= 12|checksum:"), "info: {body}");

    let base = sequential(requests, 200, || client.get(format!("{}/health", server.url)));
    let p = |l: &[Duration], q| common::micros(common::percentile(l, q));
    common::say(&format!(
        "GET /health (baseline): p50 {:.0} µs, p99 {:.0} µs ({requests} requests)",
        p(&base, 50.0),
        p(&base, 99.0)
    ));
    say_latencies(
        &format!("GET /versions, {gems} gems, {} KB", size / 1024),
        &sequential(requests, 200, || client.get(&versions)),
        &base,
    );
    say_latencies(
        &format!("GET /versions with Range: bytes={from}- (206)"),
        &sequential(requests, 206, || client.get(&versions).header("range", format!("bytes={from}-"))),
        &base,
    );
    say_latencies("GET /info/NAME", &sequential(requests, 200, || client.get(&info)), &base);
    say_latencies(
        "GET /versions with If-None-Match (304)",
        &sequential(requests, 304, || client.get(&versions).header("if-none-match", &etag)),
        &base,
    );
}
