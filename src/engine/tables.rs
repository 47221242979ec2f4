//! Allowed tables: a token may name the only tables its queries can read. The check asks
//! DuckDB, not the SQL text, twice:
//! 1. **The parse tree** (`json_serialize_sql`, DuckDB's own parser; nothing is bound or
//!    evaluated): every table the statement names must be allowed or a CTE in scope, every
//!    table function must be one that reads no stored data ([`DATA_FREE_FUNCTIONS`]), no
//!    scalar function may plan SQL from text or read the catalog ([`NAME_TAKING_FUNCTIONS`]),
//!    and only a plain `SELECT` passes. This refuses what a plan cannot show: tables chosen while
//!    binding (`query_table(<expression>)`, `query()`, table macros such as
//!    `histogram_values`), which could be chosen differently when the statement runs; scans
//!    the optimizer removes (`count(*)` answered from statistics); `DESCRIBE t`.
//! 2. **The plan** (`EXPLAIN (FORMAT json)`, bound with the query's own parameters; with
//!    `explain_output = 'all'` its rows include the unoptimized plan, which keeps scans the
//!    optimizer answers from statistics, e.g. inside the tenant's own macros): every scanned
//!    table must be allowed, which follows views to the tables they read.
//!
//! 3. **The PostgreSQL catalog** (`ds_pg`, [`super::pg_catalog`]): the macros that answer
//!    `pg_catalog` and `information_schema` read DuckDB's own catalog functions, filtered by a
//!    scope. A call into `ds_pg` passes only when it is one of the names the catalog rewrite
//!    produces ([`crate::wire::pg_catalog`]) and, for those that look tables up, its scope is
//!    exactly this token's tables ([`TableSet::scope_literal`]); then, and only then, the
//!    plan may hold the catalog functions those macros read ([`CATALOG_FUNCTIONS`]).
//!
//! Invariants (fail closed):
//! - A statement DuckDB cannot serialize (not a SELECT), a plan that cannot be produced or
//!   read, a `Table` or `Function` value that is not a plain string: refused.
//! - Refusals name nothing ([`REFUSED`]): behind a view, a name would tell what the view reads.

use simd_json::prelude::*;
use simd_json::BorrowedValue;

use super::pg_catalog::is_catalog_call;
use crate::wire::pg_catalog;
pub use crate::wire::TableSet;

/// The catalog of the scratch space's derived tables (`super::scratch`), named here with the
/// other facts about tables so that what reads them can tell them without importing the
/// scratch space (`mosaic`: the schema name Mosaic writes to).
pub const SCRATCH_CATALOG: &str = "mosaic";

/// Table functions a table-restricted query may use: they generate values, they read nothing.
pub const DATA_FREE_FUNCTIONS: &[&str] = &[
    "RANGE",
    "GENERATE_SERIES",
    "UNNEST",
    "UNNEST_FUNCTION",
    "REPEAT",
    "REPEAT_ROW",
];

/// DuckDB's catalog functions the `ds_pg` macros read (each filtered there by the scope): a
/// plan may hold them only when its parse tree passed a scoped `ds_pg` call
/// ([`CatalogUse::Scoped`]).
pub const CATALOG_FUNCTIONS: &[&str] = &[
    "DUCKDB_TABLES",
    "DUCKDB_COLUMNS",
    "DUCKDB_VIEWS",
    "DUCKDB_CONSTRAINTS",
    "DUCKDB_INDEXES",
    "DUCKDB_SCHEMAS",
    "DUCKDB_SEQUENCES",
];

/// Whether a statement reads the PostgreSQL catalog (`ds_pg`), as its parse tree showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CatalogUse {
    /// It calls nothing in `ds_pg`.
    #[default]
    None,
    /// It calls `ds_pg` relations or functions, each with this token's scope.
    Scoped,
}

