//! Proxy repositories (issue 15, npm): a `sluice serve` whose `npmjs` repository proxies a second
//! `sluice serve` on loopback, to which the tests publish with real `npm publish`. Real
//! `npm install` goes through the proxy with fresh caches; the upstream is stopped, turned
//! hostile, or its versions deleted, and users' installs must still do the right thing.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::npm::{app, make_package, require, Npm};
use support::Server;

/// The upstream: a plain Sluice with its default `npm` repository and these packages published
/// by real `npm publish`.
fn upstream_with(packages: &[(&str, &str)]) -> (Server, Npm) {
    let up = Server::start();
    let token = up.token("publisher", "publish", None);
    let npm = Npm::new(&up, "publisher", Some(&token));
    for (name, version) in packages {
        let dir = make_package(&up.work, name, version);
        npm.ok(&dir, &["publish"]);
    }
    (up, npm)
}

fn proxy_config(upstream: &Server, extra: &str) -> String {
    format!(
        "[[repository]]\nname = \"npmjs\"\nformat = \"npm\"\nupstream = \"{}\"\n# The upstream runs on loopback.\nallow_local_upstream = true\n{extra}\n",
        upstream.repo_url("npm")
    )
}

/// An npm client of the proxy's `npmjs` repository with its own fresh cache.
fn client(proxy: &Server, name: &str) -> Npm {
    Npm { registry: format!("{}/", proxy.repo_url("npmjs")), ..Npm::new(proxy, name, None) }
}

/// A counter of `/metrics` by its exact series (`name{labels}`); 0 when absent.
fn metric(server: &Server, series: &str) -> f64 {
    let (status, text) = server.get("/metrics");
    assert_eq!(status, 200);
    text.lines().find_map(|l| l.strip_prefix(series).and_then(|rest| rest.trim().parse().ok())).unwrap_or(0.0)
}

fn upstream_event(server: &Server, event: &str) -> f64 {
    metric(server, &format!("sluice_upstream_total{{repository=\"npmjs\",event=\"{event}\"}}"))
}

#[test]
fn installs_through_the_proxy_and_from_its_cache_once_the_upstream_is_down() {
    support::require_tool("node");
    let (mut up, _) = upstream_with(&[("left-dep", "1.2.0"), ("@acme/widget", "2.0.0")]);
    let proxy = Server::start_with_config(&proxy_config(&up, "metadata_ttl = \"1s\""));

    let npm = client(&proxy, "first");
    let dir = app(&proxy.work, "first-app", &[("left-dep", "^1.0.0"), ("@acme/widget", "2.0.0")]);
    npm.ok(&dir, &["install"]);
    assert_eq!(require(&dir, "left-dep"), "hello from left-dep@1.2.0");
    assert_eq!(require(&dir, "@acme/widget"), "hello from @acme/widget@2.0.0");
    let lock: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("package-lock.json")).unwrap()).unwrap();
    let resolved = lock["packages"]["node_modules/@acme/widget"]["resolved"].as_str().unwrap();
    assert!(
        resolved.starts_with(&proxy.repo_url("npmjs")),
        "the tarball came through the proxy, not from the upstream: {resolved}"
    );

    // `npm view` reads the full packument, also through the proxy.
    let viewed = npm.view(&dir, &["@acme/widget"]);
    assert_eq!(viewed["version"], "2.0.0");
    assert!(viewed["dist"]["tarball"].as_str().unwrap().starts_with(&proxy.repo_url("npmjs")), "{viewed}");

    // The audit log records each fetched file as a push by `upstream`, with where it came from.
    let fetched = proxy.upstream_fetches("npmjs", &up.repo_url("npm"));
    assert_eq!(fetched.len(), 2, "{fetched:?}");

    // The upstream goes away; its metadata has expired here too (1 s), so the proxy must serve
    // what it kept.
    up.kill();
    std::thread::sleep(Duration::from_millis(1500));
    let npm = client(&proxy, "second");
    let dir = app(&proxy.work, "second-app", &[("left-dep", "^1.0.0"), ("@acme/widget", "2.0.0")]);
    npm.ok(&dir, &["install"]);
    assert_eq!(require(&dir, "left-dep"), "hello from left-dep@1.2.0");
    assert_eq!(require(&dir, "@acme/widget"), "hello from @acme/widget@2.0.0");
    assert!(upstream_event(&proxy, "stale_served") >= 1.0, "stale copies served are counted");
    assert!(upstream_event(&proxy, "failure") >= 1.0, "the upstream's failures are counted");
    assert!(proxy.log().contains("stale-if-error"), "and logged");

    // A package the proxy never saw cannot come from anywhere: a clear error, the server stays up.
    // (npm retries a 5xx for a minute by default; once is enough to see the answer.)
    let (ok, out, err) = npm.run(&dir, &["install", "never-seen", "--fetch-retries=0"]);
    assert!(!ok, "{out}");
    assert!(err.contains("502") || err.contains("Bad Gateway"), "{err}");
}

