//! Shared by the benchmarks: a `sluice serve` process, npm tarballs and publish bodies, and
//! percentiles.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;

pub struct Server {
    pub child: Child,
    pub url: String,
    pub dir: tempfile::TempDir,
    /// The environment it runs with (a database and blob store elsewhere), for its subcommands too.
    env: Vec<(String, String)>,
}

impl Server {
    /// Starts the release `sluice` binary cargo built for this benchmark.
    pub fn start(config: &str, files: &[(&str, &str)]) -> Server {
        Self::start_with_env(config, files, &[])
    }

    /// Like [`Server::start`], with these environment variables (`SLUICE_DATABASE`, `AWS_*`, ...).
    pub fn start_with_env(config: &str, files: &[(&str, &str)], env: &[(String, String)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in files {
            std::fs::write(dir.path().join(name), body).unwrap();
        }
        std::fs::write(dir.path().join("sluice.toml"), config).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(dir.path().join("data"))
            .arg("--config")
            .arg(dir.path().join("sluice.toml"))
            .env("RUST_LOG", "warn")
            .envs(env.iter().cloned())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.trim().strip_prefix("sluice listening on ").expect("address line").to_string();
        Server { child, url, dir, env: env.to_vec() }
    }

    pub fn token(&self, name: &str, scopes: &str) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["token", "create", "--data"])
            .arg(self.dir.path().join("data"))
            .args(["--name", name, "--scopes", scopes])
            .envs(self.env.iter().cloned())
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An npm tarball of about `size` bytes: a package.json and source files of varied text that
/// compresses about as well as real JavaScript.
pub fn npm_tarball(name: &str, version: &str, size: usize) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default()));
    let manifest = serde_json::json!({
        "name": name, "version": version, "description": "a benchmark package", "license": "MIT",
        "main": "index.js", "dependencies": {"left-pad": "^1.3.0", "lodash": "^4.17.21"},
    })
    .to_string();
    fn add(builder: &mut tar::Builder<flate2::write::GzEncoder<Vec<u8>>>, path: &str, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        builder.append_data(&mut h, path, data).unwrap();
    }
    add(&mut builder, "package/package.json", manifest.as_bytes());
    // Source text with identifiers and numbers drawn at random compresses about 3x, like
    // minified JavaScript; write ~3x the target size uncompressed, 16 KiB a file.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut written = 0;
    let mut n = 0;
    while written < size * 3 {
        let mut src = String::new();
        while src.len() < 16 * 1024 {
            let (a, b, c) = (next(), next(), next());
            src.push_str(&format!("function f{:x}(a,b){{return a*{}+b-{}}}\n", a & 0xffff_ffff, b % 99_991, c % 7919));
        }
        add(&mut builder, &format!("package/lib/part{n}.js"), src.as_bytes());
        written += src.len();
        n += 1;
    }
    builder.into_inner().unwrap().finish().unwrap()
}

/// The JSON body `npm publish` sends.
pub fn publish_body(name: &str, version: &str, tarball: &[u8]) -> Vec<u8> {
    let file = format!("{}-{version}.tgz", name.rsplit('/').next().unwrap());
    serde_json::to_vec(&serde_json::json!({
        "_id": name, "name": name,
        "dist-tags": {"latest": version},
        "versions": {version: {"name": name, "version": version, "dist": {"tarball": format!("http://x/{name}/-/{file}")}}},
        "_attachments": {file: {"content_type": "application/octet-stream",
            "data": base64::engine::general_purpose::STANDARD.encode(tarball), "length": tarball.len()}},
    }))
    .unwrap()
}

/// The latencies concurrent load workers measured, sorted, and the requests per second they made
/// together since `start`.
pub async fn gather(
    workers: Vec<tokio::task::JoinHandle<Vec<Duration>>>,
    start: std::time::Instant,
) -> (f64, Vec<Duration>) {
    let mut lat = Vec::new();
    for w in workers {
        lat.extend(w.await.unwrap());
    }
    let rps = lat.len() as f64 / start.elapsed().as_secs_f64();
    lat.sort();
    (rps, lat)
}

/// The `p`-th percentile (0-100) of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p / 100.0).round() as usize;
    sorted[i]
}

pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Prints a line and flushes, so progress shows while a long benchmark runs.
pub fn say(line: &str) {
    println!("{line}");
    std::io::stdout().flush().unwrap();
}
