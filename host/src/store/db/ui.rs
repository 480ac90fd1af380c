//! The SQL of the web UI: paginated, index-backed reads for repositories with thousands of
//! packages and packages with thousands of versions (see `migrations/003_ui.sql`).

use serde::Serialize;

use super::sql::{params, Row, Sql, ToValue};
use super::{
    file_row, like_pattern, now_ms, package_row, push_row, Db, DbError, FileRow, PackageRow, PushRow, Result,
    FILE_COLUMNS, PACKAGE_COLUMNS, PUSH_COLUMNS,
};
use crate::domain::gate;
use crate::domain::state::Status;

/// A row of a repository's package list.
#[derive(Debug, Clone, Serialize)]
pub struct UiPackage {
    pub name: String,
    pub modified_at: i64,
    pub versions: i64,
    pub latest: Option<String>,
    /// The status of the latest push's pipeline.
    pub status: Option<String>,
}

/// A stored file with its push's pipeline.
#[derive(Debug, Clone, Serialize)]
pub struct UiFile {
    #[serde(flatten)]
    pub file: FileRow,
    pub pipeline_id: Option<i64>,
    pub status: Option<String>,
}

/// A push with its pipeline, and an admin's release of it past that pipeline if there was one.
#[derive(Debug, Clone, Serialize)]
pub struct UiPush {
    #[serde(flatten)]
    pub push: PushRow,
    pub pipeline_id: Option<i64>,
    pub status: Option<String>,
    pub release: Option<UiRelease>,
}

/// A package's newest push: its pipeline's id and status (if it has one) and its version.
pub type LatestPipeline = (Option<i64>, Option<String>, String);

/// A package found by the search across repositories.
#[derive(Debug, Clone, Serialize)]
pub struct UiFound {
    pub repository: String,
    #[serde(flatten)]
    pub package: UiPackage,
}

/// An admin's release of a push past its gate: who, when (ms since the epoch) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UiRelease {
    pub released_by: String,
    pub released_at: i64,
    /// The reason given (required past a failed pipeline); none for a release that gave none
    /// where it is optional, or that was made before reasons were kept.
    pub reason: Option<String>,
}

/// The SQL columns of a pipeline's release, in [`UiRelease`]'s order, for a query that joins
/// `pipelines` as `pl`.
const RELEASE_COLUMNS: &str = "pl.released_by, pl.released_at, pl.release_reason";

/// The release in [`RELEASE_COLUMNS`] starting at column `at` of `r`, if the pipeline has one.
fn release_at(r: &Row, at: usize) -> Result<Option<UiRelease>> {
    let (by, when): (Option<String>, Option<i64>) = (r.get(at)?, r.get(at + 1)?);
    Ok(match (by, when) {
        (Some(released_by), Some(released_at)) => Some(UiRelease { released_by, released_at, reason: r.get(at + 2)? }),
        _ => None,
    })
}

/// A push of the audit log, with an admin's release of it past its pipeline if there was one
/// (a release by the pipeline passing is not an override, and is not listed here).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditPush {
    #[serde(flatten)]
    pub push: PushRow,
    pub release: Option<UiRelease>,
}

/// What an admin's release did.
#[derive(Debug, Clone)]
pub enum ReleaseOutcome {
    /// The push's files are now visible to clients (this many of them).
    Released { files: usize, release: UiRelease },
    /// Nothing was held: released before, by the pipeline passing or by someone (if recorded).
    AlreadyReleased(Option<UiRelease>),
    /// Nothing was released: the pipeline is in this status, past which a release must say why
    /// (`gate::release_needs_reason`), and no reason was given.
    ReasonRequired(Status),
}

impl Db {
    /// A stored file's README (kept beside its metadata, which renders read without it).
    pub fn file_readme(&self, file_id: i64) -> Result<Option<String>> {
        let readme: Option<Option<String>> =
            self.read(|c| c.query_opt("SELECT readme FROM files WHERE id = $1", params![file_id], |r| r.get(0)))?;
        Ok(readme.flatten())
    }

