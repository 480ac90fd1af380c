//! A real PostgreSQL server for the tests: Debian's `postgresql` (installed by
//! .ci/install/postgres.sh), one cluster per test process in a temp folder, listening on a free
//! loopback port with trust authentication, started on first use. Every [`Server`](super::Server)
//! on it gets a fresh database ([`database`]).
//!
//! `initdb` refuses to run as root, so as root the cluster runs as the `postgres` user (which the
//! package creates). A watchdog shell started with the cluster stops it and removes its folder once
//! the test process has exited (the test harness runs no destructors at exit).

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The superuser the cluster is created with (trust authentication on loopback: no password).
pub const USER: &str = "postgres";

pub struct Cluster {
    pub port: u16,
    /// The cluster's folder (`data/`, its socket and log).
    pub dir: PathBuf,
    /// The watchdog shell (it outlives this process, and reaps the server itself).
    _watchdog: std::process::Child,
}

/// The folder with `initdb` and `postgres`: Debian keeps them in /usr/lib/postgresql/NN/bin (the
/// newest version there), else wherever `pg_config` says, else the PATH. Missing, it fails the
/// test (never skips it).
fn bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| bin.join("initdb").is_file())
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if bin.join("initdb").is_file() {
            return bin;
        }
    }
    super::require_tool("initdb").parent().unwrap().to_path_buf()
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `program args...`, as the `postgres` user when we are root.
fn as_cluster_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", USER, "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

impl Cluster {
    fn start() -> Cluster {
        let bin = bin_dir();
        let dir = std::env::temp_dir().join(format!("sluice-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the cluster folder");
        if is_root() {
            let ok = Command::new("chown").arg(format!("{USER}:")).arg(&dir).status().is_ok_and(|s| s.success());
            assert!(ok, "chown {} to the `{USER}` user (is postgresql installed?)", dir.display());
        }
        let data = dir.join("data");
        let out = as_cluster_user(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", USER, "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"])
            .output()
            .expect("run initdb");
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        let port = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port();
        // The server, and a watchdog that stops it (immediate shutdown: the data is thrown away)
        // and removes the folder when this process is gone. Durability is off: a test cluster.
        let script = r#"
            "$@" -D "$DATA" -p "$PORT" -c listen_addresses=127.0.0.1 -c unix_socket_directories="$DIR" \
                -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=500 \
                >"$DIR/postgres.log" 2>&1 &
            while kill -0 "$WATCH" 2>/dev/null; do sleep 1; done
            kill -QUIT "$(head -n 1 "$DATA/postmaster.pid" 2>/dev/null)" 2>/dev/null
            wait
            rm -rf "$DIR"
        "#;
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script).arg("sh");
        let server = as_cluster_user(&bin.join("postgres"));
        cmd.arg(server.get_program()).args(server.get_args());
        cmd.env("DATA", &data)
            .env("DIR", &dir)
            .env("PORT", port.to_string())
            .env("WATCH", std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let watchdog = cmd.spawn().expect("start postgres");
        let cluster = Cluster { port, dir, _watchdog: watchdog };
        let start = Instant::now();
        loop {
            match postgres::Client::connect(&cluster.url("postgres"), postgres::NoTls) {
                Ok(_) => break,
                Err(e) => {
                    let log = std::fs::read_to_string(cluster.dir.join("postgres.log")).unwrap_or_default();
                    assert!(start.elapsed() < Duration::from_secs(60), "postgres did not start in 60 s: {e}\n{log}");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        cluster
    }

    /// The URL of database `name` on this cluster.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{name}", self.port)
    }
}

/// The cluster of this test process, started on first use.
pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(Cluster::start)
}

/// A new, empty database on the cluster; returns its URL.
pub fn database() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let cluster = cluster();
    let name = format!("sluice_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let mut admin = postgres::Client::connect(&cluster.url("postgres"), postgres::NoTls).expect("connect to postgres");
    admin.batch_execute(&format!("CREATE DATABASE {name}")).expect("create a database");
    cluster.url(&name)
}

/// A client of the database at `url`, for a test to see what the store wrote.
pub fn connect(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}
