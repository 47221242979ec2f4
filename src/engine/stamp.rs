//! What a result depends on, decided by DuckDB before the statement runs: the tables its plan
//! scans and whether it is deterministic. The result cache and live subscriptions reuse a
//! result only while none of those tables has been written since it was computed.
//!
//! Invariants (fail closed: what cannot be decided makes the result not reusable):
//! - Tables come from DuckDB's plan (`EXPLAIN (FORMAT json)` with the query's parameters;
//!   with `explain_output = 'all'` the unoptimized plan is included, so scans the optimizer
//!   answers from statistics still count), which follows views to the tables they read. A
//!   plan that cannot be produced or read, or a table function that reads anything but its
//!   arguments (catalog functions such as `duckdb_tables()`), leaves the tables unknown.
//! - A result is deterministic unless its parse tree calls a function DuckDB does not call
//!   `CONSISTENT` (`duckdb_functions().stability`: `random()`, `now()`, `uuid()`,
//!   `nextval()`…), or a macro whose definition names one (directly or through other macros:
//!   `m2() AS m() + 1` with `m() AS random()`), or uses one of SQL's value
//!   keywords that DuckDB's binder turns into such a function (`current_timestamp`…). A
//!   statement DuckDB cannot serialize (not a `SELECT`) is taken as not deterministic.

use std::collections::HashSet;

use simd_json::prelude::*;
use simd_json::BorrowedValue;

use super::tables::{DATA_FREE_FUNCTIONS, SCRATCH_CATALOG};

/// What a result was computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    /// The tables the plan scans, as lower-case `schema.table`, sorted; `None`: unknown.
    pub tables: Option<Vec<String>>,
    /// No function in it can give another answer on the same data.
    pub deterministic: bool,
    /// The tenant's data version when the query was admitted (read before DuckDB began).
    pub version: u64,
    /// The result's own version: the newest write to a table it reads, read before DuckDB
    /// began (so never newer than the data it saw); without known tables, `version`. What
    /// ETags and subscription updates show.
    pub result_version: u64,
}

impl Stamp {
    /// A stamp that knows nothing: the result is not reused.
    pub fn unknown(version: u64) -> Self {
        Self {
            tables: None,
            deterministic: false,
            version,
            result_version: version,
        }
    }

    /// Whether another request may be answered with this result while its tables are unchanged.
    pub fn reusable(&self) -> bool {
        self.deterministic && self.tables.is_some()
    }
}

/// SQL's value keywords that DuckDB parses as column references and binds to functions whose
/// result changes between queries (`current_timestamp` → `get_current_timestamp()`).
const VALUE_KEYWORDS: &[&str] = &[
    "current_timestamp",
    "current_time",
    "current_date",
    "localtime",
    "localtimestamp",
];

/// What [`volatile_functions`] reads from DuckDB's catalog, once per tenant database: every
/// function DuckDB calls `VOLATILE` or `CONSISTENT_WITHIN_QUERY` (second column `v`), and every
/// macro with its definition (third column), all in lower case. The matching is done in Rust:
/// DuckDB compiling one regular expression per (macro, function) pair took ~90 ms, and most of
/// a new tenant's first query.
pub const FUNCTIONS_SQL: &str = "SELECT DISTINCT lower(function_name), \
     CASE WHEN stability IN ('VOLATILE', 'CONSISTENT_WITHIN_QUERY') THEN 'v' END, \
     lower(macro_definition) FROM duckdb_functions() \
     WHERE stability IN ('VOLATILE', 'CONSISTENT_WITHIN_QUERY') \
     OR function_type IN ('macro', 'table_macro')";

/// The functions (lower case) whose result may change on the same data, from the rows of
/// [`FUNCTIONS_SQL`]: the volatile ones, and every macro whose definition names one of them,
/// directly or through other such macros.
pub fn volatile_functions(rows: Vec<Vec<Option<String>>>) -> HashSet<String> {
    let mut volatile = HashSet::new();
    // Each macro with its definition and the words (identifiers) in it.
    let mut macros: Vec<(String, String, HashSet<String>)> = Vec::new();
    for row in rows {
        let mut cells = row.into_iter();
        let (Some(Some(name)), flag, definition) = (cells.next(), cells.next(), cells.next())
        else {
            continue;
        };
        if flag.flatten().is_some() {
            volatile.insert(name);
        } else if let Some(definition) = definition.flatten() {
            let words = definition
                .split(|c: char| !is_word_char(c))
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect();
            macros.push((name, definition, words));
        }
    }
    // A macro that calls a volatile macro is volatile too: repeat until nothing changes.
    loop {
        let before = volatile.len();
        macros.retain(|(name, definition, words)| {
            // A value keyword (`current_date`) is a volatile call too; a name that is not one
            // word (`"my-rand"`) is looked for as it is.
            let calls_volatile = words
                .iter()
                .any(|w| volatile.contains(w) || VALUE_KEYWORDS.contains(&w.as_str()))
                || volatile
                    .iter()
                    .any(|v| !is_word(v) && definition.contains(v.as_str()));
            if calls_volatile {
                volatile.insert(name.clone());
            }
            !calls_volatile
        });
        if volatile.len() == before {
            return volatile;
        }
    }
}

/// Whether `c` may be part of an identifier word (letters, digits, `_`).
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether `name` is one identifier word.
fn is_word(name: &str) -> bool {
    name.chars().all(is_word_char)
}

