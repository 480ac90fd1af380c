//! NuGet packages in the shapes nuget.org holds (issue 10), pushed and installed with the real
//! nuget.exe: empty dependency groups, license files, embedded icons, SemVer 2 build metadata;
//! and what nuget.org refuses (zip tricks, non-ASCII ids), refused with a clear 4xx.

mod support;

use serde_json::{json, Value};
use support::nuget::{raw_push, NuGet};
use support::nuget_fixture::{humanizer_core_like, nuspec, Nupkg, PNG_1X1};
use support::Server;

fn get_json(server: &Server, path: &str) -> Value {
    let (status, body) = server.get(path);
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

/// `nuget install Humanizer.Core 2.14.1 -Framework net6.0`: the empty .NETStandard2.0 group is
/// the nearest, so nothing else is needed; the .NETStandard1.0 group, which needs
/// NETStandard.Library (not on this feed), must not be picked instead.
#[test]
fn an_empty_dependency_group_is_what_a_framework_install_picks() {
    let server = Server::start();
    let token = server.token("alice", "read,publish", None);
    let nuget = NuGet::new(&server, "groups");
    let package = server.work.join("Humanizer.Core.2.14.1.nupkg");
    std::fs::write(&package, humanizer_core_like("Humanizer.Core", "2.14.1")).unwrap();
    let (ok, out) = nuget.push(&package, &token);
    assert!(ok, "{out}");

    let out_dir = server.work.join("net6");
    let output = out_dir.to_str().unwrap();
    let source = nuget.source.clone();
    nuget.ok(&[
        "install",
        "Humanizer.Core",
        "-Version",
        "2.14.1",
        "-Framework",
        "net6.0",
        "-Source",
        &source,
        "-OutputDirectory",
        output,
    ]);
    assert!(out_dir.join("Humanizer.Core.2.14.1/lib/netstandard2.0/Humanizer.dll").is_file());
    let index = get_json(&server, "/nuget/v3/registration/humanizer.core/index.json");
    let groups = &index["items"][0]["items"][0]["catalogEntry"]["dependencyGroups"];
    assert_eq!(
        groups[1],
        json!({"@type": "PackageDependencyGroup", "targetFramework": ".NETStandard2.0", "dependencies": []})
    );

    // The other group is kept too: for netstandard1.0 nuget needs NETStandard.Library.
    let old = server.work.join("ns10");
    let (ok, out) = nuget.run(&[
        "install",
        "Humanizer.Core",
        "-Version",
        "2.14.1",
        "-Framework",
        "netstandard1.0",
        "-Source",
        &source,
        "-OutputDirectory",
        old.to_str().unwrap(),
    ]);
    assert!(!ok && out.contains("NETStandard.Library"), "{out}");
}

/// `<license type="file">` and `<icon>`, packed by nuget pack: the registration and search point
/// at the files served from the package, and `licenseExpression` is left out.
#[test]
fn license_files_and_icons_are_served_from_the_package() {
    let server = Server::start();
    let token = server.token("alice", "read,publish", None);
    let nuget = NuGet::new(&server, "embedded");
    let folder = server.work.join("embedded");
    std::fs::create_dir_all(folder.join("images")).unwrap();
    let license_text = "Copyright (c) Sluice Tests\n\nPermission is hereby granted, free of charge...\n";
    std::fs::write(folder.join("LICENSE.txt"), license_text).unwrap();
    std::fs::write(folder.join("images/icon.png"), PNG_1X1).unwrap();
    std::fs::write(folder.join("readme.txt"), "content").unwrap();
    let spec = nuspec(
        "Sluice.Embedded",
        "1.2.0",
        "<license type=\"file\">LICENSE.txt</license>\n    <icon>images\\icon.png</icon>",
    )
    .replace(
        "</metadata>",
        "</metadata>\n  <files>\n    <file src=\"LICENSE.txt\" target=\"\" />\n    <file src=\"images\\icon.png\" target=\"images\\\" />\n    \
         <file src=\"readme.txt\" target=\"content\" />\n  </files>",
    );
    let package = nuget.pack_nuspec(&folder, "Sluice.Embedded.nuspec", &spec);
    let (ok, out) = nuget.push(&package, &token);
    assert!(ok, "{out}");

    let index = get_json(&server, "/nuget/v3/registration/sluice.embedded/index.json");
    let entry = &index["items"][0]["items"][0]["catalogEntry"];
    let license_url = format!("{}/v3-flatcontainer/sluice.embedded/1.2.0/license", server.repo_url("nuget"));
    let icon_url = format!("{}/v3-flatcontainer/sluice.embedded/1.2.0/icon", server.repo_url("nuget"));
    assert_eq!(entry["licenseUrl"], json!(license_url), "{entry}");
    assert!(entry.get("licenseExpression").is_none(), "a license file is not an expression: {entry}");
    assert_eq!(entry["iconUrl"], json!(icon_url), "{entry}");

    let license = server.http().get(&license_url).send().unwrap();
    assert_eq!(license.status().as_u16(), 200);
    assert!(license.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    assert_eq!(license.text().unwrap(), license_text);
    let icon = server.http().get(&icon_url).send().unwrap();
    assert_eq!(icon.status().as_u16(), 200);
    assert_eq!(icon.headers()["content-type"], "image/png");
    assert_eq!(icon.bytes().unwrap().as_ref(), PNG_1X1);

    let found = get_json(&server, "/nuget/v3/search?q=Sluice.Embedded");
    assert_eq!(
        (&found["data"][0]["licenseUrl"], &found["data"][0]["iconUrl"]),
        (&json!(license_url), &json!(icon_url))
    );

    // The served nuspec is still the package's own, and nuget.exe installs the package.
    let (status, served) = server.get("/nuget/v3-flatcontainer/sluice.embedded/1.2.0/sluice.embedded.nuspec");
    assert_eq!(status, 200);
    assert!(served.contains("<license type=\"file\">LICENSE.txt</license>"), "{served}");
    let out_dir = server.work.join("installed");
    nuget.install("Sluice.Embedded", "1.2.0", &out_dir);
    assert_eq!(std::fs::read(out_dir.join("Sluice.Embedded.1.2.0/images/icon.png")).unwrap(), PNG_1X1);
}

/// SemVer 2 build metadata: the version is stored and resolved as `5.0.0-beta.1`, while the
/// registration and search show `5.0.0-beta.1+build.5`, as nuget.org does.
#[test]
fn build_metadata_shows_in_registration_and_search() {
    let server = Server::start();
    let token = server.token("alice", "read,publish", None);
    let nuget = NuGet::new(&server, "semver2");
    let package = nuget.pack(&server.work.join("semver2"), "Sluice.Built", "5.0.0-beta.1+build.5", "");
    let (ok, out) = nuget.push(&package, &token);
    assert!(ok, "{out}");

    let index = get_json(&server, "/nuget/v3/registration/sluice.built/index.json");
    let item = &index["items"][0]["items"][0];
    assert_eq!(item["catalogEntry"]["version"], "5.0.0-beta.1+build.5");
    assert!(item["@id"].as_str().unwrap().ends_with("/sluice.built/5.0.0-beta.1.json"), "{item}");
    let found = get_json(&server, "/nuget/v3/search?q=Sluice.Built&prerelease=true&semVerLevel=2.0.0");
    assert_eq!(found["data"][0]["version"], "5.0.0-beta.1+build.5");
    assert_eq!(found["data"][0]["versions"][0]["version"], "5.0.0-beta.1+build.5");
    let flat = get_json(&server, "/nuget/v3-flatcontainer/sluice.built/index.json");
    assert_eq!(flat["versions"], json!(["5.0.0-beta.1"]));

    let out_dir = server.work.join("installed");
    let source = nuget.source.clone();
    nuget.ok(&[
        "install",
        "Sluice.Built",
        "-Version",
        "5.0.0-beta.1",
        "-Prerelease",
        "-Source",
        &source,
        "-OutputDirectory",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out_dir.join("Sluice.Built.5.0.0-beta.1/content/Sluice.Built.txt").is_file());
}

/// Zips that unpack to something other than what their directory lists: two entries of one
/// name, a 1 MB package of one 1 GB entry, 1,000 entries sharing one stream. Refused with a 4xx,
/// nothing stored, the server up.
#[test]
fn zip_tricks_are_refused() {
    let mut server = Server::start();
    let token = server.token("alice", "read,publish", None);
    let id = "Sluice.Tricky";
    let spec = nuspec(id, "1.0.0", "");
    let other = nuspec(id, "2.0.0", "");
    let two_nuspecs = Nupkg::new(id, &spec).duplicate(&format!("{id}.nuspec"), &other).build();
    let bomb = Nupkg::new(id, &spec).zeros("content/zeros.bin", 1_000_000_000).build();
    assert!(bomb.len() < 2_000_000, "the bomb is {} bytes", bomb.len());
    let shared = Nupkg::new(id, &spec).zeros("content/0000.bin", 1 << 20).sharing_last("content/copy", 1000).build();
    let cases: [(&str, &[u8], u16, &str); 3] = [
        ("two nuspecs of one name", &two_nuspecs, 400, "two zip entries named `Sluice.Tricky.nuspec`"),
        ("a 1 GB entry", &bomb, 413, "more than 512 MiB"),
        ("1,000 entries on one stream", &shared, 413, "more than 512 MiB"),
    ];
    for (what, package, status, reason) in cases {
        let (got, body) = raw_push(&server, &token, package);
        assert_eq!(got, status, "{what}: {body}");
        assert!(body.contains(reason), "{what}: expected `{reason}` in {body:?}");
    }
    // Fewer shared entries stay under the size limit, and are refused for sharing.
    let few = Nupkg::new(id, &spec).zeros("content/0000.bin", 1 << 20).sharing_last("content/copy", 10).build();
    let (got, body) = raw_push(&server, &token, &few);
    assert_eq!(got, 400, "{body}");
    assert!(body.contains("share their data"), "{body}");

    // nuget.exe gets the refusal too.
    let nuget = NuGet::new(&server, "tricky");
    let file = server.work.join("Sluice.Tricky.1.0.0.nupkg");
    std::fs::write(&file, &bomb).unwrap();
    let (ok, out) = nuget.push(&file, &token);
    assert!(!ok && out.contains("413"), "{out}");

    assert!(server.blob_files().is_empty(), "refused packages were stored: {:?}", server.blob_files());
    assert_eq!(server.get("/nuget/v3-flatcontainer/sluice.tricky/index.json").0, 404);
    assert!(server.is_alive());
}

/// `Nеwtonsoft.Json` with a Cyrillic `е` would pass for `Newtonsoft.Json`: refused, as nuget.org does.
#[test]
fn non_ascii_ids_are_refused() {
    let mut server = Server::start();
    let token = server.token("alice", "read,publish", None);
    let id = "N\u{0435}wtonsoft.Json";
    let package = Nupkg::new(id, &nuspec(id, "13.0.3", "")).file("lib/net6.0/Newtonsoft.Json.dll", "dll").build();
    let (status, body) = raw_push(&server, &token, &package);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("non-ASCII"), "{body}");

    let nuget = NuGet::new(&server, "homoglyph");
    let file = server.work.join("homoglyph.nupkg");
    std::fs::write(&file, &package).unwrap();
    let (ok, out) = nuget.push(&file, &token);
    assert!(!ok && out.contains("400"), "{out}");
    assert!(server.blob_files().is_empty());
    assert!(server.is_alive());
}
