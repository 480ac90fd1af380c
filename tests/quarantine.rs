//! Quarantine (issue 15, item 3): a gated npm proxy (`gate = "pipeline"`) runs its pipeline on
//! every file it fetches from the upstream, and offers a public version only once that passed.
//! The upstream is a second `sluice serve` on loopback, published to with real `npm publish`; a
//! real `sluice runner` process runs the jobs (it unpacks the fetched tarball with tar, as for a
//! push); real `npm install` goes through the proxy with fresh caches.

mod support;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use support::npm::{app, make_package, require, Npm};
use support::Server;

/// The proxy's pipeline: a scan that refuses every package whose manifest names what `BLOCK`
/// says (`evil`). It reads the unpacked tarball, so it also shows the runner had the fetched file.
const SCAN: &str = "stages: [scan]\nvariables:\n  BLOCK: evil\n\
scan:\n  stage: scan\n  script:\n    - test -f pkg/package.json\n    - if grep -q \"$BLOCK\" pkg/package.json; then echo refused by the scan; exit 1; fi\n    - echo scan-ok\n";
/// The scan after review: only the file's variable changes, so that a retry which ran the first
/// run's variables would fail again. `evil-lib` is allowed now, `evil-tool` still is not.
const SCAN_FIXED: &str = "stages: [scan]\nvariables:\n  BLOCK: evil-tool\n\
scan:\n  stage: scan\n  script:\n    - test -f pkg/package.json\n    - if grep -q \"$BLOCK\" pkg/package.json; then echo refused by the scan; exit 1; fi\n    - echo scan-ok\n";

/// A `sluice runner` that keeps taking jobs until the test ends.
struct Runner(Child);

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An npm client of the proxy's `npmjs` repository with its own fresh cache.
fn client(proxy: &Server, name: &str) -> Npm {
    Npm { registry: format!("{}/", proxy.repo_url("npmjs")), ..Npm::new(proxy, name, None) }
}

/// The proxy's packument of `name`, as npm reads it.
fn packument(proxy: &Server, name: &str) -> Value {
    let r = proxy.http().get(format!("{}/{name}", proxy.repo_url("npmjs"))).send().unwrap();
    assert_eq!(r.status(), 200);
    r.json().unwrap()
}

fn versions(doc: &Value) -> Vec<String> {
    doc["versions"].as_object().map(|v| v.keys().cloned().collect()).unwrap_or_default()
}

/// The pipeline of the proxy's push of `package`, through the API.
fn pipeline_of(proxy: &Server, admin: &str, package: &str) -> Value {
    let pkg = proxy.api_json(&format!("/api/v1/repositories/npmjs/packages/{package}"), admin);
    let id = pkg["files"][0]["pipeline"]["id"].as_i64().unwrap_or_else(|| panic!("{package} has a pipeline: {pkg}"));
    proxy.api_json(&format!("/api/v1/pipelines/{id}"), admin)
}

