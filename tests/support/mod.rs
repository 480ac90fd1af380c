//! The end-to-end harness: a real `sluice serve` process on a loopback port, with its own data
//! folder (a real SQLite file and real blobs), and helpers to drive it.
#![allow(dead_code)]

pub mod cargo_fixture;
pub mod fake_upstream;
pub mod gem;
pub mod gem_fixture;
pub mod gomod_fixture;
pub mod npm;
pub mod npm_fixture;
pub mod nuget;
pub mod nuget_fixture;
pub mod pg;
pub mod s3;
pub mod seed;
pub mod webhook;

use std::io::{BufRead, BufReader, BufWriter, Write};

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `sluice` binary cargo built for this test run.
pub fn sluice_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sluice"))
}

/// What `sluice serve` prints when it refuses to start with `toml` as its config (stderr, then
/// stdout). Fails the test if the server starts anyway (it is killed after 60 s) or exits well.
pub fn refused_start(toml: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.toml");
    std::fs::write(&config, toml).unwrap();
    let mut child = Command::new(sluice_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&config)
        .env("SLUICE_PLUGIN_CACHE", concat!(env!("CARGO_TARGET_TMPDIR"), "/plugin-cache"))
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..600 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if child.try_wait().unwrap().is_none() {
        let _ = child.kill();
        panic!("sluice serve started with a config it should refuse:\n{toml}");
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "sluice serve started with a config it should refuse:\n{toml}");
    String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout)
}

/// Fails the test (never skips it) when a client the test drives is not installed: the README's
/// test command installs them, so a missing one is a broken set-up, not a reason to pass.
pub fn require_tool(name: &str) -> PathBuf {
    let out = Command::new("sh").arg("-c").arg(format!("command -v {name}")).output().expect("sh runs");
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!path.is_empty(), "`{name}` is not installed; run the README's test command, which installs it");
    PathBuf::from(path)
}

/// A running server. Killed when dropped; its data folder is removed with it.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub url: String,
    /// The data folder (`sluice.db`, `blobs/`).
    pub data: PathBuf,
    /// A scratch folder the test may use for clients' files (also removed on drop).
    pub work: PathBuf,
    config: Option<PathBuf>,
    /// Everything the server (and its restarts) logged.
    log: std::sync::Arc<std::sync::Mutex<String>>,
    /// Where the server keeps blobs when not in `data/blobs`: the S3 server's environment, the
    /// folder its objects land in, and the S3 server itself when the harness started it.
    blobs: Blobs,
    /// Where the server keeps its database when not in `data/sluice.db`.
    database: Database,
    _dir: tempfile::TempDir,
}

/// The database a test server runs on. `SLUICE_TEST_DATABASE=postgres` runs every server of a test
/// binary on a fresh database of one real PostgreSQL cluster ([`pg`]; `scripts/test` runs the npm,
/// pipeline and gate tests again so); a test can also ask for one ([`Server::start_on_postgres`]).
#[derive(Default, Clone)]
struct Database {
    /// `postgres://...`; `None`: the SQLite file in the data folder.
    url: Option<String>,
}

impl Database {
    fn from_env() -> Database {
        match std::env::var("SLUICE_TEST_DATABASE").as_deref() {
            Ok("postgres") => Database::postgres(),
            Ok("sqlite") | Ok("") | Err(_) => Database::default(),
            Ok(other) => panic!("SLUICE_TEST_DATABASE={other}: expected `postgres` or `sqlite`"),
        }
    }

    fn postgres() -> Database {
        Database { url: Some(pg::database()) }
    }

    fn env(&self) -> Vec<(String, String)> {
        self.url.iter().map(|u| ("SLUICE_DATABASE".to_string(), u.clone())).collect()
    }
}

/// The blob backend a test server runs with. `SLUICE_TEST_BLOBS=s3` runs every server of a test
/// binary on its own real S3 server (`scripts/test` runs the npm, pipeline and gate tests a second
/// time so); a test can also hand one in ([`Server::start_on_s3`]).
#[derive(Default)]
struct Blobs {
    env: Vec<(String, String)>,
    objects: Option<PathBuf>,
    _s3: Option<s3::S3Server>,
}

