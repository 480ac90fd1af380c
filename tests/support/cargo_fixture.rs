//! Cargo projects for the tests, shaped like crates on crates.io (a README, license files, an
//! example, `[package.metadata]`, features with `dep:`, renamed and target-specific
//! dependencies), and a `cargo` client with its own `CARGO_HOME` that knows only Sluice.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{require_tool, run};

/// The registry name the tests configure (`[registries.sluice]`).
pub const REGISTRY: &str = "sluice";

/// `cargo` with a fresh `CARGO_HOME` whose only registry is `index` (no `[source]` changes).
pub struct Cargo {
    pub home: PathBuf,
    token: Option<String>,
    target_dir: PathBuf,
}

impl Cargo {
    /// A client for the sparse index at `index` (`sparse+http://.../index/`), with a token if given.
    pub fn new(work: &Path, label: &str, index: &str, token: Option<&str>) -> Cargo {
        require_tool("cargo");
        let home = work.join(format!("cargo-home-{label}"));
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(
            home.join("config.toml"),
            // cargo sends a token to a registry with `auth-required` only through a configured
            // credential provider; `cargo:token` reads CARGO_REGISTRIES_SLUICE_TOKEN.
            format!("[registries.{REGISTRY}]\nindex = {index:?}\ncredential-provider = \"cargo:token\"\n\n[net]\nretry = 0\n"),
        )
        .unwrap();
        Cargo { target_dir: work.join(format!("cargo-target-{label}")), home, token: token.map(str::to_string) }
    }

    /// A `cargo` command in `dir`. The token is given as cargo's environment variable for the
    /// registry, the way CI systems pass it.
    pub fn cmd(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new("cargo");
        cmd.current_dir(dir).args(args);
        // The outer `cargo test` sets variables that would leak into the client under test.
        for (var, _) in std::env::vars() {
            if var.starts_with("CARGO") || var.starts_with("RUST") && var != "RUSTUP_HOME" && var != "RUSTUP_TOOLCHAIN"
            {
                cmd.env_remove(var);
            }
        }
        cmd.env("CARGO_HOME", &self.home)
            .env("CARGO_TARGET_DIR", &self.target_dir)
            .env("CARGO_TERM_COLOR", "never")
            .env("CARGO_INCREMENTAL", "0")
            .env("RUSTUP_AUTO_INSTALL", "0");
        // Rustup finds its toolchains from the real CARGO_HOME's rustup folder, not this one.
        if let Ok(rustup) = std::env::var("RUSTUP_HOME") {
            cmd.env("RUSTUP_HOME", rustup);
        } else if let Some(home) = std::env::var_os("HOME") {
            cmd.env("RUSTUP_HOME", Path::new(&home).join(".rustup"));
        }
        match &self.token {
            Some(t) => cmd.env("CARGO_REGISTRIES_SLUICE_TOKEN", t),
            None => cmd.env_remove("CARGO_REGISTRIES_SLUICE_TOKEN"),
        };
        cmd
    }

    pub fn run(&self, dir: &Path, args: &[&str]) -> (bool, String, String) {
        run(&mut self.cmd(dir, args))
    }

    /// Runs cargo and fails the test if it fails; returns stdout and stderr together.
    pub fn ok(&self, dir: &Path, args: &[&str]) -> String {
        let (ok, out, err) = self.run(dir, args);
        assert!(ok, "cargo {args:?} failed in {}:\n{out}\n{err}", dir.display());
        format!("{out}{err}")
    }

    /// Whether cargo fetched anything from crates.io: its index cache has a folder per registry.
    pub fn registries_used(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.home.join("registry").join("index"))
            .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// A crate's source folder.
pub struct CrateSource {
    pub name: String,
    pub version: String,
    /// TOML after `[package]`'s own keys: dependency tables, `[features]`, `[target...]`.
    pub tables: String,
    pub lib_rs: String,
    pub description: String,
}

impl CrateSource {
    pub fn new(name: &str, version: &str, lib_rs: &str) -> CrateSource {
        CrateSource {
            name: name.into(),
            version: version.into(),
            tables: String::new(),
            lib_rs: lib_rs.into(),
            description: format!("The {name} crate, a Sluice test fixture"),
        }
    }

    pub fn tables(mut self, toml: &str) -> Self {
        self.tables.push_str(toml);
        self.tables.push('\n');
        self
    }

    /// Writes the project to `parent/NAME-VERSION-src/` and returns its folder.
    pub fn write(&self, parent: &Path) -> PathBuf {
        let dir = parent.join(format!("{}-{}-src", self.name, self.version));
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::create_dir_all(dir.join("examples")).unwrap();
        std::fs::write(
            dir.join("Cargo.toml"),
            format!(
                "[package]\nname = {name:?}\nversion = {version:?}\nedition = \"2021\"\nrust-version = \"1.70\"\n\
                 description = {description:?}\nlicense = \"MIT OR Apache-2.0\"\nreadme = \"README.md\"\n\
                 repository = \"https://example.invalid/{name}\"\nkeywords = [\"sluice\", \"fixture\"]\n\
                 categories = [\"development-tools\"]\nauthors = [\"Ada Lovelace <ada@example.invalid>\"]\n\
                 publish = [{REGISTRY:?}]\nexclude = [\"/notes\"]\n\n\
                 [package.metadata.docs.rs]\nall-features = true\n\n\
                 [lib]\npath = \"src/lib.rs\"\n\n{tables}",
                name = self.name,
                version = self.version,
                description = self.description,
                tables = self.tables,
            ),
        )
        .unwrap();
        std::fs::write(dir.join("src/lib.rs"), &self.lib_rs).unwrap();
        std::fs::write(dir.join("README.md"), format!("# {}\n\nA fixture crate.\n", self.name)).unwrap();
        std::fs::write(dir.join("LICENSE-MIT"), "MIT License\n").unwrap();
        std::fs::write(dir.join("examples/demo.rs"), "fn main() {}\n").unwrap();
        // Excluded from the package, as real crates keep notes out of their .crate.
        std::fs::create_dir_all(dir.join("notes")).unwrap();
        std::fs::write(dir.join("notes/todo.txt"), "not packaged\n").unwrap();
        dir
    }
}

/// A binary project depending on crates of the registry (`deps` are `[dependencies]` lines).
pub fn consumer(parent: &Path, name: &str, deps: &str, main_rs: &str) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!("[package]\nname = {name:?}\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n[dependencies]\n{deps}\n"),
    )
    .unwrap();
    std::fs::write(dir.join("src/main.rs"), main_rs).unwrap();
    dir
}
