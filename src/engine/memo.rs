//! [`Memo`]: what a tenant has learned about its statements and its catalog, kept between
//! queries so that a repeated statement skips DuckDB's extra work (a dashboard repeats its
//! queries).
//!
//! Invariants:
//! - What depends on the data is kept with the data version it was found at and used only at
//!   that version: the tables a statement reads and whether it is deterministic depend on the
//!   catalog, which only a write (moving the version) changes.
//! - What is read from the catalog once (volatile functions, the allowlist) is read on an
//!   executor thread; a failed read (an interrupted one, say) is tried again by the next query.
//! - Both caches are bounded ([`READS_KEPT`] statements each).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use super::allowlist::{self, Allowlist};
use crate::duck::{Connection, DuckError};
use crate::wire::TenantId;

/// Statements whose [`Reads`] (and vetted texts) a tenant keeps.
const READS_KEPT: u64 = 1024;

/// What a statement reads, found out at one data version.
#[derive(Debug, Clone)]
pub struct Reads {
    pub version: u64,
    /// The tables it reads (`None`: unknown).
    pub tables: Option<Vec<String>>,
    pub deterministic: bool,
}

/// One tenant's memo.
pub struct Memo {
    /// Functions whose results may change on the same data ([`super::stamp`]), read from the
    /// database once.
    volatile: OnceLock<HashSet<String>>,
    /// What this tenant's statements may call ([`super::allowlist`]), read from the database
    /// once.
    allowlist: OnceLock<Allowlist>,
    /// Held while the allowlist is read (see [`Memo::allowlist`]).
    allowlist_read: Mutex<()>,
    /// What a statement's stamp found out about it (see [`Memo::known_reads`]), by its text.
    reads: moka::sync::Cache<Arc<str>, Reads>,
    /// Texts whose every-client checks passed, with the data version they passed at (see
    /// [`Memo::is_vetted`]).
    vetted: moka::sync::Cache<Arc<str>, u64>,
}

impl Default for Memo {
    fn default() -> Self {
        Self {
            volatile: OnceLock::new(),
            allowlist: OnceLock::new(),
            allowlist_read: Mutex::new(()),
            reads: moka::sync::Cache::new(READS_KEPT),
            vetted: moka::sync::Cache::new(READS_KEPT),
        }
    }
}

impl Memo {
    /// What [`Memo::remember_reads`] kept for `sql` at data version `version`. Finding them
    /// costs DuckDB two more statements (a parse to JSON and an `EXPLAIN`), 1.3 ms of the
    /// scan's 3.9 ms first data.
    pub fn known_reads(&self, sql: &str, version: u64) -> Option<Reads> {
        self.reads.get(sql).filter(|r| r.version == version)
    }

    pub fn remember_reads(&self, sql: &str, reads: Reads) {
        self.reads.insert(Arc::from(sql), reads);
    }

    /// Whether `sql` passed the checks every client's statement gets (the function allowlist
    /// on its tree and plan, lambda nesting) at data version `version`. The tree depends on
    /// the text alone and the plan on the catalog; the checks cost DuckDB a parse and a plan
    /// to JSON.
    pub fn is_vetted(&self, sql: &str, version: u64) -> bool {
        self.vetted.get(sql) == Some(version)
    }

    pub fn remember_vetted(&self, sql: &str, version: u64) {
        self.vetted.insert(Arc::from(sql), version);
    }

    /// The functions whose results may change on the same data (lower case); read from
    /// DuckDB's catalog on `conn` the first time it can be; `None` if it could not be read
    /// now (an interrupted read, say: then this result does not count as deterministic, and
    /// the next statement reads it again). Blocking: executor threads only.
    pub fn volatile_functions(
        &self,
        conn: &Connection,
        tenant: &TenantId,
    ) -> Option<&HashSet<String>> {
        if let Some(read) = self.volatile.get() {
            return Some(read);
        }
        match conn.query_rows(super::stamp::FUNCTIONS_SQL) {
            Ok(rows) => Some(
                self.volatile
                    .get_or_init(|| super::stamp::volatile_functions(rows)),
            ),
            Err(e) => {
                tracing::warn!(tenant = %tenant, error = %e.message, "cannot read DuckDB's function stability: this result will not be reused");
                None
            }
        }
    }

    /// What this tenant's statements may call, read from DuckDB's catalog on `conn` the first
    /// time it can be (a failed read, an interrupted one say, is tried again by the next
    /// query). Blocking: executor threads only.
    pub fn allowlist(&self, conn: &Connection) -> Result<&Allowlist, DuckError> {
        if let Some(list) = self.allowlist.get() {
            return Ok(list);
        }
        // One reader at a time: a burst of a new tenant's first queries would otherwise each
        // scan the catalog (~100 ms apiece) at once.
        let _reading = self
            .allowlist_read
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(list) = self.allowlist.get() {
            return Ok(list);
        }
        let functions = conn.query_rows(allowlist::FUNCTIONS_SQL)?;
        let views = conn.query_rows(allowlist::VIEWS_SQL)?;
        Ok(self
            .allowlist
            .get_or_init(|| Allowlist::from_rows(functions).with_views(views)))
    }
}
