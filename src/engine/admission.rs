//! [`Admission`]: one tenant's slots, the bounds on what it may run and hold open at once
//! (the engine takes them, with its global ones, in `Engine::admit`).
//!
//! Invariants:
//! - `slots` has one permit per pooled connection: a query holds one while it runs, so pool
//!   checkouts never wait and one busy tenant cannot occupy every executor thread.
//! - A waiter holds a `waiting` permit, taken without waiting: when none is left the answer is
//!   `too_busy` at once, so the queue in front of a tenant is bounded.
//! - The permit counts are fixed when the tenant is first seen (its limits are).

use std::sync::Arc;

use tokio::sync::Semaphore;

/// A tenant's query slots, stream slots and waiting places.
#[derive(Debug)]
pub struct Admission {
    /// One permit per pooled connection (`pool_size`).
    pub slots: Arc<Semaphore>,
    /// One permit per open stream or WebSocket (`max_streams`).
    pub streams: Arc<Semaphore>,
    /// Places for queries waiting for a slot (`queue_size`).
    pub waiting: Semaphore,
}

impl Admission {
    pub fn new(pool_size: u32, max_streams: usize, queue_size: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(pool_size as usize)),
            streams: Arc::new(Semaphore::new(max_streams)),
            waiting: Semaphore::new(queue_size),
        }
    }
}
