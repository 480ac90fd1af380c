//! Every SQL statement Sluice runs, on SQLite (the default: a file in the data folder, a small
//! pool of connections in WAL mode) or PostgreSQL (`database = "postgres://..."`), through one
//! SQL layer ([`sql`]): each statement is written once, with `$N` placeholders.
//!
//! Callers are synchronous (the HTTP layer calls in from `spawn_blocking`; the PostgreSQL client
//! must not be called from an async task). Writes that must be atomic go through [`Db::write`]:
//! SQLite's `BEGIN IMMEDIATE` queues concurrent writers on its lock instead of failing to
//! upgrade a read lock, and on PostgreSQL every write transaction first takes one advisory lock
//! ([`WRITE_LOCK`]), so writes are serialised the same way and the change log's `seq` order is
//! commit order on both (see `changes.rs`).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, TransactionBehavior};
use serde::Serialize;

pub mod changes;
mod copy;
pub mod git_tags;
pub mod metrics;
pub mod pipelines;
pub mod replicas;
pub mod sql;
pub mod ui;
pub mod upstream;

pub use pipelines::{JobRow, NewJob, NewPipeline, PipelineRow, StatusChange};
use sql::{params, Dialect, Row, Sql, ToValue};

/// Numbered migrations, applied in order, the same numbers for both databases (a migration's
/// SQL differs only where the dialects do). SQLite records how many ran in `PRAGMA user_version`,
/// PostgreSQL in the `schema_version` table.
const SQLITE_MIGRATIONS: &[&str] = &[
    include_str!("../migrations/sqlite/001_core.sql"),
    include_str!("../migrations/sqlite/002_pipelines.sql"),
    include_str!("../migrations/sqlite/003_ui.sql"),
    include_str!("../migrations/sqlite/004_git_tags.sql"),
    include_str!("../migrations/sqlite/005_tokens_receipts.sql"),
    include_str!("../migrations/sqlite/006_manual_jobs.sql"),
    include_str!("../migrations/sqlite/007_release_audit.sql"),
    include_str!("../migrations/sqlite/008_changes_search.sql"),
    include_str!("../migrations/sqlite/009_readme_column.sql"),
    include_str!("../migrations/sqlite/010_release_reason.sql"),
    include_str!("../migrations/sqlite/011_summary_index.sql"),
];
const POSTGRES_MIGRATIONS: &[&str] = &[
    include_str!("../migrations/postgres/001_core.sql"),
    include_str!("../migrations/postgres/002_pipelines.sql"),
    // The same SQL on both.
    include_str!("../migrations/sqlite/003_ui.sql"),
    include_str!("../migrations/postgres/004_git_tags.sql"),
    include_str!("../migrations/postgres/005_tokens_receipts.sql"),
    include_str!("../migrations/postgres/006_manual_jobs.sql"),
    include_str!("../migrations/postgres/007_release_audit.sql"),
    include_str!("../migrations/postgres/008_changes_search.sql"),
    include_str!("../migrations/postgres/009_readme_column.sql"),
    // The same SQL on both.
    include_str!("../migrations/sqlite/010_release_reason.sql"),
    include_str!("../migrations/postgres/011_summary_index.sql"),
];

/// The PostgreSQL advisory lock every write transaction takes first (`pg_advisory_xact_lock`,
/// released at commit or rollback): writes run one at a time, as SQLite's write lock makes them.
/// The number is "sluice" in ASCII, unlikely to collide with another application's lock.
pub const WRITE_LOCK: i64 = 0x736c_7569_6365;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database: {0}")]
    Postgres(#[from] postgres::Error),
    #[error("database pool: {0}")]
    Pool(#[from] r2d2::Error),
    /// A column of an unexpected type (a schema the code does not match).
    #[error("database: {0}")]
    Type(String),
    /// The `database` setting cannot be used.
    #[error("database setting: {0}")]
    Config(String),
    #[error("{0} already exists")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Aborted(String),
}

pub type Result<T> = std::result::Result<T, DbError>;

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// How the store connects: pool size and the timeout of a connection and of a statement
/// (`database_pool_size`, `database_timeout_ms`).
#[derive(Debug, Clone, Copy)]
pub struct DbOptions {
    pub pool_size: u32,
    pub timeout: Duration,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions { pool_size: 16, timeout: Duration::from_secs(10) }
    }
}

#[derive(Clone)]
pub struct Db {
    pool: Pool,
    feed: Arc<changes::ChangeFeed>,
    /// How to open a connection of its own on PostgreSQL (the replicas' listener and lock).
    pg: Option<Arc<postgres::Config>>,
}

#[derive(Clone)]
enum Pool {
    Sqlite(r2d2::Pool<SqliteConnectionManager>),
    Postgres(r2d2::Pool<sql::PgManager>),
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub scopes: String,
    pub repository: Option<String>,
    pub kind: String,
    pub created_at: i64,
    /// When the token stops working (ms since the epoch); `None`: never.
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked: bool,
}

/// How often a token's `last_used_at` is written at most: often enough to tell a leaked token
/// in use from a forgotten one, rarely enough that reads do not become writes.
const TOKEN_USE_RESOLUTION_MS: i64 = 60_000;

const TOKEN_COLUMNS: &str = "id, name, scopes, repository, kind, created_at, expires_at, last_used_at, revoked";

