//! One registry on SQLite, on PostgreSQL, and on PostgreSQL with several replicas (issue 14), in
//! the same run with the same work:
//! - publishes/s: distinct packages, 8 concurrent publishers, spread over the replicas;
//! - packument GETs/s: 16 concurrent clients over 200 packages, spread over the replicas.
//!
//! Setups: SQLite with the local blob folder (the default, the baseline); PostgreSQL with the
//! local folder (the database alone changes); PostgreSQL with an S3 bucket, one replica and two.
//! The PostgreSQL cluster and S3 server are the tests' (a throwaway cluster with fsync off, so
//! its writes are cheaper than a production database's; `s3s-fs` on loopback).
//!
//! Run with `cargo bench -p sluice --bench replicas`. The load client and every server share
//! this machine's cores, so a second replica adds no CPU: what it shows is that replicas cost
//! nothing in correctness and little in throughput, not how they scale on more machines.

mod common;
#[path = "../../tests/support/pg.rs"]
#[allow(dead_code)]
mod pg;
#[path = "../../tests/support/s3.rs"]
#[allow(dead_code)]
mod s3;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// For the tests' helpers: a tool's path, or a clear failure.
pub fn require_tool(name: &str) -> std::path::PathBuf {
    let out = std::process::Command::new("sh").arg("-c").arg(format!("command -v {name}")).output().unwrap();
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!path.is_empty(), "`{name}` is not installed; run the README's test command, which installs it");
    std::path::PathBuf::from(path)
}

const CONFIG: &str = "[[repository]]\nname = \"npm\"\nformat = \"npm\"\n";
const PUBLISHES: usize = 400;
const PUBLISHERS: usize = 8;
const PACKAGES: usize = 200;
const READERS: usize = 16;
const SECONDS: u64 = 6;

struct Setup {
    name: &'static str,
    servers: Vec<common::Server>,
}

impl Setup {
    fn urls(&self) -> Vec<String> {
        self.servers.iter().map(|s| s.url.clone()).collect()
    }
}

async fn publish(client: &reqwest::Client, url: &str, token: &str, name: &str) {
    let tarball = common::npm_tarball(name, "1.0.0", 1024);
    let r = client
        .put(format!("{url}/npm/{name}"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(common::publish_body(name, "1.0.0", &tarball))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "publish {name}: {}", r.status());
}

/// `count` publishes of new packages named `prefix-N`, `PUBLISHERS` at a time, round-robin over
/// `urls`: publishes/s.
async fn publish_rate(client: &reqwest::Client, urls: &[String], token: &str, prefix: &str, count: usize) -> f64 {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..PUBLISHERS {
        let (client, urls, token, next, prefix) =
            (client.clone(), urls.to_vec(), token.to_string(), next.clone(), prefix.to_string());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                publish(&client, &urls[i % urls.len()], &token, &format!("{prefix}-{i:05}")).await;
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    count as f64 / start.elapsed().as_secs_f64()
}

/// `READERS` clients for `SECONDS` reading the packuments of `prefix-0..PACKAGES`, round-robin
/// over `urls`: (requests/s, p99).
async fn read_rate(client: &reqwest::Client, urls: &[String], prefix: &str) -> (f64, Duration) {
    let deadline = Instant::now() + Duration::from_secs(SECONDS);
    let start = Instant::now();
    let mut workers = Vec::new();
    for w in 0..READERS {
        let (client, urls, prefix) = (client.clone(), urls.to_vec(), prefix.to_string());
        workers.push(tokio::spawn(async move {
            let (mut lat, mut i) = (Vec::new(), w * 7919);
            while Instant::now() < deadline {
                i += 31;
                let url = format!("{}/npm/{prefix}-{:05}", urls[i % urls.len()], i % PACKAGES);
                let t = Instant::now();
                let r = client.get(&url).send().await.unwrap();
                assert!(r.status().is_success(), "{url}: {}", r.status());
                let _ = r.bytes().await;
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let (rps, lat) = common::gather(workers, start).await;
    (rps, common::percentile(&lat, 99.0))
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::builder().pool_max_idle_per_host(READERS).build().unwrap();
    let s3 = s3::S3Server::start();
    let on_postgres = |database: &str| vec![("SLUICE_DATABASE".to_string(), database.to_string())];
    let setups = {
        let local_pg = pg::database();
        let one = pg::database();
        let two = pg::database();
        let s3_env = |db: &str| [on_postgres(db), s3.env()].concat();
        vec![
            Setup { name: "SQLite, local blobs (baseline)", servers: vec![common::Server::start(CONFIG, &[])] },
            Setup {
                name: "PostgreSQL, local blobs",
                servers: vec![common::Server::start_with_env(CONFIG, &[], &on_postgres(&local_pg))],
            },
            Setup {
                name: "PostgreSQL + S3, 1 replica",
                servers: vec![common::Server::start_with_env(CONFIG, &[], &s3_env(&one))],
            },
            Setup {
                name: "PostgreSQL + S3, 2 replicas",
                servers: vec![
                    common::Server::start_with_env(CONFIG, &[], &s3_env(&two)),
                    common::Server::start_with_env(CONFIG, &[], &s3_env(&two)),
                ],
            },
        ]
    };
    let mut baseline: Option<(f64, f64)> = None;
    for setup in &setups {
        let token = setup.servers[0].token("bench", "read,publish");
        let urls = setup.urls();
        let (publishes, (reads, p99)) = rt.block_on(async {
            // The packages the readers read, then the measured publishes of others.
            publish_rate(&client, &urls, &token, "read", PACKAGES).await;
            let publishes = publish_rate(&client, &urls, &token, "new", PUBLISHES).await;
            (publishes, read_rate(&client, &urls, "read").await)
        });
        let (base_publishes, base_reads) = *baseline.get_or_insert((publishes, reads));
        common::say(&format!(
            "{:<32} publishes: {publishes:>6.0}/s ({:.2} of the baseline)   packument GETs: {reads:>7.0}/s ({:.2}), p99 {:.1} ms",
            setup.name,
            publishes / base_publishes,
            reads / base_reads,
            p99.as_secs_f64() * 1e3
        ));
    }
}
