//! A result's [`Stamp`], computed before the statement runs: the tables its plan scans and
//! whether it is deterministic (what these mean: [`crate::engine::stamp`]).
//!
//! Invariants:
//! - Computing a stamp never fails the query: whatever DuckDB cannot tell makes the result not
//!   reusable (unknown tables, not deterministic).
//! - DuckDB is asked only what the checks did not already ask ([`Asked`]), and what a text
//!   reads is kept by the tenant per data version, so a repeated query asks nothing.
//! - The stamp's `version` is the data version the query reads (a lake's snapshot), or the one
//!   read when the job was admitted, before DuckDB began: a write during the query can only
//!   make the result look older, never newer.
//! - Its `result_version` is never above `version`, and a replica that has not yet heard of
//!   a write its snapshot holds labels the result with the snapshot: published versions of
//!   one result only grow ([`result_version`]).

use super::checks::{self, Asked};
use crate::duck::Connection;
use crate::engine::parse_tree;
use crate::engine::stamp::{self, Stamp};
use crate::engine::tenant::{Reads, Tenant};
use crate::wire::QueryRequest;

/// What the result of `request`'s statement depends on, at data `version`: DuckDB parses and
/// plans it once more, unless the checks before binding already did (`asked`).
pub(super) fn stamp(
    conn: &Connection,
    tenant: &Tenant,
    request: &QueryRequest,
    version: u64,
    asked: Asked,
) -> Stamp {
    let known = match asked.plan_tables {
        // A table-limited token's own plan: nothing to save.
        Some(_) => None,
        None => tenant.known_reads(&request.sql, version),
    };
    let (tables, deterministic) = match known {
        Some(r) => (r.tables, r.deterministic),
        None => {
            let (tables, deterministic) = reads(conn, tenant, request, asked);
            tenant.remember_reads(
                &request.sql,
                Reads {
                    version,
                    tables: tables.clone(),
                    deterministic,
                },
            );
            (tables, deterministic)
        }
    };
    let result_version = match &tables {
        Some(t) => result_version(tenant, t, version),
        None => version,
    };
    Stamp {
        tables,
        deterministic,
        version,
        result_version,
    }
}

/// The version of a result that reads `tables` at data `version`: the newest write to one of
/// them at or before `version`, so that the same data always shows the same version and a
/// newer one only after a write. What this process knows of the writes after `version` (a
/// write heard between the snapshot and now) is left out by the cap. A snapshot newer than
/// every write this process has heard of (another replica's, not yet heard) may hold writes it
/// cannot name: then the snapshot itself, which no later result of older data can undercut.
fn result_version(tenant: &Tenant, tables: &[String], version: u64) -> u64 {
    // The version first: every table written up to it is marked before it is published.
    let heard = tenant.data_version();
    if version > heard {
        return version;
    }
    tenant.tables_version(tables).min(version)
}

/// The tables `request`'s statement reads and whether it is deterministic, from DuckDB.
fn reads(
    conn: &Connection,
    tenant: &Tenant,
    request: &QueryRequest,
    asked: Asked,
) -> (Option<Vec<String>>, bool) {
    let tree = match asked.tree {
        Some(tree) => Some(tree),
        None => parse_tree::fetch(conn, &request.sql).ok().flatten(),
    };
    let deterministic = match (tenant.volatile_functions(conn), tree) {
        (Some(volatile), Some(tree)) => {
            let mut bytes = tree.into_bytes();
            parse_tree::parse(&mut bytes).is_ok_and(|tree| stamp::is_deterministic(&tree, volatile))
        }
        _ => false,
    };
    let tables = match asked.plan_tables {
        Some(tables) => tables,
        None => checks::explain(conn, request)
            .ok()
            .and_then(checks::scanned_tables),
    };
    (tables, deterministic)
}
