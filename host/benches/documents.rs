//! Kept documents (issue 13), each figure beside a baseline measured in the same run:
//! - publishes/s of one package at 1 existing version and at 10,000;
//! - full and abbreviated packument GETs of that 10,000-version package (p50/p99), and the time
//!   the first GET after one more publish takes (it renders the document again);
//! - packument GETs over 1,000 packages with 16 concurrent clients against `GET /health`, and
//!   the same with `If-None-Match` (304s);
//! - npm search over 10,000 packages, a different query each request (p99).
//!
//! Run with `cargo bench -p sluice --bench documents`. The load client shares the machine with
//! the server, so rates are lower bounds.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

const VERSIONS: usize = 10_000;
const PACKAGES: usize = 10_000;
const LOAD_PACKAGES: usize = 1_000;
const CONCURRENCY: usize = 16;
const SECONDS: u64 = 8;
const ABBREVIATED: &str = "application/vnd.npm.install-v1+json";

/// Publishes `name@version` (a small tarball of its own, as the plugin checks the name and
/// version inside against the publish).
async fn publish(client: &reqwest::Client, url: &str, token: &str, name: &str, version: &str) {
    let tarball = common::npm_tarball(name, version, 1024);
    let tarball = &tarball[..];
    let r = client
        .put(format!("{url}/npm/{name}"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(common::publish_body(name, version, tarball))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "publish {name}@{version}: {}", r.status());
}

fn version(i: usize) -> String {
    format!("{}.{}.{}", i / 1000, (i / 10) % 100, i % 10)
}

/// Sequential GETs: sorted latencies.
async fn sequential(client: &reqwest::Client, url: &str, accept: Option<&str>, gzip: bool, n: usize) -> Vec<Duration> {
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        let mut req = client.get(url);
        if let Some(a) = accept {
            req = req.header("accept", a);
        }
        if gzip {
            // As npm asks; the compressed bytes are read, not inflated (the client's work).
            req = req.header("accept-encoding", "gzip");
        }
        let t = Instant::now();
        let r = req.send().await.unwrap();
        assert!(r.status().is_success());
        let _ = r.bytes().await.unwrap();
        lat.push(t.elapsed());
    }
    lat.sort();
    lat
}

fn say_latencies(what: &str, lat: &[Duration]) {
    common::say(&format!(
        "{what}: p50 {:.0} µs, p99 {:.0} µs ({} requests)",
        common::micros(common::percentile(lat, 50.0)),
        common::micros(common::percentile(lat, 99.0)),
        lat.len()
    ));
}

