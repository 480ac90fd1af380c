//! Quarantine (issue 15, item 3) in the proxies of the other formats: a gated proxy
//! (`gate = "pipeline"`) offers a public version only once its pipeline passed. The upstream is a
//! second `sluice serve` on loopback; a real `sluice runner` runs the jobs (it unpacks the fetched
//! file with the format's tools, as for a push); the real client goes through the proxy with fresh
//! caches.

mod support;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::gomod_fixture::{commit_and_tag, git, go_with_proxy, start_server, sync, write};
use support::{require_tool, Server};

/// A `sluice runner` that keeps taking jobs until the test ends.
struct Runner(Child);

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn post(proxy: &Server, path: &str, token: &str) -> (u16, String) {
    let r = proxy.http().post(format!("{}{path}", proxy.url)).bearer_auth(token).send().unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

const MODULE: &str = "github.com/Acme/greet";

/// The proxy's scan: refuses a module whose code says what `BLOCK` names. It reads the unpacked
/// zip (go.mod at the root of `pkg/`), so it also shows the runner had the fetched file.
const GO_SCAN: &str = "stages: [scan]\nvariables:\n  BLOCK: phones home\n\
scan:\n  stage: scan\n  script:\n    - test -f pkg/go.mod\n    - if grep -q \"$BLOCK\" pkg/greet.go; then echo refused by the scan; exit 1; fi\n    - echo scan-ok\n";
/// After review: only the variable changes, so a retry that ran the first run's would fail again.
const GO_SCAN_FIXED: &str = "stages: [scan]\nvariables:\n  BLOCK: exfiltrates\n\
scan:\n  stage: scan\n  script:\n    - test -f pkg/go.mod\n    - if grep -q \"$BLOCK\" pkg/greet.go; then echo refused by the scan; exit 1; fi\n    - echo scan-ok\n";

/// A module shaped like a public one (a capital in its path, an old tag from before go.mod), whose
/// v1.1.0 has what the scan refuses.
fn build_module(dir: &Path) {
    git(dir, &["init", "-q"]);
    write(dir, "greet.go", "package greet\n\nfunc Hello() string { return \"hello v0.9\" }\n");
    commit_and_tag(dir, "before modules", &["v0.9.0"]);
    write(dir, "go.mod", &format!("module {MODULE}\n\ngo 1.19\n"));
    write(dir, "greet.go", "package greet\n\nfunc Hello() string { return \"hello v1.0\" }\n");
    commit_and_tag(dir, "v1.0.0", &["v1.0.0"]);
    write(
        dir,
        "greet.go",
        "package greet\n\n// Hello phones home first.\nfunc Hello() string { return \"hello v1.1\" }\n",
    );
    commit_and_tag(dir, "v1.1.0", &["v1.1.0"]);
}

/// `go mod download MODULE@version` through `proxy` with a fresh module cache.
fn go_download(proxy: &str, version: &str) -> (bool, String) {
    let home = tempfile::tempdir().unwrap();
    let work = home.path().join("work");
    write(&work, "go.mod", "module example.com/work\n");
    let (ok, _, stderr) =
        go_with_proxy(proxy, home.path(), &work, &["mod", "download", &format!("{MODULE}@{version}")]);
    (ok, stderr)
}

/// What the go command resolves through `proxy` with a fresh module cache: `go list -m` of `query`.
fn go_list(proxy: &str, args: &[&str]) -> String {
    let home = tempfile::tempdir().unwrap();
    let work = home.path().join("work");
    write(&work, "go.mod", "module example.com/work\n");
    let mut argv = vec!["list", "-m"];
    argv.extend_from_slice(args);
    let (ok, stdout, stderr) = go_with_proxy(proxy, home.path(), &work, &argv);
    assert!(ok, "go list {args:?} through the proxy failed: {stderr}");
    stdout.trim().to_string()
}

fn go_pipeline(proxy: &Server, admin: &str, version: &str) -> Value {
    let pkg = proxy.api_json(&format!("/api/v1/repositories/goproxy/packages/{MODULE}"), admin);
    let file = pkg["files"]
        .as_array()
        .and_then(|files| files.iter().find(|f| f["version"] == version))
        .unwrap_or_else(|| panic!("{MODULE} has a file of {version}: {pkg}"));
    let id = file["pipeline"]["id"].as_i64().unwrap_or_else(|| panic!("{version} has a pipeline: {file}"));
    proxy.api_json(&format!("/api/v1/pipelines/{id}"), admin)
}

#[test]
fn go_a_failing_pipeline_keeps_a_module_version_from_the_go_command_until_retried() {
    require_tool("go");
    require_tool("git");
    require_tool("unzip");
    let repo = tempfile::tempdir().unwrap();
    build_module(repo.path());
    let up = start_server(&[(repo.path(), Some(MODULE))]);
    sync(&up);
    let config = format!(
        "[[repository]]\nname = \"goproxy\"\nformat = \"gomod\"\nupstream = \"{}\"\n# The upstream runs on loopback.\n\
         allow_local_upstream = true\ngate = \"pipeline\"\npipeline = \"ci.yml\"\n",
        up.repo_url("go")
    );
    let mut proxy = Server::start_with_files(&config, &[("ci.yml", GO_SCAN)]);
    let proxy_url = proxy.repo_url("goproxy");
    let admin = proxy.token("admin", "admin", None);
    let runner_token = proxy.token("runner-1", "runner", None);
    let _runner = Runner(proxy.runner(&runner_token).stdout(Stdio::null()).spawn().expect("start sluice runner"));

    // Before anything was fetched, every upstream version is offered.
    assert_eq!(go_list(&proxy_url, &["-versions", MODULE]), format!("{MODULE} v0.9.0 v1.0.0 v1.1.0"));

    // v1.0.0 passes its scan: the download waits for the pipeline its fetch started, then gets it.
    let (ok, stderr) = go_download(&proxy_url, "v1.0.0");
    assert!(ok, "go mod download of v1.0.0 through the gated proxy: {stderr}");
    let good = go_pipeline(&proxy, &admin, "v1.0.0");
    assert_eq!(good["pipeline"]["status"], "success", "{good}");

    // v1.1.0 fails it: the go command fails with the registry's reason.
    let (ok, stderr) = go_download(&proxy_url, "v1.1.0");
    assert!(!ok, "v1.1.0 must not download while it is in quarantine: {stderr}");
    assert!(stderr.contains("403"), "{stderr}");
    let held = go_pipeline(&proxy, &admin, "v1.1.0");
    let id = held["pipeline"]["id"].as_i64().unwrap();
    assert_eq!(held["pipeline"]["status"], "failed", "{held}");
    assert!(
        stderr.contains(&format!("{MODULE} v1.1.0 is held in quarantine: pipeline #{id} failed (job scan)")),
        "go shows why: {stderr}"
    );

    // Now that it is held, the go command is not offered it: not listed, not `@latest`, so
    // `go get MODULE` resolves to what it may have.
    assert_eq!(go_list(&proxy_url, &["-versions", MODULE]), format!("{MODULE} v0.9.0 v1.0.0"));
    assert_eq!(go_list(&proxy_url, &[&format!("{MODULE}@latest")]), format!("{MODULE} v1.0.0"));
    // By exact version it stays the same clear refusal, never the bytes.
    let (ok, stderr) = go_download(&proxy_url, "v1.1.0");
    assert!(!ok && stderr.contains("is held in quarantine"), "{stderr}");
    let (status, body) = proxy.get("/goproxy/github.com/!acme/greet/@v/v1.1.0.zip");
    assert_eq!(status, 403, "{body}");

    // The admin fixes the pipeline file (read again at the retry) and retries: it passes, and the
    // version is offered and downloads.
    std::fs::write(proxy.config_dir().join("ci.yml"), GO_SCAN_FIXED).unwrap();
    let (status, body) = post(&proxy, &format!("/api/v1/pipelines/{id}/retry"), &admin);
    assert_eq!(status, 200, "{body}");
    let finished = proxy.wait_for(Duration::from_secs(60), || {
        matches!(
            go_pipeline(&proxy, &admin, "v1.1.0")["pipeline"]["status"].as_str(),
            Some("success" | "failed" | "canceled")
        )
    });
    let retried = go_pipeline(&proxy, &admin, "v1.1.0");
    assert!(finished && retried["pipeline"]["status"] == "success", "the retried pipeline passes: {retried}");
    assert_eq!(go_list(&proxy_url, &["-versions", MODULE]), format!("{MODULE} v0.9.0 v1.0.0 v1.1.0"));
    assert_eq!(go_list(&proxy_url, &[&format!("{MODULE}@latest")]), format!("{MODULE} v1.1.0"));
    let (ok, stderr) = go_download(&proxy_url, "v1.1.0");
    assert!(ok, "v1.1.0 downloads once its pipeline passed: {stderr}");
    assert!(proxy.is_alive());
}

/// The RubyGems proxy's scan: refuses a gem whose code names what `BLOCK` says (its version
/// here). It reads the unpacked gem (`pkg/lib/NAME.rb`), so it also shows the runner had the file.
const GEM_SCAN: &str = "stages: [scan]\nvariables:\n  BLOCK: 1.1.0\n\
scan:\n  stage: scan\n  script:\n    - test -f \"pkg/lib/$GEM_NAME.rb\"\n    - if grep -q \"$BLOCK\" \"pkg/lib/$GEM_NAME.rb\"; then echo refused by the scan; exit 1; fi\n    - echo scan-ok\n";
const GEM_SCAN_FIXED: &str = "stages: [scan]\nvariables:\n  BLOCK: 9.9.9\n\
scan:\n  stage: scan\n  script:\n    - test -f \"pkg/lib/$GEM_NAME.rb\"\n    - if grep -q \"$BLOCK\" \"pkg/lib/$GEM_NAME.rb\"; then echo refused by the scan; exit 1; fi\n    - echo scan-ok\n";

/// `gem install sluice-evil [-v VERSION]` from `source` only, with fresh caches; what it
/// installed (`NAME-VERSION` folders) and its output.
fn gem_install(work: &Path, source: &str, version: Option<&str>) -> (bool, Vec<String>, String) {
    let dir = work.join("installed");
    let mut cmd = support::gem::ruby_cmd("gem", work);
    cmd.args(["install", "sluice-evil", "--clear-sources", "--source", source, "--no-document", "--install-dir"])
        .arg(&dir);
    if let Some(v) = version {
        cmd.args(["-v", v]);
    }
    let (ok, out, err) = support::run(&mut cmd);
    let mut gems: Vec<String> = std::fs::read_dir(dir.join("gems"))
        .map(|d| d.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
        .unwrap_or_default();
    gems.sort();
    (ok, gems, out + &err)
}

fn gem_pipeline(proxy: &Server, admin: &str, version: &str) -> Value {
    let pkg = proxy.api_json("/api/v1/repositories/gems/packages/sluice-evil", admin);
    let file = pkg["files"]
        .as_array()
        .and_then(|files| files.iter().find(|f| f["version"] == version))
        .unwrap_or_else(|| panic!("sluice-evil has a file of {version}: {pkg}"));
    let id = file["pipeline"]["id"].as_i64().unwrap_or_else(|| panic!("{version} has a pipeline: {file}"));
    proxy.api_json(&format!("/api/v1/pipelines/{id}"), admin)
}

#[test]
fn rubygems_a_failing_pipeline_keeps_a_gem_version_from_gem_install_until_retried() {
    for tool in ["ruby", "gem", "tar"] {
        require_tool(tool);
    }
    let up = Server::start();
    let key = up.token("publisher", "read,publish", None);
    for version in ["1.0.0", "1.1.0"] {
        let gem = support::gem::build_gem(&up.work.join("gems"), "sluice-evil", version, None, &[]);
        let (ok, out) = support::gem::push(&up, &gem, &key);
        assert!(ok, "gem push {version}: {out}");
    }
    let config = format!(
        "[[repository]]\nname = \"gems\"\nformat = \"rubygems\"\nupstream = \"{}\"\n# The upstream runs on loopback.\n\
         allow_local_upstream = true\ngate = \"pipeline\"\npipeline = \"ci.yml\"\n",
        up.repo_url(support::gem::REPO)
    );
    let mut proxy = Server::start_with_files(&config, &[("ci.yml", GEM_SCAN)]);
    let source = proxy.repo_url("gems");
    let admin = proxy.token("admin", "admin", None);
    let runner_token = proxy.token("runner-1", "runner", None);
    let _runner = Runner(proxy.runner(&runner_token).stdout(Stdio::null()).spawn().expect("start sluice runner"));

    // 1.0.0 passes its scan and installs (its request waits for the pipeline its fetch started).
    let (ok, gems, out) = gem_install(&proxy.work.join("first"), &source, Some("1.0.0"));
    assert!(ok && gems == ["sluice-evil-1.0.0"], "{gems:?} {out}");
    // The newest, 1.1.0, fails it: gem install fails with the registry's 403, installing nothing.
    let (ok, gems, out) = gem_install(&proxy.work.join("second"), &source, None);
    assert!(!ok && gems.is_empty(), "1.1.0 must not install while it is in quarantine: {gems:?} {out}");
    assert!(out.contains("403"), "{out}");
    let held = gem_pipeline(&proxy, &admin, "1.1.0");
    let id = held["pipeline"]["id"].as_i64().unwrap();
    assert_eq!(held["pipeline"]["status"], "failed", "{held}");
    let (status, body) = proxy.get("/gems/gems/sluice-evil-1.1.0.gem");
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains(&format!("sluice-evil 1.1.0 is held in quarantine: pipeline #{id} failed (job scan)")),
        "{body}"
    );

    // Now that it is held, it is not offered: `/info` leaves it out, `/versions` agrees with that
    // `/info`, and `gem install` of the gem resolves to the version it may have.
    let (_, info) = proxy.get("/gems/info/sluice-evil");
    assert!(info.contains("\n1.0.0 ") && !info.contains("\n1.1.0 "), "{info}");
    let (_, versions) = proxy.get("/gems/versions");
    let line = versions.lines().rev().find(|l| l.starts_with("sluice-evil ")).unwrap_or_default().to_string();
    use md5::Digest;
    assert!(line.ends_with(&hex::encode(md5::Md5::digest(info.as_bytes()))), "{line}\n{versions}");
    let (ok, gems, out) = gem_install(&proxy.work.join("third"), &source, None);
    assert!(ok && gems == ["sluice-evil-1.0.0"], "{gems:?} {out}");

    // The admin fixes the pipeline file and retries: it passes, and gem install gets 1.1.0.
    std::fs::write(proxy.config_dir().join("ci.yml"), GEM_SCAN_FIXED).unwrap();
    let (status, body) = post(&proxy, &format!("/api/v1/pipelines/{id}/retry"), &admin);
    assert_eq!(status, 200, "{body}");
    let finished = proxy.wait_for(Duration::from_secs(60), || {
        matches!(
            gem_pipeline(&proxy, &admin, "1.1.0")["pipeline"]["status"].as_str(),
            Some("success" | "failed" | "canceled")
        )
    });
    let retried = gem_pipeline(&proxy, &admin, "1.1.0");
    assert!(finished && retried["pipeline"]["status"] == "success", "the retried pipeline passes: {retried}");
    let (ok, gems, out) = gem_install(&proxy.work.join("fourth"), &source, None);
    assert!(ok && gems == ["sluice-evil-1.1.0"], "{gems:?} {out}");
    assert!(proxy.is_alive());
}
