mod support;

use base64::Engine;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::Command;
use support::npm::{index_js, make_package, project, Npm};
use support::Server;

/// Packs a package folder as npm publishes it, outside the folder so that the publish does not
/// pack the tarball too: (integrity, sha256 hex).
fn pack(npm: &Npm, pkg: &Path) -> (String, String) {
    let dest = npm.dir.join("packed");
    std::fs::create_dir_all(&dest).unwrap();
    let out = npm.ok(pkg, &["pack", "--json", "--pack-destination", dest.to_str().unwrap()]);
    let packed: Value = serde_json::from_str(&out).unwrap();
    let file = dest.join(packed[0]["filename"].as_str().unwrap());
    let bytes = std::fs::read(&file).unwrap();
    (packed[0]["integrity"].as_str().unwrap().to_string(), hex::encode(Sha256::digest(&bytes)))
}

#[test]
fn npm_publishes_installs_and_manages_packages() {
    let server = Server::start();
    let work = server.work.clone();
    let token = server.token("ci-publisher", "read,publish", None);
    let npm = Npm::new(&server, "publisher", Some(&token));

    // Registry endpoints npm uses on its own.
    npm.ok(&work, &["ping"]);
    assert_eq!(npm.ok(&work, &["whoami"]).trim(), "ci-publisher");

    // Publish an unscoped package twice and a scoped one.
    let demo1 = make_package(&work, "demo-pkg", "1.0.0");
    let demo2 = make_package(&work, "demo-pkg", "1.1.0");
    let scoped = make_package(&work, "@sluice/greet", "1.0.0");
    let mut packed = Vec::new();
    for dir in [&demo1, &demo2, &scoped] {
        packed.push(pack(&npm, dir));
        let out = npm.ok(dir, &["publish"]);
        assert!(out.contains("+ "), "npm publish printed no `+ name@version`: {out}");
    }

    // `npm view`: versions, dist-tags and integrity, as npm computed it when packing.
    assert_eq!(npm.view(&work, &["demo-pkg", "versions"]), json!(["1.0.0", "1.1.0"]));
    assert_eq!(npm.view(&work, &["demo-pkg", "dist-tags"]), json!({"latest": "1.1.0"}));
    let time = npm.view(&work, &["demo-pkg", "time"]);
    for key in ["created", "modified", "1.0.0", "1.1.0"] {
        assert!(time[key].as_str().is_some_and(|t| t.ends_with('Z')), "time.{key} in {time}");
    }
    assert_eq!(npm.view(&work, &["demo-pkg@1.0.0", "dist.integrity"]), json!(packed[0].0));
    assert_eq!(npm.view(&work, &["@sluice/greet", "dist.integrity"]), json!(packed[2].0));
    assert_eq!(npm.view(&work, &["@sluice/greet", "description"]), json!("@sluice/greet, a test package"));
    let tarball = npm.view(&work, &["@sluice/greet", "dist.tarball"]);
    assert_eq!(tarball, json!(format!("{}@sluice/greet/-/greet-1.0.0.tgz", npm.registry)));

    // Install both into a fresh project: the files are the published ones, verified by npm.
    let app = project(&work, "app");
    npm.ok(&app, &["install", "demo-pkg", "@sluice/greet"]);
    let installed = |p: &str| std::fs::read_to_string(app.join("node_modules").join(p).join("index.js")).unwrap();
    assert_eq!(installed("demo-pkg"), index_js("demo-pkg", "1.1.0"));
    assert_eq!(installed("@sluice/greet"), index_js("@sluice/greet", "1.0.0"));
    let lock: Value = serde_json::from_str(&std::fs::read_to_string(app.join("package-lock.json")).unwrap()).unwrap();
    assert_eq!(lock["packages"]["node_modules/demo-pkg"]["integrity"], json!(packed[1].0));
    let node = Command::new("node").current_dir(&app).args(["-p", "require('@sluice/greet')"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&node.stdout).trim(), "hello from @sluice/greet@1.0.0");

    // Search finds packages by name.
    let out = npm.ok(&work, &["search", "greet"]);
    assert!(out.contains("@sluice/greet"), "npm search: {out}");

    // dist-tags: add, list, remove, on an unscoped and a scoped package.
    assert!(npm.ok(&work, &["dist-tag", "add", "demo-pkg@1.0.0", "stable"]).contains("+stable: demo-pkg@1.0.0"));
    npm.ok(&work, &["dist-tag", "add", "@sluice/greet@1.0.0", "next"]);
    let tags = npm.ok(&work, &["dist-tag", "ls", "demo-pkg"]);
    assert_eq!(tags.trim(), "latest: 1.1.0\nstable: 1.0.0");
    assert_eq!(npm.view(&work, &["@sluice/greet", "dist-tags"]), json!({"latest": "1.0.0", "next": "1.0.0"}));
    let app_stable = project(&work, "app-stable");
    npm.ok(&app_stable, &["install", "demo-pkg@stable"]);
    let stable_js = std::fs::read_to_string(app_stable.join("node_modules/demo-pkg/index.js")).unwrap();
    assert_eq!(stable_js, index_js("demo-pkg", "1.0.0"));
    npm.ok(&work, &["dist-tag", "rm", "demo-pkg", "stable"]);
    npm.ok(&work, &["dist-tag", "rm", "@sluice/greet", "next"]);
    assert_eq!(npm.ok(&work, &["dist-tag", "ls", "demo-pkg"]).trim(), "latest: 1.1.0");
    assert_eq!(npm.view(&work, &["@sluice/greet", "dist-tags"]), json!({"latest": "1.0.0"}));

    // deprecate: npm view shows it and installing warns.
    npm.ok(&work, &["deprecate", "demo-pkg@1.0.0", "use 1.1.0 instead"]);
    assert_eq!(npm.view(&work, &["demo-pkg@1.0.0", "deprecated"]), json!("use 1.1.0 instead"));
    let app_old = project(&work, "app-old");
    let (ok, _, err) = npm.run(&app_old, &["install", "demo-pkg@1.0.0"]);
    assert!(ok, "installing a deprecated version still works");
    assert!(err.contains("deprecated demo-pkg@1.0.0: use 1.1.0 instead"), "no deprecation warning: {err}");
    npm.ok(&work, &["deprecate", "demo-pkg@1.0.0", ""]);
    let undeprecated = npm.run(&work, &["view", "demo-pkg@1.0.0", "deprecated"]).1;
    assert_eq!(undeprecated.trim(), "", "an empty message undeprecates");

    // Republishing a version fails with npmjs's message: npm checks first, and with --force the
    // registry refuses it itself.
    let (ok, _, err) = npm.run(&demo2, &["publish"]);
    assert!(!ok && err.contains("You cannot publish over the previously published versions: 1.1.0."), "{err}");
    let (ok, _, err) = npm.run(&demo2, &["publish", "--force"]);
    assert!(!ok, "republishing with --force succeeded");
    assert!(
        err.contains("403") && err.contains("You cannot publish over the previously published versions: 1.1.0."),
        "{err}"
    );

    // The push log lists every publish, with the sha256 of the tarball npm packed.
    let admin = server.token("admin", "admin", None);
    let pushes = server.api_json("/api/v1/pushes", &admin);
    let pushes = pushes["pushes"].as_array().unwrap_or_else(|| panic!("no list of pushes: {pushes}"));
    for ((name, version), (_, sha256)) in
        [("demo-pkg", "1.0.0"), ("demo-pkg", "1.1.0"), ("@sluice/greet", "1.0.0")].iter().zip(&packed)
    {
        let push = pushes
            .iter()
            .find(|p| p["package"] == *name && p["version"] == *version)
            .unwrap_or_else(|| panic!("no push of {name}@{version} in {pushes:?}"));
        assert_eq!(push["repository"], "npm");
        assert_eq!(push["sha256"], json!(sha256), "{name}@{version}");
        assert_eq!(push["token_name"], "ci-publisher");
        assert!(push["file_name"].as_str().unwrap().ends_with(&format!("-{version}.tgz")));
        assert!(push["size"].as_u64().unwrap() > 0);
        assert!(push["user_agent"].as_str().unwrap().starts_with("npm/"), "{push}");
        assert_eq!(push["client_addr"], "127.0.0.1");
        assert!(!push["created_at"].is_null(), "push has no created_at: {push}");
    }
    assert_eq!(pushes.len(), 3, "the refused republish is not a push: {pushes:?}");

    // Unpublish the latest version: it is gone and `latest` moves back.
    npm.ok(&work, &["unpublish", "demo-pkg@1.1.0"]);
    assert_eq!(npm.view(&work, &["demo-pkg", "versions"]), json!(["1.0.0"]));
    assert_eq!(npm.view(&work, &["demo-pkg", "dist-tags"]), json!({"latest": "1.0.0"}));
    let (status, _) = server.get("/npm/demo-pkg/-/demo-pkg-1.1.0.tgz");
    assert_eq!(status, 404, "the unpublished tarball is still served");

    // A prerelease goes out under its own tag and leaves `latest` alone.
    let beta = make_package(&work, "demo-pkg", "2.0.0-beta.1");
    npm.ok(&beta, &["publish", "--tag", "beta"]);
    assert_eq!(npm.view(&work, &["demo-pkg", "dist-tags"]), json!({"latest": "1.0.0", "beta": "2.0.0-beta.1"}));
    let app_beta = project(&work, "app-beta");
    npm.ok(&app_beta, &["install", "demo-pkg@beta"]);
    let beta_js = std::fs::read_to_string(app_beta.join("node_modules/demo-pkg/index.js")).unwrap();
    assert_eq!(beta_js, index_js("demo-pkg", "2.0.0-beta.1"));

    // Unpublish a whole package.
    npm.ok(&work, &["unpublish", "@sluice/greet", "--force"]);
    let (ok, _, err) = npm.run(&work, &["view", "@sluice/greet"]);
    assert!(!ok && err.contains("404"), "{err}");
}

