//! DuckDB's parse tree of a statement (`json_serialize_sql`), read before DuckDB binds it: what
//! a statement *is* can be checked there without evaluating anything in it.
//!
//! Used for two checks:
//! - **Lambda nesting, for every client**: DuckDB binds lambdas nested in lambdas in time that
//!   doubles with each level (24 levels: 7 s; 40: days), and binding cannot be interrupted, so
//!   one such statement would hold an executor thread for good. Statements nesting lambdas
//!   deeper than [`MAX_LAMBDA_NESTING`] are refused. The tree is only fetched when the text
//!   could hold a lambda ([`TextHints`]), so ordinary queries pay nothing.
//! - **Server-private functions, for every client** ([`PRIVATE_FUNCTIONS`]): those that read
//!   server files (the spatial extension's `ST_Read` family, which brings GDAL's own virtual
//!   file systems; `ST_Read_Meta` crashed the process on an unreadable file in spatial 1.5.5),
//!   show server paths or settings (`pragma_database_list`, `duckdb_settings()`,
//!   `current_setting()` but for the [`READABLE_SETTINGS`], given as a constant), or plan SQL from text at bind time (`query()`, `query_table()`), which
//!   would hide the others from this check. The sandbox (no external access) already stops the
//!   file reads; this check keeps clients from reaching the code at all. The tree is fetched
//!   only when the text could name one ([`TextHints`]).
//! - **Allowed tables** for table-limited tokens ([`super::tables`]).
//!
//! Invariant: a tree deeper than [`MAX_TREE_DEPTH`] JSON levels is refused before it is parsed
//! (parsing and walking recurse on executor threads with ordinary stacks).

use simd_json::prelude::*;
use simd_json::BorrowedValue;

use crate::duck::{Connection, DuckError, Param};

/// The deepest lambda nesting accepted.
pub const MAX_LAMBDA_NESTING: usize = 8;
/// The deepest parse tree accepted, in JSON levels (DuckDB uses a few per expression level).
pub const MAX_TREE_DEPTH: usize = 1024;

/// Why a statement's tree cannot be used.
#[derive(Debug, PartialEq, Eq)]
pub enum TreeError {
    /// Nested deeper than [`MAX_TREE_DEPTH`].
    TooDeep,
    /// Not valid JSON (never expected from DuckDB).
    Unreadable,
}

/// Functions no client may call (lower case), whether as a function or a table name
/// (`FROM pragma_database_list`). See the module's comment for why each is here.
pub const PRIVATE_FUNCTIONS: &[&str] = &[
    "st_read",
    "st_readosm",
    "st_readshp",
    "st_read_meta",
    "pragma_database_list",
    "duckdb_databases",
    "duckdb_settings",
    "duckdb_extensions",
    "duckdb_temporary_files",
    "duckdb_secrets",
    "duckdb_logs",
    "which_secret",
    "current_setting",
    "getenv",
    "query",
    "query_table",
];

/// Settings `current_setting()` may read: those that hold no server path (an allowlist, so
/// that a new path-valued setting of DuckDB stays private).
pub const READABLE_SETTINGS: &[&str] = &[
    "threads",
    "worker_threads",
    "memory_limit",
    "max_memory",
    "max_temp_directory_size",
    "preserve_insertion_order",
    "timezone",
    "calendar",
    "default_order",
    "default_null_order",
    "explain_output",
    "enable_progress_bar",
    "access_mode",
];

/// What a statement's text could hold, read from one lower-cased copy (queries pay one copy,
/// not one per check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextHints {
    /// It could hold a lambda: `->`, `lambda`, or a list comprehension's `FOR`.
    pub lambdas: bool,
    /// It could name a [`PRIVATE_FUNCTIONS`] entry (a substring test: a false positive only
    /// costs fetching the parse tree).
    pub private: bool,
    /// It holds the word `ANALYZE` (or `ANALYSE`): in an `EXPLAIN`, DuckDB would run the
    /// explained statement, whatever it is.
    pub analyze: bool,
}

