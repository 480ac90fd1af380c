//! Several `sluice serve` replicas on one PostgreSQL database and one S3 bucket serve one registry:
//! any replica answers any request, exclusive decisions are the database's, and a replica that
//! dies loses nothing it acknowledged while another takes over its background work.

mod support;

use std::time::Duration;

use sha2::{Digest, Sha256};
use support::gomod_fixture::{commit_and_tag, git, write};
use support::npm::{make_package, project, Npm};
use support::npm_fixture::{publish_body, simple_package};
use support::webhook::webhook_receiver;
use support::{pg, require_tool, s3, Server};

/// PUT an npm publish of `name@version` (this tarball) to `url`'s repository `repo`: the status,
/// or `None` when the connection failed (a replica that died mid-request).
fn publish(url: &str, repo: &str, token: &str, name: &str, version: &str, tgz: &[u8]) -> Option<u16> {
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    client
        .put(format!("{url}/{repo}/{name}"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(publish_body(name, version, tgz))
        .send()
        .ok()
        .map(|r| r.status().as_u16())
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The tarball of `name@version` as `server` serves it: (status, sha256 of the body).
fn download(server_url: &str, name: &str, version: &str) -> (u16, String) {
    let r = reqwest::blocking::get(format!("{server_url}/npm/{name}/-/{name}-{version}.tgz")).expect("GET tarball");
    let status = r.status().as_u16();
    (status, sha256(&r.bytes().unwrap()))
}

#[test]
fn two_replicas_on_one_database_and_bucket_serve_one_registry() {
    require_tool("npm");
    let shared = tempfile::tempdir().unwrap();
    let ci = shared.path().join("ci.yml");
    std::fs::write(&ci, "check:\n  script: \"true\"\n").unwrap();
    let (hook_url, hooks) = webhook_receiver();
    let config = format!(
        "allow_local_webhooks = true\n\
         [[repository]]\nname = \"npm\"\nformat = \"npm\"\n\n\
         [[repository]]\nname = \"gated\"\nformat = \"npm\"\ngate = \"pipeline\"\npipeline = {:?}\n\
         [[repository.webhook]]\nurl = {hook_url:?}\nsecret = \"s\"\n",
        ci.to_str().unwrap()
    );
    let s3 = s3::S3Server::start();
    let database = pg::database();
    let a = Server::start_on_store(Some(&config), &database, &s3);
    let b = Server::start_on_store(Some(&config), &database, &s3);
    let token = a.token("ci", "read,publish", None);

    // Published through A, installed through B.
    let npm_a = Npm::new(&a, "a", Some(&token));
    let npm_b = Npm::new(&b, "b", Some(&token));
    npm_a.ok(&make_package(&a.work, "shared-lib", "1.0.0"), &["publish"]);
    let app = project(&b.work, "app");
    npm_b.ok(&app, &["install", "shared-lib@1.0.0"]);
    assert!(app.join("node_modules/shared-lib/index.js").is_file());

    // Both replicas keep the packument; a dist-tag moved through B is seen through A at once.
    assert_eq!(npm_a.view(&app, &["shared-lib", "dist-tags"]), serde_json::json!({"latest": "1.0.0"}));
    npm_b.ok(&app, &["dist-tag", "add", "shared-lib@1.0.0", "stable"]);
    assert_eq!(
        npm_a.view(&app, &["shared-lib", "dist-tags"]),
        serde_json::json!({"latest": "1.0.0", "stable": "1.0.0"})
    );

    // 50 concurrent publishes of one version, different bytes each, split across the replicas:
    // the database's unique key lets exactly one through.
    let tarballs: Vec<Vec<u8>> =
        (0..50).map(|i| simple_package("race", "1.0.0", &format!("writer {i}"), &format!("// {i}\n"))).collect();
    let statuses: Vec<Option<u16>> = std::thread::scope(|s| {
        let handles: Vec<_> = tarballs
            .iter()
            .enumerate()
            .map(|(i, tgz)| {
                let url = if i % 2 == 0 { a.url.clone() } else { b.url.clone() };
                let token = token.clone();
                s.spawn(move || publish(&url, "npm", &token, "race", "1.0.0", tgz))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let won: Vec<usize> = (0..50).filter(|i| matches!(statuses[*i], Some(200..=299))).collect();
    assert_eq!(won.len(), 1, "exactly one publish wins: {statuses:?}");
    assert!(
        statuses.iter().all(|s| matches!(s, Some(200..=299) | Some(403) | Some(409))),
        "the others are refused as duplicates, none fails: {statuses:?}"
    );
    let winner = sha256(&tarballs[won[0]]);
    assert_eq!(download(&a.url, "race", "1.0.0"), (200, winner.clone()));
    assert_eq!(download(&b.url, "race", "1.0.0"), (200, winner));

    // A runner waiting on A gets the job of a push B received: its long poll (30 s) is woken by
    // B's write, not by its own timeout.
    let runner_token = a.token("runner", "runner", None);
    let mut runner = a.runner(&runner_token).arg("--once").spawn().expect("start sluice runner");
    std::thread::sleep(Duration::from_millis(500));
    let tgz = simple_package("held", "1.0.0", "a gated package", "// held\n");
    let status = publish(&b.url, "gated", &token, "held", "1.0.0", &tgz);
    assert!(matches!(status, Some(200..=299)), "publish to the gated repository through B: {status:?}");
    assert_eq!(a.get("/gated/held").0, 404, "held back until its pipeline passes");
    let ran = a.wait_for(Duration::from_secs(20), || runner.try_wait().ok().flatten().is_some());
    if !ran {
        let _ = runner.kill();
    }
    assert!(ran, "the runner on A took and ran B's job well before its long poll timed out");
    assert!(runner.wait().unwrap().success());
    // Released, the version is served by both replicas.
    for server in [&a, &b] {
        let (status, body) = server.get("/gated/held");
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"1.0.0\""), "{body}");
    }
    // Each of the pipeline's status changes reached the receiver once, not once per replica.
    let mut deliveries = Vec::new();
    while let Ok((_, body)) = hooks.recv_timeout(Duration::from_secs(3)) {
        deliveries.push(body);
    }
    assert!(deliveries.iter().any(|d| d.contains("success")), "the release was announced: {deliveries:#?}");
    let mut distinct = deliveries.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), deliveries.len(), "no webhook delivered twice: {deliveries:#?}");
}

#[test]
fn a_replica_killed_mid_publishes_loses_nothing_acknowledged_and_the_other_takes_over() {
    require_tool("git");
    let repo = tempfile::tempdir().unwrap();
    git(repo.path(), &["init", "-q"]);
    write(repo.path(), "go.mod", "module example.com/polled\n\ngo 1.19\n");
    write(repo.path(), "polled.go", "package polled\n");
    commit_and_tag(repo.path(), "v1.0.0", &["v1.0.0"]);
    let config = format!(
        "[[repository]]\nname = \"npm\"\nformat = \"npm\"\n\n\
         [[repository]]\nname = \"go\"\nformat = \"gomod\"\ngit = [{:?}]\npoll_seconds = 1\n",
        repo.path().to_str().unwrap()
    );
    let s3 = s3::S3Server::start();
    let database = pg::database();
    let mut a = Server::start_on_store(Some(&config), &database, &s3);
    assert!(a.wait_for(Duration::from_secs(10), || a.log().contains("leads the background work")));
    let b = Server::start_on_store(Some(&config), &database, &s3);
    let token = a.token("ci", "read,publish", None);
    assert!(b.wait_for(Duration::from_secs(10), || b.get("/go/example.com/polled/@v/list").1.contains("v1.0.0")));
    assert!(!b.log().contains("leads the background work"), "one replica leads at a time");

    // 100 publishes spread over both replicas; A is killed while they run.
    let versions: Vec<String> = (0..100).map(|i| format!("1.0.{i}")).collect();
    let tarballs: Vec<Vec<u8>> =
        versions.iter().map(|v| simple_package("steady", v, "a package", &format!("// {v}\n"))).collect();
    let (a_url, b_url) = (a.url.clone(), b.url.clone());
    let statuses: Vec<Option<u16>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..100)
            .map(|i| {
                let url = if i % 2 == 0 { a_url.clone() } else { b_url.clone() };
                let (token, version, tgz) = (token.clone(), versions[i].clone(), &tarballs[i]);
                s.spawn(move || {
                    std::thread::sleep(Duration::from_millis(20 * i as u64));
                    publish(&url, "npm", &token, "steady", &version, tgz)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(700));
        a.kill();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let acknowledged: Vec<usize> = (0..100).filter(|i| matches!(statuses[*i], Some(200..=299))).collect();
    let failed_on_a = (0..100).filter(|i| i % 2 == 0 && statuses[*i].is_none()).count();
    println!("acknowledged {}, connections to the killed replica failed: {failed_on_a}", acknowledged.len());
    assert!(failed_on_a > 0, "A was killed while publishes to it ran");
    assert!(acknowledged.iter().all(|i| i % 2 == 1 || *i < 50), "{statuses:?}");
    // Every acknowledged publish is there through the survivor, with its bytes.
    for i in &acknowledged {
        assert_eq!(download(&b.url, "steady", &versions[*i]), (200, sha256(&tarballs[*i])), "{}", versions[*i]);
    }
    // Nothing half-written: every version the survivor lists downloads with the bytes its
    // publisher sent (one that committed as A died, unacknowledged, is complete too).
    let (status, packument) = b.get("/npm/steady");
    assert_eq!(status, 200);
    let packument: serde_json::Value = serde_json::from_str(&packument).unwrap();
    let listed: Vec<&String> = packument["versions"].as_object().unwrap().keys().collect();
    for v in &listed {
        let i = versions.iter().position(|x| x == *v).expect("a version the test published");
        assert_eq!(download(&b.url, "steady", v), (200, sha256(&tarballs[i])), "{v}");
    }
    assert!(listed.len() >= acknowledged.len());

    // The survivor takes over the background work: its poller picks up a new tag.
    assert!(
        b.wait_for(Duration::from_secs(15), || b.log().contains("leads the background work")),
        "B takes the lead once A's session ends"
    );
    write(repo.path(), "polled.go", "package polled\n\n// v1.1\n");
    commit_and_tag(repo.path(), "v1.1.0", &["v1.1.0"]);
    assert!(
        b.wait_for(Duration::from_secs(20), || b.get("/go/example.com/polled/@v/list").1.contains("v1.1.0")),
        "the survivor polls git now"
    );
}
