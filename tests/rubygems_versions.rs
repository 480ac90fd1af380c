//! RubyGems' `/versions` is append-only (the compact index): after pushes and a yank, a client
//! holding the old file fetches just the new lines with a `Range` request, and they say what a
//! fresh render says.

mod support;

use std::process::Command;
use support::gem::{build_gem, push as gem_push, ruby_cmd};
use support::{require_tool, run, Server};

#[test]
fn versions_grows_by_the_changes_and_serves_them_by_range() {
    require_tool("gem");
    let server = Server::start();
    let key = server.token("ci", "read,publish", None);
    let url = server.repo_url("rubygems");
    let work = server.work.clone();
    let push = |name: &str, version: &str| {
        let (ok, out) = gem_push(&server, &build_gem(&work.join("gems"), name, version, None, &[]), &key);
        assert!(ok, "gem push {name} {version}: {out}");
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
    let (ok, out, err) = run(ruby_cmd("gem", &work)
        .args(["yank", "alpha-gem", "-v", "1.0.0", "--host", &url])
        .env("GEM_HOST_API_KEY", &key));
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
