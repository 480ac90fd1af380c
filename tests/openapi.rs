//! The native API's OpenAPI document against a real `sluice serve`: it is served anonymously at
//! `/api/v1/openapi.json`, documents every operation with the scopes it needs, and schemathesis
//! (the real tool, from PyPI) fuzzes every operation with an admin token and finds no 5xx and no
//! answer that does not match its schema.

mod support;

use std::process::Command;

use serde_json::{json, Value};
use support::{require_tool, Server};

/// `npm publish` over HTTP: the packument with the tarball attached.
fn publish(server: &Server, repo: &str, token: &str, name: &str, version: &str) {
    let tgz = support::npm_fixture::simple_package(name, version, "fuzzed", "module.exports = 1;\n");
    let body = support::npm_fixture::publish_body(name, version, &tgz);
    let encoded = name.replace('/', "%2f");
    let r = server
        .http()
        .put(format!("{}/{repo}/{encoded}", server.url))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .expect("publish");
    assert!(r.status().is_success(), "publish {name}@{version} to {repo}: {}", r.status());
}

const CI: &str =
    "stages: [test]\ncheck:\n  stage: test\n  script:\n    - test -f pkg/package.json\n    - echo checked\n";

/// A server with an open and a gated repository, packages in both, and pipelines in every
/// state a fresh registry has: one finished (run by a real runner) and pending ones.
fn populated() -> (Server, String) {
    let server = Server::start_with_files(
        "[[repository]]\nname = \"libs\"\nformat = \"npm\"\n\
         [[repository]]\nname = \"gated\"\nformat = \"npm\"\ngate = \"pipeline\"\npipeline = \"ci.yml\"\n",
        &[("ci.yml", CI)],
    );
    let admin = server.token("fuzz-admin", "read,publish,admin", None);
    for (name, version) in [("left-pad", "1.0.0"), ("left-pad", "1.1.0"), ("@acme/util", "0.1.0"), ("tiny", "0.0.1")] {
        publish(&server, "libs", &admin, name, version);
    }
    publish(&server, "gated", &admin, "gated-pkg", "1.0.0");
    let runner = server.token("fuzz-runner", "runner", None);
    server.run_one_job(&runner);
    publish(&server, "gated", &admin, "gated-pkg", "1.0.1");
    publish(&server, "gated", &admin, "@acme/gated", "2.0.0");
    (server, admin)
}

/// What schemathesis draws path parameters from most of the time (it fuzzes them otherwise):
/// the repositories, packages, ids and file digests this server has, so the operations reach
/// stored data rather than answering 404 to random names.
fn config(ids: &[i64], shas: &[String]) -> String {
    format!(
        r#"
[dictionaries]
repos = {{ values = ["libs", "gated"] }}
packages = {{ values = ["left-pad", "@acme/util", "tiny", "gated-pkg", "@acme/gated"] }}
ids = {{ values = {ids:?} }}
shas = {{ values = {shas:?} }}

[parameters]
"path.repo" = {{ dictionary = "repos", probability = 0.8 }}
"path.name" = {{ dictionary = "packages", probability = 0.7 }}
"path.id" = {{ dictionary = "ids", probability = 0.7 }}
"path.sha256" = {{ dictionary = "shas", probability = 0.7 }}
"query.repository" = {{ dictionary = "repos", probability = 0.5 }}
"#
    )
}

