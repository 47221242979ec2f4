//! The checks a statement passes before DuckDB binds it: DuckDB's parse tree (the allowlist,
//! lambda nesting, a token's tables, the parameter count), then its bound plan (the allowlist
//! again, a token's tables through `EXPLAIN`), its statement type, and its parameters' binding.
//!
//! Invariants:
//! - Only a `SELECT` (or `EXPLAIN` of one, checked as the statement it explains) passes: what
//!   DuckDB cannot serialize cannot be checked, and is refused.
//! - A statement the checks did not read whole is refused, never run: a tree or plan that is
//!   too deep or unreadable is a refusal.
//! - A table-limited token never sees DuckDB's own message (it names tables and columns).
//! - The checks read only the connection and the [`Statement`]: no server is needed to test
//!   them, and they run in the query's read-only transaction.

use simd_json::prelude::*;
use simd_json::BorrowedValue;

use super::errors::{Ended, Failures};
use crate::duck::{Connection, DuckError, DuckErrorKind, Prepared, StatementKind};
use crate::engine::allowlist::{Allowlist, Refused};
use crate::engine::parse_tree::{self, TreeError};
use crate::engine::tables::{CatalogUse, Refusal, TableSet};
use crate::error::GatewayError;
use crate::wire::QueryRequest;

/// One statement to check, and what its checks depend on.
pub(super) struct Statement<'a> {
    pub request: &'a QueryRequest,
    /// A table-limited token's tables.
    pub tables: Option<&'a TableSet>,
    /// The tenant's catalog: the one a token's tables are in.
    pub catalog: &'a str,
    /// Whether the result's stamp is wanted: then the checks keep what they asked ([`Asked`]).
    pub stamp: bool,
    pub failures: Failures<'a>,
}

/// What the checks before binding already asked DuckDB: the parse tree's text, the tables of
/// the plan (`Some(None)`: the plan could not tell).
#[derive(Default)]
pub(super) struct Asked {
    pub tree: Option<String>,
    pub plan_tables: Option<Option<Vec<String>>>,
}

/// The checks before DuckDB runs the statement (see [`parse_tree`]): with an `allowlist` (none
/// for a text the tenant already vetted at this data version; read only once the tree is),
/// the allowlist and lambda nesting on the parse tree, then the allowlist on the bound plan;
/// for a table-limited token, its tables (parse tree, then plan). An `EXPLAIN` is checked as
/// the statement it explains.
///
/// Returns what it asked DuckDB, for the stamp (when the statement wants one) to reuse.
pub(super) fn check<'l>(
    conn: &Connection,
    statement: &Statement<'_>,
    allowlist: Option<impl FnOnce() -> Result<&'l Allowlist, DuckError>>,
) -> Result<Asked, Ended> {
    let sql = &statement.request.sql;
    let checked = parse_tree::explained(sql).unwrap_or(sql);
    let tree = parse_tree::fetch(conn, checked)
        .map_err(|e| statement.failures.execution_error(e))?
        .unwrap_or_default();
    let mut asked = Asked {
        tree: statement.stamp.then(|| tree.clone()),
        plan_tables: None,
    };
    let tree_text = tree;
    let mut bytes = tree_text.as_bytes().to_vec();
    let tree = parse_json(&mut bytes)?;
    if tree.get("error").and_then(|e| e.as_bool()) == Some(true) {
        return Err(not_checkable(&tree, statement));
    }
    let allowlist = match allowlist {
        None => None,
        Some(read) => Some(read().map_err(|e| statement.failures.execution_error(e))?),
    };
    if let Some(allowlist) = allowlist {
        check_tree_functions(allowlist, &tree)?;
    }
    let uses = match statement.tables {
        Some(tables) => tables
            .check_parse_tree(&tree, statement.catalog)
            .map_err(table_refusal)?,
        None => CatalogUse::None,
    };
    check_parameter_count(&tree, statement)?;
    if let Some(list) = allowlist.filter(|list| list.needs_plan(&tree)) {
        let planned = match statement.request.params.as_slice() {
            [] => checked.to_string(),
            params => parse_tree::sql_with_values(conn, &tree_text, params)
                .map_err(|e| statement.failures.execution_error(e))?
                .ok_or_else(|| Ended::Failed(GatewayError::Forbidden(UNCHECKABLE.into())))?,
        };
        check_plan_functions(conn, statement, list, &planned)?;
    }
    if let Some(tables) = statement.tables {
        let plans = check_plan_tables(conn, statement, tables, uses)?;
        if statement.stamp {
            asked.plan_tables = Some(scanned_tables(plans));
        }
    }
    Ok(asked)
}

