//! The web UI end to end: Debian's headless Chromium (driven by playwright-core from
//! tests/ui/, installed by .ci/install/ui.sh) against a real server, with real `npm` pushes and a
//! real `sluice runner` process; plus the UI's auth rules and its speed on a large repository.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::json;
use support::npm::Npm;
use support::{require_tool, Server};

const LOG_FIRST: &str = "ui-check-started";
const LOG_LAST: &str = "ui-check-line-42-done";
const JOB: &str = "ui-check";

fn pipeline_file() -> String {
    // The pause lets the browser see the job running before its last line arrives.
    format!(
        "stages: [test]\n{JOB}:\n  stage: test\n  script:\n    - echo {LOG_FIRST}\n    - test -f pkg/package.json\n    - sleep 4\n    - echo {LOG_LAST}\n"
    )
}

/// tests/ui, where package.json pins playwright-core.
fn ui_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/ui")
}

/// Fails (never skips) when the browser or playwright-core is missing.
fn require_browser() {
    require_tool("node");
    assert!(Path::new("/usr/bin/chromium").exists(), "/usr/bin/chromium is missing; run .ci/install/ui.sh");
    assert!(
        ui_dir().join("node_modules/playwright-core/package.json").exists(),
        "playwright-core is not installed in tests/ui; run .ci/install/ui.sh"
    );
}

/// A package folder with a dependency, for npm publish.
fn package_dir(root: &Path, name: &str, version: &str) -> PathBuf {
    let dir = root.join(format!("src-{name}-{version}"));
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = json!({
        "name": name, "version": version, "description": format!("{name}, shown in the web UI"),
        "main": "index.js", "license": "MIT", "dependencies": { "left-pad": "^1.3.0" },
    });
    std::fs::write(dir.join("package.json"), serde_json::to_string_pretty(&manifest).unwrap()).unwrap();
    std::fs::write(dir.join("index.js"), "module.exports = 42;\n").unwrap();
    dir
}

/// An npm client for another repository of the server than `npm`.
fn npm_for(server: &Server, repo: &str, token: &str) -> Npm {
    let npm = Npm::new(server, repo, Some(token));
    let registry = format!("{}/", server.repo_url(repo));
    let key = registry.trim_start_matches("http:");
    std::fs::write(npm.dir.join(".npmrc"), format!("registry={registry}\n{key}:_authToken={token}\n")).unwrap();
    Npm { dir: npm.dir, registry }
}

#[test]
fn browser_walks_a_gated_push_through_its_pipeline_and_a_private_repository() {
    require_browser();
    let server = Server::start_with_files(
        "[[repository]]\nname = \"npm\"\nformat = \"npm\"\ngate = \"pipeline\"\npipeline = \"ci.yml\"\n\n\
         [[repository]]\nname = \"secret\"\nformat = \"npm\"\nread = \"token\"\n",
        &[("ci.yml", &pipeline_file())],
    );
    let publisher = server.token("ui-publisher", "publish", None);
    let runner_token = server.token("ui-runner", "runner", None);
    let reader = server.token("ui-reader", "read", Some("secret"));

    let npm = Npm::new(&server, "pub", Some(&publisher));
    npm.ok(&package_dir(&server.work, "ui-demo", "1.0.0"), &["publish"]);
    let secret = npm_for(&server, "secret", &publisher);
    secret.ok(&package_dir(&server.work, "hidden-thing", "0.1.0"), &["publish"]);

    let mut node = Command::new("node");
    node.current_dir(ui_dir())
        .arg("ui-test.mjs")
        .env("SLUICE_URL", &server.url)
        .env("SLUICE_READ_TOKEN", &reader)
        .env("SLUICE_ACTOR", "ui-publisher")
        .env("UI_PACKAGE", "ui-demo")
        .env("UI_PRIVATE_PACKAGE", "hidden-thing")
        .env("UI_JOB", JOB)
        .env("UI_LOG_FIRST", LOG_FIRST)
        .env("UI_LOG_LAST", LOG_LAST)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut node = node.spawn().expect("run node tests/ui/ui-test.mjs");
    let mut runner = None;
    for line in BufReader::new(node.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        println!("[browser] {line}");
        if line == "READY_FOR_RUNNER" {
            // The job page is open: now a runner takes the job, and the page must follow it.
            let mut cmd = Command::new(support::sluice_bin());
            cmd.args(["runner", "--url", &server.url, "--token", &runner_token, "--work-dir"])
                .arg(server.work.join("runner"))
                .arg("--once");
            runner = Some(cmd.spawn().expect("start sluice runner --once"));
        }
    }
    let status = node.wait().unwrap();
    let runner_ok = runner.map(|mut r| r.wait().unwrap().success());
    assert!(status.success(), "the browser checks failed (see [browser] lines above)");
    assert_eq!(runner_ok, Some(true), "sluice runner --once ran the job");
}

