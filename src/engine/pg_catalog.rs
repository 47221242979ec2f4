//! The PostgreSQL catalog: the `ds_pg` macros of `pg_catalog.sql` (beside this file), which
//! answer `pg_catalog`, `information_schema` and PostgreSQL's catalog functions as clients
//! read them (psql's `\d`, SQLAlchemy's inspection, Grafana's query builder), for the tenant's
//! own tables only. The PostgreSQL endpoint's rewrite ([`crate::wire::pg_catalog`]) turns a
//! client's `pg_catalog.pg_class` into `ds_pg.pg_class(<scope>)`; this module loads the macros
//! those calls need.
//!
//! Invariants:
//! - Loaded into a database the first time a statement names `ds_pg`, once per opened
//!   database ([`Loaded`]), before the statement's read-only transaction begins. Loading is
//!   ~200 ms of `CREATE MACRO`: a tenant no PostgreSQL client asks about never pays it, and a
//!   tenant's first query stays fast.
//! - `ds_pg` is an in-memory catalog of macros only: attaching it is not external access (it
//!   loads after the sandbox), it holds no data, and no macro reads a setting, a path or a
//!   file. What a table-limited token may call in it is `super::tables`' to say; every
//!   function a macro calls shows in the bound plan, which the allowlist checks.
//! - Loading is idempotent (`ATTACH IF NOT EXISTS`, `CREATE OR REPLACE`): a load that failed
//!   halfway is tried again by the next statement.

use std::sync::Mutex;

use simd_json::prelude::*;
use simd_json::BorrowedValue;

use crate::duck::{Connection, DuckError};
use crate::wire::pg_catalog::CATALOG;

/// The macros (`ATTACH IF NOT EXISTS ':memory:' AS ds_pg; CREATE OR REPLACE MACRO …`).
const SQL: &str = include_str!("pg_catalog.sql");

/// Whether one opened database has the catalog loaded (a reopened database starts without).
#[derive(Debug, Default)]
pub struct Loaded(Mutex<bool>);

/// Loads the catalog into `conn`'s database if `sql` names it and it is not loaded yet.
/// Blocking (DuckDB work): executor threads only. A second statement that needs it waits
/// for the first one's load rather than loading it twice.
pub fn load_for(conn: &Connection, loaded: &Loaded, sql: &str) -> Result<(), DuckError> {
    if !names_catalog(sql) {
        return Ok(());
    }
    let mut done = loaded.0.lock().unwrap_or_else(|p| p.into_inner());
    if !*done {
        conn.execute_batch(SQL)?;
        *done = true;
    }
    Ok(())
}

/// Whether the text names the catalog anywhere (in a string too: a false positive only loads
/// the catalog early).
fn names_catalog(sql: &str) -> bool {
    sql.as_bytes()
        .windows(CATALOG.len())
        .any(|w| w.eq_ignore_ascii_case(CATALOG.as_bytes()))
}

/// Whether a parse tree's function node calls into the catalog (`ds_pg.f` or `ds_pg.main.f`).
pub fn is_catalog_call(node: &BorrowedValue<'_>) -> bool {
    ["schema", "catalog"].iter().any(|key| {
        node.get(*key)
            .and_then(|s| s.as_str())
            .is_some_and(|s| s.eq_ignore_ascii_case(CATALOG))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_text_naming_the_catalog_loads_it() {
        assert!(names_catalog("SELECT * FROM DS_PG.pg_class(NULL)"));
        assert!(!names_catalog("SELECT * FROM pg_class"));
        assert!(!names_catalog(""));
    }
}
