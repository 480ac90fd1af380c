//! The store on PostgreSQL (`database = "postgres://..."`): what only a real PostgreSQL server
//! shows. The npm, pipeline and gate tests run on it too (`SLUICE_TEST_DATABASE=postgres` in
//! `scripts/test`); these check the migrations, the database's unique keys under concurrent
//! publishes, and the change log's triggers behind kept documents.

mod support;

use std::sync::{Arc, Barrier};

use serde_json::Value;
use support::npm::{make_package, Npm};
use support::npm_fixture::{publish_body, simple_package};
use support::{pg, Server};

/// Migrations apply once on an empty database, the same numbers as SQLite's, and a restart
/// applies none; `token create` writes to the same database; no SQLite file appears.
#[test]
fn migrations_apply_on_an_empty_database_and_once() {
    let mut server = Server::start_on_postgres(None);
    let url = server.database_url().unwrap().to_string();
    let mut db = pg::connect(&url);
    let applied: i64 = db.query_one("SELECT applied FROM schema_version", &[]).unwrap().get(0);
    let numbered =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/src/store/migrations/sqlite")).unwrap().count();
    assert_eq!(applied as usize, numbered, "every numbered migration");
    let tables: Vec<String> = db
        .query("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for table in
        ["changes", "files", "git_tags", "jobs", "package_search", "packages", "pipelines", "pushes", "tags", "tokens"]
    {
        assert!(tables.iter().any(|t| t == table), "table {table} in {tables:?}");
    }
    assert_eq!(server.log().matches("applying database migration").count(), numbered);
    assert!(!server.data.join("sluice.db").exists(), "no SQLite file when the database is PostgreSQL");

    let admin = server.token("admin", "admin", None);
    let tokens: i64 = db.query_one("SELECT count(*) FROM tokens", &[]).unwrap().get(0);
    assert_eq!(tokens, 1, "`sluice token create` wrote to the server's database");

    server.restart();
    assert_eq!(server.log().matches("applying database migration").count(), numbered, "a restart applies none again");
    let applied: i64 = db.query_one("SELECT applied FROM schema_version", &[]).unwrap().get(0);
    assert_eq!(applied as usize, numbered);
    assert_eq!(server.get("/ready").0, 200);
    // The token made before the restart still works.
    let pushes = server.api_json("/api/v1/pushes", &admin);
    assert!(pushes.is_object() || pushes.is_array(), "{pushes}");
}

/// 50 publishes of one version at once: the database's unique key lets exactly one in, the
/// other 49 are refused with 409, and what clients get is the one that won.
#[test]
fn fifty_concurrent_publishes_of_one_version_store_one() {
    let server = Server::start_on_postgres(None);
    let token = server.token("ci", "publish", None);
    let url = server.url.clone();
    let start = Arc::new(Barrier::new(50));
    let handles: Vec<_> = (0..50)
        .map(|i| {
            let (url, token, start) = (url.clone(), token.clone(), start.clone());
            std::thread::spawn(move || {
                // Each publisher's tarball differs, so only the version can make them collide.
                let tgz = simple_package(
                    "racy",
                    "1.0.0",
                    "one version, many publishers",
                    &format!("module.exports = {i};\n"),
                );
                let body = publish_body("racy", "1.0.0", &tgz);
                let http =
                    reqwest::blocking::Client::builder().timeout(std::time::Duration::from_secs(120)).build().unwrap();
                start.wait();
                let r = http
                    .put(format!("{url}/npm/racy"))
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .expect("the server answers");
                (r.status().as_u16(), i)
            })
        })
        .collect();
    let results: Vec<(u16, usize)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let won: Vec<usize> = results.iter().filter(|(s, _)| (200..300).contains(s)).map(|(_, i)| *i).collect();
    // Refused as npm's registry refuses a version it has: 403 when the plugin already sees it,
    // 409 when the database's unique key catches a publish that raced the winner's commit.
    let refused = results.iter().filter(|(s, _)| *s == 403 || *s == 409).count();
    assert_eq!((won.len(), refused), (1, 49), "statuses: {results:?}");

    let mut db = pg::connect(server.database_url().unwrap());
    let files: i64 = db.query_one("SELECT count(*) FROM files", &[]).unwrap().get(0);
    let pushes: i64 = db.query_one("SELECT count(*) FROM pushes", &[]).unwrap().get(0);
    assert_eq!((files, pushes), (1, 1), "a refused publish leaves no row");

    // npm installs the winner's file.
    let npm = Npm::new(&server, "reader", None);
    let app = support::npm::project(&server.work, "app");
    npm.ok(&app, &["install", "racy@1.0.0"]);
    let index = std::fs::read_to_string(app.join("node_modules/racy/index.js")).unwrap();
    assert_eq!(index, format!("module.exports = {};\n", won[0]));
}

/// Kept documents follow the change log's PL/pgSQL triggers: a new version and a moved dist-tag
/// are in the next `npm view`, after the packument was kept.
#[test]
fn a_publish_invalidates_kept_documents() {
    let server = Server::start_on_postgres(None);
    let token = server.token("dev", "publish", None);
    let npm = Npm::new(&server, "dev", Some(&token));
    npm.ok(&make_package(&server.work, "kept", "1.0.0"), &["publish"]);
    let view = |args: &[&str]| -> Value { npm.view(&server.work, args) };
    assert_eq!(view(&["kept", "versions"]), serde_json::json!(["1.0.0"]));
    // Read again: now served from the kept document.
    assert_eq!(view(&["kept", "dist-tags.latest"]), serde_json::json!("1.0.0"));

    npm.ok(&make_package(&server.work, "kept", "1.1.0"), &["publish"]);
    assert_eq!(view(&["kept", "versions"]), serde_json::json!(["1.0.0", "1.1.0"]));
    assert_eq!(view(&["kept", "dist-tags.latest"]), serde_json::json!("1.1.0"));

    npm.ok(&server.work, &["dist-tag", "add", "kept@1.0.0", "stable"]);
    assert_eq!(view(&["kept", "dist-tags.stable"]), serde_json::json!("1.0.0"));

    let mut db = pg::connect(server.database_url().unwrap());
    let kinds: Vec<String> =
        db.query("SELECT kind FROM changes ORDER BY seq", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(kinds.iter().filter(|k| *k == "added").count(), 2, "one `added` per version: {kinds:?}");
}

/// `/ready` asks the database: 503 while PostgreSQL refuses the server's connections, 200 again
/// once it takes them, and the server stays up throughout.
#[test]
fn ready_follows_the_database() {
    let mut server = Server::start_on_postgres(Some("database_timeout_ms = 1000\n"));
    assert_eq!(server.get("/ready").0, 200);
    let url = server.database_url().unwrap().to_string();
    let name = url.rsplit('/').next().unwrap().to_string();
    let mut admin = pg::connect(&url.replace(&format!("/{name}"), "/postgres"));
    admin.batch_execute(&format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false")).unwrap();
    admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", &[&name]).unwrap();
    let (status, body) = server.get("/ready");
    assert_eq!(status, 503, "{body}");
    assert!(server.is_alive());

    admin.batch_execute(&format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")).unwrap();
    assert!(server.wait_for(std::time::Duration::from_secs(30), || server.get("/ready").0 == 200));
    assert!(server.log().contains("not ready"), "the refusal is logged");
}

/// Search on PostgreSQL (`pg_trgm`'s ILIKE where SQLite has FTS5's trigram MATCH) keeps the same
/// meaning: any substring, case folded beyond ASCII, `_` and `%` literal, query syntax never
/// parsed, short queries on names, only the repositories asked for.
#[test]
fn search_means_the_same_on_postgres() {
    use sluice::store::db::Visibility;

    let server = Server::start_on_postgres(None);
    let db = server.store();
    let seed = |repository: &str, name: &str, summary: &str, n: u64| {
        support::seed::release(&db, repository, name, "1.0.0", summary, n, &[])
    };
    seed("a", "my_thing", "a thing", 1);
    seed("b", "my_thing", "a thing", 2);
    seed("hidden", "my_thing", "a thing", 3);
    seed("a", "my-thing-2", "another one", 4);
    seed("b", "Ärger-Straße", "Umlaute im Namen", 5);

    let readable = vec!["a".to_string(), "b".to_string()];
    assert_eq!(db.ui_search(&readable, "my_", 0, 10).unwrap().0, 2, "`_` is literal; `hidden` is not searched");
    let (total, page) = db.ui_search(&readable, "THING", 1, 1).unwrap();
    assert_eq!((total, page.len()), (3, 1));
    assert_eq!(db.ui_search(&readable, "g-", 0, 10).unwrap().0, 1, "short queries compare names");
    assert_eq!(db.ui_search(&readable, "", 0, 10).unwrap().0, 4);
    assert_eq!(db.ui_search(&readable, "100%", 0, 10).unwrap().0, 0, "`%` is literal");
    assert_eq!(db.ui_search(&readable, "thing\" OR \"my", 0, 10).unwrap().0, 0);
    let (total, page) = db.ui_search(&readable, "ärger-str", 0, 10).unwrap();
    assert_eq!((total, page[0].package.name.as_str()), (1, "Ärger-Straße"));
    // The repository search reads summaries too.
    let vis = Visibility::All;
    let (total, found) = db.search("b", "umlaute", 0, 10, vis).unwrap();
    assert_eq!((total, found[0].package.name.as_str()), (1, "Ärger-Straße"));
    assert_eq!(db.search("a", "another", 0, 10, vis).unwrap().0, 1);
}
