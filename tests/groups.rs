//! Group repositories, `private` names and `min_age` (issue 15, npm). The upstream is a second
//! `sluice serve` on loopback with packages published by real `npm publish`; the registry under
//! test has a local `npm` repository, a proxy `npmjs` of that upstream and a group `all` over
//! both. Real `npm install` goes through the group with fresh caches.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use support::npm::{app, make_package, require, Npm};
use support::Server;

/// The upstream: a plain Sluice whose default `npm` repository has these packages.
fn upstream_with(packages: &[(&str, &str)]) -> (Server, Npm) {
    let up = Server::start();
    let token = up.token("publisher", "publish", None);
    let npm = Npm::new(&up, "publisher", Some(&token));
    for (name, version) in packages {
        npm.ok(&make_package(&up.work, name, version), &["publish"]);
    }
    (up, npm)
}

/// `npm` (local, with `private` patterns), `npmjs` (a proxy of `up`, plus `proxy_extra`) and the
/// group `all` over both, local first; then `more` repositories.
fn group_config(up: &Server, private: &str, proxy_extra: &str, more: &str) -> String {
    format!(
        "[[repository]]\nname = \"npm\"\nformat = \"npm\"\nprivate = {private}\n\n\
         [[repository]]\nname = \"npmjs\"\nformat = \"npm\"\nupstream = \"{}\"\nallow_local_upstream = true\n{proxy_extra}\n\n\
         [[repository]]\nname = \"all\"\nformat = \"npm\"\nmembers = [\"npm\", \"npmjs\"]\n\n{more}",
        up.repo_url("npm")
    )
}

/// An npm client of `repo` with its own fresh cache, and a token for it when given.
fn client(server: &Server, repo: &str, name: &str, token: Option<&str>) -> Npm {
    let npm = Npm { registry: format!("{}/", server.repo_url(repo)), ..Npm::new(server, name, None) };
    if let Some(token) = token {
        let key = npm.registry.trim_start_matches("http:");
        std::fs::write(npm.dir.join(".npmrc"), format!("registry={}\n{key}:_authToken={token}\n", npm.registry))
            .unwrap();
    }
    npm
}

/// A package folder whose package.json depends on `deps`.
fn package_with_deps(root: &Path, name: &str, version: &str, deps: &[(&str, &str)]) -> PathBuf {
    let dir = make_package(root, name, version);
    let manifest_path = dir.join("package.json");
    let mut manifest: Value = serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    manifest["dependencies"] = deps.iter().map(|(n, v)| (n.to_string(), Value::from(*v))).collect();
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    dir
}

/// The versions a packument offers, as npm reads it (the abbreviated form `npm install` asks for).
fn offered(server: &Server, repo: &str, name: &str) -> Vec<String> {
    let response = server
        .http()
        .get(format!("{}/{}", server.repo_url(repo), name.replace('/', "%2f")))
        .header("accept", "application/vnd.npm.install-v1+json")
        .send()
        .unwrap();
    if response.status() == 404 {
        return Vec::new();
    }
    assert_eq!(response.status(), 200, "{name} in {repo}");
    let doc: Value = response.json().unwrap();
    doc["versions"].as_object().map(|v| v.keys().cloned().collect()).unwrap_or_default()
}

fn installed_resolved(dir: &Path, name: &str) -> String {
    let lock: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("package-lock.json")).unwrap()).unwrap();
    lock["packages"][format!("node_modules/{name}")]["resolved"].as_str().unwrap_or_default().to_string()
}