    /// (packages, stored files) of a repository.
    pub fn ui_repository_counts(&self, repository: &str) -> Result<(i64, i64)> {
        self.read(|c| {
            let packages: i64 = c.query_value(
                "SELECT count(*) FROM packages p WHERE p.repository = $1 AND EXISTS (SELECT 1 FROM files f WHERE f.package_id = p.id)",
                params![repository],
            )?;
            let files: i64 = c.query_value(
                "SELECT count(*) FROM files f JOIN packages p ON p.id = f.package_id WHERE p.repository = $1",
                params![repository],
            )?;
            Ok((packages, files))
        })
    }

    /// One page of a repository's packages whose name contains `query`, by key, with the total.
    pub fn ui_packages(&self, repository: &str, query: &str, offset: u32, limit: u32) -> Result<(i64, Vec<UiPackage>)> {
        self.read(|c| {
            let filter =
                "FROM packages p WHERE p.repository = $1 AND ($2 = '%%' OR lower(p.name) LIKE $2 ESCAPE '\\') \
                          AND EXISTS (SELECT 1 FROM files f WHERE f.package_id = p.id)";
            let pattern = like_pattern(query);
            let total: i64 = c.query_value(&format!("SELECT count(*) {filter}"), params![repository, pattern])?;
            let rows = c.query_map(
                &format!(
                    "SELECT p.name, p.modified_at, \
                       (SELECT count(*) FROM files f WHERE f.package_id = p.id), \
                       (SELECT f.version FROM files f WHERE f.package_id = p.id ORDER BY f.id DESC LIMIT 1), \
                       (SELECT pl.status FROM pipelines pl WHERE pl.push_id = \
                           (SELECT f.push_id FROM files f WHERE f.package_id = p.id ORDER BY f.id DESC LIMIT 1)) \
                     {filter} ORDER BY p.key LIMIT $3 OFFSET $4"
                ),
                params![repository, pattern, limit, offset],
                |r| {
                    Ok(UiPackage {
                        name: r.get(0)?,
                        modified_at: r.get(1)?,
                        versions: r.get(2)?,
                        latest: r.get(3)?,
                        status: r.get(4)?,
                    })
                },
            )?;
            Ok((total, rows))
        })
    }

    /// A package by key, whatever its files' state.
    pub fn ui_package(&self, repository: &str, key: &str) -> Result<Option<PackageRow>> {
        self.read(|c| {
            c.query_opt(
                &format!("SELECT {PACKAGE_COLUMNS} FROM packages p WHERE p.repository = $1 AND p.key = $2"),
                params![repository, key],
                package_row,
            )
        })
    }

    /// One page of a package's files, newest push first, with their pipelines, and the total.
    pub fn ui_files(&self, package_id: i64, offset: u32, limit: u32) -> Result<(i64, Vec<UiFile>)> {
        self.read(|c| {
            let total: i64 = c.query_value("SELECT count(*) FROM files WHERE package_id = $1", params![package_id])?;
            let rows = c.query_map(
                &format!(
                    "SELECT {FILE_COLUMNS}, pl.id, pl.status FROM files f LEFT JOIN pipelines pl ON pl.push_id = f.push_id \
                     WHERE f.package_id = $1 ORDER BY f.id DESC LIMIT $2 OFFSET $3"
                ),
                params![package_id, limit, offset],
                |r| Ok(UiFile { file: file_row(r)?, pipeline_id: r.get(15)?, status: r.get(16)? }),
            )?;
            Ok((total, rows))
        })
    }

    /// The files of one version (one per qualifier), or of the newest pushed version when
    /// `version` is `None`.
    pub fn ui_version(&self, package_id: i64, version: Option<&str>) -> Result<Vec<UiFile>> {
        self.read(|c| {
            let version: Option<String> = match version {
                Some(v) => Some(v.to_string()),
                None => c.query_opt(
                    "SELECT version FROM files WHERE package_id = $1 ORDER BY id DESC LIMIT 1",
                    params![package_id],
                    |r| r.get(0),
                )?,
            };
            let Some(version) = version else { return Ok(Vec::new()) };
            c.query_map(
                &format!(
                    "SELECT {FILE_COLUMNS}, pl.id, pl.status FROM files f LEFT JOIN pipelines pl ON pl.push_id = f.push_id \
                     WHERE f.package_id = $1 AND f.version = $2 ORDER BY f.qualifier"
                ),
                params![package_id, version],
                |r| Ok(UiFile { file: file_row(r)?, pipeline_id: r.get(15)?, status: r.get(16)? }),
            )
        })
    }

