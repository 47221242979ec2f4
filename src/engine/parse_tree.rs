//! DuckDB's parse tree of a statement (`json_serialize_sql`), read before DuckDB binds it, and
//! its bound plan (`json_serialize_plan`), read after: what a statement *is* and what it calls
//! can be checked there without evaluating anything in it.
//!
//! Used for three checks, every query of every client (a text that passed is remembered per
//! tenant and data version: [`super::tenant::Tenant::is_vetted`]):
//! - **The function allowlist** ([`super::allowlist`]): on the tree before binding, on the
//!   plan after it (views and macros show their bodies only there).
//! - **Lambda nesting**: DuckDB binds lambdas nested in lambdas in time that doubles with each
//!   level (24 levels: 7 s; 40: days), and binding cannot be interrupted, so one such
//!   statement would hold an executor thread for good. Statements nesting lambdas deeper than
//!   [`MAX_LAMBDA_NESTING`] are refused.
//! - **Allowed tables** for table-limited tokens ([`super::tables`]).
//!
//! Only `SELECT` statements serialize: any other statement cannot be checked and is refused,
//! but for `EXPLAIN`, whose explained statement ([`explained`]) is checked instead.
//!
//! Invariant: a tree or plan deeper than [`MAX_TREE_DEPTH`] JSON levels is refused before it
//! is parsed (parsing and walking recurse on executor threads with ordinary stacks).

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

