//! [`Upkeep`]: how many writes one tenant has had since its storage's last upkeep
//! ([`super::maintenance`] decides when that is due).
//!
//! Invariants:
//! - Counting a write is one atomic add (every write and every change heard counts one).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One tenant's writes since its last upkeep.
#[derive(Debug)]
pub struct Upkeep {
    writes: AtomicU64,
    last: Mutex<Instant>,
}

impl Default for Upkeep {
    fn default() -> Self {
        Self {
            writes: AtomicU64::new(0),
            last: Mutex::new(Instant::now()),
        }
    }
}

impl Upkeep {
    /// A write landed (this process's, or another replica's heard through the store).
    pub fn wrote(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether upkeep is due: `after_writes` writes, or any write and `interval` passed.
    pub fn due(&self, after_writes: u64, interval: Duration) -> bool {
        let writes = self.writes.load(Ordering::Relaxed);
        let since = self
            .last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed();
        writes >= after_writes.max(1) || (writes > 0 && since >= interval)
    }

    /// Upkeep ran (or another replica's did): count from zero again.
    pub fn done(&self) {
        self.writes.store(0, Ordering::Relaxed);
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upkeep_is_due_after_enough_writes_or_after_the_interval() {
        let u = Upkeep::default();
        assert!(!u.due(3, Duration::ZERO), "no write: nothing to do");
        u.wrote();
        assert!(!u.due(3, Duration::from_secs(3600)));
        assert!(u.due(3, Duration::ZERO), "a write and the interval passed");
        u.wrote();
        u.wrote();
        assert!(u.due(3, Duration::from_secs(3600)), "three writes");
        u.done();
        assert!(!u.due(3, Duration::ZERO));
    }
}