#[test]
fn a_tarball_that_does_not_match_the_upstream_integrity_is_refused_and_not_stored() {
    let liar = hostile::liar();
    let config = format!(
        "[[repository]]\nname = \"npmjs\"\nformat = \"npm\"\nupstream = \"{}/npm\"\nallow_local_upstream = true\n",
        liar.origin
    );
    let mut proxy = Server::start_with_config(&config);
    let npm = client(&proxy, "victim");
    let dir = app(&proxy.work, "victim-app", &[("liar", "1.0.0")]);
    let (ok, out, err) = npm.run(&dir, &["install", "--fetch-retries=0"]);
    assert!(!ok, "npm must not install a tarball its registry could not verify:\n{out}\n{err}");
    assert!(!dir.join("node_modules/liar").exists());

    let (status, body) = proxy.get("/npmjs/liar/-/liar-1.0.0.tgz");
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("does not match the sha512 digest"), "the client is told why: {body}");
    let stored: Vec<_> = proxy.blob_files().into_iter().filter(|p| !p.to_string_lossy().contains("/tmp/")).collect();
    assert!(stored.is_empty(), "nothing of the bad tarball is stored: {stored:?}");
    let admin = proxy.token("admin", "admin", None);
    assert_eq!(proxy.api_json("/api/v1/pushes?repository=npmjs", &admin)["pushes"], serde_json::json!([]));
    assert!(upstream_event(&proxy, "file_refused") >= 1.0);
    assert!(proxy.is_alive());
}

#[test]
fn offline_serves_what_was_kept_and_never_calls_the_upstream() {
    support::require_tool("node");
    let (up, _) = upstream_with(&[("left-dep", "1.2.0"), ("@acme/widget", "2.0.0")]);
    let mut proxy = Server::start_with_config(&proxy_config(&up, ""));
    let npm = client(&proxy, "online");
    let dir = app(&proxy.work, "online-app", &[("left-dep", "1.2.0")]);
    npm.ok(&dir, &["install"]);

    // The same proxy, restarted offline (its data folder and kept copies stay).
    std::fs::write(proxy.config_dir().join("sluice.toml"), proxy_config(&up, "offline = true")).unwrap();
    proxy.restart();
    let calls = || metric(&up, "sluice_plugin_calls_total{plugin=\"npm\"}");
    let before = calls();
    let npm = client(&proxy, "offline");
    let dir = app(&proxy.work, "offline-app", &[("left-dep", "1.2.0")]);
    npm.ok(&dir, &["install"]);
    assert_eq!(require(&dir, "left-dep"), "hello from left-dep@1.2.0");
    // Something the proxy never kept is not found rather than fetched.
    let (ok, _, err) = npm.run(&dir, &["install", "@acme/widget@2.0.0"]);
    assert!(!ok && err.contains("404"), "{err}");
    // `/metrics` is the host's own route (no plugin call): the upstream's npm plugin counted
    // no request while the proxy was offline.
    assert_eq!(calls(), before, "the upstream was never asked");
    assert_eq!(upstream_event(&proxy, "failure"), 0.0);
}

