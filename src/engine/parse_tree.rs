//! DuckDB's parse tree of a statement (`json_serialize_sql`), read before DuckDB binds it: what
//! a statement *is* can be checked there without evaluating anything in it.
//!
//! Used for two checks:
//! - **Lambda nesting, for every client**: DuckDB binds lambdas nested in lambdas in time that
//!   doubles with each level (24 levels: 7 s; 40: days), and binding cannot be interrupted, so
//!   one such statement would hold an executor thread for good. Statements nesting lambdas
//!   deeper than [`MAX_LAMBDA_NESTING`] are refused. The tree is only fetched when the text
//!   could hold a lambda ([`may_have_lambdas`]), so ordinary queries pay nothing.
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

/// Whether `sql` could contain a lambda: `->`, `lambda`, or a list comprehension's `FOR`.
pub fn may_have_lambdas(sql: &str) -> bool {
    let lower = sql.to_ascii_lowercase();
    lower.contains("->")
        || lower.contains("lambda")
        || lower
            .match_indices("for")
            .any(|(i, _)| is_word_boundary(&lower, i) && is_word_boundary(&lower, i + 3))
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
    fn lambda_candidates_are_spotted_by_their_words() {
        assert!(may_have_lambdas("SELECT list_transform(l, x -> x + 1)"));
        assert!(may_have_lambdas("SELECT list_transform(l, LAMBDA x: x)"));
        assert!(may_have_lambdas("SELECT [x FOR x IN l]"));
        assert!(may_have_lambdas("SELECT [x\nfor\tx IN l]"));
        assert!(!may_have_lambdas("SELECT format('{}', 1), fork FROM t"));
        assert!(!may_have_lambdas("SELECT * FROM trips WHERE id > 3"));
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
