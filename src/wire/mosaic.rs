//! Mosaic's requests (uwdata's `restConnector` and `socketConnector`, duckdb-server's
//! protocol): `{"type": "arrow" | "exec", "sql": "…"}`, other keys ignored; and the statements
//! an `exec` may hold.
//!
//! Invariants:
//! - An `exec` is split into statements on `;` outside strings, quoted identifiers, dollar
//!   quotes and comments; each must be one of [`ExecStatement`]'s shapes, or the whole `exec`
//!   is refused before anything runs.
//! - A derived table's `SELECT` is returned as text, unchecked: the engine checks it like any
//!   query (and refuses anything but one `SELECT`).

use simd_json::prelude::*;
use simd_json::BorrowedValue;

use super::{parse_json, WireError};

/// The schema Mosaic's pre-aggregation writes to (and the only one an `exec` may name).
pub const SCHEMA: &str = "mosaic";

/// What Mosaic asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MosaicRequest {
    /// A result as Arrow IPC bytes.
    Arrow(String),
    /// Statements without a result (Mosaic's pre-aggregation), answered `{}`.
    Exec(String),
}

fn invalid(msg: impl Into<String>) -> WireError {
    WireError::InvalidRequest(msg.into())
}

impl MosaicRequest {
    /// Parses a request body or message.
    pub fn from_json(body: &mut [u8]) -> Result<Self, WireError> {
        let value = parse_json(body).map_err(WireError::InvalidJson)?;
        let BorrowedValue::Object(obj) = &value else {
            return Err(invalid("a Mosaic request is a JSON object"));
        };
        let sql = match obj.get("sql") {
            Some(BorrowedValue::String(s)) if !s.trim().is_empty() => s.to_string(),
            Some(BorrowedValue::String(_)) => return Err(invalid("`sql` is empty")),
            Some(_) => return Err(invalid("`sql` must be a string")),
            None => return Err(invalid("missing field `sql`")),
        };
        if sql.contains('\0') {
            return Err(invalid("`sql` contains a NUL character"));
        }
        match obj.get("type").and_then(|t| t.as_str()) {
            Some("arrow") => Ok(Self::Arrow(sql)),
            Some("exec") => Ok(Self::Exec(sql)),
            Some(other) => Err(invalid(format!(
                "`type` must be arrow or exec, not `{other}`"
            ))),
            None => Err(invalid("missing field `type` (arrow or exec)")),
        }
    }
}

/// One statement of an `exec`: the pre-aggregation's own, nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecStatement {
    /// `CREATE SCHEMA IF NOT EXISTS "mosaic"`: the scratch space always exists.
    CreateSchema,
    /// `DROP SCHEMA IF EXISTS "mosaic" CASCADE`: drop the derived tables.
    DropSchema,
    /// `CREATE [TEMP] TABLE IF NOT EXISTS "mosaic"."<name>" AS <select>`.
    CreateTable { name: String, select: String },
}

/// The statements of an `exec`, or why it is refused.
pub fn exec_statements(sql: &str) -> Result<Vec<ExecStatement>, String> {
    let statements: Vec<&str> = split_statements(sql)
        .into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if statements.is_empty() {
        return Err("the exec holds no statement".into());
    }
    statements.into_iter().map(statement).collect()
}

const REFUSED: &str = "Mosaic's exec may only pre-aggregate: CREATE SCHEMA IF NOT EXISTS \"mosaic\", \
     CREATE TABLE IF NOT EXISTS \"mosaic\".\"<name>\" AS SELECT …, DROP SCHEMA IF EXISTS \"mosaic\" CASCADE";

fn statement(text: &str) -> Result<ExecStatement, String> {
    let mut c = Cursor(text);
    let refused = || format!("{REFUSED}; refused: {}", preview(text));
    if c.keyword("CREATE") {
        if c.keyword("SCHEMA") {
            let ok = c.keyword("IF") && c.keyword("NOT") && c.keyword("EXISTS");
            return match (ok, c.ident()) {
                (true, Some(s)) if s == SCHEMA && c.at_end() => Ok(ExecStatement::CreateSchema),
                _ => Err(refused()),
            };
        }
        let _ = c.keyword("TEMP") || c.keyword("TEMPORARY");
        if !(c.keyword("TABLE") && c.keyword("IF") && c.keyword("NOT") && c.keyword("EXISTS")) {
            return Err(refused());
        }
        let (Some(schema), true, Some(name)) = (c.ident(), c.symbol('.'), c.ident()) else {
            return Err(refused());
        };
        if schema != SCHEMA || !c.keyword("AS") {
            return Err(refused());
        }
        let select = c.0.trim();
        if select.is_empty() {
            return Err(refused());
        }
        return Ok(ExecStatement::CreateTable {
            name,
            select: select.to_string(),
        });
    }
    if c.keyword("DROP") && c.keyword("SCHEMA") && c.keyword("IF") && c.keyword("EXISTS") {
        if let Some(s) = c.ident() {
            let _ = c.keyword("CASCADE");
            if s == SCHEMA && c.at_end() {
                return Ok(ExecStatement::DropSchema);
            }
        }
    }
    Err(refused())
}

fn preview(text: &str) -> String {
    let short: String = text.chars().take(80).collect();
    if short.len() < text.len() {
        format!("{short}…")
    } else {
        short
    }
}

/// A position in a statement's text.
struct Cursor<'a>(&'a str);