/// Scalar functions a table-limited token may not call: they plan or run SQL given as text
/// (which the parse tree holds as a string), or read the catalog, settings or sequences.
pub const NAME_TAKING_FUNCTIONS: &[&str] = &[
    "json_serialize_plan",
    "json_serialize_sql",
    "json_execute_serialized_sql",
    "query",
    "query_table",
    "nextval",
    "currval",
    "current_setting",
    "getvariable",
    "pg_get_viewdef",
    "pg_get_constraintdef",
    "pg_get_expr",
    "has_table_privilege",
    "has_column_privilege",
];

/// Why a table check refused a statement. The client sees only [`Refusal::message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// It reads, or could read, something the token does not allow (`forbidden`).
    NotAllowed,
    /// It is not valid SQL; DuckDB's message is withheld (`invalid_sql`).
    Invalid,
}

impl Refusal {
    pub fn message(self) -> &'static str {
        match self {
            Self::NotAllowed => REFUSED,
            Self::Invalid => WITHHELD,
        }
    }
}

/// What a refused query is told: the same words whatever was refused, so that refusals do not
/// reveal the names of tables (or what a view reads).
pub const REFUSED: &str =
    "the query reads a table or table function that this token does not allow";

/// What a table-limited token is told of an invalid statement: DuckDB's own messages suggest
/// table and column names ("did you mean secret?").
pub const WITHHELD: &str =
    "the statement is not valid (DuckDB's message is withheld from tokens limited to tables)";

impl TableSet {
    /// Checks the rows of `EXPLAIN (FORMAT json)` for a database whose catalog is `catalog`.
    /// The error says what was refused, in words safe for the client.
    /// With [`CatalogUse::Scoped`] (from [`Self::check_parse_tree`]) the plan may also scan
    /// [`CATALOG_FUNCTIONS`].
    pub fn check_plan(
        &self,
        plan_json: &mut [u8],
        catalog: &str,
        uses: CatalogUse,
    ) -> Result<(), Refusal> {
        walk_plan(plan_json, Refusal::NotAllowed, |extra| {
            // DuckDB splits a value holding a newline into a list: anything but a string
            // (a table named "a\nb") is refused rather than skipped.
            if let Some(table) = extra.get("Table") {
                let table = table.as_str().ok_or(Refusal::NotAllowed)?;
                self.check_table(table, catalog)?;
            }
            if let Some(f) = extra.get("Function") {
                let f = f.as_str().ok_or(Refusal::NotAllowed)?;
                let f = f.to_ascii_uppercase();
                let catalog_read =
                    uses == CatalogUse::Scoped && CATALOG_FUNCTIONS.contains(&f.as_str());
                if !(catalog_read || DATA_FREE_FUNCTIONS.contains(&f.as_str())) {
                    return Err(Refusal::NotAllowed);
                }
            }
            Ok(())
        })
    }

    /// Checks DuckDB's parse tree of the statement (`json_serialize_sql` output, parsed by
    /// [`super::parse_tree::parse`]); says whether it reads the PostgreSQL catalog.
    pub fn check_parse_tree(
        &self,
        tree: &BorrowedValue<'_>,
        catalog: &str,
    ) -> Result<CatalogUse, Refusal> {
        if tree.get("error").and_then(|e| e.as_bool()) != Some(false) {
            // "not implemented": a statement other than SELECT; anything else: a syntax error.
            let error_type = tree.get("error_type").and_then(|t| t.as_str());
            return Err(if error_type == Some("not implemented") {
                Refusal::NotAllowed
            } else {
                Refusal::Invalid
            });
        }
        if tree
            .get("statements")
            .and_then(|s| s.as_array())
            .is_none_or(|s| s.len() != 1)
        {
            return Err(Refusal::NotAllowed);
        }
        let mut walk = Walk {
            catalog,
            scope: self.qualified().collect(),
            ctes: Vec::new(),
            uses: CatalogUse::None,
        };
        self.walk(tree, &mut walk)?;
        Ok(walk.uses)
    }