impl TextHints {
    pub fn of(sql: &str) -> Self {
        let lower = sql.to_ascii_lowercase();
        Self {
            lambdas: lambda_words(&lower),
            private: private_words(&lower),
            analyze: has_word(&lower, "analyze") || has_word(&lower, "analyse"),
        }
    }
}

/// Whether `word` occurs in `lower` on its own (not inside a longer identifier).
fn has_word(lower: &str, word: &str) -> bool {
    let ident = |b: u8| b == b'_' || b.is_ascii_alphanumeric();
    let bytes = lower.as_bytes();
    lower.match_indices(word).any(|(i, _)| {
        let before = i.checked_sub(1).map(|j| bytes[j]);
        let after = bytes.get(i + word.len()).copied();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

fn private_words(lower: &str) -> bool {
    [
        "st_read", "pragma_", "duckdb_", "secret", "setting", "getenv", "query",
    ]
    .iter()
    .any(|stem| lower.contains(stem))
}

/// The first private function the tree calls or scans, if any.
pub fn private_function<'v>(v: &'v BorrowedValue<'v>) -> Option<&'v str> {
    if let Some(items) = v.as_array() {
        return items.iter().find_map(private_function);
    }
    let obj = v.as_object()?;
    for key in ["function_name", "table_name"] {
        if let Some(name) = v.get(key).and_then(|n| n.as_str()) {
            if PRIVATE_FUNCTIONS
                .iter()
                .any(|p| p.eq_ignore_ascii_case(name))
                && !reads_a_readable_setting(v, name)
            {
                return Some(name);
            }
        }
    }
    obj.values().find_map(private_function)
}

/// `current_setting('<a READABLE_SETTINGS entry>')`: one argument, a string constant.
fn reads_a_readable_setting(v: &BorrowedValue<'_>, name: &str) -> bool {
    if !name.eq_ignore_ascii_case("current_setting") {
        return false;
    }
    let Some([arg]) = v
        .get("children")
        .and_then(|c| c.as_array())
        .map(|c| c.as_slice())
    else {
        return false;
    };
    let value = arg.get("value");
    let is_text = value
        .and_then(|v| v.get("type"))
        .and_then(|t| t.get("id"))
        .and_then(|i| i.as_str())
        == Some("VARCHAR");
    let setting = value.and_then(|v| v.get("value")).and_then(|s| s.as_str());
    arg.get("class").and_then(|c| c.as_str()) == Some("CONSTANT")
        && is_text
        && setting.is_some_and(|s| READABLE_SETTINGS.iter().any(|r| r.eq_ignore_ascii_case(s)))
}

fn lambda_words(lower: &str) -> bool {
    lower.contains("->")
        || lower.contains("lambda")
        || lower
            .match_indices("for")
            .any(|(i, _)| is_word_boundary(lower, i) && is_word_boundary(lower, i + 3))
}

fn is_word_boundary(s: &str, i: usize) -> bool {
    let b = s.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let before = i == 0 || !word(b[i - 1]);
    let after = i >= b.len() || !word(b[i]);
    // Called with the start (check what precedes) and the end (check what follows).
    before || after
}

/// The parse tree of `sql` as JSON text, from DuckDB's parser (`sql` is a bound value here).
pub fn fetch(conn: &Connection, sql: &str) -> Result<Option<String>, DuckError> {
    conn.query_text(
        "SELECT json_serialize_sql($1::VARCHAR)",
        &Param::Text(sql.to_string()),
    )
}

/// Parses the tree, refusing trees nested too deep.
pub fn parse(json: &mut [u8]) -> Result<BorrowedValue<'_>, TreeError> {
    if crate::wire::too_deep(json, MAX_TREE_DEPTH) {
        return Err(TreeError::TooDeep);
    }
    simd_json::to_borrowed_value(json).map_err(|_| TreeError::Unreadable)
}

/// The deepest nesting of lambdas (`LAMBDA` nodes inside `LAMBDA` nodes) in the tree.
pub fn lambda_nesting(v: &BorrowedValue<'_>) -> usize {
    if let Some(items) = v.as_array() {
        return items.iter().map(lambda_nesting).max().unwrap_or(0);
    }
    let Some(obj) = v.as_object() else {
        return 0;
    };
    let inner = obj.values().map(lambda_nesting).max().unwrap_or(0);
    let is_lambda = v.get("class").and_then(|c| c.as_str()) == Some("LAMBDA");
    inner + usize::from(is_lambda)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_functions_are_found_anywhere_in_the_tree() {
        let tree = |json: &str| json.as_bytes().to_vec();
        let mut t = tree(
            r#"{"statements":[{"from_table":{"type":"TABLE_FUNCTION","function":{"class":"FUNCTION","function_name":"ST_Read_Meta"}}}]}"#,
        );
        assert_eq!(
            private_function(&parse(&mut t).unwrap()),
            Some("ST_Read_Meta")
        );
        let mut t = tree(
            r#"{"statements":[{"from_table":{"type":"BASE_TABLE","table_name":"pragma_database_list"}}]}"#,
        );
        assert!(private_function(&parse(&mut t).unwrap()).is_some());
        let mut t = tree(
            r#"{"statements":[{"select_list":[{"class":"FUNCTION","function_name":"st_area"}]}]}"#,
        );
        assert_eq!(private_function(&parse(&mut t).unwrap()), None);
        let call = |arg: &str| {
            format!(
                r#"{{"statements":[{{"select_list":[{{"class":"FUNCTION","function_name":"current_setting","children":[{arg}]}}]}}]}}"#
            )
            .into_bytes()
        };
        let constant = |s: &str| {
            format!(r#"{{"class":"CONSTANT","value":{{"type":{{"id":"VARCHAR"}},"value":"{s}"}}}}"#)
        };
        let mut t = call(&constant("Threads"));
        assert_eq!(private_function(&parse(&mut t).unwrap()), None);
        let mut t = call(&constant("secret_directory"));
        assert!(private_function(&parse(&mut t).unwrap()).is_some());
        let mut t = call(r#"{"class":"FUNCTION","function_name":"lower","children":[]}"#);
        assert!(private_function(&parse(&mut t).unwrap()).is_some());
        assert!(TextHints::of("SELECT * FROM ST_READ('x')").private);
        assert!(TextHints::of("select current_setting('x')").private);
        assert!(!TextHints::of("SELECT ST_Area(geom) FROM parcels").private);
    }

    #[test]
    fn lambda_candidates_are_spotted_by_their_words() {
        assert!(TextHints::of("SELECT list_transform(l, x -> x + 1)").lambdas);
        assert!(TextHints::of("SELECT list_transform(l, LAMBDA x: x)").lambdas);
        assert!(TextHints::of("SELECT [x FOR x IN l]").lambdas);
        assert!(TextHints::of("SELECT [x\nfor\tx IN l]").lambdas);
        assert!(!TextHints::of("SELECT format('{}', 1), fork FROM t").lambdas);
        assert!(!TextHints::of("SELECT * FROM trips WHERE id > 3").lambdas);
    }

    #[test]
    fn lambda_nesting_counts_lambdas_inside_lambdas() {
        let nested = |n: usize| {
            let mut v = String::from(r#"{"class":"CONSTANT"}"#);
            for _ in 0..n {
                v = format!(r#"{{"class":"LAMBDA","lhs":{{}},"expr":{v}}}"#);
            }
            format!(
                r#"{{"statements":[{{"select_list":[{v},{{"class":"LAMBDA","expr":{{}}}}]}}]}}"#
            )
        };
        for n in [0, 1, 3, 9] {
            let mut json = nested(n).into_bytes();
            assert_eq!(lambda_nesting(&parse(&mut json).unwrap()), n.max(1));
        }
        let mut deep = format!(
            "{}{}",
            "[".repeat(MAX_TREE_DEPTH + 1),
            "]".repeat(MAX_TREE_DEPTH + 1)
        )
        .into_bytes();
        assert_eq!(parse(&mut deep).err(), Some(TreeError::TooDeep));
    }
}
