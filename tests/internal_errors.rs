//! An internal failure reaches a format's client the way the domain error maps it: a server error
//! (never a 4xx) with a bare message (never the failure's detail, which the server's log has),
//! nothing half-stored, and the server serving on; a client error in the same session keeps its
//! message. Driven with the real `npm` and `gem` against a real `sluice serve` whose blob store
//! cannot take an upload: the folder it spools request bodies to is replaced by a file, as a
//! full or read-only disk, an unmounted volume or a clean-up gone wrong would leave it.

mod support;

use std::path::{Path, PathBuf};

use support::npm::{make_package, Npm};
use support::{gem, Server};

/// The blob store's spool folder (`blobs/tmp`, used by both blob backends).
fn spool(server: &Server) -> PathBuf {
    server.data.join("blobs").join("tmp")
}

/// Makes every upload fail inside the server, as an I/O error of the blob store.
fn break_spool(server: &Server) {
    let dir = spool(server);
    std::fs::remove_dir_all(&dir).expect("remove the spool folder");
    std::fs::write(&dir, "not a folder").expect("put a file in its place");
}

fn repair_spool(server: &Server) {
    let dir = spool(server);
    std::fs::remove_file(&dir).expect("remove the file");
    std::fs::create_dir(&dir).expect("the spool folder again");
}

/// What a client printed must not tell it about the server's insides.
fn assert_no_detail(server: &Server, printed: &str) {
    let data = server.data.to_string_lossy();
    for secret in [data.as_ref(), "blobs/tmp", "Not a directory", "os error", "temp blob"] {
        assert!(!printed.contains(secret), "the client was shown `{secret}`:\n{printed}");
    }
}

#[test]
fn npm_sees_a_server_error_without_its_detail_and_nothing_is_half_published() {
    let server = Server::start();
    let token = server.token("publisher", "read,publish", None);
    let npm = Npm::new(&server, "publisher", Some(&token));
    let work: &Path = &server.work;
    npm.ok(&make_package(work, "spooled", "1.0.0"), &["publish"]);

    break_spool(&server);
    // npm retries a 5xx for a minute by default; once is enough to see the answer.
    let (ok, out, err) = npm.run(&make_package(work, "spooled", "1.1.0"), &["publish", "--fetch-retries", "0"]);
    let printed = format!("{out}\n{err}");
    assert!(!ok, "the publish cannot have worked:\n{printed}");
    assert!(printed.contains("500"), "npm shows a server error, not a client one:\n{printed}");
    assert!(!printed.contains("code E4"), "not a 4xx:\n{printed}");
    assert_no_detail(&server, &printed);
    // The operator finds what happened in the server's log.
    assert!(server.log().contains("create temp blob"), "the log has the detail:\n{}", server.log());

    // Reads go on, and the failed publish left no version behind.
    let versions = npm.view(work, &["spooled", "versions"]);
    assert_eq!(versions, serde_json::json!(["1.0.0"]), "only the first version is there");

    // A client error meanwhile is still the client's, with its message: a publish with a token
    // that may only read is refused before its body is read.
    let read_only = server.token("reader", "read", None);
    let reader = Npm::new(&server, "reader", Some(&read_only));
    let (ok, out, err) = reader.run(&make_package(work, "spooled", "1.2.0"), &["publish", "--fetch-retries", "0"]);
    let printed = format!("{out}\n{err}");
    assert!(!ok, "{printed}");
    assert!(printed.contains("code E403"), "a client error stays a 4xx:\n{printed}");
    assert!(printed.contains("token `reader` may not publish to repository `npm`"), "with its message:\n{printed}");

    repair_spool(&server);
    npm.ok(&make_package(work, "spooled", "1.1.0"), &["publish"]);
    let versions = npm.view(work, &["spooled", "versions"]);
    assert_eq!(versions, serde_json::json!(["1.0.0", "1.1.0"]), "the same publish works once the disk does");
}

#[test]
fn gem_push_sees_a_server_error_without_its_detail() {
    support::require_tool("gem");
    let server = Server::start();
    let key = server.token("pusher", "read,publish", None);
    let first = gem::build_gem(&server.work, "spooly", "1.0.0", None, &[]);
    let (ok, printed) = gem::push(&server, &first, &key);
    assert!(ok, "{printed}");

    break_spool(&server);
    let second = gem::build_gem(&server.work, "spooly", "1.1.0", None, &[]);
    let (ok, printed) = gem::push(&server, &second, &key);
    assert!(!ok, "the push cannot have worked:\n{printed}");
    assert!(printed.to_lowercase().contains("internal server error"), "gem prints the bare message:\n{printed}");
    assert_no_detail(&server, &printed);
    // Installs go on, and the failed push left no version behind.
    let before = server.work.join("before");
    let (ok, printed) = gem::gem_install(&server, "spooly", &before);
    assert!(ok, "{printed}");
    assert!(before.join("gems").join("spooly-1.0.0").exists(), "the first version installs: {printed}");

    repair_spool(&server);
    let (ok, printed) = gem::push(&server, &second, &key);
    assert!(ok, "the same push works once the disk does: {printed}");
    let dir = server.work.join("installed");
    let (ok, printed) = gem::gem_install(&server, "spooly", &dir);
    assert!(ok, "{printed}");
    assert!(dir.join("gems").join("spooly-1.1.0").exists(), "the second push is what installs: {printed}");
}
