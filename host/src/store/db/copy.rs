//! Copying a whole registry's rows from one store into another (`sluice migrate`): every table a
//! registry writes, in the order their references need, by the same SQL layer on either side.
//! Derived tables are not copied: the change log and the search index are written by the target's
//! own triggers as its files arrive, exactly as for a publish.

use super::sql::{params, Dialect, Row, Sql, Value};
use super::{Db, DbError, Result};

/// What a registry writes, parents before children. Each is copied whole, with its ids, so every
/// reference between them (a file's push, a job's pipeline, a push's token) still holds.
const TABLES: &[&str] = &[
    "tokens",
    "packages",
    "pushes",
    "files",
    "tags",
    "pipelines",
    "jobs",
    "pipeline_configs",
    "webhook_deliveries",
    "git_tags",
    "webhook_receipts",
];

/// Rows are read and written this many at a time, so a large registry is never held in memory.
const BATCH: i64 = 1000;

impl Db {
    /// Whether this store holds nothing a registry wrote: the only kind `copy_rows_from` writes
    /// into, so a migration never merges two registries' ids.
    pub fn is_empty(&self) -> Result<bool> {
        self.read(|sql| {
            for table in TABLES {
                if sql.query_value::<i64>(&format!("SELECT COUNT(*) FROM {table}"), params![])? > 0 {
                    return Ok(false);
                }
            }
            Ok(true)
        })
    }

    /// Every stored file's blob, once: (sha256, size).
    pub fn file_blobs(&self) -> Result<Vec<(String, i64)>> {
        self.read(|sql| {
            sql.query_map("SELECT sha256, MAX(size) FROM files GROUP BY sha256 ORDER BY sha256", params![], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
        })
    }

    /// The number of rows of each copied table.
    pub fn table_counts(&self) -> Result<Vec<(&'static str, i64)>> {
        self.read(|sql| {
            TABLES
                .iter()
                .map(|t| Ok((*t, sql.query_value::<i64>(&format!("SELECT COUNT(*) FROM {t}"), params![])?)))
                .collect()
        })
    }

    /// Copies every row of `source` into this store, which must be empty, in one transaction: a
    /// migration that fails part way leaves the target as empty as it was. Returns the rows
    /// copied per table.
    pub fn copy_rows_from(&self, source: &Db) -> Result<Vec<(&'static str, usize)>> {
        if !self.is_empty()? {
            return Err(DbError::Aborted(
                "the target database already holds a registry; migrate into an empty one".into(),
            ));
        }
        self.write(|target| {
            let mut copied = Vec::new();
            for table in TABLES {
                let columns = source.read(|s| columns_of(s, table))?;
                let target_columns = columns_of(target, table)?;
                if let Some(missing) = columns.iter().find(|c| !target_columns.contains(c)) {
                    return Err(DbError::Aborted(format!(
                        "the target's {table} has no column {missing}: its schema is not this version's"
                    )));
                }
                let n = copy_table(source, target, table, &columns)?;
                if target.dialect() == Dialect::Postgres && columns.iter().any(|c| c == "id") {
                    // Rows came with their ids: the identity must continue after the largest, or
                    // the next publish would collide with a copied row.
                    target.query_value::<i64>(
                        &format!(
                            "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                             (SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)"
                        ),
                        params![],
                    )?;
                }
                tracing::info!(table, rows = n, "copied");
                copied.push((*table, n));
            }
            Ok(copied)
        })
    }
}

/// Copies one table in batches: by id where it has one (so each batch is an index range), else
/// whole (the small tables: tags, configs, receipts).
fn copy_table(source: &Db, target: &Sql, table: &str, columns: &[String]) -> Result<usize> {
    let list = columns.join(", ");
    let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
    let insert = format!("INSERT INTO {table} ({list}) VALUES ({})", placeholders.join(", "));
    let has_id = columns.iter().any(|c| c == "id");
    let mut copied = 0;
    let mut after = i64::MIN;
    loop {
        let rows: Vec<Row> = source.read(|s| {
            if has_id {
                s.query(
                    &format!("SELECT {list} FROM {table} WHERE id > $1 ORDER BY id LIMIT $2"),
                    params![after, BATCH],
                )
            } else {
                s.query(&format!("SELECT {list} FROM {table}"), params![])
            }
        })?;
        for row in &rows {
            let values: Vec<&dyn super::sql::ToValue> = row.values().iter().map(|v| v as _).collect();
            target.execute(&insert, &values)?;
        }
        copied += rows.len();
        if !has_id || (rows.len() as i64) < BATCH {
            return Ok(copied);
        }
        let id_at = columns.iter().position(|c| c == "id").expect("has an id");
        after = match rows.last().map(|r| &r.values()[id_at]) {
            Some(Value::Int(id)) => *id,
            _ => return Ok(copied),
        };
    }
}

/// A table's columns, in order.
fn columns_of(sql: &Sql, table: &str) -> Result<Vec<String>> {
    match sql.dialect() {
        Dialect::Sqlite => {
            sql.query_map("SELECT name FROM pragma_table_info($1) ORDER BY cid", params![table], |r| r.get(0))
        }
        Dialect::Postgres => sql.query_map(
            "SELECT column_name FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            params![table],
            |r| r.get(0),
        ),
    }
}
