//! Kept protocol documents (issue 13): served from stored bytes with strong validators, and
//! never stale: every change a client makes shows at once, through the real `npm`.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::npm::{make_package, project, Npm};
use support::npm_fixture::{publish_body, simple_package};
use support::Server;

const ABBREVIATED: &str = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*";

/// Publishes `name@version` with a plain `PUT`, as `npm publish` sends it (fast enough for
/// thousands of versions), pointing `tags` at it.
fn put(server: &Server, token: &str, name: &str, version: &str, tags: &[&str]) {
    let tgz = simple_package(name, version, &format!("{name}, a package with many versions"), "module.exports = 1;\n");
    let mut body: Value = serde_json::from_slice(&publish_body(name, version, &tgz)).unwrap();
    body["dist-tags"] = tags.iter().map(|t| (t.to_string(), json!(version))).collect::<serde_json::Map<_, _>>().into();
    let r = server
        .http()
        .put(format!("{}/npm/{}", server.url, name.replace('/', "%2f")))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body).unwrap())
        .send()
        .unwrap();
    assert!(r.status().is_success(), "publish {name}@{version}: {} {}", r.status(), r.text().unwrap_or_default());
}

/// GET with optional `Accept` and `If-None-Match`: (status, etag, cache-control, body).
fn get(server: &Server, path: &str, accept: Option<&str>, etag: Option<&str>) -> (u16, String, String, String) {
    let mut req = server.http().get(format!("{}{path}", server.url));
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    if let Some(e) = etag {
        req = req.header("if-none-match", e);
    }
    let r = req.send().unwrap();
    let header = |n: &str| r.headers().get(n).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let (status, etag, cache) = (r.status().as_u16(), header("etag"), header("cache-control"));
    (status, etag, cache, r.text().unwrap())
}

#[test]
fn packuments_revalidate_with_304_and_show_every_change_at_once() {
    let server = Server::start();
    let token = server.token("publisher", "read,publish", None);
    let npm = Npm::new(&server, "publisher", Some(&token));
    let work = server.work.clone();
    for v in ["1.0.0", "1.1.0"] {
        npm.ok(&make_package(&work, "kept-pkg", v), &["publish"]);
    }

    // A strong validator on the full and the abbreviated document, which differ (the cache keys
    // them by `Accept`), and 304 for a client that has the current bytes.
    let (status, full_etag, cache, full) = get(&server, "/npm/kept-pkg", None, None);
    assert_eq!(status, 200);
    assert!(full_etag.starts_with('"') && full_etag.len() > 10, "strong ETag: {full_etag:?}");
    assert_eq!(cache, "no-cache", "Cache-Control as before: clients revalidate");
    let (_, abbr_etag, _, abbr) = get(&server, "/npm/kept-pkg", Some(ABBREVIATED), None);
    assert_ne!(abbr_etag, full_etag);
    assert!(full.contains("\"time\"") && !abbr.contains("\"time\""), "abbreviated has no `time`: {abbr}");
    let (status, again, _, body) = get(&server, "/npm/kept-pkg", None, Some(&full_etag));
    assert_eq!((status, again.as_str(), body.as_str()), (304, full_etag.as_str(), ""));
    assert_eq!(get(&server, "/npm/kept-pkg", Some(ABBREVIATED), Some(&abbr_etag)).0, 304);
    assert_eq!(get(&server, "/npm/kept-pkg", None, Some("\"something-else\"")).0, 200);

    // Clients that take gzip (npm does) get the same bytes compressed, with the weak form of the
    // validator, which revalidates as well.
    let r = server.http().get(format!("{}/npm/kept-pkg", server.url)).header("accept-encoding", "gzip").send().unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert_eq!(r.headers()["etag"].to_str().unwrap(), format!("W/{full_etag}"));
    let mut unzipped = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&r.bytes().unwrap()[..]), &mut unzipped).unwrap();
    assert_eq!(unzipped, full);
    assert_eq!(get(&server, "/npm/kept-pkg", None, Some(&format!("W/{full_etag}"))).0, 304);

    // Every kind of change shows at once in `npm view`, and the old validator stops matching.
    npm.ok(&make_package(&work, "kept-pkg", "1.2.0"), &["publish"]);
    assert_eq!(npm.view(&work, &["kept-pkg", "versions"]), json!(["1.0.0", "1.1.0", "1.2.0"]));
    assert_eq!(get(&server, "/npm/kept-pkg", None, Some(&full_etag)).0, 200, "a publish changes the ETag");

    npm.ok(&work, &["deprecate", "kept-pkg@1.0.0", "too old"]);
    assert_eq!(npm.view(&work, &["kept-pkg@1.0.0", "deprecated"]), json!("too old"));

    npm.ok(&work, &["dist-tag", "add", "kept-pkg@1.1.0", "stable"]);
    assert_eq!(npm.view(&work, &["kept-pkg", "dist-tags"]), json!({"latest": "1.2.0", "stable": "1.1.0"}));
    npm.ok(&work, &["dist-tag", "add", "kept-pkg@1.0.0", "stable"]);
    assert_eq!(npm.view(&work, &["kept-pkg", "dist-tags"]), json!({"latest": "1.2.0", "stable": "1.0.0"}));

    npm.ok(&work, &["unpublish", "kept-pkg@1.2.0", "--force"]);
    let versions = npm.view(&work, &["kept-pkg", "versions"]);
    assert_eq!(versions, json!(["1.0.0", "1.1.0"]), "unpublished at once");
    // The abbreviated document (what `npm install` reads) follows too.
    let (_, _, _, abbr) = get(&server, "/npm/kept-pkg", Some(ABBREVIATED), None);
    let abbr: Value = serde_json::from_str(&abbr).unwrap();
    assert!(abbr["versions"].get("1.2.0").is_none() && abbr["versions"].get("1.1.0").is_some(), "{abbr}");

    npm.ok(&work, &["unpublish", "kept-pkg", "--force"]);
    assert_eq!(get(&server, "/npm/kept-pkg", None, None).0, 404, "a deleted package is not served from memory");
}

