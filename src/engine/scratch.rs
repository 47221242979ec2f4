//! The scratch space: tables derived from a tenant's data by a checked `SELECT`, for clients
//! that pre-aggregate (Mosaic's crossfilters write `"mosaic"."preagg_…"` tables and read them
//! back), without touching the tenant's own data.
//!
//! The space is an in-memory DuckDB database attached to the tenant's database as the catalog
//! [`SCRATCH_CATALOG`] (`mosaic`, the schema name Mosaic writes to, so that its two-part names
//! resolve to it), on first use. Queries read it like any table; only [`create`] writes it.
//!
//! Invariants:
//! - A derived table's `SELECT` passed every check a query passes (the executor prepared it
//!   as a `SELECT`, ran the parse-tree and table checks, bound its parameters) before
//!   [`create`] runs it as `CREATE TABLE … AS`; nothing else is ever created here.
//! - Names are plain identifiers ([`valid_name`]).
//! - The space knows its tenant only through [`Owner`] (the tenant holds the space).
//! - The space is bounded: past the tenant's `scratch_bytes` (estimated as rows × columns × 8
//!   bytes, what an aggregate's numbers take) a new table is dropped again and refused.
//! - Derived tables never outlive the data they came from: once the tenant's data version
//!   moves, the next query on any connection drops them all ([`refresh`]) before it runs; a
//!   table whose data moved while it was being derived is dropped again ([`admit`]). Results
//!   read from the space are never reused (their stamp is unknown: `engine::stamp`).
//! - A dropped table is derived again, from its own checked `SELECT` on the current data,
//!   before a query whose text names it runs ([`rederive`]): an open dashboard keeps working
//!   after an upload (Mosaic sends its `exec` once, when it loads). Tables made with
//!   parameters, or dropped by a clear, are not.
//! - Only tables this space created are ever dropped, and a name that exists is not derived
//!   again (the same name is the same `SELECT` for Mosaic).
//! - `mosaic` is a reserved tenant name, so the catalog never shadows a tenant's database.

use std::sync::Mutex;

use super::tables::SCRATCH_CATALOG;
use crate::duck::{Connection, DuckError};
use crate::error::GatewayError;
use crate::wire::TenantId;

/// One tenant's scratch space: what it holds, and the lock of its derives.
#[derive(Debug, Default)]
pub struct ScratchSpace {
    state: Mutex<Scratch>,
    /// Held while a dropped derived table is made again ([`rederive`]).
    derives: Mutex<()>,
}

impl ScratchSpace {
    /// Asks for every table to be dropped before the next query runs.
    pub fn clear(&self) {
        self.lock().cleared = true;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Scratch> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What the scratch space needs of the tenant that owns it. The space does not know the
/// tenant's type: the tenant holds a space, and the space cannot import its holder back.
pub trait Owner {
    fn scratch(&self) -> &ScratchSpace;
    /// The tenant's data version now.
    fn data_version(&self) -> u64;
    /// For the logs.
    fn tenant_id(&self) -> &TenantId;
    /// The bytes its derived tables may hold.
    fn scratch_bytes(&self) -> u64;
}

/// What a tenant's scratch space holds.
#[derive(Debug, Default)]
struct Scratch {
    /// The data version the tables were derived at.
    version: u64,
    /// The tables created since.
    tables: Vec<Derived>,
    /// Tables dropped because the data moved on, to be derived again when a query names one.
    stale: Vec<Derived>,
    /// Set by [`ScratchSpace::clear`]: drop every table at the next [`refresh`].
    cleared: bool,
}

/// A derived table: its name and the checked `SELECT` it was made from (`None`: it took
/// parameters, and is not made again).
#[derive(Debug, Clone)]
pub struct Derived {
    pub name: String,
    pub select: Option<String>,
}

/// A derived table's name: `[A-Za-z_][A-Za-z0-9_]{0,62}` (Mosaic's are `preagg_<hex>`).
pub fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b == b'_' || b.is_ascii_alphabetic())
        && name.len() <= 63
        && bytes.all(|b| b == b'_' || b.is_ascii_alphanumeric())
}