    /// Visits every node; `ctes` holds the CTE names in scope, as DuckDB scopes them: a `WITH`
    /// list's names are visible in its query node (and subqueries); each CTE body sees only
    /// the CTEs before it; a recursive CTE sees itself only in its recursive part (`right`),
    /// not in its anchor, where its name is the real table.
    fn walk<'v>(&self, v: &'v BorrowedValue<'v>, walk: &mut Walk<'_, 'v>) -> Result<(), Refusal> {
        if let Some(items) = v.as_array() {
            return items.iter().try_for_each(|i| self.walk(i, walk));
        }
        let Some(obj) = v.as_object() else {
            return Ok(());
        };
        let scope = walk.ctes.len();
        let walked = self.walk_object(v, obj, walk);
        walk.ctes.truncate(scope);
        walked
    }

    fn walk_object<'v>(
        &self,
        v: &'v BorrowedValue<'v>,
        obj: &'v simd_json::borrowed::Object<'v>,
        walk: &mut Walk<'_, 'v>,
    ) -> Result<(), Refusal> {
        let text = |node: &'v BorrowedValue<'v>, key: &str| -> Result<&'v str, Refusal> {
            node.get(key)
                .and_then(|s| s.as_str())
                .ok_or(Refusal::NotAllowed)
        };
        if let Some(map) = v.get("cte_map") {
            let entries = map
                .get("map")
                .and_then(|m| m.as_array())
                .ok_or(Refusal::NotAllowed)?;
            for entry in entries {
                self.walk(entry.get("value").ok_or(Refusal::NotAllowed)?, walk)?;
                walk.ctes.push(text(entry, "key")?);
            }
        }
        let mut recursive_part = None;
        match v.get("type").and_then(|t| t.as_str()) {
            Some("BASE_TABLE") => {
                let (cat, schema, table) = (
                    text(v, "catalog_name")?,
                    text(v, "schema_name")?,
                    text(v, "table_name")?,
                );
                let is_cte = cat.is_empty()
                    && schema.is_empty()
                    && walk.ctes.iter().any(|c| c.eq_ignore_ascii_case(table));
                let allowed = self.allows(cat, schema, table, walk.catalog);
                if !(is_cte || allowed) {
                    return Err(Refusal::NotAllowed);
                }
            }
            Some("TABLE_FUNCTION") => {
                let function = v.get("function").ok_or(Refusal::NotAllowed)?;
                let name = text(function, "function_name")?;
                let schema = function
                    .get("schema")
                    .and_then(|s| s.as_str())
                    .unwrap_or("");
                if is_catalog_call(function) {
                    walk.catalog_call(function, Call::Relation)?;
                } else if !schema.is_empty()
                    || !DATA_FREE_FUNCTIONS.contains(&name.to_ascii_uppercase().as_str())
                {
                    return Err(Refusal::NotAllowed);
                }
            }
            Some("FUNCTION") if is_catalog_call(v) => walk.catalog_call(v, Call::Scalar)?,
            // `SHOW TABLES [FROM s]` and the like name no table but list them; the others
            // (`DESCRIBE t`) carry the query they describe, walked below.
            Some("SHOW_REF")
                if !text(v, "table_name")?.is_empty()
                    || v.get("query").is_none_or(|q| q.as_object().is_none()) =>
            {
                return Err(Refusal::NotAllowed)
            }
            // Scalar functions that plan or read other SQL, or name catalog objects.
            Some("FUNCTION")
                if NAME_TAKING_FUNCTIONS
                    .contains(&text(v, "function_name")?.to_ascii_lowercase().as_str()) =>
            {
                return Err(Refusal::NotAllowed)
            }
            Some("RECURSIVE_CTE_NODE") => recursive_part = Some(text(v, "cte_name")?),
            _ => {}
        }
        for (key, child) in obj.iter() {
            match key.as_ref() {
                "cte_map" => {}
                "right" if recursive_part.is_some() => {}
                _ => self.walk(child, walk)?,
            }
        }
        if let (Some(name), Some(right)) = (recursive_part, v.get("right")) {
            walk.ctes.push(name);
            self.walk(right, walk)?;
        }
        Ok(())
    }

    fn check_table(&self, qualified: &str, catalog: &str) -> Result<(), Refusal> {
        let parts = split_qualified(qualified);
        let allowed = match parts.as_slice() {
            [c, s, t] => self.allows(c, s, t, catalog),
            [s, t] => self.allows("", s, t, catalog),
            [t] => self.allows("", "", t, catalog),
            _ => false,
        };
        // Not named: behind a view, it would tell the client what the view reads.
        allowed.then_some(()).ok_or(Refusal::NotAllowed)
    }
}

