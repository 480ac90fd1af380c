//! The gate's pages, tokens in the web UI, and search across repositories, end to end: Debian's
//! headless Chromium (playwright-core, tests/ui/gate-test.mjs) against a real server, with real
//! `npm` pushes and a real `sluice runner`; the API's side checked with plain HTTP and npm.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use support::npm::Npm;
use support::{require_tool, Server};

const FAILING_JOB: &str = "lint";
const FAILURE_LINE: &str = "lint found 3 problems in index.js";
/// What the admin types into the release form's reason field.
const RELEASE_REASON: &str = "needed for the 1.0 demo, checked by hand";

/// One job that fails for `broken-thing` only, with a recognisable last line in its log.
fn pipeline_file() -> String {
    format!(
        "stages: [test]\n{FAILING_JOB}:\n  stage: test\n  script:\n    - echo checking $SLUICE_PACKAGE_NAME\n    \
         - if [ \"$SLUICE_PACKAGE_NAME\" = broken-thing ]; then echo '{FAILURE_LINE}'; exit 1; fi\n    - echo clean\n"
    )
}

fn ui_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/ui")
}

/// Fails (never skips) when the browser or playwright-core is missing.
fn require_browser() {
    require_tool("node");
    assert!(Path::new("/usr/bin/chromium").exists(), "/usr/bin/chromium is missing; run .ci/install/ui.sh");
    assert!(
        ui_dir().join("node_modules/playwright-core/package.json").exists(),
        "playwright-core is not installed in tests/ui; run .ci/install/ui.sh"
    );
}

fn package_dir(root: &Path, name: &str, version: &str) -> PathBuf {
    let dir = root.join(format!("src-{name}-{version}"));
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = json!({ "name": name, "version": version, "description": format!("{name} for the gate pages"), "license": "MIT" });
    std::fs::write(dir.join("package.json"), serde_json::to_string_pretty(&manifest).unwrap()).unwrap();
    std::fs::write(dir.join("index.js"), "module.exports = 1;\n").unwrap();
    dir
}

/// An npm client for repository `repo` of the server.
fn npm_for(server: &Server, repo: &str, token: &str) -> Npm {
    let npm = Npm::new(server, &format!("{repo}-{}", &token[token.len() - 6..]), Some(token));
    let registry = format!("{}/", server.repo_url(repo));
    let key = registry.trim_start_matches("http:");
    std::fs::write(npm.dir.join(".npmrc"), format!("registry={registry}\n{key}:_authToken={token}\n")).unwrap();
    Npm { dir: npm.dir, registry }
}

/// Runs one scenario of tests/ui/gate-test.mjs and fails the test if any browser check failed.
fn browser(server: &Server, scenario: &str, env: &[(&str, &str)]) {
    let mut node = Command::new("node");
    node.current_dir(ui_dir()).arg("gate-test.mjs").env("SLUICE_URL", &server.url).env("UI_SCENARIO", scenario);
    for (k, v) in env {
        node.env(k, v);
    }
    let mut child =
        node.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("run node tests/ui/gate-test.mjs");
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        println!("[browser] {}", line.unwrap());
    }
    assert!(child.wait().unwrap().success(), "the browser checks of `{scenario}` failed (see [browser] lines above)");
}

fn held(server: &Server, repo: &str, token: &str) -> Vec<Value> {
    server.api_json(&format!("/api/v1/repositories/{repo}/held"), token)["held"]
        .as_array()
        .expect("a held list")
        .clone()
}

fn held_item<'a>(list: &'a [Value], package: &str) -> &'a Value {
    list.iter().find(|h| h["package"] == package).unwrap_or_else(|| panic!("{package} is held: {list:?}"))
}

