mod support;

// Go modules end to end: a git repository with version tags, synced by the server, and the real
// go command (GOPROXY pointed at the repository) downloading, listing and building against them.

use std::path::Path;
use std::process::Command;
use support::{require_tool, run, Server};

/// Runs git in `dir` with a fixed identity, failing the test on error.
fn git(dir: &Path, args: &[&str]) {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .args(["-c", "user.name=Gopher", "-c", "user.email=gopher@example.com", "-c", "init.defaultBranch=main"])
        .args(args);
    let (ok, _, stderr) = run(&mut cmd);
    assert!(ok, "git {args:?} failed: {stderr}");
}

fn write(dir: &Path, path: &str, body: &str) {
    let file = dir.join(path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(file, body).unwrap();
}

fn commit_and_tag(dir: &Path, message: &str, tags: &[&str]) {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", message]);
    for tag in tags {
        git(dir, &["tag", "-a", "-m", tag, tag]);
    }
}

/// A repository holding `example.com/greet` (v1.0.0, v1.1.0, then /v2 at v2.0.0), a module in a
/// subdirectory (`tools/v0.1.0`), and tags that must not be served.
fn build_repository(dir: &Path) {
    git(dir, &["init", "-q"]);
    write(dir, "go.mod", "module example.com/greet\n\ngo 1.19\n");
    write(dir, "LICENSE", "MIT License\n");
    write(dir, "greet.go", "package greet\n\nfunc Hello() string { return \"hello v1.0\" }\n");
    commit_and_tag(dir, "v1.0.0", &["v1.0.0", "release-candidate"]);

    write(dir, "greet.go", "package greet\n\nfunc Hello() string { return \"hello v1.1\" }\n");
    write(dir, "tools/go.mod", "module example.com/greet/tools\n\ngo 1.19\n");
    write(dir, "tools/tools.go", "package tools\n\nfunc Name() string { return \"tools v0.1\" }\n");
    // Not a full semantic version: reported, not served.
    commit_and_tag(dir, "v1.1.0 and tools", &["v1.1.0", "tools/v0.1.0", "v1.2"]);

    write(dir, "go.mod", "module example.com/greet/v2\n\ngo 1.19\n");
    write(dir, "greet.go", "package greet\n\nfunc Hello(name string) string { return \"hello \" + name + \" from v2\" }\n");
    // v3.0.0 on a go.mod that says /v2: the module does not match the tag, so it is not served.
    commit_and_tag(dir, "v2", &["v2.0.0", "v3.0.0"]);
}

/// A server whose `go` repository serves the tags of the git repository at `repo`.
fn start_server(repo: &Path) -> Server {
    let config = format!(
        "[[repository]]\nname = \"go\"\nformat = \"gomod\"\ngit = [{}]\npoll_seconds = 0\n",
        serde_json::to_string(repo.to_str().unwrap()).unwrap()
    );
    Server::start_with_config(&config)
}

/// Asks the server to read the git repository's tags now.
fn sync(server: &Server) {
    let admin = server.token("admin", "admin", None);
    let sync = server
        .http()
        .post(format!("{}/api/v1/repositories/go/sync", server.url))
        .bearer_auth(&admin)
        .send()
        .expect("POST sync");
    let status = sync.status();
    let report = sync.text().unwrap_or_default();
    println!("sync: {status} {report}");
    assert!(status.is_success(), "sync failed: {status} {report}");
}

/// The go command, isolated from the machine's Go set-up and pointed at the repository.
fn go(server: &Server, home: &Path, dir: &Path, args: &[&str]) -> (bool, String, String) {
    go_with_proxy(&server.repo_url("go"), home, dir, args)
}

fn go_with_proxy(proxy: &str, home: &Path, dir: &Path, args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new("go");
    cmd.current_dir(dir)
        .args(args)
        .env("HOME", home)
        .env("GOPATH", home.join("gopath"))
        .env("GOMODCACHE", home.join("gopath/pkg/mod"))
        .env("GOCACHE", home.join("gocache"))
        .env("GOENV", home.join("goenv"))
        .env("GOPROXY", proxy)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GOSUMDB", "off")
        .env("GOFLAGS", "-mod=mod -modcacherw")
        .env("GO111MODULE", "on")
        .env("CGO_ENABLED", "0")
        .env("GOTOOLCHAIN", "local")
        .env_remove("GOPRIVATE")
        .env_remove("GONOPROXY")
        .env_remove("GONOSUMDB")
        .env_remove("GOINSECURE");
    run(&mut cmd)
}

#[test]
fn go_modules_from_git_tags() {
    require_tool("go");
    require_tool("git");
    let repo = tempfile::tempdir().unwrap();
    build_repository(repo.path());
    let server = start_server(repo.path());
    sync(&server);

    // The protocol as the go command sees it, including what must not be there.
    let (status, list) = server.get("/go/example.com/greet/@v/list");
    assert_eq!((status, list.as_str()), (200, "v1.0.0\nv1.1.0\n"));
    let (status, list) = server.get("/go/example.com/greet/v2/@v/list");
    assert_eq!((status, list.as_str()), (200, "v2.0.0\n"), "v3.0.0 names a /v2 module and must not be served");
    assert_eq!(server.get("/go/example.com/greet/@v/v1.2.info").0, 404);
    assert_eq!(server.get("/go/example.com/greet/@v/v3.0.0.info").0, 404);
    let (status, info) = server.get("/go/example.com/greet/@v/v1.0.0.info");
    assert_eq!(status, 200);
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["Version"], "v1.0.0");
    assert!(info["Time"].as_str().is_some_and(|t| t.ends_with('Z')), "{info}");
    assert_eq!(server.get("/go/example.com/greet/@v/v1.1.0.mod"), (200, "module example.com/greet\n\ngo 1.19\n".to_string()));
    assert!(server.get("/go/example.com/greet/@latest").1.contains("\"v1.1.0\""));

    // The real client.
    let home = tempfile::tempdir().unwrap();
    let consumer = server.work.join("consumer");
    write(
        &consumer,
        "go.mod",
        "module example.com/consumer\n\ngo 1.19\n\nrequire (\n\texample.com/greet v1.1.0\n\texample.com/greet/v2 v2.0.0\n\texample.com/greet/tools v0.1.0\n)\n",
    );
    write(
        &consumer,
        "main.go",
        "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/greet\"\n\t\"example.com/greet/tools\"\n\tgreet2 \"example.com/greet/v2\"\n)\n\nfunc main() {\n\tfmt.Println(greet.Hello())\n\tfmt.Println(greet2.Hello(\"gopher\"))\n\tfmt.Println(tools.Name())\n}\n",
    );
    let (ok, _, stderr) = go(&server, home.path(), &consumer, &["mod", "download", "-x"]);
    assert!(ok, "go mod download failed: {stderr}");
    let binary = consumer.join("consumer");
    let (ok, _, stderr) = go(&server, home.path(), &consumer, &["build", "-o", binary.to_str().unwrap(), "."]);
    assert!(ok, "go build failed: {stderr}");
    let (ok, stdout, _) = run(&mut Command::new(&binary));
    assert!(ok);
    assert_eq!(stdout, "hello v1.1\nhello gopher from v2\ntools v0.1\n");

    // The module in the subdirectory holds only its own files, plus the repository's LICENSE.
    let tools = home.path().join("gopath/pkg/mod/example.com/greet/tools@v0.1.0");
    let mut files: Vec<String> = std::fs::read_dir(&tools).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    files.sort();
    assert_eq!(files, ["LICENSE", "go.mod", "tools.go"]);
    // And the root module leaves the nested module out.
    assert!(!home.path().join("gopath/pkg/mod/example.com/greet@v1.1.0/tools").exists());

    let (ok, stdout, stderr) = go(&server, home.path(), &consumer, &["list", "-m", "-versions", "example.com/greet"]);
    assert!(ok, "go list failed: {stderr}");
    assert_eq!(stdout.trim(), "example.com/greet v1.0.0 v1.1.0");
    let (ok, stdout, _) = go(&server, home.path(), &consumer, &["list", "-m", "-versions", "example.com/greet/v2"]);
    assert!(ok);
    assert_eq!(stdout.trim(), "example.com/greet/v2 v2.0.0");

    // A version that was never served is a clean "not found" for the go command.
    let (ok, _, stderr) = go(&server, home.path(), &consumer, &["mod", "download", "example.com/greet@v1.2.0"]);
    assert!(!ok);
    assert!(stderr.contains("404") || stderr.contains("not found"), "{stderr}");
}

