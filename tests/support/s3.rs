//! A real S3-compatible server for the tests: `s3s-fs` (installed by .ci/install/s3.sh) on a
//! loopback port, serving a temp folder, with SigV4 credentials. The bucket is a folder in that
//! root, so a test can see what was stored (`objects`).

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BUCKET: &str = "sluice-test";
pub const PREFIX: &str = "registry/blobs";
const ACCESS_KEY: &str = "sluice-test-access";
const SECRET_KEY: &str = "sluice-test-secret-key-0123456789";

/// The `s3s-fs` binary: in the tools folder .ci/install/s3.sh installs into, or on the PATH.
/// Missing, it fails the test (never skips it).
pub fn s3s_fs_bin() -> PathBuf {
    let tools = std::env::var_os("SLUICE_TOOLS")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/sluice-tools")));
    if let Some(bin) = tools.map(|t| t.join("bin/s3s-fs")).filter(|b| b.is_file()) {
        return bin;
    }
    super::require_tool("s3s-fs")
}

/// A running `s3s-fs`. Killed when dropped; its root folder is removed with it.
pub struct S3Server {
    child: Option<Child>,
    pub port: u16,
    /// The folder the server stores buckets in (`root/BUCKET/...` are the objects).
    pub root: PathBuf,
    _dir: tempfile::TempDir,
}

impl S3Server {
    pub fn start() -> S3Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("s3");
        std::fs::create_dir_all(root.join(BUCKET)).expect("create the bucket folder");
        // A free port, released for the server to take (and to take again after `stop`).
        let port = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port();
        let mut s3 = S3Server { child: None, port, root, _dir: dir };
        s3.start_again();
        s3
    }

    /// Starts the server (again, after [`S3Server::stop`]) on the same port and folder.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the S3 server is running");
        let child = Command::new(s3s_fs_bin())
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(&self.root)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start s3s-fs");
        self.child = Some(child);
        let start = Instant::now();
        while TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(30), "s3s-fs did not listen on port {} in 30 s", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server (SIGKILL), keeping its folder.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `blobs = ...` for a server storing into this bucket.
    pub fn blobs_url(&self) -> String {
        format!("s3://{BUCKET}/{PREFIX}")
    }

    /// The environment a `sluice` process needs to store into this server: the standard AWS
    /// variables and `SLUICE_BLOBS`.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("SLUICE_BLOBS", self.blobs_url()),
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Every object stored under the prefix, as the files s3s-fs keeps them in.
    pub fn objects(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        walk(&self.root.join(BUCKET).join(PREFIX), &mut out);
        out
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out)
        } else {
            out.push(p)
        }
    }
}
