//! A Go module proxy repository (issue 15): a `sluice serve` whose `goproxy` repository
//! (`format = "gomod"`, `upstream = ...`, no git) proxies a second `sluice serve` that serves a
//! module from git tags. The real go command downloads and builds through the proxy with fresh
//! module caches, also once the upstream is stopped.

mod support;

use std::path::Path;
use std::time::Duration;

use support::gomod_fixture::{commit_and_tag, download_sums, git, go_with_proxy, start_server, sync, write};
use support::{require_tool, Server};

const MODULE: &str = "github.com/Acme/greet";

/// A module shaped like a public one: a capital in its path (escaped `!acme` in URLs), an old tag
/// from before go.mod, then two tagged releases with one.
fn build_module(dir: &Path) {
    git(dir, &["init", "-q"]);
    write(dir, "greet.go", "package greet\n\nfunc Hello() string { return \"hello v0.9\" }\n");
    commit_and_tag(dir, "before modules", &["v0.9.0"]);
    write(dir, "go.mod", &format!("module {MODULE}\n\ngo 1.19\n"));
    write(dir, "greet.go", "package greet\n\nfunc Hello() string { return \"hello v1.0\" }\n");
    commit_and_tag(dir, "v1.0.0", &["v1.0.0"]);
    write(dir, "greet.go", "package greet\n\nfunc Hello() string { return \"hello v1.1\" }\n");
    commit_and_tag(dir, "v1.1.0", &["v1.1.0"]);
}

fn proxy_config(upstream: &Server) -> String {
    format!(
        "[[repository]]\nname = \"goproxy\"\nformat = \"gomod\"\nupstream = \"{}\"\n# The upstream runs on loopback.\nallow_local_upstream = true\nmetadata_ttl = \"1s\"\n",
        upstream.repo_url("go")
    )
}

/// A consumer of `MODULE` at `version` that prints its greeting; builds it through `proxy` with
/// a fresh module cache and returns what it printed.
fn build_and_run(proxy: &str, root: &Path, version: &str) -> String {
    let home = tempfile::tempdir().unwrap();
    let app = root.join(format!("app-{}", std::process::id())).join(home.path().file_name().unwrap());
    write(&app, "go.mod", &format!("module example.com/app\n\ngo 1.19\n\nrequire {MODULE} {version}\n"));
    write(
        &app,
        "main.go",
        &format!("package main\n\nimport (\n\t\"fmt\"\n\n\t\"{MODULE}\"\n)\n\nfunc main() {{ fmt.Println(greet.Hello()) }}\n"),
    );
    let (ok, _, stderr) = go_with_proxy(proxy, home.path(), &app, &["mod", "download"]);
    assert!(ok, "go mod download through {proxy} failed: {stderr}");
    let (ok, stdout, stderr) = go_with_proxy(proxy, home.path(), &app, &["run", "."]);
    assert!(ok, "go run through {proxy} failed: {stderr}");
    stdout.trim().to_string()
}

#[test]
fn go_downloads_through_the_proxy_and_from_its_cache_once_the_upstream_is_down() {
    require_tool("go");
    require_tool("git");
    let repo = tempfile::tempdir().unwrap();
    build_module(repo.path());
    let mut up = start_server(&[(repo.path(), Some(MODULE))]);
    sync(&up);
    let proxy = Server::start_with_config(&proxy_config(&up));
    let proxy_url = proxy.repo_url("goproxy");
    let wanted = [format!("{MODULE}@v0.9.0"), format!("{MODULE}@v1.1.0")];
    let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();

    // What go.sum would record is the same through the proxy as from the upstream itself.
    let direct = download_sums(&up.repo_url("go"), tempfile::tempdir().unwrap().path(), &wanted);
    let proxied = download_sums(&proxy_url, tempfile::tempdir().unwrap().path(), &wanted);
    assert_eq!(proxied, direct);
    assert_eq!(proxied.len(), 2);

    // The version list is the upstream's, as the go command lists it.
    let home = tempfile::tempdir().unwrap();
    let work = home.path().join("work");
    write(&work, "go.mod", "module example.com/work\n");
    let (ok, stdout, stderr) = go_with_proxy(&proxy_url, home.path(), &work, &["list", "-m", "-versions", MODULE]);
    assert!(ok, "go list through the proxy failed: {stderr}");
    assert_eq!(stdout.trim(), format!("{MODULE} v0.9.0 v1.0.0 v1.1.0"));
    assert_eq!(build_and_run(&proxy_url, &proxy.work, "v1.1.0"), "hello v1.1");

    // Each zip came through once, recorded as a push by `upstream` with the URL it came from.
    let fetched = proxy.upstream_fetches("goproxy", &up.repo_url("go"));
    assert_eq!(fetched, [format!("{MODULE} v0.9.0"), format!("{MODULE} v1.1.0")]);

    // The upstream goes away and the proxy's kept metadata expires (1 s): fresh module caches
    // still get every version fetched before, with the same sums.
    up.kill();
    std::thread::sleep(Duration::from_millis(1500));
    let again = download_sums(&proxy_url, tempfile::tempdir().unwrap().path(), &wanted);
    assert_eq!(again, direct);
    assert_eq!(build_and_run(&proxy_url, &proxy.work, "v1.1.0"), "hello v1.1");

    // A zip the proxy never fetched cannot come from anywhere: a clear error, the server stays up.
    let home = tempfile::tempdir().unwrap();
    let work = home.path().join("work");
    write(&work, "go.mod", "module example.com/work\n");
    let (ok, _, stderr) =
        go_with_proxy(&proxy_url, home.path(), &work, &["mod", "download", &format!("{MODULE}@v1.0.0")]);
    assert!(!ok);
    assert!(stderr.contains("502"), "{stderr}");
    assert_eq!(proxy.get("/goproxy/github.com/!acme/greet/@v/list").0, 200, "the proxy is still up");
}
