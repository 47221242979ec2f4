//! A statement described without running it (the PostgreSQL endpoint's `Describe` of a
//! statement): the checks a query gets, then DuckDB prepares it and tells its parameters' and
//! columns' types, which the result's format turns into its own words
//! ([`encode::describe`]).
//!
//! Invariants:
//! - Nothing is described that would not run: the same checks as a query's ([`checks::check`],
//!   with the allowlist and the token's tables, every parameter NULL), the same statement
//!   kinds, in the same read-only transaction, interruptible by the same control.
//! - Nothing executes: DuckDB only parses, binds and plans.
//! - The columns are the ones the run will have: where DuckDB cannot tell them before the
//!   parameters are bound, they are those of the statement with constants in their places
//!   (NULL where DuckDB typed the parameter, else a value of the type the client will bind:
//!   its `hints`, or text).

use super::checks::{self, Statement};
use super::errors::{Ended, Failures};
use super::guard::{Detach, ReadOnly};
use crate::duck::{type_id, Connection, LogicalType, Prepared};
use crate::encode::{self, pg::Description};
use crate::engine::control::QueryControl;
use crate::engine::parse_tree;
use crate::engine::tables::Refusal;
use crate::engine::tenant::Tenant;
use crate::engine::QuerySpec;
use crate::error::GatewayError;
use crate::wire::{Param, QueryRequest};

/// Describes `spec`'s statement on one of its tenant's connections. `spec.request.params` are
/// hints: for a parameter DuckDB cannot type, a value of the type the client will bind
/// (missing or NULL: text).
pub fn describe(
    tenant: &Tenant,
    spec: &QuerySpec,
    control: &QueryControl,
) -> Result<Description, GatewayError> {
    let conn = tenant.connection()?;
    let sql = &spec.request.sql;
    tenant.load_pg_catalog(&conn, sql)?;
    // Declared before the attachment, so rolled back after the handle is detached.
    let _read_only = ReadOnly::begin(&conn).map_err(GatewayError::internal)?;
    if !control.attach(conn.interrupt_handle()) {
        return Err(GatewayError::Cancelled);
    }
    let _detach = Detach(control);
    let failures = Failures {
        control,
        sandbox: tenant,
    };
    let tree = parse_tree::fetch(&conn, sql)
        .map_err(|e| refusal(failures.execution_error(e)))?
        .unwrap_or_default();
    let request = QueryRequest {
        params: vec![Param::Null; parameter_count(&tree)],
        ..spec.request.clone()
    };
    let statement = Statement {
        request: &request,
        tables: spec.tables.as_deref(),
        catalog: tenant.id.as_str(),
        stamp: false,
        failures,
    };
    checks::check(&conn, &statement, Some(|| tenant.allowlist(&conn))).map_err(refusal)?;
    let stmt = prepare(&conn, sql, &statement)?;
    checks::check_kind(stmt.kind(), sql)?;
    let mut params = param_types(&stmt);
    let known = columns(&stmt);
    let columns = if params.iter().all(|t| t.id() != type_id::INVALID) && !unknown(&known) {
        known
    } else {
        drop(stmt);
        let learn = Learn {
            conn: &conn,
            tree: &tree,
            statement: &statement,
        };
        learn.each_alone(&mut params)?;
        learn.columns(&params, &spec.request.params)?
    };
    let options = encode::Options {
        geometry: spec.request.geometry,
    };
    encode::describe(spec.format, &columns, &params, options).map_err(Into::into)
}

/// The parameters the parse tree takes (0 when it has none, or cannot tell: the checks then
/// refuse it with the reason).
fn parameter_count(tree: &str) -> usize {
    let mut bytes = tree.as_bytes().to_vec();
    parse_tree::parse(&mut bytes)
        .ok()
        .and_then(|tree| parse_tree::parameter_count(&tree))
        .unwrap_or(0)
}

