//! Moving a tenant between a local DuckDB file and its lake (`duckstream lake import|export`).
//!
//! Invariants:
//! - An import is one lake transaction: readers of the lake see no table of it until every
//!   table is in, and a failure (or a kill) leaves the lake as it was.
//! - The source is attached read-only: an import never changes the local file, so the
//!   tenant can be moved back (or the import retried) from it.
//! - An export writes a new file only: it refuses a path that exists.
//! - ENUM columns arrive in the lake as VARCHAR (DuckLake has no user-defined types); every
//!   other type as it is.

use std::path::Path;

use super::{literal, LakeStore};
use crate::duck::{Connection, DuckError};
use crate::error::GatewayError;
use crate::wire::TenantId;

/// The alias the other side is attached under.
const OTHER: &str = "duckstream_other";

/// Every user table of catalog `catalog` as (schema, table).
fn tables(conn: &Connection, catalog: &str) -> Result<Vec<(String, String)>, DuckError> {
    let rows = conn.query_rows(&format!(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = {} \
         AND NOT internal AND NOT temporary ORDER BY 1, 2",
        literal(catalog)
    ))?;
    Ok(rows
        .into_iter()
        .filter_map(|r| Some((r.first()?.clone()?, r.get(1)?.clone()?)))
        .collect())
}

/// `*`, with every ENUM column of the table as its text: DuckLake has no ENUM (nor any
/// user-defined type), so a local tenant's ENUM columns arrive as VARCHAR.
fn star_for_lake(
    conn: &Connection,
    catalog: &str,
    schema: &str,
    table: &str,
) -> Result<String, DuckError> {
    let enums = conn.query_rows(&format!(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = {} AND schema_name = {} \
         AND table_name = {} AND data_type LIKE 'ENUM(%' ORDER BY column_index",
        literal(catalog),
        literal(schema),
        literal(table)
    ))?;
    let casts: Vec<String> = enums
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .map(|c| format!("{0}::VARCHAR AS {0}", super::catalog::ident(&c)))
        .collect();
    Ok(if casts.is_empty() {
        "*".to_string()
    } else {
        format!("* REPLACE ({})", casts.join(", "))
    })
}

/// Copies every table of catalog `from` into catalog `to`, inside the caller's transaction.
fn copy_tables(conn: &Connection, from: &str, to: &str) -> Result<usize, DuckError> {
    let q = super::catalog::ident;
    let found = tables(conn, from)?;
    for (schema, table) in &found {
        let star = star_for_lake(conn, from, schema, table)?;
        conn.execute_batch(&format!(
            "CREATE SCHEMA IF NOT EXISTS {}.{}; \
             CREATE OR REPLACE TABLE {}.{}.{} AS SELECT {star} FROM {}.{}.{};",
            q(to),
            q(schema),
            q(to),
            q(schema),
            q(table),
            q(from),
            q(schema),
            q(table)
        ))?;
    }
    Ok(found.len())
}

impl LakeStore {
    /// Copies the local database `file` into the tenant's lake (created if missing), in one
    /// transaction. Answers the tables copied and the lake's new snapshot. Blocking.
    pub fn import_file(&self, id: &TenantId, file: &Path) -> Result<(usize, u64), GatewayError> {
        if !file.is_file() {
            return Err(GatewayError::TenantNotFound(id.to_string()));
        }
        let lake = id.as_str().to_string();
        let versions = Self::versions(id);
        let out = self.with_lake(id, |conn| {
            conn.execute_batch(&format!(
                "ATTACH {} AS {OTHER} (READ_ONLY); BEGIN TRANSACTION;",
                literal(&file.display().to_string())
            ))?;
            let copied = copy_tables(conn, OTHER, &lake);
            match copied {
                Ok(n) => {
                    conn.execute_batch("COMMIT")?;
                    let snapshot = super::snapshot(conn, &versions.read)?;
                    Ok((n, snapshot))
                }
                Err(e) => {
                    let _ = conn.execute_batch("ROLLBACK");
                    Err(e)
                }
            }
        })?;
        self.install(id)?;
        Ok(out)
    }

    /// Copies the tenant's lake into the new local database `file`. Answers the tables
    /// copied. Blocking.
    pub fn export_file(&self, id: &TenantId, file: &Path) -> Result<usize, GatewayError> {
        if file.exists() {
            return Err(GatewayError::TenantExists(file.display().to_string()));
        }
        let name = id.clone();
        if !self
            .catalog
            .block(move |c| async move { c.exists(&name).await })?
        {
            return Err(GatewayError::TenantNotFound(id.to_string()));
        }
        let lake = id.as_str().to_string();
        self.with_lake(id, |conn| {
            conn.execute_batch(&format!(
                "ATTACH {} AS {OTHER}; BEGIN TRANSACTION;",
                literal(&file.display().to_string())
            ))?;
            let n = copy_tables(conn, &lake, OTHER)?;
            conn.execute_batch(&format!("COMMIT; DETACH {OTHER};"))?;
            Ok(n)
        })
    }
}
