//! The state of git-tag syncs the app keeps between requests: the jobs the API polls. The syncs
//! themselves are `registry::git_tags`.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// What one sync did, per tag.
#[derive(Debug, Default, Clone, Serialize)]
pub struct SyncReport {
    pub published: Vec<TagOutcome>,
    pub rejected: Vec<TagOutcome>,
    pub moved: Vec<TagOutcome>,
    pub ignored: Vec<String>,
    /// Sources or tags that could not be read this time (git or the disk failed); not recorded,
    /// so the next sync tries them again.
    pub errors: Vec<TagOutcome>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TagOutcome {
    pub source: String,
    pub tag: String,
    pub commit: String,
    pub detail: String,
}

/// How far a sync has got.
#[derive(Debug, Default, Clone, Serialize)]
pub struct SyncProgress {
    pub sources_total: usize,
    pub sources_done: usize,
    /// The source being read now.
    pub source: Option<String>,
    /// Tags of the current source, and how many of them were looked at.
    pub tags_total: usize,
    pub tags_done: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncStatus {
    Running,
    Done,
    Failed,
}

/// A background sync, as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SyncJob {
    pub id: u64,
    pub repository: String,
    pub actor: String,
    pub status: SyncStatus,
    pub started_ms: i64,
    pub finished_ms: Option<i64>,
    pub progress: SyncProgress,
    /// What the sync did so far (complete once it is done).
    pub report: SyncReport,
    /// Why a failed sync stopped.
    pub error: Option<String>,
}

/// The registry's sync jobs: syncs run one at a time (git mirrors take locks), and a sync asked
/// for while one of the same repository is running joins it instead of queueing a second.
#[derive(Default)]
pub struct GitSync {
    pub one_at_a_time: Mutex<()>,
    pub next_id: AtomicU64,
    pub jobs: Mutex<HashMap<u64, Arc<Mutex<SyncJob>>>>,
}