fn post(proxy: &Server, path: &str, token: &str, body: Option<Value>) -> (u16, String) {
    let mut r = proxy.http().post(format!("{}{path}", proxy.url)).bearer_auth(token);
    if let Some(body) = body {
        r = r.json(&body);
    }
    let r = r.send().unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

fn install_fails(npm: &Npm, dir: &Path, package: &str) -> String {
    let (ok, out, err) = npm.run(dir, &["install", "--fetch-retries=0"]);
    assert!(!ok, "npm must not install {package} while it is in quarantine:\n{out}\n{err}");
    assert!(!dir.join("node_modules").join(package).exists());
    err
}

#[test]
fn a_failing_pipeline_keeps_a_public_version_from_clients_until_retried_or_released() {
    support::require_tool("node");
    support::require_tool("tar");

    // The upstream, with three public packages.
    let up = Server::start();
    let token = up.token("publisher", "publish", None);
    let publisher = Npm::new(&up, "publisher", Some(&token));
    for (name, version) in [("good-lib", "1.0.0"), ("evil-lib", "1.0.0"), ("evil-tool", "2.0.0")] {
        publisher.ok(&make_package(&up.work, name, version), &["publish"]);
    }

    let config = format!(
        "[[repository]]\nname = \"npmjs\"\nformat = \"npm\"\nupstream = \"{}\"\n# The upstream runs on loopback.\n\
         allow_local_upstream = true\ngate = \"pipeline\"\npipeline = \"ci.yml\"\n\
         [[repository]]\nname = \"local\"\nformat = \"npm\"\n\
         [[repository]]\nname = \"all\"\nformat = \"npm\"\nmembers = [\"local\", \"npmjs\"]\n",
        up.repo_url("npm")
    );
    let proxy = Server::start_with_files(&config, &[("ci.yml", SCAN)]);
    let admin = proxy.token("admin", "admin", None);
    let reader = proxy.token("reader", "read", None);
    let runner_token = proxy.token("runner-1", "runner", None);
    let _runner = Runner(proxy.runner(&runner_token).stdout(Stdio::null()).spawn().expect("start sluice runner"));

    // A package whose scan passes installs on the first try: its tarball request waits for the
    // pipeline the fetch started (quarantine_wait), and gets the file once it passed.
    let npm = client(&proxy, "good");
    let dir = app(&proxy.work, "good-app", &[("good-lib", "^1.0.0")]);
    npm.ok(&dir, &["install"]);
    assert_eq!(require(&dir, "good-lib"), "hello from good-lib@1.0.0");
    let good = pipeline_of(&proxy, &admin, "good-lib");
    assert_eq!(good["pipeline"]["status"], "success", "{good}");
    assert_eq!(good["push"]["actor"], "upstream", "the fetched file is a push by the upstream: {good}");
    let scan_log = proxy.api_json(&format!("/api/v1/jobs/{}", good["jobs"][1]["id"]), &admin);
    assert!(scan_log["log"].as_str().unwrap().contains("scan-ok"), "the runner scanned the tarball: {scan_log}");

    // Before anyone asked for it, the upstream's evil-lib is offered like any public version.
    assert_eq!(versions(&packument(&proxy, "evil-lib")), ["1.0.0"]);

    // Its scan fails: npm's install fails with the registry's reason, and nothing is installed.
    let npm = client(&proxy, "evil");
    let dir = app(&proxy.work, "evil-app", &[("evil-lib", "1.0.0")]);
    let err = install_fails(&npm, &dir, "evil-lib");
    assert!(err.contains("403"), "{err}");
    assert!(err.contains("evil-lib 1.0.0 is held in quarantine"), "npm shows why: {err}");
    let evil = pipeline_of(&proxy, &admin, "evil-lib");
    let evil_id = evil["pipeline"]["id"].as_i64().unwrap();
    assert!(err.contains(&format!("pipeline #{evil_id} failed (job scan)")), "{err}");
    assert!(err.contains(&format!("See {}/ui/pipelines/{evil_id}", proxy.url)), "and where to look: {err}");

    // Now that it is held, the proxied packument no longer offers it, and its file by address
    // is the same clear refusal, never the bytes.
    let doc = packument(&proxy, "evil-lib");
    assert!(versions(&doc).is_empty(), "a quarantined version is not offered: {doc}");
    assert!(doc["dist-tags"].get("latest").is_none(), "{doc}");
    let (status, body) = proxy.get("/npmjs/evil-lib/-/evil-lib-1.0.0.tgz");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("held in quarantine") && !body.contains("hello from"), "{body}");
    // A group over the proxy holds it back the same way.
    let r = proxy.http().get(format!("{}/evil-lib", proxy.repo_url("all"))).send().unwrap();
    let group_doc: Value = r.json().unwrap();
    assert!(versions(&group_doc).is_empty(), "the group does not offer it either: {group_doc}");
    let (status, body) = proxy.get("/all/evil-lib/-/evil-lib-1.0.0.tgz");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("evil-lib 1.0.0 is held in quarantine"), "{body}");

    // The failed pipeline is visible in the API (with the failed job's log) and the web UI.
    assert_eq!(evil["pipeline"]["status"], "failed", "{evil}");
    let scan = evil["jobs"].as_array().unwrap().iter().find(|j| j["name"] == "scan").unwrap().clone();
    assert_eq!(scan["status"], "failed");
    let log = proxy.api_json(&format!("/api/v1/jobs/{}", scan["id"]), &admin);
    assert!(log["log"].as_str().unwrap().contains("refused by the scan"), "{log}");
    let held = proxy.api_json("/api/v1/repositories/npmjs/held", &admin);
    let held_names: Vec<&str> =
        held["held"].as_array().unwrap().iter().map(|h| h["package"].as_str().unwrap()).collect();
    assert_eq!(held_names, ["evil-lib"], "{held}");
    let page = proxy.http().get(format!("{}/ui/npmjs/held", proxy.url)).bearer_auth(&admin).send().unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().unwrap();
    assert!(page.contains("evil-lib") && page.contains("failed"), "the held page shows it");

    // A second failing package, for the release below.
    let npm_tool = client(&proxy, "tool");
    let tool_dir = app(&proxy.work, "tool-app", &[("evil-tool", "2.0.0")]);
    let err = install_fails(&npm_tool, &tool_dir, "evil-tool");
    assert!(err.contains("evil-tool 2.0.0 is held in quarantine"), "{err}");
    let tool_id = pipeline_of(&proxy, &admin, "evil-tool")["pipeline"]["id"].as_i64().unwrap();

    // A reader may look, not retry or release.
    assert_eq!(post(&proxy, &format!("/api/v1/pipelines/{evil_id}/retry"), &reader, None).0, 403);
    assert_eq!(post(&proxy, &format!("/api/v1/pipelines/{tool_id}/release"), &reader, None).0, 403);
    assert_eq!(pipeline_of(&proxy, &admin, "evil-lib")["pipeline"]["status"], "failed");
    assert!(versions(&packument(&proxy, "evil-tool")).is_empty());

    // The admin fixes the pipeline file (the configured `ci.yml`, read again at the retry: no
    // restart; its variables too) and retries: the scan runs again, passes, and npm installs it.
    std::fs::write(proxy.config_dir().join("ci.yml"), SCAN_FIXED).unwrap();
    let (status, body) = post(&proxy, &format!("/api/v1/pipelines/{evil_id}/retry"), &admin, None);
    assert_eq!(status, 200, "{body}");
    let finished = proxy.wait_for(Duration::from_secs(60), || {
        matches!(
            pipeline_of(&proxy, &admin, "evil-lib")["pipeline"]["status"].as_str(),
            Some("success" | "failed" | "canceled")
        )
    });
    let retried = pipeline_of(&proxy, &admin, "evil-lib");
    assert!(finished && retried["pipeline"]["status"] == "success", "the retried pipeline passes: {retried}");
    assert_eq!(versions(&packument(&proxy, "evil-lib")), ["1.0.0"], "offered again");
    let npm = client(&proxy, "evil-again");
    let dir = app(&proxy.work, "evil-app-again", &[("evil-lib", "1.0.0")]);
    npm.ok(&dir, &["install"]);
    assert_eq!(require(&dir, "evil-lib"), "hello from evil-lib@1.0.0");

    // evil-tool still fails its scan. Releasing it overrides a failed check, so the admin must
    // say why: without a reason (no body, none, blank) the release is refused and changes nothing.
    let release_path = format!("/api/v1/pipelines/{tool_id}/release");
    for no_reason in [None, Some(json!({})), Some(json!({ "reason": "  " }))] {
        let (status, body) = post(&proxy, &release_path, &admin, no_reason.clone());
        assert_eq!(status, 400, "{no_reason:?}: {body}");
        assert!(body.contains("reason") && body.contains("failed"), "the refusal says what is missing: {body}");
    }
    // A reason is one line of text, of bounded length: a line break would forge the log's lines.
    for bad in ["reviewed\nINFO forged log line".to_string(), "x".repeat(1001)] {
        let (status, body) = post(&proxy, &release_path, &admin, Some(json!({ "reason": bad })));
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("one line") || body.contains("at most 1000"), "{body}");
    }
    assert!(versions(&packument(&proxy, "evil-tool")).is_empty(), "a refused release releases nothing");
    assert!(proxy.api_json(&format!("/api/v1/pipelines/{tool_id}"), &admin)["release"].is_null());

    // An admin releases it anyway, saying why.
    let why = "reviewed by hand: a false positive";
    let (status, body) = post(&proxy, &release_path, &admin, Some(json!({ "reason": format!("  {why}\n") })));
    assert_eq!(status, 200, "{body}");
    let released: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(released["pipeline"]["released_by"], "admin", "{released}");
    assert_eq!(released["pipeline"]["release_reason"], why, "the answer says what was stored: {released}");
    // The audit record: on the pipeline (API) with who, when and why, and the server's log line.
    let tool = proxy.api_json(&format!("/api/v1/pipelines/{tool_id}"), &admin);
    assert_eq!(tool["pipeline"]["status"], "failed", "the pipeline's verdict stays as it was: {tool}");
    assert_eq!(tool["release"]["released_by"], "admin", "{tool}");
    assert!(tool["release"]["released_at"].as_i64().is_some(), "{tool}");
    assert_eq!(tool["release"]["reason"], why, "the reason is stored with the release: {tool}");
    // A second release is a conflict that names the first one, and keeps its reason.
    let (status, body) = post(&proxy, &release_path, &admin, Some(json!({ "reason": "again" })));
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("already released by admin"), "{body}");
    assert_eq!(proxy.api_json(&format!("/api/v1/pipelines/{tool_id}"), &admin)["release"]["reason"], why);
    let log = proxy.log();
    assert!(
        log.lines().any(|l| l.contains("release of a held version")
            && l.contains("admin")
            && l.contains("reviewed by hand: a false positive")),
        "the release is logged with who and why"
    );
    let pushes = proxy.api_json("/api/v1/pushes?repository=npmjs", &admin);
    let tool_push = pushes["pushes"].as_array().unwrap().iter().find(|p| p["package"] == "evil-tool").unwrap().clone();
    assert_eq!(tool_push["actor"], "upstream", "{tool_push}");
    assert!(tool_push["client_addr"].as_str().unwrap().starts_with(&up.repo_url("npm")), "{tool_push}");
    // The audit log shows the override beside the push: who released it past its pipeline, and why.
    assert_eq!(tool_push["release"]["released_by"], "admin", "{tool_push}");
    assert_eq!(tool_push["release"]["reason"], why, "{tool_push}");
    let one = proxy.api_json(&format!("/api/v1/pushes/{}", tool_push["id"]), &admin);
    assert_eq!(one["release"]["reason"], why, "{one}");
    let lib_push = pushes["pushes"].as_array().unwrap().iter().find(|p| p["package"] == "evil-lib").unwrap();
    assert!(lib_push["release"].is_null(), "a push its pipeline released has no override: {lib_push}");
    let activity =
        proxy.http().get(format!("{}/ui/pushes?repository=npmjs", proxy.url)).bearer_auth(&admin).send().unwrap();
    assert_eq!(activity.status(), 200);
    assert!(activity.text().unwrap().contains(why), "the web UI's activity log shows the reason too");
    npm_tool.ok(&tool_dir, &["install"]);
    assert_eq!(require(&tool_dir, "evil-tool"), "hello from evil-tool@2.0.0");
    assert_eq!(proxy.api_json("/api/v1/repositories/npmjs/held", &admin)["total"], 0);
}

#[test]
fn without_a_runner_the_file_request_waits_its_quarantine_wait_then_says_the_pipeline_waits() {
    let up = Server::start();
    let token = up.token("publisher", "publish", None);
    Npm::new(&up, "publisher", Some(&token)).ok(&make_package(&up.work, "slow-lib", "1.0.0"), &["publish"]);
    let config = format!(
        "[[repository]]\nname = \"npmjs\"\nformat = \"npm\"\nupstream = \"{}\"\nallow_local_upstream = true\n\
         gate = \"pipeline\"\npipeline = \"ci.yml\"\nquarantine_wait = \"1s\"\n",
        up.repo_url("npm")
    );
    let mut proxy = Server::start_with_files(&config, &[("ci.yml", SCAN)]);
    // No runner takes the job: the request waits its second, then is told, and gets no bytes.
    for _ in 0..2 {
        let (status, body) = proxy.get("/npmjs/slow-lib/-/slow-lib-1.0.0.tgz");
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("slow-lib 1.0.0 is held in quarantine: pipeline #1 waits for a runner"), "{body}");
    }
    assert!(versions(&packument(&proxy, "slow-lib")).is_empty(), "not offered while it waits");
    assert!(proxy.is_alive());
}
