//! The NuGet plugin driven by the real nuget.exe (5.8, under mono; `.ci/install/nuget.sh`
//! installs it): push, install, list, search, delete (unlist), refusals, registration paging.

mod support;

use std::io::Write;
use std::path::PathBuf;
use support::nuget::{raw_push, NuGet};
use support::Server;

/// A nupkg built directly with the zip crate: `entries` besides the nuspec.
fn nupkg_bytes(nuspecs: &[(&str, String)], entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    for (name, body) in nuspecs {
        zip.start_file(*name, options).unwrap();
        zip.write_all(body.as_bytes()).unwrap();
    }
    for (name, body) in entries {
        zip.start_file(*name, options).unwrap();
        zip.write_all(body).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

fn minimal_nuspec(id: &str, version: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?><package xmlns=\"http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd\"><metadata>\
         <id>{id}</id><version>{version}</version><authors>Sluice Tests</authors><description>generated</description>\
         </metadata></package>"
    )
}

fn read_text(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn push_install_list_search_and_unlist_with_nuget_exe() {
    let server = Server::start();
    let token = server.token("alice", "read,publish", None);
    let reader = server.token("reader", "read", None);
    let nuget = NuGet::new(&server, "main");
    let packs = server.work.join("packs");

    let core = nuget.pack(&packs, "Sluice.Core", "1.0.0", "");
    let app = nuget.pack(&packs, "Sluice.App", "2.0", r#"<dependency id="Sluice.Core" version="1.0.0" />"#);
    for package in [&core, &app] {
        let (ok, out) = nuget.push(package, &token);
        assert!(ok && out.contains("Your package was pushed"), "push failed:\n{out}");
    }

    // A lower-case id and a short version resolve to Sluice.App 2.0.0, and its dependency comes too.
    let out_dir = server.work.join("installed");
    nuget.install("sluice.app", "2.0", &out_dir);
    assert_eq!(read_text(out_dir.join("Sluice.App.2.0.0/content/Sluice.App.txt")), "Sluice.App 2.0");
    assert_eq!(read_text(out_dir.join("Sluice.Core.1.0.0/content/Sluice.Core.txt")), "Sluice.Core 1.0.0");

    // The flat container serves the nuspec exactly as it is inside the package.
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&app).unwrap()).unwrap();
    let mut packed_nuspec = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("Sluice.App.nuspec").unwrap(), &mut packed_nuspec).unwrap();
    let (status, served) = server.get("/nuget/v3-flatcontainer/sluice.app/2.0.0/sluice.app.nuspec");
    assert_eq!((status, served), (200, packed_nuspec));

    let listed = nuget.ok(&["list", "Sluice", "-Source", &nuget.source]);
    assert!(listed.contains("Sluice.App 2.0.0") && listed.contains("Sluice.Core 1.0.0"), "{listed}");
    let found = nuget.ok(&["search", "Sluice.App", "-Source", &nuget.source]);
    assert!(found.contains("Sluice.App | 2.0.0"), "{found}");

    // Republishing a version fails; so do a wrong key and a key without the publish scope.
    let (ok, out) = nuget.push(&app, &token);
    assert!(!ok && out.contains("409"), "duplicate push should fail with 409:\n{out}");
    let other = nuget.pack(&packs, "Sluice.Other", "1.0.0", "");
    let (ok, out) = nuget.push(&other, "not-a-token");
    assert!(!ok && out.contains("401"), "a wrong API key should be refused:\n{out}");
    let (ok, out) = nuget.push(&other, &reader);
    assert!(!ok && out.contains("403"), "a read-only key should be refused:\n{out}");
    assert_eq!(server.get("/nuget/v3-flatcontainer/sluice.other/index.json").0, 404);

    // `nuget delete` unlists: gone from search and list, still installable by exact version.
    let out = nuget.ok(&["delete", "Sluice.Core", "1.0.0", "-Source", &nuget.source, "-ApiKey", &token]);
    assert!(out.contains("was deleted successfully"), "{out}");
    let found = nuget.ok(&["search", "Sluice.Core", "-Source", &nuget.source]);
    assert!(!found.contains("Sluice.Core |") && found.contains("No results found"), "{found}");
    let listed = nuget.ok(&["list", "Sluice", "-Source", &nuget.source]);
    assert!(listed.contains("Sluice.App 2.0.0") && !listed.contains("Sluice.Core"), "{listed}");
    let fresh = NuGet::new(&server, "after-unlist");
    let out_dir = server.work.join("installed-unlisted");
    fresh.install("Sluice.Core", "1.0.0", &out_dir);
    assert_eq!(read_text(out_dir.join("Sluice.Core.1.0.0/content/Sluice.Core.txt")), "Sluice.Core 1.0.0");
}

