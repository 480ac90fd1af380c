//! Manual approval (`when: manual`) end to end: real `npm`, a real `sluice runner`, a gated
//! repository. A version whose pipeline waits at a manual job stays hidden from npm until an
//! approver plays the job (API or the pipeline page's button) and it passes.

mod support;

use std::path::Path;

use serde_json::Value;
use support::npm::{make_package, project, Npm};
use support::Server;

/// `check` runs on every push; `release` waits for an approver. A manual job may not fail by
/// default, so the pipeline (and the gate) waits at it.
const WITH_APPROVAL: &str = "stages: [test, release]\n\
check:\n  stage: test\n  script:\n    - test -f pkg/package.json\n\
release:\n  stage: release\n  when: manual\n  script:\n    - echo released-by-approval\n";

/// The same approval, made optional: it holds nothing up.
const OPTIONAL_APPROVAL: &str = "stages: [test, release]\n\
check:\n  stage: test\n  script:\n    - test -f pkg/package.json\n\
release:\n  stage: release\n  when: manual\n  allow_failure: true\n  script:\n    - echo optional\n";

/// The versions `npm view` lists, or `None` when npm finds no package.
fn versions(npm: &Npm, cwd: &Path, name: &str) -> Option<Vec<String>> {
    let (ok, out, err) = npm.run(cwd, &["view", name, "versions", "--json"]);
    if !ok {
        println!("npm view {name} failed: {out}\n{err}");
        return None;
    }
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("npm view printed no JSON ({e}): {out:?}"));
    Some(match v {
        Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_string()).collect(),
        Value::String(s) => vec![s],
        _ => Vec::new(),
    })
}

fn play(server: &Server, job: i64, token: &str) -> (u16, Value) {
    let r = server.http().post(format!("{}/api/v1/jobs/{job}/play", server.url)).bearer_auth(token).send().unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

fn job_named<'a>(pipeline: &'a Value, name: &str) -> &'a Value {
    pipeline["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == name)
        .unwrap_or_else(|| panic!("no job {name}: {pipeline}"))
}

#[test]
fn a_version_waiting_for_approval_stays_hidden_until_played_then_installs() {
    let server = Server::gated("npm", "npm", WITH_APPROVAL, "");
    let admin = server.token("admin", "admin", None);
    let publisher = server.token("publisher", "publish", Some("npm"));
    let approver = server.token("release-manager", "approve", Some("npm"));
    let runner = server.token("runner-1", "runner", None);
    let npm = Npm::new(&server, "publisher", Some(&publisher));
    let consumer = project(&server.work, "consumer");

    npm.ok(&make_package(&server.work, "approved-lib", "1.0.0"), &["publish"]);
    server.run_one_job(&runner);
    let p = server.latest_pipeline("npm", &admin);
    assert_eq!(job_named(&p, "check")["status"], "success", "{p}");
    let release = job_named(&p, "release");
    assert_eq!(release["status"], "manual", "{p}");
    assert_eq!(release["manual"], true);
    assert_eq!(p["pipeline"]["status"], "manual", "the pipeline waits at the manual job: {p}");
    let job = release["id"].as_i64().unwrap();

    // Waiting for approval: npm neither lists nor installs it, and the file is not served.
    assert_eq!(versions(&npm, &server.work, "approved-lib"), None, "a version waiting for approval must not be listed");
    assert!(!npm.run(&consumer, &["install", "approved-lib@1.0.0"]).0, "installing it must fail");
    assert_eq!(server.get("/npm/approved-lib/-/approved-lib-1.0.0.tgz").0, 404);

    // Only approvers play it: a publisher may not; nobody without a token either.
    assert_eq!(play(&server, job, &publisher).0, 403, "a publish token cannot approve");
    let anonymous = server.http().post(format!("{}/api/v1/jobs/{job}/play", server.url)).send().unwrap();
    assert_eq!(anonymous.status().as_u16(), 404, "a caller who may not read the job learns nothing of it");
    assert_eq!(play(&server, 999_999, &approver).0, 404);

    let (status, body) = play(&server, job, &approver);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["job"]["status"], "pending", "{body}");
    assert_eq!(body["job"]["approved_by"], "release-manager", "who approved is recorded: {body}");
    assert!(body["job"]["approved_at"].is_i64(), "{body}");
    let (again, body) = play(&server, job, &approver);
    assert_eq!(again, 409, "a job already played cannot be played again: {body}");
    assert!(body["error"].as_str().unwrap().contains("only a job waiting in `manual`"), "{body}");
    // Still hidden until the approved job passes.
    assert_eq!(versions(&npm, &server.work, "approved-lib"), None);

    server.run_one_job(&runner);
    let p = server.latest_pipeline("npm", &admin);
    assert_eq!(p["pipeline"]["status"], "success", "{p}");
    let log = server.api_json(&format!("/api/v1/jobs/{job}"), &admin)["log"].as_str().unwrap().to_string();
    assert!(log.contains("Played (approved) by `release-manager`") && log.contains("released-by-approval"), "{log}");
    assert_eq!(versions(&npm, &server.work, "approved-lib"), Some(vec!["1.0.0".to_string()]));
    npm.ok(&consumer, &["install", "approved-lib@1.0.0"]);
    assert!(consumer.join("node_modules/approved-lib/index.js").is_file());
}

