//! `npm token list` and `npm token revoke` against an npm repository, as against the npm
//! registry or Verdaccio: the caller sees only its own tokens, and a revoked token is refused at
//! once.

mod support;

use serde_json::Value;
use support::npm::Npm;
use support::Server;

#[test]
fn npm_lists_and_revokes_its_own_tokens() {
    let server = Server::start();
    let publish = server.token("alice", "read,publish", None);
    let read = server.token("alice", "read", Some("npm"));
    let bob = server.token("bob", "read,publish", None);
    let alice = Npm::new(&server, "alice", Some(&publish));
    let alice_read = Npm::new(&server, "alice-read", Some(&read));
    let work = server.work.clone();

    // The list npm prints: alice's two tokens, never bob's, never a secret.
    let listed: Value = serde_json::from_str(&alice.ok(&work, &["token", "list", "--json"])).unwrap();
    let tokens = listed.as_array().expect("npm token list --json prints an array");
    assert_eq!(tokens.len(), 2, "{listed}");
    assert!(tokens.iter().all(|t| t["name"] == "alice"), "{listed}");
    let text = listed.to_string();
    for secret in [&publish, &read, &bob] {
        assert!(!text.contains(secret.as_str()), "a token's secret is never listed");
    }
    let read_only: Vec<bool> = tokens.iter().map(|t| t["readonly"].as_bool().unwrap()).collect();
    assert_eq!(read_only.iter().filter(|r| **r).count(), 1, "the read token is read-only: {listed}");
    let read_token = tokens.iter().find(|t| t["readonly"] == true).unwrap();
    let read_id = read_token["id"].as_str().unwrap().to_string();
    assert!(read_id.len() >= 6, "npm shows a short id: {read_id}");
    let plain = alice.ok(&work, &["token", "list"]);
    assert!(plain.contains(&format!("with id {read_id}")), "{plain}");
    assert!(plain.contains("created 20"), "{plain}");

    // The read token works until alice revokes it by the id npm showed.
    assert_eq!(alice_read.ok(&work, &["whoami"]).trim(), "alice");
    let out = alice.ok(&work, &["token", "revoke", &read_id]);
    assert!(out.contains("Removed 1 token"), "{out}");
    let (ok, out, err) = alice_read.run(&work, &["whoami"]);
    assert!(!ok, "a revoked token is refused at once: {out}{err}");
    let listed: Value = serde_json::from_str(&alice.ok(&work, &["token", "list", "--json"])).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(alice.ok(&work, &["whoami"]).trim(), "alice", "the other token still works");

    // Bob cannot revoke alice's token, even by its key; nor can anyone without a token.
    let key = listed[0]["key"].as_str().unwrap().to_string();
    let url = format!("{}/-/npm/v1/tokens/token/{key}", server.repo_url("npm"));
    let status = server.http().delete(&url).bearer_auth(&bob).send().unwrap().status();
    assert!(status.is_client_error(), "bob revoking alice's token: {status}");
    let status = server.http().delete(&url).send().unwrap().status();
    assert_eq!(status, 401);
    assert_eq!(alice.ok(&work, &["whoami"]).trim(), "alice");
    let anonymous = Npm::new(&server, "anonymous", None);
    let (ok, _, err) = anonymous.run(&work, &["token", "list"]);
    assert!(!ok && err.contains("401"), "{err}");

    // The server stayed up.
    assert_eq!(server.get("/health").0, 200);
}