/// The `Sum` of each module `go mod download -json` reports.
fn download_sums(proxy: &str, home: &Path, modules: &[&str]) -> Vec<String> {
    let work = home.join("work");
    write(&work, "go.mod", "module example.com/work\n");
    let mut args = vec!["mod", "download", "-json"];
    args.extend_from_slice(modules);
    let (ok, stdout, stderr) = go_with_proxy(proxy, home, &work, &args);
    assert!(ok, "go mod download via {proxy} failed: {stderr}\n{stdout}");
    serde_json::Deserializer::from_str(&stdout)
        .into_iter::<serde_json::Value>()
        .map(|v| v.unwrap()["Sum"].as_str().expect("a Sum for every module").to_string())
        .collect()
}

#[test]
fn module_zips_hash_like_the_go_commands_own() {
    require_tool("go");
    require_tool("git");
    // Everything Go's zip rules treat specially: vendored packages (kept: vendor/modules.txt), a
    // nested module, a symlink, a committed VCS folder, names with spaces and non-ASCII letters,
    // and a subdirectory module that borrows the root LICENSE.
    let repo = tempfile::tempdir().unwrap();
    let dir = repo.path();
    git(dir, &["init", "-q"]);
    write(dir, "go.mod", "module example.com/same.git\n\ngo 1.19\n");
    write(dir, "LICENSE", "Apache-2.0\n");
    write(dir, "same.go", "package same\n");
    write(dir, "vendor/modules.txt", "# example.com/dep v1.0.0\n");
    write(dir, "vendor/example.com/dep/dep.go", "package dep\n");
    write(dir, "internal/vendor/x/x.go", "package x\n");
    write(dir, ".hg/keep", "committed by mistake\n");
    write(dir, "docs/read me é.txt", "spaces and letters\n");
    write(dir, "sub/go.mod", "module example.com/same.git/sub\n\ngo 1.19\n");
    write(dir, "sub/sub.go", "package sub\n");
    std::os::unix::fs::symlink("same.go", dir.join("link.go")).unwrap();
    commit_and_tag(dir, "first", &["v1.0.0", "sub/v1.0.0"]);

    let server = start_server(dir);
    sync(&server);
    let modules = ["example.com/same.git@v1.0.0", "example.com/same.git/sub@v1.0.0"];
    let via_sluice = tempfile::tempdir().unwrap();
    let ours = download_sums(&server.repo_url("go"), via_sluice.path(), &modules);

    // The go command fetching the same tags straight from git (a `.git` module path needs no
    // discovery; git's `insteadOf` points the https URL it derives at the local repository).
    let direct = tempfile::tempdir().unwrap();
    let gitconfig = format!(
        "[url \"file://{}\"]\n\tinsteadOf = https://example.com/same\n[protocol \"file\"]\n\tallow = always\n",
        dir.display()
    );
    std::fs::write(direct.path().join(".gitconfig"), gitconfig).unwrap();
    let theirs = download_sums("direct", direct.path(), &modules);
    assert_eq!(ours, theirs, "module zips must hash to the sums Go computes itself");
}

