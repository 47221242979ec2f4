//! The extended protocol's state: parsed statements and bound portals, by name.
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
