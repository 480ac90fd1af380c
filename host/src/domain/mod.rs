//! The registry's pure rules, with no I/O: the pipeline state machine ([`state`]: statuses and
//! the one transition function) and the gate ([`gate`]: whether clients may see a version).
//! The store persists what these decide, the pipeline service and the HTTP layer ask them, and
//! `sluice runner` shares the statuses.
//!
//! May call: `config` only (the repository's `Gate`). Everything else may call this.

pub mod gate;
pub mod state;
