//! npm packages in the shapes the public registry holds (issue 10), published and installed with
//! the real npm: tarballs whose top folder is not `package/`, versions with build metadata, a
//! dependency that ships an npm-shrinkwrap.json, and a symbolic link chain that must be refused.

mod support;

use serde_json::{json, Value};
use support::npm::{make_package, project, Npm};
use support::npm_fixture::{
    git_archive_index_js, git_archive_package, symlink_chain_package, types_declaration, types_package,
};
use support::Server;

/// `@types/node` keeps its files under `node/`, and a git-archive tarball under
/// `owner-repo-commit/` after a pax header: npm publishes both from the file, Sluice accepts them,
/// npm installs them, and the runner unpacks the top folder into `pkg/` as npm does.
#[test]
fn tarballs_with_any_top_folder_publish_install_and_unpack_on_runners() {
    let pipeline = "unpacked:\n  script:\n    - test -f pkg/package.json\n    - cat pkg/package.json\n    - ls pkg\n";
    let server = Server::gated("npm", "npm", pipeline, "");
    let work = server.work.clone();
    let npm = Npm::new(&server, "publisher", Some(&server.token("publisher", "read,publish", None)));
    let runner = server.token("runner", "runner", None);
    let admin = server.token("admin", "admin", None);

    let types = types_package("node", "20.11.5").write(&work.join("fixtures"), "types-node-20.11.5.tgz");
    let busboy =
        git_archive_package("busboy", "1.6.0", "mscdex-busboy-9aadb7a", "9aadb7afc4c8d7ddd45e4f6df96d5bd1c2c5b5a2")
            .write(&work.join("fixtures"), "busboy-1.6.0.tgz");
    for (tarball, name) in [(&types, "@types/node"), (&busboy, "busboy")] {
        let out = npm.ok(&work, &["publish", tarball.to_str().unwrap()]);
        assert!(out.contains(&format!("+ {name}@")), "{out}");
        // The runner unpacks it with the plugin's extraction steps; the job sees the package at pkg/.
        server.run_one_job(&runner);
        let p = server.latest_pipeline("npm", &admin);
        let job = server.api_json(&format!("/api/v1/jobs/{}", p["jobs"][1]["id"]), &admin);
        let log = job["log"].as_str().unwrap_or("").to_string();
        assert_eq!(p["pipeline"]["status"], "success", "{name}: {p}\n{log}");
        assert!(log.contains("Unpacked; every entry is inside pkg/"), "{log}");
        assert!(log.contains(&format!("\"name\": \"{name}\"")), "the job read the package's package.json: {log}");
    }

    assert_eq!(npm.view(&work, &["@types/node", "types"]), json!("index.d.ts"));
    let app = project(&work, "app");
    npm.ok(&app, &["install", "@types/node@20.11.5", "busboy"]);
    let declaration = std::fs::read_to_string(app.join("node_modules/@types/node/index.d.ts")).unwrap();
    assert_eq!(declaration, types_declaration("node", "20.11.5"));
    let main = std::fs::read_to_string(app.join("node_modules/busboy/lib/index.js")).unwrap();
    assert_eq!(main, git_archive_index_js("busboy", "1.6.0"));
    let node = std::process::Command::new("node").current_dir(&app).args(["-p", "require('busboy')"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&node.stdout).trim(), "hello from busboy@1.6.0, packed by git archive");
}

/// npm cleans `1.0.0+build.7` to `1.0.0` when it publishes; the registry stores `1.0.0`, and a
/// second build of the same version is a republish.
#[test]
fn build_metadata_is_dropped_as_npm_does() {
    let server = Server::start();
    let work = server.work.clone();
    let npm = Npm::new(&server, "publisher", Some(&server.token("publisher", "read,publish", None)));
    let pkg = make_package(&work, "built-pkg", "1.0.0+build.7");
    let out = npm.ok(&pkg, &["publish"]);
    assert!(out.contains("+ built-pkg@1.0.0"), "{out}");
    assert_eq!(npm.view(&work, &["built-pkg", "versions"]), json!(["1.0.0"]));
    assert_eq!(npm.view(&work, &["built-pkg", "dist-tags"]), json!({"latest": "1.0.0"}));
    let app = project(&work, "app");
    npm.ok(&app, &["install", "built-pkg@1.0.0"]);
    assert!(app.join("node_modules/built-pkg/index.js").is_file());

    let again = make_package(&work.join("again"), "built-pkg", "1.0.0+build.8");
    let (ok, _, err) = npm.run(&again, &["publish"]);
    assert!(!ok && err.contains("You cannot publish over the previously published versions: 1.0.0."), "{err}");
}

