//! Rows seeded through the store's own publish (no client, no plugin): for tests that need
//! thousands of packages or versions faster than a client publishes them. The file's blob is not
//! stored; such a version is listed, not downloadable.

use sluice::store::db::{NewFile, Pusher};
use sluice::store::{Db, Digests};

/// One released file of `name@version` in `repository` with `summary`, its digests made from
/// `n` (distinct per file), and `tags` pointing at it.
pub fn release(db: &Db, repository: &str, name: &str, version: &str, summary: &str, n: u64, tags: &[String]) {
    let digests =
        Digests { sha256: format!("{n:064x}"), sha512: "0".repeat(128), sha1: "0".repeat(40), size: 1000 + n };
    let meta = serde_json::json!({
        "name": name, "version": version, "qualifier": "", "summary": summary, "description": null, "license": "MIT",
        "homepage": null, "repository": null, "authors": [], "keywords": [], "dependencies": [], "manifest": "{}",
    })
    .to_string();
    let file_name = format!("{name}-{version}.tgz");
    let pusher = Pusher {
        actor: "seed",
        token_id: None,
        token_name: Some("seed"),
        client_addr: Some("127.0.0.1"),
        user_agent: None,
        commit_sha: None,
    };
    let new = NewFile {
        repository,
        key: &name.to_lowercase(),
        name,
        version,
        qualifier: "",
        file_name: &file_name,
        digests: &digests,
        metadata_json: &meta,
        readme: None,
        pusher: &pusher,
        released: true,
        tags,
        pipeline: None,
    };
    db.publish(&new, || Ok(())).unwrap();
}
