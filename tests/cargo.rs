//! The Cargo format end to end: the real `cargo` publishes, resolves, builds, yanks, searches
//! and lists owners against a real `sluice serve`, with a fresh `CARGO_HOME` whose only registry
//! is Sluice's sparse index, and nothing fetched from crates.io.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};
use support::cargo_fixture::{consumer, Cargo, CrateSource, REGISTRY};
use support::Server;

const REPO: &str = "cargo";

fn index_url(server: &Server, repo: &str) -> String {
    format!("sparse+{}/{repo}/index/", server.url)
}

/// `sluice-core`: features, nothing but the standard library.
fn core_crate(version: &str) -> CrateSource {
    CrateSource::new(
        "sluice-core",
        version,
        &format!(
            "pub const VERSION: &str = {version:?};\n\
             pub fn greet() -> String {{ if cfg!(feature = \"fast\") {{ \"fast hello\".into() }} else {{ \"hello\".into() }} }}\n\
             #[cfg(feature = \"extra\")]\npub fn extra() -> &'static str {{ \"extra on\" }}\n"
        ),
    )
    .tables("[features]\ndefault = [\"std\"]\nstd = []\nfast = []\nextra = [\"fast\"]\n")
}

/// `sluice-extra`: the optional dependency `sluice-app` enables with a `dep:` feature.
fn extra_crate() -> CrateSource {
    CrateSource::new("sluice-extra", "1.0.0", "pub fn turbo() -> u32 { 42 }\n")
}

/// `sluice-app`: depends on `sluice-core` renamed to `core_lib` (without default features, with
/// `fast`), adds `extra` on unix through a target-specific table, and has an optional
/// dependency behind a `dep:` feature (which goes to the index's `features2`).
fn app_crate() -> CrateSource {
    CrateSource::new(
        "sluice-app",
        "0.2.0",
        "pub fn describe() -> String {\n\
         \x20   let mut s = format!(\"{} from core {}\", core_lib::greet(), core_lib::VERSION);\n\
         \x20   #[cfg(unix)]\n    s.push_str(&format!(\", {}\", core_lib::extra()));\n\
         \x20   #[cfg(feature = \"turbo\")]\n    s.push_str(&format!(\", turbo {}\", sluice_extra::turbo()));\n\
         \x20   s\n}\n",
    )
    .tables(&format!(
        "[dependencies]\n\
         core_lib = {{ package = \"sluice-core\", version = \"0.1\", registry = {REGISTRY:?}, default-features = false, features = [\"fast\"] }}\n\
         sluice-extra = {{ version = \"1\", registry = {REGISTRY:?}, optional = true }}\n\n\
         [target.'cfg(unix)'.dependencies]\n\
         core_lib = {{ package = \"sluice-core\", version = \"0.1\", registry = {REGISTRY:?}, default-features = false, features = [\"extra\"] }}\n\n\
         [features]\nturbo = [\"dep:sluice-extra\"]\n"
    ))
}

const CONSUMER_DEPS: &str = "sluice-app = { version = \"0.2\", registry = \"sluice\", features = [\"turbo\"] }\n\
                             sluice-core = { version = \"0.1\", registry = \"sluice\" }\n";
const CONSUMER_MAIN: &str =
    "fn main() { println!(\"{} | direct core {}\", sluice_app::describe(), sluice_core::VERSION); }\n";

/// The lines of a crate's index file, as JSON.
fn index_lines(server: &Server, repo: &str, path: &str) -> Vec<Value> {
    let (status, body) = server.get(&format!("/{repo}/index/{path}"));
    assert_eq!(status, 200, "{body}");
    body.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// `(name, version, checksum)` of every registry package in a Cargo.lock.
fn locked(project: &Path) -> Vec<(String, String, String)> {
    let lock: toml::Table = toml::from_str(&std::fs::read_to_string(project.join("Cargo.lock")).unwrap()).unwrap();
    let mut out: Vec<_> = lock["package"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p.get("source").is_some())
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap().to_string();
            (s("name"), s("version"), s("checksum"))
        })
        .collect();
    out.sort();
    out
}

