//! `sluice migrate`: copies a registry from its configured store (typically the single-node
//! SQLite file and blob folder) into PostgreSQL and, when asked, object storage: the scaled-out
//! form several replicas share. Package files go first, each verified by its sha256 as it is
//! written; the rows follow in one transaction, so the target never lists a file it does not
//! hold, and a run that fails part way can simply be run again (blobs already copied are kept,
//! the rows' transaction left nothing).

use crate::config::Config;
use crate::store::{BlobStore, Copied, Db};

/// What a migration copied.
#[derive(Debug, Default)]
pub struct Report {
    /// Rows per table.
    pub rows: Vec<(&'static str, usize)>,
    /// Blobs written into the target's blob store, and their bytes.
    pub blobs_copied: usize,
    pub bytes_copied: u64,
    /// Blobs the target already held (an earlier, interrupted run).
    pub blobs_present: usize,
    /// Whether the files stayed where they were (no `--blobs`).
    pub blobs_in_place: bool,
}

/// Copies the registry `config` describes into the database `to` (which must be empty) and,
/// with `blobs`, its files into that object store. Synchronous: run it outside any async runtime.
pub fn migrate(config: &Config, to: &str, blobs: Option<&str>) -> anyhow::Result<Report> {
    if !(to.starts_with("postgres://") || to.starts_with("postgresql://")) {
        anyhow::bail!("--to must be a PostgreSQL URL (postgres://user@host:port/db), not `{to}`");
    }
    if config.database.as_deref() == Some(to) {
        anyhow::bail!("--to names the database this registry already runs on");
    }
    let source_db = Db::open_configured(config)?;
    let source_blobs = BlobStore::open_configured(config.data.join("blobs"), config.blobs.as_deref())?;
    let target_db = Db::open_configured(&Config { database: Some(to.to_string()), ..config.clone() })?;
    // `copy_rows_from` refuses a non-empty target itself (that check is the one that holds); this
    // one comes first so that no blob is copied into an object store before the rows are refused.
    if !target_db.is_empty()? {
        anyhow::bail!("the database {to} already holds a registry: migrate into an empty database");
    }
    let files = source_db.file_blobs()?;
    let mut report = Report::default();
    match blobs {
        Some(url) if Some(url) != config.blobs.as_deref() => {
            // Spooled through the data folder, as uploads are.
            let target_blobs = BlobStore::open_configured(config.data.join("blobs"), Some(url))?;
            for (i, (sha256, size)) in files.iter().enumerate() {
                match target_blobs.copy_from(&source_blobs, sha256, *size as u64)? {
                    Copied::Bytes(n) => {
                        report.blobs_copied += 1;
                        report.bytes_copied += n;
                    }
                    Copied::AlreadyThere => report.blobs_present += 1,
                }
                if (i + 1) % 100 == 0 {
                    tracing::info!(done = i + 1, of = files.len(), "package files copied");
                }
            }
        }
        _ => {
            // The files stay: every one the rows name must be there, or the moved registry would
            // list files it cannot serve.
            let missing: Vec<&str> = files
                .iter()
                .filter(|(sha256, size)| !matches!(source_blobs.stored_size(sha256), Ok(Some(s)) if s == *size as u64))
                .map(|(sha256, _)| sha256.as_str())
                .collect();
            if !missing.is_empty() {
                anyhow::bail!("{} package file(s) are not in the blob store: {}", missing.len(), missing.join(", "));
            }
            report.blobs_in_place = true;
        }
    }
    report.rows = target_db.copy_rows_from(&source_db)?;
    // The counts must agree table by table: what the target serves is what the source held.
    let (source_counts, target_counts) = (source_db.table_counts()?, target_db.table_counts()?);
    if source_counts != target_counts {
        anyhow::bail!("row counts differ after the copy: source {source_counts:?}, target {target_counts:?}");
    }
    Ok(report)
}