fn token_row(r: &Row) -> Result<TokenRow> {
    Ok(TokenRow {
        id: r.get(0)?,
        name: r.get(1)?,
        scopes: r.get(2)?,
        repository: r.get(3)?,
        kind: r.get(4)?,
        created_at: r.get(5)?,
        expires_at: r.get(6)?,
        last_used_at: r.get(7)?,
        revoked: r.get(8)?,
    })
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PackageRow {
    pub id: i64,
    pub repository: String,
    pub key: String,
    pub name: String,
    pub created_at: i64,
    pub modified_at: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FileRow {
    pub id: i64,
    pub package_id: i64,
    pub version: String,
    pub qualifier: String,
    pub file_name: String,
    pub size: i64,
    pub sha256: String,
    pub sha512: String,
    pub sha1: String,
    /// JSON of the plugin's metadata record.
    pub metadata: String,
    pub created_at: i64,
    pub push_id: i64,
    pub released: bool,
    pub deprecated: Option<String>,
    pub yanked: bool,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PushRow {
    pub id: i64,
    pub repository: String,
    pub package: String,
    pub version: String,
    pub qualifier: String,
    pub file_name: String,
    pub sha256: String,
    pub size: i64,
    pub token_id: Option<i64>,
    pub token_name: Option<String>,
    pub actor: String,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
    pub commit_sha: Option<String>,
    pub created_at: i64,
}

/// A package with the files and tags a reader may see.
#[derive(Debug, Clone)]
pub struct PackageWithFiles {
    pub package: PackageRow,
    pub files: Vec<FileRow>,
    pub tags: Vec<(String, String)>,
}

/// A package without its files' metadata ([`Db::package_summary`]).
#[derive(Debug, Clone)]
pub struct PackageSummary {
    pub name: String,
    pub tags: Vec<(String, String)>,
    /// (version, qualifier, deprecated, yanked), oldest first.
    pub files: Vec<(String, String, Option<String>, bool)>,
}

/// Which files a query returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Only files clients of a repository with this gate may see (the gate decides which).
    Clients(crate::config::Gate),
    /// Every file, pending and failed too (the native API, the UI).
    All,
}

impl Visibility {
    /// SQL condition on `f.released`.
    fn condition(self) -> &'static str {
        match self {
            Visibility::Clients(gate) if crate::domain::gate::only_released(gate) => "f.released = 1",
            _ => "1 = 1",
        }
    }
}

/// The condition a search puts on `p` for `query`, with the value to bind as `param`. An empty
/// query matches every package; three characters or more are one phrase of the trigram index
/// (any substring, case-insensitive; in `column` only, if given), looked up once with the index
/// driving the query (as a join condition, SQLite would run the full-text query again for every
/// package); shorter queries, which no trigram can match, compare names. The one place the two
/// databases' search differs: FTS5's trigram `MATCH` on SQLite, `pg_trgm`'s `ILIKE` on PostgreSQL.
fn search_condition(dialect: Dialect, query: &str, param: &str, column: Option<&str>) -> (String, String) {
    let query = query.trim();
    if query.is_empty() {
        (format!("{param} = ''"), String::new())
    } else if query.chars().count() >= 3 {
        match dialect {
            Dialect::Sqlite => {
                // Quotes doubled, as FTS5 escapes them in a phrase.
                let phrase = format!("\"{}\"", query.replace('"', "\"\""));
                (
                    format!("p.id IN (SELECT rowid FROM package_search WHERE package_search MATCH {param})"),
                    column.map_or(phrase.clone(), |c| format!("{c} : {phrase}")),
                )
            }
            // `pg_trgm`'s GIN indexes answer ILIKE with a pattern of three characters or more.
            Dialect::Postgres => {
                let matches = match column {
                    Some(c) => format!("{c} ILIKE {param}"),
                    None => format!("(name ILIKE {param} OR summary ILIKE {param})"),
                };
                (format!("p.id IN (SELECT package_id FROM package_search WHERE {matches})"), like_pattern(query))
            }
        }
    } else {
        let position = match dialect {
            Dialect::Sqlite => "instr",
            Dialect::Postgres => "strpos",
        };
        (format!("{position}(lower(p.name), {param}) > 0"), query.to_lowercase())
    }
}

/// `%query%` for LIKE with `\` as the escape character (both databases' default for ILIKE, and
/// named with `ESCAPE` for LIKE).
fn like_pattern(query: &str) -> String {
    format!("%{}%", query.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"))
}

/// Who pushed a file, from where and how, for the audit log.
pub struct Pusher<'a> {
    /// A token's name, a webhook's sender, `poller`.
    pub actor: &'a str,
    pub token_id: Option<i64>,
    pub token_name: Option<&'a str>,
    pub client_addr: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    /// Git-tag formats: the tagged commit.
    pub commit_sha: Option<&'a str>,
}

/// What a publish stores: the file row and its push.
pub struct NewFile<'a> {
    pub repository: &'a str,
    pub key: &'a str,
    pub name: &'a str,
    pub version: &'a str,
    pub qualifier: &'a str,
    pub file_name: &'a str,
    pub digests: &'a super::Digests,
    /// The plugin's metadata record as JSON, without the README (which goes in `readme`).
    pub metadata_json: &'a str,
    pub readme: Option<&'a str>,
    pub pusher: &'a Pusher<'a>,
    pub released: bool,
    pub tags: &'a [String],
    /// The push's pipeline, created in the same transaction.
    pub pipeline: Option<&'a NewPipeline>,
}

const FILE_COLUMNS: &str = "f.id, f.package_id, f.version, f.qualifier, f.file_name, f.size, f.sha256, f.sha512, \
     f.sha1, f.metadata, f.created_at, f.push_id, f.released, f.deprecated, f.yanked";