fn qualified(name: &str) -> String {
    format!("\"{SCRATCH_CATALOG}\".main.\"{name}\"")
}

/// Drops the derived tables if the tenant's data moved on since they were made (or a clear
/// was asked). Cheap when there are none.
pub fn refresh(conn: &Connection, tenant: &impl Owner) -> Result<(), DuckError> {
    let mut scratch = tenant.scratch().lock();
    let version = tenant.data_version();
    if scratch.cleared {
        scratch.stale.clear();
    }
    if scratch.tables.is_empty() {
        scratch.version = version;
        scratch.cleared = false;
        return Ok(());
    }
    if scratch.version == version && !scratch.cleared {
        return Ok(());
    }
    // A table whose drop failed stays listed (and the version unmoved): the next query tries
    // again, and no query reads it meanwhile as if it were current.
    let mut failed = None;
    let mut dropped = Vec::new();
    scratch.tables.retain(|t| {
        match conn.execute_batch(&format!("DROP TABLE IF EXISTS {}", qualified(&t.name))) {
            Ok(()) => {
                dropped.push(t.clone());
                false
            }
            Err(e) => {
                failed.get_or_insert(e);
                true
            }
        }
    });
    if !scratch.cleared {
        scratch
            .stale
            .extend(dropped.into_iter().filter(|t| t.select.is_some()));
    }
    if let Some(e) = failed {
        return Err(e);
    }
    tracing::debug!(tenant = %tenant.tenant_id(), version, "scratch tables dropped");
    scratch.version = version;
    scratch.cleared = false;
    Ok(())
}

/// Derives again, on the current data, every dropped table whose name `sql` mentions (a
/// mention that is not a read costs a needless derive, never a wrong result). One derive at
/// a time per tenant, so that two queries naming the same table make it once. A derive that
/// fails is logged and not tried again: the query then fails as it would have without it.
/// Blocking: executor threads only, outside a transaction.
pub fn rederive(conn: &Connection, tenant: &impl Owner, sql: &str) {
    let named = |scratch: &Scratch| -> Vec<Derived> {
        scratch
            .stale
            .iter()
            .filter(|t| mentions(sql, &t.name))
            .cloned()
            .collect()
    };
    let space = tenant.scratch();
    if named(&space.lock()).is_empty() {
        return;
    }
    let _one = space.derives.lock().unwrap_or_else(|p| p.into_inner());
    // Another query may have made them meanwhile.
    let wanted = named(&space.lock());
    for table in wanted {
        let Some(select) = table.select.as_deref() else {
            continue;
        };
        space.lock().stale.retain(|t| t.name != table.name);
        let version = tenant.data_version();
        let made = attach(conn)
            .and_then(|()| conn.execute_batch(&create_sql(&table.name, select)))
            .map_err(GatewayError::internal)
            .and_then(|()| admit(conn, tenant, &table, version, tenant.scratch_bytes()));
        match made {
            Ok(()) => {
                tracing::info!(tenant = %tenant.tenant_id(), table = %table.name, version, "derived table made again on the current data")
            }
            Err(e) => {
                tracing::warn!(tenant = %tenant.tenant_id(), table = %table.name, error = %e, "cannot derive a dropped table again")
            }
        }
    }
}

/// Whether `sql` names the identifier `name` (ASCII case-insensitive, not inside a longer
/// identifier).
fn mentions(sql: &str, name: &str) -> bool {
    let (hay, needle) = (sql.as_bytes(), name.as_bytes());
    let ident = |b: u8| b == b'_' || b.is_ascii_alphanumeric();
    hay.windows(needle.len()).enumerate().any(|(i, w)| {
        w.eq_ignore_ascii_case(needle)
            && (i == 0 || !ident(hay[i - 1]))
            && hay.get(i + needle.len()).is_none_or(|&b| !ident(b))
    })
}

