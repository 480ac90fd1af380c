//! Which replica runs the work only one may run at a time: git polling, the lost-runner reaper
//! and webhook deliveries. The database decides ([`crate::store::db::replicas`]): the replica
//! holding its advisory lock leads; the others try again every few seconds, so when the leader
//! dies (its session ends, and the lock with it) another takes over within that time. On SQLite
//! the one process always leads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::store::db::replicas::Leadership;

use super::App;

/// How often a follower tries to take the lead, and the leader checks it still holds it.
const TRY_EVERY: Duration = Duration::from_secs(2);

#[derive(Default)]
pub struct Lead {
    leading: AtomicBool,
    /// The lock's session while this replica leads.
    held: Mutex<Option<Leadership>>,
}

impl Lead {
    /// Whether this replica runs the one-at-a-time work now.
    pub fn is_leading(&self) -> bool {
        self.leading.load(Ordering::Acquire)
    }

    /// Takes or checks the lead once; returns whether this replica leads. Blocking (it talks to
    /// the database on a connection of its own).
    fn step(&self, app: &App) -> bool {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(lead) = held.as_mut() {
            if !lead.held() {
                tracing::warn!("this replica lost the lead of the background work (its database session ended)");
                *held = None;
            }
        }
        if held.is_none() {
            match app.db.try_lead() {
                Ok(Some(lead)) => {
                    tracing::info!("this replica leads the background work: git polling, the lost-runner reaper, webhook deliveries");
                    *held = Some(lead);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "could not ask the database for the lead"),
            }
        }
        let leading = held.is_some();
        self.leading.store(leading, Ordering::Release);
        leading
    }
}

/// Keeps this replica's lead (or its bid for it) current, for as long as the server runs.
pub async fn keep_leading(app: Arc<App>) {
    loop {
        let a = app.clone();
        let _ = tokio::task::spawn_blocking(move || a.lead.step(&a)).await;
        tokio::time::sleep(TRY_EVERY).await;
    }
}

/// Takes the lead once before the background work starts, so a single server leads at once.
pub fn first_step(app: &App) {
    app.lead.step(app);
}
