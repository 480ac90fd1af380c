//! The guards a registry on a network needs, each against a real `sluice serve`: blobs are never
//! lost to a delete racing a publish, crash leftovers are cleaned, tokens of every kind do only
//! what they are for, ids of private things do not leak, slow and abusive clients are cut off,
//! bodies nobody may send are refused unread, webhooks stay out of the internal network, signed
//! git webhooks are not replayed, and tokens can be listed, revoked and expire.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::Digest as _;
use support::{sluice_bin, Server};

// ---- npm-protocol helpers (the npm plugin is the built-in format these tests publish with) ----

/// A small npm tarball whose bytes depend on `name`, `version` and `salt` only.
fn tarball(name: &str, version: &str, salt: &str) -> Vec<u8> {
    support::npm_fixture::simple_package(name, version, salt, salt)
}

fn publish(
    http: &reqwest::blocking::Client,
    url: &str,
    repo: &str,
    token: &str,
    name: &str,
    version: &str,
    tgz: &[u8],
) -> u16 {
    http.put(format!("{url}/{repo}/{name}"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(support::npm_fixture::publish_body(name, version, tgz))
        .send()
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// `npm unpublish NAME --force`: the package's `_rev`, then `DELETE /NAME/-rev/REV`.
fn unpublish(http: &reqwest::blocking::Client, url: &str, repo: &str, token: &str, name: &str) -> u16 {
    let doc: Value =
        match http.get(format!("{url}/{repo}/{name}?write=true")).bearer_auth(token).send().and_then(|r| r.json()) {
            Ok(d) => d,
            Err(_) => return 0,
        };
    let rev = doc["_rev"].as_str().unwrap_or("0-0").to_string();
    http.delete(format!("{url}/{repo}/{name}/-rev/{rev}"))
        .bearer_auth(token)
        .send()
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

fn two_npm_repositories(extra: &str) -> String {
    format!("{extra}\n[[repository]]\nname = \"a\"\nformat = \"npm\"\n[[repository]]\nname = \"b\"\nformat = \"npm\"\n")
}

// ---- 1. data loss ------------------------------------------------------------------------------

/// An unpublish in repository `a` racing a publish of the very same tarball in `b`: whatever the
/// order, `b`'s acknowledged version downloads with its bytes. Eight lanes race at once, for
/// hundreds of rounds (bounded in time); before blob removal and publish were serialised, about
/// one race in 150-1,500 lost the blob (`b`'s download answered 500).
#[test]
fn deleting_a_blob_never_loses_a_concurrent_publish_of_the_same_bytes() {
    const LANES: usize = 8;
    let server = Server::start_with_config(&two_npm_repositories(""));
    let token = server.token("ci", "publish", None);
    let started = Instant::now();
    let budget = Duration::from_secs(60);
    let rounds: Vec<usize> = std::thread::scope(|s| {
        let lanes: Vec<_> = (0..LANES)
            .map(|lane| {
                let (server, token) = (&server, &token);
                s.spawn(move || {
                    let http = server.http();
                    let name = format!("race-{lane}");
                    let mut round = 0;
                    while round < 250 && started.elapsed() < budget {
                        let version = format!("1.0.{round}");
                        let tgz = tarball(&name, &version, "same bytes in both repositories");
                        assert_eq!(
                            publish(&http, &server.url, "a", token, &name, &version, &tgz),
                            200,
                            "{name} round {round}: publish to a"
                        );
                        let barrier = std::sync::Barrier::new(2);
                        let (deleted, published) = std::thread::scope(|s| {
                            let d = s.spawn(|| {
                                barrier.wait();
                                unpublish(&http, &server.url, "a", token, &name)
                            });
                            let p = s.spawn(|| {
                                barrier.wait();
                                publish(&http, &server.url, "b", token, &name, &version, &tgz)
                            });
                            (d.join().unwrap(), p.join().unwrap())
                        });
                        assert_eq!((deleted, published), (200, 200), "{name} round {round}");
                        let got = http.get(format!("{}/b/{name}/-/{name}-{version}.tgz", server.url)).send().unwrap();
                        assert_eq!(
                            got.status().as_u16(),
                            200,
                            "{name} round {round}: b's acknowledged version must download"
                        );
                        assert_eq!(sha256_hex(&got.bytes().unwrap()), sha256_hex(&tgz), "{name} round {round}");
                        assert_eq!(unpublish(&http, &server.url, "b", token, &name), 200);
                        round += 1;
                    }
                    round
                })
            })
            .collect();
        lanes.into_iter().map(|l| l.join().unwrap()).collect()
    });
    let total: usize = rounds.iter().sum();
    println!("{total} races in {:?} ({rounds:?})", started.elapsed());
    assert!(total >= 200, "only {total} races ran in the time given");
    // Everything was unpublished at the end of each round: no blob may be left behind.
    assert!(server.wait_for(Duration::from_secs(5), || server
        .blob_files()
        .iter()
        .all(|p| p.starts_with(server.data.join("blobs/tmp")))));
}

/// Set a file's modification time `hours` back, as a crash long ago would have left it.
fn age(path: &Path, hours: u32) {
    let ok = Command::new("touch").arg("-d").arg(format!("{hours} hours ago")).arg(path).status().unwrap().success();
    assert!(ok, "touch -d");
}

/// What a kill -9 leaves (half-written temp uploads, a blob renamed into place whose transaction
/// never committed) is removed by the clean-up pass at start and then periodically, once older
/// than the grace period; fresh temp files (an upload in flight) and referenced blobs stay.
#[test]
fn crash_leftovers_are_cleaned_and_live_files_are_not() {
    let mut server = Server::start_with_config("blob_grace_secs = 600\ncleanup_interval_secs = 1\n");
    let token = server.token("ci", "publish", None);
    let http = server.http();
    let tgz = tarball("kept", "1.0.0", "kept");
    assert_eq!(publish(&http, &server.url, "npm", &token, "kept", "1.0.0", &tgz), 200);
    server.kill();

    let blobs = server.data.join("blobs");
    let stale_temp = blobs.join("tmp/.tmpCRASHED");
    std::fs::write(&stale_temp, b"half an upload").unwrap();
    age(&stale_temp, 2);
    let fresh_temp = blobs.join("tmp/.tmpINFLIGHT");
    std::fs::write(&fresh_temp, b"an upload in flight").unwrap();
    let orphan_sha = sha256_hex(b"renamed into place, never committed");
    let orphan = blobs.join(&orphan_sha[0..2]).join(&orphan_sha[2..4]).join(&orphan_sha);
    std::fs::create_dir_all(orphan.parent().unwrap()).unwrap();
    std::fs::write(&orphan, b"renamed into place, never committed").unwrap();
    age(&orphan, 2);
    let kept_sha = sha256_hex(&tgz);
    let kept = blobs.join(&kept_sha[0..2]).join(&kept_sha[2..4]).join(&kept_sha);
    assert!(kept.is_file());
    age(&kept, 2);

    server.restart();
    assert!(
        server.wait_for(Duration::from_secs(20), || !stale_temp.exists() && !orphan.exists()),
        "leftovers are removed"
    );
    std::thread::sleep(Duration::from_secs(2)); // a few more passes
    assert!(fresh_temp.exists(), "a temp file younger than the grace period is left alone");
    assert!(kept.is_file(), "a referenced blob stays, however old");
    let got = http.get(format!("{}/npm/kept/-/kept-1.0.0.tgz", server.url)).send().unwrap();
    assert_eq!(got.status().as_u16(), 200);
    assert_eq!(sha256_hex(&got.bytes().unwrap()), kept_sha);
}

// ---- 3-6. tokens for jobs ------------------------------------------------------------------------

const CI: &str = "stages: [test]\ncheck:\n  stage: test\n  script:\n    - test -f pkg/package.json\n";

/// Two repositories with a pipeline: `open` (public, gated) and `closed` (private).
fn pipeline_server() -> Server {
    Server::start_with_files(
        "[[repository]]\nname = \"open\"\nformat = \"npm\"\ngate = \"pipeline\"\npipeline = \"ci.yml\"\n\
         [[repository]]\nname = \"closed\"\nformat = \"npm\"\nread = \"token\"\npipeline = \"ci.yml\"\n",
        &[("ci.yml", CI)],
    )
}

/// POST /api/v1/jobs/request?wait=SECS with a runner token: the job, if one was handed out.
fn request_job(server: &Server, token: &str, wait: u64) -> (u16, Option<Value>) {
    let r = server
        .http()
        .post(format!("{}/api/v1/jobs/request?wait={wait}", server.url))
        .bearer_auth(token)
        .json(&json!({ "runner": "test" }))
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, if status == 201 { Some(r.json().unwrap()) } else { None })
}

fn get_status(server: &Server, path: &str, token: Option<&str>) -> u16 {
    let mut req = server.http().get(format!("{}{path}", server.url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().unwrap().status().as_u16()
}

/// A runner token created with `--repository open` takes `open`'s jobs only, never a private
/// repository's; a token for every repository takes the rest.
#[test]
fn a_runner_token_limited_to_a_repository_takes_only_its_jobs() {
    let server = pipeline_server();
    let publisher = server.token("ci", "publish", None);
    let http = server.http();
    assert_eq!(
        publish(
            &http,
            &server.url,
            "closed",
            &publisher,
            "secret-thing",
            "1.0.0",
            &tarball("secret-thing", "1.0.0", "s")
        ),
        200
    );
    let open_runner = server.token("open-runner", "runner", Some("open"));
    let (status, job) = request_job(&server, &open_runner, 1);
    assert_eq!((status, job.is_none()), (204, true), "no job of `closed` for a runner limited to `open`");

    assert_eq!(
        publish(&http, &server.url, "open", &publisher, "open-thing", "1.0.0", &tarball("open-thing", "1.0.0", "o")),
        200
    );
    let (status, job) = request_job(&server, &open_runner, 5);
    assert_eq!(status, 201);
    assert_eq!(job.unwrap()["variables"]["SLUICE_PACKAGE_NAME"], "open-thing", "its own repository's job");

    let any_runner = server.token("any-runner", "runner", None);
    let (_, job) = request_job(&server, &any_runner, 5);
    assert_eq!(
        job.expect("the unrestricted runner gets the private job")["variables"]["SLUICE_PACKAGE_NAME"],
        "secret-thing"
    );
}

/// A job token reads its push's file only while the job runs: not after its pipeline was
/// canceled, not after the runner finished.
#[test]
fn a_job_token_ends_with_its_job() {
    let server = pipeline_server();
    let publisher = server.token("ci", "publish", None);
    let admin = server.token("admin", "admin", None);
    let runner = server.token("runner", "runner", None);
    let http = server.http();
    for (i, name) in ["canceled-one", "finished-one"].iter().enumerate() {
        assert_eq!(
            publish(&http, &server.url, "closed", &publisher, name, "1.0.0", &tarball(name, "1.0.0", name)),
            200
        );
        let (_, job) = request_job(&server, &runner, 5);
        let job = job.expect("a job");
        let (file_url, job_token, id) = (
            job["file_url"].as_str().unwrap().to_string(),
            job["token"].as_str().unwrap().to_string(),
            job["id"].as_i64().unwrap(),
        );
        let download = || http.get(&file_url).bearer_auth(&job_token).send().unwrap().status().as_u16();
        assert_eq!(download(), 200, "a running job's token reads its file");
        if i == 0 {
            let pipeline = job["pipeline_id"].as_i64().unwrap();
            let r = http
                .post(format!("{}/api/v1/pipelines/{pipeline}/cancel", server.url))
                .bearer_auth(&admin)
                .send()
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
            assert_ne!(download(), 200, "a canceled job's token reads nothing");
            // The runner still learns of the cancel from its log call.
            let log = http
                .post(format!("{}/api/v1/jobs/{id}/log", server.url))
                .bearer_auth(&job_token)
                .body("x")
                .send()
                .unwrap();
            assert_eq!(log.json::<Value>().unwrap()["status"], "canceled");
        }
        let finish = http
            .post(format!("{}/api/v1/jobs/{id}/finish", server.url))
            .bearer_auth(&job_token)
            .json(&json!({ "status": "success", "exit_code": 0 }))
            .send()
            .unwrap();
        assert_eq!(finish.status().as_u16(), 200);
        assert_ne!(download(), 200, "{name}: a finished job's token reads nothing");
    }
}

/// The push-file address does not bypass the gate: a pending version's file is not served to a
/// reader, only to its running job and to admins; once released, readers get it too.
#[test]
fn the_gate_is_not_bypassed_by_the_push_file_address() {
    let server = pipeline_server();
    let publisher = server.token("ci", "publish", None);
    let reader = server.token("reader", "read", None);
    let admin = server.token("admin", "admin", None);
    let runner = server.token("runner", "runner", None);
    let tgz = tarball("gated-thing", "1.0.0", "g");
    assert_eq!(publish(&server.http(), &server.url, "open", &publisher, "gated-thing", "1.0.0", &tgz), 200);
    let path = format!("/api/v1/pushes/{}/file", sha256_hex(&tgz));
    assert_eq!(get_status(&server, &path, Some(&reader)), 404, "a pending version's file is hidden from readers");
    assert_eq!(get_status(&server, &path, None), 401);
    assert_eq!(get_status(&server, &path, Some(&admin)), 200, "admins may read it");
    server.run_one_job(&runner);
    assert!(
        server.wait_for(Duration::from_secs(20), || get_status(&server, "/open/gated-thing", None) == 200),
        "released"
    );
    assert_eq!(get_status(&server, &path, Some(&reader)), 200, "released: readers may read it");
}

/// A runner token takes jobs and nothing else.
#[test]
fn runner_tokens_take_jobs_and_nothing_else() {
    let server = pipeline_server();
    let runner = server.token("runner", "runner", None);
    for path in [
        "/api/v1/repositories",
        "/api/v1/plugins",
        "/api/v1/pushes",
        "/api/v1/pipelines",
        "/api/v1/repositories/open/packages",
    ] {
        assert_eq!(get_status(&server, path, Some(&runner)), 403, "{path}");
    }
    assert_eq!(request_job(&server, &runner, 0).0, 204, "it still takes jobs");
}

/// Pushes, pipelines, jobs and badges of a private repository answer a caller who may not read
/// them exactly as missing ones do; anonymous `/metrics` does not name private repositories.
#[test]
fn private_ids_answer_like_missing_ones() {
    let server = pipeline_server();
    let publisher = server.token("ci", "publish", Some("closed"));
    let outsider = server.token("outsider", "read", Some("open"));
    assert_eq!(
        publish(&server.http(), &server.url, "closed", &publisher, "hidden", "1.0.0", &tarball("hidden", "1.0.0", "h")),
        200
    );
    let everywhere = server.token("ci-everywhere", "publish", None);
    assert_eq!(
        publish(&server.http(), &server.url, "open", &everywhere, "shown", "1.0.0", &tarball("shown", "1.0.0", "s")),
        200
    );
    let admin = server.token("admin", "admin", None);
    let pipeline = server.latest_pipeline("closed", &admin);
    let (push_id, pipeline_id) =
        (pipeline["pipeline"]["push_id"].as_i64().unwrap(), pipeline["pipeline"]["id"].as_i64().unwrap());
    let job_id = pipeline["jobs"][0]["id"].as_i64().unwrap();
    let answer = |path: &str, token: Option<&str>| {
        let mut req = server.http().get(format!("{}{path}", server.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().unwrap();
        let status = r.status().as_u16();
        let mut body = r.text().unwrap().replace("999999", "N");
        for id in [push_id, pipeline_id, job_id] {
            body = body.replace(&id.to_string(), "N");
        }
        (status, body)
    };
    for token in [None, Some(outsider.as_str())] {
        for (existing, missing) in [
            (format!("/api/v1/pushes/{push_id}"), "/api/v1/pushes/999999".to_string()),
            (format!("/api/v1/pipelines/{pipeline_id}"), "/api/v1/pipelines/999999".to_string()),
            (format!("/api/v1/jobs/{job_id}"), "/api/v1/jobs/999999".to_string()),
            (format!("/api/v1/pipelines/{pipeline_id}/badge.svg"), "/api/v1/pipelines/999999/badge.svg".to_string()),
        ] {
            let (a, b) = (answer(&existing, token), answer(&missing, token));
            assert_eq!(a.0, 404, "{existing} with {token:?}");
            assert_eq!(a, b, "{existing} and {missing} answer alike");
        }
    }
    assert_eq!(answer(&format!("/api/v1/pushes/{push_id}"), Some(&admin)).0, 200);

    let (_, anonymous) = server.get("/metrics");
    assert!(anonymous.contains("repository=\"open\""), "public repositories' series are public: {anonymous}");
    assert!(!anonymous.contains("closed"), "anonymous metrics do not name private repositories: {anonymous}");
    let with_token =
        server.http().get(format!("{}/metrics", server.url)).bearer_auth(&admin).send().unwrap().text().unwrap();
    assert!(with_token.contains("repository=\"closed\""), "a token that may read them sees them");
}

/// `metrics = "token"` keeps the whole of `/metrics` behind a token.
#[test]
fn metrics_can_require_a_token() {
    let server = Server::start_with_config("metrics = \"token\"\n");
    let reader = server.token("reader", "read", None);
    assert_eq!(get_status(&server, "/metrics", None), 401);
    assert_eq!(get_status(&server, "/metrics", Some(&reader)), 200);
}

// ---- 8-9. slow and abusive clients ---------------------------------------------------------------

/// Reads until the peer closes the connection (or `limit` passes): what was read, and whether
/// it closed.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while start.elapsed() < limit {
        match stream.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), true),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), false)
}

/// A connection that never sends its headers, one that sends a header byte every second, and an
/// idle keep-alive connection are each closed after their timeout.
#[test]
fn slow_and_idle_connections_are_closed() {
    let server = Server::start_with_config("header_timeout_secs = 2\nkeepalive_idle_secs = 2\n");
    let addr = server.url.trim_start_matches("http://").to_string();

    let mut silent = TcpStream::connect(&addr).unwrap();
    let (_, closed) = read_until_closed(&mut silent, Duration::from_secs(10));
    assert!(closed, "a connection that sends nothing is closed");

    let mut trickle = TcpStream::connect(&addr).unwrap();
    let start = Instant::now();
    let request = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut closed = false;
    for byte in request.iter().take(request.len() - 2) {
        if trickle.write_all(&[*byte]).is_err() {
            closed = true;
            break;
        }
        let (_, c) = read_until_closed(&mut trickle, Duration::from_millis(800));
        if c {
            closed = true;
            break;
        }
    }
    assert!(closed, "a client trickling its headers is cut off");
    assert!(start.elapsed() < Duration::from_secs(15), "within the header timeout, not at the end of the trickle");

    let mut idle = TcpStream::connect(&addr).unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let (answer, closed) = read_until_closed(&mut idle, Duration::from_secs(10));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(closed, "an idle keep-alive connection is closed after its timeout");
}

/// 1,100 idle sockets against a server started with the usual 1,024 open-file soft limit: it
/// raises its limit and keeps answering `/health`.
#[test]
fn many_idle_sockets_do_not_stop_health() {
    let mut own = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
    own.0 = own.1.min(4096);
    rlimit::setrlimit(rlimit::Resource::NOFILE, own.0, own.1).unwrap();
    assert!(own.0 >= 1300, "the test needs 1,300 descriptors of its own; hard limit {}", own.1);
    let server = Server::start_through(&["prlimit", "--nofile=1024:"], "header_timeout_secs = 60\n");
    let addr = server.url.trim_start_matches("http://").to_string();
    let sockets: Vec<TcpStream> = (0..1100).filter_map(|_| TcpStream::connect(&addr).ok()).collect();
    assert_eq!(sockets.len(), 1100);
    std::thread::sleep(Duration::from_millis(500));
    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let health = http.get(format!("{}/health", server.url)).send();
    assert!(health.is_ok_and(|r| r.status().as_u16() == 200), "/health answers beside 1,100 idle sockets");
    drop(sockets);
}

/// Sends request headers alone and reads the first response line.
fn headers_only(addr: &str, head: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or("").to_string()
}

fn temp_files(server: &Server) -> usize {
    std::fs::read_dir(server.data.join("blobs/tmp")).map(|rd| rd.count()).unwrap_or(0)
}

/// An anonymous 300 MB PUT is refused with 401 before a byte of it is stored; a 2 GiB
/// `Content-Length` with `Expect: 100-continue` gets 413, not `100 Continue`; a stalled upload's
/// temp file is removed when its body idle timeout fires.
#[test]
fn bodies_nobody_may_send_are_refused_before_reading() {
    let server = Server::start_with_config("body_idle_timeout_secs = 2\n");
    let token = server.token("ci", "publish", None);
    let reader = server.token("reader", "read", None);
    let addr = server.url.trim_start_matches("http://").to_string();

    let anon = headers_only(
        &addr,
        "PUT /npm/x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 300000000\r\n\r\n",
    );
    assert!(anon.starts_with("HTTP/1.1 401"), "{anon}");
    let read_only = headers_only(
        &addr,
        &format!(
            "PUT /npm/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {reader}\r\nContent-Length: 300000000\r\n\r\n"
        ),
    );
    assert!(read_only.starts_with("HTTP/1.1 403"), "{read_only}");
    let huge = headers_only(
        &addr,
        &format!("PUT /npm/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nExpect: 100-continue\r\nContent-Length: 2147483648\r\n\r\n"),
    );
    assert!(huge.starts_with("HTTP/1.1 413"), "{huge}");
    assert_eq!(temp_files(&server), 0, "nothing of the refused bodies was stored");

    let mut stalled = TcpStream::connect(&addr).unwrap();
    stalled
        .write_all(
            format!(
                "PUT /npm/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: 10000000\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
    stalled.write_all(&vec![b'{'; 1_000_000]).unwrap();
    assert!(server.wait_for(Duration::from_secs(5), || temp_files(&server) == 1), "the upload is being spooled");
    assert!(
        server.wait_for(Duration::from_secs(15), || temp_files(&server) == 0),
        "the stalled upload's temp file is removed"
    );
    drop(stalled);
    assert_eq!(get_status(&server, "/health", None), 200);
}

// ---- 10-11. outbound requests and git webhooks ----------------------------------------------------

/// A webhook at an internal address is refused when the config loads, with the reason.
#[test]
fn webhooks_to_internal_addresses_are_refused_at_load() {
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://127.1/hook",
        "http://0.0.0.0/",
        "http://u:p@example.com/",
        "file:///etc/passwd",
        "http://10.0.0.8/",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("sluice.toml");
        std::fs::write(&config, format!("[[repository]]\nname = \"npm\"\nformat = \"npm\"\n[[repository.webhook]]\nurl = {url:?}\nsecret = \"s\"\n")).unwrap();
        let mut child = Command::new(sluice_bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(dir.path().join("data"))
            .arg("--config")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if started.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut stderr = String::new();
        child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        assert!(
            status.is_some_and(|s| !s.success()),
            "{url} must be refused when the config loads; the server started instead"
        );
        assert!(
            stderr.contains("webhook")
                && stderr.contains(url.split("://").nth(1).unwrap_or(url).split('/').next().unwrap()),
            "{url}: {stderr}"
        );
    }
}

/// A tiny HTTP receiver: answers every request with `reply` and counts what it got.
fn receiver(reply: &'static str) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut buf = [0u8; 65536];
            let _ = stream.read(&mut buf);
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    (url, hits)
}

/// With `allow_local_webhooks = true` a local receiver gets its delivery, but a redirect is
/// never followed: a 307 to another internal port does not re-POST the signed body there.
#[test]
fn webhooks_follow_no_redirects() {
    let (second, second_hits) = receiver("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    let redirect: &'static str = Box::leak(
        format!("HTTP/1.1 307 Temporary Redirect\r\nLocation: {second}/stolen\r\nContent-Length: 0\r\n\r\n")
            .into_boxed_str(),
    );
    let (first, first_hits) = receiver(redirect);
    let server = Server::start_with_files(
        &format!(
            "allow_local_webhooks = true\n[[repository]]\nname = \"npm\"\nformat = \"npm\"\npipeline = \"ci.yml\"\n\
             [[repository.webhook]]\nurl = \"{first}/hook\"\nsecret = \"s\"\n"
        ),
        &[("ci.yml", CI)],
    );
    let token = server.token("ci", "publish", None);
    assert_eq!(
        publish(&server.http(), &server.url, "npm", &token, "hooked", "1.0.0", &tarball("hooked", "1.0.0", "h")),
        200
    );
    assert!(
        server.wait_for(Duration::from_secs(20), || first_hits.load(std::sync::atomic::Ordering::SeqCst) > 0),
        "the receiver is called"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(second_hits.load(std::sync::atomic::Ordering::SeqCst), 0, "the redirect is not followed");
    let admin = server.token("admin", "admin", None);
    let deliveries = server.api_json("/api/v1/webhooks/deliveries", &admin);
    let d = &deliveries["deliveries"][0];
    assert_eq!((d["status_code"].as_i64(), d["delivered"].as_bool()), (Some(307), Some(false)), "{deliveries}");
}

/// A signed git webhook delivery is acted on once; the same delivery again is ignored.
#[test]
fn a_replayed_git_webhook_is_ignored() {
    use hmac::{Hmac, Mac};
    let server = Server::start_with_config(
        "[[repository]]\nname = \"go\"\nformat = \"gomod\"\npoll_seconds = 0\nwebhook_secret = \"s3cret\"\n",
    );
    let body = r#"{"ref":"refs/tags/v1.0.0","sender":{"login":"octocat"},"repository":{"clone_url":"https://example.com/greet.git"}}"#;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"s3cret").unwrap();
    mac.update(body.as_bytes());
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let send = |delivery: &str| -> Value {
        let r = server
            .http()
            .post(format!("{}/api/v1/repositories/go/webhook", server.url))
            .header("x-github-event", "push")
            .header("x-github-delivery", delivery)
            .header("x-hub-signature-256", &signature)
            .body(body)
            .send()
            .unwrap();
        assert!(matches!(r.status().as_u16(), 200 | 202), "{}", r.status());
        r.json().unwrap()
    };
    assert_eq!(send("72d3162e-cc78-11e3-81ab-4c9367dc0958")["synced"], true);
    let replay = send("72d3162e-cc78-11e3-81ab-4c9367dc0958");
    assert_eq!(replay["synced"], false, "{replay}");
    assert!(replay["reason"].as_str().unwrap().contains("already"), "{replay}");
    assert_eq!(send("another-delivery")["synced"], true, "a new delivery is acted on");
}

// ---- 13. tokens ------------------------------------------------------------------------------------

fn cli(server: &Server, args: &[&str]) -> String {
    let out = server.command().args(args).arg("--data").arg(&server.data).output().unwrap();
    assert!(out.status.success(), "sluice {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Tokens are listed (with last use, never secrets), revoked with immediate effect (CLI and API),
/// and refused after their expiry.
#[test]
fn tokens_are_listed_revoked_and_expire() {
    let server = Server::start();
    let admin = server.token("admin", "admin", None);
    let alice = server.token("alice", "read,publish", Some("npm"));
    let brief = server.token_with("brief", "read", None, &["--expires", "2s"]);
    assert_eq!(get_status(&server, "/npm/-/whoami", Some(&alice)), 200, "alice's token works");
    assert_eq!(get_status(&server, "/api/v1/repositories", Some(&brief)), 200, "an unexpired token works");

    let listed: Value = serde_json::from_str(&cli(&server, &["token", "list", "--json"])).unwrap();
    let alice_row = listed.as_array().unwrap().iter().find(|t| t["name"] == "alice").unwrap().clone();
    assert!(alice_row["last_used_at"].is_i64(), "its last use is recorded: {alice_row}");
    assert_eq!(alice_row["scopes"], "read,publish");
    assert!(!listed.to_string().contains(&alice), "secrets are never listed");
    let table = cli(&server, &["token", "list"]);
    assert!(table.contains("alice") && table.contains("active"), "{table}");

    let api = server.api_json("/api/v1/tokens", &admin);
    assert!(api["tokens"].as_array().unwrap().iter().any(|t| t["name"] == "brief" && t["expires_at"].is_i64()));
    let revoke = |id: i64, token: &str| {
        server
            .http()
            .delete(format!("{}/api/v1/tokens/{id}", server.url))
            .bearer_auth(token)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    let alice_id = alice_row["id"].as_i64().unwrap();
    assert_eq!(revoke(alice_id, &alice), 403, "only admins revoke");
    assert_eq!(revoke(alice_id, &admin), 200);
    assert_eq!(get_status(&server, "/npm/-/whoami", Some(&alice)), 401, "a revoked token is refused at once");
    assert_eq!(revoke(999_999, &admin), 404);

    let bob = server.token("bob", "read", None);
    let bob_id = server.api_json("/api/v1/tokens", &admin)["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "bob")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    cli(&server, &["token", "revoke", &bob_id.to_string()]);
    assert_eq!(
        get_status(&server, "/api/v1/repositories", Some(&bob)),
        401,
        "revoked from the CLI, refused by the running server"
    );

    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(get_status(&server, "/api/v1/repositories", Some(&brief)), 401, "an expired token is refused");
    assert!(cli(&server, &["token", "list"]).contains("expired"));

    let created = server
        .http()
        .post(format!("{}/api/v1/tokens", server.url))
        .bearer_auth(&admin)
        .json(&json!({ "name": "ninety", "scopes": "read", "expires": "90d" }))
        .send()
        .unwrap();
    assert_eq!(created.status().as_u16(), 200);
    let created: Value = created.json().unwrap();
    let in_90_days = created["expires_at"].as_i64().unwrap()
        - (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64);
    assert!((in_90_days - 90 * 86_400_000).abs() < 60_000, "{created}");
    let bad = server
        .http()
        .post(format!("{}/api/v1/tokens", server.url))
        .bearer_auth(&admin)
        .json(&json!({ "name": "x", "scopes": "read", "expires": "whenever" }))
        .send()
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
}