/// A dependency with an npm-shrinkwrap.json pins its own dependencies: npm reads it only when the
/// packument says `_hasShrinkwrap: true`, as the public registry sets it from the tarball.
#[test]
fn a_dependency_shrinkwrap_is_honoured() {
    let server = Server::start();
    let work = server.work.clone();
    let npm = Npm::new(&server, "publisher", Some(&server.token("publisher", "read,publish", None)));
    npm.ok(&make_package(&work, "pinned-sub", "1.0.0"), &["publish"]);

    // `pinned-dep` depends on `pinned-sub@^1.0.0`, and its shrinkwrap pins 1.0.0.
    let dep = make_package(&work, "pinned-dep", "1.0.0");
    let mut manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dep.join("package.json")).unwrap()).unwrap();
    manifest["dependencies"] = json!({"pinned-sub": "^1.0.0"});
    std::fs::write(dep.join("package.json"), manifest.to_string()).unwrap();
    npm.ok(&dep, &["install"]);
    npm.ok(&dep, &["shrinkwrap"]);
    assert!(dep.join("npm-shrinkwrap.json").is_file());
    std::fs::remove_dir_all(dep.join("node_modules")).unwrap();
    npm.ok(&dep, &["publish"]);

    // A newer sub version that the range admits, but the shrinkwrap does not.
    npm.ok(&make_package(&work, "pinned-sub", "1.1.0"), &["publish"]);

    let app = project(&work, "app");
    npm.ok(&app, &["install", "pinned-dep"]);
    let lock: Value = serde_json::from_str(&std::fs::read_to_string(app.join("package-lock.json")).unwrap()).unwrap();
    let subs: Vec<(&String, &Value)> = lock["packages"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(path, _)| path.ends_with("node_modules/pinned-sub"))
        .map(|(path, entry)| (path, &entry["version"]))
        .collect();
    assert_eq!(subs.len(), 1, "{lock}");
    assert_eq!(subs[0].1, &json!("1.0.0"), "the dependency's shrinkwrap was ignored: {lock}");
    assert_eq!(npm.view(&work, &["pinned-dep", "_hasShrinkwrap"]), json!(true));
    // `npm view` prints nothing for `false`: the packument says it.
    let (_, body) = server.get("/npm/pinned-sub");
    let packument: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(packument["versions"]["1.1.0"]["_hasShrinkwrap"], json!(false), "{packument}");
}

/// A symbolic link chain whose every link looks harmless as written is refused with a clear 400
/// when npm publishes it, and nothing is stored.
#[test]
fn a_symlink_chain_out_of_the_package_is_refused() {
    let mut server = Server::start();
    let work = server.work.clone();
    let npm = Npm::new(&server, "publisher", Some(&server.token("publisher", "read,publish", None)));
    let tarball = symlink_chain_package("chained", "1.0.0").write(&work.join("fixtures"), "chained-1.0.0.tgz");
    let (ok, _, err) = npm.run(&work, &["publish", tarball.to_str().unwrap()]);
    assert!(!ok, "the chain was published");
    assert!(err.contains("400"), "{err}");
    assert!(err.contains("the link \"package/y\" points outside the package (to \"x/..\")"), "{err}");
    assert!(server.blob_files().is_empty(), "a refused tarball was stored: {:?}", server.blob_files());
    assert!(server.is_alive());
    let (ok, _, err) = npm.run(&work, &["view", "chained"]);
    assert!(!ok && err.contains("404"), "{err}");
}
