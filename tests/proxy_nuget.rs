//! A NuGet proxy repository (issue 15): a `sluice serve` whose `nugetorg` repository proxies a
//! second `sluice serve` on loopback, to which the tests push with real `nuget push`. Real
//! `nuget install` (nuget.exe under mono) goes through the proxy with fresh caches, also once the
//! upstream is stopped.

mod support;

use std::path::Path;
use std::time::Duration;

use support::fake_upstream::FakeUpstream;
use support::nuget::{raw_push, NuGet};
use support::nuget_fixture::{nuspec, Nupkg};
use support::Server;

fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A nuget.exe client of the proxy's `nugetorg` repository with its own fresh caches.
fn client(proxy: &Server, name: &str) -> NuGet {
    NuGet { source: format!("{}/v3/index.json", proxy.repo_url("nugetorg")), ..NuGet::new(proxy, name) }
}

#[test]
fn nuget_installs_through_the_proxy_and_from_its_cache_once_the_upstream_is_down() {
    // The upstream: a plain Sluice with its default `nuget` repository.
    let mut up = Server::start();
    let token = up.token("publisher", "read,publish", None);
    let publisher = NuGet::new(&up, "publisher");
    let packs = up.work.join("packs");
    let core = publisher.pack(&packs, "Sluice.Core", "1.0.0", "");
    let app = publisher.pack(&packs, "Sluice.App", "2.0", r#"<dependency id="Sluice.Core" version="1.0.0" />"#);
    for package in [&core, &app] {
        let (ok, out) = publisher.push(package, &token);
        assert!(ok && out.contains("Your package was pushed"), "push failed:\n{out}");
    }
    // Enough versions that the upstream's registration is in linked pages (64 a page).
    for i in 0..70 {
        let version = format!("1.0.{i}");
        let package = Nupkg::new("Sluice.Many", &nuspec("Sluice.Many", &version, ""))
            .file("content/version.txt", format!("many {version}"))
            .build();
        let (status, body) = raw_push(&up, &token, &package);
        assert_eq!(status, 201, "push {version}: {body}");
    }

    let proxy = Server::start_with_config(&format!(
        "[[repository]]\nname = \"nugetorg\"\nformat = \"nuget\"\nupstream = \"{}\"\n# The upstream runs on loopback.\nallow_local_upstream = true\nmetadata_ttl = \"1s\"\n",
        up.repo_url("nuget")
    ));

    // A package and its dependency, both only upstream, and one version of many.
    let nuget = client(&proxy, "first");
    let out_dir = proxy.work.join("first");
    nuget.install("sluice.app", "2.0", &out_dir);
    assert_eq!(read_text(&out_dir.join("Sluice.App.2.0.0/content/Sluice.App.txt")), "Sluice.App 2.0");
    assert_eq!(read_text(&out_dir.join("Sluice.Core.1.0.0/content/Sluice.Core.txt")), "Sluice.Core 1.0.0");
    nuget.install("Sluice.Many", "1.0.69", &out_dir);
    assert_eq!(read_text(&out_dir.join("Sluice.Many.1.0.69/content/version.txt")), "many 1.0.69");

    // What clients read points at the proxy only, and lists every upstream version.
    let (status, registration) = proxy.get("/nugetorg/v3/registration/sluice.many/index.json");
    assert_eq!(status, 200);
    assert!(!registration.contains(&up.url), "the registration points at the upstream: {registration}");
    let registration: serde_json::Value = serde_json::from_str(&registration).unwrap();
    let leaves: usize =
        registration["items"].as_array().unwrap().iter().map(|p| p["items"].as_array().unwrap().len()).sum();
    assert_eq!(leaves, 70);
    let (_, flat) = proxy.get("/nugetorg/v3-flatcontainer/sluice.many/index.json");
    let flat: serde_json::Value = serde_json::from_str(&flat).unwrap();
    assert_eq!(flat["versions"].as_array().unwrap().len(), 70);

    // Search is the upstream's (its search service is on its own host), pointing here.
    let found = nuget.ok(&["search", "Sluice.App", "-Source", &nuget.source]);
    assert!(found.contains("Sluice.App | 2.0.0"), "{found}");
    let (_, results) = proxy.get("/nugetorg/v3/search?q=Sluice.Many");
    assert!(!results.contains(&up.url), "{results}");
    let results: serde_json::Value = serde_json::from_str(&results).unwrap();
    let many = &results["data"][0];
    assert_eq!(many["id"], "Sluice.Many");
    // All 70 versions, not only the one stored here.
    assert_eq!(many["versions"].as_array().unwrap().len(), 70, "{many}");

    // Each package came once, checked against the upstream's packageHash, and is in the audit
    // log as a push by `upstream` with the URL it came from.
    let fetched = proxy.upstream_fetches("nugetorg", &up.repo_url("nuget"));
    assert_eq!(fetched, ["Sluice.App 2.0.0", "Sluice.Core 1.0.0", "Sluice.Many 1.0.69"]);
    assert!(!proxy.log().contains("no digest to verify"), "every package was verified against its packageHash");

    // The upstream goes away and the kept metadata expires (1 s): a fresh client still installs.
    up.kill();
    std::thread::sleep(Duration::from_millis(1500));
    let nuget = client(&proxy, "second");
    let out_dir = proxy.work.join("second");
    nuget.install("Sluice.App", "2.0.0", &out_dir);
    assert_eq!(read_text(&out_dir.join("Sluice.App.2.0.0/content/Sluice.App.txt")), "Sluice.App 2.0");
    assert_eq!(read_text(&out_dir.join("Sluice.Core.1.0.0/content/Sluice.Core.txt")), "Sluice.Core 1.0.0");

    // A version the proxy never fetched cannot come from anywhere: a clear error, and the server
    // stays up.
    let (status, body) = proxy.get("/nugetorg/v3-flatcontainer/sluice.many/1.0.3/sluice.many.1.0.3.nupkg");
    assert_eq!(status, 502, "{body}");
    assert_eq!(proxy.get("/nugetorg/v3-flatcontainer/sluice.app/index.json").0, 200, "the proxy is still up");
}

/// A registry whose registration promises one package (its `packageHash`) and whose flat
/// container sends another.
fn liar() -> FakeUpstream {
    use axum::routing::get;
    use base64::Engine;
    use sha2::{Digest, Sha512};

    let package = |text: &str| Nupkg::new("Liar", &nuspec("Liar", "1.0.0", "")).file("content/liar.txt", text).build();
    let promised = package("what the registration promises");
    let sent = package("what is sent instead");
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha512::digest(&promised));
    FakeUpstream::serve(|origin| {
        let url = format!("{origin}/nuget");
        let json = |v: serde_json::Value| ([("content-type", "application/json")], v.to_string());
        let index = json(serde_json::json!({ "version": "3.0.0", "resources": [
            { "@id": format!("{url}/v3-flatcontainer/"), "@type": "PackageBaseAddress/3.0.0" },
            { "@id": format!("{url}/v3/registration/"), "@type": "RegistrationsBaseUrl/3.6.0" },
        ]}));
        let content = format!("{url}/v3-flatcontainer/liar/1.0.0/liar.1.0.0.nupkg");
        let registration =
            json(serde_json::json!({ "count": 1, "items": [{ "count": 1, "lower": "1.0.0", "upper": "1.0.0",
            "items": [{ "@id": format!("{url}/v3/registration/liar/1.0.0.json"), "packageContent": content,
                "catalogEntry": { "id": "Liar", "version": "1.0.0", "packageContent": content, "listed": true,
                    "packageHash": hash, "packageHashAlgorithm": "SHA512", "dependencyGroups": [] } }] }] }));
        let versions = json(serde_json::json!({ "versions": ["1.0.0"] }));
        axum::Router::new()
            .route("/nuget/v3/index.json", get(move || async move { index }))
            .route("/nuget/v3/registration/liar/index.json", get(move || async move { registration }))
            .route("/nuget/v3-flatcontainer/liar/index.json", get(move || async move { versions }))
            .route("/nuget/v3-flatcontainer/liar/1.0.0/liar.1.0.0.nupkg", get(move || async move { sent }))
    })
}

