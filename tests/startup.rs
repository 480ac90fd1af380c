//! Start-up: the server answers `/health` (as `starting`) while it compiles its plugins, and
//! `/ready` only once it can serve; every route answers once `sluice listening on` is printed.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::sluice_bin;

fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let r = http.get(format!("http://127.0.0.1:{port}{path}")).send().ok()?;
    Some((r.status().as_u16(), r.text().unwrap_or_default()))
}

/// A cold plugin cache makes the server compile every plugin; meanwhile `/health` is live and
/// says `starting`, `/ready` and every other route answer 503. Then all is served.
#[test]
fn health_answers_while_plugins_compile() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let started = Instant::now();
    let mut child = Command::new(sluice_bin())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(dir.path().join("data"))
        // A cache of its own, empty: this start compiles every plugin.
        .env("SLUICE_PLUGIN_CACHE", dir.path().join("cache"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("sluice listening on") {
                let _ = tx.send(());
            }
        }
    });

    let mut seen_starting = false;
    let mut seen_refusals = false;
    while started.elapsed() < Duration::from_secs(120) {
        if rx.try_recv().is_ok() {
            break;
        }
        if let Some((status, body)) = get(port, "/health") {
            if body.contains("starting") {
                assert_eq!(status, 200, "/health is live while starting");
                seen_starting = true;
                let ready = get(port, "/ready").map(|r| r.0);
                let route = get(port, "/npm/-/ping").map(|r| r.0);
                // Start-up may end between these calls; still `starting` after both means both
                // were answered while starting.
                if get(port, "/health").is_some_and(|(_, b)| b.contains("starting")) {
                    assert_eq!(ready, Some(503), "not ready while starting");
                    assert_eq!(route, Some(503), "routes wait for the plugins");
                    seen_refusals = true;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let first_start = started.elapsed();
    assert!(seen_starting, "/health answered `starting` while the plugins compiled");
    assert!(seen_refusals, "/ready and the routes answered 503 while starting");
    assert_eq!(get(port, "/health").map(|r| r.0), Some(200));
    assert_eq!(get(port, "/ready"), Some((200, "{\"status\":\"ready\"}".to_string())));
    assert_eq!(get(port, "/npm/-/ping").map(|r| r.0), Some(200));
    println!("first start (cold plugin cache): {first_start:?}");
    let _ = child.kill();
    let _ = child.wait();
}