/// A gated version stays invisible to `go` until its pipeline passes.
#[test]
fn gated_module_versions_appear_only_after_their_pipeline_passes() {
    require_tool("go");
    require_tool("git");
    let repo = tempfile::tempdir().unwrap();
    build_repository(repo.path());
    let git_list = format!("git = [{}]\npoll_seconds = 0\n", serde_json::to_string(repo.path().to_str().unwrap()).unwrap());
    let server = Server::gated("go", "gomod", "unpacked:\n  script:\n    - find pkg -name go.mod | grep -q .\n", &git_list);
    let admin = server.token("admin", "admin", None);
    let runner = server.token("runner", "runner", None);
    sync(&server);
    let home = tempfile::tempdir().unwrap();
    let (ok, _, _) = go(&server, home.path(), &server.work, &["mod", "download", "example.com/greet@v1.0.0"]);
    assert!(!ok, "go must not download a pending version");
    assert_eq!(server.get("/go/example.com/greet/@v/list").0, 404, "no version is released before its pipeline passes");
    assert_eq!(server.get("/go/example.com/greet/@v/v1.0.0.info").0, 404);

    // Run every pending job (one pipeline per tag).
    let pipelines = server.api_json("/api/v1/pipelines?repository=go", &admin)["pipelines"].as_array().unwrap().len();
    for _ in 0..pipelines {
        server.run_one_job(&runner);
    }
    let (status, list) = server.get("/go/example.com/greet/@v/list");
    assert_eq!(status, 200);
    assert!(list.contains("v1.0.0") && list.contains("v1.1.0"), "{list}");
    let (ok, _, err) = go(&server, home.path(), &server.work, &["mod", "download", "example.com/greet@v1.0.0"]);
    assert!(ok, "go downloads the released version: {err}");
}

