//! A RubyGems proxy repository (issue 15): a `sluice serve` whose `gems` repository proxies a
//! second `sluice serve` on loopback, to which the tests push with real `gem push`. Real
//! `bundle install` and `gem install` go through the proxy with fresh caches, also once the
//! upstream is stopped; a group of a local and a proxy member; `min_age`.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use support::fake_upstream::FakeUpstream;
use support::gem::{build_gem, gem_install_from, push, BundleApp, REPO};
use support::{require_tool, Server};

fn require_ruby() {
    for tool in ["ruby", "gem", "bundle"] {
        require_tool(tool);
    }
}

/// A gem to push: name, version, runtime dependencies (name, requirement).
type GemSpec<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

/// The upstream: a plain Sluice whose `rubygems` repository has these gems (name, version,
/// runtime dependencies), pushed with real `gem push`.
fn upstream_with(gems: &[GemSpec]) -> Server {
    let up = Server::start();
    let key = up.token("publisher", "read,publish", None);
    let dir = up.work.join("gems");
    for (name, version, deps) in gems {
        let gem = build_gem(&dir, name, version, None, deps);
        let (ok, out) = push(&up, &gem, &key);
        assert!(ok, "gem push {name} {version}: {out}");
    }
    up
}

fn proxy_repo(name: &str, up: &Server, extra: &str) -> String {
    format!(
        "[[repository]]\nname = \"{name}\"\nformat = \"rubygems\"\nupstream = \"{}\"\n# The upstream runs on loopback.\nallow_local_upstream = true\n{extra}\n",
        up.repo_url(REPO)
    )
}

/// `/versions` as Bundler reads it: each gem's versions (lines add, `-VERSION` removes) and the
/// checksum of its last line.
fn bundler_reads(versions: &str) -> BTreeMap<String, (Vec<String>, String)> {
    let (_, lines) = versions.split_once("---\n").expect("a compact index header");
    let mut gems: BTreeMap<String, (Vec<String>, String)> = BTreeMap::new();
    for line in lines.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let gem = gems.entry(parts[0].to_string()).or_default();
        gem.1 = parts.get(2).unwrap_or(&"").to_string();
        for v in parts[1].split(',') {
            match v.strip_prefix('-') {
                Some(gone) => gem.0.retain(|x| x != gone),
                None => gem.0.push(v.to_string()),
            }
        }
    }
    gems
}

fn md5_hex(body: &str) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(body.as_bytes()))
}

fn installed(dir: &Path, gem: &str) -> bool {
    dir.join("gems").join(gem).is_dir()
}