#[test]
fn npm_without_a_publish_token_cannot_publish() {
    let server = Server::start();
    let work = server.work.clone();
    let pkg = make_package(&work, "locked-pkg", "1.0.0");

    let wrong = Npm::new(&server, "wrong", Some("not-a-token"));
    let (ok, _, err) = wrong.run(&pkg, &["publish"]);
    assert!(!ok && err.contains("401"), "a wrong token published: {err}");
    let (ok, _, err) = wrong.run(&work, &["whoami"]);
    assert!(!ok && err.contains("401"), "whoami with a wrong token: {err}");

    let read_only = server.token("reader", "read", None);
    let reader = Npm::new(&server, "reader", Some(&read_only));
    let (ok, _, err) = reader.run(&pkg, &["publish"]);
    assert!(!ok && err.contains("403"), "a read-only token published: {err}");

    let (ok, _, err) = reader.run(&work, &["view", "locked-pkg"]);
    assert!(!ok && err.contains("404"), "{err}");
    assert!(server.blob_files().is_empty(), "a refused publish stored a file");
}

#[test]
fn npm_publishes_and_installs_a_large_package() {
    let server = Server::start();
    let work = server.work.clone();
    let token = server.token("publisher", "read,publish", None);
    let npm = Npm::new(&server, "large", Some(&token));
    let pkg = make_package(&work, "large-pkg", "1.0.0");
    // 12 MiB that gzip cannot shrink, so the request carries 16 MiB of base64.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let data: Vec<u8> = (0..12 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(pkg.join("data.bin"), &data).unwrap();
    let (integrity, _) = pack(&npm, &pkg);
    npm.ok(&pkg, &["publish"]);
    assert_eq!(npm.view(&work, &["large-pkg", "dist.integrity"]), json!(integrity));
    let app = project(&work, "app");
    npm.ok(&app, &["install", "large-pkg"]);
    assert!(std::fs::read(app.join("node_modules/large-pkg/data.bin")).unwrap() == data, "installed data differs");
}

