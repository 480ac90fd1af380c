//! The RubyGems compact index as kept documents (issue 13): `/versions` only grows between
//! compactions, so a second `bundle install` after a push fetches just its new end with a
//! `Range` request, verified by the ETag, and resolves the new version.

mod support;

use std::path::Path;

use support::gem::{build_gem, push, ruby_cmd, REPO};
use support::{require_tool, run, Server};

/// `bundle ARGS` for an app whose Gemfile asks for `requirement` of `sluice-grow`; every run
/// shares one HOME, so Bundler's compact index cache carries over between runs.
fn bundle(server: &Server, app: &Path, requirement: &str, args: &[&str]) -> (bool, String) {
    std::fs::create_dir_all(app).unwrap();
    std::fs::write(
        app.join("Gemfile"),
        format!("source {:?}\n\ngem \"sluice-grow\", {requirement:?}\n", server.repo_url(REPO)),
    )
    .unwrap();
    let (ok, out, err) = run(ruby_cmd("bundle", &server.work)
        .args(args)
        .current_dir(app)
        .env("BUNDLE_GEMFILE", app.join("Gemfile"))
        .env("BUNDLE_PATH", app.join("bundle")));
    (ok, out + &err)
}

#[test]
fn a_second_bundle_install_fetches_only_the_new_end_of_versions() {
    require_tool("gem");
    require_tool("bundle");
    let server = Server::start();
    let key = server.token("ci", "read,publish", None);
    let gems = server.work.join("gems");
    for (name, version) in [("sluice-grow", "1.0.0"), ("sluice-other", "0.1.0")] {
        let (ok, out) = push(&server, &build_gem(&gems, name, version, None, &[]), &key);
        assert!(ok, "gem push {name}: {out}");
    }
    let app = server.work.join("app");
    let (ok, out) = bundle(&server, &app, ">= 1.0", &["install"]);
    assert!(ok, "first bundle install: {out}");
    let ranged_before = server.log().matches("served a range of a kept document").count();

    // The repository changes between the two runs.
    let (ok, out) = push(&server, &build_gem(&gems, "sluice-grow", "1.1.0", None, &[]), &key);
    assert!(ok, "gem push 1.1.0: {out}");
    let (ok, out) = bundle(&server, &app, ">= 1.1", &["install"]);
    assert!(ok, "second bundle install: {out}");
    let lock = std::fs::read_to_string(app.join("Gemfile.lock")).unwrap();
    assert!(lock.contains("sluice-grow (1.1.0)"), "the new version resolved: {lock}");

    let log = server.log();
    let ranged: Vec<&str> =
        log.lines().filter(|l| l.contains("served a range of a kept document")).skip(ranged_before).collect();
    assert!(ranged.iter().any(|l| l.contains("/versions")), "no ranged /versions request in the log: {ranged:?}");
    assert!(
        !log.contains("MisMatchedChecksumError") && !out.contains("checksum"),
        "Bundler accepted the appended bytes: {out}"
    );
}

#[test]
fn versions_is_compacted_at_its_first_change_after_the_compaction_interval() {
    require_tool("gem");
    require_tool("bundle");
    let server = Server::start_with_config("document_compact_secs = 2\n");
    let key = server.token("ci", "read,publish", None);
    let gems = server.work.join("gems");
    let push_grow = |version: &str| {
        let (ok, out) = push(&server, &build_gem(&gems, "sluice-grow", version, None, &[]), &key);
        assert!(ok, "gem push {version}: {out}");
    };
    let lines_of_grow = || {
        let (status, body) = server.get("/rubygems/versions");
        assert_eq!(status, 200);
        body.lines().filter(|l| l.starts_with("sluice-grow ")).map(str::to_string).collect::<Vec<_>>()
    };
    push_grow("1.0.0");
    assert_eq!(lines_of_grow().len(), 1);
    let app = server.work.join("app");
    let (ok, out) = bundle(&server, &app, ">= 1.0", &["install"]);
    assert!(ok, "bundle install: {out}");

    push_grow("1.1.0");
    let appended = lines_of_grow();
    assert_eq!(appended.len(), 2, "within the interval a push appends a line: {appended:?}");
    assert!(appended[1].starts_with("sluice-grow 1.1.0 "), "{appended:?}");

    std::thread::sleep(std::time::Duration::from_millis(2500));
    push_grow("1.2.0");
    let compacted = lines_of_grow();
    assert_eq!(compacted.len(), 1, "past the interval the next change renders it whole: {compacted:?}");
    assert!(compacted[0].starts_with("sluice-grow 1.0.0,1.1.0,1.2.0 "), "{compacted:?}");

    // Bundler, holding the appended copy, notices the new file and fetches it whole.
    let (ok, out) = bundle(&server, &app, ">= 1.2", &["install"]);
    assert!(ok, "bundle install after the compaction: {out}");
    assert!(std::fs::read_to_string(app.join("Gemfile.lock")).unwrap().contains("sluice-grow (1.2.0)"));
}
