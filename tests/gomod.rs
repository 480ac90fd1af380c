mod support;

// Go modules end to end: a git repository with version tags, synced by the server, and the real
// go command (GOPROXY pointed at the repository) downloading, listing and building against them.

use std::path::Path;
use std::process::Command;
use support::gomod_fixture::{
    commit_and_tag, commit_and_tag_at, direct_home, download_sums, git, go_with_proxy,
    start_server as start_with_sources, sync, wait_for_sync, write, write_bytes,
};
use support::{require_tool, run, Server};

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
    write(
        dir,
        "greet.go",
        "package greet\n\nfunc Hello(name string) string { return \"hello \" + name + \" from v2\" }\n",
    );
    // v3.0.0 on a go.mod that says /v2: the module does not match the tag, so it is not served.
    commit_and_tag(dir, "v2", &["v2.0.0", "v3.0.0"]);
}

/// A server whose `go` repository serves the tags of the git repository at `repo`.
fn start_server(repo: &Path) -> Server {
    start_with_sources(&[(repo, None)])
}

/// The go command, isolated from the machine's Go set-up and pointed at the repository.
fn go(server: &Server, home: &Path, dir: &Path, args: &[&str]) -> (bool, String, String) {
    go_with_proxy(&server.repo_url("go"), home, dir, args)
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
    assert_eq!(
        server.get("/go/example.com/greet/@v/v1.1.0.mod"),
        (200, "module example.com/greet\n\ngo 1.19\n".to_string())
    );
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
    let mut files: Vec<String> =
        std::fs::read_dir(&tools).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
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
    let direct = direct_home(&[("https://example.com/same", dir)]);
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
    let git_list =
        format!("git = [{}]\npoll_seconds = 0\n", serde_json::to_string(repo.path().to_str().unwrap()).unwrap());
    let server =
        Server::gated("go", "gomod", "unpacked:\n  script:\n    - find pkg -name go.mod | grep -q .\n", &git_list);
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

    // A git host waits seconds for an answer: the sync runs in the background.
    let accepted = hook("s3cret");
    assert_eq!(accepted.status().as_u16(), 202);
    let answer: serde_json::Value = accepted.json().unwrap();
    assert_eq!(answer["synced"], true);
    let admin = server.token("admin", "admin", None);
    let job = wait_for_sync(&server, &admin, &answer);
    let rejected: Vec<&str> =
        job["report"]["rejected"].as_array().unwrap().iter().map(|r| r["tag"].as_str().unwrap()).collect();
    assert!(rejected.contains(&"v1.2") && rejected.contains(&"v3.0.0"), "bad tags are reported: {job}");
    assert_eq!(server.get("/go/example.com/greet/@v/list"), (200, "v1.0.0\nv1.1.0\n".to_string()));
    let pushes = server.api_json("/api/v1/pushes?repository=go", &admin);
    let push = pushes["pushes"].as_array().unwrap().iter().find(|p| p["version"] == "v1.0.0").unwrap().clone();
    assert_eq!(push["actor"], "github:octocat");
    assert_eq!(push["commit_sha"].as_str().unwrap().len(), 40);

    // Move v1.0.0 to a new commit: the first zip stays, and the move is reported.
    let first = server
        .http()
        .get(format!("{}/go/example.com/greet/@v/v1.0.0.zip", server.url))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    write(repo.path(), "greet.go", "package greet\n\nfunc Hello() string { return \"rewritten\" }\n");
    git(repo.path(), &["commit", "-q", "-am", "rewrite"]);
    git(repo.path(), &["tag", "-f", "-a", "-m", "moved", "v1.0.0"]);
    let answer = hook("s3cret").json::<serde_json::Value>().unwrap();
    let report = wait_for_sync(&server, &admin, &answer);
    let moved = report["report"]["moved"].as_array().unwrap();
    assert_eq!(moved.len(), 1, "{report}");
    assert_eq!(moved[0]["tag"], "v1.0.0");
    let again = server
        .http()
        .get(format!("{}/go/example.com/greet/@v/v1.0.0.zip", server.url))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert_eq!(first, again, "the published zip is what go.sum was told");
    let tags = server.api_json("/api/v1/repositories/go/git-tags", &admin);
    let v1 = tags["tags"].as_array().unwrap().iter().find(|t| t["tag"] == "v1.0.0").unwrap().clone();
    assert!(v1["moved_to"].as_str().is_some(), "{v1}");
}