#[test]
fn the_pipeline_page_has_a_play_button_for_approvers() {
    let server = Server::gated("npm", "npm", WITH_APPROVAL, "");
    let admin = server.token("admin", "admin", None);
    let publisher = server.token("publisher", "publish", Some("npm"));
    let approver = server.token("release-manager", "approve", Some("npm"));
    let reader = server.token("reader", "read", Some("npm"));
    let runner = server.token("runner-1", "runner", None);
    let npm = Npm::new(&server, "publisher", Some(&publisher));

    npm.ok(&make_package(&server.work, "button-lib", "1.0.0"), &["publish"]);
    server.run_one_job(&runner);
    let p = server.latest_pipeline("npm", &admin);
    let id = p["pipeline"]["id"].as_i64().unwrap();
    let job = job_named(&p, "release")["id"].as_i64().unwrap();
    let http = server.http();
    let page = |cookie: Option<&str>| {
        let mut r = http.get(format!("{}/ui/pipelines/{id}", server.url));
        if let Some(c) = cookie {
            r = r.header("cookie", format!("sluice_token={c}"));
        }
        r.send().unwrap().text().unwrap()
    };
    let button = format!("action=\"/ui/jobs/{job}/play\"");
    let html = page(Some(&approver));
    assert!(html.contains(&button), "an approver sees the play button: {html}");
    assert!(html.contains("badge-manual") && html.contains("waits for approval"), "{html}");
    assert!(!page(None).contains(&button), "an anonymous reader sees no play button");
    assert!(!page(Some(&reader)).contains(&button), "a reader sees no play button");

    // The button's form post, as a browser sends it with the cookie; a reader's is refused.
    let post = |cookie: &str| {
        http.post(format!("{}/ui/jobs/{job}/play", server.url))
            .header("cookie", format!("sluice_token={cookie}"))
            .send()
            .unwrap()
    };
    assert_eq!(post(&reader).status().as_u16(), 401, "a reader cannot play");
    assert_eq!(job_named(&server.latest_pipeline("npm", &admin), "release")["status"], "manual");
    let played = post(&approver);
    assert!(played.status().is_success(), "{}", played.status());
    let html = played.text().unwrap();
    assert!(
        html.contains("approved by release-manager"),
        "back on the pipeline page, which names the approver: {html}"
    );
    let release = job_named(&server.latest_pipeline("npm", &admin), "release").clone();
    assert_eq!(
        (release["status"].as_str(), release["approved_by"].as_str()),
        (Some("pending"), Some("release-manager"))
    );
    server.run_one_job(&runner);
    assert_eq!(server.latest_pipeline("npm", &admin)["pipeline"]["status"], "success");
    assert_eq!(versions(&npm, &server.work, "button-lib"), Some(vec!["1.0.0".to_string()]));
}

