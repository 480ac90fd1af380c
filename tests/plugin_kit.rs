//! The kit for plugin authors: `sluice plugin new` writes a crate that builds for
//! wasm32-wasip2 with the real cargo, `sluice plugin check` passes it and fails the fault plugin
//! with its reasons, and the new plugin serves uploads and downloads in a real server.

mod support;

use std::path::Path;
use std::process::Command;

use support::{require_tool, run, sluice_bin, Server};

/// cargo for building the new crate offline: the machine's own CARGO_HOME (whose registry
/// cache holds the SDK's dependencies), nothing from the network.
fn offline_cargo(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(dir).args(args);
    for (var, _) in std::env::vars() {
        let outer = var.starts_with("CARGO_") && var != "CARGO_HOME" || var == "CARGO" || var.starts_with("RUSTC");
        if outer {
            cmd.env_remove(var);
        }
    }
    // Shared between runs of this test, so only the first run compiles the SDK's dependencies.
    cmd.env("CARGO_TARGET_DIR", concat!(env!("CARGO_TARGET_TMPDIR"), "/plugin-kit-target"))
        .env("CARGO_NET_OFFLINE", "true")
        .env("CARGO_TERM_COLOR", "never")
        .env("RUSTUP_AUTO_INSTALL", "0");
    cmd
}

#[test]
fn plugin_new_builds_checks_and_loads() {
    require_tool("cargo");
    let work = tempfile::tempdir().unwrap();
    let (ok, out, err) = run(Command::new(sluice_bin()).args(["plugin", "new", "kit-files", "--dir"]).arg(work.path()));
    assert!(ok, "{err}");
    let root = work.path().join("kit-files");
    assert_eq!(out.trim(), root.display().to_string());
    // The workspace's lock pins versions the local cache has, so the offline build resolves.
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock"), root.join("Cargo.lock")).unwrap();
    let (ok, _, err) = run(&mut offline_cargo(&root, &["test", "--quiet"]));
    assert!(ok, "the generated crate's unit tests pass natively: {err}");
    let (ok, _, err) = run(&mut offline_cargo(&root, &["build", "--release", "--target", "wasm32-wasip2"]));
    assert!(ok, "the generated crate builds for wasm32-wasip2: {err}");
    let wasm = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("plugin-kit-target/wasm32-wasip2/release/sluice_plugin_kit_files.wasm");
    assert!(wasm.is_file(), "{}", wasm.display());

    let (ok, out, err) = run(Command::new(sluice_bin()).args(["plugin", "check"]).arg(&wasm));
    assert!(ok, "a new plugin passes the checks as it is:\n{out}\n{err}");
    assert!(out.contains("ok       info: format `kit-files`"), "{out}");
    assert!(out.contains("parse of a garbage file answers `invalid`"), "{out}");
    assert!(!out.contains("PROBLEM"), "{out}");

    // The fault plugin fails, with its reasons listed.
    let (ok, out, err) = run(Command::new(sluice_bin()).args(["plugin", "check", env!("SLUICE_FAULT_PLUGIN_WASM")]));
    assert!(!ok, "the fault plugin must fail the checks");
    assert!(err.contains("problem(s)"), "{err}");
    for reason in [
        "PROBLEM  parse of a garbage file answers `unsupported`, not `invalid`",
        "PROBLEM  render-error of `invalid` answers status 500, not 4xx",
        "PROBLEM  extraction-for names no steps",
        "PROBLEM  info: install-hint is empty",
    ] {
        assert!(out.contains(reason), "missing `{reason}` in:\n{out}");
    }
    let (ok, _, err) = run(Command::new(sluice_bin()).args(["plugin", "check"]).arg(root.join("Cargo.toml")));
    assert!(!ok && err.contains("problem(s)"), "a file that is no component fails: {err}");

    // The new plugin loads in a server as it is and serves uploads and downloads.
    let server = Server::start_with_config(&format!(
        "[[plugin]]\npath = {:?}\n\n[[repository]]\nname = \"files\"\nformat = \"kit-files\"\n",
        wasm.display().to_string()
    ));
    let token = server.token("author", "publish", Some("files"));
    let put = |path: &str, body: &'static [u8]| {
        let r = server.http().put(format!("{}/files{path}", server.url)).bearer_auth(&token).body(body).send().unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    assert_eq!(put("/tool/1.0.0", b"first build").0, 201);
    assert_eq!(put("/tool/1.1.0", b"second build").0, 201);
    let (status, body) = put("/tool/1.0.0", b"again");
    assert_eq!(status, 409, "a second file for a version is refused: {body}");
    assert_eq!(server.get("/files/tool/1.0.0"), (200, "first build".to_string()));
    let (status, list) = server.get("/files/tool");
    assert_eq!(status, 200);
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list["versions"], serde_json::json!(["1.0.0", "1.1.0"]));
    let (status, body) = server.get("/files/nothing");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("no package `nothing`"), "{body}");
}