/// What a parse tree's walk carries: the tenant's catalog, the token's scope, the CTEs in
/// scope (see [`TableSet::walk`]) and whether it met the PostgreSQL catalog.
struct Walk<'c, 'v> {
    catalog: &'c str,
    /// [`TableSet::qualified`]: what a `ds_pg` call's scope must list, in this order.
    scope: Vec<String>,
    ctes: Vec<&'v str>,
    uses: CatalogUse,
}

impl Walk<'_, '_> {
    /// A call into `ds_pg` (`function` is a `FUNCTION` node): a name the catalog rewrite
    /// produces ([`crate::wire::pg_catalog`]). A relation, or a function that looks tables
    /// up, takes the scope as its last argument, which must be this token's scope literal;
    /// the other functions read no table.
    fn catalog_call(&mut self, function: &BorrowedValue<'_>, call: Call) -> Result<(), Refusal> {
        let name = function
            .get("function_name")
            .and_then(|n| n.as_str())
            .ok_or(Refusal::NotAllowed)?
            .to_ascii_lowercase();
        let name = name.as_str();
        let scoped = match call {
            Call::Relation => pg_catalog::RELATIONS.contains(&name),
            // The walk meets a relation's call again as the `FUNCTION` under its table
            // function node.
            Call::Scalar => {
                pg_catalog::SCOPED_FUNCTIONS.contains(&name)
                    || pg_catalog::RELATIONS.contains(&name)
            }
        };
        let ok = if scoped {
            let last = function
                .get("children")
                .and_then(|c| c.as_array())
                .and_then(|c| c.last());
            last.and_then(scope_of).as_ref() == Some(&self.scope)
        } else {
            call == Call::Scalar && pg_catalog::FUNCTIONS.contains(&name)
        };
        if !ok {
            return Err(Refusal::NotAllowed);
        }
        self.uses = CatalogUse::Scoped;
        Ok(())
    }
}

/// What a call into `ds_pg` is in the parse tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    /// A table function: `FROM ds_pg.pg_class(<scope>)`.
    Relation,
    /// A scalar function: `ds_pg.to_regclass('t', <scope>)`.
    Scalar,
}

/// The names of a scope literal as DuckDB parses it (`['a', 'b']::VARCHAR[]`: a cast to a
/// list of VARCHAR of `list_value` over text constants), or `None` for any other expression.
fn scope_of(arg: &BorrowedValue<'_>) -> Option<Vec<String>> {
    let cast_type = arg.get("cast_type")?;
    let element = cast_type.get("type_info")?.get("child_type")?.get("id")?;
    if arg.get("class")?.as_str()? != "CAST"
        || cast_type.get("id")?.as_str()? != "LIST"
        || element.as_str()? != "VARCHAR"
        || arg.get("try_cast")?.as_bool()?
    {
        return None;
    }
    let list = arg.get("child")?;
    if list.get("function_name")?.as_str()? != "list_value" {
        return None;
    }
    list.get("children")?
        .as_array()?
        .iter()
        .map(|c| {
            let value = c.get("value")?;
            let is_text = value.get("type")?.get("id")?.as_str()? == "VARCHAR";
            (c.get("class")?.as_str()? == "CONSTANT" && is_text)
                .then(|| value.get("value")?.as_str().map(str::to_string))?
        })
        .collect()
}

