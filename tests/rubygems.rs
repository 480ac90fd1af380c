mod support;

use std::path::{Path, PathBuf};
use support::gem::{build_gem, gem_install, push, ruby_cmd, REPO};
use support::gem_fixture::{self, gzip, tar_of};
use support::{require_tool, run, Server};

#[test]
fn gem_push_install_bundle_and_yank() {
    require_tool("ruby");
    require_tool("gem");
    require_tool("bundle");
    let server = Server::start();
    let key = server.token("ci", "read,publish", None);
    let gems = server.work.join("gems");

    let dep = build_gem(&gems, "sluice-dep", "1.0.0", None, &[]);
    let hello = build_gem(&gems, "sluice-hello", "1.2.0", None, &[("sluice-dep", ">= 1.0")]);
    let (ok, out) = push(&server, &dep, &key);
    assert!(ok && out.contains("Successfully registered gem: sluice-dep (1.0.0)"), "{out}");
    let (ok, out) = push(&server, &hello, &key);
    assert!(ok && out.contains("Successfully registered gem: sluice-hello (1.2.0)"), "{out}");

    // The same version again is refused, with the message gem users know.
    let (ok, out) = push(&server, &hello, &key);
    assert!(!ok, "a duplicate push must fail: {out}");
    assert!(out.contains("Repushing of gem versions is not allowed"), "{out}");

    // A wrong key stores nothing.
    let newer = build_gem(&gems, "sluice-dep", "2.0.0", None, &[]);
    let (ok, out) = push(&server, &newer, "not-a-real-key");
    assert!(!ok, "a wrong key must be refused: {out}");
    assert!(out.contains("Access Denied"), "{out}");
    // So does a key that may only read.
    let reader = server.token("reader", "read", None);
    let (ok, out) = push(&server, &newer, &reader);
    assert!(!ok, "a read-only key must be refused: {out}");
    let (status, info) = server.get(&format!("/{REPO}/info/sluice-dep"));
    assert_eq!(status, 200);
    assert!(info.starts_with("---\n1.0.0 |checksum:") && !info.contains("2.0.0"), "{info}");

    // `gem install` resolves through the compact index and installs the dependency too.
    let installed = server.work.join("installed");
    let (ok, out) = gem_install(&server, "sluice-hello", &installed);
    assert!(ok, "gem install failed: {out}");
    assert!(installed.join("gems/sluice-hello-1.2.0/lib/sluice-hello.rb").exists(), "{out}");
    assert!(installed.join("gems/sluice-dep-1.0.0/lib/sluice-dep.rb").exists(), "{out}");
    assert!(installed.join("specifications/sluice-hello-1.2.0.gemspec").exists(), "{out}");

    // The Marshal index that `gem search` reads.
    let (ok, out, err) = run(ruby_cmd("gem", &server.work)
        .args(["search", "sluice", "--clear-sources", "--source"])
        .arg(server.repo_url(REPO)));
    assert!(ok && out.contains("sluice-dep (1.0.0)") && out.contains("sluice-hello (1.2.0)"), "{out}{err}");

    // `bundle install` against the server as the Gemfile's only source. Each app has its own
    // install folder; they share Bundler's compact index cache in HOME.
    let bundle = |app: &str, args: &[&str]| {
        let app = server.work.join(app);
        std::fs::create_dir_all(&app).unwrap();
        std::fs::write(app.join("Gemfile"), format!("source {:?}\n\ngem \"sluice-hello\"\n", server.repo_url(REPO)))
            .unwrap();
        run(ruby_cmd("bundle", &server.work)
            .args(args)
            .current_dir(&app)
            .env("BUNDLE_GEMFILE", app.join("Gemfile"))
            .env("BUNDLE_PATH", app.join("bundle")))
    };
    let app = server.work.join("app");
    let (ok, out, err) = bundle("app", &["install"]);
    assert!(ok, "bundle install failed: {out}{err}");
    let lock = std::fs::read_to_string(app.join("Gemfile.lock")).unwrap();
    assert!(lock.contains("sluice-hello (1.2.0)") && lock.contains("sluice-dep (1.0.0)"), "{lock}");
    let (ok, out, err) = bundle(
        "app",
        &["exec", "ruby", "-e", "require 'sluice-hello'; require 'sluice-dep'; puts SluiceHello::VERSION"],
    );
    assert!(ok && out.trim() == "1.2.0", "{out}{err}");
    // Bundler kept the compact index it resolved with.
    let versions_cached = walk(&server.work.join("home/.bundle")).iter().any(|p| p.ends_with("versions"));
    assert!(versions_cached, "bundler resolved through the compact index (its versions file is cached)");

    // `gem yank` takes the version out of resolution and downloads.
    let (ok, out, err) = run(ruby_cmd("gem", &server.work)
        .args(["yank", "sluice-hello", "-v", "1.2.0", "--host"])
        .arg(server.repo_url(REPO))
        .env("GEM_HOST_API_KEY", &key));
    assert!(ok && out.contains("Successfully deleted gem: sluice-hello (1.2.0)"), "{out}{err}");
    let (status, info) = server.get(&format!("/{REPO}/info/sluice-hello"));
    assert_eq!((status, info.as_str()), (200, "---\n"));
    let (_, versions) = server.get(&format!("/{REPO}/versions"));
    assert!(versions.contains("\nsluice-hello -1.2.0 "), "{versions}");
    assert_eq!(server.get(&format!("/{REPO}/gems/sluice-hello-1.2.0.gem")).0, 404);
    let (ok, out) = gem_install(&server, "sluice-hello", &server.work.join("after-yank"));
    assert!(!ok, "a yanked gem must not install: {out}");
    // Bundler updates its cached compact index (ranges, then whole files when the tail does not
    // add up) and no longer finds the gem.
    let (ok, out, err) = bundle("app-after-yank", &["install"]);
    assert!(!ok, "bundle install must not find a yanked gem: {out}{err}");
    assert!((out.clone() + &err).contains("sluice-hello"), "{out}{err}");
    // Its dependency is still there.
    let (ok, out) = gem_install(&server, "sluice-dep", &server.work.join("dep-only"));
    assert!(ok, "{out}");
}