#[test]
fn installs_a_tree_from_the_local_member_and_the_upstream_then_from_the_cache() {
    support::require_tool("node");
    let (mut up, _) = upstream_with(&[("left-dep", "1.2.0"), ("@pub/util", "2.0.0"), ("@pub/util", "2.1.0")]);
    let registry = Server::start_with_config(&group_config(&up, "[\"@acme/*\"]", "metadata_ttl = \"1s\"", ""));

    // The local member holds the company's package, which depends on a public one.
    let token = registry.token("dev", "publish", Some("npm"));
    let local = client(&registry, "npm", "dev", Some(&token));
    local.ok(&package_with_deps(&registry.work, "@acme/app-lib", "1.0.0", &[("left-dep", "^1.0.0")]), &["publish"]);

    let npm = client(&registry, "all", "first", None);
    let dir = app(&registry.work, "first-app", &[("@acme/app-lib", "^1.0.0"), ("@pub/util", "^2.0.0")]);
    npm.ok(&dir, &["install"]);
    assert_eq!(require(&dir, "@acme/app-lib"), "hello from @acme/app-lib@1.0.0");
    assert_eq!(
        require(&dir, "left-dep"),
        "hello from left-dep@1.2.0",
        "a dependency of the local package, from upstream"
    );
    assert_eq!(require(&dir, "@pub/util"), "hello from @pub/util@2.1.0");
    for name in ["@acme/app-lib", "left-dep", "@pub/util"] {
        let resolved = installed_resolved(&dir, name);
        assert!(resolved.starts_with(&registry.repo_url("all")), "{name} came through the group: {resolved}");
    }

    // What came from the upstream is stored in the proxy member: its own URL serves it too, and
    // its audit log says where it came from.
    let admin = registry.token("admin", "admin", None);
    let pushes = registry.api_json("/api/v1/pushes?repository=npmjs", &admin);
    let pushes = pushes["pushes"].as_array().unwrap();
    assert_eq!(pushes.len(), 2, "left-dep and @pub/util were fetched once each: {pushes:?}");
    assert!(pushes.iter().all(|p| p["actor"] == "upstream"), "{pushes:?}");
    let local_pushes = registry.api_json("/api/v1/pushes?repository=npm", &admin);
    assert_eq!(local_pushes["pushes"].as_array().unwrap().len(), 1, "nothing fetched lands in the local member");

    // The upstream goes away and the kept metadata expires: a fresh install still works.
    up.kill();
    std::thread::sleep(Duration::from_millis(1500));
    let (status, _) = registry.get("/npmjs/left-dep/-/left-dep-1.2.0.tgz");
    assert_eq!(status, 200, "the proxy member serves what the group fetched");
    let npm = client(&registry, "all", "second", None);
    let dir = app(&registry.work, "second-app", &[("@acme/app-lib", "^1.0.0"), ("@pub/util", "^2.0.0")]);
    npm.ok(&dir, &["install"]);
    assert_eq!(require(&dir, "left-dep"), "hello from left-dep@1.2.0");
    assert_eq!(require(&dir, "@pub/util"), "hello from @pub/util@2.1.0");
    assert_eq!(require(&dir, "@acme/app-lib"), "hello from @acme/app-lib@1.0.0");
}

