//! Kept NuGet documents (issue 13): the registration index, flat container and search are kept
//! by the host, and the real nuget.exe (under mono) still sees a new version and an unlisted one
//! right after each change; the registration index revalidates with `If-None-Match`.

mod support;

use std::path::Path;

use support::nuget::NuGet;
use support::Server;

const ID: &str = "Sluice.Fresh";
const REGISTRATION: &str = "/nuget/v3/registration/sluice.fresh/index.json";
const FLAT: &str = "/nuget/v3-flatcontainer/sluice.fresh/index.json";

/// GET with an optional `If-None-Match`: (status, etag, body).
fn get(server: &Server, path: &str, etag: Option<&str>) -> (u16, String, String) {
    let mut req = server.http().get(format!("{}{path}", server.url));
    if let Some(e) = etag {
        req = req.header("if-none-match", e);
    }
    let r = req.send().unwrap();
    let etag = r.headers().get("etag").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (r.status().as_u16(), etag, r.text().unwrap())
}

/// The registration index's ETag, after checking that the server answers it with 304.
fn current_etag(server: &Server) -> String {
    let (status, etag, _) = get(server, REGISTRATION, None);
    assert_eq!(status, 200);
    assert!(etag.starts_with('"') && etag.len() > 10, "strong ETag: {etag:?}");
    let (status, again, body) = get(server, REGISTRATION, Some(&etag));
    assert_eq!((status, again.as_str(), body.as_str()), (304, etag.as_str(), ""), "revalidation");
    etag
}

/// After a change: the old validator no longer matches and a new one is served.
fn etag_changed(server: &Server, old: &str, what: &str) -> String {
    let (status, _, _) = get(server, REGISTRATION, Some(old));
    assert_eq!(status, 200, "{what} must change the registration index's ETag");
    let new = current_etag(server);
    assert_ne!(new, old, "{what}");
    new
}

/// `(version, listed)` of every entry of the registration index (one inline page here).
fn registration_versions(server: &Server) -> Vec<(String, bool)> {
    let (status, _, body) = get(server, REGISTRATION, None);
    assert_eq!(status, 200, "{body}");
    let index: serde_json::Value = serde_json::from_str(&body).unwrap();
    index["items"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|page| page["items"].as_array().unwrap().iter())
        .map(|leaf| {
            let entry = &leaf["catalogEntry"];
            (entry["version"].as_str().unwrap().to_string(), entry["listed"].as_bool().unwrap())
        })
        .collect()
}

fn installed(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// `nuget install ID` without a version (the latest listed one) into a new folder, from a new
/// nuget home: nuget.exe's own HTTP cache must not hide what the server answers.
fn install_latest(server: &Server, name: &str) -> Vec<String> {
    let nuget = NuGet::new(server, name);
    let out = server.work.join(format!("out-{name}"));
    nuget.ok(&["install", ID, "-Source", &nuget.source, "-OutputDirectory", out.to_str().unwrap()]);
    installed(&out)
}

fn list(nuget: &NuGet) -> String {
    nuget.ok(&["list", ID, "-Source", &nuget.source])
}

#[test]
fn nuget_exe_sees_a_new_an_unlisted_and_a_relisted_version_at_once() {
    let server = Server::start();
    let token = server.token("alice", "read,publish", None);
    let nuget = NuGet::new(&server, "main");
    let packs = server.work.join("packs");

    let (ok, out) = nuget.push(&nuget.pack(&packs, ID, "1.0.0", ""), &token);
    assert!(ok, "push 1.0.0:\n{out}");
    // Read everything once, so that the registration, flat container and search are kept.
    assert!(list(&nuget).contains("Sluice.Fresh 1.0.0"));
    assert_eq!(install_latest(&server, "first"), ["Sluice.Fresh.1.0.0"]);
    assert!(get(&server, FLAT, None).2.contains("1.0.0"));
    let etag = current_etag(&server);

    // A new version: listed, installed as the latest, in the registration at once.
    let (ok, out) = nuget.push(&nuget.pack(&packs, ID, "1.1.0", ""), &token);
    assert!(ok, "push 1.1.0:\n{out}");
    let listed = list(&nuget);
    assert!(listed.contains("Sluice.Fresh 1.1.0"), "nuget list after a push:\n{listed}");
    assert_eq!(install_latest(&server, "after-push"), ["Sluice.Fresh.1.1.0"]);
    let found = nuget.ok(&["search", ID, "-Source", &nuget.source]);
    assert!(found.contains("Sluice.Fresh | 1.1.0"), "nuget search after a push:\n{found}");
    let etag = etag_changed(&server, &etag, "a push");
    assert_eq!(registration_versions(&server), [("1.0.0".into(), true), ("1.1.0".into(), true)]);

    // `nuget delete` unlists 1.1.0: gone from list and search at once, still installable by its
    // exact version (NuGet never removes a version a lock file may name). nuget.exe 5.8's
    // `install` without `-Version` is not checked here: it still picks the unlisted 1.1.0.
    let out = nuget.ok(&["delete", ID, "1.1.0", "-Source", &nuget.source, "-ApiKey", &token]);
    assert!(out.contains("was deleted successfully"), "{out}");
    let etag = etag_changed(&server, &etag, "an unlist");
    assert_eq!(registration_versions(&server), [("1.0.0".into(), true), ("1.1.0".into(), false)]);
    let listed = list(&nuget);
    assert!(listed.contains("Sluice.Fresh 1.0.0") && !listed.contains("1.1.0"), "nuget list after unlist:\n{listed}");
    let found = nuget.ok(&["search", ID, "-Source", &nuget.source]);
    assert!(found.contains("Sluice.Fresh | 1.0.0"), "nuget search after unlist:\n{found}");
    let exact = NuGet::new(&server, "exact");
    let out_dir = server.work.join("out-exact");
    exact.install(ID, "1.1.0", &out_dir);
    assert_eq!(installed(&out_dir), ["Sluice.Fresh.1.1.0"]);
    assert!(get(&server, FLAT, None).2.contains("1.1.0"), "the flat container keeps unlisted versions");

    // Relist (nuget.exe has no command for it; NuGet's v2 API is a POST to the same URL).
    let r = server
        .http()
        .post(format!("{}/api/v2/package/{ID}/1.1.0", server.repo_url("nuget")))
        .header("X-NuGet-ApiKey", &token)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "relist: {}", r.text().unwrap_or_default());
    let listed = list(&nuget);
    assert!(listed.contains("Sluice.Fresh 1.1.0"), "nuget list after relist:\n{listed}");
    etag_changed(&server, &etag, "a relist");
    assert_eq!(registration_versions(&server), [("1.0.0".into(), true), ("1.1.0".into(), true)]);
}
