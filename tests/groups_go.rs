//! Go modules in groups, `private` module paths and `min_age` (issue 15). The upstream is a second
//! `sluice serve` whose git-tag repository serves modules from fixture repositories; the registry
//! under test has a local git-tag repository `go`, a proxy `goproxy` of that upstream and a group
//! `all` over both. The real go command downloads and builds through them with fresh module
//! caches.

mod support;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::gomod_fixture::{
    commit_and_tag_at, git, git_sources, go_with_proxy, start_server, sync, write, COMMIT_TIME,
};
use support::{require_tool, Server};

/// A module repository in `dir`: package `pkg` whose `Hello()` says `"<greeting> <tag>"`, one
/// commit and tag per `(tag, commit time)`.
fn module_repo(dir: &Path, module: &str, greeting: &str, tags: &[(&str, u64)]) {
    git(dir, &["init", "-q"]);
    write(dir, "go.mod", &format!("module {module}\n\ngo 1.19\n"));
    for (tag, time) in tags {
        write(dir, "pkg.go", &format!("package pkg\n\nfunc Hello() string {{ return \"{greeting} {tag}\" }}\n"));
        commit_and_tag_at(dir, *time, tag, &[tag]);
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A proxy repository of `up`'s `go` repository, with `extra` settings.
fn proxy_repo(name: &str, up: &Server, extra: &str) -> String {
    format!(
        "[[repository]]\nname = \"{name}\"\nformat = \"gomod\"\nupstream = \"{}\"\nallow_local_upstream = true\n{extra}\n\n",
        up.repo_url("go")
    )
}

/// A work folder with an empty go.mod and its own fresh module cache (the `TempDir` is its home).
fn work(root: &Path, name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let home = tempfile::tempdir_in(root).unwrap();
    let dir = home.path().join(name);
    write(&dir, "go.mod", &format!("module example.com/{name}\n\ngo 1.19\n"));
    (home, dir)
}

/// `go list -m -versions MODULE` through `proxy`: the versions the go command is offered.
fn listed(proxy: &str, root: &Path, module: &str) -> String {
    versions_of(proxy, root, module).unwrap_or_else(|e| panic!("go list through {proxy} failed: {e}"))
}

/// `go list -m -versions MODULE` through `proxy`: the versions offered, or what the go command
/// printed when it found none.
fn versions_of(proxy: &str, root: &Path, module: &str) -> Result<String, String> {
    let (home, dir) = work(root, "lister");
    let (ok, stdout, stderr) = go_with_proxy(proxy, home.path(), &dir, &["list", "-m", "-versions", module]);
    if !ok {
        return Err(stderr);
    }
    Ok(stdout.trim().strip_prefix(module).unwrap_or_default().trim().to_string())
}

/// `go mod download -json QUERY` through `proxy` with a fresh cache: the version it resolved to,
/// or the error the go command printed.
fn download(proxy: &str, root: &Path, query: &str) -> Result<String, String> {
    let (home, dir) = work(root, "downloader");
    let (ok, stdout, stderr) = go_with_proxy(proxy, home.path(), &dir, &["mod", "download", "-json", query]);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_default();
    match v["Error"].as_str() {
        None if ok => Ok(v["Version"].as_str().unwrap_or_default().to_string()),
        error => Err(format!("{}\n{stderr}", error.unwrap_or_default())),
    }
}

const FRESH: &str = "github.com/Pub/fresh";

#[test]
fn min_age_withholds_module_versions_younger_than_it() {
    require_tool("go");
    require_tool("git");
    // The GOPROXY protocol's only time is `.info`'s, the tagged commit's time: v1.0.0 is an old
    // commit, v1.1.0 one made a moment ago.
    let repo = tempfile::tempdir().unwrap();
    module_repo(repo.path(), FRESH, "fresh", &[("v1.0.0", COMMIT_TIME), ("v1.1.0", now())]);
    let up = start_server(&[(repo.path(), Some(FRESH))]);
    sync(&up);
    // "Older than the setting" without waiting days, as tests/groups.rs does for npm: a proxy
    // with a cool-off no test outlives (1 h), and one of 3 s read after sleeping past it. Only
    // lower bounds on elapsed time are relied on.
    let config = proxy_repo("goproxy", &up, "min_age = \"1h\"") + &proxy_repo("warm", &up, "min_age = \"3s\"");
    let registry = Server::start_with_config(&config);
    let cautious = registry.repo_url("goproxy");
    assert_eq!(listed(&up.repo_url("go"), &registry.work, FRESH), "v1.0.0 v1.1.0", "the upstream has both");

    // Committed a moment ago: not offered, by the list, as latest or by exact version.
    assert_eq!(listed(&cautious, &registry.work, FRESH), "v1.0.0");
    assert_eq!(download(&cautious, &registry.work, &format!("{FRESH}@latest")), Ok("v1.0.0".to_string()));
    let refused = download(&cautious, &registry.work, &format!("{FRESH}@v1.1.0")).unwrap_err();
    assert!(refused.contains("min_age"), "the go command shows why: {refused}");
    let (status, body) = registry.get("/goproxy/github.com/!pub/fresh/@v/v1.1.0.zip");
    assert_eq!(status, 404, "nor is its zip fetched: {body}");
    let admin = registry.token("admin", "admin", None);
    let pushes = registry.api_json("/api/v1/pushes?repository=goproxy", &admin);
    let fetched: Vec<&str> =
        pushes["pushes"].as_array().unwrap().iter().filter_map(|p| p["version"].as_str()).collect();
    assert_eq!(fetched, ["v1.0.0"], "only the old version was fetched: {pushes}");

    // Older than the setting: offered and downloadable.
    std::thread::sleep(Duration::from_secs(4));
    let warm = registry.repo_url("warm");
    assert_eq!(listed(&warm, &registry.work, FRESH), "v1.0.0 v1.1.0");
    assert_eq!(download(&warm, &registry.work, &format!("{FRESH}@latest")), Ok("v1.1.0".to_string()));
    assert_eq!(listed(&cautious, &registry.work, FRESH), "v1.0.0", "still too young for the 1 h proxy");
}

const GREET: &str = "github.com/Pub/greet";
const SECRET: &str = "github.com/Acme/secret";
const TOOL: &str = "example.com/acme/tool";
/// A private module path with a capital: Go escapes it (`github.com/!acme/tools`) in URLs.
const TOOLS: &str = "github.com/Acme/tools";

/// The local member's `private` patterns, written once as module paths are spelt (not as Go's
/// URLs escape capitals).
const PRIVATE: &str = r#"["example.com/acme/*", "github.com/Acme/*"]"#;

#[test]
fn a_group_resolves_modules_from_the_local_member_first_and_never_private_ones_upstream() {
    require_tool("go");
    require_tool("git");
    let root = tempfile::tempdir().unwrap();
    let repo = |name: &str| {
        let dir = root.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    };
    // The upstream: a public module, a public impostor of the company's module (a higher
    // version, as dependency confusion does it) and a module under the company's private prefix.
    let (greet, impostor, tool, tools) = (repo("greet"), repo("impostor"), repo("tool"), repo("tools"));
    module_repo(&greet, GREET, "greet", &[("v1.0.0", COMMIT_TIME), ("v1.1.0", COMMIT_TIME + 60)]);
    module_repo(&impostor, SECRET, "impostor", &[("v1.0.0", COMMIT_TIME), ("v1.9.9", COMMIT_TIME + 60)]);
    module_repo(&tool, TOOL, "public tool", &[("v1.0.0", COMMIT_TIME)]);
    module_repo(&tools, TOOLS, "public tools", &[("v1.0.0", COMMIT_TIME)]);
    let up =
        start_server(&[(&greet, Some(GREET)), (&impostor, Some(SECRET)), (&tool, Some(TOOL)), (&tools, Some(TOOLS))]);
    sync(&up);

    // The local member serves the company's module from its own git repository.
    let internal = repo("internal");
    module_repo(&internal, SECRET, "internal", &[("v1.0.0", COMMIT_TIME)]);
    let config = format!(
        "[[repository]]\nname = \"go\"\nformat = \"gomod\"\ngit = {}\npoll_seconds = 0\nprivate = {}\n\n{}\
         [[repository]]\nname = \"all\"\nformat = \"gomod\"\nmembers = [\"go\", \"goproxy\"]\n",
        git_sources(&[(&internal, Some(SECRET))]),
        PRIVATE,
        proxy_repo("goproxy", &up, "")
    );
    let mut registry = Server::start_with_config(&config);
    sync(&registry);
    let all = registry.repo_url("all");

    // A build that needs a module from each member, with a fresh module cache.
    let (home, app) = work(root.path(), "app");
    write(
        &app,
        "go.mod",
        &format!("module example.com/app\n\ngo 1.19\n\nrequire (\n\t{GREET} v1.1.0\n\t{SECRET} v1.0.0\n)\n"),
    );
    write(
        &app,
        "main.go",
        &format!(
            "package main\n\nimport (\n\t\"fmt\"\n\n\tgreet \"{GREET}\"\n\tsecret \"{SECRET}\"\n)\n\n\
             func main() {{ fmt.Println(greet.Hello() + \", \" + secret.Hello()) }}\n"
        ),
    );
    let (ok, _, stderr) = go_with_proxy(&all, home.path(), &app, &["mod", "download"]);
    assert!(ok, "go mod download through the group failed: {stderr}");
    let (ok, stdout, stderr) = go_with_proxy(&all, home.path(), &app, &["run", "."]);
    assert!(ok, "go run through the group failed: {stderr}");
    assert_eq!(stdout.trim(), "greet v1.1.0, internal v1.0.0", "the public module from upstream, ours from `go`");

    // The company's module: only the local member's versions, though the upstream has a higher one.
    assert_eq!(listed(&registry.repo_url("goproxy"), &registry.work, SECRET), "v1.0.0 v1.9.9", "the upstream's");
    assert_eq!(registry.get("/all/github.com/!acme/secret/@v/list"), (200, "v1.0.0\n".to_string()));
    assert_eq!(listed(&all, &registry.work, SECRET), "v1.0.0");
    assert_eq!(download(&all, &registry.work, &format!("{SECRET}@latest")), Ok("v1.0.0".to_string()));
    assert!(download(&all, &registry.work, &format!("{SECRET}@v1.9.9")).is_err(), "the impostor's version");
    assert_eq!(listed(&all, &registry.work, GREET), "v1.0.0 v1.1.0", "public modules list the upstream's");

    // A module under a `private` prefix, not held locally: never resolved through the proxy, though
    // the upstream has it (the proxy member's own URL shows it does).
    let refused = download(&all, &registry.work, &format!("{TOOL}@v1.0.0")).unwrap_err();
    assert!(refused.contains("404") || refused.contains("not found"), "{refused}");
    assert!(download(&all, &registry.work, &format!("{TOOL}@latest")).is_err());
    assert_eq!(listed(&registry.repo_url("goproxy"), &registry.work, TOOL), "v1.0.0");
    // With a capital, under `github.com/Acme/*` written once: asked as `github.com/!acme/tools`,
    // and still neither listed, shown nor fetched (the plugin names the module it asks about).
    let unlisted = versions_of(&all, &registry.work, TOOLS).expect_err("the group lists a private module");
    assert!(unlisted.contains("404") || unlisted.contains("not found"), "{unlisted}");
    assert!(download(&all, &registry.work, &format!("{TOOLS}@v1.0.0")).is_err());
    assert!(download(&all, &registry.work, &format!("{TOOLS}@latest")).is_err());
    for path in ["@v/list", "@latest", "@v/v1.0.0.info", "@v/v1.0.0.mod", "@v/v1.0.0.zip"] {
        let (status, body) = registry.get(&format!("/all/github.com/!acme/tools/{path}"));
        assert_eq!(status, 404, "{path}: {body}");
    }
    assert_eq!(listed(&registry.repo_url("goproxy"), &registry.work, TOOLS), "v1.0.0", "the upstream has it");

    // What came from the upstream is stored in the proxy member, fetched once; nothing of the
    // company's names.
    let admin = registry.token("admin", "admin", None);
    let pushes = registry.api_json("/api/v1/pushes?repository=goproxy", &admin);
    let fetched: Vec<String> = pushes["pushes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| format!("{}@{}", p["package"].as_str().unwrap_or_default(), p["version"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(fetched, [format!("{GREET}@v1.1.0")], "{pushes}");
    let (status, _) = registry.get("/goproxy/github.com/!pub/greet/@v/v1.1.0.zip");
    assert_eq!(status, 200, "the proxy member serves what the group fetched");
    assert!(registry.is_alive());
}