/// Prepares `sql`: DuckDB's message for a client that may read it, as a query's would be.
fn prepare<'c>(
    conn: &'c Connection,
    sql: &str,
    statement: &Statement<'_>,
) -> Result<Prepared<'c>, GatewayError> {
    conn.prepare(sql).map_err(|e| match statement.tables {
        // DuckDB's messages name tables and columns: a table-limited token gets none.
        Some(_) => GatewayError::InvalidSql(Refusal::Invalid.message().into()),
        None => statement.failures.sql_error(e),
    })
}

/// The names and types of the prepared statement's columns.
fn columns(stmt: &Prepared<'_>) -> Vec<(String, LogicalType)> {
    (0..stmt.column_count())
        .map(|i| (stmt.column_name(i), stmt.column_type(i)))
        .collect()
}

/// Whether DuckDB left the columns unknown (a parameter it could not type stopped it: one
/// `unknown` column of no type).
fn unknown(columns: &[(String, LogicalType)]) -> bool {
    matches!(columns, [(_, t)] if t.id() == type_id::INVALID)
}

/// The types DuckDB gave the prepared statement's parameters (INVALID: none).
fn param_types(stmt: &Prepared<'_>) -> Vec<LogicalType> {
    (1..=stmt.param_count())
        .map(|i| stmt.param_type(i))
        .collect()
}

/// Learning the types of a statement with a parameter DuckDB could not type. DuckDB then
/// stops binding at that parameter: the others after it are untyped too, and its columns are
/// unknown.
struct Learn<'a> {
    conn: &'a Connection,
    tree: &'a str,
    statement: &'a Statement<'a>,
}

impl Learn<'_> {
    /// Each untyped parameter's type, from the statement with every other parameter NULL.
    fn each_alone(&self, types: &mut [LogicalType]) -> Result<(), GatewayError> {
        let null = Param::Null;
        for i in 0..types.len() {
            if types[i].id() != type_id::INVALID {
                continue;
            }
            let values: Vec<_> = (0..types.len())
                .map(|j| (j != i).then_some(&null))
                .collect();
            let stmt = self.prepare_with(&values)?;
            types[i] = stmt.param_type(i + 1);
        }
        Ok(())
    }

    /// The columns, learned from the statement with a constant in place of each parameter
    /// (DuckDB may leave them unknown even when every parameter is typed: `len($1::INT[])`,
    /// of a function with several overloads): NULL for a typed one (it takes the type its
    /// place needs), and for an untyped one what the client will bind (its hint: a value of
    /// the client's type; else text, as the client's value will be).
    fn columns(
        &self,
        types: &[LogicalType],
        hints: &[Param],
    ) -> Result<Vec<(String, LogicalType)>, GatewayError> {
        let (null, text) = (Param::Null, Param::Text(String::new()));
        let values: Vec<_> = types
            .iter()
            .enumerate()
            .map(|(i, t)| match hints.get(i) {
                _ if t.id() != type_id::INVALID => Some(&null),
                Some(hint) if *hint != Param::Null => Some(hint),
                _ => Some(&text),
            })
            .collect();
        Ok(columns(&self.prepare_with(&values)?))
    }

    /// The statement prepared with `values` in place of its parameters (`None`: stays one).
    fn prepare_with(&self, values: &[Option<&Param>]) -> Result<Prepared<'_>, GatewayError> {
        let failures = self.statement.failures;
        let sql = parse_tree::sql_with_some_values(self.conn, self.tree, values)
            .map_err(|e| refusal(failures.execution_error(e)))?
            .ok_or_else(|| {
                GatewayError::InvalidParams("the statement cannot be described".into())
            })?;
        prepare(self.conn, &sql, self.statement)
    }
}

/// The error a failed check or preparation ends with.
fn refusal(end: Ended) -> GatewayError {
    match end {
        Ended::Rejected(e) | Ended::Failed(e) => e,
        Ended::Complete | Ended::Gone => GatewayError::Cancelled,
    }
}