#[test]
fn bundle_and_gem_install_through_the_proxy_and_from_its_cache_once_the_upstream_is_down() {
    require_ruby();
    let many: Vec<String> = (0..12).map(|i| format!("1.{i}.0")).collect();
    let mut gems: Vec<GemSpec> = vec![
        ("sluice-core", "1.0.0", &[]),
        ("sluice-app", "2.0.0", &[("sluice-core", ">= 1.0")]),
        ("sluice-tool", "0.3.0", &[]),
    ];
    gems.extend(many.iter().map(|v| ("sluice-many", v.as_str(), &[] as &[(&str, &str)])));
    let mut up = upstream_with(&gems);
    let proxy = Server::start_with_config(&proxy_repo("gems", &up, "metadata_ttl = \"1s\""));
    let source = proxy.repo_url("gems");

    // Nothing is published to the proxy: its compact index is the upstream's, byte for byte, so
    // every checksum in /versions is the MD5 of the /info served.
    let (status, versions) = proxy.get("/gems/versions");
    assert_eq!(status, 200, "{versions}");
    assert_eq!(versions, up.get(&format!("/{REPO}/versions")).1);
    for (name, (listed, checksum)) in bundler_reads(&versions) {
        let (status, info) = proxy.get(&format!("/gems/info/{name}"));
        assert_eq!(status, 200);
        assert_eq!(checksum, md5_hex(&info), "{name}");
        assert_eq!(listed.len(), info.lines().count() - 1, "{name}");
    }

    // `gem install` of a gem with a dependency, both only upstream.
    let gem_dir = proxy.work.join("gem-installed");
    let (ok, out) = gem_install_from(&proxy.work.join("gem-client"), &source, "sluice-app", &gem_dir);
    assert!(ok, "gem install through the proxy failed: {out}");
    assert!(installed(&gem_dir, "sluice-app-2.0.0") && installed(&gem_dir, "sluice-core-1.0.0"), "{out}");

    // `bundle install` with fresh caches: a gem with a dependency, and one of many versions.
    let gemfile = [("sluice-app", None), ("sluice-many", Some("~> 1.3"))];
    let app = BundleApp::new(&proxy.work.join("first"), &source, &gemfile);
    let (ok, out) = app.run(&["install"]);
    assert!(ok, "bundle install through the proxy failed: {out}");
    let lock = app.locked();
    for entry in ["sluice-app (2.0.0)", "sluice-core (1.0.0)", "sluice-many (1.11.0)"] {
        assert!(lock.contains(entry), "{entry} in\n{lock}");
    }
    let (ok, out) =
        app.run(&["exec", "ruby", "-e", "require 'sluice-app'; require 'sluice-many'; puts SluiceMany::VERSION"]);
    assert!(ok && out.trim().ends_with("1.11.0"), "{out}");

    // Each gem came once, checked against the upstream's sha256, and is in the audit log as a
    // push by `upstream` with the URL it came from.
    let fetched = proxy.upstream_fetches("gems", &up.repo_url(REPO));
    assert_eq!(fetched, ["sluice-app 2.0.0", "sluice-core 1.0.0", "sluice-many 1.11.0"]);
    assert!(!proxy.log().contains("no digest to verify"), "every gem was verified against its checksum");

    // A new version upstream: once the kept copy expires, the project's `bundle update` finds
    // it, updating its cached compact index (a ranged request for /versions, whose start the
    // client holds).
    let key = up.token("publisher-2", "read,publish", None);
    let newer = build_gem(&up.work.join("gems"), "sluice-many", "1.12.0", None, &[]);
    assert!(push(&up, &newer, &key).0);
    std::thread::sleep(Duration::from_millis(1200));
    let (ok, out) = app.run(&["update", "sluice-many"]);
    assert!(ok, "bundle update through the proxy failed: {out}");
    assert!(app.locked().contains("sluice-many (1.12.0)"), "{}", app.locked());
    // That request, as Bundler sends it: the new end only, checked against the whole body's MD5.
    let (_, now) = proxy.get("/gems/versions");
    let held = &versions[..versions.len() - 1];
    let ranged = proxy
        .http()
        .get(format!("{source}/versions"))
        .header("range", format!("bytes={}-", held.len() - 1))
        .header("if-none-match", format!("\"{}\"", md5_hex(held)))
        .send()
        .unwrap();
    assert_eq!(ranged.status().as_u16(), 206);
    assert_eq!(ranged.headers()["etag"].to_str().unwrap(), format!("\"{}\"", md5_hex(&now)));
    assert_eq!(ranged.text().unwrap(), now[held.len() - 1..]);

    // The upstream goes away and the kept metadata expires (1 s): fresh clients still install
    // what was fetched.
    up.kill();
    std::thread::sleep(Duration::from_millis(1500));
    let again = BundleApp::new(&proxy.work.join("second"), &source, &gemfile);
    let (ok, out) = again.run(&["install"]);
    assert!(ok, "bundle install from the proxy's cache failed: {out}");
    assert!(again.locked().contains("sluice-many (1.12.0)"), "{}", again.locked());
    let gem_dir = proxy.work.join("gem-installed-again");
    let (ok, out) = gem_install_from(&proxy.work.join("gem-client-2"), &source, "sluice-app", &gem_dir);
    assert!(ok, "gem install from the proxy's cache failed: {out}");
    assert!(installed(&gem_dir, "sluice-core-1.0.0"), "{out}");

    // A gem the proxy never fetched cannot come from anywhere: a clear error, and the server
    // stays up.
    let (status, body) = proxy.get("/gems/gems/sluice-tool-0.3.0.gem");
    assert_eq!(status, 502, "{body}");
    assert_eq!(proxy.get("/gems/info/sluice-app").0, 200, "the proxy is still up");
}

/// An upstream whose `/info` promises one gem (its `checksum:`) and whose `/gems/` sends another.
fn liar(work: &Path) -> FakeUpstream {
    use axum::routing::get;
    use sha2::{Digest, Sha256};

    let promised = std::fs::read(build_gem(&work.join("promised"), "liar", "1.0.0", None, &[])).unwrap();
    let sent = support::gem_fixture::with_edited_metadata(
        &build_gem(&work.join("sent"), "liar", "1.0.0", None, &[]),
        |yaml| yaml.replace("Test gem liar", "Something else"),
    );
    let info = format!("---\n1.0.0 |checksum:{}\n", hex::encode(Sha256::digest(&promised)));
    let versions = format!("created_at: 2024-01-01T00:00:00Z\n---\nliar 1.0.0 {}\n", md5_hex(&info));
    FakeUpstream::serve(|_| {
        axum::Router::new()
            .route("/rubygems/versions", get(move || async move { versions }))
            .route("/rubygems/info/liar", get(move || async move { info }))
            .route("/rubygems/gems/liar-1.0.0.gem", get(move || async move { sent }))
    })
}

