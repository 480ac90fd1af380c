//! Packument GETs over 1,000 published npm packages: requests/s and latency percentiles, with
//! `GET /health` (no plugin, no database) measured by the same client in the same run as the
//! baseline. Run with `cargo bench -p sluice --bench packument_load`. The load client shares the
//! machine with the server, so both figures are lower bounds.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

const PACKAGES: usize = 1000;
const CONCURRENCY: usize = 32;
const SECONDS: u64 = 10;

struct Load {
    requests: usize,
    errors: usize,
    latencies: Vec<Duration>,
    elapsed: Duration,
}

async fn load(client: reqwest::Client, urls: Arc<Vec<String>>) -> Load {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(SECONDS);
    let mut workers = Vec::new();
    for w in 0..CONCURRENCY {
        let (client, urls) = (client.clone(), urls.clone());
        workers.push(tokio::spawn(async move {
            let (mut lat, mut errors, mut i) = (Vec::new(), 0usize, w * 7919);
            while Instant::now() < deadline {
                let url = &urls[i % urls.len()];
                i += 31;
                let t = Instant::now();
                match client.get(url).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        lat.push(t.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for w in workers {
        let (l, e) = w.await.unwrap();
        latencies.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed();
    latencies.sort();
    Load { requests: latencies.len(), errors, latencies, elapsed }
}

fn report(what: &str, l: &Load) -> f64 {
    let rps = l.requests as f64 / l.elapsed.as_secs_f64();
    common::say(&format!(
        "{what}: {rps:.0} req/s, p50 {:.0} µs, p99 {:.0} µs, {} requests, {} errors",
        common::micros(common::percentile(&l.latencies, 50.0)),
        common::micros(common::percentile(&l.latencies, 99.0)),
        l.requests,
        l.errors
    ));
    rps
}

fn main() {
    let server = common::Server::start("[[repository]]\nname = \"npm\"\nformat = \"npm\"\n", &[]);
    let token = server.token("bench", "publish");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::builder().pool_max_idle_per_host(CONCURRENCY).build().unwrap();
    common::say(&format!("publishing {PACKAGES} packages..."));
    let t = Instant::now();
    rt.block_on(async {
        for i in 0..PACKAGES {
            let name = format!("bench-pkg-{i}");
            let body = common::publish_body(&name, "1.0.0", &common::npm_tarball(&name, "1.0.0", 2048));
            let r = client
                .put(format!("{}/npm/{name}", server.url))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "publish {name}: {}", r.status());
        }
    });
    common::say(&format!("published in {:.1} s", t.elapsed().as_secs_f64()));

    let packuments: Arc<Vec<String>> =
        Arc::new((0..PACKAGES).map(|i| format!("{}/npm/bench-pkg-{i}", server.url)).collect());
    let health: Arc<Vec<String>> = Arc::new(vec![format!("{}/health", server.url)]);
    let base = rt.block_on(load(client.clone(), health));
    let pack = rt.block_on(load(client, packuments));
    common::say(&format!("{CONCURRENCY} concurrent clients, {SECONDS} s each"));
    let base_rps = report("GET /health (baseline)", &base);
    let pack_rps = report("GET packument (plugin)", &pack);
    common::say(&format!("packument throughput / baseline: {:.2}", pack_rps / base_rps));
}