fn file_row(r: &Row) -> Result<FileRow> {
    Ok(FileRow {
        id: r.get(0)?,
        package_id: r.get(1)?,
        version: r.get(2)?,
        qualifier: r.get(3)?,
        file_name: r.get(4)?,
        size: r.get(5)?,
        sha256: r.get(6)?,
        sha512: r.get(7)?,
        sha1: r.get(8)?,
        metadata: r.get(9)?,
        created_at: r.get(10)?,
        push_id: r.get(11)?,
        released: r.get(12)?,
        deprecated: r.get(13)?,
        yanked: r.get(14)?,
    })
}

const PACKAGE_COLUMNS: &str = "p.id, p.repository, p.key, p.name, p.created_at, p.modified_at";

fn package_row(r: &Row) -> Result<PackageRow> {
    Ok(PackageRow {
        id: r.get(0)?,
        repository: r.get(1)?,
        key: r.get(2)?,
        name: r.get(3)?,
        created_at: r.get(4)?,
        modified_at: r.get(5)?,
    })
}

const PUSH_COLUMNS: &str = "id, repository, package, version, qualifier, file_name, sha256, size, token_id, \
     token_name, actor, client_addr, user_agent, commit_sha, created_at";

fn push_row(r: &Row) -> Result<PushRow> {
    Ok(PushRow {
        id: r.get(0)?,
        repository: r.get(1)?,
        package: r.get(2)?,
        version: r.get(3)?,
        qualifier: r.get(4)?,
        file_name: r.get(5)?,
        sha256: r.get(6)?,
        size: r.get(7)?,
        token_id: r.get(8)?,
        token_name: r.get(9)?,
        actor: r.get(10)?,
        client_addr: r.get(11)?,
        user_agent: r.get(12)?,
        commit_sha: r.get(13)?,
        created_at: r.get(14)?,
    })
}