/// Refuses a tree that calls what the allowlist does not allow, or nests lambdas too deep.
fn check_tree_functions(allowlist: &Allowlist, tree: &BorrowedValue<'_>) -> Result<(), Ended> {
    if let Some(refused) = allowlist.refused_in_tree(tree) {
        return Err(refused_function(&refused));
    }
    if parse_tree::lambda_nesting(tree) > parse_tree::MAX_LAMBDA_NESTING {
        return Err(Ended::Failed(GatewayError::Forbidden(format!(
            "lambdas nested more than {} deep are refused: DuckDB binds them in time that \
             doubles with each level",
            parse_tree::MAX_LAMBDA_NESTING
        ))));
    }
    Ok(())
}

/// Refuses what a prepared statement is, unless it is a query or a plain `EXPLAIN`: DuckDB
/// runs what `EXPLAIN ANALYZE` explains, whatever its type.
pub(super) fn check_kind(kind: StatementKind, sql: &str) -> Result<(), GatewayError> {
    match kind {
        StatementKind::Other(kind) => Err(GatewayError::Forbidden(format!(
            "{kind} statements are not allowed: queries are read-only"
        ))),
        StatementKind::Explain if parse_tree::names_analyze(sql) => Err(GatewayError::Forbidden(
            "EXPLAIN ANALYZE runs the statement it explains: use EXPLAIN".into(),
        )),
        StatementKind::Explain | StatementKind::Query => Ok(()),
    }
}

/// Binds the request's parameters, after checking that their number matches.
pub(super) fn bind_params(
    stmt: &mut Prepared<'_>,
    request: &QueryRequest,
) -> Result<(), GatewayError> {
    let expected = stmt.param_count();
    if expected != request.params.len() {
        return Err(GatewayError::InvalidParams(format!(
            "the statement takes {expected} parameter(s) but {} were given",
            request.params.len()
        )));
    }
    for (i, p) in request.params.iter().enumerate() {
        stmt.bind(i + 1, p)
            .map_err(|e| GatewayError::InvalidParams(e.message))?;
    }
    Ok(())
}

/// A refusal by a table check, as the client sees it.
fn table_refusal(refusal: Refusal) -> Ended {
    let message = refusal.message().to_string();
    Ended::Failed(match refusal {
        Refusal::Invalid => GatewayError::InvalidSql(message),
        Refusal::NotAllowed => GatewayError::Forbidden(message),
    })
}

/// What a client is told when a statement cannot be checked (DuckDB serializes only `SELECT`).
const UNCHECKABLE: &str = "only SELECT statements (and EXPLAIN of one) run here: queries are \
     read-only, and this statement cannot be checked";

/// [`UNCHECKABLE`], naming the statement by its first word (`CREATE statements…`).
fn uncheckable(sql: &str) -> String {
    let word: String = sql
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .take(16)
        .collect();
    match word.to_ascii_uppercase().as_str() {
        "" | "SELECT" | "WITH" | "FROM" | "EXPLAIN" => UNCHECKABLE.into(),
        word => format!("{word} statements are not allowed: {UNCHECKABLE}"),
    }
}

/// The refusal of what is not on the allowlist ([`crate::engine::allowlist`]).
fn refused_function(refused: &Refused) -> Ended {
    Ended::Failed(GatewayError::Forbidden(match refused {
        Refused::Function(name) => format!(
            "function `{name}` is not available to queries: only functions that compute on \
             values or read the tenant's own tables are"
        ),
        Refused::Type(name) => format!(
            "values of type `{name}` are not available to queries: DuckDB builds them without \
             a depth limit"
        ),
        Refused::Catalog => "internal catalogs are not available to queries: only the \
            tenant's own tables are"
            .to_string(),
    }))
}