#[test]
fn a_gem_that_does_not_match_the_upstream_checksum_is_refused_and_not_stored() {
    require_ruby();
    let scratch = tempfile::tempdir().unwrap();
    let liar = liar(scratch.path());
    let mut proxy = Server::start_with_config(&format!(
        "[[repository]]\nname = \"gems\"\nformat = \"rubygems\"\nupstream = \"{}/rubygems\"\nallow_local_upstream = true\n",
        liar.origin
    ));
    let source = proxy.repo_url("gems");
    let app = BundleApp::new(&proxy.work.join("victim"), &source, &[("liar", None)]);
    let (ok, out) = app.run(&["install"]);
    assert!(!ok, "bundle must not install a gem its registry could not verify:\n{out}");
    let gem_dir = proxy.work.join("gem-victim");
    let (ok, out) = gem_install_from(&proxy.work.join("gem-client"), &source, "liar", &gem_dir);
    assert!(!ok, "gem must not install it either:\n{out}");
    assert!(!installed(&gem_dir, "liar-1.0.0"));

    let (status, body) = proxy.get("/gems/gems/liar-1.0.0.gem");
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("does not match the sha256 digest"), "the client is told why: {body}");
    let admin = proxy.token("admin", "admin", None);
    assert_eq!(proxy.api_json("/api/v1/pushes?repository=gems", &admin)["pushes"], serde_json::json!([]));
    assert!(proxy.is_alive());
}

#[test]
fn bundle_resolves_through_a_group_of_a_local_and_a_proxy_member() {
    require_ruby();
    // Upstream: a public gem, and a public `acme-secret` that must never win over the internal
    // one, and an `acme-` name the company has not published (yet).
    let up =
        upstream_with(&[("sluice-core", "1.0.0", &[]), ("acme-secret", "9.9.9", &[]), ("acme-other", "1.0.0", &[])]);
    let registry = Server::start_with_config(&format!(
        "[[repository]]\nname = \"{REPO}\"\nformat = \"rubygems\"\nprivate = [\"acme-*\"]\n\n{}\n\
         [[repository]]\nname = \"all\"\nformat = \"rubygems\"\nmembers = [\"{REPO}\", \"rubygemsorg\"]\n",
        proxy_repo("rubygemsorg", &up, "")
    ));
    let key = registry.token("dev", "read,publish", None);
    let internal = build_gem(&registry.work.join("gems"), "acme-secret", "1.0.0", None, &[("sluice-core", ">= 1.0")]);
    let (ok, out) = push(&registry, &internal, &key);
    assert!(ok, "{out}");

    let source = registry.repo_url("all");
    let app = BundleApp::new(&registry.work.join("app"), &source, &[("acme-secret", None)]);
    let (ok, out) = app.run(&["install"]);
    assert!(ok, "bundle install through the group failed: {out}");
    let lock = app.locked();
    assert!(lock.contains("acme-secret (1.0.0)") && lock.contains("sluice-core (1.0.0)"), "{lock}");
    assert!(!lock.contains("9.9.9"), "{lock}");

    // The group's compact index agrees with itself: the internal gem's last line in /versions
    // lists only its version, with the MD5 of the /info served.
    let (_, versions) = registry.get("/all/versions");
    let read = bundler_reads(&versions);
    let (_, info) = registry.get("/all/info/acme-secret");
    assert_eq!(read["acme-secret"], (vec!["1.0.0".to_string()], md5_hex(&info)), "{versions}");
    assert!(!info.contains("9.9.9"), "{info}");
    assert_eq!(read["sluice-core"].1, md5_hex(&registry.get("/all/info/sluice-core").1));
    // The public version is not fetched, nor a private name only the upstream has.
    assert_eq!(registry.get("/all/gems/acme-secret-9.9.9.gem").0, 404);
    assert_eq!(registry.get("/all/info/acme-other").0, 404);
    assert_eq!(registry.get("/all/gems/acme-other-1.0.0.gem").0, 404);
    // What the group fetched is in the proxy member.
    assert_eq!(registry.get("/rubygemsorg/gems/sluice-core-1.0.0.gem").0, 200);
}