/// The UI's cookie is the UI's alone: the format routes ignore it, the API too; badges follow
/// the repository's read rule; the login cookie carries its attributes and `Secure` over https.
#[test]
fn cookie_auth_is_the_uis_only_and_badges_follow_read_rules() {
    let server = Server::start_with_config(
        "[[repository]]\nname = \"npm\"\nformat = \"npm\"\n\n[[repository]]\nname = \"secret\"\nformat = \"npm\"\nread = \"token\"\n",
    );
    let admin = server.token("ui-admin", "admin", None);
    let reader = server.token("ui-reader", "read", Some("secret"));
    let npm = npm_for(&server, "secret", &admin);
    npm.ok(&package_dir(&server.work, "hidden-thing", "0.1.0"), &["publish"]);
    let public = npm_for(&server, "npm", &admin);
    public.ok(&package_dir(&server.work, "@acme/open-thing", "2.0.0"), &["publish", "--access", "public"]);

    let http = reqwest::blocking::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let get = |path: &str, cookie: Option<&str>| {
        let mut r = http.get(format!("{}{}", server.url, path));
        if let Some(c) = cookie {
            r = r.header("cookie", format!("sluice_token={c}"));
        }
        let r = r.send().unwrap();
        let status = r.status().as_u16();
        let ctype = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        (status, ctype, r.text().unwrap())
    };

    // Login: a bad token is refused; a good one sets the cookie and goes back to `next`.
    let login = |token: &str, proto: Option<&str>| {
        // Browsers send the page's Origin with a form; behind an https proxy that is https.
        let origin =
            if proto == Some("https") { server.url.replacen("http:", "https:", 1) } else { server.url.clone() };
        let mut r = http
            .post(format!("{}/ui/login", server.url))
            .header("origin", origin)
            .form(&[("token", token), ("next", "/ui/secret")]);
        if let Some(p) = proto {
            r = r.header("x-forwarded-proto", p);
        }
        r.send().unwrap()
    };
    assert_eq!(login("sluice_wrong", None).status().as_u16(), 401);
    let ok = login(&reader, None);
    assert_eq!(ok.status().as_u16(), 303);
    assert_eq!(ok.headers()["location"], "/ui/secret");
    let set = ok.headers()["set-cookie"].to_str().unwrap().to_string();
    for part in ["sluice_token=", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(part), "{set} has {part}");
    }
    assert!(!set.contains("Secure"), "no Secure over plain http: {set}");
    let https = login(&reader, Some("https"));
    assert!(https.headers()["set-cookie"].to_str().unwrap().contains("; Secure"), "Secure behind an https proxy");
    // An outside `next` is not followed.
    let r = http
        .post(format!("{}/ui/login", server.url))
        .header("origin", &server.url)
        .form(&[("token", reader.as_str()), ("next", "//evil.example/")])
        .send()
        .unwrap();
    assert_eq!(r.headers()["location"], "/");
    // A sign-in form of another site (or a request that says nothing of where it came from) is
    // refused: the UI's forms only count from its own pages.
    for origin in [Some("http://evil.example"), None] {
        let mut r = http.post(format!("{}/ui/login", server.url)).form(&[("token", reader.as_str()), ("next", "/")]);
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        let r = r.send().unwrap();
        assert_eq!(r.status().as_u16(), 403, "login from {origin:?}");
        assert!(r.headers().get("set-cookie").is_none());
    }

    // Pages: anonymous gets the login form for the private repository, the cookie opens it.
    let (s, ctype, body) = get("/ui/secret", None);
    assert_eq!(s, 401);
    assert!(ctype.starts_with("text/html") && body.contains("name=\"token\"") && !body.contains("hidden-thing"));
    let (s, _, body) = get("/ui/secret", Some(&reader));
    assert_eq!(s, 200);
    assert!(body.contains("hidden-thing"));
    let (s, _, body) = get("/ui/secret/packages/hidden-thing", Some(&reader));
    assert_eq!(s, 200, "{body}");
    let (s, _, body) = get("/ui/npm/packages/@acme/open-thing", None);
    assert_eq!(s, 200, "public package pages are anonymous");
    assert!(body.contains("2.0.0"));
    let (s, _, _) = get("/", None);
    assert_eq!(s, 200);

    // The format plugin's routes and the API do not take the cookie.
    let (s, _, _) = get("/secret/hidden-thing", Some(&reader));
    assert_eq!(s, 401, "the npm route of a private repository ignores the UI cookie");
    let (s, _, _) = get("/api/v1/repositories/secret/packages", Some(&reader));
    assert_eq!(s, 401, "the API ignores the UI cookie");
    let r = http.get(format!("{}/secret/hidden-thing", server.url)).bearer_auth(&reader).send().unwrap();
    assert_eq!(r.status().as_u16(), 200, "the token itself works there");

    // Badges: SVG; public ones anonymous, private ones with a token (cookie or bearer).
    let (s, ctype, svg) = get("/api/v1/repositories/npm/packages/@acme/open-thing/badge.svg", None);
    assert_eq!((s, ctype.as_str()), (200, "image/svg+xml"));
    assert!(svg.starts_with("<svg") && svg.contains("pipeline"));
    let (s, _, _) = get("/api/v1/repositories/npm/packages/%40acme%2Fopen-thing/badge.svg", None);
    assert_eq!(s, 200, "an encoded name works too");
    // A private package's badge answers as a missing one does, so it does not tell that it exists.
    let (s, _, svg) = get("/api/v1/repositories/secret/packages/hidden-thing/badge.svg", None);
    let (missing_status, _, missing_svg) = get("/api/v1/repositories/secret/packages/no-such-thing/badge.svg", None);
    assert_eq!((s, svg.as_str()), (missing_status, missing_svg.as_str()));
    assert_eq!(s, 404);
    assert!(!svg.contains("success"));
    let r = http
        .get(format!("{}/api/v1/repositories/secret/packages/hidden-thing/badge.svg", server.url))
        .bearer_auth(&reader)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (s, _, _) = get("/api/v1/repositories/npm/packages/nothing-here/badge.svg", None);
    assert_eq!(s, 404);
    // The API's own package route still answers beside the badge layer.
    let r = http
        .get(format!("{}/api/v1/repositories/npm/packages/@acme/open-thing", server.url))
        .bearer_auth(&admin)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let pipelines = server.api_json("/api/v1/pipelines?repository=npm", &admin);
    let id = pipelines["pipelines"][0]["id"].as_i64().expect("a pipeline of the push");
    let (s, ctype, _) = get(&format!("/api/v1/pipelines/{id}/badge.svg"), None);
    assert_eq!((s, ctype.as_str()), (200, "image/svg+xml"));

    // Pushes: anonymous readers see public pushes without addresses; the reader sees its own
    // repository's pushes too.
    let (_, _, anon) = get("/ui/pushes", None);
    assert!(anon.contains("open-thing") && !anon.contains("hidden-thing") && !anon.contains("127.0.0.1"));
    let (_, _, signed) = get("/ui/pushes", Some(&reader));
    assert!(signed.contains("hidden-thing") && signed.contains("127.0.0.1"));

    // Pages are HTML with a script-free content policy; the logout clears the cookie.
    let r = http.get(format!("{}/", server.url)).send().unwrap();
    assert!(r.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
    let r = http
        .post(format!("{}/ui/logout", server.url))
        .header("origin", &server.url)
        .header("cookie", format!("sluice_token={reader}"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert!(r.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
}

/// 10,000 packages in a repository and 5,000 versions of one package: every page answers
/// quickly because lists are paginated and the queries use indexes.
#[test]
fn pages_stay_fast_with_ten_thousand_packages_and_five_thousand_versions() {
    use sluice::store::db::Visibility;
    use sluice::store::Db;

    let server = Server::start_with_config("[[repository]]\nname = \"npm\"\nformat = \"npm\"\n");
    // Seed through the store's own publish (the server shares the SQLite file in WAL mode).
    let db = Db::open(&server.data.join("sluice.db")).unwrap();
    let latest = ["latest".to_string()];
    let seed =
        |name: &str, version: &str, n: u64| support::seed::release(&db, "npm", name, version, "seeded", n, &latest);
    let started = Instant::now();
    for i in 0..10_000u64 {
        seed(&format!("pkg-{i:05}"), "1.0.0", i);
    }
    for v in 0..5_000u64 {
        seed("big", &format!("1.{v}.0"), 100_000 + v);
    }
    println!("seeded in {:?}", started.elapsed());
    assert!(db.package("npm", "big", Visibility::All).unwrap().is_some());

    let timed = |path: &str, expect: &str| {
        let t = Instant::now();
        let (status, body) = server.get(path);
        let took = t.elapsed();
        println!("GET {path}: {status} in {took:?}");
        assert_eq!(status, 200, "{path}");
        assert!(body.contains(expect), "{path} shows {expect}");
        // Speed is measured by timing nothing here: the pages are paginated (checked below), and
        // the figures printed above are for reading, not asserting.
        body
    };
    timed("/", "10001");
    let list = timed("/ui/npm", "pkg-00000");
    assert!(list.contains("Page 1 of 201") && !list.contains("pkg-00050"), "50 packages a page");
    timed("/ui/npm?page=150", "pkg-07450");
    timed("/ui/npm?q=pkg-0999", "pkg-09999");
    let big = timed("/ui/npm/packages/big", "1.4999.0");
    assert!(big.contains("Page 1 of 100") && !big.contains("1.4949.0"), "50 versions a page");
    timed("/ui/npm/packages/big?page=100", "1.0.0");
    timed("/ui/npm/packages/big?version=1.17.0", "big-1.17.0.tgz");
    timed("/ui/pushes", "big");
    let found = timed("/ui/search?q=pkg-0999", "pkg-09999");
    assert!(found.contains("10 packages"), "the search across repositories finds pkg-09990..pkg-09999");
    timed("/ui/search?q=pkg&page=150", "pkg-07450");
    let (status, _) = server.get("/api/v1/repositories/npm/packages/big/badge.svg");
    assert_eq!(status, 200);
}
