//! Package-push pipelines end to end: real `npm`, a real `sluice runner` process, a gated
//! repository, the runner API's token rules, and signed webhooks.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use support::npm::{make_package, project, Npm};
use support::webhook::webhook_receiver;
use support::{run, Server};

const PASSING: &str = "stages: [test]\n\
check-manifest:\n  stage: test\n  script:\n    - test -f pkg/package.json\n    - grep -q gated pkg/package.json\n    - echo manifest-ok\n";
const FAILING: &str = "stages: [test]\nbroken:\n  stage: test\n  script:\n    - echo about to fail\n    - exit 1\n";
const SECRET: &str = "webhook-secret";

fn gated_server(hook_url: &str) -> Server {
    // The receiver listens on loopback, which webhooks may reach only when the operator allows it.
    Server::start_with_files(
        &format!(
            "allow_local_webhooks = true\n[[repository]]\nname = \"npm\"\nformat = \"npm\"\ngate = \"pipeline\"\npipeline = \"ci.yml\"\n\
             [[repository.webhook]]\nurl = {hook_url:?}\nsecret = {SECRET:?}\n"
        ),
        &[("ci.yml", PASSING)],
    )
}

/// A gated npm repository with a webhook receiver, and the tokens and npm client the tests use.
struct Setup {
    server: Server,
    admin: String,
    runner_token: String,
    npm: Npm,
    hooks: mpsc::Receiver<(String, String)>,
}

fn setup() -> Setup {
    let (hook_url, hooks) = webhook_receiver();
    let server = gated_server(&hook_url);
    let admin = server.token("admin", "admin", None);
    let publisher = server.token("publisher", "publish", Some("npm"));
    let runner_token = server.token("runner-1", "runner", None);
    let npm = Npm::new(&server, "publisher", Some(&publisher));
    Setup { server, admin, runner_token, npm, hooks }
}

/// Replaces the repository's pipeline file through the admin API.
fn put_pipeline(server: &Server, admin: &str, yaml: &str) {
    let r = server
        .http()
        .put(format!("{}/api/v1/repositories/npm/pipeline", server.url))
        .bearer_auth(admin)
        .body(yaml.to_string())
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().unwrap());
}

fn latest_pipeline(server: &Server, admin: &str) -> Value {
    server.latest_pipeline("npm", admin)
}

/// The versions `npm view` lists, or `None` when npm finds no package. Run outside the consumer
/// project: inside it, npm narrows `view` to the range the project depends on.
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

fn http_post(server: &Server, path: &str, token: &str, body: &str) -> reqwest::blocking::Response {
    server.http().post(format!("{}{path}", server.url)).bearer_auth(token).body(body.to_string()).send().unwrap()
}