#[test]
fn held_versions_are_listed_explained_retried_canceled_and_released() {
    require_browser();
    let server = Server::start_with_files(
        "[[repository]]\nname = \"npm\"\nformat = \"npm\"\ngate = \"pipeline\"\npipeline = \"ci.yml\"\n",
        &[("ci.yml", &pipeline_file())],
    );
    let admin = server.token("ui-admin", "admin", None);
    let publisher = server.token("ui-publisher", "publish", None);
    let runner = server.token("ui-runner", "runner", None);
    let npm = npm_for(&server, "npm", &publisher);
    npm.ok(&package_dir(&server.work, "broken-thing", "0.1.0"), &["publish"]);
    // The runner takes the one job there is: broken-thing's lint, which fails.
    server.run_one_job(&runner);
    npm.ok(&package_dir(&server.work, "good-thing", "1.0.0"), &["publish"]);
    npm.ok(&package_dir(&server.work, "other-thing", "2.0.0"), &["publish"]);

    // The API lists what the gate holds, with pipeline, pusher and time; it needs a token.
    let (status, _) = server.get("/api/v1/repositories/npm/held");
    assert_eq!(status, 401);
    let list = held(&server, "npm", &publisher);
    assert_eq!(list.len(), 3, "{list:?}");
    let broken = held_item(&list, "broken-thing");
    assert_eq!(broken["version"], "0.1.0");
    assert_eq!(broken["pipeline"]["status"], "failed");
    assert_eq!(broken["pushed_by"], "ui-publisher");
    assert!(broken["pushed_at"].as_i64().unwrap() > 0);
    assert_eq!(broken["why"], "failed");
    assert_eq!(broken["jobs"][0]["name"], FAILING_JOB, "the failed job is named");
    assert_eq!(held_item(&list, "good-thing")["pipeline"]["status"], "pending");
    let good_pipeline = held_item(&list, "good-thing")["pipeline"]["id"].as_i64().unwrap();
    let other_pipeline = held_item(&list, "other-thing")["pipeline"]["id"].as_i64().unwrap();
    let (seen, _, _) = npm.run(&server.work, &["view", "good-thing", "version"]);
    assert!(!seen, "clients do not see a held version");

    browser(
        &server,
        "held",
        &[
            ("ADMIN_TOKEN", &admin),
            ("PUBLISH_TOKEN", &publisher),
            ("UI_FAILING_JOB", FAILING_JOB),
            ("UI_FAILURE_LINE", FAILURE_LINE),
            ("UI_RELEASE_REASON", RELEASE_REASON),
        ],
    );

    // The release the admin clicked: clients now get the version, and the pipeline says who and why.
    let view = npm.view(&server.work, &["good-thing"]);
    assert_eq!(view["version"], "1.0.0", "npm sees the released version: {view}");
    let good = server.api_json(&format!("/api/v1/pipelines/{good_pipeline}"), &admin);
    assert_eq!(good["release"]["released_by"], "ui-admin", "{good}");
    assert_eq!(good["release"]["reason"], RELEASE_REASON, "the form's reason is stored: {good}");
    let list = held(&server, "npm", &admin);
    assert!(list.iter().all(|h| h["package"] != "good-thing"), "released versions are no longer held");
    assert_eq!(held_item(&list, "other-thing")["pipeline"]["status"], "canceled");
    assert_eq!(
        held_item(&list, "broken-thing")["pipeline"]["status"],
        "canceled",
        "retried, then canceled on its page"
    );

    // The API's release: admins only; a second release of the same push is a conflict.
    let http = server.http();
    let release = |id: i64, token: &str| {
        http.post(format!("{}/api/v1/pipelines/{id}/release", server.url)).bearer_auth(token).send().unwrap()
    };
    assert_eq!(release(other_pipeline, &publisher).status().as_u16(), 403);
    // Without a token the pipeline is hidden, as every pipeline route of the API hides it.
    assert_eq!(
        http.post(format!("{}/api/v1/pipelines/{other_pipeline}/release", server.url))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    assert_eq!(release(999_999, &admin).status().as_u16(), 404);
    let r = release(other_pipeline, &admin);
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().unwrap();
    assert_eq!(body["pipeline"]["released_by"], "ui-admin");
    // Released once is released: a second release says who did it (the UI's click, too).
    let again: Value = release(other_pipeline, &admin).json().unwrap();
    assert!(again["error"].as_str().unwrap().contains("already released by ui-admin"), "{again}");
    let r = release(good_pipeline, &admin);
    assert_eq!(r.status().as_u16(), 409);
    let body: Value = r.json().unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("already released by ui-admin"),
        "the UI's release is recorded: {body}"
    );
    assert_eq!(npm.view(&server.work, &["other-thing"])["version"], "2.0.0");
    assert_eq!(held(&server, "npm", &admin).len(), 1);
}

#[test]
fn admins_manage_tokens_in_the_ui_and_everyone_sees_their_own() {
    require_browser();
    let server = Server::start_with_config(
        "[[repository]]\nname = \"npm\"\nformat = \"npm\"\n\n[[repository]]\nname = \"secret\"\nformat = \"npm\"\nread = \"token\"\n",
    );
    let admin = server.token("ui-admin", "admin", None);
    let reader = server.token_with("ui-reader", "read", Some("secret"), &["--expires", "90d"]);
    browser(&server, "tokens", &[("ADMIN_TOKEN", &admin), ("READ_TOKEN", &reader)]);

    // What the browser created and revoked, as the API sees it.
    let tokens = server.api_json("/api/v1/tokens", &admin)["tokens"].as_array().unwrap().clone();
    let bot = tokens.iter().find(|t| t["name"] == "deploy-bot").expect("the token made in the UI");
    assert_eq!(bot["scopes"], "publish");
    assert_eq!(bot["repository"], "npm");
    assert_eq!(bot["revoked"], true);
    assert!(bot["expires_at"].as_i64().is_some());
}

#[test]
fn the_top_bar_searches_every_readable_repository_page_by_page() {
    require_browser();
    let server = Server::start_with_config(
        "[[repository]]\nname = \"npm\"\nformat = \"npm\"\n\n[[repository]]\nname = \"tools\"\nformat = \"npm\"\n\n\
         [[repository]]\nname = \"secret\"\nformat = \"npm\"\nread = \"token\"\n",
    );
    let admin = server.token("ui-admin", "admin", None);
    let reader = server.token("ui-reader", "read", Some("secret"));
    npm_for(&server, "npm", &admin).ok(&package_dir(&server.work, "npm-thing", "1.0.0"), &["publish"]);
    npm_for(&server, "secret", &admin).ok(&package_dir(&server.work, "hidden-thing", "0.1.0"), &["publish"]);
    // Enough packages for more than one page of results, through the store's own publish.
    let db = server.store();
    for i in 0..60u64 {
        let name = format!("many-thing-{i:02}");
        support::seed::release(&db, "tools", &name, "1.0.0", "seeded", i, &[]);
    }
    browser(&server, "search", &[("READ_TOKEN", &reader)]);
}
