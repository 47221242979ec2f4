//! [`DataVersion`]: what this process knows of one tenant's data version, fed by its store
//! ([`super::Recorded`] when the tenant is loaded, then every write the gateway makes).
//!
//! Invariants:
//! - A table's written version is recorded before the data version that includes it is
//!   published: a reader that sees the new version also sees the table stale.
//! - Reading the version is one atomic load (every query reads it at admission).
//! - A table with no recorded write counts as written at the version this process first saw
//!   (a result is never taken for newer than the data it read).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tokio::sync::watch;

use super::Recorded;

/// One tenant's data version and the version each table was last written at.
#[derive(Debug)]
pub struct DataVersion {
    /// The data version now.
    now: AtomicU64,
    /// The data version when this process first saw the tenant: a table with no recorded
    /// write counts as written then.
    opened_at: u64,
    /// For each table written (lower-case `schema.table`), the data version that write
    /// produced. A result computed at version `v` is current while every table it reads is at
    /// most `v` here.
    written: Mutex<HashMap<String, u64>>,
    /// Every table counts as written at this version at least (a change whose tables are
    /// unknown).
    floor: AtomicU64,
    /// The data version, for those who wait for a write (live subscriptions).
    changes: watch::Sender<u64>,
}

impl DataVersion {
    pub fn new(recorded: Recorded) -> Self {
        Self {
            now: recorded.version.into(),
            opened_at: recorded.version,
            written: Mutex::new(recorded.written),
            floor: AtomicU64::new(0),
            changes: watch::Sender::new(recorded.version),
        }
    }

    /// The data version now.
    pub fn get(&self) -> u64 {
        self.now.load(Ordering::Acquire)
    }

    /// Makes `version` the data version (unless a later one is already: versions heard from
    /// other replicas may arrive out of order) and wakes whoever waits for a write.
    pub fn publish(&self, version: u64) {
        let before = self.now.fetch_max(version, Ordering::AcqRel);
        if version > before {
            self.changes.send_replace(version);
        }
    }

    /// A watch that changes with every published version.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Records that a write to `table` (lower-case `schema.table`) produced `version` (a
    /// table's version never goes back).
    pub fn mark_written(&self, table: String, version: u64) {
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        let at = written.entry(table).or_insert(version);
        *at = (*at).max(version);
    }

    /// Records that `version` changed what cannot be told apart: every table counts as
    /// written at `version` at least.
    pub fn mark_all_written(&self, version: u64) {
        self.floor.fetch_max(version, Ordering::AcqRel);
    }

    /// The newest data version that changed one of `tables` (0 for none).
    pub fn tables_version(&self, tables: &[String]) -> u64 {
        let written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        let floor = self.floor.load(Ordering::Acquire);
        tables
            .iter()
            .map(|t| written.get(t).copied().unwrap_or(self.opened_at).max(floor))
            .max()
            .unwrap_or(0)
    }
}
