//! Builds the format plugins (every crate under `plugins/`) and the test fault plugin for
//! `wasm32-wasip2`, and embeds the format plugins in the `sluice` binary, so that
//! `cargo build --release` yields one binary that needs nothing else.
//!
//! The nested cargo uses its own target folder (`target/wasm`) so it never waits on the lock of
//! the build that runs this script, and always builds plugins in release mode: they are small,
//! and their speed is what the host measures. `SLUICE_BUILD_PLUGINS=npm,nuget` limits which plugins
//! are built (for working on one plugin while another is broken).

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let host_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = host_dir.parent().unwrap().to_path_buf();
    for watched in ["plugins", "sdk", "wit", "tests/fault-plugin", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=SLUICE_BUILD_PLUGINS");

    let only: Option<Vec<String>> =
        env::var("SLUICE_BUILD_PLUGINS").ok().map(|s| s.split(',').map(|p| p.trim().to_string()).collect());
    let mut plugins: Vec<(String, String)> = std::fs::read_dir(root.join("plugins"))
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().join("Cargo.toml").is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|dir| only.as_ref().is_none_or(|o| o.contains(dir)))
                .map(|dir| (dir.clone(), package_name(&root.join("plugins").join(&dir))))
                .collect()
        })
        .unwrap_or_default();
    plugins.sort();

    let mut packages: Vec<String> = plugins.iter().map(|(_, pkg)| pkg.clone()).collect();
    packages.push("sluice-fault-plugin".to_string());

    let target_dir = root.join("target").join("wasm");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root).args(["build", "--release", "--target", "wasm32-wasip2", "--target-dir"]).arg(&target_dir);
    for p in &packages {
        cmd.args(["-p", p]);
    }
    // The outer build's flags and profile are for the host, not for the plugins.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_PROFILE_RELEASE_DEBUG",
        "CARGO_PROFILE_RELEASE_STRIP",
    ] {
        cmd.env_remove(var);
    }
    // Plugins ship lean: no debug info (it made each 5-6 MB, and the binary embeds them all).
    // Function names stay, so a trapping plugin's backtrace still says where it was.
    cmd.env("CARGO_PROFILE_RELEASE_DEBUG", "false").env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo");
    let status = cmd.status().expect("run cargo to build the wasm plugins");
    assert!(
        status.success(),
        "building the wasm plugins failed (is the target installed? `rustup target add wasm32-wasip2`)"
    );

    let wasm_dir = target_dir.join("wasm32-wasip2").join("release");
    let mut out = String::from("/// (format crate folder, component bytes) of every built-in plugin.\npub const PLUGINS: &[(&str, &[u8])] = &[\n");
    for (dir, pkg) in &plugins {
        let wasm = wasm_dir.join(format!("{}.wasm", pkg.replace('-', "_")));
        writeln!(out, "    ({dir:?}, include_bytes!({:?})),", wasm.display().to_string()).unwrap();
    }
    out.push_str("];\n");
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    std::fs::write(out_dir.join("builtin_plugins.rs"), out).unwrap();
    println!("cargo:rustc-env=SLUICE_FAULT_PLUGIN_WASM={}", wasm_dir.join("sluice_fault_plugin.wasm").display());
}

/// The `name` of a crate's `[package]`.
fn package_name(dir: &Path) -> String {
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).expect("read plugin Cargo.toml");
    manifest
        .lines()
        .skip_while(|l| l.trim() != "[package]")
        .find_map(|l| {
            l.trim().strip_prefix("name").map(|r| r.trim_start_matches([' ', '=']).trim().trim_matches('"').to_string())
        })
        .unwrap_or_else(|| panic!("no package name in {}", dir.display()))
}
