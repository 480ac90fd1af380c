//! A real `npm` client for the end-to-end tests: its own HOME, cache and `.npmrc` per client.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use super::{require_tool, run, Server};

/// An npm client with its own HOME, cache and `.npmrc`, so nothing leaks between clients or tests.
pub struct Npm {
    pub dir: PathBuf,
    pub registry: String,
}

impl Npm {
    pub fn new(server: &Server, name: &str, token: Option<&str>) -> Npm {
        require_tool("npm");
        let dir = server.work.join(format!("npm-{name}"));
        std::fs::create_dir_all(dir.join("home")).unwrap();
        let registry = format!("{}/", server.repo_url("npm"));
        let mut npmrc = format!("registry={registry}\n");
        if let Some(token) = token {
            // The registry URL without its scheme keys the credential, as `npm login` writes it.
            let key = registry.trim_start_matches("http:");
            npmrc.push_str(&format!("{key}:_authToken={token}\n"));
        }
        std::fs::write(dir.join(".npmrc"), npmrc).unwrap();
        std::fs::write(dir.join("globalrc"), "").unwrap();
        Npm { dir, registry }
    }

    pub fn cmd(&self, cwd: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new("npm");
        for (key, _) in std::env::vars() {
            if key.to_ascii_lowercase().starts_with("npm_config_") {
                cmd.env_remove(key);
            }
        }
        cmd.current_dir(cwd)
            .args(args)
            .arg("--registry")
            .arg(&self.registry)
            .arg("--userconfig")
            .arg(self.dir.join(".npmrc"))
            .env("HOME", self.dir.join("home"))
            .env("npm_config_cache", self.dir.join("cache"))
            .env("npm_config_globalconfig", self.dir.join("globalrc"))
            .env("npm_config_update_notifier", "false")
            .env("npm_config_fund", "false")
            .env("npm_config_audit", "false")
            .env("NO_COLOR", "1");
        cmd
    }

    /// Runs npm, returning (success, stdout, stderr).
    pub fn run(&self, cwd: &Path, args: &[&str]) -> (bool, String, String) {
        run(&mut self.cmd(cwd, args))
    }

    /// Runs npm and fails the test unless it succeeds; returns stdout.
    pub fn ok(&self, cwd: &Path, args: &[&str]) -> String {
        let (ok, out, err) = self.run(cwd, args);
        assert!(ok, "npm {args:?} failed:\n{out}\n{err}");
        out
    }

    /// `npm view ... --json` as JSON.
    pub fn view(&self, cwd: &Path, args: &[&str]) -> Value {
        let mut all = vec!["view"];
        all.extend_from_slice(args);
        all.push("--json");
        let out = self.ok(cwd, &all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("npm view {args:?} printed no JSON ({e}): {out}"))
    }
}

/// A package folder with a package.json and an index.js that says who it is.
pub fn make_package(root: &Path, name: &str, version: &str) -> PathBuf {
    let dir = root.join(format!("src-{}-{version}", name.replace('/', "-")));
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = json!({
        "name": name,
        "version": version,
        "description": format!("{name}, a test package"),
        "main": "index.js",
        "license": "MIT",
        "keywords": ["sluice", "test"],
    });
    std::fs::write(dir.join("package.json"), serde_json::to_string_pretty(&manifest).unwrap()).unwrap();
    std::fs::write(dir.join("index.js"), index_js(name, version)).unwrap();
    dir
}

pub fn index_js(name: &str, version: &str) -> String {
    format!("module.exports = 'hello from {name}@{version}';\n")
}

/// A fresh project to install into.
pub fn project(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("package.json"), r#"{"name":"app","version":"1.0.0","private":true}"#).unwrap();
    dir
}

/// A project that depends on `deps` (name, spec).
pub fn app(root: &Path, name: &str, deps: &[(&str, &str)]) -> PathBuf {
    let dir = project(root, name);
    let deps: serde_json::Map<String, Value> = deps.iter().map(|(n, v)| (n.to_string(), Value::from(*v))).collect();
    let manifest = serde_json::json!({"name": name, "version": "1.0.0", "private": true, "dependencies": deps});
    std::fs::write(dir.join("package.json"), manifest.to_string()).unwrap();
    dir
}

/// What the installed package says it is (its index.js names its name and version).
pub fn require(dir: &Path, name: &str) -> String {
    let (ok, out, err) = run(std::process::Command::new("node")
        .current_dir(dir)
        .args(["-e", &format!("console.log(require({name:?}))")]));
    assert!(ok, "node could not require {name}: {err}");
    out.trim().to_string()
}
