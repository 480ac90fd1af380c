//! The plugin runtime's fault isolation, through a real server: a plugin that traps, loops or
//! allocates without end fails that one request with a clear error, quickly, while the server
//! keeps answering other requests.

mod support;

use std::time::{Duration, Instant};

use support::Server;

fn fault_server() -> Server {
    let wasm = env!("SLUICE_FAULT_PLUGIN_WASM");
    Server::start_with_config(&format!(
        "plugin_timeout_ms = 500\nplugin_memory_mb = 64\n\
         [[plugin]]\npath = {wasm:?}\n\
         [[repository]]\nname = \"fault\"\nformat = \"fault\"\n"
    ))
}

/// GET `path`, returning status, body and how long it took (printed, never asserted: speed is
/// the benchmarks' business).
fn timed_get(server: &Server, path: &str) -> (u16, String, Duration) {
    let start = Instant::now();
    let (status, body) = server.get(path);
    (status, body, start.elapsed())
}

#[test]
fn faulty_plugin_calls_fail_alone_and_the_server_keeps_serving() {
    let mut server = fault_server();
    assert_eq!(server.get("/fault/ok"), (200, "ok".to_string()));

    let (status, body, took) = timed_get(&server, "/fault/trap");
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("plugin `fault` failed") && body.contains("wasm trap"), "a trap is named as such: {body}");
    println!("trap failed after {took:?}");

    let (status, body, took) = timed_get(&server, "/fault/alloc");
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("exceeded its memory limit of 64 MiB"), "{body}");
    println!("over-allocation failed after {took:?}");

    // While one call spins until its deadline, other requests are answered.
    let url = server.url.clone();
    let looping = std::thread::spawn(move || {
        let start = Instant::now();
        let r = reqwest::blocking::get(format!("{url}/fault/loop")).unwrap();
        (r.status().as_u16(), r.text().unwrap(), start.elapsed())
    });
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(server.get("/fault/ok").0, 200);
    assert_eq!(server.get("/health").0, 200);
    assert!(!looping.is_finished(), "the other requests were answered while the loop still ran");
    let (status, body, took) = looping.join().unwrap();
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("exceeded its time limit of 500 ms"), "{body}");
    println!("the loop was stopped after {took:?}");

    // Plugin output goes to the log, not to the client.
    assert_eq!(server.get("/fault/print"), (200, "printed".to_string()));
    for _ in 0..20 {
        assert_eq!(server.get("/fault/trap").0, 500);
    }
    assert_eq!(server.get("/fault/ok"), (200, "ok".to_string()));
    assert!(server.is_alive());

    // Operators see the faults in /metrics.
    let (status, metrics) = server.get("/metrics");
    assert_eq!(status, 200);
    for line in [
        "sluice_plugin_call_failures_total{plugin=\"fault\",reason=\"timeout\"} 1",
        "sluice_plugin_call_failures_total{plugin=\"fault\",reason=\"out_of_memory\"} 1",
        "sluice_plugin_call_failures_total{plugin=\"fault\",reason=\"trap\"} 21",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    }
}

#[test]
fn inspect_prints_what_a_plugin_declares() {
    let out = std::process::Command::new(support::sluice_bin())
        .args(["plugin", "inspect", env!("SLUICE_FAULT_PLUGIN_WASM")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["format"]["name"], "fault");
    assert_eq!(report["contract"], "sluice:plugin@0.1.0");
    assert_eq!(report["trigger (for example@1.0.0)"]["event"], "package_push");
    assert_eq!(report["sha256"].as_str().unwrap().len(), 64);
}

#[test]
fn a_file_that_is_not_a_plugin_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus.wasm");
    std::fs::write(&bogus, b"\0asm not really").unwrap();
    let out =
        std::process::Command::new(support::sluice_bin()).args(["plugin", "inspect"]).arg(&bogus).output().unwrap();
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
}

/// A client that disconnects halfway through an upload leaves nothing behind: no blob, no temp
/// file, no push; the server keeps serving.
#[test]
fn a_client_that_disconnects_mid_upload_leaves_nothing() {
    use std::io::Write;
    let mut server = Server::start();
    let token = server.token("publisher", "publish", None);
    let addr = server.url.trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    let declared = 4 << 20;
    write!(
        stream,
        "PUT /npm/half-upload HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {declared}\r\n\r\n"
    )
    .unwrap();
    stream.write_all(&vec![b'x'; declared / 2]).unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(stream);

    let tmp = server.data.join("blobs/tmp");
    assert!(
        server.wait_for(Duration::from_secs(10), || std::fs::read_dir(&tmp).map(|d| d.count() == 0).unwrap_or(true)),
        "the half-written temp file is removed"
    );
    assert!(server.blob_files().is_empty(), "no blob is stored: {:?}", server.blob_files());
    assert_eq!(server.get("/health").0, 200);
    let admin = server.token("admin", "admin", None);
    assert_eq!(server.api_json("/api/v1/pushes", &admin)["pushes"].as_array().unwrap().len(), 0);
    assert_eq!(server.get("/npm/half-upload").0, 404);
    assert!(server.is_alive());
}