impl Db {
    /// Opens (creating if needed) the SQLite database file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Db> {
        Self::open_sqlite(path, DbOptions::default())
    }

    /// The configured database: PostgreSQL when `database` is a `postgres://` URL, else the SQLite
    /// file `sluice.db` in the data folder. Every subcommand opens the store through here.
    pub fn open_configured(config: &crate::config::Config) -> Result<Db> {
        let options = DbOptions {
            pool_size: config.database_pool_size.clamp(1, u32::MAX as u64) as u32,
            timeout: Duration::from_millis(config.database_timeout_ms),
        };
        match &config.database {
            Some(url) => Self::open_postgres(url, options),
            None => {
                std::fs::create_dir_all(&config.data)
                    .map_err(|e| DbError::Config(format!("create data folder {}: {e}", config.data.display())))?;
                Self::open_sqlite(&config.data.join("sluice.db"), options)
            }
        }
    }

    fn open_sqlite(path: &Path, options: DbOptions) -> Result<Db> {
        let busy = format!("PRAGMA busy_timeout = {};", options.timeout.as_millis());
        // WAL is a property of the file: set it once, before the pool opens its connections
        // (each of which would otherwise race for the lock that switching takes).
        Connection::open(path)?.execute_batch(&format!("{busy} PRAGMA journal_mode = WAL;"))?;
        let manager = SqliteConnectionManager::file(path).with_init(move |c| {
            c.execute_batch(&format!("{busy} PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"))
        });
        let pool = r2d2::Pool::builder().max_size(options.pool_size).build(manager)?;
        Self::start(Pool::Sqlite(pool), None)
    }

    fn open_postgres(url: &str, options: DbOptions) -> Result<Db> {
        let manager = sql::PgManager::new(url, options.timeout)?;
        let pg = Arc::new(manager.config().clone());
        // Connections open as they are needed (a server at rest holds two), not all at start:
        // several replicas and subcommands share the server's connection limit.
        let pool = r2d2::Pool::builder()
            .max_size(options.pool_size)
            .min_idle(Some(2.min(options.pool_size)))
            .connection_timeout(options.timeout)
            .build(manager)?;
        Self::start(Pool::Postgres(pool), Some(pg))
    }

    fn start(pool: Pool, pg: Option<Arc<postgres::Config>>) -> Result<Db> {
        let db = Db { pool, feed: Default::default(), pg };
        db.migrate()?;
        db.start_feed()?;
        Ok(db)
    }

    /// Which database this is.
    pub fn dialect(&self) -> Dialect {
        match self.pool {
            Pool::Sqlite(_) => Dialect::Sqlite,
            Pool::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Whether the database answers (for `/ready`).
    pub fn ping(&self) -> Result<()> {
        self.read(|c| c.query_value::<i64>("SELECT 1", params![]).map(|_| ()))
    }

    /// Runs `f` on a pooled connection, outside a transaction.
    fn read<T>(&self, f: impl FnOnce(&Sql) -> Result<T>) -> Result<T> {
        match &self.pool {
            Pool::Sqlite(pool) => f(&Sql::sqlite(&*pool.get()?)),
            Pool::Postgres(pool) => sql::blocking(|| f(&Sql::postgres(&mut *pool.get()?))),
        }
    }

    fn migrate(&self) -> Result<()> {
        match &self.pool {
            Pool::Sqlite(pool) => {
                let mut conn = pool.get()?;
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let applied: usize = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
                apply_migrations(&Sql::sqlite(&tx), SQLITE_MIGRATIONS, applied)?;
                tx.execute_batch(&format!("PRAGMA user_version = {}", SQLITE_MIGRATIONS.len()))?;
                tx.commit()?;
            }
            Pool::Postgres(pool) => sql::blocking(|| -> Result<()> {
                let mut conn = pool.get()?;
                let tx = Sql::postgres_transaction(&mut conn)?;
                // The write lock also keeps two replicas starting at once from both migrating.
                tx.execute("SELECT pg_advisory_xact_lock($1)", params![WRITE_LOCK])?;
                tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (applied BIGINT NOT NULL)")?;
                let applied: Option<i64> =
                    tx.query_opt("SELECT applied FROM schema_version", params![], |r| r.get(0))?;
                if applied.is_none() {
                    tx.execute("INSERT INTO schema_version (applied) VALUES (0)", params![])?;
                }
                apply_migrations(&tx, POSTGRES_MIGRATIONS, applied.unwrap_or(0) as usize)?;
                tx.execute("UPDATE schema_version SET applied = $1", params![POSTGRES_MIGRATIONS.len() as i64])?;
                tx.commit()
            })?,
        }
        Ok(())
    }

    /// Runs `f` in a write transaction (one writer at a time, see [`WRITE_LOCK`]), committing if
    /// it returns `Ok`, then reads the changes it made into the feed.
    fn write<T>(&self, f: impl FnOnce(&Sql) -> Result<T>) -> Result<T> {
        match &self.pool {
            Pool::Sqlite(pool) => {
                let mut conn = pool.get()?;
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let out = f(&Sql::sqlite(&tx))?;
                tx.commit()?;
                self.observe_changes(&Sql::sqlite(&conn));
                Ok(out)
            }
            Pool::Postgres(pool) => sql::blocking(|| {
                let mut conn = pool.get()?;
                let tx = Sql::postgres_transaction(&mut conn)?;
                tx.execute("SELECT pg_advisory_xact_lock($1)", params![WRITE_LOCK])?;
                let out = f(&tx)?;
                // Delivered to the other replicas' listeners at commit ([`replicas`]).
                tx.execute("SELECT pg_notify($1, '')", params![replicas::WRITES_CHANNEL])?;
                tx.commit()?;
                self.observe_changes(&Sql::postgres(&mut conn));
                Ok(out)
            }),
        }
    }

    // ---- tokens -------------------------------------------------------------------------------

    pub fn insert_token(
        &self,
        name: &str,
        hash: &str,
        scopes: &str,
        repository: Option<&str>,
        kind: &str,
        expires_at: Option<i64>,
    ) -> Result<i64> {
        self.read(|c| {
            c.query_value(
                "INSERT INTO tokens (name, hash, scopes, repository, kind, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                params![name, hash, scopes, repository, kind, now_ms(), expires_at],
            )
        })
    }

    /// The token with this hash, if it is neither revoked nor expired. Records the use. Every
    /// request looks the token up here, so a revocation takes effect at once on every replica.
    pub fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>> {
        self.read(|c| {
            let now = now_ms();
            let row = c.query_opt(
                &format!(
                    "SELECT {TOKEN_COLUMNS} FROM tokens WHERE hash = $1 AND revoked = 0 AND (expires_at IS NULL OR expires_at > $2)"
                ),
                params![hash, now],
                token_row,
            )?;
            if let Some(t) = &row {
                if t.last_used_at.is_none_or(|at| at + TOKEN_USE_RESOLUTION_MS < now) {
                    // Best effort: a busy writer must not fail the request that uses the token.
                    if let Err(e) = c.execute("UPDATE tokens SET last_used_at = $2 WHERE id = $1", params![t.id, now]) {
                        tracing::debug!(token = t.id, error = %e, "could not record token use");
                    }
                }
            }
            Ok(row)
        })
    }

    /// Every token, newest first (hashes are never shown).
    pub fn tokens(&self) -> Result<Vec<TokenRow>> {
        self.read(|c| {
            c.query_map(&format!("SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY id DESC"), params![], token_row)
        })
    }

    /// The live (not revoked, not expired) tokens of one name, with their hashes: what a format's
    /// own token listing (`npm token list`) shows its caller. The hash identifies a token
    /// without being a secret.
    pub fn tokens_named(&self, name: &str) -> Result<Vec<(TokenRow, String)>> {
        self.read(|c| {
            c.query_map(
                &format!(
                    "SELECT {TOKEN_COLUMNS}, hash FROM tokens WHERE name = $1 AND revoked = 0 \
                     AND (expires_at IS NULL OR expires_at > $2) ORDER BY id"
                ),
                params![name, now_ms()],
                |r| Ok((token_row(r)?, r.get(9)?)),
            )
        })
    }

    /// Revokes the token of `name` whose hash is `hash`; `NotFound` when `name` has no such token
    /// (a caller may revoke only its own).
    pub fn revoke_token_named(&self, name: &str, hash: &str) -> Result<()> {
        match self
            .read(|c| c.execute("UPDATE tokens SET revoked = 1 WHERE name = $1 AND hash = $2", params![name, hash]))?
        {
            0 => Err(DbError::NotFound("token".into())),
            _ => Ok(()),
        }
    }

    /// Revokes a token for good. `NotFound` when there is no such token.
    pub fn revoke_token(&self, id: i64) -> Result<()> {
        match self.read(|c| c.execute("UPDATE tokens SET revoked = 1 WHERE id = $1", params![id]))? {
            0 => Err(DbError::NotFound(format!("token {id}"))),
            _ => Ok(()),
        }
    }

    /// Records a git host's webhook delivery id; false when it was recorded before (a replay).
    pub fn record_webhook_receipt(&self, repository: &str, delivery_id: &str) -> Result<bool> {
        let n = self.read(|c| {
            c.execute(
                "INSERT INTO webhook_receipts (repository, delivery_id, received_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                params![repository, delivery_id, now_ms()],
            )
        })?;
        Ok(n == 1)
    }

    // ---- packages -----------------------------------------------------------------------------

    fn package_by_key(c: &Sql, repository: &str, key: &str) -> Result<Option<PackageRow>> {
        c.query_opt(
            &format!("SELECT {PACKAGE_COLUMNS} FROM packages p WHERE p.repository = $1 AND p.key = $2"),
            params![repository, key],
            package_row,
        )
    }

    fn files_of(c: &Sql, package_id: i64, vis: Visibility) -> Result<Vec<FileRow>> {
        c.query_map(
            &format!(
                "SELECT {FILE_COLUMNS} FROM files f WHERE f.package_id = $1 AND {} ORDER BY f.id",
                vis.condition()
            ),
            params![package_id],
            file_row,
        )
    }

    fn tags_of(c: &Sql, package_id: i64) -> Result<Vec<(String, String)>> {
        c.query_map("SELECT tag, version FROM tags WHERE package_id = $1 ORDER BY tag", params![package_id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
    }

    /// A package with its files as `vis` allows, and the tags that point at one of them.
    /// `None` when the package is unknown or has no file `vis` allows.
    pub fn package(&self, repository: &str, key: &str, vis: Visibility) -> Result<Option<PackageWithFiles>> {
        self.read(|c| {
            let Some(package) = Self::package_by_key(c, repository, key)? else { return Ok(None) };
            Self::with_files(c, package, vis)
        })
    }

    /// [`Db::package`] with only the files of `versions` (each looked up by the unique key, so
    /// the cost is the versions asked for, not the package's history), and every tag that points
    /// at a visible file. `None` when no file of the package is visible.
    pub fn package_versions(
        &self,
        repository: &str,
        key: &str,
        vis: Visibility,
        versions: &[String],
    ) -> Result<Option<PackageWithFiles>> {
        self.read(|c| {
            let Some(package) = Self::package_by_key(c, repository, key)? else { return Ok(None) };
            let visible = vis.condition();
            let any: Option<i64> = c.query_opt(
                &format!("SELECT f.id FROM files f WHERE f.package_id = $1 AND {visible} LIMIT 1"),
                params![package.id],
                |r| r.get(0),
            )?;
            if any.is_none() {
                return Ok(None);
            }
            let mut files = Vec::new();
            for version in versions {
                files.extend(c.query_map(
                    &format!(
                        "SELECT {FILE_COLUMNS} FROM files f WHERE f.package_id = $1 AND f.version = $2 AND {visible} \
                         ORDER BY f.id"
                    ),
                    params![package.id, version],
                    file_row,
                )?);
            }
            files.sort_by_key(|f| f.id);
            files.dedup_by_key(|f| f.id);
            let tags = c.query_map(
                &format!(
                    "SELECT t.tag, t.version FROM tags t WHERE t.package_id = $1 AND EXISTS \
                     (SELECT 1 FROM files f WHERE f.package_id = t.package_id AND f.version = t.version AND {visible}) \
                     ORDER BY t.tag"
                ),
                params![package.id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok(Some(PackageWithFiles { package, files, tags }))
        })
    }

    fn with_files(c: &Sql, package: PackageRow, vis: Visibility) -> Result<Option<PackageWithFiles>> {
        let files = Self::files_of(c, package.id, vis)?;
        if files.is_empty() {
            return Ok(None);
        }
        let tags =
            Self::tags_of(c, package.id)?.into_iter().filter(|(_, v)| files.iter().any(|f| &f.version == v)).collect();
        Ok(Some(PackageWithFiles { package, files, tags }))
    }

    /// Packages with a visible file whose name or summary contains `query` (case-insensitively),
    /// by key, a page at a time. Three characters or more are looked up in the trigram index;
    /// shorter queries (which the trigram index cannot answer) compare names only.
    pub fn search(
        &self,
        repository: &str,
        query: &str,
        offset: u32,
        limit: u32,
        vis: Visibility,
    ) -> Result<(u64, Vec<PackageWithFiles>)> {
        self.read(|c| {
            let visible = format!("EXISTS (SELECT 1 FROM files f WHERE f.package_id = p.id AND {})", vis.condition());
            let (matches, needle) = search_condition(c.dialect(), query, "$2", None);
            let filter = format!("FROM packages p WHERE {matches} AND p.repository = $1 AND {visible}");
            let total: i64 = c.query_value(&format!("SELECT count(*) {filter}"), params![repository, needle])?;
            let packages = c.query_map(
                &format!("SELECT {PACKAGE_COLUMNS} {filter} ORDER BY p.key LIMIT $3 OFFSET $4"),
                params![repository, needle, limit, offset],
                package_row,
            )?;
            let mut out = Vec::with_capacity(packages.len());
            for p in packages {
                out.extend(Self::with_files(c, p, vis)?);
            }
            Ok((total as u64, out))
        })
    }

    /// A package's tags and visible files without their metadata (cheap for writes to compare
    /// against): (name, tags, [(version, qualifier, deprecated, yanked)]).
    pub fn package_summary(&self, repository: &str, key: &str, vis: Visibility) -> Result<Option<PackageSummary>> {
        self.read(|c| {
            let Some(package) = Self::package_by_key(c, repository, key)? else { return Ok(None) };
            let files: Vec<(String, String, Option<String>, bool)> = c.query_map(
                &format!(
                    "SELECT f.version, f.qualifier, f.deprecated, f.yanked FROM files f \
                     WHERE f.package_id = $1 AND {} ORDER BY f.id",
                    vis.condition()
                ),
                params![package.id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?;
            if files.is_empty() {
                return Ok(None);
            }
            let tags =
                Self::tags_of(c, package.id)?.into_iter().filter(|(_, v)| files.iter().any(|f| &f.0 == v)).collect();
            Ok(Some(PackageSummary { name: package.name, tags, files }))
        })
    }

    /// One file by package key and file name, whatever its state.
    pub fn file_by_name(&self, repository: &str, key: &str, file_name: &str) -> Result<Option<(PackageRow, FileRow)>> {
        self.read(|c| {
            let Some(package) = Self::package_by_key(c, repository, key)? else { return Ok(None) };
            let file = c.query_opt(
                &format!("SELECT {FILE_COLUMNS} FROM files f WHERE f.package_id = $1 AND f.file_name = $2"),
                params![package.id, file_name],
                file_row,
            )?;
            Ok(file.map(|f| (package, f)))
        })
    }

    /// Stores a published file: the package row, the file row, its push and its tags, in one
    /// transaction. `persist` runs inside it, after every check passed and before the commit, so
    /// that the blob is durable before any row points at it. Returns (push id, file id). A
    /// version (or file name) the package has already is refused by the database's unique keys
    /// (`Conflict`), whichever server or connection publishes it.
    pub fn publish(
        &self,
        new: &NewFile,
        persist: impl FnOnce() -> std::result::Result<(), String>,
    ) -> Result<(i64, i64)> {
        self.write(|tx| {
            let now = now_ms();
            let package_id: i64 = tx.query_value(
                "INSERT INTO packages (repository, key, name, created_at, modified_at) VALUES ($1, $2, $3, $4, $4) \
                 ON CONFLICT (repository, key) DO UPDATE SET modified_at = excluded.modified_at RETURNING id",
                params![new.repository, new.key, new.name, now],
            )?;
            let push_id: i64 = tx.query_value(
                "INSERT INTO pushes (repository, package, version, qualifier, file_name, sha256, size, token_id, token_name, \
                 actor, client_addr, user_agent, commit_sha, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
                params![
                    new.repository, new.name, new.version, new.qualifier, new.file_name, new.digests.sha256,
                    new.digests.size as i64, new.pusher.token_id, new.pusher.token_name, new.pusher.actor,
                    new.pusher.client_addr, new.pusher.user_agent, new.pusher.commit_sha, now
                ],
            )?;
            // A version's tags take effect when clients can see it: at once, or on release.
            let pending_tags = if new.released { Vec::new() } else { new.tags.to_vec() };
            let file_id: i64 = tx
                .query_value(
                    "INSERT INTO files (package_id, version, qualifier, file_name, size, sha256, sha512, sha1, metadata, \
                     created_at, push_id, released, pending_tags, readme) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
                    params![
                        package_id, new.version, new.qualifier, new.file_name, new.digests.size as i64,
                        new.digests.sha256, new.digests.sha512, new.digests.sha1, new.metadata_json, now, push_id,
                        new.released, serde_json::to_string(&pending_tags).expect("strings serialise"), new.readme
                    ],
                )
                .map_err(|e| {
                    if !sql::is_unique_violation(&e) {
                        return e;
                    }
                    DbError::Conflict(if new.qualifier.is_empty() {
                        format!("{} {}", new.name, new.version)
                    } else {
                        format!("{} {} ({})", new.name, new.version, new.qualifier)
                    })
                })?;
            if let Some(p) = new.pipeline {
                pipelines::insert_pipeline(tx, new.repository, push_id, p)?;
            }
            if new.released {
                for tag in new.tags {
                    Self::put_tag(tx, package_id, tag, new.version)?;
                }
            }
            persist().map_err(DbError::Aborted)?;
            Ok((push_id, file_id))
        })
    }

    pub(super) fn put_tag(tx: &Sql, package_id: i64, tag: &str, version: &str) -> Result<()> {
        tx.execute(
            "INSERT INTO tags (package_id, tag, version) VALUES ($1, $2, $3) \
             ON CONFLICT (package_id, tag) DO UPDATE SET version = excluded.version",
            params![package_id, tag, version],
        )?;
        Ok(())
    }

    fn package_id_for_write(tx: &Sql, repository: &str, key: &str) -> Result<i64> {
        Self::package_by_key(tx, repository, key)?
            .map(|p| p.id)
            .ok_or_else(|| DbError::NotFound(format!("package {key}")))
    }

    fn touch(tx: &Sql, package_id: i64) -> Result<()> {
        tx.execute("UPDATE packages SET modified_at = $2 WHERE id = $1", params![package_id, now_ms()])?;
        Ok(())
    }

    /// Points a tag at a version (which must have a file `vis` allows), or removes it.
    pub fn set_tag(
        &self,
        repository: &str,
        key: &str,
        tag: &str,
        version: Option<&str>,
        vis: Visibility,
    ) -> Result<()> {
        self.write(|tx| {
            let package_id = Self::package_id_for_write(tx, repository, key)?;
            match version {
                Some(v) => {
                    let exists: bool = tx.query_value(
                        &format!(
                            "SELECT EXISTS (SELECT 1 FROM files f WHERE f.package_id = $1 AND f.version = $2 AND {})",
                            vis.condition()
                        ),
                        params![package_id, v],
                    )?;
                    if !exists {
                        return Err(DbError::NotFound(format!("version {v} of {key}")));
                    }
                    Self::put_tag(tx, package_id, tag, v)?;
                }
                None => {
                    let n =
                        tx.execute("DELETE FROM tags WHERE package_id = $1 AND tag = $2", params![package_id, tag])?;
                    if n == 0 {
                        return Err(DbError::NotFound(format!("tag {tag} of {key}")));
                    }
                }
            }
            Self::touch(tx, package_id)
        })
    }

    fn update_files(
        &self,
        repository: &str,
        key: &str,
        version: &str,
        qualifier: Option<&str>,
        set: &str,
        value: &dyn ToValue,
    ) -> Result<()> {
        self.write(|tx| {
            let package_id = Self::package_id_for_write(tx, repository, key)?;
            let n = tx.execute(
                &format!("UPDATE files SET {set} = $1 WHERE package_id = $2 AND version = $3 AND (CAST($4 AS TEXT) IS NULL OR qualifier = $4)"),
                params![value, package_id, version, qualifier],
            )?;
            if n == 0 {
                return Err(DbError::NotFound(format!("version {version} of {key}")));
            }
            Self::touch(tx, package_id)
        })
    }

    pub fn deprecate(&self, repository: &str, key: &str, version: &str, message: Option<&str>) -> Result<()> {
        self.update_files(repository, key, version, None, "deprecated", &message)
    }

    pub fn yank(
        &self,
        repository: &str,
        key: &str,
        version: &str,
        qualifier: Option<&str>,
        yanked: bool,
    ) -> Result<()> {
        self.update_files(repository, key, version, qualifier, "yanked", &yanked)
    }

    /// Deletes a version's files and the tags pointing at it (or the whole package when
    /// `version` is `None`). Returns the sha256 of every deleted file, for blob clean-up.
    pub fn delete(&self, repository: &str, key: &str, version: Option<&str>) -> Result<Vec<String>> {
        self.write(|tx| {
            let package_id = Self::package_id_for_write(tx, repository, key)?;
            let shas: Vec<String> = tx.query_map(
                "SELECT sha256 FROM files WHERE package_id = $1 AND (CAST($2 AS TEXT) IS NULL OR version = $2)",
                params![package_id, version],
                |r| r.get(0),
            )?;
            if shas.is_empty() {
                return Err(DbError::NotFound(format!("version {} of {key}", version.unwrap_or("*"))));
            }
            match version {
                Some(v) => {
                    tx.execute("DELETE FROM files WHERE package_id = $1 AND version = $2", params![package_id, v])?;
                    tx.execute("DELETE FROM tags WHERE package_id = $1 AND version = $2", params![package_id, v])?;
                    Self::touch(tx, package_id)?;
                }
                None => {
                    // Files and tags first, while the package row is there for the change log's
                    // triggers (a cascade would run them after it is gone).
                    tx.execute("DELETE FROM files WHERE package_id = $1", params![package_id])?;
                    tx.execute("DELETE FROM tags WHERE package_id = $1", params![package_id])?;
                    tx.execute("DELETE FROM packages WHERE id = $1", params![package_id])?;
                }
            }
            Ok(shas)
        })
    }

    /// Every stored file with this content: (repository, released), for deciding who may read it.
    pub fn files_by_sha(&self, sha256: &str) -> Result<Vec<(String, bool)>> {
        self.read(|c| {
            c.query_map(
                "SELECT p.repository, f.released FROM files f JOIN packages p ON p.id = f.package_id WHERE f.sha256 = $1",
                params![sha256],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
    }

    /// Whether any file row still references this blob.
    pub fn blob_referenced(&self, sha256: &str) -> Result<bool> {
        self.read(|c| c.query_value("SELECT EXISTS (SELECT 1 FROM files WHERE sha256 = $1)", params![sha256]))
    }

    /// Runs `remove` if no file row references the blob, inside a write transaction: a publish
    /// makes its blob durable inside its own write transaction ([`Db::publish`]), so the two
    /// cannot interleave. A publish of the same bytes either commits first (the reference is seen
    /// and the blob stays) or runs after the removal (finds no blob and writes it again).
    /// Returns whether the blob was removed.
    pub fn remove_blob_if_unreferenced(
        &self,
        sha256: &str,
        remove: impl FnOnce() -> std::result::Result<(), String>,
    ) -> Result<bool> {
        self.write(|tx| {
            let referenced: bool =
                tx.query_value("SELECT EXISTS (SELECT 1 FROM files WHERE sha256 = $1)", params![sha256])?;
            if referenced {
                return Ok(false);
            }
            remove().map_err(DbError::Aborted)?;
            Ok(true)
        })
    }

    // ---- pushes -------------------------------------------------------------------------------

    // The audit log's listing, with each push's release past its gate: `ui.rs` `audit_pushes`.

    pub fn pushes_by_sha(&self, sha256: &str) -> Result<Vec<PushRow>> {
        self.read(|c| {
            c.query_map(&format!("SELECT {PUSH_COLUMNS} FROM pushes WHERE sha256 = $1"), params![sha256], push_row)
        })
    }

    pub fn push(&self, id: i64) -> Result<Option<PushRow>> {
        self.read(|c| c.query_opt(&format!("SELECT {PUSH_COLUMNS} FROM pushes WHERE id = $1"), params![id], push_row))
    }
}

/// Applies `migrations` after the first `applied`, logging each.
fn apply_migrations(tx: &Sql, migrations: &[&str], applied: usize) -> Result<()> {
    for (i, sql) in migrations.iter().enumerate().skip(applied) {
        tracing::info!(migration = i + 1, dialect = ?tx.dialect(), "applying database migration");
        tx.execute_batch(sql)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Digests;

    fn digests(n: u8) -> Digests {
        Digests { sha256: format!("{n:064x}"), sha512: "0".repeat(128), sha1: "0".repeat(40), size: 10 }
    }

    fn new_file<'a>(version: &'a str, file_name: &'a str, d: &'a Digests, tags: &'a [String]) -> NewFile<'a> {
        NewFile { released: true, ..unreleased(version, file_name, d, tags) }
    }

    const ALICE: Pusher<'static> = Pusher {
        actor: "alice",
        token_id: None,
        token_name: Some("alice"),
        client_addr: None,
        user_agent: None,
        commit_sha: None,
    };

    /// A file of a gated repository, before its pipeline passed.
    fn unreleased<'a>(version: &'a str, file_name: &'a str, d: &'a Digests, tags: &'a [String]) -> NewFile<'a> {
        NewFile {
            repository: "r",
            key: "pkg",
            name: "pkg",
            version,
            qualifier: "",
            file_name,
            digests: d,
            metadata_json: "{}",
            readme: None,
            pusher: &ALICE,
            released: false,
            tags,
            pipeline: None,
        }
    }

    #[test]
    fn a_readme_is_kept_beside_the_metadata_renders_read_and_older_rows_move_theirs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        // A database as the previous version left it: the README inside the metadata JSON.
        {
            let conn = Connection::open(&path).unwrap();
            for m in &SQLITE_MIGRATIONS[..8] {
                conn.execute_batch(m).unwrap();
            }
            conn.execute_batch(
                "PRAGMA user_version = 8;
                 INSERT INTO packages (id, repository, key, name, created_at, modified_at) VALUES (1, 'r', 'old', 'old', 0, 0);
                 INSERT INTO files (package_id, version, qualifier, file_name, size, sha256, sha512, sha1, metadata,
                                    created_at, push_id, released)
                 VALUES (1, '1.0.0', '', 'old-1.0.0.tgz', 1, 'a', 'b', 'c',
                         '{\"name\":\"old\",\"readme\":\"# Old\"}', 0, 1, 1);",
            )
            .unwrap();
        }
        let db = Db::open(&path).unwrap();
        let old = db.package("r", "old", Visibility::All).unwrap().unwrap();
        assert_eq!(old.files[0].metadata, r#"{"name":"old"}"#, "the README left the metadata renders read");
        assert_eq!(db.file_readme(old.files[0].id).unwrap().as_deref(), Some("# Old"));
        // A new publish stores it so from the start.
        let d = digests(3);
        let new = NewFile {
            readme: Some("# New"),
            metadata_json: r#"{"name":"pkg"}"#,
            ..new_file("1.0.0", "p.tgz", &d, &[])
        };
        let (_, file_id) = db.publish(&new, || Ok(())).unwrap();
        assert_eq!(db.file_readme(file_id).unwrap().as_deref(), Some("# New"));
        let pkg = db.package("r", "pkg", Visibility::All).unwrap().unwrap();
        assert!(!pkg.files[0].metadata.contains("New"));
    }

    #[test]
    fn publish_refuses_duplicates_and_aborts_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("s.db")).unwrap();
        let (d1, d2) = (digests(1), digests(2));
        let tags = vec!["latest".to_string()];
        db.publish(&unreleased("1.0.0", "pkg-1.0.0.tgz", &d1, &tags), || Ok(())).unwrap();
        let dup = db.publish(&new_file("1.0.0", "pkg-1.0.0-b.tgz", &d2, &tags), || Ok(()));
        assert!(matches!(dup, Err(DbError::Conflict(_))));
        // A failing persist rolls everything back, the push included.
        let aborted = db.publish(&new_file("2.0.0", "pkg-2.0.0.tgz", &d2, &tags), || Err("disk full".into()));
        assert!(matches!(aborted, Err(DbError::Aborted(_))));
        assert_eq!(db.audit_pushes(None, None, 10).unwrap().len(), 1);
        let all = db.package("r", "pkg", Visibility::All).unwrap().unwrap();
        assert_eq!(all.files.len(), 1);
        assert!(all.tags.is_empty(), "an unreleased version's tags wait for its release");
        // Gated: nothing released yet, so clients see no package.
        assert!(db.package("r", "pkg", Visibility::Clients(crate::config::Gate::Pipeline)).unwrap().is_none());
        assert!(db.package("r", "pkg", Visibility::Clients(crate::config::Gate::None)).unwrap().is_some());
    }

    #[test]
    fn both_databases_have_the_same_numbered_migrations() {
        let numbers = |dialect: &str| -> Vec<String> {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store/migrations").join(dialect);
            let mut names: Vec<String> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy()[..3].to_string())
                .collect();
            names.sort();
            names
        };
        let sqlite = numbers("sqlite");
        assert_eq!(sqlite.len(), SQLITE_MIGRATIONS.len(), "every SQLite migration file is applied");
        assert_eq!(POSTGRES_MIGRATIONS.len(), SQLITE_MIGRATIONS.len(), "the same numbers on both");
        // PostgreSQL's own files (the rest are shared with SQLite) are numbers SQLite has.
        assert!(numbers("postgres").iter().all(|n| sqlite.contains(n)));
    }

    #[test]
    fn delete_version_drops_its_tags() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("s.db")).unwrap();
        let (d1, d2) = (digests(1), digests(2));
        db.publish(&new_file("1.0.0", "a.tgz", &d1, &["latest".into()]), || Ok(())).unwrap();
        db.publish(&new_file("2.0.0", "b.tgz", &d2, &["next".into()]), || Ok(())).unwrap();
        assert_eq!(db.delete("r", "pkg", Some("2.0.0")).unwrap(), vec![d2.sha256.clone()]);
        let p = db.package("r", "pkg", Visibility::All).unwrap().unwrap();
        assert_eq!(p.tags.len(), 1);
        assert!(!db.blob_referenced(&d2.sha256).unwrap());
        db.delete("r", "pkg", None).unwrap();
        assert!(db.package("r", "pkg", Visibility::All).unwrap().is_none());
    }
}