fn sha256_of_download(server: &Server, name: &str, version: &str) -> String {
    let r = server.http().get(format!("{}/{REPO}/api/v1/crates/{name}/{version}/download", server.url)).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    hex::encode(Sha256::digest(r.bytes().unwrap()))
}

/// A publish request framed as cargo frames it, sent without cargo.
fn raw_publish(server: &Server, token: &str, json: &[u8], krate: &[u8]) -> (u16, Value) {
    let mut body = (json.len() as u32).to_le_bytes().to_vec();
    body.extend_from_slice(json);
    body.extend_from_slice(&(krate.len() as u32).to_le_bytes());
    body.extend_from_slice(krate);
    let r = server
        .http()
        .put(format!("{}/{REPO}/api/v1/crates/new", server.url))
        .header("authorization", token)
        .body(body)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

#[test]
fn publish_resolve_build_yank_search_and_owners() {
    let mut server = Server::start();
    let token = server.token("crate-publisher", "publish", Some(REPO));
    let cargo = Cargo::new(&server.work, "publisher", &index_url(&server, REPO), Some(&token));

    for source in [core_crate("0.1.0"), core_crate("0.1.1"), extra_crate(), app_crate()] {
        let dir = source.write(&server.work);
        // A normal publish: cargo packages, verifies by building against Sluice, uploads, and
        // waits until the index shows the new version.
        cargo.ok(&dir, &["publish", "--registry", REGISTRY]);
    }

    // The index file at the RFC's path, one line per version.
    let core_lines = index_lines(&server, REPO, "sl/ui/sluice-core");
    assert_eq!(core_lines.iter().map(|l| l["vers"].as_str().unwrap()).collect::<Vec<_>>(), ["0.1.0", "0.1.1"]);
    assert_eq!(core_lines[0]["features"]["extra"], serde_json::json!(["fast"]));
    assert_eq!(core_lines[0]["rust_version"], "1.70");
    let app = &index_lines(&server, REPO, "sl/ui/sluice-app")[0];
    let deps = app["deps"].as_array().unwrap();
    let renamed: Vec<_> = deps.iter().filter(|d| d["name"] == "core_lib").collect();
    assert_eq!(renamed.len(), 2, "{deps:?}");
    assert!(renamed
        .iter()
        .all(|d| d["package"] == "sluice-core" && d["req"] == "^0.1" && d["default_features"] == false));
    assert!(renamed.iter().all(|d| d.get("registry").is_none()), "same-registry deps name no registry: {deps:?}");
    assert!(renamed.iter().any(|d| d["target"] == "cfg(unix)" && d["features"] == serde_json::json!(["extra"])));
    let extra = deps.iter().find(|d| d["name"] == "sluice-extra").unwrap();
    assert_eq!(extra["optional"], true);
    assert_eq!(app["features2"], serde_json::json!({"turbo": ["dep:sluice-extra"]}));
    assert_eq!(app["v"], 2);
    // Index files carry ETags; cargo revalidates with If-None-Match and gets a 304.
    let index_file = format!("{}/{REPO}/index/sl/ui/sluice-core", server.url);
    let first = server.http().get(&index_file).send().unwrap();
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    let again = server.http().get(&index_file).header("if-none-match", &etag).send().unwrap();
    assert_eq!(again.status().as_u16(), 304);
    let (status, config) = server.get("/cargo/index/config.json");
    assert_eq!(status, 200);
    let config: Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["dl"], format!("{}/cargo/api/v1/crates", server.url));
    assert!(config.get("auth-required").is_none(), "a public repository");

    // A fresh project, a fresh CARGO_HOME with no token: it resolves what the index says, with
    // checksums that are the sha256 of the served .crate files, and builds and runs.
    let user = Cargo::new(&server.work, "user", &index_url(&server, REPO), None);
    let project = consumer(&server.work, "consumer", CONSUMER_DEPS, CONSUMER_MAIN);
    user.ok(&project, &["generate-lockfile"]);
    let lock = locked(&project);
    let versions: Vec<_> = lock.iter().map(|(n, v, _)| format!("{n} {v}")).collect();
    assert_eq!(versions, ["sluice-app 0.2.0", "sluice-core 0.1.1", "sluice-extra 1.0.0"]);
    for (name, version, checksum) in &lock {
        assert_eq!(checksum, &sha256_of_download(&server, name, version), "{name} {version}");
        let path = format!("sl/ui/{name}");
        let line = index_lines(&server, REPO, &path).into_iter().find(|l| l["vers"] == version.as_str()).unwrap();
        assert_eq!(&line["cksum"], checksum.as_str());
    }
    let out = user.ok(&project, &["run", "--quiet"]);
    assert!(out.contains("fast hello from core 0.1.1, extra on, turbo 42 | direct core 0.1.1"), "{out}");
    assert_eq!(user.registries_used().len(), 1, "only Sluice's index: {:?}", user.registries_used());
    assert!(user.registries_used()[0].starts_with("127.0.0.1-"), "{:?}", user.registries_used());

    // cargo search and cargo owner --list.
    let out = user.ok(&project, &["search", "--registry", REGISTRY, "sluice"]);
    assert!(out.contains("sluice-core = \"0.1.1\""), "{out}");
    assert!(out.contains("sluice-app = \"0.2.0\"") && out.contains("# The sluice-app crate"), "{out}");
    let out = cargo.ok(&project, &["owner", "--registry", REGISTRY, "--list", "sluice-core"]);
    assert!(out.contains("crate-publisher"), "{out}");
    let (ok, _, err) = cargo.run(&project, &["owner", "--registry", REGISTRY, "--add", "someone", "sluice-core"]);
    assert!(!ok && err.contains("owners are the tokens that published the crate"), "{err}");
    // `cargo info` reads the index line and the .crate.
    let out = user.ok(&project, &["info", "--registry", REGISTRY, "sluice-app"]);
    assert!(out.contains("0.2.0") && out.contains("turbo"), "{out}");

    // Yank 0.1.1: a new resolution takes 0.1.0, the locked project still builds (in another fresh
    // CARGO_HOME, so the yanked .crate is downloaded again), and --undo brings it back.
    let locked_project = consumer(&server.work.join("locked"), "consumer", CONSUMER_DEPS, CONSUMER_MAIN);
    std::fs::copy(project.join("Cargo.lock"), locked_project.join("Cargo.lock")).unwrap();
    cargo.ok(&project, &["yank", "--registry", REGISTRY, "sluice-core@0.1.1"]);
    assert_eq!(index_lines(&server, REPO, "sl/ui/sluice-core")[1]["yanked"], true);
    let fresh = consumer(&server.work, "fresh", CONSUMER_DEPS, CONSUMER_MAIN);
    user.ok(&fresh, &["generate-lockfile"]);
    assert!(locked(&fresh).iter().any(|(n, v, _)| n == "sluice-core" && v == "0.1.0"), "{:?}", locked(&fresh));
    let again = Cargo::new(&server.work, "locked-user", &index_url(&server, REPO), None);
    let out = again.ok(&locked_project, &["run", "--quiet", "--locked"]);
    assert!(out.contains("direct core 0.1.1"), "the locked build uses the yanked version: {out}");
    let out = user.ok(&fresh, &["run", "--quiet"]);
    assert!(out.contains("direct core 0.1.0"), "{out}");
    cargo.ok(&project, &["yank", "--undo", "--registry", REGISTRY, "sluice-core@0.1.1"]);
    assert_eq!(index_lines(&server, REPO, "sl/ui/sluice-core")[1]["yanked"], false);

    // A republished version is refused: by cargo, which reads the index first, and by the server
    // when a request gets past that, with the detail crates.io gives and nothing stored.
    let blobs = server.blob_files().len();
    let (ok, _, err) =
        cargo.run(&core_crate("0.1.0").write(&server.work.join("again")), &["publish", "--registry", REGISTRY]);
    assert!(!ok && err.contains("sluice-core@0.1.0 already exists"), "{err}");
    // The .crate cargo made, as the server serves it.
    let krate = server
        .http()
        .get(format!("{}/{REPO}/api/v1/crates/sluice-core/0.1.0/download", server.url))
        .send()
        .unwrap()
        .bytes()
        .unwrap()
        .to_vec();
    let json = serde_json::json!({"name": "sluice-core", "vers": "0.1.0", "deps": [],
        "features": {"default": ["std"], "std": [], "fast": [], "extra": ["fast"]}, "links": null});
    let (status, body) = raw_publish(&server, &token, json.to_string().as_bytes(), &krate);
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["errors"][0]["detail"], "crate version `0.1.0` is already uploaded");
    // A request whose JSON does not state the packaged crate, and one that is not framed.
    let lying = serde_json::json!({"name": "sluice-core", "vers": "0.1.0", "deps": [], "features": {}});
    let (status, body) = raw_publish(&server, &token, lying.to_string().as_bytes(), &krate);
    assert_eq!(status, 400, "{body}");
    assert!(body["errors"][0]["detail"].as_str().unwrap().contains("disagree about the features"), "{body}");
    let (status, body) = raw_publish(&server, &token, b"{}", b"");
    assert_eq!(status, 400, "{body}");
    assert_eq!(server.blob_files().len(), blobs, "refused publishes store nothing");
    assert!(server.is_alive(), "bad input does not take the server down");
    // Without a token cargo is told to log in.
    let anonymous = Cargo::new(&server.work, "anonymous", &index_url(&server, REPO), None);
    let (ok, _, err) = anonymous
        .run(&extra_crate().write(&server.work.join("anon")), &["publish", "--registry", REGISTRY, "--no-verify"]);
    assert!(!ok && err.contains("no token found for `sluice`"), "{err}");
}