/// Whether derived table `name` exists.
pub fn exists(conn: &Connection, name: &str) -> Result<bool, DuckError> {
    let rows = conn.query_rows(&format!(
        "SELECT count(*)::VARCHAR FROM duckdb_tables() \
         WHERE database_name = '{SCRATCH_CATALOG}' AND schema_name = 'main' AND table_name = '{name}'"
    ))?;
    Ok(rows.first().and_then(|r| r.first().cloned().flatten()) != Some("0".into()))
}

/// The SQL that creates derived table `name` from the checked `select`.
pub fn create_sql(name: &str, select: &str) -> String {
    format!("CREATE TABLE IF NOT EXISTS {} AS {select}", qualified(name))
}

/// The SQL that answers a derived table's row count (a derive's result).
pub fn count_sql(name: &str) -> String {
    format!("SELECT count(*) AS \"rows\" FROM {}", qualified(name))
}

/// Attaches the scratch space (once per database) before a derived table is created.
pub fn attach(conn: &Connection) -> Result<(), DuckError> {
    conn.execute_batch(&format!(
        "ATTACH IF NOT EXISTS ':memory:' AS \"{SCRATCH_CATALOG}\""
    ))
}

/// Records the table just created from the data at `version`, or drops it again when the
/// data moved on meanwhile or the space is over `max_bytes`.
pub fn admit(
    conn: &Connection,
    tenant: &impl Owner,
    table: &Derived,
    version: u64,
    max_bytes: u64,
) -> Result<(), GatewayError> {
    let name = table.name.as_str();
    let used = conn
        .query_rows(&format!(
            "SELECT coalesce(sum(estimated_size * column_count * 8), 0)::BIGINT::VARCHAR \
             FROM duckdb_tables() WHERE database_name = '{SCRATCH_CATALOG}'"
        ))
        .map_err(GatewayError::internal)?
        .first()
        .and_then(|row| row.first().cloned().flatten())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let mut scratch = tenant.scratch().lock();
    if scratch.version != version || tenant.data_version() != version {
        let _ = conn.execute_batch(&format!("DROP TABLE IF EXISTS {}", qualified(name)));
        return Err(GatewayError::QueryFailed(
            "the tenant's data changed while the table was derived: derive it again".into(),
        ));
    }
    if used > max_bytes {
        let _ = conn.execute_batch(&format!("DROP TABLE IF EXISTS {}", qualified(name)));
        return Err(GatewayError::LimitExceeded(format!(
            "the scratch space for derived tables is full ({used} of {max_bytes} bytes): \
             query the tables themselves"
        )));
    }
    if !scratch.tables.iter().any(|t| t.name == name) {
        scratch.tables.push(table.clone());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_identifiers() {
        assert!(valid_name("preagg_6236fb2e"));
        assert!(valid_name("_x1"));
        assert!(!valid_name(""));
        assert!(!valid_name("1abc"));
        assert!(!valid_name("a\"b"));
        assert!(!valid_name("a.b"));
        assert!(!valid_name(&"a".repeat(64)));
    }

    #[test]
    fn a_query_names_a_table_only_as_a_whole_identifier() {
        assert!(mentions(
            r#"SELECT * FROM "mosaic"."preagg_ab12""#,
            "preagg_ab12"
        ));
        assert!(mentions("select n from MOSAIC.PREAGG_AB12", "preagg_ab12"));
        assert!(mentions("preagg_ab12", "preagg_ab12"));
        assert!(!mentions(
            "SELECT * FROM mosaic.preagg_ab123",
            "preagg_ab12"
        ));
        assert!(!mentions("SELECT * FROM xpreagg_ab12", "preagg_ab12"));
        assert!(!mentions("SELECT 1", "preagg_ab12"));
    }
}
