//! A derive: the checked `SELECT` of a [`QuerySpec::derive`](crate::engine::QuerySpec) made a
//! table of the tenant's scratch space, the stream then being its row count.
//!
//! Invariants:
//! - The write runs between the query's two read-only transactions ([`ReadOnly`]): the checks
//!   ran in the first, the count runs in the second, and nothing else writes.
//! - A derived table is kept only within the tenant's scratch budget and only if the data did
//!   not move while it was made ([`scratch::admit`]).
//! - The same name is the same `SELECT` (Mosaic's contract): an existing table is not made
//!   again.

use super::checks::bind_params;
use super::errors::{Ended, Failures};
use super::guard::ReadOnly;
use crate::duck::{Connection, Prepared};
use crate::engine::scratch;
use crate::engine::tenant::Tenant;
use crate::error::GatewayError;
use crate::wire::QueryRequest;

/// Creates derived table `name` from `request`'s checked SELECT (and its parameters), within
/// the tenant's scratch budget, and returns the statement that counts its rows.
pub(super) fn derive<'c>(
    conn: &'c Connection,
    tenant: &Tenant,
    request: &QueryRequest,
    failures: &Failures<'_>,
    name: &str,
) -> Result<Prepared<'c>, Ended> {
    let internal = |e| Ended::Failed(GatewayError::internal(e));
    conn.execute_cached(ReadOnly::ROLLBACK).map_err(internal)?;
    let made = derive_table(conn, tenant, request, failures, name);
    conn.execute_cached(ReadOnly::BEGIN).map_err(internal)?;
    made?;
    conn.prepare(&scratch::count_sql(name))
        .map_err(|e| Ended::Failed(GatewayError::internal(e)))
}

/// The write of [`derive`]: the table, unless it exists already, kept only if the space has
/// room and the data did not move meanwhile.
fn derive_table(
    conn: &Connection,
    tenant: &Tenant,
    request: &QueryRequest,
    failures: &Failures<'_>,
    name: &str,
) -> Result<(), Ended> {
    if !scratch::valid_name(name) {
        return Err(Ended::Failed(GatewayError::Forbidden(format!(
            "`{name}` is not a plain table name"
        ))));
    }
    scratch::attach(conn).map_err(|e| Ended::Failed(GatewayError::internal(e)))?;
    if scratch::exists(conn, name).map_err(|e| Ended::Failed(GatewayError::internal(e)))? {
        return Ok(());
    }
    let version = tenant.data_version();
    let mut create = conn
        .prepare(&scratch::create_sql(name, &request.sql))
        .map_err(|e| Ended::Failed(failures.sql_error(e)))?;
    bind_params(&mut create, request).map_err(Ended::Failed)?;
    {
        let mut result = create
            .execute_streaming()
            .map_err(|e| failures.execution_error(e))?;
        while result
            .next_chunk()
            .map_err(|e| failures.execution_error(e))?
            .is_some()
        {}
    }
    drop(create);
    // Made again from the same SELECT after a data change, unless it took parameters.
    let table = scratch::Derived {
        name: name.to_string(),
        select: request.params.is_empty().then(|| request.sql.clone()),
    };
    scratch::admit(conn, tenant, &table, version, tenant.limits.scratch_bytes)
        .map_err(Ended::Failed)
}