/// A repository with `read = "token"`: `config.json` says `auth-required`, cargo sends its token
/// for every request, and without one it is refused.
#[test]
fn a_private_registry_requires_auth() {
    let server = Server::start_with_config("[[repository]]\nname = \"cargo\"\nformat = \"cargo\"\nread = \"token\"\n");
    assert_eq!(server.get("/cargo/index/config.json").0, 401);
    let token = server.token("private-publisher", "publish", Some(REPO));
    let cargo = Cargo::new(&server.work, "publisher", &index_url(&server, REPO), Some(&token));
    cargo.ok(&core_crate("0.1.0").write(&server.work), &["publish", "--registry", REGISTRY]);

    let config: Value = server
        .http()
        .get(format!("{}/cargo/index/config.json", server.url))
        .header("authorization", &token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(config["auth-required"], true);

    let deps = "sluice-core = { version = \"0.1\", registry = \"sluice\" }\n";
    let main = "fn main() { println!(\"core {}\", sluice_core::VERSION); }\n";
    let anonymous = Cargo::new(&server.work, "anonymous", &index_url(&server, REPO), None);
    let project = consumer(&server.work, "anonymous-app", deps, main);
    let (ok, _, err) = anonymous.run(&project, &["generate-lockfile"]);
    assert!(!ok && err.contains("no token found for `sluice`"), "{err}");
    let wrong = Cargo::new(&server.work, "wrong", &index_url(&server, REPO), Some("sluice_notatoken"));
    let (ok, _, err) = wrong.run(&project, &["generate-lockfile"]);
    assert!(!ok && err.contains("token rejected for `sluice`"), "an unknown token is refused: {err}");

    // `cargo login` keeps the token in CARGO_HOME/credentials.toml, read by `cargo:token`.
    let reader = Cargo::new(&server.work, "reader", &index_url(&server, REPO), None);
    let mut login = reader.cmd(&server.work, &["login", "--registry", REGISTRY]);
    let mut child = login.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let read_token = server.token("reader", "read", Some(REPO));
    writeln!(child.stdin.take().unwrap(), "{read_token}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "cargo login: {}", String::from_utf8_lossy(&out.stderr));
    let project = consumer(&server.work, "reader-app", deps, main);
    let out = reader.ok(&project, &["run", "--quiet"]);
    assert!(out.contains("core 0.1.0"), "{out}");
    // A read token cannot publish.
    let (ok, _, err) =
        reader.run(&extra_crate().write(&server.work), &["publish", "--registry", REGISTRY, "--no-verify"]);
    assert!(!ok && err.contains("403"), "{err}");
}

/// A gated repository: the crate exists for cargo only once its pipeline passed, with the job
/// running on the unpacked .crate.
#[test]
fn a_gated_crate_appears_only_after_its_pipeline_passes() {
    let ci = "unpacked:\n  script:\n    - test -f pkg/Cargo.toml\n    - grep -q 'name = \"sluice-core\"' pkg/Cargo.toml\n    - test -f pkg/src/lib.rs\n    - echo \"crate $CRATE_NAME $CRATE_VERSION\"\n";
    let server = Server::gated(REPO, "cargo", ci, "");
    let token = server.token("pusher", "publish", Some(REPO));
    let runner = server.token("runner", "runner", None);
    let admin = server.token("admin", "admin", None);
    let cargo = Cargo::new(&server.work, "publisher", &index_url(&server, REPO), Some(&token));

    // cargo publish uploads, then waits for the index to show the version: it is still waiting
    // while the pipeline is pending.
    let mut publish = cargo.cmd(&core_crate("0.1.0").write(&server.work), &["publish", "--registry", REGISTRY]);
    let child = publish.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let pending = server.wait_for(Duration::from_secs(120), || {
        server
            .http()
            .get(format!("{}/api/v1/pipelines?repository={REPO}&limit=1", server.url))
            .bearer_auth(&admin)
            .send()
            .ok()
            .and_then(|r| r.json::<Value>().ok())
            .is_some_and(|v| v["pipelines"].as_array().is_some_and(|p| !p.is_empty()))
    });
    assert!(pending, "the upload made a pipeline");
    assert_eq!(server.latest_pipeline(REPO, &admin)["pipeline"]["status"], "pending");
    assert_eq!(server.get("/cargo/index/sl/ui/sluice-core").0, 404, "a pending crate is not in the index");
    assert_eq!(server.get("/cargo/api/v1/crates/sluice-core/0.1.0/download").0, 404);
    let user = Cargo::new(&server.work, "user", &index_url(&server, REPO), None);
    let deps = "sluice-core = { version = \"0.1\", registry = \"sluice\" }\n";
    let main = "fn main() { println!(\"core {}\", sluice_core::VERSION); }\n";
    let project = consumer(&server.work, "app", deps, main);
    let (ok, _, err) = user.run(&project, &["generate-lockfile"]);
    assert!(!ok && err.contains("sluice-core"), "a pending crate does not resolve: {err}");

    server.run_one_job(&runner);
    let p = server.latest_pipeline(REPO, &admin);
    let job = server.api_json(&format!("/api/v1/jobs/{}", p["jobs"][1]["id"]), &admin);
    assert_eq!(p["pipeline"]["status"], "success", "{}", job["log"]);
    assert!(job["log"].as_str().unwrap().contains("crate sluice-core 0.1.0"), "{job}");
    // Now cargo publish sees the version and finishes.
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = user.ok(&project, &["run", "--quiet"]);
    assert!(out.contains("core 0.1.0"), "{out}");
}