#[test]
fn a_name_held_locally_or_matching_private_never_resolves_through_the_upstream() {
    let (up, _) = upstream_with(&[
        ("@acme/secret", "1.0.0"),
        ("@acme/secret", "9.9.9"),
        ("acme-tools", "1.0.0"),
        ("left-dep", "1.0.0"),
    ]);
    // `private` covers `acme-*` only: `@acme/secret` is protected because the local member holds it.
    let registry = Server::start_with_config(&group_config(&up, "[\"acme-*\"]", "", ""));
    let token = registry.token("dev", "publish", Some("npm"));
    let local = client(&registry, "npm", "dev", Some(&token));
    let secret = make_package(&registry.work, "@acme/secret", "1.0.0");
    std::fs::write(secret.join("index.js"), "module.exports = 'the real, internal @acme/secret';\n").unwrap();
    local.ok(&secret, &["publish"]);

    let npm = client(&registry, "all", "victim", None);
    let dir = app(&registry.work, "victim-app", &[]);
    let viewed = npm.view(&dir, &["@acme/secret"]);
    assert_eq!(viewed["versions"], serde_json::json!(["1.0.0"]), "only the local versions: {viewed}");
    assert_eq!(viewed["version"], "1.0.0");
    assert_eq!(offered(&registry, "all", "@acme/secret"), ["1.0.0"]);
    let (ok, out, err) = npm.run(&dir, &["install", "@acme/secret@9.9.9", "--fetch-retries=0"]);
    assert!(!ok, "the upstream's 9.9.9 must not install through the group:\n{out}");
    assert!(err.contains("ETARGET") || err.contains("No matching version"), "{err}");
    let (status, _) = registry.get("/all/@acme/secret/-/secret-9.9.9.tgz");
    assert_eq!(status, 404, "nor its tarball, asked for by name");
    npm.ok(&dir, &["install", "@acme/secret"]);
    assert_eq!(require(&dir, "@acme/secret"), "the real, internal @acme/secret");

    // `acme-tools` matches `private` and is not held locally: not fetched from the upstream
    // either, though the upstream has it (the proxy member's own URL shows it does).
    let (ok, out, err) = npm.run(&dir, &["install", "acme-tools", "--fetch-retries=0"]);
    assert!(!ok, "a private name is never resolved through the proxy:\n{out}");
    assert!(err.contains("404") || err.contains("E404"), "{err}");
    let (status, _) = registry.get("/all/acme-tools/-/acme-tools-1.0.0.tgz");
    assert_eq!(status, 404);
    let admin = registry.token("admin", "admin", None);
    let pushes = registry.api_json("/api/v1/pushes?repository=npmjs", &admin);
    assert!(pushes["pushes"].as_array().unwrap().is_empty(), "nothing of a private name was fetched: {pushes}");
    assert_eq!(offered(&registry, "npmjs", "acme-tools"), ["1.0.0"], "the upstream does have it");

    // Public names still resolve through the group.
    npm.ok(&dir, &["install", "left-dep"]);
    assert_eq!(require(&dir, "left-dep"), "hello from left-dep@1.0.0");
}

#[test]
fn min_age_withholds_upstream_versions_younger_than_it() {
    // "Older than the setting" without waiting days: two proxies of one upstream, one with a
    // cool-off that no test outlives (1 h) and one of 3 s, read after sleeping past it. Only
    // lower bounds on elapsed time are relied on, so a slow machine cannot make it flaky.
    let (up, _) = upstream_with(&[("fresh", "1.0.0")]);
    let warm = "[[repository]]\nname = \"warm\"\nformat = \"npm\"\nupstream = \"UP\"\nallow_local_upstream = true\nmin_age = \"3s\"\n"
        .replace("UP", &up.repo_url("npm"));
    let registry = Server::start_with_config(&group_config(&up, "[]", "min_age = \"1h\"", &warm));

    // Published a moment ago: not offered, through the proxy or the group.
    assert_eq!(offered(&registry, "npmjs", "fresh"), Vec::<String>::new());
    assert_eq!(offered(&registry, "all", "fresh"), Vec::<String>::new());
    let npm = client(&registry, "all", "cautious", None);
    let dir = app(&registry.work, "cautious-app", &[]);
    let (ok, out, err) = npm.run(&dir, &["install", "fresh@1.0.0", "--fetch-retries=0"]);
    assert!(!ok, "a version younger than min_age must not install:\n{out}");
    assert!(err.contains("ETARGET") || err.contains("No matching version") || err.contains("404"), "{err}");
    let (status, _) = registry.get("/all/fresh/-/fresh-1.0.0.tgz");
    assert_eq!(status, 404, "nor is its tarball fetched");

    // Versions published to this registry are never held back, however new.
    let token = registry.token("dev", "publish", None);
    let mine = client(&registry, "npmjs", "dev", Some(&token));
    mine.ok(&make_package(&registry.work, "fresh", "1.5.0"), &["publish"]);
    assert_eq!(offered(&registry, "npmjs", "fresh"), ["1.5.0"]);

    // Older than the setting: offered and installable.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(offered(&registry, "warm", "fresh"), ["1.0.0"]);
    let npm = client(&registry, "warm", "patient", None);
    let dir = app(&registry.work, "patient-app", &[("fresh", "^1.0.0")]);
    npm.ok(&dir, &["install"]);
    let installed: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("node_modules/fresh/package.json")).unwrap()).unwrap();
    assert_eq!(installed["version"], "1.0.0");
    assert_eq!(offered(&registry, "npmjs", "fresh"), ["1.5.0"], "still too young for the 1 h proxy");
}

