//! The change log's reading side: what changed since a point, and the in-memory feed that kept
//! documents ask "has this package changed since I was rendered?" without a query per read.
//!
//! The rows are written by triggers (migration 008) in the transaction of the change itself, so
//! every write path is covered. After each write transaction commits, [`Db::write`] reads the new
//! rows into the feed ([`ChangeFeed::observe`]). Writes are serialised (SQLite's `BEGIN IMMEDIATE`,
//! PostgreSQL's advisory [`super::WRITE_LOCK`] taken before a write's first statement), so a
//! change's `seq` is taken only after every earlier write committed: `seq` order is commit order,
//! and "the rows after `seq` N" never skips a row that commits later with a smaller `seq`.
//! Every statement that changes `files` or `tags` must therefore run in [`Db::write`].
//!
//! [`Db::changes_since`] is that read for any process: a feed fed from the database (several
//! replicas) is `changes_since(N)` after each wake-up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};

use serde::Serialize;

use super::sql::{params, Row, Sql};
use super::{Db, Result};

/// One row of the change log.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeRow {
    pub seq: i64,
    pub repository: String,
    pub key: String,
    pub name: String,
    /// `added`, `removed` or `updated`.
    pub kind: String,
    pub version: String,
    pub qualifier: String,
    pub at: i64,
}

const CHANGE_COLUMNS: &str = "seq, repository, key, name, kind, version, qualifier, at";

fn change_row(r: &Row) -> Result<ChangeRow> {
    Ok(ChangeRow {
        seq: r.get(0)?,
        repository: r.get(1)?,
        key: r.get(2)?,
        name: r.get(3)?,
        kind: r.get(4)?,
        version: r.get(5)?,
        qualifier: r.get(6)?,
        at: r.get(7)?,
    })
}

/// The newest change `seq` of every package and repository this process has seen.
#[derive(Default)]
pub struct ChangeFeed {
    /// The newest `seq` read into the feed.
    seen: AtomicU64,
    /// Serialises `observe`, so `seen` only grows and no row is read twice.
    reading: Mutex<()>,
    packages: RwLock<HashMap<(String, String), u64>>,
    repositories: RwLock<HashMap<String, u64>>,
    /// Woken after new changes were read (the document cache re-renders on it).
    pub notify: tokio::sync::Notify,
    /// Woken after another replica committed a write, whether or not it changed the log (a
    /// queued job, a webhook delivery): see [`super::replicas`].
    pub writes: tokio::sync::Notify,
}

impl ChangeFeed {
    /// The newest change seen: a render that starts now reflects at least every change up to it.
    pub fn seen(&self) -> u64 {
        self.seen.load(Ordering::Acquire)
    }

    /// The newest change of one package (by key), 0 if none was seen since start.
    pub fn package(&self, repository: &str, key: &str) -> u64 {
        let packages = self.packages.read().expect("feed lock");
        // The tuple key needs owned strings to look up; packages are few per request.
        packages.get(&(repository.to_string(), key.to_string())).copied().unwrap_or(0)
    }

    /// The newest change of any package of a repository.
    pub fn repository(&self, repository: &str) -> u64 {
        self.repositories.read().expect("feed lock").get(repository).copied().unwrap_or(0)
    }

    /// Reads the rows committed since the last call. Returns how many there were.
    fn observe(&self, c: &Sql) -> Result<usize> {
        let _one_at_a_time = self.reading.lock().expect("feed lock");
        let since = self.seen();
        let rows: Vec<(u64, String, String)> = c.query_map(
            "SELECT seq, repository, key FROM changes WHERE seq > $1 ORDER BY seq",
            params![since as i64],
            |r| Ok((r.get::<i64>(0)? as u64, r.get(1)?, r.get(2)?)),
        )?;
        let Some(newest) = rows.last().map(|r| r.0) else { return Ok(0) };
        {
            let mut packages = self.packages.write().expect("feed lock");
            let mut repositories = self.repositories.write().expect("feed lock");
            for (seq, repository, key) in &rows {
                repositories.insert(repository.clone(), *seq);
                packages.insert((repository.clone(), key.clone()), *seq);
            }
        }
        self.seen.store(newest, Ordering::Release);
        self.notify.notify_waiters();
        Ok(rows.len())
    }

    /// Starts the feed at the log's end: documents are rendered after start, so earlier
    /// changes are already in them.
    fn start(&self, c: &Sql) -> Result<()> {
        let newest: i64 = c.query_value("SELECT coalesce(max(seq), 0) FROM changes", params![])?;
        self.seen.store(newest as u64, Ordering::Release);
        Ok(())
    }
}

impl Db {
    pub fn changes(&self) -> &ChangeFeed {
        &self.feed
    }

    pub(super) fn start_feed(&self) -> Result<()> {
        self.read(|c| self.feed.start(c))
    }

    /// Reads newly committed changes into the feed. Called after every write transaction.
    pub(super) fn observe_changes(&self, c: &Sql) {
        if let Err(e) = self.feed.observe(c) {
            // The next write reads them; until then documents may be served one change late.
            tracing::error!(error = %e, "reading the change log failed");
        }
    }

    /// A repository's changes after `since`, oldest first, at most `limit`.
    pub fn changes_since(&self, repository: &str, since: u64, limit: u32) -> Result<Vec<ChangeRow>> {
        self.read(|c| {
            c.query_map(
                &format!(
                    "SELECT {CHANGE_COLUMNS} FROM changes WHERE repository = $1 AND seq > $2 ORDER BY seq LIMIT $3"
                ),
                params![repository, since as i64, limit],
                change_row,
            )
        })
    }

    /// One package's changes (by key) after `since`, oldest first, at most `limit`.
    pub fn package_changes_since(&self, repository: &str, key: &str, since: u64, limit: u32) -> Result<Vec<ChangeRow>> {
        self.read(|c| {
            c.query_map(
                &format!(
                    "SELECT {CHANGE_COLUMNS} FROM changes WHERE repository = $1 AND seq > $2 AND key = $3 \
                     ORDER BY seq LIMIT $4"
                ),
                params![repository, since as i64, key, limit],
                change_row,
            )
        })
    }

    /// Drops change rows older than `before_ms`, keeping the newest of each repository (an
    /// append-only document older than the oldest row is rendered whole again).
    pub fn prune_changes(&self, before_ms: i64) -> Result<usize> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM changes WHERE at < $1 AND seq NOT IN (SELECT max(seq) FROM changes GROUP BY repository)",
                params![before_ms],
            )
        })
    }

    /// The oldest change still in a repository's log (0 when empty).
    pub fn oldest_change(&self, repository: &str) -> Result<u64> {
        let n: i64 = self.read(|c| {
            c.query_value("SELECT coalesce(min(seq), 0) FROM changes WHERE repository = $1", params![repository])
        })?;
        Ok(n as u64)
    }
}
