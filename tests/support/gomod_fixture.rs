//! Go module fixtures: git repositories shaped like real ones (tags from before go.mod, v2+ tags
//! without /vN, .gitattributes conversions, names git allows and Go does not), a server whose
//! git-tag repository reads them, and the go command pointed at it or at git directly.

use super::{run, Server};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The committer time of every fixture commit unless a test picks another.
pub const COMMIT_TIME: u64 = 1_600_000_000;

/// Runs git in `dir` with a fixed identity, failing the test on error.
pub fn git(dir: &Path, args: &[&str]) -> String {
    git_at(dir, COMMIT_TIME, args)
}

/// git with author and committer dates at `time` (Unix seconds).
pub fn git_at(dir: &Path, time: u64, args: &[&str]) -> String {
    let mut cmd = Command::new("git");
    let date = format!("{time} +0000");
    cmd.current_dir(dir)
        .args(["-c", "user.name=Gopher", "-c", "user.email=gopher@example.com", "-c", "init.defaultBranch=main"])
        .args(["-c", "core.autocrlf=false"])
        .args(args)
        .env("GIT_COMMITTER_DATE", &date)
        .env("GIT_AUTHOR_DATE", &date)
        .env("GIT_CONFIG_NOSYSTEM", "1");
    let (ok, stdout, stderr) = run(&mut cmd);
    assert!(ok, "git {args:?} failed: {stderr}");
    stdout.trim().to_string()
}

pub fn write(dir: &Path, path: &str, body: &str) {
    write_bytes(dir, path, body.as_bytes());
}

pub fn write_bytes(dir: &Path, path: &str, body: &[u8]) {
    let file = dir.join(path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(file, body).unwrap();
}

/// Commits everything at [`COMMIT_TIME`] and puts annotated tags on the commit.
pub fn commit_and_tag(dir: &Path, message: &str, tags: &[&str]) {
    commit_and_tag_at(dir, COMMIT_TIME, message, tags);
}

pub fn commit_and_tag_at(dir: &Path, time: u64, message: &str, tags: &[&str]) {
    git_at(dir, time, &["add", "-A"]);
    git_at(dir, time, &["commit", "-q", "-m", message]);
    for tag in tags {
        git_at(dir, time, &["tag", "-a", "-m", tag, tag]);
    }
}

/// `sources` as the TOML array of a repository's `git` key: plain paths, or tables with a module.
pub fn git_sources(sources: &[(&Path, Option<&str>)]) -> String {
    let items: Vec<String> = sources
        .iter()
        .map(|(path, module)| {
            let url = serde_json::to_string(path.to_str().unwrap()).unwrap();
            match module {
                None => url,
                Some(m) => format!("{{ url = {url}, module = {} }}", serde_json::to_string(m).unwrap()),
            }
        })
        .collect();
    format!("[{}]", items.join(", "))
}

/// A server whose `go` repository serves the tags of these git sources.
pub fn start_server(sources: &[(&Path, Option<&str>)]) -> Server {
    let config = format!(
        "[[repository]]\nname = \"go\"\nformat = \"gomod\"\ngit = {}\npoll_seconds = 0\n",
        git_sources(sources)
    );
    Server::start_with_config(&config)
}

/// Polls a sync job (the JSON the sync endpoints answer with) until it has finished; returns it.
pub fn wait_for_sync(server: &Server, token: &str, answer: &serde_json::Value) -> serde_json::Value {
    let url =
        answer["url"].as_str().unwrap_or_else(|| panic!("a sync answers with the job's url: {answer}")).to_string();
    let mut job = answer["job"].clone();
    let finished = server.wait_for(Duration::from_secs(300), || {
        job = server.api_json(&url, token)["job"].clone();
        job["status"] != "running"
    });
    assert!(finished, "the sync job never finished: {job}");
    println!("sync job: {job}");
    job
}

/// Asks the server to read the git sources now (a background job, polled until done); returns the
/// finished job.
pub fn sync(server: &Server) -> serde_json::Value {
    let admin = server.token("sync-admin", "admin", None);
    let response = server
        .http()
        .post(format!("{}/api/v1/repositories/go/sync", server.url))
        .bearer_auth(&admin)
        .send()
        .expect("POST sync");
    let status = response.status().as_u16();
    let text = response.text().unwrap_or_default();
    assert_eq!(status, 202, "a sync is started in the background and answered at once: {text}");
    let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
    let job = wait_for_sync(server, &admin, &answer);
    assert_eq!(job["status"], "done", "{job}");
    job
}

/// The go command, isolated from the machine's Go set-up and pointed at `proxy` (a URL, or
/// `direct` for git itself).
pub fn go_with_proxy(proxy: &str, home: &Path, dir: &Path, args: &[&str]) -> (bool, String, String) {
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

/// `(Version, Sum, GoModSum)` of each module `go mod download -json` reports.
pub fn download_sums(proxy: &str, home: &Path, modules: &[&str]) -> Vec<(String, String, String)> {
    let work = home.join("work");
    write(&work, "go.mod", "module example.com/work\n");
    let mut args = vec!["mod", "download", "-json"];
    args.extend_from_slice(modules);
    let (ok, stdout, stderr) = go_with_proxy(proxy, home, &work, &args);
    assert!(ok, "go mod download via {proxy} failed: {stderr}\n{stdout}");
    serde_json::Deserializer::from_str(&stdout)
        .into_iter::<serde_json::Value>()
        .map(|v| {
            let v = v.unwrap();
            assert!(v["Error"].is_null(), "go mod download via {proxy}: {v}");
            let field = |k: &str| v[k].as_str().unwrap_or_else(|| panic!("{k} in {v}")).to_string();
            (field("Version"), field("Sum"), field("GoModSum"))
        })
        .collect()
}

/// A home folder whose git config sends the go command's `https://HOST/PATH` fetches of a `.git`
/// module path to local repositories (`(url prefix, repository)`), so `GOPROXY=direct` reads git.
pub fn direct_home(redirects: &[(&str, &Path)]) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let mut config = String::new();
    for (prefix, repo) in redirects {
        config.push_str(&format!("[url \"file://{}\"]\n\tinsteadOf = {prefix}\n", repo.display()));
    }
    config.push_str("[protocol \"file\"]\n\tallow = always\n");
    std::fs::write(home.path().join(".gitconfig"), config).unwrap();
    home
}
