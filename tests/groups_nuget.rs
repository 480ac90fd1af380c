//! NuGet in groups, `private` package ids and `min_age` (issue 15). The upstream is a second
//! `sluice serve` to which the tests push with real `nuget push`; the registry under test has a
//! local repository `nuget`, a proxy `nugetorg` of that upstream and a group `all` over both. Real
//! `nuget install` (nuget.exe under mono) goes through them with fresh caches.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use support::nuget::NuGet;
use support::Server;

fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The upstream: a plain Sluice whose `nuget` repository has these packages (id, version,
/// dependencies), pushed with nuget.exe.
fn upstream_with(packages: &[(&str, &str, &str)]) -> Server {
    let up = Server::start();
    let token = up.token("publisher", "read,publish", None);
    let publisher = NuGet::new(&up, "publisher");
    let packs = up.work.join("packs");
    for (id, version, dependencies) in packages {
        let package = publisher.pack(&packs, id, version, dependencies);
        let (ok, out) = publisher.push(&package, &token);
        assert!(ok && out.contains("Your package was pushed"), "push of {id} {version} failed:\n{out}");
    }
    up
}

fn proxy_repo(name: &str, up: &Server, extra: &str) -> String {
    format!(
        "[[repository]]\nname = \"{name}\"\nformat = \"nuget\"\nupstream = \"{}\"\nallow_local_upstream = true\n{extra}\n\n",
        up.repo_url("nuget")
    )
}

/// A nuget.exe client of `repo` with its own fresh caches.
fn client(server: &Server, repo: &str, name: &str) -> NuGet {
    NuGet { source: format!("{}/v3/index.json", server.repo_url(repo)), ..NuGet::new(server, name) }
}

/// The versions of `id` the registration of `repo` offers (what `nuget install` resolves against).
fn registered(server: &Server, repo: &str, id: &str) -> Vec<String> {
    let (status, body) = server.get(&format!("/{repo}/v3/registration/{}/index.json", id.to_lowercase()));
    if status == 404 {
        return Vec::new();
    }
    assert_eq!(status, 200, "{id} in {repo}: {body}");
    let doc: Value = serde_json::from_str(&body).unwrap();
    let mut versions = Vec::new();
    for page in doc["items"].as_array().unwrap() {
        for leaf in page["items"].as_array().unwrap() {
            versions.push(leaf["catalogEntry"]["version"].as_str().unwrap().to_string());
        }
    }
    versions
}

/// The versions of `id` the flat container of `repo` lists.
fn flat(server: &Server, repo: &str, id: &str) -> Vec<String> {
    let (status, body) = server.get(&format!("/{repo}/v3-flatcontainer/{}/index.json", id.to_lowercase()));
    if status == 404 {
        return Vec::new();
    }
    assert_eq!(status, 200, "{id} in {repo}: {body}");
    let doc: Value = serde_json::from_str(&body).unwrap();
    doc["versions"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

fn install(nuget: &NuGet, id: &str, version: &str, out_dir: &Path) -> (bool, String) {
    nuget.run(&[
        "install",
        id,
        "-Version",
        version,
        "-Source",
        &nuget.source,
        "-OutputDirectory",
        out_dir.to_str().unwrap(),
    ])
}

#[test]
fn nuget_installs_through_a_group_from_the_local_member_first_and_never_private_ids_upstream() {
    let up = upstream_with(&[
        ("Pub.Util", "1.0.0", ""),
        // An impostor of the company's package at a higher version, as dependency confusion does it.
        ("Acme.Secret", "9.9.9", ""),
        ("Acme.Internal.Tool", "1.0.0", ""),
    ]);
    let registry = Server::start_with_config(&format!(
        "[[repository]]\nname = \"nuget\"\nformat = \"nuget\"\nprivate = [\"Acme.Internal.*\"]\n\n{}\
         [[repository]]\nname = \"all\"\nformat = \"nuget\"\nmembers = [\"nuget\", \"nugetorg\"]\n",
        proxy_repo("nugetorg", &up, "")
    ));

    // The company's package, which depends on a public one, pushed to the group: it lands in the
    // local member.
    let token = registry.token("dev", "read,publish", Some("nuget"));
    let dev = client(&registry, "all", "dev");
    let packs = registry.work.join("packs");
    let secret = dev.pack(&packs, "Acme.Secret", "1.0.0", r#"<dependency id="Pub.Util" version="1.0.0" />"#);
    let (ok, out) = dev.push(&secret, &token);
    assert!(ok && out.contains("Your package was pushed"), "push through the group failed:\n{out}");
    assert_eq!(registered(&registry, "nuget", "Acme.Secret"), ["1.0.0"], "stored in the local member");

    // One install needs a package from each member.
    let nuget = client(&registry, "all", "first");
    let out_dir = registry.work.join("first");
    nuget.install("Acme.Secret", "1.0.0", &out_dir);
    assert_eq!(read_text(&out_dir.join("Acme.Secret.1.0.0/content/Acme.Secret.txt")), "Acme.Secret 1.0.0");
    assert_eq!(read_text(&out_dir.join("Pub.Util.1.0.0/content/Pub.Util.txt")), "Pub.Util 1.0.0", "from upstream");

    // The group's documents: the company's package has only the local versions, public ones the
    // upstream's, and every URL points at the group.
    assert_eq!(registered(&registry, "all", "Acme.Secret"), ["1.0.0"]);
    assert_eq!(flat(&registry, "all", "Acme.Secret"), ["1.0.0"]);
    assert_eq!(registered(&registry, "all", "Pub.Util"), ["1.0.0"]);
    let (_, registration) = registry.get("/all/v3/registration/pub.util/index.json");
    assert!(registration.contains(&registry.repo_url("all")) && !registration.contains(&up.url), "{registration}");
    let (ok, out) = install(&nuget, "Acme.Secret", "9.9.9", &registry.work.join("impostor"));
    assert!(!ok, "the upstream's 9.9.9 must not install through the group:\n{out}");
    let (status, _) = registry.get("/all/v3-flatcontainer/acme.secret/9.9.9/acme.secret.9.9.9.nupkg");
    assert_eq!(status, 404, "nor its package, asked for by name");

    // Search through the group: the company's package is the local one, the impostor is not
    // shown, public packages are the upstream's.
    let found = nuget.ok(&["search", "Acme", "-Source", &nuget.source]);
    assert!(found.contains("Acme.Secret | 1.0.0"), "{found}");
    assert!(
        !found.contains("9.9.9") && !found.contains("Acme.Internal.Tool"),
        "nothing private from upstream:\n{found}"
    );
    let found = nuget.ok(&["search", "Pub.Util", "-Source", &nuget.source]);
    assert!(found.contains("Pub.Util | 1.0.0"), "{found}");

    // An id matching `private`, not held locally: never fetched from the upstream, though the
    // upstream has it (the proxy member's own URL shows it does).
    let (ok, out) = install(&nuget, "Acme.Internal.Tool", "1.0.0", &registry.work.join("private"));
    assert!(!ok, "a private id is never resolved through the proxy:\n{out}");
    assert!(registered(&registry, "all", "Acme.Internal.Tool").is_empty());
    assert_eq!(registered(&registry, "nugetorg", "Acme.Internal.Tool"), ["1.0.0"]);

    // What came from the upstream is stored in the proxy member, and nothing else.
    let admin = registry.token("admin", "admin", None);
    let pushes = registry.api_json("/api/v1/pushes?repository=nugetorg", &admin);
    let fetched: Vec<String> = pushes["pushes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| format!("{} {}", p["package"].as_str().unwrap(), p["version"].as_str().unwrap()))
        .collect();
    assert_eq!(fetched, ["Pub.Util 1.0.0"], "{pushes}");
    let (status, _) = registry.get("/nugetorg/v3-flatcontainer/pub.util/1.0.0/pub.util.1.0.0.nupkg");
    assert_eq!(status, 200, "the proxy member serves what the group fetched");
}

#[test]
fn min_age_withholds_nuget_versions_younger_than_it() {
    // "Older than the setting" without waiting days, as tests/groups.rs does for npm: a proxy with
    // a cool-off no test outlives (1 h), and one of 3 s read after sleeping past it. Only lower
    // bounds on elapsed time are relied on.
    let up = upstream_with(&[("Fresh.Pkg", "1.0.0", "")]);
    let registry = Server::start_with_config(
        &(proxy_repo("nugetorg", &up, "min_age = \"1h\"") + &proxy_repo("warm", &up, "min_age = \"3s\"")),
    );

    // Published upstream a moment ago: not offered, and not installable by exact version.
    assert_eq!(registered(&up, "nuget", "Fresh.Pkg"), ["1.0.0"], "the upstream has it");
    assert!(registered(&registry, "nugetorg", "Fresh.Pkg").is_empty());
    assert!(flat(&registry, "nugetorg", "Fresh.Pkg").is_empty());
    let cautious = client(&registry, "nugetorg", "cautious");
    let (ok, out) = install(&cautious, "Fresh.Pkg", "1.0.0", &registry.work.join("cautious"));
    assert!(!ok, "a version younger than min_age must not install:\n{out}");
    let (status, _) = registry.get("/nugetorg/v3-flatcontainer/fresh.pkg/1.0.0/fresh.pkg.1.0.0.nupkg");
    assert_eq!(status, 404, "nor is its package fetched");
    let found = cautious.ok(&["search", "Fresh.Pkg", "-Source", &cautious.source]);
    assert!(!found.contains("Fresh.Pkg |"), "search does not offer it either:\n{found}");

    // Versions pushed to this registry are never held back, however new.
    let token = registry.token("dev", "read,publish", Some("nugetorg"));
    let packs = registry.work.join("packs");
    let mine = cautious.pack(&packs, "Fresh.Pkg", "2.0.0", "");
    let (ok, out) = cautious.push(&mine, &token);
    assert!(ok, "{out}");
    assert_eq!(registered(&registry, "nugetorg", "Fresh.Pkg"), ["2.0.0"]);

    // Older than the setting: offered and installable.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(registered(&registry, "warm", "Fresh.Pkg"), ["1.0.0"]);
    assert_eq!(flat(&registry, "warm", "Fresh.Pkg"), ["1.0.0"]);
    let patient = client(&registry, "warm", "patient");
    let out_dir = registry.work.join("patient");
    patient.install("Fresh.Pkg", "1.0.0", &out_dir);
    assert_eq!(read_text(&out_dir.join("Fresh.Pkg.1.0.0/content/Fresh.Pkg.txt")), "Fresh.Pkg 1.0.0");
    let found = patient.ok(&["search", "Fresh.Pkg", "-Source", &patient.source]);
    assert!(found.contains("Fresh.Pkg | 1.0.0"), "{found}");
    assert_eq!(registered(&registry, "nugetorg", "Fresh.Pkg"), ["2.0.0"], "still too young for the 1 h proxy");
}