#[test]
fn a_gated_version_appears_only_after_its_pipeline_passes() {
    let Setup { server, admin, runner_token, npm, hooks } = setup();
    let consumer = project(&server.work, "consumer");

    let pkg = make_package(&server.work, "gated-lib", "1.0.0");
    npm.ok(&pkg, &["publish"]);
    // Pending: invisible to clients.
    assert_eq!(versions(&npm, &server.work, "gated-lib"), None, "a pending version must not be listed");
    assert!(!npm.run(&consumer, &["install", "gated-lib@1.0.0"]).0, "installing a pending version must fail");
    assert_eq!(server.get("/npm/gated-lib/-/gated-lib-1.0.0.tgz").0, 404, "nor is its file served by its address");
    let p = latest_pipeline(&server, &admin);
    assert_eq!(p["pipeline"]["status"], "pending");
    assert_eq!(p["jobs"][0]["name"], "metadata");
    assert_eq!(p["jobs"][0]["status"], "success");
    let meta_job = server.api_json(&format!("/api/v1/jobs/{}", p["jobs"][0]["id"]), &admin);
    assert!(meta_job["log"].as_str().unwrap().contains("name: gated-lib"), "{meta_job}");
    assert_eq!(p["jobs"][1]["name"], "check-manifest");
    assert_eq!(p["jobs"][1]["status"], "pending");
    let vars = &p["jobs"][1]["variables"];
    assert_eq!(vars["SLUICE_PACKAGE_NAME"], "gated-lib");
    assert_eq!(vars["SLUICE_PACKAGE_VERSION"], "1.0.0");
    assert_eq!(vars["SLUICE_PACKAGE_FORMAT"], "npm");
    assert_eq!(vars["SLUICE_PIPELINE_ID"], p["pipeline"]["id"].to_string());
    assert_eq!(vars["SLUICE_PUSH_ID"], p["pipeline"]["push_id"].to_string());
    assert_eq!(vars["SLUICE_PACKAGE_SHA256"].as_str().unwrap().len(), 64);

    // A real runner process takes the job, unpacks the tarball with tar, runs the script.
    server.run_one_job(&runner_token);
    let p = latest_pipeline(&server, &admin);
    let job = server.api_json(&format!("/api/v1/jobs/{}", p["jobs"][1]["id"]), &admin);
    assert_eq!(p["pipeline"]["status"], "success", "{p}\n{}", job["log"].as_str().unwrap_or(""));
    let job = server.api_json(&format!("/api/v1/jobs/{}", p["jobs"][1]["id"]), &admin);
    assert!(job["log"].as_str().unwrap().contains("manifest-ok"), "{job}");
    let (status, body) = server.get("/npm/gated-lib");
    assert_eq!(status, 200, "{body}");
    assert_eq!(versions(&npm, &server.work, "gated-lib"), Some(vec!["1.0.0".to_string()]));
    assert_eq!(server.get("/npm/gated-lib/-/gated-lib-1.0.0.tgz").0, 200);
    npm.ok(&consumer, &["install", "gated-lib@1.0.0"]);
    assert!(consumer.join("node_modules/gated-lib/index.js").is_file());

    // A failing job keeps the next version hidden; a retry after fixing the file releases it.
    put_pipeline(&server, &admin, FAILING);
    let pkg = make_package(&server.work, "gated-lib", "1.1.0");
    npm.ok(&pkg, &["publish"]);
    server.run_one_job(&runner_token);
    let p = latest_pipeline(&server, &admin);
    assert_eq!(p["pipeline"]["status"], "failed", "{p}");
    assert_eq!(p["jobs"][1]["exit_code"], 1);
    assert_eq!(versions(&npm, &server.work, "gated-lib"), Some(vec!["1.0.0".to_string()]));
    put_pipeline(&server, &admin, PASSING);
    let id = p["pipeline"]["id"].as_i64().unwrap();
    // The package's API view shows each version's pipeline status.
    let view = server.api_json("/api/v1/repositories/npm/packages/gated-lib", &admin);
    let status_of = |version: &str| {
        view["files"].as_array().unwrap().iter().find(|f| f["version"] == version).unwrap()["pipeline"]["status"]
            .clone()
    };
    assert_eq!((status_of("1.0.0"), status_of("1.1.0")), (Value::from("success"), Value::from("failed")), "{view}");
    // Retrying is for admins.
    let reader = server.token("reader", "read,publish", Some("npm"));
    assert_eq!(http_post(&server, &format!("/api/v1/pipelines/{id}/retry"), &reader, "").status().as_u16(), 403);
    assert!(http_post(&server, &format!("/api/v1/pipelines/{id}/retry"), &admin, "").status().is_success());
    server.run_one_job(&runner_token);
    assert_eq!(latest_pipeline(&server, &admin)["pipeline"]["status"], "success");
    assert_eq!(versions(&npm, &server.work, "gated-lib"), Some(vec!["1.0.0".to_string(), "1.1.0".to_string()]));

    // Every status change reached the webhook receiver, signed.
    let mut statuses = Vec::new();
    while let Ok((signature, body)) = hooks.recv_timeout(Duration::from_secs(5)) {
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(body.as_bytes());
        assert_eq!(
            signature,
            format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
            "bad signature on {body}"
        );
        let v: Value = serde_json::from_str(&body).unwrap();
        statuses.push(format!("{}:{}", v["pipeline"]["id"], v["pipeline"]["status"].as_str().unwrap()));
        if statuses.len() == 9 {
            break;
        }
    }
    // pipeline 1: pending, running, success; pipeline 2: pending, running, failed, then after
    // the retry: pending, running, success.
    assert_eq!(
        statuses,
        [
            "1:pending",
            "1:running",
            "1:success",
            "2:pending",
            "2:running",
            "2:failed",
            "2:pending",
            "2:running",
            "2:success"
        ]
    );
    let deliveries = server.api_json("/api/v1/webhooks/deliveries", &admin);
    assert!(deliveries["deliveries"].as_array().unwrap().iter().all(|d| d["delivered"] == true));
}

