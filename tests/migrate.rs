//! `sluice migrate`: a single-node registry (SQLite and the blob folder) with packages of all four
//! formats, copied into PostgreSQL and a real S3 server, then served from there to the real
//! clients: npm, gem, nuget.exe and go install what was published before the move, and the old
//! tokens keep working.

mod support;

use std::path::Path;

use support::gomod_fixture::{commit_and_tag, download_sums, git, sync, write};
use support::npm::{make_package, project, Npm};
use support::nuget::NuGet;
use support::{gem, pg, require_tool, s3, Server};

fn config(git_repo: &Path) -> String {
    format!(
        "[[repository]]\nname = \"npm\"\nformat = \"npm\"\n\n\
         [[repository]]\nname = \"nuget\"\nformat = \"nuget\"\n\n\
         [[repository]]\nname = \"rubygems\"\nformat = \"rubygems\"\n\n\
         [[repository]]\nname = \"go\"\nformat = \"gomod\"\ngit = [{:?}]\npoll_seconds = 0\n",
        git_repo.to_str().unwrap()
    )
}

/// Runs `sluice migrate` for `server`'s data folder; (success, stdout + stderr).
fn migrate(server: &Server, to: &str, s3: &s3::S3Server) -> (bool, String) {
    let out = server
        .command()
        .envs(s3.env())
        // The S3 server's settings, but the source registry's own blob folder: only `--blobs`
        // names the bucket.
        .env_remove("SLUICE_BLOBS")
        .args(["migrate", "--data"])
        .arg(&server.data)
        .args(["--config"])
        .arg(server.config_dir().join("sluice.toml"))
        .args(["--to", to, "--blobs", &s3.blobs_url()])
        .output()
        .expect("run sluice migrate");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// The stored package files of a single-node server (content-addressed: named by their sha256).
fn blob_files(server: &Server) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    s3::walk(&server.data.join("blobs"), &mut files);
    files.retain(|p| p.file_name().is_some_and(|n| n.len() == 64) && !p.starts_with(server.data.join("blobs/tmp")));
    files
}

#[test]
fn a_single_node_registry_moves_to_postgres_and_s3_and_every_client_installs_from_it() {
    for tool in ["npm", "gem", "nuget", "mono", "go", "git"] {
        require_tool(tool);
    }
    let repo = tempfile::tempdir().unwrap();
    git(repo.path(), &["init", "-q"]);
    write(repo.path(), "go.mod", "module example.com/moved\n\ngo 1.19\n");
    write(repo.path(), "moved.go", "package moved\n\nfunc Where() string { return \"moved\" }\n");
    commit_and_tag(repo.path(), "v1.0.0", &["v1.0.0"]);

    let mut server = Server::start_single_node(Some(&config(repo.path())));
    let token = server.token("ci", "read,publish", None);
    let npm = Npm::new(&server, "publisher", Some(&token));
    for (name, version) in [("moved-lib", "1.0.0"), ("@acme/moved", "2.1.0")] {
        npm.ok(&make_package(&server.work, name, version), &["publish"]);
    }
    let (ok, out) = gem::push(&server, &gem::build_gem(&server.work, "moved_gem", "0.3.0", None, &[]), &token);
    assert!(ok, "gem push: {out}");
    let nuget = NuGet::new(&server, "publisher");
    let (ok, out) = nuget.push(&nuget.pack(&server.work, "Moved.Package", "4.0.0", ""), &token);
    assert!(ok, "nuget push: {out}");
    sync(&server);
    server.kill();
    let blobs = blob_files(&server).len();
    assert!(blobs >= 5, "2 npm tarballs, a gem, a nupkg and a go zip at least: {blobs}");

    let s3 = s3::S3Server::start();
    let database = pg::database();
    let (ok, out) = migrate(&server, &database, &s3);
    println!("{out}");
    assert!(ok, "sluice migrate failed:\n{out}");
    assert!(out.contains("files") && out.contains("sha256 checked"), "it says what it copied:\n{out}");
    assert_eq!(s3.objects().len(), blobs, "every package file is in the bucket, once");

    // The migrated registry, on a fresh data folder: everything comes from PostgreSQL and S3.
    std::fs::remove_dir_all(repo.path()).unwrap();
    let target = Server::start_on_store(Some(&config(repo.path())), &database, &s3);
    let npm = Npm::new(&target, "installer", Some(&token));
    let app = project(&target.work, "app");
    npm.ok(&app, &["install", "moved-lib@1.0.0", "@acme/moved@2.1.0"]);
    let installed = std::fs::read_to_string(app.join("node_modules/@acme/moved/index.js")).unwrap();
    assert!(installed.contains("@acme/moved@2.1.0"), "{installed}");
    // The old token still publishes (tokens moved with their hashes and scopes).
    npm.ok(&make_package(&target.work, "moved-lib", "1.0.1"), &["publish"]);
    assert_eq!(npm.view(&app, &["moved-lib", "versions"]), serde_json::json!(["1.0.0", "1.0.1"]));

    let gems = target.work.join("gems");
    let (ok, out) = gem::gem_install(&target, "moved_gem", &gems);
    assert!(ok && out.contains("moved_gem-0.3.0"), "gem install: {out}");

    let nuget = NuGet::new(&target, "installer");
    let output = target.work.join("nuget-out");
    nuget.install("Moved.Package", "4.0.0", &output);
    assert!(output.join("Moved.Package.4.0.0/content/Moved.Package.txt").is_file(), "nuget install unpacked it");

    let home = tempfile::tempdir().unwrap();
    let sums = download_sums(&target.repo_url("go"), home.path(), &["example.com/moved@v1.0.0"]);
    assert_eq!(sums.len(), 1);
    assert_eq!(sums[0].0, "v1.0.0");
}

#[test]
fn a_migration_refuses_a_database_that_holds_a_registry_and_a_blob_that_does_not_match_its_digest() {
    require_tool("npm");
    let mut server = Server::start_single_node(Some("[[repository]]\nname = \"npm\"\nformat = \"npm\"\n"));
    let token = server.token("ci", "read,publish", None);
    let npm = Npm::new(&server, "publisher", Some(&token));
    npm.ok(&make_package(&server.work, "kept", "1.0.0"), &["publish"]);
    server.kill();
    let s3 = s3::S3Server::start();

    // A blob whose bytes changed on disk: refused by name, and the target lists nothing.
    let blob = blob_files(&server).into_iter().next().expect("the tarball's blob");
    let good = std::fs::read(&blob).unwrap();
    std::fs::write(&blob, b"not the tarball").unwrap();
    let database = pg::database();
    let (ok, out) = migrate(&server, &database, &s3);
    assert!(!ok, "a corrupted blob must stop the migration:\n{out}");
    assert!(out.contains(blob.file_name().unwrap().to_str().unwrap()), "the error names the blob:\n{out}");
    let mut client = pg::connect(&database);
    let files: i64 = client.query_one("SELECT COUNT(*) FROM files", &[]).map(|r| r.get(0)).unwrap_or(0);
    assert_eq!(files, 0, "nothing half-copied is listed");

    // Repaired, the same run goes through; run again into the now full database, it refuses.
    std::fs::write(&blob, good).unwrap();
    let (ok, out) = migrate(&server, &database, &s3);
    assert!(ok, "{out}");
    let (ok, out) = migrate(&server, &database, &s3);
    assert!(!ok && out.contains("already holds a registry"), "{out}");
}