#[test]
fn platform_gems_are_separate_files_of_one_version() {
    require_tool("gem");
    let server = Server::start();
    let key = server.token("ci", "read,publish", None);
    let gems = server.work.join("gems");
    let pure = build_gem(&gems, "sluice-native", "0.3.0", None, &[]);
    let linux = build_gem(&gems, "sluice-native", "0.3.0", Some("x86_64-linux"), &[]);
    assert!(push(&server, &pure, &key).0);
    let (ok, out) = push(&server, &linux, &key);
    assert!(ok && out.contains("sluice-native (0.3.0-x86_64-linux)"), "{out}");
    let (_, info) = server.get(&format!("/{REPO}/info/sluice-native"));
    assert!(info.contains("\n0.3.0 |checksum:") && info.contains("\n0.3.0-x86_64-linux |checksum:"), "{info}");

    let installed = server.work.join("installed");
    let (ok, out, err) = run(ruby_cmd("gem", &server.work)
        .args(["install", "sluice-native", "--platform", "x86_64-linux", "--clear-sources", "--source"])
        .arg(server.repo_url(REPO))
        .arg("--install-dir")
        .arg(&installed)
        .arg("--no-document"));
    assert!(ok, "{out}{err}");
    assert!(installed.join("gems/sluice-native-0.3.0-x86_64-linux").exists(), "{out}");
}

/// Builds a gem with `gem build`, then returns its tar entries so that broken copies can be made.
fn gem_entries(server: &Server) -> Vec<(String, Vec<u8>)> {
    gem_fixture::entries(&build_gem(&server.work.join("gems"), "sluice-broken", "1.0.0", None, &[]))
}