#[test]
fn an_optional_manual_job_holds_nothing_up() {
    let server = Server::gated("npm", "npm", OPTIONAL_APPROVAL, "");
    let admin = server.token("admin", "admin", None);
    let publisher = server.token("publisher", "publish", Some("npm"));
    let runner = server.token("runner-1", "runner", None);
    let npm = Npm::new(&server, "publisher", Some(&publisher));

    npm.ok(&make_package(&server.work, "optional-lib", "1.0.0"), &["publish"]);
    server.run_one_job(&runner);
    let p = server.latest_pipeline("npm", &admin);
    assert_eq!(p["pipeline"]["status"], "success", "{p}");
    assert_eq!(job_named(&p, "release")["status"], "manual", "the optional job still waits to be played: {p}");
    assert_eq!(versions(&npm, &server.work, "optional-lib"), Some(vec!["1.0.0".to_string()]));
    // An admin may still play it later.
    let job = job_named(&p, "release")["id"].as_i64().unwrap();
    assert_eq!(play(&server, job, &admin).0, 200);
    server.run_one_job(&runner);
    let p = server.latest_pipeline("npm", &admin);
    assert_eq!(
        (p["pipeline"]["status"].as_str(), job_named(&p, "release")["status"].as_str()),
        (Some("success"), Some("success")),
        "{p}"
    );
}

/// The play button in a real browser (Debian's headless Chromium through playwright-core, as in
/// tests/ui.rs; `.ci/install/ui.sh` installs both): tests/ui/play-test.mjs signs in as an
/// approver and presses it.
#[test]
fn a_browser_plays_a_manual_job_from_the_pipeline_page() {
    support::require_tool("node");
    let ui_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/ui");
    assert!(Path::new("/usr/bin/chromium").exists(), "/usr/bin/chromium is missing; run .ci/install/ui.sh");
    assert!(
        ui_dir.join("node_modules/playwright-core/package.json").exists(),
        "playwright-core is missing; run .ci/install/ui.sh"
    );
    let server = Server::gated("npm", "npm", WITH_APPROVAL, "");
    let admin = server.token("admin", "admin", None);
    let publisher = server.token("publisher", "publish", Some("npm"));
    let approver = server.token("release-manager", "approve", Some("npm"));
    let runner = server.token("runner-1", "runner", None);
    let npm = Npm::new(&server, "publisher", Some(&publisher));
    npm.ok(&make_package(&server.work, "browser-lib", "1.0.0"), &["publish"]);
    server.run_one_job(&runner);
    let p = server.latest_pipeline("npm", &admin);
    assert_eq!(p["pipeline"]["status"], "manual", "{p}");

    let (ok, out, err) = support::run(
        std::process::Command::new("node")
            .current_dir(&ui_dir)
            .arg("play-test.mjs")
            .env("SLUICE_URL", &server.url)
            .env("SLUICE_APPROVE_TOKEN", &approver)
            .env("UI_PIPELINE", p["pipeline"]["id"].to_string())
            .env("UI_APPROVER", "release-manager"),
    );
    println!("{out}");
    assert!(ok, "the browser checks failed: {out}\n{err}");
    let release = job_named(&server.latest_pipeline("npm", &admin), "release").clone();
    assert_eq!(
        (release["status"].as_str(), release["approved_by"].as_str()),
        (Some("pending"), Some("release-manager"))
    );
    server.run_one_job(&runner);
    assert_eq!(versions(&npm, &server.work, "browser-lib"), Some(vec!["1.0.0".to_string()]));
}