#[test]
fn a_version_deleted_upstream_leaves_the_proxied_packument_but_stays_installable_by_lockfile() {
    support::require_tool("node");
    let (up, publisher) = upstream_with(&[("left-dep", "1.0.0"), ("left-dep", "1.0.1")]);
    let proxy = Server::start_with_config(&proxy_config(&up, "metadata_ttl = \"1s\""));
    let npm = client(&proxy, "pinned");
    let dir = app(&proxy.work, "pinned-app", &[("left-dep", "1.0.1")]);
    npm.ok(&dir, &["install"]);
    assert_eq!(require(&dir, "left-dep"), "hello from left-dep@1.0.1");

    // Past the time to live with nothing changed upstream, the kept copy is revalidated: the
    // upstream (a kept document with an ETag) answers 304.
    std::thread::sleep(Duration::from_millis(1500));
    let abbreviated = proxy
        .http()
        .get(format!("{}/npmjs/left-dep", proxy.url))
        .header("accept", "application/vnd.npm.install-v1+json")
        .send()
        .unwrap();
    assert_eq!(abbreviated.status().as_u16(), 200);
    assert!(upstream_event(&proxy, "revalidated") >= 1.0, "the unchanged packument was revalidated, not fetched again");

    publisher.ok(&up.work, &["unpublish", "left-dep@1.0.1"]);
    let versions = |server: &Server, path: &str| -> Vec<String> {
        let (status, body) = server.get(path);
        assert_eq!(status, 200, "{body}");
        let doc: Value = serde_json::from_str(&body).unwrap();
        doc["versions"].as_object().unwrap().keys().cloned().collect()
    };
    assert_eq!(versions(&up, "/npm/left-dep"), ["1.0.0"]);
    // Past the proxy's time to live, its packument follows the upstream's.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(versions(&proxy, "/npmjs/left-dep"), ["1.0.0"]);

    // The lockfile still names 1.0.1, whose tarball the proxy stored: a fresh `npm ci` works.
    let npm = client(&proxy, "ci");
    let ci = proxy.work.join("ci-app");
    std::fs::create_dir_all(&ci).unwrap();
    for f in ["package.json", "package-lock.json"] {
        std::fs::copy(dir.join(f), ci.join(f)).unwrap();
    }
    npm.ok(&ci, &["ci"]);
    assert_eq!(require(&ci, "left-dep"), "hello from left-dep@1.0.1");
}

#[test]
fn a_private_upstream_is_read_with_the_repositorys_token() {
    let up = Server::start_with_config("[[repository]]\nname = \"npm\"\nformat = \"npm\"\nread = \"token\"\n");
    let token = up.token("publisher", "publish", None);
    let publisher = Npm::new(&up, "publisher", Some(&token));
    publisher.ok(&make_package(&up.work, "@acme/private-dep", "1.0.0"), &["publish"]);
    let reader = up.token("proxy-reader", "read", Some("npm"));

    let with = Server::start_with_config(&proxy_config(&up, &format!("upstream_token = \"{reader}\"")));
    let npm = client(&with, "with-token");
    let dir = app(&with.work, "with-app", &[("@acme/private-dep", "1.0.0")]);
    npm.ok(&dir, &["install"]);
    assert!(dir.join("node_modules/@acme/private-dep/index.js").exists());

    // Without the token the upstream refuses, and npm is told the upstream is unavailable (not
    // that the package does not exist, and nothing about the upstream's address).
    let without = Server::start_with_config(&proxy_config(&up, ""));
    let (status, body) = without.get("/npmjs/@acme%2fprivate-dep");
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("the upstream answered 401"), "{body}");
    assert!(!body.contains("127.0.0.1"), "{body}");
}

#[test]
fn a_slow_upstream_is_waited_for_within_its_timeout_and_a_stalled_one_is_served_stale() {
    let slow = hostile::Slow::start();
    // The plugin may compute for 300 ms; the upstream may take 3 s.
    let config = format!(
        "plugin_timeout_ms = 300\n[[repository]]\nname = \"npmjs\"\nformat = \"npm\"\nupstream = \"{}/npm\"\nallow_local_upstream = true\nmetadata_ttl = \"1s\"\nupstream_timeout = \"3s\"\n",
        slow.upstream.origin
    );
    let proxy = Server::start_with_config(&config);
    // Each answer takes a second: longer than the plugin's own limit, which waiting for the
    // upstream does not use up.
    slow.delay_ms.store(1000, std::sync::atomic::Ordering::SeqCst);
    let (status, body) = proxy.get("/npmjs/slow");
    assert_eq!(status, 200, "{body}");
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["versions"]["1.0.0"]["dist"]["tarball"], format!("{}/npmjs/slow/-/slow-1.0.0.tgz", proxy.url));
    let (status, _) = proxy.get("/npmjs/slow/-/slow-1.0.0.tgz");
    assert_eq!(status, 200, "the tarball is fetched, verified and served");

    // Now the upstream stalls past its timeout: the kept packument answers, stale.
    slow.delay_ms.store(20_000, std::sync::atomic::Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(1200));
    let (status, body) = proxy.get("/npmjs/slow");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("slow-1.0.0.tgz"));
    assert!(upstream_event(&proxy, "stale_served") >= 1.0);
    assert!(proxy.log().contains("timed out"), "the log says the upstream timed out");
    assert_eq!(metric(&proxy, "sluice_plugin_call_failures_total{plugin=\"npm\",reason=\"timeout\"}"), 0.0);
}