/// `Time` of an `.info` document.
fn info_time(info: &str) -> String {
    let info: serde_json::Value = serde_json::from_str(info).unwrap_or_else(|e| panic!("{e}: {info}"));
    info["Time"].as_str().unwrap_or_default().to_string()
}

/// Code from before go.mod files, like `github.com/pkg/errors`: the source names its module path,
/// Sluice serves the go.mod Go synthesizes, v2+ tags as `+incompatible`, each version's commit
/// time, and zips whose sums equal the ones the go command computes from git itself.
#[test]
fn modules_without_go_mod_are_served_as_go_serves_them() {
    require_tool("go");
    require_tool("git");
    let repo = tempfile::tempdir().unwrap();
    let dir = repo.path();
    git(dir, &["init", "-q"]);
    write(dir, "LICENSE", "BSD-2-Clause\n");
    write(dir, "errors.go", "package legacy\n\nfunc Version() string { return \"v0.8\" }\n");
    commit_and_tag_at(dir, 1_500_000_000, "first", &["v0.8.0"]);
    write(dir, "errors.go", "package legacy\n\nfunc Version() string { return \"v0.9\" }\n");
    // A nested module stays out of the legacy root module, as Go leaves it out.
    write(dir, "nested/go.mod", "module example.com/legacy.git/nested\n");
    write(dir, "nested/n.go", "package nested\n");
    commit_and_tag_at(dir, 1_500_086_401, "second", &["v0.9.1"]);
    write(dir, "errors.go", "package legacy\n\nfunc Version() string { return \"v2 without a go.mod\" }\n");
    commit_and_tag_at(dir, 1_600_000_000, "third", &["v2.0.0"]);

    let server = start_with_sources(&[(dir, Some("example.com/legacy.git"))]);
    let job = sync(&server);
    assert_eq!(job["report"]["published"].as_array().unwrap().len(), 3, "{job}");

    assert_eq!(
        server.get("/go/example.com/legacy.git/@v/list"),
        (200, "v0.8.0\nv0.9.1\nv2.0.0+incompatible\n".to_string())
    );
    assert_eq!(
        server.get("/go/example.com/legacy.git/@v/v0.9.1.mod"),
        (200, "module example.com/legacy.git\n".to_string())
    );
    assert_eq!(
        server.get("/go/example.com/legacy.git/@v/v2.0.0+incompatible.mod").1,
        "module example.com/legacy.git\n"
    );
    // The commit time, not the time of the sync.
    assert_eq!(info_time(&server.get("/go/example.com/legacy.git/@v/v0.9.1.info").1), "2017-07-15T02:40:01Z");
    assert_eq!(
        info_time(&server.get("/go/example.com/legacy.git/@v/v2.0.0+incompatible.info").1),
        "2020-09-13T12:26:40Z"
    );

    let modules = ["example.com/legacy.git@v0.9.1", "example.com/legacy.git@v2.0.0+incompatible"];
    let via_sluice = tempfile::tempdir().unwrap();
    let ours = download_sums(&server.repo_url("go"), via_sluice.path(), &modules);
    let direct = direct_home(&[("https://example.com/legacy", dir)]);
    let theirs = download_sums("direct", direct.path(), &modules);
    assert_eq!(ours, theirs, "zip and go.mod sums must be the ones Go computes from git");
    assert_eq!(ours[1].0, "v2.0.0+incompatible");
    // And the commit time is what the go command records from git too.
    let cached_info = |home: &Path, version: &str| {
        std::fs::read_to_string(
            home.join(format!("gopath/pkg/mod/cache/download/example.com/legacy.git/@v/{version}.info")),
        )
        .unwrap()
    };
    assert_eq!(info_time(&cached_info(via_sluice.path(), "v0.9.1")), info_time(&cached_info(direct.path(), "v0.9.1")));

    // A project depending on the +incompatible version builds with it.
    let consumer = server.work.join("consumer");
    write(
        &consumer,
        "go.mod",
        "module example.com/consumer\n\ngo 1.19\n\nrequire example.com/legacy.git v2.0.0+incompatible\n",
    );
    write(
        &consumer,
        "main.go",
        "package main\n\nimport (\n\t\"fmt\"\n\n\tlegacy \"example.com/legacy.git\"\n)\n\nfunc main() { fmt.Println(legacy.Version()) }\n",
    );
    let binary = consumer.join("consumer");
    let (ok, _, stderr) = go(&server, via_sluice.path(), &consumer, &["build", "-o", binary.to_str().unwrap(), "."]);
    assert!(ok, "go build failed: {stderr}");
    assert_eq!(run(&mut Command::new(&binary)).1, "v2 without a go.mod\n");
    let root = via_sluice.path().join("gopath/pkg/mod/example.com/legacy.git@v2.0.0+incompatible");
    assert!(
        !root.join("nested").exists() && !root.join("go.mod").exists(),
        "no nested module, no go.mod file in the zip"
    );

    // Without a module path for the source, a tag without go.mod is rejected with its reason.
    let unnamed = start_server(dir);
    let job = sync(&unnamed);
    let reasons: Vec<&str> =
        job["report"]["rejected"].as_array().unwrap().iter().map(|r| r["detail"].as_str().unwrap()).collect();
    assert_eq!(reasons.len(), 3, "{job}");
    assert!(reasons.iter().all(|r| r.contains("no go.mod") && r.contains("module")), "{reasons:?}");
}