#[test]
fn a_gated_version_appears_in_the_kept_document_when_its_pipeline_releases_it() {
    let server = Server::gated("npm", "npm", "test:\n  script: [\"true\"]\n", "");
    let token = server.token("publisher", "read,publish", None);
    let runner = server.token("runner", "runner", None);
    let npm = Npm::new(&server, "publisher", Some(&token));
    let work = server.work.clone();
    npm.ok(&make_package(&work, "gated-pkg", "1.0.0"), &["publish"]);
    server.run_one_job(&runner);
    assert_eq!(npm.view(&work, &["gated-pkg", "versions"]), json!(["1.0.0"]));

    npm.ok(&make_package(&work, "gated-pkg", "2.0.0"), &["publish"]);
    assert_eq!(npm.view(&work, &["gated-pkg", "versions"]), json!(["1.0.0"]), "held until its pipeline passes");
    server.run_one_job(&runner);
    assert_eq!(npm.view(&work, &["gated-pkg", "versions"]), json!(["1.0.0", "2.0.0"]), "released at once");
    assert_eq!(npm.view(&work, &["gated-pkg", "dist-tags"]), json!({"latest": "2.0.0"}));
}

#[test]
fn npm_installs_a_package_with_three_thousand_versions_and_its_dist_tags() {
    let server = Server::start();
    let token = server.token("publisher", "read,publish", None);
    for i in 0..3000 {
        let version = format!("{}.{}.{}", i / 1000, (i / 10) % 100, i % 10);
        let tags: &[&str] = match i {
            1234 => &["latest", "lts"],
            2999 => &["next"],
            _ => &["latest"],
        };
        put(&server, &token, "many-versions", &version, tags);
    }
    let npm = Npm::new(&server, "reader", None);
    let work = server.work.clone();
    let versions = npm.view(&work, &["many-versions", "versions"]);
    assert_eq!(versions.as_array().map(Vec::len), Some(3000));
    assert_eq!(
        npm.view(&work, &["many-versions", "dist-tags"]),
        json!({"latest": "2.99.8", "lts": "1.23.4", "next": "2.99.9"})
    );
    let app = project(&work, "app");
    npm.ok(&app, &["install", "many-versions@lts"]);
    let installed: Value =
        serde_json::from_str(&std::fs::read_to_string(app.join("node_modules/many-versions/package.json")).unwrap())
            .unwrap();
    assert_eq!(installed["version"], "1.23.4");
    npm.ok(&app, &["install", "many-versions@next"]);
    let installed: Value =
        serde_json::from_str(&std::fs::read_to_string(app.join("node_modules/many-versions/package.json")).unwrap())
            .unwrap();
    assert_eq!(installed["version"], "2.99.9");
    // A range: npm takes `latest` when it satisfies the range, else the highest that does.
    npm.ok(&app, &["install", "many-versions@~0.5.0"]);
    let installed: Value =
        serde_json::from_str(&std::fs::read_to_string(app.join("node_modules/many-versions/package.json")).unwrap())
            .unwrap();
    assert_eq!(installed["version"], "0.5.9");
}

#[test]
fn after_a_crash_between_a_publish_and_its_render_the_documents_are_right() {
    let mut server = Server::start();
    let token = server.token("publisher", "read,publish", None);
    put(&server, &token, "crashy", "1.0.0", &["latest"]);
    let (_, etag, _, _) = get(&server, "/npm/crashy", None, None);
    // The publish commits, and the server dies before anything renders the document again.
    put(&server, &token, "crashy", "1.1.0", &["latest"]);
    server.restart();
    let (status, after, _, body) = get(&server, "/npm/crashy", None, Some(&etag));
    assert_eq!(status, 200, "the kept bytes from before the crash are not current");
    assert_ne!(after, etag);
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["dist-tags"]["latest"], "1.1.0");
    assert!(doc["versions"].get("1.1.0").is_some());
}

