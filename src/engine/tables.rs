//! Allowed tables: a token may name the only tables its queries can read. The check asks
//! DuckDB, not the SQL text, twice:
//! 1. the query's physical plan (`EXPLAIN (FORMAT json)`, bound with the query's own
//!    parameters) lists every table it scans, after views, CTEs, `query()` and `query_table()`
//!    (with computed or bound names) have been resolved;
//! 2. DuckDB's binder lists the names of the tables the statement mentions
//!    (`duckdb_get_table_names`, unqualified), which also catches statements that read a
//!    table's schema without scanning it (`DESCRIBE t`). Each must be the table part of an
//!    allowed name. The binder cannot take parameters: for a statement with parameters, only
//!    the plan decides.
//!
//! Invariants (fail closed):
//! - Every plan node that names a `Table` must name an allowed one in the tenant's own catalog.
//! - Every table function in the plan must be one that reads no stored data
//!   ([`DATA_FREE_FUNCTIONS`]); catalog functions (`duckdb_tables()`, `pragma_table_info`...)
//!   would show other tables' names and columns, so they are refused.
//! - A plan that cannot be produced or read refuses the query.

use simd_json::prelude::*;
use simd_json::BorrowedValue;

/// Table functions a table-restricted query may use: they generate values, they read nothing.
pub const DATA_FREE_FUNCTIONS: &[&str] = &[
    "RANGE",
    "GENERATE_SERIES",
    "UNNEST",
    "UNNEST_FUNCTION",
    "REPEAT",
    "REPEAT_ROW",
];

/// The tables a token allows, normalised (DuckDB identifiers are case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSet {
    /// `(schema, table)`; a name given without a schema is in `main`.
    entries: Vec<(String, String)>,
}

impl TableSet {
    /// Parses `table` or `schema.table` names (no quoting: names are plain identifiers).
    pub fn parse(names: &[String]) -> Result<Self, String> {
        if names.len() > 256 {
            return Err("at most 256 tables".into());
        }
        let ident = |s: &str| {
            !s.is_empty()
                && s.len() <= 128
                && s.chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '$')
        };
        let mut entries = Vec::with_capacity(names.len());
        for name in names {
            let (schema, table) = match name.split_once('.') {
                Some((s, t)) => (s, t),
                None => ("main", name.as_str()),
            };
            if !ident(schema) || !ident(table) {
                return Err(format!(
                    "'{name}' is not a table name (table or schema.table, letters, digits, _)"
                ));
            }
            entries.push((schema.to_lowercase(), table.to_lowercase()));
        }
        Ok(Self { entries })
    }

    /// The names as a token carries them.
    pub fn names(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|(s, t)| {
                if s == "main" {
                    t.clone()
                } else {
                    format!("{s}.{t}")
                }
            })
            .collect()
    }

    fn allows(&self, schema: &str, table: &str) -> bool {
        self.entries
            .iter()
            .any(|(s, t)| s.eq_ignore_ascii_case(schema) && t.eq_ignore_ascii_case(table))
    }

    /// Checks the rows of `EXPLAIN (FORMAT json)` for a database whose catalog is `catalog`.
    /// The error says what was refused, in words safe for the client.
    pub fn check_plan(&self, plan_json: &mut [u8], catalog: &str) -> Result<(), String> {
        let plan = simd_json::to_borrowed_value(plan_json)
            .map_err(|e| format!("the query plan could not be read: {e}"))?;
        let mut stack: Vec<&BorrowedValue> = match plan.as_array() {
            Some(nodes) => nodes.iter().collect(),
            None => vec![&plan],
        };
        while let Some(node) = stack.pop() {
            if let Some(extra) = node.get("extra_info") {
                if let Some(table) = extra.get("Table").and_then(|t| t.as_str()) {
                    self.check_table(table, catalog)?;
                }
                if let Some(f) = extra.get("Function").and_then(|f| f.as_str()) {
                    if !DATA_FREE_FUNCTIONS.contains(&f.to_ascii_uppercase().as_str()) {
                        return Err(format!(
                            "the table function {} is not available to a token limited to tables",
                            f.to_lowercase()
                        ));
                    }
                }
            }
            if let Some(children) = node.get("children").and_then(|c| c.as_array()) {
                stack.extend(children.iter());
            }
        }
        Ok(())
    }

    /// Checks unqualified table names (as `duckdb_get_table_names` gives them).
    pub fn check_names(&self, names: &[String]) -> Result<(), String> {
        match names
            .iter()
            .find(|n| !self.entries.iter().any(|(_, t)| t.eq_ignore_ascii_case(n)))
        {
            Some(n) => Err(format!("the token does not allow reading table {n}")),
            None => Ok(()),
        }
    }

    fn check_table(&self, qualified: &str, catalog: &str) -> Result<(), String> {
        let parts = split_qualified(qualified);
        let (cat, schema, table) = match parts.as_slice() {
            [c, s, t] => (c.as_str(), s.as_str(), t.as_str()),
            [s, t] => (catalog, s.as_str(), t.as_str()),
            [t] => (catalog, "main", t.as_str()),
            _ => return Err("the query reads a table that cannot be identified".into()),
        };
        if cat.eq_ignore_ascii_case(catalog) && self.allows(schema, table) {
            Ok(())
        } else {
            Err(format!(
                "the token does not allow reading table {qualified}"
            ))
        }
    }
}

/// Splits `cat.schema."Ta.ble"` into its unquoted parts (DuckDB quotes with `"`, doubling it).
fn split_qualified(s: &str) -> Vec<String> {
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
        assert!(s.check_plan(&mut plan("acme.main.trips"), "acme").is_ok());
        assert!(s
            .check_plan(&mut plan("acme.main.\"TRIPS\""), "acme")
            .is_ok());
        assert!(s.check_plan(&mut plan("acme.geo.zones"), "acme").is_ok());
        assert!(s.check_plan(&mut plan("acme.main.zones"), "acme").is_err());
        assert!(s.check_plan(&mut plan("other.main.trips"), "acme").is_err());
        assert!(s
            .check_plan(&mut plan("acme.main.\"secret\""), "acme")
            .is_err());
        assert!(s
            .check_plan(&mut plan("acme.main.\"trips.x\""), "acme")
            .is_err());
        let f = br#"[{"name":"DUCKDB_TABLES","children":[],"extra_info":{"Function":"DUCKDB_TABLES"}}]"#;
        assert!(s.check_plan(&mut f.to_vec(), "acme").is_err());
        let r = br#"[{"name":"RANGE","children":[],"extra_info":{"Function":"RANGE"}}]"#;
        assert!(s.check_plan(&mut r.to_vec(), "acme").is_ok());
        assert!(s.check_plan(&mut b"not json".to_vec(), "acme").is_err());
        assert!(s.check_names(&["TRIPS".into(), "zones".into()]).is_ok());
        assert!(s.check_names(&["trips".into(), "secret".into()]).is_err());
    }

    #[test]
    fn table_names_are_plain_identifiers() {
        for bad in ["", "a.b.c", "a b", "\"x\"", "a;drop"] {
            assert!(TableSet::parse(&[bad.to_string()]).is_err(), "{bad}");
        }
        assert_eq!(split_qualified(r#"a."b.""c".d"#), vec!["a", "b.\"c", "d"]);
    }
}
