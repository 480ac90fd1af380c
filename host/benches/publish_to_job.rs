//! The time from a publish to a waiting runner starting its job: a gated npm repository with one
//! job, a `sluice runner` process long-polling, and sequential publishes. The baseline is the
//! publish request itself, measured in the same run. Run with
//! `cargo bench -p sluice --bench publish_to_job`.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const PUBLISHES: usize = 40;

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn main() {
    let server = common::Server::start(
        "[[repository]]\nname = \"npm\"\nformat = \"npm\"\ngate = \"pipeline\"\npipeline = \"ci.yml\"\n",
        &[("ci.yml", "check:\n  script: test -f pkg/package.json\n")],
    );
    let publisher = server.token("bench", "publish");
    let admin = server.token("admin", "admin");
    let runner_token = server.token("runner", "runner");
    let work = tempfile::tempdir().unwrap();
    let mut runner = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["runner", "--url", &server.url, "--token", &runner_token, "--work-dir"])
        .arg(work.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let http = reqwest::blocking::Client::new();
    let mut to_start = Vec::new();
    let mut publish = Vec::new();
    std::thread::sleep(Duration::from_millis(500)); // the runner is waiting
    for i in 0..PUBLISHES {
        let name = format!("bench-gated-{i}");
        let body = common::publish_body(&name, "1.0.0", &common::npm_tarball(&name, "1.0.0", 4096));
        let t0 = now_ms();
        let t = Instant::now();
        let r = http
            .put(format!("{}/npm/{name}", server.url))
            .bearer_auth(&publisher)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .unwrap();
        publish.push(t.elapsed());
        assert!(r.status().is_success());
        // Wait for the pipeline to finish, so that the runner is waiting again for the next one.
        let started = loop {
            let list: serde_json::Value = http
                .get(format!("{}/api/v1/pipelines?repository=npm&limit=1", server.url))
                .bearer_auth(&admin)
                .send()
                .unwrap()
                .json()
                .unwrap();
            let id = list["pipelines"][0]["id"].as_i64().unwrap();
            let p: serde_json::Value = http
                .get(format!("{}/api/v1/pipelines/{id}", server.url))
                .bearer_auth(&admin)
                .send()
                .unwrap()
                .json()
                .unwrap();
            if p["pipeline"]["status"] == "success" {
                break p["jobs"][1]["started_at"].as_i64().unwrap();
            }
            assert_ne!(p["pipeline"]["status"], "failed", "{p}");
            std::thread::sleep(Duration::from_millis(20));
        };
        to_start.push(Duration::from_millis((started - t0).max(0) as u64));
    }
    let _ = runner.kill();
    let _ = runner.wait();
    to_start.sort();
    publish.sort();
    let p50 = common::percentile(&to_start, 50.0);
    common::say(&format!("{PUBLISHES} sequential publishes to a gated repository, one runner waiting"));
    common::say(&format!(
        "publish -> job started: median {} ms, p90 {} ms (server clock, ms resolution)",
        p50.as_millis(),
        common::percentile(&to_start, 90.0).as_millis()
    ));
    common::say(&format!(
        "publish request alone (baseline): median {:.1} ms",
        common::micros(common::percentile(&publish, 50.0)) / 1000.0
    ));
}