#[test]
fn a_render_that_fails_keeps_the_previous_document_serving() {
    // Renders after a change get 1 ms: rendering a package of 700 versions whole takes far
    // longer, so that render fails, while first renders (the protocol call's own 1 s) succeed.
    // (A change or a few are rendered in parts, which is quick; 300 changes since the last read,
    // more than parts are used for, make the next read render it whole.)
    let mut server = Server::start_with_config("render_timeout_ms = 1\n");
    let token = server.token("publisher", "read,publish", None);
    for i in 0..400 {
        put(&server, &token, "slow-render", &format!("1.0.{i}"), &["latest"]);
    }
    let (status, etag, _, before) = get(&server, "/npm/slow-render", None, None);
    assert_eq!(status, 200);
    for i in 0..300 {
        put(&server, &token, "slow-render", &format!("1.1.{i}"), &[]);
    }
    put(&server, &token, "slow-render", "2.0.0", &["latest"]);
    let (status, still, _, body) = get(&server, "/npm/slow-render", None, None);
    assert_eq!(status, 200, "a failed render is never an error for readers");
    assert_eq!((still.as_str(), body.len()), (etag.as_str(), before.len()), "the previous document keeps serving");
    assert!(
        server.wait_for(Duration::from_secs(5), || server.log().contains("rendering a kept document again failed")),
        "the failed render is logged"
    );
    let metrics = server.get("/metrics").1;
    assert!(
        metrics.lines().any(|l| l.starts_with("sluice_documents_total{event=\"stale_served\"}") && !l.ends_with(" 0")),
        "and counted: {metrics}"
    );
    // Once renders may take their time again, the next read renders the current document.
    std::fs::write(server.config_dir().join("sluice.toml"), "render_timeout_ms = 10000\n").unwrap();
    server.restart();
    let doc: Value = serde_json::from_str(&get(&server, "/npm/slow-render", None, None).3).unwrap();
    assert_eq!(doc["dist-tags"]["latest"], "2.0.0");
}

/// The counter of one `sluice_documents_total` event.
fn documents_counter(server: &Server, event: &str) -> u64 {
    let metrics = server.get("/metrics").1;
    let prefix = format!("sluice_documents_total{{event=\"{event}\"}} ");
    metrics.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

#[test]
fn a_packument_rendered_again_in_parts_after_each_change_is_what_a_whole_render_gives() {
    let mut server = Server::start();
    let token = server.token("publisher", "read,publish", None);
    let npm = Npm::new(&server, "publisher", Some(&token));
    let work = server.work.clone();
    for i in 0..40 {
        put(&server, &token, "@acme/parts", &format!("1.0.{i}"), &["latest"]);
    }
    let read = |server: &Server| {
        let full = get(server, "/npm/@acme%2fparts", None, None).3;
        let abbreviated = get(server, "/npm/@acme%2fparts", Some(ABBREVIATED), None).3;
        (full, abbreviated)
    };
    read(&server);
    let before = documents_counter(&server, "part_render");

    // Each change a user makes, read at once (from the kept bytes with the changed parts
    // spliced in) and checked as `npm view` shows it.
    put(&server, &token, "@acme/parts", "2.0.0", &["latest"]);
    read(&server);
    npm.ok(&work, &["deprecate", "@acme/parts@1.0.3", "broken build"]);
    read(&server);
    npm.ok(&work, &["dist-tag", "add", "@acme/parts@1.0.7", "stable"]);
    read(&server);
    npm.ok(&work, &["unpublish", "@acme/parts@1.0.5", "--force"]);
    let (full, abbreviated) = read(&server);
    assert_eq!(npm.view(&work, &["@acme/parts@1.0.3", "deprecated"]), json!("broken build"));
    assert_eq!(npm.view(&work, &["@acme/parts", "dist-tags"]), json!({"latest": "2.0.0", "stable": "1.0.7"}));
    let versions = npm.view(&work, &["@acme/parts", "versions"]);
    assert_eq!(versions.as_array().unwrap().len(), 40, "40 published, one more, one unpublished: {versions}");
    assert!(!versions.as_array().unwrap().contains(&json!("1.0.5")));
    let parts = documents_counter(&server, "part_render") - before;
    assert!(parts >= 8, "the changes were rendered in parts, not whole: {parts} part renders");

    // A restart forgets every kept document: these renders are whole, from the store (on a new
    // port, which the tarball URLs carry).
    let old_url = server.url.clone();
    server.restart();
    let (full_again, abbreviated_again) = read(&server);
    let (full, abbreviated) = (full.replace(&old_url, &server.url), abbreviated.replace(&old_url, &server.url));
    assert_eq!(documents_counter(&server, "part_render"), 0);
    assert_eq!(full, full_again, "the full packument spliced from parts is the whole render's bytes");
    assert_eq!(abbreviated, abbreviated_again, "and so is the abbreviated one");
}