#[test]
fn npm_publish_to_the_group_lands_in_its_first_local_member() {
    let (up, _) = upstream_with(&[("left-dep", "1.0.0")]);
    let only_proxy = "[[repository]]\nname = \"mirror\"\nformat = \"npm\"\nmembers = [\"npmjs\"]\n";
    let registry = Server::start_with_config(&group_config(&up, "[]", "", only_proxy));
    let token = registry.token("dev", "publish", Some("npm"));
    let npm = client(&registry, "all", "dev", Some(&token));
    npm.ok(&make_package(&registry.work, "@acme/new-thing", "0.1.0"), &["publish"]);

    assert_eq!(offered(&registry, "npm", "@acme/new-thing"), ["0.1.0"], "stored in the local member");
    let admin = registry.token("admin", "admin", None);
    let pushes = registry.api_json("/api/v1/pushes?repository=npmjs", &admin);
    assert!(pushes["pushes"].as_array().unwrap().is_empty(), "not in the proxy member: {pushes}");
    let reader = client(&registry, "all", "reader", None);
    let dir = app(&registry.work, "reader-app", &[("@acme/new-thing", "0.1.0"), ("left-dep", "1.0.0")]);
    reader.ok(&dir, &["install"]);
    assert_eq!(require(&dir, "@acme/new-thing"), "hello from @acme/new-thing@0.1.0");

    // A group with no local member has nowhere to put it: a clear 4xx, nothing stored.
    let publisher = registry.token("anyone", "publish", None);
    let npm = client(&registry, "mirror", "stray", Some(&publisher));
    let (ok, out, err) =
        npm.run(&registry.work, &["publish", make_package(&registry.work, "stray", "1.0.0").to_str().unwrap()]);
    assert!(!ok, "{out}");
    assert!(err.contains("405") && err.contains("no local member"), "{err}");
    assert_eq!(offered(&registry, "npm", "stray"), Vec::<String>::new());
    let (status, _) = registry.get("/health");
    assert_eq!(status, 200, "the server stays up");
}

#[test]
fn group_settings_are_checked_at_start() {
    let base = "[[repository]]\nname = \"npm\"\nformat = \"npm\"\n\
                [[repository]]\nname = \"gems\"\nformat = \"rubygems\"\n\
                [[repository]]\nname = \"a\"\nformat = \"npm\"\nupstream = \"https://a.example\"\n\
                [[repository]]\nname = \"b\"\nformat = \"npm\"\nupstream = \"https://b.example\"\n";
    for (group, says) in [
        ("members = [\"npm\", \"nowhere\"]", "member `nowhere` is not a configured repository"),
        ("members = [\"npm\", \"gems\"]", "share its format"),
        ("members = [\"npm\", \"a\", \"b\"]", "at most one"),
        ("members = [\"npm\"]\nupstream = \"https://a.example\"", "no `upstream` of its own"),
    ] {
        let out = support::refused_start(&format!("{base}[[repository]]\nname = \"all\"\nformat = \"npm\"\n{group}\n"));
        assert!(out.contains(says), "{group}: {out}");
    }
    let nested = format!(
        "{base}[[repository]]\nname = \"all\"\nformat = \"npm\"\nmembers = [\"npm\"]\n\
         [[repository]]\nname = \"top\"\nformat = \"npm\"\nmembers = [\"all\", \"npm\"]\n"
    );
    assert!(support::refused_start(&nested).contains("groups do not nest"));
}