#[test]
fn corrupt_gems_are_refused_and_nothing_is_stored() {
    require_tool("gem");
    let mut server = Server::start();
    let key = server.token("ci", "read,publish", None);
    let entries = gem_entries(&server);
    let without = |name: &str| entries.iter().filter(|(p, _)| p != name).cloned().collect::<Vec<_>>();
    let replacing = |name: &str, bytes: Vec<u8>, keep_checksums: bool| {
        entries
            .iter()
            .filter(|(p, _)| keep_checksums || p != "checksums.yaml.gz")
            .map(|(p, b)| if p == name { (p.clone(), bytes.clone()) } else { (p.clone(), b.clone()) })
            .collect::<Vec<_>>()
    };
    let cases = [
        (
            "bad gzip in metadata.gz",
            tar_of(&replacing("metadata.gz", b"this is not gzip".to_vec(), false)),
            "not valid gzip",
        ),
        ("bad gzip in data.tar.gz", tar_of(&replacing("data.tar.gz", b"this is not gzip".to_vec(), false)), "gzip"),
        ("missing metadata", tar_of(&without("metadata.gz")), "metadata.gz"),
        (
            "checksum mismatch",
            tar_of(&replacing("data.tar.gz", gzip(&tar_of(&[("lib/other.rb".into(), b"1".to_vec())])), true)),
            "checksum mismatch",
        ),
        ("not a tar at all", b"GIF89a garbage".repeat(100), "not a valid gem"),
    ];
    for (what, body, expected) in cases {
        let response = server
            .http()
            .post(format!("{}/api/v1/gems", server.repo_url(REPO)))
            .header("Authorization", key.as_str())
            .header("Content-Type", "application/octet-stream")
            .body(body)
            .send()
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().unwrap();
        println!("{what}: {status} {text}");
        assert!((400..500).contains(&status), "{what}: expected a 4xx, got {status} {text}");
        assert!(text.contains(expected), "{what}: {text}");
    }
    assert!(server.is_alive());
    assert!(server.blob_files().is_empty(), "refused gems left files: {:?}", server.blob_files());
    assert_eq!(server.get(&format!("/{REPO}/names")).1, "---\n\n");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// A gated push stays invisible to `gem install` and `bundle install` until its pipeline passes.
#[test]
fn gated_gems_appear_only_after_their_pipeline_passes() {
    require_tool("gem");
    require_tool("bundle");
    let server = Server::gated(REPO, "rubygems", "unpacked:\n  script:\n    - test -f pkg/lib/gated-gem.rb\n", "");
    let key = server.token("pusher", "publish", Some(REPO));
    let runner = server.token("runner", "runner", None);
    let admin = server.token("admin", "admin", None);
    let gem = build_gem(&server.work, "gated-gem", "1.0.0", None, &[]);
    let (ok, out) = push(&server, &gem, &key);
    assert!(ok, "{out}");

    let dir = server.work.join("gems");
    let (ok, out) = gem_install(&server, "gated-gem", &dir);
    assert!(!ok, "a pending gem must not install: {out}");
    let app = server.work.join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("Gemfile"), format!("source {:?}\ngem \"gated-gem\"\n", server.repo_url(REPO))).unwrap();
    let bundle = |app: &Path| {
        run(ruby_cmd("bundle", &server.work).arg("install").current_dir(app).env("BUNDLE_PATH", app.join("vendor")))
    };
    assert!(!bundle(&app).0, "bundle must not resolve a pending gem");

    server.run_one_job(&runner);
    assert_eq!(server.latest_pipeline(REPO, &admin)["pipeline"]["status"], "success");
    let (ok, out) = gem_install(&server, "gated-gem", &dir);
    assert!(ok, "{out}");
    assert!(dir.join("gems/gated-gem-1.0.0/lib/gated-gem.rb").is_file());
    let (ok, _, err) = bundle(&app);
    assert!(ok, "bundle install after the pipeline passed: {err}");
}

/// `Marshal.load` of a quick spec in real Ruby: the platform's class, whether it equals
/// `Gem::Platform.new(PLATFORM)`, and the description.
fn load_quick_spec(server: &Server, file: &str, platform: &str) -> String {
    let url = format!("{}/quick/Marshal.4.8/{file}", server.repo_url(REPO));
    let body = server.http().get(&url).send().unwrap();
    assert_eq!(body.status().as_u16(), 200, "{url}");
    let path = server.work.join(file);
    std::fs::write(&path, body.bytes().unwrap()).unwrap();
    let script = "require 'rubygems'; s = Marshal.load(Gem::Util.inflate(File.binread(ARGV[0]))); \
                  print [s.platform.class, s.platform == Gem::Platform.new(ARGV[1]), s.description.inspect, s.full_name].join(' ')";
    let (ok, out, err) = run(ruby_cmd("ruby", &server.work).args(["-e", script]).arg(&path).arg(platform));
    assert!(ok, "ruby could not load the quick spec: {err}");
    out
}

#[test]
fn quick_specs_carry_gem_platform_objects() {
    require_tool("ruby");
    require_tool("gem");
    let server = Server::start();
    let key = server.token("ci", "read,publish", None);
    let gems = server.work.join("gems");
    for platform in [None, Some("java"), Some("x86_64-linux"), Some("arm64-darwin-21")] {
        assert!(push(&server, &build_gem(&gems, "sluice-plat", "1.0.0", platform, &[]), &key).0);
    }
    assert_eq!(
        load_quick_spec(&server, "sluice-plat-1.0.0-java.gemspec.rz", "java"),
        "Gem::Platform true \"\" sluice-plat-1.0.0-java"
    );
    assert_eq!(
        load_quick_spec(&server, "sluice-plat-1.0.0-x86_64-linux.gemspec.rz", "x86_64-linux"),
        "Gem::Platform true \"\" sluice-plat-1.0.0-x86_64-linux"
    );
    assert_eq!(
        load_quick_spec(&server, "sluice-plat-1.0.0-arm64-darwin-21.gemspec.rz", "arm64-darwin-21"),
        "Gem::Platform true \"\" sluice-plat-1.0.0-arm64-darwin-21"
    );
    // Pure-Ruby gems keep the "ruby" String, as RubyGems writes it.
    assert_eq!(load_quick_spec(&server, "sluice-plat-1.0.0.gemspec.rz", "ruby"), "String true \"\" sluice-plat-1.0.0");
}

