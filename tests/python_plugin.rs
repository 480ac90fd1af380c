//! A format plugin written in Python (examples/python-generic, GitLab-style generic packages),
//! built with the real componentize-py, checked with `sluice plugin check`, and served to real
//! `curl` uploads and downloads.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{require_tool, run, sluice_bin, Server};

/// Builds the example into a component (a few seconds; CPython is inside it).
fn build_plugin() -> PathBuf {
    require_tool("componentize-py");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-generic.wasm");
    let (ok, _, err) = run(Command::new("componentize-py")
        .current_dir(root.join("examples/python-generic"))
        .arg("-d")
        .arg(root.join("wit/v0.1.0"))
        .args(["-w", "format-plugin", "componentize", "app", "-o"])
        .arg(&out));
    assert!(ok, "componentize-py failed: {err}");
    out
}

fn curl(args: &[&str]) -> (bool, String, String) {
    run(Command::new("curl").args(["--silent", "--show-error"]).args(args))
}

#[test]
fn a_python_plugin_serves_curl_uploads_and_downloads() {
    require_tool("curl");
    let wasm = build_plugin();
    let (ok, out, err) = run(Command::new(sluice_bin()).args(["plugin", "check"]).arg(&wasm));
    assert!(ok && out.contains("info: format `generic`"), "the Python plugin passes the checks:\n{out}\n{err}");

    let server = Server::start_with_config(&format!(
        "[[plugin]]\npath = {:?}\n\n[[repository]]\nname = \"generic\"\nformat = \"generic\"\n",
        wasm.display().to_string()
    ));
    let token = server.token("uploader", "publish", Some("generic"));
    let header = format!("PRIVATE-TOKEN: {token}");
    let files = server.work.join("files");
    std::fs::create_dir_all(&files).unwrap();
    // Binary content with every byte value, as release archives have.
    let archive: Vec<u8> = (0..70_000u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(files.join("tool-linux.tar.gz"), &archive).unwrap();
    std::fs::write(files.join("checksums.txt"), "abc  tool-linux.tar.gz\n").unwrap();
    let url = |path: &str| format!("{}/generic{path}", server.url);

    for file in ["tool-linux.tar.gz", "checksums.txt"] {
        let (ok, out, err) = curl(&[
            "--fail-with-body",
            "--header",
            &header,
            "--upload-file",
            files.join(file).to_str().unwrap(),
            &url(&format!("/tool/1.2.0/{file}")),
        ]);
        assert!(ok && out.contains("201 Created"), "upload of {file}: {out}{err}");
    }
    // The same file twice is refused, GitLab's way: a JSON message and a 4xx status.
    let (ok, out, _) = curl(&[
        "--fail-with-body",
        "--header",
        &header,
        "--upload-file",
        files.join("checksums.txt").to_str().unwrap(),
        &url("/tool/1.2.0/checksums.txt"),
    ]);
    assert!(!ok && out.contains("\"message\""), "{out}");
    // Without a token: 401.
    let (ok, out, _) = curl(&[
        "--fail-with-body",
        "--upload-file",
        files.join("checksums.txt").to_str().unwrap(),
        &url("/tool/1.3.0/checksums.txt"),
    ]);
    assert!(!ok && out.contains("message"), "{out}");

    let downloaded = server.work.join("downloaded.tar.gz");
    let (ok, _, err) =
        curl(&["--fail", "--output", downloaded.to_str().unwrap(), &url("/tool/1.2.0/tool-linux.tar.gz")]);
    assert!(ok, "{err}");
    assert_eq!(std::fs::read(&downloaded).unwrap(), archive, "the download is the uploaded file");
    let (ok, out, _) = curl(&["--fail", &url("/tool")]);
    assert!(ok, "{out}");
    let listing: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listing["versions"][0]["version"], "1.2.0");
    let names: Vec<_> =
        listing["versions"][0]["files"].as_array().unwrap().iter().map(|f| f["file_name"].clone()).collect();
    assert_eq!(names, [serde_json::json!("tool-linux.tar.gz"), serde_json::json!("checksums.txt")]);
    let (ok, out, _) = curl(&["--fail-with-body", &url("/tool/9.9.9/none.bin")]);
    assert!(!ok && out.contains("404"), "{out}");
    let (status, _) = server.get("/generic/tool/1.2.0/..%2f..%2fetc");
    assert_eq!(status, 400, "a path that names no file is refused");
}