impl Blobs {
    fn from_env() -> Blobs {
        match std::env::var("SLUICE_TEST_BLOBS").as_deref() {
            Ok("s3") => {
                let server = s3::S3Server::start();
                let blobs = Blobs::on(&server);
                Blobs { _s3: Some(server), ..blobs }
            }
            Ok("local") | Ok("") | Err(_) => Blobs::default(),
            Ok(other) => panic!("SLUICE_TEST_BLOBS={other}: expected `s3` or `local`"),
        }
    }

    fn on(server: &s3::S3Server) -> Blobs {
        Blobs { env: server.env(), objects: Some(server.root.join(s3::BUCKET).join(s3::PREFIX)), _s3: None }
    }
}

impl Server {
    /// A server with no config file: every built-in format as a repository named after it.
    pub fn start() -> Server {
        Self::launch(None)
    }

    /// A server with this TOML config (written next to the data folder, so relative paths in it,
    /// such as `pipeline = "ci.yml"`, are relative to [`Server::config_dir`]).
    pub fn start_with_config(toml: &str) -> Server {
        Self::launch(Some(toml))
    }

    /// Like [`Server::start_with_config`], with files written into the config folder first.
    pub fn start_with_files(toml: &str, files: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, body) in files {
            std::fs::write(dir.path().join(name), body).expect("write config file");
        }
        Self::launch_in(dir, Some(toml))
    }

    fn launch(config: Option<&str>) -> Server {
        Self::launch_in(tempfile::tempdir().expect("temp dir"), config)
    }

    fn launch_in(dir: tempfile::TempDir, config: Option<&str>) -> Server {
        Self::launch_with(dir, config, Blobs::from_env(), Database::from_env())
    }

    /// A server (with this config, if any) that keeps its blobs on `s3`.
    pub fn start_on_s3(config: Option<&str>, s3: &s3::S3Server) -> Server {
        Self::launch_with(tempfile::tempdir().expect("temp dir"), config, Blobs::on(s3), Database::from_env())
    }

    /// A server (with this config, if any) on a fresh PostgreSQL database, whatever
    /// `SLUICE_TEST_DATABASE` says.
    pub fn start_on_postgres(config: Option<&str>) -> Server {
        Self::launch_with(tempfile::tempdir().expect("temp dir"), config, Blobs::from_env(), Database::postgres())
    }

    /// A single-node server (the SQLite file and the blob folder in its data folder), whatever
    /// `SLUICE_TEST_DATABASE` and `SLUICE_TEST_BLOBS` say: what `sluice migrate` starts from.
    pub fn start_single_node(config: Option<&str>) -> Server {
        Self::launch_with(tempfile::tempdir().expect("temp dir"), config, Blobs::default(), Database::default())
    }

    /// A server on the PostgreSQL database `database` with its blobs on `s3`: a replica of a
    /// scaled-out registry.
    pub fn start_on_store(config: Option<&str>, database: &str, s3: &s3::S3Server) -> Server {
        let database = Database { url: Some(database.to_string()) };
        Self::launch_with(tempfile::tempdir().expect("temp dir"), config, Blobs::on(s3), database)
    }

    fn launch_with(dir: tempfile::TempDir, config: Option<&str>, blobs: Blobs, database: Database) -> Server {
        let config = config.map(|toml| {
            let path = dir.path().join("sluice.toml");
            std::fs::write(&path, toml).unwrap();
            path
        });
        let data = dir.path().join("data");
        let work = dir.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        let log = std::sync::Arc::default();
        let env = [blobs.env.clone(), database.env()].concat();
        let (child, url) = Self::spawn(&data, config.as_deref(), &[], &env, &log);
        Server { child, url, data, work, config, blobs, database, log, _dir: dir }
    }

    /// Like [`Server::start_with_config`], with the server started through `launcher` (a command
    /// and its arguments that run the rest, such as `prlimit --nofile=1024:`).
    pub fn start_through(launcher: &[&str], toml: &str) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sluice.toml");
        std::fs::write(&path, toml).unwrap();
        let data = dir.path().join("data");
        let work = dir.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        let blobs = Blobs::from_env();
        let database = Database::from_env();
        let log = std::sync::Arc::default();
        let env = [blobs.env.clone(), database.env()].concat();
        let (child, url) = Self::spawn(&data, Some(&path), launcher, &env, &log);
        Server { child, url, data, work, config: Some(path), blobs, database, log, _dir: dir }
    }

    /// Kills the server (as a crash would: SIGKILL) and starts it again on the same data folder,
    /// config, blobs and database. The address changes.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, url) = Self::spawn(&self.data, self.config.as_deref(), &[], &self.env(), &self.log);
        self.child = child;
        self.url = url;
    }

    /// Kills the server as a crash would, leaving its data folder for the test to inspect.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The environment that points a `sluice` process at this server's blobs and database.
    fn env(&self) -> Vec<(String, String)> {
        [self.blobs.env.clone(), self.database.env()].concat()
    }

    /// A `sluice` command (a subcommand such as `token list` follows) with this server's
    /// environment: its database and blobs, as an operator's shell would have them.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(sluice_bin());
        cmd.envs(self.env());
        cmd
    }

    /// The server's database URL when it runs on PostgreSQL.
    pub fn database_url(&self) -> Option<&str> {
        self.database.url.as_deref()
    }

    /// The server's store, opened as its subcommands open it (same data folder and database), for
    /// a test to seed through the store's own writes.
    pub fn store(&self) -> sluice::store::Db {
        let config = sluice::config::Config {
            data: self.data.clone(),
            database: self.database.url.clone(),
            ..Default::default()
        };
        sluice::store::Db::open_configured(&config).expect("open the server's store")
    }

    /// What the server has printed so far (its log, since `RUST_LOG=info`).
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn spawn(
        data: &Path,
        config: Option<&Path>,
        launcher: &[&str],
        env: &[(String, String)],
        log: &std::sync::Arc<std::sync::Mutex<String>>,
    ) -> (Child, String) {
        let mut cmd = match launcher.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(sluice_bin());
                c
            }
            None => Command::new(sluice_bin()),
        };
        cmd.arg("serve").arg("--listen").arg("127.0.0.1:0").arg("--data").arg(data);
        if let Some(path) = config {
            cmd.arg("--config").arg(path);
        }
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        cmd.env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()));
        // Every test server shares one cache of compiled plugins, so only the first compiles them.
        cmd.env("SLUICE_PLUGIN_CACHE", concat!(env!("CARGO_TARGET_TMPDIR"), "/plugin-cache"));
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start sluice serve");
        // The log goes to stderr: passed on to the test's, and kept for [`Server::log`].
        let stderr = child.stderr.take().unwrap();
        let errlog = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("{line}");
                let mut log = errlog.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !sent {
                    if let Some(url) = line.strip_prefix("sluice listening on ") {
                        let _ = tx.send(url.trim().to_string());
                        sent = true;
                        continue;
                    }
                }
                println!("[sluice] {line}");
            }
        });
        let url = rx.recv_timeout(Duration::from_secs(60)).expect("sluice printed its address within 60 s");
        (child, url)
    }

    /// A server with one gated repository (`gate = "pipeline"`) named `repo` of `format`, whose
    /// pipeline file is `ci_yaml`, plus `extra` lines for that repository's config entry.
    pub fn gated(repo: &str, format: &str, ci_yaml: &str, extra: &str) -> Server {
        Self::start_with_files(
            &format!("[[repository]]\nname = {repo:?}\nformat = {format:?}\ngate = \"pipeline\"\npipeline = \"ci.yml\"\n{extra}"),
            &[("ci.yml", ci_yaml)],
        )
    }

    /// A `sluice runner` command against this server, working in a folder of the test.
    pub fn runner(&self, token: &str) -> Command {
        let mut cmd = Command::new(sluice_bin());
        cmd.args(["runner", "--url", &self.url, "--token", token, "--work-dir"]).arg(self.work.join("runner"));
        cmd
    }

    /// Runs `sluice runner --once`: it takes one job, runs it, and exits.
    pub fn run_one_job(&self, token: &str) {
        let (ok, _, err) = run(self.runner(token).arg("--once"));
        assert!(ok, "sluice runner --once failed: {err}");
    }

    /// The newest pipeline of a repository with its jobs, through the API.
    pub fn latest_pipeline(&self, repo: &str, admin: &str) -> serde_json::Value {
        let list = self.api_json(&format!("/api/v1/pipelines?repository={repo}&limit=1"), admin);
        let id = list["pipelines"][0]["id"].as_i64().expect("a pipeline");
        self.api_json(&format!("/api/v1/pipelines/{id}"), admin)
    }

    /// The folder the config file (and files given to [`Server::start_with_files`]) live in.
    pub fn config_dir(&self) -> &Path {
        self.data.parent().unwrap()
    }

    /// `URL/REPO`, the address a client is configured with.
    pub fn repo_url(&self, repo: &str) -> String {
        format!("{}/{}", self.url, repo)
    }

    /// Creates a token with `sluice token create` and returns it.
    pub fn token(&self, name: &str, scopes: &str, repository: Option<&str>) -> String {
        self.token_with(name, scopes, repository, &[])
    }

    /// Like [`Server::token`], with more `token create` arguments (`--expires 90d`).
    pub fn token_with(&self, name: &str, scopes: &str, repository: Option<&str>, more: &[&str]) -> String {
        let mut cmd = self.command();
        cmd.args(["token", "create", "--data"]).arg(&self.data).args(["--name", name, "--scopes", scopes]).args(more);
        if let Some(r) = repository {
            cmd.args(["--repository", r]);
        }
        let out = cmd.output().expect("run sluice token create");
        assert!(out.status.success(), "token create failed: {}", String::from_utf8_lossy(&out.stderr));
        let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
        assert!(!token.is_empty() && !token.contains('\n'), "token create prints the token alone");
        token
    }

    /// A blocking HTTP client.
    pub fn http(&self) -> reqwest::blocking::Client {
        reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().unwrap()
    }

    /// GET `URL{path}` (path starts with `/`), returning status and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        let r = self.http().get(format!("{}{}", self.url, path)).send().expect("GET");
        let status = r.status().as_u16();
        (status, r.text().unwrap_or_default())
    }

    /// GET a JSON document from the native API with a token.
    pub fn api_json(&self, path: &str, token: &str) -> serde_json::Value {
        let r = self.http().get(format!("{}{}", self.url, path)).bearer_auth(token).send().expect("GET");
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().expect("JSON")
    }

    /// What a proxy repository fetched, as its audit log shows it: `package version` of each push,
    /// sorted, after checking that each is a push by `upstream` from under `upstream_url`.
    pub fn upstream_fetches(&self, repository: &str, upstream_url: &str) -> Vec<String> {
        let admin = self.token("audit-reader", "admin", None);
        let pushes = self.api_json(&format!("/api/v1/pushes?repository={repository}"), &admin);
        let pushes = pushes["pushes"].as_array().expect("a list of pushes");
        let mut fetched = Vec::new();
        for p in pushes {
            assert_eq!(p["actor"], "upstream", "{p}");
            assert!(p["client_addr"].as_str().unwrap_or_default().starts_with(upstream_url), "{p}");
            fetched.push(format!(
                "{} {}",
                p["package"].as_str().unwrap_or_default(),
                p["version"].as_str().unwrap_or_default()
            ));
        }
        fetched.sort();
        fetched
    }

    /// Every stored package file: the files under `blobs/`, or, on object storage, the upload
    /// temp files under `blobs/` and the objects in the bucket.
    pub fn blob_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        s3::walk(&self.data.join("blobs"), &mut out);
        if let Some(objects) = &self.blobs.objects {
            s3::walk(objects, &mut out);
        }
        out
    }

    /// Whether this server keeps its blobs in object storage.
    pub fn on_s3(&self) -> bool {
        self.blobs.objects.is_some()
    }

    /// Polls `check` every 50 ms until it returns true or `timeout` passes.
    pub fn wait_for(&self, timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if check() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// The server process's id, to watch its memory in /proc.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running (it must survive bad input).
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a command, returning (success, stdout, stderr), printing both for the test log.
pub fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    println!("$ {cmd:?}\n{stdout}\n{stderr}");
    (out.status.success(), stdout, stderr)
}

/// Writes `len` pseudo-random bytes (xorshift) to `path`; returns their sha256.
pub fn write_noise(path: &Path, len: u64) -> String {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let mut hash = Sha256::new();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..len / chunk.len() as u64 {
        for word in chunk.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        hash.update(&chunk);
        out.write_all(&chunk).unwrap();
    }
    out.flush().unwrap();
    hex::encode(hash.finalize())
}

/// The resident set size of process `pid`, in bytes (`VmRSS` of /proc/PID/status).
pub fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
