//! The SQL of the web UI: paginated, index-backed reads for repositories with thousands of
//! packages and packages with thousands of versions (see `migrations/003_ui.sql`).

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::{file_row, package_row, push_row, Db, FileRow, PackageRow, PushRow, Result, FILE_COLUMNS, PACKAGE_COLUMNS, PUSH_COLUMNS};

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

/// A push with its pipeline.
#[derive(Debug, Clone, Serialize)]
pub struct UiPush {
    #[serde(flatten)]
    pub push: PushRow,
    pub pipeline_id: Option<i64>,
    pub status: Option<String>,
}

/// `%query%` for LIKE with `\` as the escape character.
fn like_pattern(query: &str) -> String {
    format!("%{}%", query.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"))
}

impl Db {
    /// (packages, stored files) of a repository.
    pub fn ui_repository_counts(&self, repository: &str) -> Result<(i64, i64)> {
        let conn = self.conn()?;
        let packages: i64 = conn.query_row(
            "SELECT count(*) FROM packages p WHERE p.repository = ?1 AND EXISTS (SELECT 1 FROM files f WHERE f.package_id = p.id)",
            [repository],
            |r| r.get(0),
        )?;
        let files: i64 = conn.query_row(
            "SELECT count(*) FROM files f JOIN packages p ON p.id = f.package_id WHERE p.repository = ?1",
            [repository],
            |r| r.get(0),
        )?;
        Ok((packages, files))
    }

    /// One page of a repository's packages whose name contains `query`, by key, with the total.
    pub fn ui_packages(&self, repository: &str, query: &str, offset: u32, limit: u32) -> Result<(i64, Vec<UiPackage>)> {
        let conn = self.conn()?;
        let filter = "FROM packages p WHERE p.repository = ?1 AND (?2 = '%%' OR lower(p.name) LIKE ?2 ESCAPE '\\') \
                      AND EXISTS (SELECT 1 FROM files f WHERE f.package_id = p.id)";
        let pattern = like_pattern(query);
        let total: i64 = conn.query_row(&format!("SELECT count(*) {filter}"), params![repository, pattern], |r| r.get(0))?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT p.name, p.modified_at, \
               (SELECT count(*) FROM files f WHERE f.package_id = p.id), \
               (SELECT f.version FROM files f WHERE f.package_id = p.id ORDER BY f.id DESC LIMIT 1), \
               (SELECT pl.status FROM pipelines pl WHERE pl.push_id = \
                   (SELECT f.push_id FROM files f WHERE f.package_id = p.id ORDER BY f.id DESC LIMIT 1)) \
             {filter} ORDER BY p.key LIMIT ?3 OFFSET ?4"
        ))?;
        let rows = stmt
            .query_map(params![repository, pattern, limit, offset], |r| {
                Ok(UiPackage { name: r.get(0)?, modified_at: r.get(1)?, versions: r.get(2)?, latest: r.get(3)?, status: r.get(4)? })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok((total, rows))
    }

    /// A package by key, whatever its files' state.
    pub fn ui_package(&self, repository: &str, key: &str) -> Result<Option<PackageRow>> {
        let conn = self.conn()?;
        Ok(conn
            .query_row(&format!("SELECT {PACKAGE_COLUMNS} FROM packages p WHERE p.repository = ?1 AND p.key = ?2"), [repository, key], package_row)
            .optional()?)
    }

    /// One page of a package's files, newest push first, with their pipelines, and the total.
    pub fn ui_files(&self, package_id: i64, offset: u32, limit: u32) -> Result<(i64, Vec<UiFile>)> {
        let conn = self.conn()?;
        let total: i64 = conn.query_row("SELECT count(*) FROM files WHERE package_id = ?1", [package_id], |r| r.get(0))?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {FILE_COLUMNS}, pl.id, pl.status FROM files f LEFT JOIN pipelines pl ON pl.push_id = f.push_id \
             WHERE f.package_id = ?1 ORDER BY f.id DESC LIMIT ?2 OFFSET ?3"
        ))?;
        let rows = stmt
            .query_map(params![package_id, limit, offset], |r| Ok(UiFile { file: file_row(r)?, pipeline_id: r.get(15)?, status: r.get(16)? }))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok((total, rows))
    }

    /// The files of one version (one per qualifier), or of the newest pushed version when
    /// `version` is `None`.
    pub fn ui_version(&self, package_id: i64, version: Option<&str>) -> Result<Vec<UiFile>> {
        let conn = self.conn()?;
        let version: Option<String> = match version {
            Some(v) => Some(v.to_string()),
            None => conn
                .query_row("SELECT version FROM files WHERE package_id = ?1 ORDER BY id DESC LIMIT 1", [package_id], |r| r.get(0))
                .optional()?,
        };
        let Some(version) = version else { return Ok(Vec::new()) };
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {FILE_COLUMNS}, pl.id, pl.status FROM files f LEFT JOIN pipelines pl ON pl.push_id = f.push_id \
             WHERE f.package_id = ?1 AND f.version = ?2 ORDER BY f.qualifier"
        ))?;
        let rows = stmt
            .query_map(params![package_id, version], |r| Ok(UiFile { file: file_row(r)?, pipeline_id: r.get(15)?, status: r.get(16)? }))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Every tag of a package (the UI shows pending versions' tags too).
    pub fn ui_tags(&self, package_id: i64) -> Result<Vec<(String, String)>> {
        let conn = self.conn()?;
        Self::tags_of(&conn, package_id)
    }

    /// The pipeline (id, status) and version of a package's newest push.
    pub fn ui_latest_pipeline(&self, repository: &str, key: &str) -> Result<Option<(Option<i64>, Option<String>, String)>> {
        let conn = self.conn()?;
        Ok(conn
            .query_row(
                "SELECT pl.id, pl.status, f.version FROM packages p JOIN files f ON f.package_id = p.id \
                 LEFT JOIN pipelines pl ON pl.push_id = f.push_id \
                 WHERE p.repository = ?1 AND p.key = ?2 ORDER BY f.id DESC LIMIT 1",
                [repository, key],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?)
    }

    /// Pushes newest first, of the given repositories only, before a push id (keyset paging).
    pub fn ui_pushes(&self, repositories: &[String], before: Option<i64>, limit: u32) -> Result<Vec<UiPush>> {
        if repositories.is_empty() {
            return Ok(Vec::new());
        }
        let conn = self.conn()?;
        let marks = (0..repositories.len()).map(|i| format!("?{}", i + 3)).collect::<Vec<_>>().join(", ");
        let columns = PUSH_COLUMNS.split(", ").map(|c| format!("pu.{}", c.trim())).collect::<Vec<_>>().join(", ");
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {columns}, pl.id, pl.status FROM pushes pu LEFT JOIN pipelines pl ON pl.push_id = pu.id \
             WHERE (?1 IS NULL OR pu.id < ?1) AND pu.repository IN ({marks}) ORDER BY pu.id DESC LIMIT ?2"
        ))?;
        let mut values: Vec<&dyn rusqlite::ToSql> = vec![&before, &limit];
        for r in repositories {
            values.push(r);
        }
        let rows = stmt
            .query_map(values.as_slice(), |r| Ok(UiPush { push: push_row(r)?, pipeline_id: r.get(15)?, status: r.get(16)? }))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }
}