#[test]
fn job_tokens_and_runner_tokens_are_narrow() {
    let Setup { server, admin, runner_token, npm, .. } = setup();
    npm.ok(&make_package(&server.work, "first-lib", "1.0.0"), &["publish"]);
    npm.ok(&make_package(&server.work, "second-lib", "1.0.0"), &["publish"]);

    // Act as a runner through the API to hold a job token.
    let r = http_post(&server, "/api/v1/jobs/request?wait=5", &runner_token, "{}");
    assert_eq!(r.status().as_u16(), 201);
    let job: Value = r.json().unwrap();
    let own = job["sha256"].as_str().unwrap().to_string();
    let token = job["token"].as_str().unwrap().to_string();
    let pushes = server.api_json("/api/v1/pushes", &admin);
    let other = pushes["pushes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sha256"].as_str().unwrap())
        .find(|s| *s != own)
        .unwrap()
        .to_string();

    let get = |sha: &str, tok: &str| {
        server.http().get(format!("{}/api/v1/pushes/{sha}/file", server.url)).bearer_auth(tok).send().unwrap()
    };
    let mine = get(&own, &token);
    assert_eq!(mine.status().as_u16(), 200);
    let bytes = mine.bytes().unwrap();
    use sha2::Digest;
    assert_eq!(hex::encode(Sha256::digest(&bytes)), own);
    // Another push's file is not there for this token: the same 404 as a file that does not exist.
    assert_eq!(get(&other, &token).status().as_u16(), 404, "a job token reads only its own push's file");
    assert_eq!(get(&own, &runner_token).status().as_u16(), 403, "a runner token reads no files");
    // The job token is no API token and no publish token.
    let r = server.http().get(format!("{}/api/v1/pushes", server.url)).bearer_auth(&token).send().unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // A runner token cannot publish.
    let as_runner = Npm::new(&server, "runner", Some(&runner_token));
    let (ok, _, err) = as_runner.run(&make_package(&server.work, "sneaky", "1.0.0"), &["publish"]);
    assert!(!ok);
    assert!(err.contains("403") || err.contains("may not publish"), "{err}");

    // Finishing with the job token releases the push; a finished job's token is dead.
    let r = server
        .http()
        .post(format!("{}/api/v1/jobs/{}/finish", server.url, job["id"]))
        .bearer_auth(&token)
        .json(&serde_json::json!({"status": "success", "exit_code": 0}))
        .send()
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(get(&own, &token).status().as_u16(), 401);
}