/// GitHub-style tag webhooks: a wrong secret is refused and syncs nothing; the right one syncs,
/// with the sender as the push's actor. Rejected tags are reported; a tag moved to another commit
/// after it was published keeps serving its first zip and is reported.
#[test]
fn tag_webhooks_are_verified_and_moved_tags_keep_their_first_zip() {
    use hmac::{Hmac, Mac};
    require_tool("git");
    let repo = tempfile::tempdir().unwrap();
    build_repository(repo.path());
    let server = Server::start_with_config(&format!(
        "[[repository]]\nname = \"go\"\nformat = \"gomod\"\ngit = [{}]\npoll_seconds = 0\nwebhook_secret = \"s3cret\"\n",
        serde_json::to_string(repo.path().to_str().unwrap()).unwrap()
    ));
    let body = r#"{"ref":"refs/tags/v1.0.0","sender":{"login":"octocat"},"repository":{"clone_url":"https://example.com/greet.git"}}"#;
    let hook = |secret: &str| {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body.as_bytes());
        server
            .http()
            .post(format!("{}/api/v1/repositories/go/webhook", server.url))
            .header("x-github-event", "push")
            .header("x-hub-signature-256", format!("sha256={}", hex::encode(mac.finalize().into_bytes())))
            .body(body)
            .send()
            .unwrap()
    };
    let refused = hook("wrong");
    assert_eq!(refused.status().as_u16(), 401);
    assert_eq!(server.get("/go/example.com/greet/@v/list").0, 404, "a refused webhook syncs nothing");

    let accepted = hook("s3cret");
    assert_eq!(accepted.status().as_u16(), 200);
    let report: serde_json::Value = accepted.json().unwrap();
    assert_eq!(report["synced"], true);
    let rejected: Vec<&str> = report["report"]["rejected"].as_array().unwrap().iter().map(|r| r["tag"].as_str().unwrap()).collect();
    assert!(rejected.contains(&"v1.2") && rejected.contains(&"v3.0.0"), "bad tags are reported: {report}");
    assert_eq!(server.get("/go/example.com/greet/@v/list"), (200, "v1.0.0\nv1.1.0\n".to_string()));
    let admin = server.token("admin", "admin", None);
    let pushes = server.api_json("/api/v1/pushes?repository=go", &admin);
    let push = pushes["pushes"].as_array().unwrap().iter().find(|p| p["version"] == "v1.0.0").unwrap().clone();
    assert_eq!(push["actor"], "github:octocat");
    assert_eq!(push["commit_sha"].as_str().unwrap().len(), 40);

    // Move v1.0.0 to a new commit: the first zip stays, and the move is reported.
    let first = server.http().get(format!("{}/go/example.com/greet/@v/v1.0.0.zip", server.url)).send().unwrap().bytes().unwrap();
    write(repo.path(), "greet.go", "package greet\n\nfunc Hello() string { return \"rewritten\" }\n");
    git(repo.path(), &["commit", "-q", "-am", "rewrite"]);
    git(repo.path(), &["tag", "-f", "-a", "-m", "moved", "v1.0.0"]);
    let report = hook("s3cret").json::<serde_json::Value>().unwrap();
    let moved = report["report"]["moved"].as_array().unwrap();
    assert_eq!(moved.len(), 1, "{report}");
    assert_eq!(moved[0]["tag"], "v1.0.0");
    let again = server.http().get(format!("{}/go/example.com/greet/@v/v1.0.0.zip", server.url)).send().unwrap().bytes().unwrap();
    assert_eq!(first, again, "the published zip is what go.sum was told");
    let tags = server.api_json("/api/v1/repositories/go/git-tags", &admin);
    let v1 = tags["tags"].as_array().unwrap().iter().find(|t| t["tag"] == "v1.0.0").unwrap().clone();
    assert!(v1["moved_to"].as_str().is_some(), "{v1}");
}
