//! The extended protocol's state: parsed statements and bound portals, by name; and the
//! cursors (`DECLARE`) of either protocol.
//!
//! Invariant: a portal owns its started result ([`Rows`]); dropping the portal cancels its
//! query.

use std::collections::HashMap;
use std::sync::Arc;

use super::rows::Result as Rows;
use crate::wire::{Param, PgColumns};

/// A parsed statement: its text and the parameter types the client gave (0: unspecified).
pub struct Prepared {
    pub sql: String,
    pub param_oids: Vec<u32>,
}

/// A bound statement, and its result once started.
pub struct Portal {
    pub statement: Arc<Prepared>,
    pub params: Vec<Param>,
    pub formats: PgColumns,
    pub rows: Option<Rows>,
    /// Its last `Execute` completed it (a new `Execute` answers an empty completion).
    pub done: bool,
}

/// The connection's statements and portals.
#[derive(Default)]
pub struct Extended {
    pub statements: HashMap<String, Arc<Prepared>>,
    pub portals: HashMap<String, Portal>,
}

/// A cursor (`DECLARE`): its query, and its result once a `FETCH` or a `Describe` opened it.
/// It opens lazily because a `FETCH` (its `Bind`) decides the rows' formats, not `DECLARE`.
pub struct Cursor {
    pub query: String,
    /// `DECLARE … BINARY`: rows in binary whatever a `FETCH` asks.
    pub binary: bool,
    /// The running result and the formats it was started in.
    pub open: Option<(Rows, PgColumns)>,
    /// Rows have left: the result can no longer start again in other formats.
    pub fetched: bool,
}