#[test]
fn min_age_withholds_upstream_versions_younger_than_it() {
    require_ruby();
    // As for npm: one proxy with a cool-off no test outlives (1 h) and one of 3 s, read after
    // sleeping past it; only lower bounds on elapsed time are relied on.
    let up = upstream_with(&[("fresh", "1.0.0", &[])]);
    let (status, times) = up.get(&format!("/{REPO}/api/v1/versions/fresh.json"));
    assert_eq!(status, 200, "the upstream gives publish times: {times}");
    let registry = Server::start_with_config(&format!(
        "{}\n{}",
        proxy_repo("cautious", &up, "min_age = \"1h\""),
        proxy_repo("warm", &up, "min_age = \"3s\"")
    ));

    let (status, info) = registry.get("/cautious/info/fresh");
    assert_eq!((status, info.as_str()), (200, "---\n"), "published a moment ago: not offered");
    let app = BundleApp::new(&registry.work.join("cautious-app"), &registry.repo_url("cautious"), &[("fresh", None)]);
    let (ok, out) = app.run(&["install"]);
    assert!(!ok, "a version younger than min_age must not install:\n{out}");
    assert_eq!(registry.get("/cautious/gems/fresh-1.0.0.gem").0, 404, "nor is its gem fetched");

    std::thread::sleep(Duration::from_secs(4));
    let app = BundleApp::new(&registry.work.join("warm-app"), &registry.repo_url("warm"), &[("fresh", None)]);
    let (ok, out) = app.run(&["install"]);
    assert!(ok, "older than min_age: installable\n{out}");
    assert!(app.locked().contains("fresh (1.0.0)"), "{}", app.locked());
    assert_eq!(registry.get("/cautious/info/fresh").1, "---\n", "still too young for the 1 h proxy");
}

#[test]
fn gems_published_to_the_proxy_win_and_bundler_finds_every_checksum_right() {
    require_ruby();
    let up = upstream_with(&[("sluice-mixed", "1.0.0", &[]), ("sluice-mixed", "1.1.0", &[])]);
    // The proxy repository itself is named `rubygems`, so `gem push` goes to it.
    let registry = Server::start_with_config(&proxy_repo(REPO, &up, ""));
    let key = registry.token("dev", "read,publish", None);
    let dir = registry.work.join("gems");
    // 1.1.0 again (ours wins over the upstream's) and 2.0.0, only here. `gem build` is
    // reproducible (the same sources give the same bytes on the same day), so our 1.1.0 says
    // something else in its metadata, or the two could not be told apart by their checksums.
    for version in ["1.1.0", "2.0.0"] {
        let built = build_gem(&dir, "sluice-mixed", version, None, &[]);
        let ours = support::gem_fixture::with_edited_metadata(&built, |yaml| {
            yaml.replace("Test gem sluice-mixed", "Our own build of sluice-mixed")
        });
        std::fs::write(&built, ours).unwrap();
        let (ok, out) = push(&registry, &built, &key);
        assert!(ok, "gem push to the proxy repository: {out}");
    }
    let (_, info) = registry.get(&format!("/{REPO}/info/sluice-mixed"));
    let (_, upstream_info) = up.get(&format!("/{REPO}/info/sluice-mixed"));
    let upstream_1_1 = upstream_info.lines().find(|l| l.starts_with("1.1.0 ")).unwrap();
    assert!(!info.contains(upstream_1_1), "the upstream's 1.1.0 is replaced by ours: {info}");
    assert_eq!(info.lines().filter(|l| l.starts_with("1.")).count(), 2, "{info}");
    let (_, versions) = registry.get(&format!("/{REPO}/versions"));
    let (listed, checksum) = &bundler_reads(&versions)["sluice-mixed"];
    assert_eq!(checksum, &md5_hex(&info), "{versions}");
    let mut listed = listed.clone();
    listed.sort();
    assert_eq!(listed, ["1.0.0", "1.1.0", "2.0.0"], "{versions}");

    let source = registry.repo_url(REPO);
    for (requirement, resolved) in [("~> 1.0", "1.1.0"), (">= 2", "2.0.0")] {
        let app = BundleApp::new(
            &registry.work.join(format!("app-{resolved}")),
            &source,
            &[("sluice-mixed", Some(requirement))],
        );
        let (ok, out) = app.run(&["install"]);
        assert!(ok, "bundle install {requirement}: {out}");
        assert!(app.locked().contains(&format!("sluice-mixed ({resolved})")), "{}", app.locked());
        assert!(!out.contains("MisMatchedChecksum") && !out.contains("does not match the checksum"), "{out}");
        let (ok, out) = app.run(&["exec", "ruby", "-e", "puts Gem.loaded_specs['sluice-mixed'].version"]);
        assert!(ok && out.trim().ends_with(resolved), "{out}");
    }
    let admin = registry.token("admin", "admin", None);
    let pushes = registry.api_json(&format!("/api/v1/pushes?repository={REPO}"), &admin);
    assert!(
        pushes["pushes"].as_array().unwrap().iter().all(|p| p["actor"] != "upstream"),
        "nothing was fetched: {pushes}"
    );
}