/// Runs schemathesis against the server's own document with `config`; returns whether it
/// passed and its output.
fn schemathesis(server: &Server, token: &str, config_toml: &str, args: &[&str]) -> (bool, String) {
    let tool = require_tool("schemathesis");
    let config = server.work.join("schemathesis.toml");
    std::fs::write(&config, config_toml).unwrap();
    let out = Command::new(tool)
        .arg("--no-color")
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(format!("{}/api/v1/openapi.json", server.url))
        .args(["--url", &server.url])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        // No 5xx, and every answer (status, content type, body) as the document says. (Not
        // `ignored_auth`: a resource named by id answers 404 without a token, by design, so that
        // private ids answer like missing ones; tests/hardening.rs holds that.)
        .args([
            "--checks",
            "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance",
        ])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--request-timeout", "30"])
        // One worker: CPython 3.11's `ast` is not thread-safe, and hypothesis parses lambdas
        // with it ("AST constructor recursion depth mismatch" with two workers).
        .args(["--workers", "1"])
        .args(args)
        .current_dir(&server.work)
        .output()
        .expect("run schemathesis");
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn openapi_document_is_served_and_every_operation_matches_it_under_fuzzing() {
    let (mut server, admin) = populated();

    // The document is anonymous, OpenAPI 3.1, and says which scopes each operation needs.
    let (status, body) = server.get("/api/v1/openapi.json");
    assert_eq!(status, 200, "GET /api/v1/openapi.json: {body}");
    let doc: Value = serde_json::from_str(&body).expect("the document is JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    for (path, method, scope) in [
        ("/api/v1/pushes", "get", "read"),
        ("/api/v1/repositories/{repo}/packages/{name}", "get", "read"),
        ("/api/v1/repositories/{repo}/sync", "post", "publish"),
        ("/api/v1/tokens", "post", "admin"),
        ("/api/v1/tokens/{id}", "delete", "admin"),
        ("/api/v1/pipelines/{id}/retry", "post", "admin"),
        ("/api/v1/jobs/request", "post", "runner"),
        ("/api/v1/jobs/{id}/finish", "post", "job"),
    ] {
        let op = &paths.get(path).unwrap_or_else(|| panic!("{path} is not documented"))[method];
        assert_eq!(op["security"][0]["token"], json!([scope]), "{method} {path} needs {scope}: {op}");
    }
    let badge = &paths["/api/v1/pipelines/{id}/badge.svg"]["get"]["responses"]["200"]["content"];
    assert!(badge.get("image/svg+xml").is_some(), "badges are SVG: {badge}");
    assert_eq!(doc["components"]["schemas"]["PushRow"]["type"], "object");

    let pushes = server.api_json("/api/v1/pushes", &admin);
    let shas: Vec<String> =
        pushes["pushes"].as_array().unwrap().iter().map(|p| p["sha256"].as_str().unwrap().to_string()).collect();

    // First the runners' side with a running job's own token: its log, its end, its file (a
    // runner claims the job as `sluice runner` does).
    let runner = server.token("fuzz-runner-2", "runner", None);
    let claim = server
        .http()
        .post(format!("{}/api/v1/jobs/request?wait=10", server.url))
        .bearer_auth(&runner)
        .json(&json!({ "runner": "fuzz" }))
        .send()
        .expect("claim a job");
    assert_eq!(claim.status().as_u16(), 201, "a pending job to claim");
    let job: Value = claim.json().unwrap();
    let job_token = job["token"].as_str().expect("a job token").to_string();
    let job_config = config(&[job["id"].as_i64().unwrap()], &shas);
    // The log and the file while the job runs, then its end (after which its token reads nothing).
    for only in ["^/api/v1/(jobs/\\{id\\}/log|pushes/\\{sha256\\}/file)$", "^/api/v1/jobs/\\{id\\}/finish$"] {
        let (ok, output) =
            schemathesis(&server, &job_token, &job_config, &["--max-examples", "40", "--include-path-regex", only]);
        println!("{output}");
        assert!(ok, "schemathesis found failures in the job-token operations {only} (output above)");
    }

    // Every operation with an admin token but token revocation, which could revoke that token.
    let ids: Vec<i64> = (1..=8).collect();
    let (ok, output) = schemathesis(
        &server,
        &admin,
        &config(&ids, &shas),
        &["--max-examples", "150", "--exclude-path", "/api/v1/tokens/{id}"],
    );
    println!("{output}");
    assert!(ok, "schemathesis found failures (output above)");

    // Revocation last, and alone: it revokes whichever ids it draws, its own token's and the
    // first run's included; once its token is revoked it gets 401s, which are documented too.
    let disposable = server.token("fuzz-revoker", "admin", None);
    let (ok, output) = schemathesis(
        &server,
        &disposable,
        &config(&ids, &shas),
        &["--max-examples", "15", "--include-path", "/api/v1/tokens/{id}"],
    );
    println!("{output}");
    assert!(ok, "schemathesis found failures in token revocation (output above)");

    // Found by hand next to the fuzzing: a lifetime that parses but overflows once added to now
    // was a 500 (a panic in the handler). (A new token: the revocation run may have revoked any.)
    let admin = server.token("overflow-check", "admin", None);
    let r = server
        .http()
        .post(format!("{}/api/v1/tokens", server.url))
        .bearer_auth(&admin)
        .json(&json!({ "name": "forever", "scopes": "read", "expires": "292271000y" }))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400, "{:?}", r.text());

    // Found while fuzzing: a caller learns nothing of which repositories exist. A repository was
    // looked up before the token was checked, so `nosuch` answered 404 where `libs` answered 401
    // (anonymous) or 403 (a token limited to another repository).
    let limited = server.token("limited", "read", Some("gated"));
    for (token, expected) in [(None, 401), (Some(limited.as_str()), 403)] {
        for path in [
            "/api/v1/repositories/libs/packages",
            "/api/v1/repositories/nosuch/packages",
            "/api/v1/repositories/nosuch/git-tags",
        ] {
            let mut req = server.http().get(format!("{}{path}", server.url));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            assert_eq!(req.send().unwrap().status().as_u16(), expected, "{path} with {token:?}");
        }
    }

    // The server is still up and the data is still there.
    assert!(server.is_alive(), "the server survived the fuzzing");
    let after = server.token("after-fuzzing", "read", None);
    let pushes = server.api_json("/api/v1/pushes?repository=libs", &after);
    assert_eq!(pushes["pushes"].as_array().map(Vec::len), Some(4), "{pushes}");
}
