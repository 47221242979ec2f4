//! `CancelRequest`: psql's Ctrl-C and every driver's cancel arrive on a new connection that
//! names a backend (its process id and secret key, from `BackendKeyData`). The registry finds
//! that connection's running query and cancels it, as a WebSocket `cancel` does.
//!
//! Invariants:
//! - A request cancels only with the right secret, compared in constant time; nothing is ever
//!   answered on the cancelling connection (the protocol says so), so a wrong key learns
//!   nothing.
//! - An entry lives as long as its connection: [`Registry::remove`] when it closes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use pgwire::messages::startup::SecretKey;
use tokio_util::sync::CancellationToken;

/// What a connection lets a `CancelRequest` reach: the token of its running query.
#[derive(Default)]
pub struct Running(Mutex<Option<CancellationToken>>);

impl Running {
    /// The query that runs from now on; cancelling the returned token cancels it.
    pub fn begin(&self) -> CancellationToken {
        let token = CancellationToken::new();
        *self.lock() = Some(token.clone());
        token
    }

    /// `token`'s query runs (again: a portal or cursor resumed).
    pub fn set(&self, token: CancellationToken) {
        *self.lock() = Some(token);
    }

    /// No query runs any more.
    pub fn end(&self) {
        *self.lock() = None;
    }

    fn cancel(&self) {
        if let Some(token) = self.lock().as_ref() {
            token.cancel();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<CancellationToken>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Backends by process id.
#[derive(Default)]
pub struct Registry(Mutex<HashMap<i32, (SecretKey, Weak<Running>)>>);

impl Registry {
    /// Registers a connection's backend key.
    pub fn insert(&self, pid: i32, secret: SecretKey, running: &Arc<Running>) {
        self.lock().insert(pid, (secret, Arc::downgrade(running)));
    }

    pub fn remove(&self, pid: i32) {
        self.lock().remove(&pid);
    }

    /// Cancels the running query of backend `pid` when `secret` is its key.
    pub fn cancel(&self, pid: i32, secret: &SecretKey) -> bool {
        let running = match self.lock().get(&pid) {
            Some((key, running)) if same_key(key, secret) => running.upgrade(),
            _ => None,
        };
        running.map(|r| r.cancel()).is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i32, (SecretKey, Weak<Running>)>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Whether two keys are equal, in time independent of where they differ.
fn same_key(a: &SecretKey, b: &SecretKey) -> bool {
    let bytes = |k: &SecretKey| match k {
        SecretKey::I32(v) => v.to_be_bytes().to_vec(),
        SecretKey::Bytes(b) => b.to_vec(),
    };
    let (a, b) = (bytes(a), bytes(b));
    a.len() == b.len() && a.iter().zip(&b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_right_key_cancels() {
        let registry = Registry::default();
        let running = Arc::new(Running::default());
        registry.insert(7, SecretKey::I32(42), &running);
        let token = running.begin();
        assert!(!registry.cancel(7, &SecretKey::I32(41)));
        assert!(!registry.cancel(8, &SecretKey::I32(42)));
        assert!(!token.is_cancelled());
        assert!(registry.cancel(7, &SecretKey::I32(42)));
        assert!(token.is_cancelled());
        registry.remove(7);
        assert!(!registry.cancel(7, &SecretKey::I32(42)));
    }
}
