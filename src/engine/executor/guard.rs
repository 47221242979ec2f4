//! The guards a run holds on its connection: the read-only transaction the client's statements
//! run in ([`ReadOnly`]), and the interrupt handle's attachment to the query ([`Detach`]).
//!
//! Invariants:
//! - Nothing a query runs can write: its statements run inside `BEGIN TRANSACTION READ ONLY`,
//!   whatever DuckDB's statement type says (`EXPLAIN ANALYZE DELETE …` would run the DELETE).
//!   Only a derive writes, between two such transactions, into the scratch space.
//! - Declared in this order (transaction, then attachment) on the run's stack, they drop in
//!   reverse: the handle is detached before the rollback, so no late interrupt can stop the
//!   rollback, and both end before the connection returns to the pool.

use crate::duck::{Connection, DuckError};
use crate::engine::control::QueryControl;

/// The client's statements run in a read-only transaction, rolled back when this is dropped.
pub(super) struct ReadOnly<'c>(&'c Connection);

impl<'c> ReadOnly<'c> {
    pub const BEGIN: &'static str = "BEGIN TRANSACTION READ ONLY";
    pub const ROLLBACK: &'static str = "ROLLBACK";

    /// Both statements are kept prepared on the connection: parsing and planning them again
    /// cost a quarter of a millisecond of every query's first byte.
    pub fn begin(conn: &'c Connection) -> Result<Self, DuckError> {
        if conn.execute_cached(Self::BEGIN).is_err() {
            // A transaction left open (a rollback that failed): end it, then begin again.
            let _ = conn.execute_cached(Self::ROLLBACK);
            conn.execute_cached(Self::BEGIN)?;
        }
        Ok(Self(conn))
    }
}

impl Drop for ReadOnly<'_> {
    fn drop(&mut self) {
        // Fails when no transaction is open (a derive between its two halves); tried twice,
        // and `begin` ends a transaction a pooled connection still holds.
        if self.0.execute_cached(Self::ROLLBACK).is_err() {
            let _ = self.0.execute_cached(Self::ROLLBACK);
        }
    }
}

/// Detaches the interrupt handle when dropped.
pub(super) struct Detach<'a>(pub &'a QueryControl);

impl Drop for Detach<'_> {
    fn drop(&mut self) {
        self.0.detach();
    }
}