/// Whether the text holds the word `ANALYZE` (or `ANALYSE`): in an `EXPLAIN`, DuckDB would
/// run the explained statement, whatever it is.
pub fn names_analyze(sql: &str) -> bool {
    let lower = sql.to_ascii_lowercase();
    has_word(&lower, "analyze") || has_word(&lower, "analyse")
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

/// The statement an `EXPLAIN` explains: the text after `EXPLAIN`, an optional `ANALYZE` and
/// an optional parenthesised option list; `None` if `sql` is not an `EXPLAIN`. Comments and
/// quotes inside the options are not expected: an odd spelling only yields a text that fails
/// its own checks (fail closed).
pub fn explained(sql: &str) -> Option<&str> {
    let rest = keyword(skip_space(sql), "explain")?;
    let mut rest = skip_space(rest);
    for word in ["analyze", "analyse"] {
        if let Some(r) = keyword(rest, word) {
            rest = skip_space(r);
        }
    }
    if let Some(options) = rest.strip_prefix('(') {
        let close = options.find(')')?;
        rest = skip_space(&options[close + 1..]);
    }
    Some(rest)
}

fn skip_space(s: &str) -> &str {
    let mut s = s.trim_start();
    loop {
        if let Some(r) = s.strip_prefix("--") {
            s = r.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(r) = s.strip_prefix("/*") {
            s = r.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else {
            return s;
        }
    }
}

/// `s` after `word` (any case) when `s` starts with it as a whole word.
fn keyword<'s>(s: &'s str, word: &str) -> Option<&'s str> {
    let head = s.get(..word.len())?;
    let rest = &s[word.len()..];
    let ends = rest
        .bytes()
        .next()
        .is_none_or(|b| !(b == b'_' || b.is_ascii_alphanumeric()));
    (head.eq_ignore_ascii_case(word) && ends).then_some(rest)
}

/// The parse tree of `sql` as JSON text, from DuckDB's parser (`sql` is a bound value here).
pub fn fetch(conn: &Connection, sql: &str) -> Result<Option<String>, DuckError> {
    conn.query_text(
        "SELECT json_serialize_sql($1::VARCHAR)",
        &Param::Text(sql.to_string()),
    )
}

/// The bound and optimized plan of `sql` as JSON text (`sql` is a bound value here). DuckDB
/// binds it (table functions' binds run: the tree must have passed first) but runs nothing.
pub fn fetch_plan(conn: &Connection, sql: &str) -> Result<Option<String>, DuckError> {
    conn.query_text(
        "SELECT json_serialize_plan($1::VARCHAR)",
        &Param::Text(sql.to_string()),
    )
}

/// The text of a statement with parameters, as DuckDB would plan it with `params` bound:
/// `json_serialize_plan` takes no parameter values (it fails on a parameter whose type only
/// its value decides), so each parameter of the tree (`tree`, the statement's
/// [`fetch`]ed JSON) becomes a constant of its value, and DuckDB writes the tree back as SQL.
/// `None` when a parameter has no value (or a name: requests bind by position).
pub fn sql_with_values(
    conn: &Connection,
    tree: &str,
    params: &[Param],
) -> Result<Option<String>, DuckError> {
    let values: Vec<_> = params.iter().map(Some).collect();
    rewrite(conn, tree, &values, true)
}

/// [`sql_with_values`] for the parameters that have a value (`Some`): the others stay
/// parameters of the text.
pub fn sql_with_some_values(
    conn: &Connection,
    tree: &str,
    params: &[Option<&Param>],
) -> Result<Option<String>, DuckError> {
    rewrite(conn, tree, params, false)
}

/// The tree's text with its parameters' values in place; with `strict`, `None` when one has
/// none.
fn rewrite(
    conn: &Connection,
    tree: &str,
    params: &[Option<&Param>],
    strict: bool,
) -> Result<Option<String>, DuckError> {
    let mut bytes = tree.as_bytes().to_vec();
    if crate::wire::too_deep(&bytes, MAX_TREE_DEPTH) {
        return Ok(None);
    }
    let Ok(mut tree) = simd_json::to_owned_value(&mut bytes) else {
        return Ok(None);
    };
    if !bind_values(&mut tree, params, strict) {
        return Ok(None);
    }
    let json = simd_json::to_string(&tree).map_err(|e| DuckError {
        message: e.to_string(),
        kind: crate::duck::DuckErrorKind::Other,
    })?;
    conn.query_text("SELECT json_deserialize_sql($1::JSON)", &Param::Text(json))
}

/// How many parameters the tree takes (the highest `$n`; `?`s are numbered by DuckDB), or
/// `None` if one is named (`$name`: requests bind by position).
pub fn parameter_count(v: &BorrowedValue<'_>) -> Option<usize> {
    if let Some(items) = v.as_array() {
        return items
            .iter()
            .map(parameter_count)
            .try_fold(0, |most, n| Some(most.max(n?)));
    }
    let Some(obj) = v.as_object() else {
        return Some(0);
    };
    let own = if v.get("class").and_then(|c| c.as_str()) == Some("PARAMETER") {
        v.get("identifier")
            .and_then(|i| i.as_str())
            .and_then(|i| i.parse::<usize>().ok())?
    } else {
        0
    };
    obj.values()
        .map(parameter_count)
        .try_fold(own, |most, n| Some(most.max(n?)))
}

/// Replaces every `PARAMETER` node of `v` that has a value by a constant of it; `false` if
/// one has none and `strict` (else it stays).
fn bind_values(v: &mut simd_json::OwnedValue, params: &[Option<&Param>], strict: bool) -> bool {
    use simd_json::OwnedValue;
    if let Some(items) = v.as_array_mut() {
        return items
            .iter_mut()
            .all(|item| bind_values(item, params, strict));
    }
    if v.get("class").and_then(|c| c.as_str()) == Some("PARAMETER") {
        let value = v
            .get("identifier")
            .and_then(|i| i.as_str())
            .and_then(|i| i.parse::<usize>().ok())
            .and_then(|n| params.get(n.checked_sub(1)?).copied().flatten());
        let Some(value) = value else {
            return !strict;
        };
        let mut constant = simd_json::value::owned::Object::new();
        constant.insert("class".into(), OwnedValue::from("CONSTANT"));
        constant.insert("type".into(), OwnedValue::from("VALUE_CONSTANT"));
        constant.insert("alias".into(), OwnedValue::from(""));
        constant.insert("query_location".into(), OwnedValue::from(u64::MAX));
        constant.insert("value".into(), constant_value(value));
        *v = OwnedValue::from(constant);
        return true;
    }
    match v.as_object_mut() {
        Some(obj) => obj
            .values_mut()
            .all(|child| bind_values(child, params, strict)),
        None => true,
    }
}

/// A parameter's value as DuckDB serializes a constant (a non-finite double as text, which
/// JSON cannot hold: planning only needs its type to be one a cast accepts).
fn constant_value(param: &Param) -> simd_json::OwnedValue {
    use simd_json::OwnedValue;
    let (id, value) = match param {
        Param::Null => ("NULL", None),
        Param::Bool(b) => ("BOOLEAN", Some(OwnedValue::from(*b))),
        Param::Int(n) => ("BIGINT", Some(OwnedValue::from(*n))),
        Param::UInt(n) => ("UBIGINT", Some(OwnedValue::from(*n))),
        Param::Float(f) if f.is_finite() => ("DOUBLE", Some(OwnedValue::from(*f))),
        Param::Float(f) => ("VARCHAR", Some(OwnedValue::from(f.to_string()))),
        Param::Text(t) => ("VARCHAR", Some(OwnedValue::from(t.as_str()))),
    };
    let mut ty = simd_json::value::owned::Object::new();
    ty.insert("id".into(), OwnedValue::from(id));
    ty.insert("type_info".into(), OwnedValue::null());
    let mut out = simd_json::value::owned::Object::new();
    out.insert("type".into(), OwnedValue::from(ty));
    out.insert("is_null".into(), OwnedValue::from(value.is_none()));
    if let Some(value) = value {
        out.insert("value".into(), value);
    }
    OwnedValue::from(out)
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
    fn explain_gives_the_statement_it_explains() {
        assert_eq!(explained("EXPLAIN SELECT 1"), Some("SELECT 1"));
        assert_eq!(
            explained("  explain (FORMAT json)\n SELECT * FROM t"),
            Some("SELECT * FROM t")
        );
        assert_eq!(
            explained("/* c */ EXPLAIN ANALYZE -- x\nSELECT 2"),
            Some("SELECT 2")
        );
        assert_eq!(explained("SELECT 'EXPLAIN'"), None);
        assert_eq!(explained("EXPLAINED"), None);
        assert_eq!(explained("EXPLAIN (FORMAT json"), None);
        assert!(names_analyze("EXPLAIN ANALYZE SELECT 1"));
        assert!(!names_analyze("SELECT analyzer FROM t"));
    }

    #[test]
    fn parameters_become_constants_of_their_values() {
        let mut tree = simd_json::json!({"select_list": [
            {"class": "PARAMETER", "identifier": "1"},
            {"class": "FUNCTION", "children": [{"class": "PARAMETER", "identifier": "2"}]},
            {"class": "PARAMETER", "identifier": "3"}
        ]});
        let params = [Param::Int(5), Param::Text("x".into()), Param::Null];
        let params: Vec<_> = params.iter().map(Some).collect();
        assert!(bind_values(&mut tree, &params, true));
        let list = &tree["select_list"];
        assert_eq!(list[0]["class"], "CONSTANT");
        assert_eq!(list[0]["value"]["type"]["id"], "BIGINT");
        assert_eq!(list[0]["value"]["value"], 5);
        assert_eq!(list[1]["children"][0]["value"]["value"], "x");
        assert_eq!(list[2]["value"]["is_null"], true);
        // A parameter without a value, or with a name, cannot be planned.
        let mut tree = simd_json::json!([{"class": "PARAMETER", "identifier": "4"}]);
        assert!(!bind_values(&mut tree, &params, true));
        let mut tree = simd_json::json!([{"class": "PARAMETER", "identifier": "name"}]);
        assert!(!bind_values(&mut tree, &params, true));
        // Unless some may stay parameters.
        let mut tree = simd_json::json!([{"class": "PARAMETER", "identifier": "4"}]);
        assert!(bind_values(&mut tree, &[None, None, None, None], false));
        assert_eq!(tree[0]["class"], "PARAMETER");
        let count = |json: &str| {
            let mut bytes = json.as_bytes().to_vec();
            let tree = parse(&mut bytes).unwrap();
            parameter_count(&tree)
        };
        assert_eq!(
            count(
                r#"[{"class":"PARAMETER","identifier":"2"},{"x":{"class":"PARAMETER","identifier":"1"}}]"#
            ),
            Some(2)
        );
        assert_eq!(count(r#"{"select_list":[]}"#), Some(0));
        assert_eq!(
            count(r#"[{"class":"PARAMETER","identifier":"name"}]"#),
            None
        );
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