#[test]
fn a_package_that_does_not_match_the_upstream_package_hash_is_refused_and_not_stored() {
    let liar = liar();
    let mut proxy = Server::start_with_config(&format!(
        "[[repository]]\nname = \"nugetorg\"\nformat = \"nuget\"\nupstream = \"{}/nuget\"\nallow_local_upstream = true\n",
        liar.origin
    ));
    let nuget = client(&proxy, "victim");
    let out_dir = proxy.work.join("victim");
    let (ok, out) = nuget.run(&[
        "install",
        "Liar",
        "-Version",
        "1.0.0",
        "-Source",
        &nuget.source,
        "-OutputDirectory",
        out_dir.to_str().unwrap(),
    ]);
    assert!(!ok, "nuget must not install a package its registry could not verify:\n{out}");
    assert!(!out_dir.join("Liar.1.0.0").exists());

    let (status, body) = proxy.get("/nugetorg/v3-flatcontainer/liar/1.0.0/liar.1.0.0.nupkg");
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("does not match the sha512 digest"), "the client is told why: {body}");
    let admin = proxy.token("admin", "admin", None);
    assert_eq!(proxy.api_json("/api/v1/pushes?repository=nugetorg", &admin)["pushes"], serde_json::json!([]));
    assert!(proxy.is_alive());
}