    /// Every tag of a package (the UI shows pending versions' tags too).
    pub fn ui_tags(&self, package_id: i64) -> Result<Vec<(String, String)>> {
        self.read(|c| Self::tags_of(c, package_id))
    }

    /// The pipeline (id, status) and version of a package's newest push.
    pub fn ui_latest_pipeline(&self, repository: &str, key: &str) -> Result<Option<LatestPipeline>> {
        self.read(|c| {
            c.query_opt(
                "SELECT pl.id, pl.status, f.version FROM packages p JOIN files f ON f.package_id = p.id \
                 LEFT JOIN pipelines pl ON pl.push_id = f.push_id \
                 WHERE p.repository = $1 AND p.key = $2 ORDER BY f.id DESC LIMIT 1",
                params![repository, key],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
        })
    }

    /// Pushes newest first, of the given repositories only, before a push id (keyset paging).
    pub fn ui_pushes(&self, repositories: &[String], before: Option<i64>, limit: u32) -> Result<Vec<UiPush>> {
        if repositories.is_empty() {
            return Ok(Vec::new());
        }
        let marks = (0..repositories.len()).map(|i| format!("${}", i + 3)).collect::<Vec<_>>().join(", ");
        let columns = PUSH_COLUMNS.split(", ").map(|c| format!("pu.{}", c.trim())).collect::<Vec<_>>().join(", ");
        let mut values: Vec<&dyn ToValue> = vec![&before, &limit];
        for r in repositories {
            values.push(r);
        }
        self.read(|c| {
            c.query_map(
                &format!(
                    "SELECT {columns}, pl.id, pl.status, {RELEASE_COLUMNS} FROM pushes pu LEFT JOIN pipelines pl ON pl.push_id = pu.id \
                     WHERE (CAST($1 AS BIGINT) IS NULL OR pu.id < $1) AND pu.repository IN ({marks}) ORDER BY pu.id DESC LIMIT $2"
                ),
                &values,
                ui_push,
            )
        })
    }

    /// One page of the packages of `repositories` whose name contains `query`, by name then
    /// repository, with the total: the top bar's search across the repositories a viewer reads.
    pub fn ui_search(
        &self,
        repositories: &[String],
        query: &str,
        offset: u32,
        limit: u32,
    ) -> Result<(i64, Vec<UiFound>)> {
        if repositories.is_empty() {
            return Ok((0, Vec::new()));
        }
        // $1 is the needle, $2.. the repositories, then the page's limit and offset.
        let n = repositories.len();
        let marks = (0..n).map(|i| format!("${}", i + 2)).collect::<Vec<_>>().join(", ");
        let stored = "EXISTS (SELECT 1 FROM files f WHERE f.package_id = p.id)";
        // As `Db::search`, limited to the `name` column: the top bar finds packages by name.
        let (matches, needle) = super::search_condition(self.dialect(), query, "$1", Some("name"));
        let filter = format!("FROM packages p WHERE {matches} AND p.repository IN ({marks}) AND {stored}");
        let mut values: Vec<&dyn ToValue> = vec![&needle];
        for r in repositories {
            values.push(r);
        }
        self.read(|c| {
            let total: i64 = c.query_value(&format!("SELECT count(*) {filter}"), &values)?;
            values.push(&limit);
            values.push(&offset);
            let rows = c.query_map(
                &format!(
                    "SELECT p.repository, p.name, p.modified_at, \
                       (SELECT count(*) FROM files f WHERE f.package_id = p.id), \
                       (SELECT f.version FROM files f WHERE f.package_id = p.id ORDER BY f.id DESC LIMIT 1), \
                       (SELECT pl.status FROM pipelines pl WHERE pl.push_id = \
                           (SELECT f.push_id FROM files f WHERE f.package_id = p.id ORDER BY f.id DESC LIMIT 1)) \
                     {filter} ORDER BY p.key, p.repository LIMIT ${} OFFSET ${}",
                    n + 2,
                    n + 3
                ),
                &values,
                |r| {
                    Ok(UiFound {
                        repository: r.get(0)?,
                        package: UiPackage {
                            name: r.get(1)?,
                            modified_at: r.get(2)?,
                            versions: r.get(3)?,
                            latest: r.get(4)?,
                            status: r.get(5)?,
                        },
                    })
                },
            )?;
            Ok((total, rows))
        })
    }

    /// One page of what the gate holds in a repository: pushes whose file clients cannot see yet
    /// (pipeline pending, running, failed, canceled or waiting for approval), newest first, with
    /// their pipelines, and the total. Reads the partial index of unreleased files.
    pub fn ui_held(&self, repository: &str, offset: u32, limit: u32) -> Result<(i64, Vec<UiPush>)> {
        self.read(|c| {
            let total: i64 = c.query_value(
                "SELECT count(*) FROM files f JOIN pushes pu ON pu.id = f.push_id WHERE f.released = 0 AND pu.repository = $1",
                params![repository],
            )?;
            let columns = PUSH_COLUMNS.split(", ").map(|c| format!("pu.{}", c.trim())).collect::<Vec<_>>().join(", ");
            let rows = c.query_map(
                &format!(
                    "SELECT {columns}, pl.id, pl.status, {RELEASE_COLUMNS} FROM files f JOIN pushes pu ON pu.id = f.push_id \
                     LEFT JOIN pipelines pl ON pl.push_id = pu.id \
                     WHERE f.released = 0 AND pu.repository = $1 ORDER BY pu.id DESC LIMIT $2 OFFSET $3"
                ),
                params![repository, limit, offset],
                ui_push,
            )?;
            Ok((total, rows))
        })
    }

    /// Whether a push has a file clients cannot have yet (its gate holds it).
    pub fn ui_push_held(&self, push_id: i64) -> Result<bool> {
        self.read(|c| {
            c.query_value("SELECT EXISTS (SELECT 1 FROM files WHERE push_id = $1 AND released = 0)", params![push_id])
        })
    }

    /// The last `max_lines` lines of a job's log (read from its last 16 KiB only).
    pub fn ui_log_tail(&self, job_id: i64, max_lines: usize) -> Result<String> {
        let tail: Option<String> = self.read(|c| {
            c.query_opt(
                "SELECT CASE WHEN length(log) > 16384 THEN substr(log, length(log) - 16383) ELSE log END \
                 FROM jobs WHERE id = $1",
                params![job_id],
                |r| r.get(0),
            )
        })?;
        let tail = tail.unwrap_or_default();
        let lines: Vec<&str> = tail.trim_end().lines().collect();
        Ok(lines[lines.len().saturating_sub(max_lines)..].join("\n"))
    }

    fn release_record(c: &Sql, pipeline_id: i64) -> Result<Option<UiRelease>> {
        let row = c.query_opt(
            &format!("SELECT {RELEASE_COLUMNS} FROM pipelines pl WHERE pl.id = $1"),
            params![pipeline_id],
            |r| release_at(r, 0),
        )?;
        Ok(row.flatten())
    }

    /// The push audit log, newest first: [`Db::pushes`] with each push's release past its gate.
    pub fn audit_pushes(&self, repository: Option<&str>, before: Option<i64>, limit: u32) -> Result<Vec<AuditPush>> {
        let columns = PUSH_COLUMNS.split(", ").map(|c| format!("pu.{}", c.trim())).collect::<Vec<_>>().join(", ");
        self.read(|c| {
            c.query_map(
                &format!(
                    "SELECT {columns}, {RELEASE_COLUMNS} FROM pushes pu LEFT JOIN pipelines pl ON pl.push_id = pu.id \
                     WHERE (CAST($1 AS TEXT) IS NULL OR pu.repository = $1) AND (CAST($2 AS BIGINT) IS NULL OR pu.id < $2) \
                     ORDER BY pu.id DESC LIMIT $3"
                ),
                params![repository, before, limit],
                audit_push,
            )
        })
    }

    /// One push of the audit log, with its release past its gate.
    pub fn audit_push(&self, id: i64) -> Result<Option<AuditPush>> {
        let columns = PUSH_COLUMNS.split(", ").map(|c| format!("pu.{}", c.trim())).collect::<Vec<_>>().join(", ");
        self.read(|c| {
            c.query_opt(
                &format!(
                    "SELECT {columns}, {RELEASE_COLUMNS} FROM pushes pu LEFT JOIN pipelines pl ON pl.push_id = pu.id \
                     WHERE pu.id = $1"
                ),
                params![id],
                audit_push,
            )
        })
    }

    /// Who released a pipeline's push past its gate, if an admin did.
    pub fn ui_release_of(&self, pipeline_id: i64) -> Result<Option<UiRelease>> {
        self.read(|c| Self::release_record(c, pipeline_id))
    }

    /// An admin's release: lets clients see a held push's files whatever its pipeline says, points
    /// the tags they were published with at them (as a passing pipeline would), and records who
    /// released them, when and why on the pipeline. The pipeline itself is left as it is. Whether
    /// it needs a `reason` is asked of the pipeline's status in this transaction, so a pipeline
    /// that fails while the admin decides is not released past without one.
    pub fn ui_release(&self, pipeline_id: i64, by: &str, reason: Option<&str>) -> Result<ReleaseOutcome> {
        self.write(|tx| {
            let (push_id, status): (i64, Status) = tx
                .query_opt("SELECT push_id, status FROM pipelines WHERE id = $1", params![pipeline_id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .ok_or_else(|| DbError::NotFound(format!("pipeline {pipeline_id}")))?;
            let pending: Vec<(i64, String, String)> = tx.query_map(
                "SELECT package_id, version, pending_tags FROM files WHERE push_id = $1 AND released = 0",
                params![push_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            if pending.is_empty() {
                return Ok(ReleaseOutcome::AlreadyReleased(Self::release_record(tx, pipeline_id)?));
            }
            if reason.is_none() && gate::release_needs_reason(status) {
                return Ok(ReleaseOutcome::ReasonRequired(status));
            }
            for (package_id, version, tags) in &pending {
                for tag in serde_json::from_str::<Vec<String>>(tags).unwrap_or_default() {
                    Self::put_tag(tx, *package_id, &tag, version)?;
                }
                Self::touch(tx, *package_id)?;
            }
            tx.execute(
                "UPDATE files SET released = 1, pending_tags = '[]' WHERE push_id = $1 AND released = 0",
                params![push_id],
            )?;
            let release =
                UiRelease { released_by: by.to_string(), released_at: now_ms(), reason: reason.map(str::to_string) };
            tx.execute(
                "UPDATE pipelines SET released_by = $2, released_at = $3, release_reason = $4 WHERE id = $1",
                params![pipeline_id, release.released_by, release.released_at, release.reason],
            )?;
            Ok(ReleaseOutcome::Released { files: pending.len(), release })
        })
    }
}

/// A row of [`PUSH_COLUMNS`], the pipeline's id and status, then [`RELEASE_COLUMNS`].
fn ui_push(r: &Row) -> Result<UiPush> {
    Ok(UiPush { push: push_row(r)?, pipeline_id: r.get(15)?, status: r.get(16)?, release: release_at(r, 17)? })
}

/// A row of [`PUSH_COLUMNS`] then [`RELEASE_COLUMNS`].
fn audit_push(r: &Row) -> Result<AuditPush> {
    Ok(AuditPush { push: push_row(r)?, release: release_at(r, 15)? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::db::{NewFile, NewPipeline, Pusher, Visibility};
    use crate::store::Digests;

    fn push(db: &Db, repository: &str, name: &str, n: u8, released: bool) {
        let d = Digests { sha256: format!("{n:064x}"), sha512: "0".repeat(128), sha1: "0".repeat(40), size: 10 };
        let pusher = Pusher {
            actor: "alice",
            token_id: None,
            token_name: None,
            client_addr: None,
            user_agent: None,
            commit_sha: None,
        };
        let pipeline = NewPipeline {
            source: "package_push".into(),
            extraction: serde_json::json!({}),
            variables: Default::default(),
            jobs: Vec::new(),
        };
        let file_name = format!("{name}-{n}.tgz");
        let version = format!("1.0.{n}");
        db.publish(
            &NewFile {
                repository,
                key: name,
                name,
                version: &version,
                qualifier: "",
                file_name: &file_name,
                digests: &d,
                metadata_json: "{}",
                readme: None,
                pusher: &pusher,
                released,
                tags: &["latest".to_string()],
                pipeline: Some(&pipeline),
            },
            || Ok(()),
        )
        .unwrap();
    }

    #[test]
    fn release_lets_clients_have_a_held_push_once_and_records_who() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("s.db")).unwrap();
        push(&db, "r", "pkg", 1, false);
        push(&db, "r", "other", 2, true);
        let (total, held) = db.ui_held("r", 0, 10).unwrap();
        assert_eq!((total, held.len()), (1, 1));
        assert_eq!(held[0].push.package, "pkg");
        let pipeline = held[0].pipeline_id.unwrap();
        assert!(db.package("r", "pkg", Visibility::Clients(crate::config::Gate::Pipeline)).unwrap().is_none());

        // Past a failed pipeline, a release without a reason is refused and releases nothing.
        db.write(|tx| tx.execute("UPDATE pipelines SET status = 'failed' WHERE id = $1", params![pipeline])).unwrap();
        assert!(matches!(
            db.ui_release(pipeline, "root", None).unwrap(),
            ReleaseOutcome::ReasonRequired(Status::Failed)
        ));
        assert_eq!(db.ui_held("r", 0, 10).unwrap().0, 1, "still held");
        assert_eq!(db.ui_release_of(pipeline).unwrap(), None);

        let ReleaseOutcome::Released { files, release } =
            db.ui_release(pipeline, "root", Some("checked by hand")).unwrap()
        else {
            panic!("released")
        };
        assert_eq!(
            (files, release.released_by.as_str(), release.reason.as_deref()),
            (1, "root", Some("checked by hand"))
        );
        let seen = db
            .package("r", "pkg", Visibility::Clients(crate::config::Gate::Pipeline))
            .unwrap()
            .expect("clients see it");
        assert_eq!(seen.tags, vec![("latest".to_string(), "1.0.1".to_string())], "the push's tags point at it now");
        assert_eq!(db.ui_held("r", 0, 10).unwrap().0, 0);
        assert_eq!(db.ui_release_of(pipeline).unwrap(), Some(release.clone()));
        // The audit log shows the release beside its push; a push released otherwise has none.
        let log = db.audit_pushes(Some("r"), None, 10).unwrap();
        assert_eq!(
            log.iter().map(|p| (p.push.package.as_str(), p.release.clone())).collect::<Vec<_>>(),
            [("other", None), ("pkg", Some(release.clone()))]
        );
        assert_eq!(db.audit_push(log[1].push.id).unwrap().unwrap().release, Some(release.clone()));
        assert_eq!(db.ui_pushes(&["r".to_string()], None, 10).unwrap()[1].release, Some(release));
        let ReleaseOutcome::AlreadyReleased(Some(before)) = db.ui_release(pipeline, "someone-else", None).unwrap()
        else {
            panic!("once")
        };
        assert_eq!(
            (before.released_by.as_str(), before.reason.as_deref()),
            ("root", Some("checked by hand")),
            "a second release keeps the first one's record"
        );
        assert!(matches!(db.ui_release(999, "root", Some("x")), Err(DbError::NotFound(_))));
    }

    #[test]
    fn search_covers_only_the_given_repositories_page_by_page() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("s.db")).unwrap();
        for (i, repo) in ["a", "b", "hidden"].iter().enumerate() {
            push(&db, repo, "my_thing", i as u8 + 1, true);
        }
        push(&db, "a", "my-thing-2", 9, true);
        let readable = vec!["a".to_string(), "b".to_string()];
        let (total, page) = db.ui_search(&readable, "my_", 0, 10).unwrap();
        assert_eq!(total, 2, "`_` is literal, not a wildcard, and `hidden` is not searched");
        assert_eq!(page.iter().map(|f| f.repository.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        let (total, page) = db.ui_search(&readable, "THING", 1, 1).unwrap();
        assert_eq!((total, page.len()), (3, 1));
        assert_eq!(db.ui_search(&[], "thing", 0, 10).unwrap().0, 0);
        // Shorter than a trigram: names compared directly; empty: every package.
        assert_eq!(db.ui_search(&readable, "g-", 0, 10).unwrap().0, 1);
        assert_eq!(db.ui_search(&readable, "", 0, 10).unwrap().0, 3);
        // FTS5 syntax in a query is searched for as text, never parsed.
        assert_eq!(db.ui_search(&readable, "thing\" OR \"my", 0, 10).unwrap().0, 0);
        assert_eq!(db.ui_search(&readable, "NOT", 0, 10).unwrap().0, 0);
        // The index folds case beyond ASCII (SQLite's `lower()` does not).
        push(&db, "b", "Ärger-Straße", 10, true);
        let (total, page) = db.ui_search(&readable, "ärger-str", 0, 10).unwrap();
        assert_eq!((total, page[0].package.name.as_str()), (1, "Ärger-Straße"));
    }
}