#[test]
fn a_group_of_local_repositories_reads_them_in_order_with_what_each_needs() {
    support::require_tool("node");
    let config = "[[repository]]\nname = \"team\"\nformat = \"npm\"\n\n\
                  [[repository]]\nname = \"legacy\"\nformat = \"npm\"\nread = \"token\"\n\n\
                  [[repository]]\nname = \"all\"\nformat = \"npm\"\nmembers = [\"team\", \"legacy\"]\n";
    let registry = Server::start_with_config(config);
    let token = registry.token("dev", "publish", None);
    let team = client(&registry, "team", "team", Some(&token));
    let legacy = client(&registry, "legacy", "legacy", Some(&token));
    let ours = make_package(&registry.work, "shared", "1.0.0");
    team.ok(&ours, &["publish"]);
    let theirs = registry.work.join("legacy-shared");
    std::fs::create_dir_all(&theirs).unwrap();
    for file in ["package.json", "index.js"] {
        std::fs::copy(ours.join(file), theirs.join(file)).unwrap();
    }
    std::fs::write(theirs.join("index.js"), "module.exports = 'the legacy copy';\n").unwrap();
    legacy.ok(&theirs, &["publish"]);
    legacy.ok(&make_package(&registry.work, "shared", "1.1.0"), &["publish"]);

    // `legacy` needs a token to read, so the group does too.
    let (status, _) = registry.get("/all/shared");
    assert_eq!(status, 401, "a group shows no more than its members would");
    let reader = registry.token("reader", "read", None);
    let npm = client(&registry, "all", "reader", Some(&reader));
    let dir = app(&registry.work, "reader-app", &[("shared", "1.0.0")]);
    let viewed = npm.view(&dir, &["shared"]);
    assert_eq!(viewed["versions"], serde_json::json!(["1.0.0", "1.1.0"]), "the union: {viewed}");
    npm.ok(&dir, &["install"]);
    assert_eq!(require(&dir, "shared"), "hello from shared@1.0.0", "the first member wins a version both hold");
}

/// `GET /{repo}/-/v1/search?text=`: (name, version, marked local) of each result, in order.
fn searched(server: &Server, repo: &str, text: &str) -> Vec<(String, String, bool)> {
    let (status, body) = server.get(&format!("/{repo}/-/v1/search?text={text}"));
    assert_eq!(status, 200, "{body}");
    let doc: Value = serde_json::from_str(&body).unwrap();
    doc["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let package = &o["package"];
            (
                package["name"].as_str().unwrap().to_string(),
                package["version"].as_str().unwrap().to_string(),
                o["local"] == true,
            )
        })
        .collect()
}

#[test]
fn npm_search_through_a_proxy_or_a_group_asks_the_upstream_with_local_packages_first() {
    support::require_tool("node");
    let (up, _) = upstream_with(&[("findme-public", "1.0.0"), ("findme-shared", "9.9.9")]);
    let registry = Server::start_with_config(&group_config(&up, "[]", "", ""));
    let token = registry.token("dev", "publish", Some("npm"));
    let local = client(&registry, "npm", "dev", Some(&token));
    local.ok(&make_package(&registry.work, "findme-shared", "1.0.0"), &["publish"]);

    // The proxy alone: what the upstream finds, though nothing of it is stored here yet.
    let proxied = searched(&registry, "npmjs", "findme");
    assert!(proxied.contains(&("findme-public".into(), "1.0.0".into(), false)), "{proxied:?}");
    assert!(proxied.contains(&("findme-shared".into(), "9.9.9".into(), false)), "{proxied:?}");

    // The group: the local member's package first (marked), standing for the upstream's of its
    // name, then the upstream's other results.
    let all = searched(&registry, "all", "findme");
    assert_eq!(
        all,
        [("findme-shared".into(), "1.0.0".into(), true), ("findme-public".into(), "1.0.0".into(), false)],
        "{all:?}"
    );
    // What `npm search` shows.
    let npm = client(&registry, "all", "searcher", None);
    let found: Value = serde_json::from_str(&npm.ok(&registry.work, &["search", "--json", "findme"])).unwrap();
    let found: Vec<(&str, &str)> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["version"].as_str().unwrap()))
        .collect();
    assert_eq!(found, [("findme-shared", "1.0.0"), ("findme-public", "1.0.0")]);

    // The upstream gone with nothing kept for this query: the group searches what it stores.
    drop(up);
    let stored = searched(&registry, "all", "findme-sh");
    assert_eq!(stored, [("findme-shared".into(), "1.0.0".into(), false)]);
}
