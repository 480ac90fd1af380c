//! Where Sluice keeps things: package metadata, pushes and pipelines in SQLite or PostgreSQL
//! ([`Db`]), package files in a content-addressed [`BlobStore`] (a folder or object storage). Both
//! sit behind these small types, so the callers do not know which backend they run on.
//!
//! May call: `config` and `domain` (it persists what the state machine decides and filters by the
//! gate), nothing above. Called by everything above it.

pub mod blobs;
pub mod db;
pub mod migrate;

pub use blobs::{BlobError, BlobStore, Copied, Digests, PendingBlob};
pub use db::{Db, DbError};