/// A gzip-compressed tar of these entries; paths are written raw so that hostile ones get in.
fn tgz(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    for (path, data) in entries {
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        builder.append(&header, *data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

/// The body `npm publish` sends, around any tarball.
fn publish_body(name: &str, version: &str, tarball: &[u8]) -> Value {
    json!({
        "_id": name,
        "name": name,
        "dist-tags": {"latest": version},
        "versions": {version: {"name": name, "version": version}},
        "_attachments": {format!("{name}-{version}.tgz"): {
            "content_type": "application/octet-stream",
            "data": base64::engine::general_purpose::STANDARD.encode(tarball),
            "length": tarball.len(),
        }},
    })
}

#[test]
fn npm_malformed_tarballs_are_refused() {
    let mut server = Server::start();
    let token = server.token("publisher", "read,publish", None);
    let manifest = br#"{"name":"bad-pkg","version":"1.0.0"}"#;
    let huge = format!(r#"{{"name":"bad-pkg","version":"1.0.0","filler":"{}"}}"#, "x".repeat(2 << 20));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("not gzip", b"this is not a tarball".to_vec(), "not a gzip"),
        ("no package.json", tgz(&[("package/index.js", b"1")]), "no package.json in its top folder"),
        (
            "a ../ entry",
            tgz(&[("package/package.json", manifest), ("package/../../evil.js", b"1")]),
            "outside the package",
        ),
        ("a huge package.json", tgz(&[("package/package.json", huge.as_bytes())]), "larger than 1 MiB"),
        (
            "another package's tarball",
            tgz(&[("package/package.json", br#"{"name":"other","version":"1.0.0"}"#)]),
            "other@1.0.0",
        ),
    ];
    for (what, tarball, message) in cases {
        let response = server
            .http()
            .put(format!("{}/bad-pkg", server.repo_url("npm")))
            .bearer_auth(&token)
            .json(&publish_body("bad-pkg", "1.0.0", &tarball))
            .send()
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().unwrap_or(Value::Null);
        assert!((400..500).contains(&status), "{what}: status {status}");
        let error = body["error"].as_str().unwrap_or_else(|| panic!("{what}: no error field in {body}"));
        assert!(error.contains(message), "{what}: {error}");
    }
    // A tarball of another scope's package, published under this scope's name: the file name
    // matches (`bad-1.0.0.tgz` either way), the package inside does not.
    let response = server
        .http()
        .put(format!("{}/@mine%2fbad", server.repo_url("npm")))
        .bearer_auth(&token)
        .json(&publish_body(
            "@mine/bad",
            "1.0.0",
            &tgz(&[("package/package.json", br#"{"name":"@theirs/bad","version":"1.0.0"}"#)]),
        ))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let error: Value = response.json().unwrap();
    assert!(error["error"].as_str().unwrap().contains("published as `@mine/bad`"), "{error}");
    // A scoped name spelled both ways reaches the same checks.
    for path in ["@scope%2fbad", "@scope/bad"] {
        let status = server
            .http()
            .put(format!("{}/{path}", server.repo_url("npm")))
            .bearer_auth(&token)
            .json(&publish_body("@scope/bad", "1.0.0", b"not gzip"))
            .send()
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 400, "{path}");
    }
    assert!(server.blob_files().is_empty(), "a refused tarball was stored: {:?}", server.blob_files());
    assert!(server.is_alive());
    let (status, body) = server.get("/npm/bad-pkg");
    assert_eq!(status, 404, "{body}");
}

/// A repository with `read = "token"`: npm without a token gets a clear 401, a token limited to
/// another repository a 403, and a `read` token installs.
#[test]
fn a_private_repository_needs_a_read_token() {
    let server = Server::start_with_config(
        "[[repository]]\nname = \"npm\"\nformat = \"npm\"\nread = \"token\"\n\
         [[repository]]\nname = \"other\"\nformat = \"npm\"\n",
    );
    let publisher = Npm::new(&server, "publisher", Some(&server.token("publisher", "publish", Some("npm"))));
    publisher.ok(&make_package(&server.work, "private-lib", "1.0.0"), &["publish"]);

    let anonymous = Npm::new(&server, "anonymous", None);
    let app = project(&server.work, "anonymous-app");
    let (ok, _, err) = anonymous.run(&app, &["install", "private-lib"]);
    assert!(!ok && err.contains("401"), "anonymous reads are refused: {err}");

    let elsewhere = Npm::new(&server, "elsewhere", Some(&server.token("elsewhere", "read", Some("other"))));
    let (ok, _, err) = elsewhere.run(&app, &["install", "private-lib"]);
    assert!(!ok && err.contains("403"), "a token for another repository is refused: {err}");

    let reader = Npm::new(&server, "reader", Some(&server.token("reader", "read", Some("npm"))));
    let app = project(&server.work, "reader-app");
    reader.ok(&app, &["install", "private-lib"]);
    assert!(app.join("node_modules/private-lib/index.js").is_file());
    // A read token still cannot publish.
    let (ok, _, err) = reader.run(&make_package(&server.work, "private-lib", "1.0.1"), &["publish"]);
    assert!(!ok && err.contains("403"), "{err}");
}
