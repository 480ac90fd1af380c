//! The SQL of proxy repositories: which stored files came from the upstream. A fetched file is
//! a push by the actor `upstream` without a token (`registry/upstream.rs`), so no column is
//! needed; a token cannot be named so and have no id.

use super::sql::params;
use super::{Db, Result};

/// The actor of pushes a proxy stored from its upstream.
pub const UPSTREAM_ACTOR: &str = "upstream";

impl Db {
    /// The versions of a package in `repository` whose files were fetched from the upstream.
    pub fn upstream_versions(&self, repository: &str, key: &str) -> Result<Vec<String>> {
        self.read(|c| {
            c.query_map(
                "SELECT DISTINCT f.version FROM files f JOIN packages p ON p.id = f.package_id \
                 JOIN pushes u ON u.id = f.push_id \
                 WHERE p.repository = $1 AND p.key = $2 AND u.actor = $3 AND u.token_id IS NULL \
                 ORDER BY f.version",
                params![repository, key, UPSTREAM_ACTOR],
                |r| r.get(0),
            )
        })
    }
}
