//! Where Sluice keeps things: package metadata, pushes and pipelines in SQLite ([`Db`]), package
//! files in a content-addressed [`BlobStore`]. Both sit behind these small types so that
//! PostgreSQL or object storage can take their place later without touching the callers.
//!
//! May call: `config` and `domain` (it persists what the state machine decides and filters by the
//! gate), nothing above. Called by everything above it.

pub mod blobs;
pub mod db;

pub use blobs::{BlobError, BlobStore, Digests, PendingBlob};
pub use db::{Db, DbError};