#[test]
fn malformed_packages_are_refused_and_nothing_is_stored() {
    let mut server = Server::start();
    let token = server.token("alice", "read,publish", None);
    let nuspec = minimal_nuspec("Sluice.Bad", "1.0.0");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("no nuspec", nupkg_bytes(&[], &[("content/a.txt", b"a")]), "no .nuspec"),
        (
            "two nuspecs",
            nupkg_bytes(&[("A.nuspec", nuspec.clone()), ("B.nuspec", minimal_nuspec("Sluice.Bad2", "1.0.0"))], &[]),
            "exactly one",
        ),
        ("traversal", nupkg_bytes(&[("Sluice.Bad.nuspec", nuspec.clone())], &[("../evil.txt", b"x")]), "unsafe path"),
        ("absolute path", nupkg_bytes(&[("Sluice.Bad.nuspec", nuspec.clone())], &[("/etc/evil", b"x")]), "unsafe path"),
        (
            "bad version",
            nupkg_bytes(&[("Sluice.Bad.nuspec", minimal_nuspec("Sluice.Bad", "one"))], &[]),
            "not a valid NuGet version",
        ),
        ("not a zip", b"definitely not a zip".to_vec(), "not a valid .nupkg"),
    ];
    for (what, package, reason) in &cases {
        let (status, body) = raw_push(&server, &token, package);
        assert_eq!(status, 400, "{what}: {body}");
        assert!(body.contains(reason), "{what}: expected `{reason}` in {body:?}");
    }

    // nuget.exe itself gets the refusal, with the reason.
    let nuget = NuGet::new(&server, "bad");
    let crafted = server.work.join("Sluice.Bad.1.0.0.nupkg");
    std::fs::write(&crafted, &cases[2].1).unwrap();
    let (ok, out) = nuget.push(&crafted, &token);
    assert!(!ok && out.contains("400"), "nuget push of a traversal package should fail:\n{out}");

    assert!(server.blob_files().is_empty(), "refused packages were stored: {:?}", server.blob_files());
    assert_eq!(server.get("/nuget/v3-flatcontainer/sluice.bad/index.json").0, 404);
    assert!(server.is_alive());
}

#[test]
fn three_hundred_versions_are_paged_and_restorable() {
    let server = Server::start();
    let token = server.token("alice", "read,publish", None);
    let versions: Vec<String> = (0..300).map(|i| format!("1.0.{i}")).collect();
    // Pushed concurrently by a few raw uploaders; each package is a real nupkg made with zip.
    std::thread::scope(|scope| {
        for chunk in versions.chunks(75) {
            let (server, token) = (&server, &token);
            scope.spawn(move || {
                for version in chunk {
                    let text = format!("many {version}");
                    let package = nupkg_bytes(
                        &[("Sluice.Many.nuspec", minimal_nuspec("Sluice.Many", version))],
                        &[("content/version.txt", text.as_bytes())],
                    );
                    let (status, body) = raw_push(server, token, &package);
                    assert_eq!(status, 201, "push {version}: {body}");
                }
            });
        }
    });

    let (status, body) = server.get("/nuget/v3-flatcontainer/sluice.many/index.json");
    assert_eq!(status, 200);
    let flat: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(flat["versions"].as_array().unwrap().len(), 300);

    let (status, body) = server.get("/nuget/v3/registration/sluice.many/index.json");
    assert_eq!(status, 200);
    let index: serde_json::Value = serde_json::from_str(&body).unwrap();
    let pages = index["items"].as_array().unwrap();
    assert_eq!(pages.len(), 5, "300 versions make 5 pages of at most 64");
    assert!(pages.iter().all(|p| p.get("items").is_none()), "pages of a large package are separate documents");
    assert_eq!((pages[0]["lower"].as_str(), pages[4]["upper"].as_str()), (Some("1.0.0"), Some("1.0.299")));

    let nuget = NuGet::new(&server, "many");
    let out_dir = server.work.join("many");
    for version in ["1.0.3", "1.0.299"] {
        nuget.install("Sluice.Many", version, &out_dir);
        let installed = out_dir.join(format!("Sluice.Many.{version}/content/version.txt"));
        assert_eq!(read_text(installed), format!("many {version}"));
    }
}

/// A gated push stays invisible to `nuget install` until its pipeline passes.
#[test]
fn gated_packages_restore_only_after_their_pipeline_passes() {
    let server = Server::gated("nuget", "nuget", "unpacked:\n  script:\n    - ls pkg/*.nuspec\n", "");
    let nuget = NuGet::new(&server, "gated");
    let key = server.token("pusher", "publish", Some("nuget"));
    let runner = server.token("runner", "runner", None);
    let admin = server.token("admin", "admin", None);
    let nupkg = nuget.pack(&server.work, "Gated.Lib", "1.0.0", "");
    let (ok, out) = nuget.push(&nupkg, &key);
    assert!(ok, "{out}");
    let out_dir = server.work.join("restored");
    let (ok, out) = nuget.run(&[
        "install",
        "Gated.Lib",
        "-Version",
        "1.0.0",
        "-Source",
        &nuget.source,
        "-OutputDirectory",
        out_dir.to_str().unwrap(),
    ]);
    assert!(!ok, "a pending package must not restore: {out}");

    server.run_one_job(&runner);
    assert_eq!(server.latest_pipeline("nuget", &admin)["pipeline"]["status"], "success");
    nuget.install("Gated.Lib", "1.0.0", &out_dir);
    assert!(out_dir.join("Gated.Lib.1.0.0").is_dir());
}