#[test]
fn proxy_settings_are_checked_at_start_with_clear_errors() {
    let repo = "[[repository]]\nname = \"npmjs\"\nformat = \"npm\"\n";
    for (extra, says) in [
        ("upstream = \"http://127.0.0.1:4873\"", "allow_local_upstream"),
        ("offline = true", "`offline` needs `upstream"),
        ("upstream = \"https://registry.example\"\nmetadata_ttl = \"soon\"", "\"5m\""),
        ("upstream = \"https://registry.example\"\nupstream_username = \"me\"", "go together"),
    ] {
        let printed = support::refused_start(&format!("{repo}{extra}\n"));
        assert!(printed.contains(says), "{extra}: {printed}");
    }
    // A plugin built against a contract without the `upstream` import cannot proxy.
    let wasm = env!("SLUICE_FAULT_PLUGIN_WASM");
    let printed = support::refused_start(&format!(
        "[[plugin]]\npath = {wasm:?}\n[[repository]]\nname = \"f\"\nformat = \"fault\"\nupstream = \"https://registry.example\"\n"
    ));
    assert!(printed.contains("contract 0.1.0, which cannot proxy"), "{printed}");
}

/// The hand-written upstreams, for what no real `sluice serve` can be made to do: lie about a
/// tarball's integrity, or answer slowly and then stall.
mod hostile {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use axum::routing::get;
    use base64::Engine;
    use sha2::{Digest, Sha512};

    use super::support::fake_upstream::FakeUpstream;
    use super::support::npm_fixture::simple_package;

    /// A registry whose packument promises one tarball (its `integrity`) and which sends another.
    pub fn liar() -> FakeUpstream {
        let promised = simple_package("liar", "1.0.0", "what the packument promises", "module.exports = 1;\n");
        let sent = simple_package("liar", "1.0.0", "what is sent instead", "module.exports = 'evil';\n");
        let integrity =
            format!("sha512-{}", base64::engine::general_purpose::STANDARD.encode(Sha512::digest(&promised)));
        FakeUpstream::serve(|url| {
            let packument = serde_json::json!({
                "name": "liar",
                "dist-tags": {"latest": "1.0.0"},
                "versions": {"1.0.0": {
                    "name": "liar", "version": "1.0.0",
                    "dist": {"tarball": format!("{url}/npm/liar/-/liar-1.0.0.tgz"), "integrity": integrity},
                }},
            })
            .to_string();
            axum::Router::new()
                .route("/npm/liar", get(move || async move { ([("content-type", "application/json")], packument) }))
                .route("/npm/liar/-/liar-1.0.0.tgz", get(move || async move { sent }))
        })
    }

    /// A registry with one honest package whose every answer waits `delay_ms` first.
    pub struct Slow {
        pub upstream: FakeUpstream,
        pub delay_ms: Arc<AtomicU64>,
    }

    impl Slow {
        pub fn start() -> Slow {
            let tarball = simple_package("slow", "1.0.0", "a package from a slow registry", "module.exports = 1;\n");
            let integrity =
                format!("sha512-{}", base64::engine::general_purpose::STANDARD.encode(Sha512::digest(&tarball)));
            let delay_ms = Arc::new(AtomicU64::new(0));
            let (d1, d2) = (delay_ms.clone(), delay_ms.clone());
            let upstream = FakeUpstream::serve(|url| {
                let packument = serde_json::json!({
                    "name": "slow",
                    "dist-tags": {"latest": "1.0.0"},
                    "versions": {"1.0.0": {
                        "name": "slow", "version": "1.0.0",
                        "dist": {"tarball": format!("{url}/npm/slow/-/slow-1.0.0.tgz"), "integrity": integrity},
                    }},
                })
                .to_string();
                axum::Router::new()
                    .route(
                        "/npm/slow",
                        get(move || async move {
                            tokio::time::sleep(Duration::from_millis(d1.load(Ordering::SeqCst))).await;
                            ([("content-type", "application/json")], packument)
                        }),
                    )
                    .route(
                        "/npm/slow/-/slow-1.0.0.tgz",
                        get(move || async move {
                            tokio::time::sleep(Duration::from_millis(d2.load(Ordering::SeqCst))).await;
                            tarball
                        }),
                    )
            });
            Slow { upstream, delay_ms }
        }
    }
}
