//! The SQL of git tags seen by git-tag repositories.

use serde::Serialize;

use super::sql::{params, Row};
use super::{now_ms, Db, Result};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GitTagRow {
    pub repository: String,
    pub source: String,
    pub tag: String,
    pub commit_sha: String,
    pub status: String,
    pub reason: Option<String>,
    pub push_id: Option<i64>,
    pub moved_to: Option<String>,
    pub seen_at: i64,
}

fn git_tag_row(r: &Row) -> Result<GitTagRow> {
    Ok(GitTagRow {
        repository: r.get(0)?,
        source: r.get(1)?,
        tag: r.get(2)?,
        commit_sha: r.get(3)?,
        status: r.get(4)?,
        reason: r.get(5)?,
        push_id: r.get(6)?,
        moved_to: r.get(7)?,
        seen_at: r.get(8)?,
    })
}

/// What became of a tag the first time it was seen.
pub struct NewGitTag<'a> {
    pub repository: &'a str,
    pub source: &'a str,
    pub tag: &'a str,
    pub commit: &'a str,
    /// `published`, `rejected` or `ignored`.
    pub status: &'a str,
    pub reason: Option<&'a str>,
    pub push_id: Option<i64>,
}

const COLUMNS: &str = "repository, source, tag, commit_sha, status, reason, push_id, moved_to, seen_at";

impl Db {
    pub fn git_tag(&self, repository: &str, source: &str, tag: &str) -> Result<Option<GitTagRow>> {
        self.read(|c| {
            c.query_opt(
                &format!("SELECT {COLUMNS} FROM git_tags WHERE repository = $1 AND source = $2 AND tag = $3"),
                params![repository, source, tag],
                git_tag_row,
            )
        })
    }

    pub fn record_git_tag(&self, t: &NewGitTag) -> Result<()> {
        self.read(|c| {
            c.execute(
                &format!("INSERT INTO git_tags ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8)"),
                params![t.repository, t.source, t.tag, t.commit, t.status, t.reason, t.push_id, now_ms()],
            )
        })?;
        Ok(())
    }

    pub fn mark_git_tag_moved(&self, repository: &str, source: &str, tag: &str, moved_to: &str) -> Result<()> {
        self.read(|c| {
            c.execute(
                "UPDATE git_tags SET moved_to = $4 WHERE repository = $1 AND source = $2 AND tag = $3",
                params![repository, source, tag, moved_to],
            )
        })?;
        Ok(())
    }

    /// The git source (other than `except`) that published versions of `package`, if any.
    pub fn git_source_of_package(&self, repository: &str, package: &str, except: &str) -> Result<Option<String>> {
        self.read(|c| {
            c.query_opt(
                "SELECT g.source FROM git_tags g JOIN pushes p ON p.id = g.push_id
                 WHERE g.repository = $1 AND g.status = 'published' AND p.package = $2 AND g.source != $3 LIMIT 1",
                params![repository, package, except],
                |r| r.get(0),
            )
        })
    }

    pub fn git_tags(&self, repository: &str) -> Result<Vec<GitTagRow>> {
        self.read(|c| {
            c.query_map(
                &format!("SELECT {COLUMNS} FROM git_tags WHERE repository = $1 ORDER BY seen_at DESC, tag"),
                params![repository],
                git_tag_row,
            )
        })
    }
}