/// The request must give exactly the parameters the statement takes (the plan is made with
/// their values, [`parse_tree::sql_with_values`]); a named parameter cannot be given.
fn check_parameter_count(tree: &BorrowedValue<'_>, statement: &Statement<'_>) -> Result<(), Ended> {
    let given = statement.request.params.len();
    match parse_tree::parameter_count(tree) {
        Some(n) if n == given => Ok(()),
        Some(n) => Err(Ended::Failed(GatewayError::InvalidParams(format!(
            "the statement takes {n} parameter(s) but {given} were given"
        )))),
        None => Err(Ended::Failed(GatewayError::InvalidParams(
            "named parameters ($name) cannot be given: use $1, $2… or ?".into(),
        ))),
    }
}

/// DuckDB's parse tree or plan as JSON, refusing one nested too deep.
fn parse_json(bytes: &mut [u8]) -> Result<BorrowedValue<'_>, Ended> {
    parse_tree::parse(bytes).map_err(|e| match e {
        TreeError::TooDeep => Ended::Failed(GatewayError::Forbidden(format!(
            "the statement nests deeper than {} levels",
            parse_tree::MAX_TREE_DEPTH
        ))),
        TreeError::Unreadable => table_refusal(Refusal::NotAllowed),
    })
}

/// Refuses the statement unless every function of its bound plan is allowed (a view's or a
/// macro's body shows only here).
fn check_plan_functions(
    conn: &Connection,
    statement: &Statement<'_>,
    allowlist: &Allowlist,
    sql: &str,
) -> Result<(), Ended> {
    let plan = parse_tree::fetch_plan(conn, sql)
        .map_err(|e| statement.failures.execution_error(e))?
        .unwrap_or_default();
    let mut bytes = plan.into_bytes();
    let plan = parse_json(&mut bytes)?;
    if plan.get("error").and_then(|e| e.as_bool()) == Some(true) {
        return Err(not_checkable(&plan, statement));
    }
    match allowlist.refused_in_plan(&plan) {
        Some(refused) => Err(refused_function(&refused)),
        None => Ok(()),
    }
}

/// The end of a statement DuckDB would not serialize (its tree or its plan): a mistake in
/// the SQL (syntax, an unknown table or column) is `invalid_sql` with DuckDB's message, as
/// running it would have been; anything else cannot be checked and is refused.
fn not_checkable(answer: &BorrowedValue<'_>, statement: &Statement<'_>) -> Ended {
    let field = |k: &str| answer.get(k).and_then(|v| v.as_str()).unwrap_or_default();
    let (kind, message) = (field("error_type"), field("error_message"));
    let mistake = matches!(
        kind,
        "parser" | "binder" | "catalog" | "conversion" | "invalid input" | "out of range"
    ) && !message.contains("does not support serialization");
    if !mistake {
        return Ended::Failed(GatewayError::Forbidden(uncheckable(&statement.request.sql)));
    }
    // DuckDB's messages name tables and columns: a table-limited token gets none.
    if statement.tables.is_some() {
        return table_refusal(Refusal::Invalid);
    }
    let e = DuckError {
        message: format!("{} Error: {message}", error_title(kind)),
        kind: DuckErrorKind::Other,
    };
    Ended::Failed(statement.failures.sql_error(e))
}