/// `git archive`, which the go command builds module zips from, applies `.gitattributes`:
/// `eol=crlf`, `text`, `ident`; it does not apply `export-ignore`/`export-subst` for Go. The zip
/// Sluice serves has the same bytes, so a go.sum line written from either source verifies.
#[test]
fn gitattributes_conversions_give_the_sums_go_computes() {
    require_tool("go");
    require_tool("git");
    let repo = tempfile::tempdir().unwrap();
    let dir = repo.path();
    git(dir, &["init", "-q"]);
    write(dir, "go.mod", "module example.com/attrs.git\n\ngo 1.19\n");
    write(
        dir,
        ".gitattributes",
        "*.txt text eol=crlf\n*.go ident\n*.bat eol=crlf\nraw.bin -text\nignored.md export-ignore\nsubst.md export-subst\n*.ps1 text working-tree-encoding=UTF-16LE eol=crlf\n",
    );
    // Stored as UTF-8 in git; whatever git archive makes of it, Sluice must make the same.
    let utf16: Vec<u8> = "Write-Host hi\r\n".encode_utf16().flat_map(u16::to_le_bytes).collect();
    write_bytes(dir, "script.ps1", &utf16);
    write(dir, "notes.txt", "line one\nline two\n");
    write(dir, "attrs.go", "package attrs\n\n// $Id$\nconst Name = \"attrs\"\n");
    write(dir, "run.bat", "@echo off\necho hi\n");
    write(dir, "raw.bin", "keep\nas is\n");
    write(dir, "ignored.md", "still in the module\n");
    write(dir, "subst.md", "commit $Format:%H$\n");
    commit_and_tag(dir, "attributes", &["v1.0.0"]);

    let server = start_server(dir);
    sync(&server);
    // `.info` gives the commit time, as Go's own record from git does.
    let info = server.get("/go/example.com/attrs.git/@v/v1.0.0.info").1;
    assert_eq!(info_time(&info), "2020-09-13T12:26:40Z", "{info}");
    let modules = ["example.com/attrs.git@v1.0.0"];
    let via_sluice = tempfile::tempdir().unwrap();
    let ours = download_sums(&server.repo_url("go"), via_sluice.path(), &modules);
    let direct = direct_home(&[("https://example.com/attrs", dir)]);
    let theirs = download_sums("direct", direct.path(), &modules);
    assert_eq!(ours, theirs, "zip sums must be the ones Go computes from git");

    let unpacked = via_sluice.path().join("gopath/pkg/mod/example.com/attrs.git@v1.0.0");
    assert_eq!(std::fs::read_to_string(unpacked.join("notes.txt")).unwrap(), "line one\r\nline two\r\n");
    assert!(std::fs::read_to_string(unpacked.join("attrs.go")).unwrap().contains("// $Id: "), "ident is expanded");
    assert_eq!(std::fs::read_to_string(unpacked.join("subst.md")).unwrap(), "commit $Format:%H$\n");
    assert!(unpacked.join("ignored.md").exists());
}