/// Whether the parse tree (from `json_serialize_sql`) is of one statement that calls no
/// function of `volatile`.
pub fn is_deterministic(tree: &BorrowedValue<'_>, volatile: &HashSet<String>) -> bool {
    if tree.get("error").and_then(|e| e.as_bool()) != Some(false) {
        return false;
    }
    let mut stack = vec![tree];
    while let Some(v) = stack.pop() {
        if let Some(items) = v.as_array() {
            stack.extend(items.iter());
            continue;
        }
        let Some(obj) = v.as_object() else { continue };
        if let Some(name) = v.get("function_name").and_then(|n| n.as_str()) {
            if volatile.contains(&name.to_ascii_lowercase()) {
                return false;
            }
        }
        if v.get("class").and_then(|c| c.as_str()) == Some("COLUMN_REF") {
            let names = v.get("column_names").and_then(|n| n.as_array());
            if let Some([name]) = names.map(|n| n.as_slice()) {
                let name = name.as_str().unwrap_or_default().to_ascii_lowercase();
                if VALUE_KEYWORDS.contains(&name.as_str()) || volatile.contains(&name) {
                    return false;
                }
            }
        }
        stack.extend(obj.values());
    }
    true
}

/// The tables scanned by the plans in `plan_json` (one row of `EXPLAIN (FORMAT json)`), added
/// to `tables`; `false` if the plan reads something that is not a table or cannot be read.
pub fn plan_tables(plan_json: &mut [u8], tables: &mut Vec<String>) -> bool {
    super::tables::walk_plan(plan_json, (), |extra| {
        if let Some(table) = extra.get("Table") {
            let table = table.as_str().ok_or(())?;
            // Derived tables are dropped and made again at the same data version: what reads
            // them is never reused.
            if super::tables::split_qualified(table)
                .first()
                .map(String::as_str)
                == Some(SCRATCH_CATALOG)
            {
                return Err(());
            }
            tables.push(normalise(table));
        }
        if let Some(f) = extra.get("Function") {
            let f = f.as_str().ok_or(())?.to_ascii_uppercase();
            if !DATA_FREE_FUNCTIONS.contains(&f.as_str()) {
                return Err(());
            }
        }
        Ok(())
    })
    .is_ok()
}

/// `catalog.schema.table` (or a shorter form) as lower-case `schema.table`.
fn normalise(qualified: &str) -> String {
    let parts = super::tables::split_qualified(qualified);
    let (schema, table) = match parts.as_slice() {
        [.., s, t] => (s.as_str(), t.as_str()),
        [t] => ("main", t.as_str()),
        [] => ("main", ""),
    };
    format!("{}.{}", schema.to_lowercase(), table.to_lowercase())
}

/// The lower-case `schema.table` a dataset's writes change.
pub fn dataset_table(name: &str) -> String {
    format!("main.{}", name.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(json: &str) -> String {
        json.to_string()
    }

    #[test]
    fn volatile_functions_and_value_keywords_are_found() {
        let volatile: HashSet<String> = ["random", "now"].map(String::from).into();
        let call = |f: &str| {
            tree(&format!(
                r#"{{"error":false,"statements":[{{"node":{{"select_list":[{{"class":"FUNCTION","function_name":"{f}","children":[]}}]}}}}]}}"#
            ))
        };
        let check = |s: String| {
            let mut b = s.into_bytes();
            let tree = simd_json::to_borrowed_value(&mut b).unwrap();
            is_deterministic(&tree, &volatile)
        };
        assert!(!check(call("RANDOM")));
        assert!(check(call("sum")));
        let column = |c: &str| {
            tree(&format!(
                r#"{{"error":false,"statements":[{{"node":{{"select_list":[{{"class":"COLUMN_REF","column_names":["{c}"]}}]}}}}]}}"#
            ))
        };
        assert!(!check(column("current_timestamp")));
        assert!(check(column("price")));
        assert!(!check(r#"{"error":true}"#.into()));
    }

    #[test]
    fn macros_that_call_volatile_functions_are_volatile_through_other_macros() {
        let row = |name: &str, v: bool, def: Option<&str>| {
            vec![
                Some(name.to_string()),
                v.then(|| "v".to_string()),
                def.map(str::to_string),
            ]
        };
        let volatile = volatile_functions(vec![
            row("random", true, None),
            row("draw2", false, Some("(draw() + 1)")),
            row("draw", false, Some("(random() * 10)")),
            row("draw3", false, Some("draw2()+draw2()")),
            row("randomish", false, Some("(randomness + 1)")),
            row("plain", false, Some("(x + 1)")),
            row("today2", false, Some("current_date")),
            row("my-rand", false, Some("random()")),
            row("uses_dashed", false, Some("\"my-rand\"() + 1")),
            vec![None, None, None],
        ]);
        let mut names: Vec<_> = volatile.into_iter().collect();
        names.sort();
        assert_eq!(
            names,
            [
                "draw",
                "draw2",
                "draw3",
                "my-rand",
                "random",
                "today2",
                "uses_dashed"
            ]
        );
    }

    #[test]
    fn plans_name_their_tables_and_catalog_functions_are_unknown() {
        let mut tables = Vec::new();
        let mut plan = br#"[{"name":"HASH_JOIN","children":[
            {"name":"SEQ_SCAN","children":[],"extra_info":{"Table":"acme.main.Trips"}},
            {"name":"SEQ_SCAN","children":[],"extra_info":{"Table":"geo.\"Zo.nes\""}},
            {"name":"RANGE","children":[],"extra_info":{"Function":"RANGE"}}]}]"#
            .to_vec();
        assert!(plan_tables(&mut plan, &mut tables));
        tables.sort();
        assert_eq!(tables, ["geo.zo.nes", "main.trips"]);
        let mut plan =
            br#"[{"name":"DUCKDB_TABLES","children":[],"extra_info":{"Function":"DUCKDB_TABLES"}}]"#
                .to_vec();
        assert!(!plan_tables(&mut plan, &mut Vec::new()));
    }
}