#[test]
fn runners_fail_jobs_clearly_time_out_and_stop_when_canceled() {
    let Setup { server, admin, runner_token, npm, .. } = setup();
    let put = |yaml: &str| put_pipeline(&server, &admin, yaml);

    // The extraction tool is missing on this runner: the job fails naming it.
    let bin = server.work.join("bin-without-tar");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["bash", "sh", "env", "kill", "mkdir", "rm", "cat"] {
        if let Ok(p) = which(tool) {
            std::os::unix::fs::symlink(p, bin.join(tool)).unwrap();
        }
    }
    npm.ok(&make_package(&server.work, "gated-a", "1.0.0"), &["publish"]);
    let (ok, _, err) = run(server.runner(&runner_token).env("PATH", &bin).arg("--once"));
    assert!(ok, "{err}");
    let p = latest_pipeline(&server, &admin);
    assert_eq!(p["pipeline"]["status"], "failed");
    let job = server.api_json(&format!("/api/v1/jobs/{}", p["jobs"][1]["id"]), &admin);
    assert!(job["log"].as_str().unwrap().contains("`tar`"), "the log names the missing tool: {}", job["log"]);

    // A job past its timeout is killed and failed.
    put("slow:\n  script: sleep 60\n  timeout: 2s\n");
    npm.ok(&make_package(&server.work, "gated-b", "1.0.0"), &["publish"]);
    // The job sleeps a minute; the runner kills it at its 2 s timeout.
    server.run_one_job(&runner_token);
    let p = latest_pipeline(&server, &admin);
    assert_eq!(p["pipeline"]["status"], "failed");
    assert_eq!(p["jobs"][1]["failure_reason"], "job_timeout");

    // A canceled job stops.
    put("forever:\n  script: sleep 600\n");
    npm.ok(&make_package(&server.work, "gated-c", "1.0.0"), &["publish"]);
    let mut child: Child = server.runner(&runner_token).arg("--once").stdout(Stdio::null()).spawn().unwrap();
    let pipeline_id = latest_pipeline(&server, &admin)["pipeline"]["id"].as_i64().unwrap();
    assert!(
        server.wait_for(Duration::from_secs(20), || latest_pipeline(&server, &admin)["jobs"][1]["status"] == "running")
    );
    assert!(http_post(&server, &format!("/api/v1/pipelines/{pipeline_id}/cancel"), &admin, "").status().is_success());
    let stopped = server.wait_for(Duration::from_secs(20), || matches!(child.try_wait(), Ok(Some(_))));
    if !stopped {
        let _ = child.kill();
    }
    assert!(stopped, "the runner stops a canceled job");
    let p = latest_pipeline(&server, &admin);
    assert_eq!(p["pipeline"]["status"], "canceled");
    assert_eq!(p["jobs"][1]["status"], "canceled");
}

fn which(tool: &str) -> Result<String, ()> {
    let out = Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().map_err(|_| ())?;
    let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if p.is_empty() {
        Err(())
    } else {
        Ok(p)
    }
}

/// A pipeline file that cannot be used loses no push: the pipeline fails saying why, the gated
/// version stays hidden, and fixing the file and retrying releases it.
#[test]
fn a_broken_pipeline_file_fails_the_pipeline_not_the_push() {
    let server = Server::gated("npm", "npm", "check:\n  script: true\n  needs: [build]\n", "");
    let admin = server.token("admin", "admin", None);
    let runner_token = server.token("runner-1", "runner", None);
    let npm = Npm::new(&server, "publisher", Some(&server.token("publisher", "publish", Some("npm"))));
    npm.ok(&make_package(&server.work, "gated-lib", "1.0.0"), &["publish"]);
    let p = latest_pipeline(&server, &admin);
    assert_eq!(p["pipeline"]["status"], "failed", "{p}");
    assert_eq!(p["jobs"][1]["name"], "pipeline-file");
    let log =
        server.api_json(&format!("/api/v1/jobs/{}", p["jobs"][1]["id"]), &admin)["log"].as_str().unwrap().to_string();
    assert!(log.contains("needs"), "the log names the problem: {log}");
    assert_eq!(versions(&npm, &server.work, "gated-lib"), None);

    put_pipeline(&server, &admin, PASSING);
    let id = p["pipeline"]["id"].as_i64().unwrap();
    assert!(http_post(&server, &format!("/api/v1/pipelines/{id}/retry"), &admin, "").status().is_success());
    server.run_one_job(&runner_token);
    assert_eq!(latest_pipeline(&server, &admin)["pipeline"]["status"], "success");
    assert_eq!(versions(&npm, &server.work, "gated-lib"), Some(vec!["1.0.0".to_string()]));
}
