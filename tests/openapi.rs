//! The native API's OpenAPI document against a real `sluice serve`: it is served anonymously at
//! `/api/v1/openapi.json`, documents every operation with the scopes it needs, and schemathesis
//! (the real tool, from PyPI) fuzzes every operation with an admin token and finds no 5xx and no
//! answer that does not match its schema.

mod support;

use std::process::Command;

use base64::Engine as _;
use serde_json::{json, Value};
use support::{require_tool, Server};

/// A small npm tarball (the npm plugin is the built-in format these tests publish with).
fn tarball(name: &str, version: &str) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    let manifest = json!({ "name": name, "version": version, "description": "fuzzed", "license": "MIT" }).to_string();
    for (path, data) in [("package/package.json", manifest.as_bytes()), ("package/index.js", b"module.exports = 1;\n".as_slice())] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        builder.append_data(&mut h, path, data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

/// `npm publish` over HTTP: the packument with the tarball attached.
fn publish(server: &Server, repo: &str, token: &str, name: &str, version: &str) {
    let tgz = tarball(name, version);
    let file = format!("{name}-{version}.tgz");
    let body = json!({
        "_id": name, "name": name, "dist-tags": { "latest": version },
        "versions": { version: { "name": name, "version": version, "dist": { "tarball": format!("http://x/{name}/-/{file}") } } },
        "_attachments": { file: { "content_type": "application/octet-stream",
            "data": base64::engine::general_purpose::STANDARD.encode(&tgz), "length": tgz.len() } },
    });
    let encoded = name.replace('/', "%2f");
    let r = server
        .http()
        .put(format!("{}/{repo}/{encoded}", server.url))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .expect("publish");
    assert!(r.status().is_success(), "publish {name}@{version} to {repo}: {}", r.status());
}

const CI: &str = "stages: [test]\ncheck:\n  stage: test\n  script:\n    - test -f pkg/package.json\n    - echo checked\n";

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
/// the repositories, packages and ids this server has, so the operations reach stored data
/// rather than answering 404 to random names.
const CONFIG: &str = r#"
[dictionaries]
repos = { values = ["libs", "gated"] }
packages = { values = ["left-pad", "@acme/util", "tiny", "gated-pkg", "@acme/gated"] }
ids = { values = [1, 2, 3, 4, 5, 6, 7] }

[parameters]
"path.repo" = { dictionary = "repos", probability = 0.8 }
"path.name" = { dictionary = "packages", probability = 0.7 }
"path.id" = { dictionary = "ids", probability = 0.7 }
"query.repository" = { dictionary = "repos", probability = 0.5 }
"#;

/// Runs schemathesis against the server's own document; returns whether it passed and its output.
fn schemathesis(server: &Server, token: &str, args: &[&str]) -> (bool, String) {
    let tool = require_tool("schemathesis");
    let config = server.work.join("schemathesis.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let out = Command::new(tool)
        .arg("--no-color")
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(format!("{}/api/v1/openapi.json", server.url))
        .args(["--url", &server.url])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        // No 5xx, and every answer (status, content type, body) as the document says.
        .args(["--checks", "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--request-timeout", "30", "--workers", "2"])
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

    // Every operation but token revocation, which could revoke the token the run uses.
    let (ok, output) = schemathesis(&server, &admin, &["--max-examples", "60", "--exclude-path", "/api/v1/tokens/{id}"]);
    println!("{output}");
    assert!(ok, "schemathesis found failures (output above)");

    // Revocation last, and alone: it revokes whichever ids it draws, its own token's and the
    // first run's included; once its token is revoked it gets 401s, which are documented too.
    let disposable = server.token("fuzz-revoker", "admin", None);
    let (ok, output) = schemathesis(&server, &disposable, &["--max-examples", "15", "--include-path", "/api/v1/tokens/{id}"]);
    println!("{output}");
    assert!(ok, "schemathesis found failures in token revocation (output above)");

    // The server is still up and the data is still there.
    assert!(server.is_alive(), "the server survived the fuzzing");
    let after = server.token("after-fuzzing", "read", None);
    let pushes = server.api_json("/api/v1/pushes?repository=libs", &after);
    assert_eq!(pushes["pushes"].as_array().map(Vec::len), Some(4), "{pushes}");
}
