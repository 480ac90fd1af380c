//! RubyGems' `/versions` is append-only (the compact index): after pushes and a yank, a client
//! holding the old file fetches just the new lines with a `Range` request, and they say what a
//! fresh render says.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use support::{require_tool, run, Server};

/// `gem build` of a one-file gem, in a HOME of the test's own.
fn gem(work: &Path, tool: &str) -> Command {
    let home = work.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut cmd = Command::new(tool);
    cmd.env("HOME", &home).env_remove("GEM_HOST_API_KEY").env_remove("GEM_HOME").env_remove("GEM_PATH");
    cmd
}

fn build(work: &Path, name: &str, version: &str) -> PathBuf {
    let src = work.join(format!("src-{name}-{version}"));
    std::fs::create_dir_all(src.join("lib")).unwrap();
    std::fs::write(src.join("lib").join(format!("{name}.rb")), "module X; end\n").unwrap();
    let spec = format!(
        "Gem::Specification.new do |s|\n  s.name = {name:?}\n  s.version = {version:?}\n  s.summary = \"t\"\n  s.authors = [\"Sluice\"]\n  s.files = [\"lib/{name}.rb\"]\nend\n"
    );
    std::fs::write(src.join(format!("{name}.gemspec")), spec).unwrap();
    let (ok, _, err) = run(gem(work, "gem").arg("build").arg(format!("{name}.gemspec")).current_dir(&src));
    assert!(ok, "gem build: {err}");
    src.join(format!("{name}-{version}.gem"))
}

#[test]
fn versions_grows_by_the_changes_and_serves_them_by_range() {
    require_tool("gem");
    let server = Server::start();
    let key = server.token("ci", "read,publish", None);
    let url = server.repo_url("rubygems");
    let work = server.work.clone();
    let push = |name: &str, version: &str| {
        let file = build(&work, name, version);
        let (ok, out, err) =
            run(gem(&work, "gem").arg("push").arg(&file).args(["--host", &url]).env("GEM_HOST_API_KEY", &key));
        assert!(ok, "gem push {name} {version}: {out}{err}");
    };
    let get = |path: &str, range: Option<usize>| {
        let mut req = server.http().get(format!("{url}/{path}"));
        if let Some(start) = range {
            req = req.header("range", format!("bytes={start}-"));
        }
        let response = req.send().unwrap();
        (response.status().as_u16(), response.bytes().unwrap().to_vec())
    };

    push("alpha-gem", "1.0.0");
    let (status, before) = get("versions", None);
    assert_eq!(status, 200);
    let before = String::from_utf8(before).unwrap();
    assert!(before.contains("\nalpha-gem 1.0.0 "), "{before}");

    push("alpha-gem", "1.1.0");
    push("beta-gem", "0.1.0");
    let (ok, out, err) =
        run(gem(&work, "gem").args(["yank", "alpha-gem", "-v", "1.0.0", "--host", &url]).env("GEM_HOST_API_KEY", &key));
    assert!(ok, "gem yank: {out}{err}");

    // What Bundler asks for: from the last byte it holds.
    let (status, tail) = get("versions", Some(before.len() - 1));
    assert_eq!(status, 206);
    let tail = String::from_utf8(tail).unwrap();
    assert_eq!(tail.as_bytes()[0], *before.as_bytes().last().unwrap());
    // The MD5 Bundler compares, by coreutils' md5sum.
    let md5 = |name: &str| {
        let info = work.join(format!("info-{name}"));
        std::fs::write(&info, get(&format!("info/{name}"), None).1).unwrap();
        let (ok, out, err) = run(Command::new("md5sum").arg(&info));
        assert!(ok, "{err}");
        out.split_whitespace().next().unwrap().to_string()
    };
    assert_eq!(
        &tail[1..],
        format!(
            "alpha-gem 1.1.0 {a}\nbeta-gem 0.1.0 {b}\nalpha-gem -1.0.0 {a}\n",
            a = md5("alpha-gem"),
            b = md5("beta-gem")
        ),
        "one line per change, each with the gem's /info checksum now"
    );
    let (_, whole) = get("versions", None);
    assert_eq!(String::from_utf8(whole).unwrap(), format!("{before}{}", &tail[1..]), "the kept file only grew");
}
