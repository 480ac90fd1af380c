//! The SQL behind `/metrics`: a few grouped counts, each one indexed query.

use super::sql::params;
use super::{Db, Result};

/// (labels, value) rows of one gauge.
pub type Rows = Vec<(Vec<String>, i64)>;

impl Db {
    fn grouped(&self, sql: &str, labels: usize) -> Result<Rows> {
        self.read(|c| {
            c.query_map(sql, params![], |r| {
                let names = (0..labels).map(|i| r.get::<String>(i)).collect::<Result<Vec<_>>>()?;
                Ok((names, r.get(labels)?))
            })
        })
    }

    /// Stored files per repository.
    pub fn files_per_repository(&self) -> Result<Rows> {
        self.grouped(
            "SELECT p.repository, count(*) FROM files f JOIN packages p ON p.id = f.package_id GROUP BY p.repository",
            1,
        )
    }

    /// Pushes per repository (the audit log, deleted files included).
    pub fn pushes_per_repository(&self) -> Result<Rows> {
        self.grouped("SELECT repository, count(*) FROM pushes GROUP BY repository", 1)
    }

    /// Pipelines per repository and status.
    pub fn pipelines_per_status(&self) -> Result<Rows> {
        self.grouped("SELECT repository, status, count(*) FROM pipelines GROUP BY repository, status", 2)
    }

    /// Runner jobs per status, for queue depth.
    pub fn jobs_per_status(&self) -> Result<Rows> {
        self.grouped("SELECT status, count(*) FROM jobs WHERE kind = 'runner' GROUP BY status", 1)
    }
}