impl Cursor<'_> {
    fn skip_space(&mut self) {
        self.0 = self.0.trim_start();
    }

    /// Consumes `word` (any case) when it is the next word.
    fn keyword(&mut self, word: &str) -> bool {
        self.skip_space();
        let n = word.len();
        let matches = self.0.len() >= n
            && self.0.as_bytes()[..n].eq_ignore_ascii_case(word.as_bytes())
            && !self
                .0
                .as_bytes()
                .get(n)
                .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
        if matches {
            self.0 = &self.0[n..];
        }
        matches
    }

    fn symbol(&mut self, c: char) -> bool {
        self.skip_space();
        match self.0.strip_prefix(c) {
            Some(rest) => {
                self.0 = rest;
                true
            }
            None => false,
        }
    }

    /// A quoted (`"a""b"`) or plain identifier, as DuckDB reads it (plain ones lower-cased).
    fn ident(&mut self) -> Option<String> {
        self.skip_space();
        if let Some(rest) = self.0.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = rest.char_indices();
            while let Some((i, ch)) = chars.next() {
                if ch == '"' {
                    if rest[i + 1..].starts_with('"') {
                        out.push('"');
                        chars.next();
                        continue;
                    }
                    self.0 = &rest[i + 1..];
                    return Some(out);
                }
                out.push(ch);
            }
            return None;
        }
        let end = self
            .0
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(self.0.len());
        if end == 0 {
            return None;
        }
        let ident = self.0[..end].to_ascii_lowercase();
        self.0 = &self.0[end..];
        Some(ident)
    }

    fn at_end(&mut self) -> bool {
        self.skip_space();
        self.0.is_empty()
    }
}

/// Splits SQL text on `;` outside `'…'` strings, `"…"` identifiers, `$tag$…$tag$` quotes and
/// `--` / `/* */` comments (also the PostgreSQL endpoint's, for multi-statement queries).
pub fn split_statements(sql: &str) -> Vec<&str> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"') => {
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == quote {
                        if bytes.get(i + 1) == Some(&quote) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i += 2;
            }
            b'$' => {
                // `$tag$` opens a dollar quote that the same tag closes.
                let tag_end = sql[i + 1..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .map(|n| i + 1 + n);
                match tag_end {
                    Some(e) if bytes[e] == b'$' => {
                        let tag = &sql[i..=e];
                        i = match sql[e + 1..].find(tag) {
                            Some(n) => e + 1 + n + tag.len(),
                            None => bytes.len(),
                        };
                    }
                    _ => i += 1,
                }
            }
            b';' => {
                out.push(&sql[start..i]);
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    if start < sql.len() {
        out.push(&sql[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_ignore_extra_keys() {
        let mut b = br#"{"type":"arrow","sql":"SELECT 1","persist":true}"#.to_vec();
        assert_eq!(
            MosaicRequest::from_json(&mut b).unwrap(),
            MosaicRequest::Arrow("SELECT 1".into())
        );
        let mut b = br#"{"type":"json","sql":"SELECT 1"}"#.to_vec();
        assert!(MosaicRequest::from_json(&mut b).is_err());
        let mut b = br#"{"type":"exec"}"#.to_vec();
        assert!(MosaicRequest::from_json(&mut b).is_err());
    }

    #[test]
    fn preaggregation_statements_are_recognised() {
        let sql = "CREATE SCHEMA IF NOT EXISTS \"mosaic\";\nCREATE TABLE IF NOT EXISTS \"mosaic\".\"preagg_6236fb2e\" AS SELECT floor(x) AS \"i\", count(*) AS n FROM \"parcels\" WHERE s = 'a;b' GROUP BY \"i\"";
        assert_eq!(
            exec_statements(sql).unwrap(),
            [
                ExecStatement::CreateSchema,
                ExecStatement::CreateTable {
                    name: "preagg_6236fb2e".into(),
                    select: "SELECT floor(x) AS \"i\", count(*) AS n FROM \"parcels\" WHERE s = 'a;b' GROUP BY \"i\"".into(),
                },
            ]
        );
        assert_eq!(
            exec_statements("drop schema if exists mosaic cascade;").unwrap(),
            [ExecStatement::DropSchema]
        );
        assert_eq!(
            exec_statements("CREATE TEMP TABLE IF NOT EXISTS mosaic.t AS SELECT 1").unwrap(),
            [ExecStatement::CreateTable {
                name: "t".into(),
                select: "SELECT 1".into()
            }]
        );
    }

    #[test]
    fn everything_else_is_refused() {
        for sql in [
            "CREATE TABLE t AS SELECT 1",
            "CREATE TABLE IF NOT EXISTS main.t AS SELECT 1",
            "CREATE TABLE IF NOT EXISTS \"mosaic\".\"t\" AS",
            "CREATE OR REPLACE TABLE mosaic.t AS SELECT 1",
            "CREATE TABLE t AS SELECT * FROM read_parquet('/etc/x.parquet')",
            "INSTALL httpfs",
            "DROP TABLE parcels",
            "DROP SCHEMA IF EXISTS main CASCADE",
            "CREATE SCHEMA IF NOT EXISTS other",
            "CREATE SCHEMA IF NOT EXISTS mosaic; DELETE FROM parcels",
            "SELECT 1",
            "",
            ";",
        ] {
            assert!(exec_statements(sql).is_err(), "{sql}");
        }
    }

    #[test]
    fn splitting_respects_quotes_and_comments() {
        assert_eq!(
            split_statements("a ';' \"x;\" -- c;\n b /* ; */ $t$;$t$; c"),
            ["a ';' \"x;\" -- c;\n b /* ; */ $t$;$t$", " c"]
        );
    }
}