/// A tag whose tree holds a file name that is not UTF-8 (git allows it; Go does not) is rejected
/// and recorded with its reason; the later tag and the other sources are published, past one
/// that cannot be reached at all.
#[test]
fn one_bad_tag_does_not_stop_the_sync() {
    use std::os::unix::ffi::OsStrExt;
    require_tool("git");
    let bad = tempfile::tempdir().unwrap();
    let dir = bad.path();
    git(dir, &["init", "-q"]);
    write(dir, "go.mod", "module example.com/bytes\n");
    std::fs::write(dir.join(std::ffi::OsStr::from_bytes(b"latin1-\xe9t\xe9.txt")), "ete\n").unwrap();
    commit_and_tag(dir, "a Latin-1 file name", &["v1.0.0"]);
    git(dir, &["rm", "-q", "--cached", "-r", "."]);
    std::fs::remove_file(dir.join(std::ffi::OsStr::from_bytes(b"latin1-\xe9t\xe9.txt"))).unwrap();
    commit_and_tag(dir, "renamed", &["v1.1.0"]);
    let good = tempfile::tempdir().unwrap();
    git(good.path(), &["init", "-q"]);
    write(good.path(), "go.mod", "module example.com/fine\n");
    commit_and_tag(good.path(), "fine", &["v0.1.0"]);

    let missing = good.path().join("no-such-repository");
    let mut server = start_with_sources(&[(dir, None), (&missing, None), (good.path(), None)]);
    let job = sync(&server);
    // An unreachable source is reported, and the next one is still read.
    let errors = job["report"]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{job}");
    assert!(errors[0]["source"].as_str().unwrap().ends_with("no-such-repository"), "{job}");
    assert_eq!(server.get("/go/example.com/bytes/@v/list"), (200, "v1.1.0\n".to_string()));
    assert_eq!(server.get("/go/example.com/fine/@v/list"), (200, "v0.1.0\n".to_string()));
    let rejected = job["report"]["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1, "{job}");
    assert!(rejected[0]["detail"].as_str().unwrap().contains("not UTF-8"), "{job}");

    let admin = server.token("admin", "admin", None);
    let tags = server.api_json("/api/v1/repositories/go/git-tags", &admin);
    let v1 = tags["tags"].as_array().unwrap().iter().find(|t| t["tag"] == "v1.0.0").unwrap().clone();
    assert_eq!(v1["status"], "rejected", "{v1}");
    assert!(v1["reason"].as_str().unwrap().contains("not UTF-8"), "{v1}");
    // A second sync does not trip over it again.
    let again = sync(&server);
    assert!(again["report"]["rejected"].as_array().unwrap().is_empty(), "{again}");
    assert!(server.is_alive());
}

/// A source publishes only module paths under its own: a tag whose go.mod claims another source's
/// module is rejected, so one repository cannot publish a newer version of another's module.
#[test]
fn sources_publish_only_their_own_module_paths() {
    require_tool("git");
    let alpha = tempfile::tempdir().unwrap();
    git(alpha.path(), &["init", "-q"]);
    write(alpha.path(), "go.mod", "module example.com/alpha\n");
    write(alpha.path(), "sub/go.mod", "module example.com/alpha/sub\n");
    commit_and_tag(alpha.path(), "alpha", &["v1.0.0", "sub/v1.0.0"]);
    let beta = tempfile::tempdir().unwrap();
    git(beta.path(), &["init", "-q"]);
    write(beta.path(), "go.mod", "module example.com/beta\n");
    commit_and_tag(beta.path(), "beta", &["v1.0.0"]);
    write(beta.path(), "go.mod", "module example.com/alpha\n");
    commit_and_tag(beta.path(), "hijack", &["v1.5.0"]);

    let server =
        start_with_sources(&[(alpha.path(), Some("example.com/alpha")), (beta.path(), Some("example.com/beta"))]);
    let job = sync(&server);
    assert_eq!(server.get("/go/example.com/alpha/@v/list"), (200, "v1.0.0\n".to_string()));
    assert_eq!(server.get("/go/example.com/alpha/sub/@v/list"), (200, "v1.0.0\n".to_string()));
    assert_eq!(server.get("/go/example.com/beta/@v/list"), (200, "v1.0.0\n".to_string()));
    assert_eq!(server.get("/go/example.com/alpha/@v/v1.5.0.info").0, 404);
    let rejected = job["report"]["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1, "{job}");
    assert_eq!(rejected[0]["tag"], "v1.5.0");
    assert!(
        rejected[0]["detail"].as_str().unwrap().contains("not under this source's module path example.com/beta"),
        "{job}"
    );

    // Local folders imply no module path; still, a module one source published takes no
    // versions from another.
    let first = tempfile::tempdir().unwrap();
    git(first.path(), &["init", "-q"]);
    write(first.path(), "go.mod", "module example.com/shared\n");
    commit_and_tag(first.path(), "first", &["v1.0.0"]);
    let second = tempfile::tempdir().unwrap();
    git(second.path(), &["init", "-q"]);
    write(second.path(), "go.mod", "module example.com/shared\n");
    commit_and_tag(second.path(), "second", &["v1.1.0"]);
    let server = start_with_sources(&[(first.path(), None), (second.path(), None)]);
    let job = sync(&server);
    assert_eq!(server.get("/go/example.com/shared/@v/list"), (200, "v1.0.0\n".to_string()));
    let rejected = job["report"]["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1, "{job}");
    assert!(rejected[0]["detail"].as_str().unwrap().contains("published from another git source"), "{job}");
}

/// A sync answers 202 at once with a job; the job shows its progress and, when done, its report.
#[test]
fn syncs_run_in_the_background_with_visible_progress() {
    require_tool("git");
    let repo = tempfile::tempdir().unwrap();
    build_repository(repo.path());
    let server = start_server(repo.path());
    let admin = server.token("admin", "admin", None);
    let reader = server.token("reader", "read", None);
    let start =
        server.http().post(format!("{}/api/v1/repositories/go/sync", server.url)).bearer_auth(&admin).send().unwrap();
    assert_eq!(start.status().as_u16(), 202);
    let answer: serde_json::Value = start.json().unwrap();
    assert!(answer["job"]["id"].as_u64().is_some(), "{answer}");
    assert!(matches!(answer["job"]["status"].as_str(), Some("running" | "done")), "{answer}");
    let job = wait_for_sync(&server, &reader, &answer);
    assert_eq!(job["status"], "done");
    let progress = &job["progress"];
    assert_eq!((progress["sources_total"].as_u64(), progress["sources_done"].as_u64()), (Some(1), Some(1)), "{job}");
    // Every tag of the repository was looked at: six version tags and a name.
    assert_eq!((progress["tags_total"].as_u64(), progress["tags_done"].as_u64()), (Some(7), Some(7)), "{job}");
    assert_eq!(job["report"]["published"].as_array().unwrap().len(), 4, "{job}");
    assert_eq!(server.get("/go/example.com/greet/@v/list"), (200, "v1.0.0\nv1.1.0\n".to_string()));

    let missing = server
        .http()
        .get(format!("{}/api/v1/repositories/go/sync/999999", server.url))
        .bearer_auth(&admin)
        .send()
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    let anonymous = server.http().post(format!("{}/api/v1/repositories/go/sync", server.url)).send().unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
}