#[test]
fn empty_indexes_have_the_compact_index_forms() {
    let server = Server::start();
    assert_eq!(server.get(&format!("/{REPO}/names")), (200, "---\n\n".to_string()));
    let (status, versions) = server.get(&format!("/{REPO}/versions"));
    assert_eq!(status, 200);
    assert!(
        versions.starts_with("created_at: ") && versions.ends_with("Z\n---\n") && versions.lines().count() == 2,
        "{versions:?}"
    );
    assert_eq!(server.get(&format!("/{REPO}/info/nothing")).0, 404);
    // Marshal.dump([]) for every Marshal index, gzipped.
    for index in ["specs.4.8.gz", "latest_specs.4.8.gz", "prerelease_specs.4.8.gz"] {
        let body = server.http().get(format!("{}/{index}", server.repo_url(REPO))).send().unwrap().bytes().unwrap();
        assert_eq!(gem_fixture::gunzip(&body), b"\x04\x08[\x00", "{index}");
    }
}

/// A gemspec may hold only the YAML tags RubyGems writes. Any other `!ruby/object:` tag is a
/// gadget chain aimed at clients that load YAML unsafely: refused, never stored or served.
#[test]
fn gems_with_foreign_yaml_objects_are_refused() {
    require_tool("gem");
    let mut server = Server::start();
    let key = server.token("ci", "read,publish", None);
    let gem = build_gem(&server.work.join("gems"), "sluice-gadget", "1.0.0", None, &[]);
    let cases = [
        ("an object for a field", "summary: !ruby/object:Gem::Installer\n  i: x\n"),
        ("a nested object", "summary: Test gem sluice-gadget\nextra: !ruby/hash:ActiveSupport::HashWithIndifferentAccess\n  a: b\n"),
        (
            "an object inside a requirement",
            "summary: Test gem sluice-gadget\nextra: !ruby/object:Gem::Requirement\n  requirements: !ruby/object:Gem::Package::TarReader\n    io: x\n",
        ),
    ];
    for (what, replacement) in cases {
        let crafted = gem_fixture::with_edited_metadata(&gem, |yaml| {
            let start = yaml.find("summary:").unwrap();
            let end = start + yaml[start..].find('\n').unwrap() + 1;
            format!("{}{replacement}{}", &yaml[..start], &yaml[end..])
        });
        // `gem push` itself refuses to load such a gem, so an attacker sends it by hand.
        let response = server
            .http()
            .post(format!("{}/api/v1/gems", server.repo_url(REPO)))
            .header("Authorization", key.as_str())
            .header("Content-Type", "application/octet-stream")
            .body(crafted)
            .send()
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().unwrap();
        assert!((400..500).contains(&status), "{what}: expected a 4xx, got {status} {text}");
        assert!(text.contains("YAML tag"), "{what}: {text}");
    }
    assert!(server.is_alive());
    assert!(server.blob_files().is_empty(), "refused gems left files: {:?}", server.blob_files());
    assert_eq!(server.get(&format!("/{REPO}/info/sluice-gadget")).0, 404);
    assert_eq!(server.get(&format!("/{REPO}/quick/Marshal.4.8/sluice-gadget-1.0.0.gemspec.rz")).0, 404);
    // The real gem, RubyGems' own tags only, is fine.
    assert!(push(&server, &gem, &key).0);
}

/// `/versions`, `/info/*` and `/names` carry the older `Digest: sha-256=<base64>` header that
/// clients still read, next to `Repr-Digest`.
#[test]
fn compact_index_files_carry_digest_headers() {
    use base64::Engine;
    use sha2::Digest;
    require_tool("gem");
    let server = Server::start();
    let key = server.token("ci", "read,publish", None);
    assert!(push(&server, &build_gem(&server.work.join("gems"), "sluice-digest", "1.0.0", None, &[]), &key).0);
    for path in ["versions", "info/sluice-digest", "names"] {
        let response = server.http().get(format!("{}/{path}", server.repo_url(REPO))).send().unwrap();
        let header =
            |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        let (digest, repr) = (header("digest"), header("repr-digest"));
        let body = response.bytes().unwrap();
        let sum = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&body));
        assert_eq!(digest, format!("sha-256={sum}"), "{path}");
        assert_eq!(repr, format!("sha-256=:{sum}:"), "{path}");
    }
}