/// Visits the `extra_info` of every node of the plans in one row of `EXPLAIN (FORMAT json)`,
/// stopping at the first error; a plan nested too deep or unreadable is `unreadable`.
pub(super) fn walk_plan<E: Copy>(
    plan_json: &mut [u8],
    unreadable: E,
    mut visit: impl FnMut(&BorrowedValue<'_>) -> Result<(), E>,
) -> Result<(), E> {
    if crate::wire::too_deep(plan_json, super::parse_tree::MAX_TREE_DEPTH) {
        return Err(unreadable);
    }
    let plan = simd_json::to_borrowed_value(plan_json).map_err(|_| unreadable)?;
    let mut stack: Vec<&BorrowedValue> = match plan.as_array() {
        Some(nodes) => nodes.iter().collect(),
        None => vec![&plan],
    };
    while let Some(node) = stack.pop() {
        if let Some(extra) = node.get("extra_info") {
            visit(extra)?;
        }
        if let Some(children) = node.get("children").and_then(|c| c.as_array()) {
            stack.extend(children.iter());
        }
    }
    Ok(())
}

/// Splits `cat.schema."Ta.ble"` into its unquoted parts (DuckDB quotes with `"`, doubling it).
pub(super) fn split_qualified(s: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut part = String::new();
    let mut chars = s.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                part.push('"');
            }
            '"' => quoted = !quoted,
            '.' if !quoted => parts.push(std::mem::take(&mut part)),
            c => part.push(c),
        }
    }
    parts.push(part);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> TableSet {
        TableSet::parse(&names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn plan(table: &str) -> Vec<u8> {
        format!(
            r#"[{{"name":"PROJECTION","children":[{{"name":"SEQ_SCAN","children":[],"extra_info":{{"Table":"{t}"}}}}],"extra_info":{{}}}}]"#,
            t = table.replace('"', "\\\"")
        )
        .into_bytes()
    }

    #[test]
    fn plans_are_checked_by_catalog_schema_and_table() {
        let s = set(&["Trips", "geo.zones"]);
        assert_eq!(s.names(), vec!["trips", "geo.zones"]);
        assert!(s
            .check_plan(&mut plan("acme.main.trips"), "acme", CatalogUse::None)
            .is_ok());
        assert!(s
            .check_plan(&mut plan("acme.main.\"TRIPS\""), "acme", CatalogUse::None)
            .is_ok());
        assert!(s
            .check_plan(&mut plan("acme.geo.zones"), "acme", CatalogUse::None)
            .is_ok());
        assert!(s
            .check_plan(&mut plan("acme.main.zones"), "acme", CatalogUse::None)
            .is_err());
        assert!(s
            .check_plan(&mut plan("other.main.trips"), "acme", CatalogUse::None)
            .is_err());
        assert!(s
            .check_plan(&mut plan("acme.main.\"secret\""), "acme", CatalogUse::None)
            .is_err());
        assert!(s
            .check_plan(&mut plan("acme.main.\"trips.x\""), "acme", CatalogUse::None)
            .is_err());
        let split = br#"[{"name":"SEQ_SCAN","children":[],"extra_info":{"Table":["acme.main.\"tr","ips\""]}}]"#;
        assert!(s
            .check_plan(&mut split.to_vec(), "acme", CatalogUse::None)
            .is_err());
        let f = br#"[{"name":"DUCKDB_TABLES","children":[],"extra_info":{"Function":"DUCKDB_TABLES"}}]"#;
        assert!(s
            .check_plan(&mut f.to_vec(), "acme", CatalogUse::None)
            .is_err());
        let r = br#"[{"name":"RANGE","children":[],"extra_info":{"Function":"RANGE"}}]"#;
        assert!(s
            .check_plan(&mut r.to_vec(), "acme", CatalogUse::None)
            .is_ok());
        assert!(s
            .check_plan(&mut b"not json".to_vec(), "acme", CatalogUse::None)
            .is_err());
    }

    #[test]
    fn table_names_are_plain_identifiers() {
        for bad in ["", "a.b.c", "a b", "\"x\"", "a;drop"] {
            assert!(TableSet::parse(&[bad.to_string()]).is_err(), "{bad}");
        }
        assert_eq!(split_qualified(r#"a."b.""c".d"#), vec!["a", "b.\"c", "d"]);
    }
}
