//! What several replicas on one PostgreSQL database need from it, beyond the write lock every
//! write takes ([`super::WRITE_LOCK`]): news of the others' writes, and one replica at a time to
//! run the background work.
//!
//! - **News.** Every write transaction sends `NOTIFY sluice_writes` (delivered at its commit, to
//!   every listening session). Each server runs a listener on a connection of its own
//!   ([`Db::listen_to_other_replicas`]): on a notification, and once a second in case one was
//!   missed while it reconnected, it reads the new change-log rows into this process's feed (so a
//!   document another replica's write made stale is rendered again before it is served) and wakes
//!   [`super::changes::ChangeFeed::writes`] (runners waiting for a job, the webhook sender).
//! - **One at a time.** Git polling, the lost-runner reaper and webhook deliveries run where
//!   [`Db::try_lead`] holds a session-level advisory lock. The lock lives as long as the holder's
//!   connection: when that replica dies, PostgreSQL ends its session and another replica's next
//!   try takes the lock over.
//!
//! On SQLite one process owns the file: nothing to listen to, and it always leads.

use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;

use super::{Db, Result};

/// The channel every write transaction notifies.
pub const WRITES_CHANNEL: &str = "sluice_writes";

/// The advisory lock of the replica that runs the background work (`sluice-bg` in ASCII).
const LEADER_LOCK: i64 = 0x0073_6c75_692d_6267;

/// How often the listener reads the log without a notification, and reconnects after a failure.
const LISTEN_FALLBACK: Duration = Duration::from_secs(1);

/// This replica's hold on the background work: the connection whose session holds the lock
/// (PostgreSQL), or nothing to hold (SQLite). Dropping it lets another replica take over.
pub struct Leadership {
    session: Option<postgres::Client>,
}

impl Leadership {
    /// Whether the lock is still held: the holding session still answers (a database restart or
    /// a lost connection ends it, and with it the lock).
    pub fn held(&mut self) -> bool {
        match &mut self.session {
            None => true,
            Some(client) => client.simple_query("SELECT 1").is_ok(),
        }
    }
}

impl Db {
    /// Takes the lead of the background work if no other replica has it.
    pub fn try_lead(&self) -> Result<Option<Leadership>> {
        let Some(config) = &self.pg else { return Ok(Some(Leadership { session: None })) };
        let mut client = config.connect(postgres::NoTls)?;
        let got: bool = client.query_one("SELECT pg_try_advisory_lock($1)", &[&LEADER_LOCK])?.get(0);
        Ok(got.then_some(Leadership { session: Some(client) }))
    }

    /// Starts the thread that hears the other replicas' writes (see the module comment).
    /// Nothing on SQLite.
    pub fn listen_to_other_replicas(&self) {
        let Some(config) = self.pg.clone() else { return };
        let db = self.clone();
        let spawned = std::thread::Builder::new().name("sluice-listen".into()).spawn(move || loop {
            match listen(&db, &config) {
                Ok(()) => {}
                Err(e) => tracing::warn!(error = %e, "listening to the other replicas' writes; reconnecting"),
            }
            db.heard_writes();
            std::thread::sleep(LISTEN_FALLBACK);
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start the listener for other replicas' writes");
        }
    }

    /// After another replica may have written: its changes into the feed, its waiters woken.
    fn heard_writes(&self) {
        self.read(|c| {
            self.observe_changes(c);
            Ok(())
        })
        .unwrap_or_else(|e| tracing::warn!(error = %e, "reading the change log after another replica's write"));
        self.feed.writes.notify_waiters();
    }
}

/// Listens until the connection fails.
fn listen(db: &Db, config: &postgres::Config) -> std::result::Result<(), postgres::Error> {
    let mut client = config.connect(postgres::NoTls)?;
    client.batch_execute(&format!("LISTEN {WRITES_CHANNEL}"))?;
    // Writes made before the LISTEN took effect are read now.
    db.heard_writes();
    loop {
        {
            let mut notifications = client.notifications();
            // Nothing for a second still reads the log (a notification lost while reconnecting).
            notifications.timeout_iter(LISTEN_FALLBACK).next()?;
            // Several writes in a row are one read of the log.
            let mut pending = notifications.iter();
            while pending.next()?.is_some() {}
        }
        db.heard_writes();
        // The connection still answers (a quiet one could have died without an error).
        client.simple_query("SELECT 1")?;
    }
}