/// `CONCURRENCY` clients for `SECONDS` over `urls`, with `If-None-Match` from `etags` when given:
/// (requests/s, sorted latencies).
async fn load(
    client: reqwest::Client,
    urls: Arc<Vec<String>>,
    etags: Option<Arc<Vec<String>>>,
) -> (f64, Vec<Duration>) {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(SECONDS);
    let mut workers = Vec::new();
    for w in 0..CONCURRENCY {
        let (client, urls, etags) = (client.clone(), urls.clone(), etags.clone());
        workers.push(tokio::spawn(async move {
            let (mut lat, mut i) = (Vec::new(), w * 7919);
            while Instant::now() < deadline {
                let k = i % urls.len();
                i += 31;
                let mut req = client.get(&urls[k]);
                if let Some(e) = &etags {
                    req = req.header("if-none-match", &e[k]);
                }
                let t = Instant::now();
                let r = req.send().await.unwrap();
                let expected = if etags.is_some() { 304 } else { 200 };
                assert_eq!(r.status().as_u16(), expected);
                let _ = r.bytes().await;
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    common::gather(workers, start).await
}

fn main() {
    let server = common::Server::start("[[repository]]\nname = \"npm\"\nformat = \"npm\"\n", &[]);
    let token = server.token("bench", "publish");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::builder().pool_max_idle_per_host(CONCURRENCY).build().unwrap();
    let url = server.url.clone();

    // Publish rate at the start and the end of 10,000 versions of one package.
    let window = 200;
    let (first, last) = rt.block_on(async {
        let (mut first, mut last) = (Duration::ZERO, Duration::ZERO);
        let t = Instant::now();
        for i in 0..VERSIONS {
            let started = Instant::now();
            publish(&client, &url, &token, "many", &version(i)).await;
            if i < window {
                first += started.elapsed();
            } else if i >= VERSIONS - window {
                last += started.elapsed();
            }
            if i % 2000 == 1999 {
                common::say(&format!("  {} versions published, {:.0} s", i + 1, t.elapsed().as_secs_f64()));
            }
        }
        (first, last)
    });
    let rate = |d: Duration| window as f64 / d.as_secs_f64();
    common::say(&format!(
        "publish into one package: {:.0}/s at 1-{window} existing versions (baseline), {:.0}/s at {}-{VERSIONS}: {:.2} of the baseline",
        rate(first),
        rate(last),
        VERSIONS - window,
        rate(last) / rate(first)
    ));

    // GETs of the 10,000-version packument, and the first GET after one more publish.
    let many = format!("{url}/npm/many");
    rt.block_on(async {
        let t = Instant::now();
        let body = client.get(&many).send().await.unwrap().bytes().await.unwrap();
        common::say(&format!(
            "first GET of the {VERSIONS}-version packument (renders it): {:.1} ms, {} KB",
            t.elapsed().as_secs_f64() * 1e3,
            body.len() / 1024
        ));
        let t = Instant::now();
        let body = client.get(&many).header("accept", ABBREVIATED).send().await.unwrap().bytes().await.unwrap();
        common::say(&format!(
            "first GET of its abbreviated packument: {:.1} ms, {} KB",
            t.elapsed().as_secs_f64() * 1e3,
            body.len() / 1024
        ));
        say_latencies("full packument GET, 10,000 versions", &sequential(&client, &many, None, false, 500).await);
        say_latencies(
            "abbreviated packument GET, 10,000 versions",
            &sequential(&client, &many, Some(ABBREVIATED), false, 500).await,
        );
        say_latencies("full packument GET, gzip", &sequential(&client, &many, None, true, 500).await);
        say_latencies(
            "abbreviated packument GET, gzip",
            &sequential(&client, &many, Some(ABBREVIATED), true, 500).await,
        );
        say_latencies("GET /health (baseline)", &sequential(&client, &format!("{url}/health"), None, false, 500).await);
        // The same documents under a query nobody asked before are rendered whole: the
        // baseline of a re-render in parts.
        let (mut whole, mut abbreviated, mut full) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..20 {
            let t = Instant::now();
            let r = client.get(format!("{many}?whole={i}")).header("accept", ABBREVIATED).send().await.unwrap();
            let _ = r.bytes().await.unwrap();
            whole.push(t.elapsed());
            publish(&client, &url, &token, "many", &format!("10.0.{i}")).await;
            let t = Instant::now();
            let r = client.get(&many).header("accept", ABBREVIATED).send().await.unwrap();
            let _ = r.bytes().await.unwrap();
            abbreviated.push(t.elapsed());
            let t = Instant::now();
            let r = client.get(&many).send().await.unwrap();
            let _ = r.bytes().await.unwrap();
            full.push(t.elapsed());
        }
        for l in [&mut whole, &mut abbreviated, &mut full] {
            l.sort();
        }
        say_latencies("abbreviated GET rendered whole (baseline: a document nobody read before)", &whole);
        say_latencies("first abbreviated GET after one more publish (rendered again in parts)", &abbreviated);
        say_latencies("first full GET after that publish (rendered again in parts)", &full);
        common::say(&format!(
            "re-render after a publish, p50: {:.2} of a whole render",
            common::percentile(&abbreviated, 50.0).as_secs_f64() / common::percentile(&whole, 50.0).as_secs_f64()
        ));
    });

    // 10,000 packages of one version each: packument load over 1,000 of them, and search.
    let t = Instant::now();
    rt.block_on(async {
        for i in 0..PACKAGES {
            let name = format!("pkg-{i:05}");
            publish(&client, &url, &token, &name, "1.0.0").await;
        }
    });
    common::say(&format!("published {PACKAGES} packages in {:.0} s", t.elapsed().as_secs_f64()));
    let urls: Arc<Vec<String>> = Arc::new((0..LOAD_PACKAGES).map(|i| format!("{url}/npm/pkg-{i:05}")).collect());
    let etags: Arc<Vec<String>> = Arc::new(rt.block_on(async {
        let mut out = Vec::new();
        for u in urls.iter() {
            let r = client.get(u).send().await.unwrap();
            out.push(r.headers()["etag"].to_str().unwrap().to_string());
        }
        out
    }));
    let health = Arc::new(vec![format!("{url}/health")]);
    let (base, base_lat) = rt.block_on(load(client.clone(), health, None));
    let (docs, docs_lat) = rt.block_on(load(client.clone(), urls.clone(), None));
    let (revalidated, reval_lat) = rt.block_on(load(client.clone(), urls, Some(etags)));
    common::say(&format!("{CONCURRENCY} concurrent clients, {SECONDS} s each, over {LOAD_PACKAGES} packages"));
    let p99 = |l: &[Duration]| common::micros(common::percentile(l, 99.0));
    common::say(&format!("GET /health (baseline): {base:.0} req/s, p99 {:.0} µs", p99(&base_lat)));
    common::say(&format!(
        "GET packument: {docs:.0} req/s, p99 {:.0} µs: {:.2} of /health",
        p99(&docs_lat),
        docs / base
    ));
    common::say(&format!(
        "GET packument with If-None-Match (304): {revalidated:.0} req/s, p99 {:.0} µs: {:.2} of /health",
        p99(&reval_lat),
        revalidated / base
    ));

    // Search: a different query each time, so each is answered by the index, not a kept page.
    rt.block_on(async {
        let mut lat = Vec::new();
        for i in 0..500 {
            let q = format!("{:04}", (i * 7) % 10_000);
            let t = Instant::now();
            let r = client.get(format!("{url}/npm/-/v1/search?text={q}&size=20")).send().await.unwrap();
            assert!(r.status().is_success());
            let _ = r.bytes().await.unwrap();
            lat.push(t.elapsed());
        }
        lat.sort();
        say_latencies(&format!("npm search over {PACKAGES} packages, 20 a page, each query new"), &lat);
    });
}