/// DuckDB's name for an error type as its messages begin (`binder` → `Binder`).
fn error_title(kind: &str) -> String {
    kind.split(' ')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why `EXPLAIN` of a statement gave no plan.
pub(super) enum ExplainError {
    /// DuckDB could not plan it.
    Prepare,
    /// Its parameters do not fit.
    Bind(GatewayError),
    /// Planning failed while running.
    Run(DuckError),
}

/// The rows of `EXPLAIN (FORMAT json)` of the request's statement with its parameters: one
/// plan per row (with `explain_output = 'all'`, set for every database, the unoptimized one
/// too, which keeps scans that the optimizer answers from statistics).
pub(super) fn explain(
    conn: &Connection,
    request: &QueryRequest,
) -> Result<Vec<String>, ExplainError> {
    let explain = format!("EXPLAIN (FORMAT json) {}", request.sql);
    let mut stmt = conn.prepare(&explain).map_err(|_| ExplainError::Prepare)?;
    bind_params(&mut stmt, request).map_err(ExplainError::Bind)?;
    let mut result = stmt.execute_streaming().map_err(ExplainError::Run)?;
    let mut plans = Vec::new();
    while let Some(chunk) = result.next_chunk().map_err(ExplainError::Run)? {
        plans.extend((0..chunk.len()).map(|row| chunk.varchar(1, row).unwrap_or_default()));
    }
    Ok(plans)
}

/// Refuses the query unless every table its plan reads is in `tables` (DuckDB plans it once
/// more, [`explain`]); returns the plans when the statement wants a stamp (else none).
fn check_plan_tables(
    conn: &Connection,
    statement: &Statement<'_>,
    tables: &TableSet,
    uses: CatalogUse,
) -> Result<Vec<String>, Ended> {
    // The parse tree names only allowed tables by now, so a statement DuckDB cannot plan is
    // the client's mistake (an unknown column...).
    let plans = explain(conn, statement.request).map_err(|e| match e {
        ExplainError::Prepare => table_refusal(Refusal::Invalid),
        ExplainError::Bind(e) => Ended::Failed(e),
        ExplainError::Run(e) => statement.failures.execution_error(e),
    })?;
    if plans.is_empty() {
        return Err(table_refusal(Refusal::NotAllowed));
    }
    let mut kept = Vec::new();
    for plan in plans {
        if statement.stamp {
            kept.push(plan.clone());
        }
        tables
            .check_plan(&mut plan.into_bytes(), statement.catalog, uses)
            .map_err(table_refusal)?;
    }
    Ok(kept)
}

/// The tables the plans scan, sorted; `None` if a plan cannot tell.
pub(super) fn scanned_tables(plans: Vec<String>) -> Option<Vec<String>> {
    let mut tables = Vec::new();
    for plan in plans {
        if !crate::engine::stamp::plan_tables(&mut plan.into_bytes(), &mut tables) {
            return None;
        }
    }
    tables.sort();
    tables.dedup();
    Some(tables)
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::super::errors::Sandbox;
    use super::*;
    use crate::duck::Database;
    use crate::engine::allowlist;
    use crate::engine::control::QueryControl;
    use crate::wire::Param;

    /// A sandbox with no server paths and no extensions.
    struct Bare;

    impl Sandbox for Bare {
        fn without_paths(&self, message: &str) -> String {
            message.to_string()
        }

        fn server_loads(&self, _: &str) -> bool {
            false
        }
    }

    /// An in-memory database with two tables, its allowlist, and a query's control.
    struct Db {
        conn: Connection,
        allowlist: Allowlist,
        control: Arc<QueryControl>,
    }

    /// What the checks answered: the refusal's code and message, or `None` if the query passed.
    type Answer = Option<(&'static str, String)>;

    fn db() -> Db {
        let conn = Database::open(Path::new(":memory:"))
            .and_then(|db| db.connect())
            .expect("an in-memory database");
        conn.execute_batch(
            "CREATE TABLE people (id INTEGER, name VARCHAR); CREATE TABLE secrets (v VARCHAR); \
             SET explain_output = 'all';",
        )
        .expect("the tables");
        let functions = conn
            .query_rows(allowlist::FUNCTIONS_SQL)
            .expect("functions");
        let views = conn.query_rows(allowlist::VIEWS_SQL).expect("views");
        let interrupts = prometheus::IntCounter::new("interrupts", "interrupts").unwrap();
        Db {
            conn,
            allowlist: Allowlist::from_rows(functions).with_views(views),
            control: QueryControl::new(interrupts),
        }
    }

    fn request(sql: &str, params: Vec<Param>) -> QueryRequest {
        QueryRequest {
            sql: sql.to_string(),
            params,
            chunk_rows: None,
            geometry: Default::default(),
            progress: false,
            format: None,
        }
    }

    impl Db {
        /// The checks of `sql`: with the allowlist unless `vetted`, for a token limited to
        /// `tables` if given.
        fn answer(
            &self,
            request: &QueryRequest,
            tables: Option<&TableSet>,
            vetted: bool,
        ) -> Answer {
            let statement = Statement {
                request,
                tables,
                catalog: "memory",
                stamp: false,
                failures: Failures {
                    control: &self.control,
                    sandbox: &Bare,
                },
            };
            let allowlist = (!vetted).then_some(|| Ok(&self.allowlist));
            match check(&self.conn, &statement, allowlist) {
                Ok(_) => None,
                Err(Ended::Failed(e)) => Some((e.code(), e.client_message())),
                Err(_) => panic!("{}: not a failure", request.sql),
            }
        }

        fn check(&self, sql: &str) -> Answer {
            self.answer(&request(sql, Vec::new()), None, false)
        }
    }

    #[test]
    fn an_allowed_query_passes() {
        let db = db();
        for sql in [
            "SELECT 1 AS x",
            "SELECT id, upper(name) FROM people WHERE id > 1 ORDER BY id",
            "WITH p AS (SELECT * FROM people) SELECT count(*) FROM p",
            "EXPLAIN SELECT * FROM people",
            "SELECT list_transform([1, 2], x -> x + 1)",
        ] {
            assert_eq!(db.check(sql), None, "{sql}");
        }
        let with_one = request("SELECT name FROM people WHERE id = $1", vec![Param::Int(1)]);
        assert_eq!(db.answer(&with_one, None, false), None);
    }

    #[test]
    fn a_function_off_the_allowlist_is_forbidden_and_named() {
        let db = db();
        for (sql, name) in [
            (
                "SELECT current_setting('temp_directory')",
                "current_setting",
            ),
            ("SELECT * FROM read_csv('/etc/passwd')", "read_csv"),
            (
                "select * from READ_CSV_AUTO('/etc/hostname')",
                "read_csv_auto",
            ),
            ("SELECT * FROM duckdb_settings()", "duckdb_settings"),
            ("EXPLAIN SELECT getvariable('x')", "getvariable"),
            ("SELECT * FROM pg_settings", "duckdb_settings"),
        ] {
            let message = format!(
                "function `{name}` is not available to queries: only functions that compute on \
                 values or read the tenant's own tables are"
            );
            assert_eq!(db.check(sql), Some(("forbidden", message)), "{sql}");
        }
        // A text the tenant already vetted skips the allowlist (only a data change resets it).
        let vetted = request("SELECT current_setting('threads')", Vec::new());
        assert_eq!(db.answer(&vetted, None, true), None);
    }

    #[test]
    fn a_statement_that_is_not_a_select_is_forbidden() {
        let db = db();
        let not_allowed = |word: &str| {
            Some((
                "forbidden",
                format!("{word} statements are not allowed: {UNCHECKABLE}"),
            ))
        };
        assert_eq!(db.check("DELETE FROM people"), not_allowed("DELETE"));
        assert_eq!(
            db.check("  InSeRt INTO people SELECT * FROM people"),
            not_allowed("INSERT")
        );
        assert_eq!(
            db.check("CREATE TABLE evil AS SELECT 1 AS x"),
            not_allowed("CREATE")
        );
        assert_eq!(db.check("SET threads = 1"), not_allowed("SET"));
        // The prepared statement's kind is checked too: what EXPLAIN ANALYZE explains runs.
        let kind = |sql: &str| {
            let stmt = db.conn.prepare(sql).expect("prepared");
            check_kind(stmt.kind(), sql).map_err(|e| (e.code(), e.client_message()))
        };
        assert_eq!(kind("SELECT 1"), Ok(()));
        assert_eq!(kind("EXPLAIN SELECT 1"), Ok(()));
        assert_eq!(
            kind("DELETE FROM people"),
            Err((
                "forbidden",
                "DELETE statements are not allowed: queries are read-only".to_string()
            ))
        );
        assert_eq!(
            kind("EXPLAIN ANALYZE SELECT 1"),
            Err((
                "forbidden",
                "EXPLAIN ANALYZE runs the statement it explains: use EXPLAIN".to_string()
            ))
        );
    }

    #[test]
    fn lambdas_nested_too_deep_are_forbidden() {
        let db = db();
        let nested = |depth: usize| {
            let body = (1..=depth).fold("1".to_string(), |inner, i| {
                format!("list_transform([1], x{i} -> {inner})")
            });
            format!("SELECT {body}")
        };
        assert_eq!(db.check(&nested(parse_tree::MAX_LAMBDA_NESTING)), None);
        let refused = format!(
            "lambdas nested more than {} deep are refused: DuckDB binds them in time that \
             doubles with each level",
            parse_tree::MAX_LAMBDA_NESTING
        );
        assert_eq!(
            db.check(&nested(parse_tree::MAX_LAMBDA_NESTING + 1)),
            Some(("forbidden", refused))
        );
    }

    #[test]
    fn the_parameters_given_must_be_the_ones_taken() {
        let db = db();
        let answer = |sql: &str, params: Vec<Param>| db.answer(&request(sql, params), None, false);
        assert_eq!(
            answer("SELECT $1::INTEGER + $2::INTEGER", vec![Param::Int(1)]),
            Some((
                "invalid_params",
                "the statement takes 2 parameter(s) but 1 were given".to_string()
            ))
        );
        assert_eq!(
            answer("SELECT 1", vec![Param::Text("x".into())]),
            Some((
                "invalid_params",
                "the statement takes 0 parameter(s) but 1 were given".to_string()
            ))
        );
        assert_eq!(
            answer("SELECT $name", vec![Param::Int(1)]),
            Some((
                "invalid_params",
                "named parameters ($name) cannot be given: use $1, $2… or ?".to_string()
            ))
        );
        assert_eq!(answer("SELECT ?::INTEGER", vec![Param::Int(7)]), None);
        // Binding checks the count again (a derive binds its CREATE TABLE … AS).
        let mut stmt = db.conn.prepare("SELECT $1::INTEGER").expect("prepared");
        let bound = bind_params(&mut stmt, &request("SELECT $1::INTEGER", Vec::new()));
        assert_eq!(bound.map_err(|e| e.code()), Err("invalid_params"));
    }

    #[test]
    fn a_syntax_error_is_invalid_sql_with_duckdbs_message() {
        let db = db();
        let (code, message) = db.check("SELEC 1").expect("refused");
        assert_eq!(code, "invalid_sql");
        assert!(message.starts_with("Parser Error: "), "{message}");
        // The tree is not bound: an unknown column is DuckDB's to find when it prepares.
        assert_eq!(db.check("SELECT nope FROM people"), None);
    }

    #[test]
    fn a_token_reads_only_its_tables_and_learns_nothing_of_others() {
        let db = db();
        let people = TableSet::parse(&["people".to_string()]).expect("a table set");
        let answer = |sql: &str| db.answer(&request(sql, Vec::new()), Some(&people), false);
        assert_eq!(answer("SELECT name FROM people"), None);
        assert_eq!(
            answer("SELECT * FROM secrets"),
            Some(("forbidden", Refusal::NotAllowed.message().to_string()))
        );
        // An unknown column: refused without DuckDB's message, which names what exists.
        assert_eq!(
            answer("SELECT nope FROM people"),
            Some(("invalid_sql", Refusal::Invalid.message().to_string()))
        );
    }

    #[test]
    fn a_token_reads_the_postgresql_catalog_only_through_its_own_scope() {
        let db = db();
        let loaded = crate::engine::pg_catalog::Loaded::default();
        crate::engine::pg_catalog::load_for(&db.conn, &loaded, "ds_pg").expect("the catalog");
        let people = TableSet::parse(&["people".to_string()]).expect("a table set");
        let scope = people.scope_literal();
        assert_eq!(scope, "['main.people']::VARCHAR[]");
        let answer = |sql: &str| db.answer(&request(sql, Vec::new()), Some(&people), false);
        let refused = Some(("forbidden", Refusal::NotAllowed.message().to_string()));
        for sql in [
            format!("SELECT c.relname FROM ds_pg.pg_class({scope}) c"),
            format!("SELECT ds_pg.to_regclass('people', {scope}), ds_pg.version()"),
            format!("SELECT * FROM ds_pg.columns({scope}) WHERE ds_pg.pg_table_is_visible(1)"),
        ] {
            assert_eq!(answer(&sql), None, "{sql}");
        }
        for sql in [
            "SELECT * FROM ds_pg.pg_class(NULL)".to_string(),
            "SELECT * FROM ds_pg.pg_class(['main.secrets']::VARCHAR[])".to_string(),
            "SELECT * FROM ds_pg.pg_class(['main.people', 'main.secrets']::VARCHAR[])".to_string(),
            format!("SELECT * FROM ds_pg.pg_class(TRY_CAST({scope} AS VARCHAR[]))"),
            // Helpers the rewrite never produces, and DuckDB's own catalog functions.
            format!("SELECT * FROM ds_pg.rels({scope})"),
            "SELECT ds_pg.to_regclass('secrets', NULL)".to_string(),
            "SELECT * FROM duckdb_tables()".to_string(),
            format!("SELECT * FROM ds_pg.pg_class({scope}), duckdb_tables()"),
        ] {
            assert_eq!(answer(&sql), refused, "{sql}");
        }
    }
}
