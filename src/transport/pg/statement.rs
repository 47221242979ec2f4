//! What one statement of a PostgreSQL client is, decided from its first words without DuckDB:
//! the session and transaction commands clients send around their queries are answered by the
//! endpoint, everything else goes to the engine (and through its sandbox).
//!
//! Invariants:
//! - Nothing classified here reaches DuckDB: `SET enable_external_access = true` is a
//!   session setting that does not exist (42704), never a DuckDB `SET`.
//! - `COPY … TO STDOUT` is a query whose rows are written as COPY data; any other `COPY`, and
//!   `LISTEN`, `NOTIFY`, `PREPARE`, `EXECUTE` and `MOVE`, are refused here: DuckDB's `COPY`
//!   writes files, and the others have no meaning for a read-only gateway. Cursors
//!   (`DECLARE`, `FETCH`, `CLOSE`) are the endpoint's own: a cursor is a streaming result.
//! - Statements are split on `;` outside quotes and comments
//!   ([`crate::wire::mosaic::split_statements`]).

/// One statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement<'a> {
    /// Only blanks and comments (pgx's `-- ping`).
    Empty,
    /// `BEGIN`, `START TRANSACTION`: the tag to answer.
    Begin,
    /// `COMMIT`, `END`.
    Commit,
    /// `ROLLBACK`, `ABORT`.
    Rollback,
    /// `SET name = value` (`None`: `DEFAULT`).
    Set { name: String, value: Option<String> },
    /// Answered with a tag and nothing else: `SET TRANSACTION …`, `SAVEPOINT`, `DISCARD`, …
    Tag(&'static str),
    /// `RESET name` or `RESET ALL` (`None`).
    Reset(Option<String>),
    /// `SHOW name` (lowercase; `all` for every setting).
    Show(String),
    /// `SELECT version()` in any of its spellings.
    Version,
    /// `DECLARE name [BINARY] … CURSOR … FOR query`.
    Declare {
        name: String,
        binary: bool,
        query: &'a str,
    },
    /// `FETCH [FORWARD | NEXT] [n | ALL] [FROM | IN] name` (`count`: `None` for all).
    Fetch { name: String, count: Option<u64> },
    /// `CLOSE name` or `CLOSE ALL` (`None`).
    CloseCursor(Option<String>),
    /// `COPY (query) TO STDOUT …` or `COPY table [(columns)] TO STDOUT …`.
    CopyOut(CopyOut),
    /// Refused before DuckDB: SQLSTATE and message.
    Refused(&'static str, String),
    /// A query for the engine.
    Query(&'a str),
}

/// A word or a quoted string of a statement's beginning.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Symbol(char),
}

/// What `sql` (one statement) is.
pub fn classify(sql: &str) -> Statement<'_> {
    let tokens = tokenize(sql);
    let word = |i: usize| match tokens.get(i) {
        Some(Token::Word(w)) => w.to_ascii_lowercase(),
        _ => String::new(),
    };
    let first = match tokens.first() {
        None => return Statement::Empty,
        Some(_) => word(0),
    };
    match first.as_str() {
        "begin" | "start" => Statement::Begin,
        "commit" | "end" => Statement::Commit,
        "rollback" | "abort" if word(1) == "to" || word(2) == "to" => Statement::Tag("ROLLBACK"),
        "rollback" | "abort" => Statement::Rollback,
        "savepoint" => Statement::Tag("SAVEPOINT"),
        "release" => Statement::Tag("RELEASE"),
        "set" => set(&tokens[1..]),
        "reset" => match word(1).as_str() {
            "all" => Statement::Reset(None),
            _ => Statement::Reset(name_of(&tokens[1..])),
        },
        "show" => show(&tokens[1..]),
        "discard" => Statement::Tag(match word(1).as_str() {
            "all" => "DISCARD ALL",
            "plans" => "DISCARD PLANS",
            "sequences" => "DISCARD SEQUENCES",
            _ => "DISCARD TEMP",
        }),
        "deallocate" => Statement::Tag("DEALLOCATE"),
        "declare" => declare(sql, &tokens),
        "fetch" => fetch(&tokens[1..]),
        "close" => match word(1).as_str() {
            "all" => Statement::CloseCursor(None),
            _ => Statement::CloseCursor(name_of(&tokens[1..])),
        },
        "move" => Statement::Refused("0A000", "MOVE is not served: FETCH moves forward".into()),
        "unlisten" => Statement::Tag("UNLISTEN"),
        "copy" => copy(sql, &tokens),
        "listen" | "notify" => Statement::Refused(
            "0A000",
            "LISTEN and NOTIFY are not served: use a live subscription (docs/PROTOCOL.md)".into(),
        ),
        "prepare" | "execute" => Statement::Refused(
            "0A000",
            "PREPARE and EXECUTE are not served: use the extended protocol".into(),
        ),
        "select" if is_version(&tokens) => Statement::Version,
        _ => Statement::Query(sql),
    }
}

/// How `COPY … TO STDOUT` writes rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyFormat {
    /// Tab-separated, `\N` for NULL, backslash escapes.
    Text,
    Csv,
    /// `PGCOPY`: each row's fields in their binary form.
    Binary,
}

/// A `COPY … TO STDOUT`: the query and how its rows are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOut {
    pub query: String,
    pub format: CopyFormat,
    pub header: bool,
    pub delimiter: Option<u8>,
    pub null: Option<String>,
}

/// `COPY (query) TO STDOUT [WITH] [(options)]` or `COPY table [(columns)] TO STDOUT …`;
/// anything else named COPY (a file, a program, `FROM`) is refused: DuckDB's COPY would
/// touch the server's files.
fn copy(sql: &str, tokens: &[Token]) -> Statement<'static> {
    let body = sql.trim_start();
    let body = body[4..].trim_start();
    let (query, rest) = if let Some(inner) = body.strip_prefix('(') {
        match closing_paren(inner) {
            Some(end) => (inner[..end].trim().to_string(), &inner[end + 1..]),
            None => return Statement::Refused("42601", "syntax error in COPY".into()),
        }
    } else {
        match copy_table(tokens) {
            Some(q) => (q, ""),
            None => return Statement::Refused("42601", "syntax error in COPY".into()),
        }
    };
    let rest_tokens = if rest.is_empty() {
        let to = tokens.iter().position(|t| matches!(t, Token::Word(w) if w.eq_ignore_ascii_case("to") || w.eq_ignore_ascii_case("from")));
        to.map(|i| tokens[i..].to_vec()).unwrap_or_default()
    } else {
        tokenize(rest)
    };
    let word = |i: usize| match rest_tokens.get(i) {
        Some(Token::Word(w)) => w.to_ascii_lowercase(),
        _ => String::new(),
    };
    match (word(0).as_str(), word(1).as_str()) {
        ("to", "stdout") => {}
        ("from", _) => {
            return Statement::Refused(
                "0A000",
                "COPY FROM is not served: upload a dataset (PUT /v1/{tenant}/datasets/{name})"
                    .into(),
            )
        }
        _ => {
            return Statement::Refused(
                "42501",
                "COPY to a file or a program is not allowed: COPY … TO STDOUT".into(),
            )
        }
    }
    copy_options(query, &rest_tokens[2..])
}

/// `table [(a, b)]` as the query it copies.
fn copy_table(tokens: &[Token]) -> Option<String> {
    let n = name_len(&tokens[1..]);
    if n == 0 {
        return None;
    }
    let quote = |t: &Token| match t {
        Token::Word(w) | Token::Quoted(w) => format!("\"{}\"", w.replace('"', "\"\"")),
        Token::Symbol(c) => c.to_string(),
    };
    let table: String = tokens[1..=n].iter().map(quote).collect();
    let mut columns = Vec::new();
    if tokens.get(n + 1) == Some(&Token::Symbol('(')) {
        for t in &tokens[n + 2..] {
            match t {
                Token::Symbol(')') => break,
                Token::Symbol(',') => {}
                other => columns.push(quote(other)),
            }
        }
    }
    let list = if columns.is_empty() {
        "*".to_string()
    } else {
        columns.join(", ")
    };
    Some(format!("SELECT {list} FROM {table}"))
}

/// The options after `TO STDOUT`: `[WITH] (FORMAT csv, HEADER, DELIMITER ',', NULL '')` or the
/// old `CSV HEADER`, `BINARY`, `DELIMITER 'x'`, `NULL 'x'`.
fn copy_options(query: String, tokens: &[Token]) -> Statement<'static> {
    let mut copy = CopyOut {
        query,
        format: CopyFormat::Text,
        header: false,
        delimiter: None,
        null: None,
    };
    let mut i = 0;
    while i < tokens.len() {
        let word = match &tokens[i] {
            Token::Word(w) => w.to_ascii_lowercase(),
            _ => {
                i += 1;
                continue;
            }
        };
        let value = match tokens.get(i + 1) {
            Some(Token::Word(w) | Token::Quoted(w)) => Some(w.clone()),
            _ => None,
        };
        let mut took = false;
        match word.as_str() {
            "with" => {}
            "csv" => copy.format = CopyFormat::Csv,
            "binary" => copy.format = CopyFormat::Binary,
            "format" => {
                took = true;
                copy.format = match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
                    Some("csv") => CopyFormat::Csv,
                    Some("binary") => CopyFormat::Binary,
                    Some("text") => CopyFormat::Text,
                    _ => {
                        return Statement::Refused(
                            "22023",
                            "COPY format must be text, csv or binary".into(),
                        )
                    }
                };
            }
            "header" => {
                let off = matches!(
                    value.as_deref().map(str::to_ascii_lowercase).as_deref(),
                    Some("false" | "off" | "0")
                );
                took = matches!(
                    value.as_deref().map(str::to_ascii_lowercase).as_deref(),
                    Some("true" | "on" | "1" | "false" | "off" | "0")
                );
                copy.header = !off;
            }
            "delimiter" => {
                took = true;
                match value.as_deref().map(str::as_bytes) {
                    Some([d]) => copy.delimiter = Some(*d),
                    _ => {
                        return Statement::Refused(
                            "22023",
                            "COPY delimiter must be a single one-byte character".into(),
                        )
                    }
                }
            }
            "null" => {
                took = true;
                copy.null = value.clone();
            }
            other => {
                return Statement::Refused(
                    "0A000",
                    format!("COPY option \"{other}\" is not served"),
                )
            }
        }
        i += if took { 2 } else { 1 };
    }
    Statement::CopyOut(copy)
}

/// Where the parenthesis closing an opened one ends in `text` (quotes and nesting respected).
fn closing_paren(text: &str) -> Option<usize> {
    let mut depth = 1;
    let mut quote = None;
    for (i, c) in text.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' => quote = Some(c),
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(i);
                    }
                }
                _ => {}
            },
        }
    }
    None
}

/// `DECLARE name … CURSOR … FOR query`: the query is the text after the `FOR` that follows
/// `CURSOR`.
fn declare<'a>(sql: &'a str, tokens: &[Token]) -> Statement<'a> {
    let Some(Token::Word(name)) = tokens.get(1) else {
        return Statement::Refused("42601", "syntax error in DECLARE".into());
    };
    let lower = sql.to_ascii_lowercase();
    let words = word_spans(&lower);
    let cursor = words.iter().position(|&(s, e)| &lower[s..e] == "cursor");
    let query = cursor.and_then(|c| {
        words[c + 1..]
            .iter()
            .find(|&&(s, e)| &lower[s..e] == "for")
            .map(|&(_, e)| sql[e..].trim())
    });
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        return Statement::Refused(
            "42601",
            "syntax error in DECLARE: expected CURSOR … FOR".into(),
        );
    };
    let head = cursor.map(|c| words[..c].to_vec()).unwrap_or_default();
    let binary = head.iter().any(|&(s, e)| &lower[s..e] == "binary");
    Statement::Declare {
        name: name.clone(),
        binary,
        query,
    }
}

/// Where each word (letters, digits, `_`) of `text` starts and ends.
fn word_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        let in_word = c.is_alphanumeric() || c == '_';
        match (start, in_word) {
            (None, true) => start = Some(i),
            (Some(s), false) => {
                spans.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    spans
}

/// `FETCH [FORWARD | NEXT] [n | ALL] [FROM | IN] name`.
fn fetch(tokens: &[Token]) -> Statement<'static> {
    let mut count = Some(1);
    let mut name = None;
    for t in tokens {
        let Token::Word(w) = t else { continue };
        match w.to_ascii_lowercase().as_str() {
            "forward" | "from" | "in" => {}
            "next" => count = Some(1),
            "all" => count = None,
            n if n.chars().all(|c| c.is_ascii_digit()) => count = n.parse().ok(),
            _ => name = Some(w.clone()),
        }
    }
    match name {
        Some(name) => Statement::Fetch { name, count },
        None => Statement::Refused("42601", "syntax error in FETCH".into()),
    }
}

/// `SET [SESSION | LOCAL] name {TO | =} value` and its special forms.
fn set(tokens: &[Token]) -> Statement<'static> {
    let lower = |t: Option<&Token>| match t {
        Some(Token::Word(w)) => w.to_ascii_lowercase(),
        _ => String::new(),
    };
    let tokens = match lower(tokens.first()).as_str() {
        "session" | "local" => &tokens[1..],
        _ => tokens,
    };
    match lower(tokens.first()).as_str() {
        // SET TRANSACTION …, SET SESSION CHARACTERISTICS AS TRANSACTION …: read-only already.
        "transaction" | "characteristics" => return Statement::Tag("SET"),
        "time" if lower(tokens.get(1)) == "zone" => {
            return Statement::Set {
                name: "timezone".into(),
                value: value_of(&tokens[2..]),
            }
        }
        _ => {}
    }
    let Some(name) = name_of(tokens) else {
        return Statement::Refused("42601", "syntax error in SET".into());
    };
    let rest = &tokens[name_len(tokens)..];
    match rest.first() {
        Some(Token::Symbol('=')) => {}
        Some(Token::Word(w)) if w.eq_ignore_ascii_case("to") => {}
        _ => return Statement::Refused("42601", "syntax error in SET: expected TO or =".into()),
    }
    Statement::Set {
        name,
        value: value_of(&rest[1..]),
    }
}

/// `SHOW name`, `SHOW ALL`, `SHOW TIME ZONE`, `SHOW TRANSACTION ISOLATION LEVEL`.
fn show(tokens: &[Token]) -> Statement<'static> {
    let words: Vec<String> = tokens
        .iter()
        .map(|t| match t {
            Token::Word(w) => w.to_ascii_lowercase(),
            _ => String::new(),
        })
        .collect();
    let name = match words.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["time", "zone", ..] => "timezone".into(),
        ["transaction", "isolation", "level", ..] => "transaction_isolation".into(),
        ["session", "authorization", ..] => "session_authorization".into(),
        _ => match name_of(tokens) {
            Some(n) => n.to_ascii_lowercase(),
            None => return Statement::Refused("42601", "syntax error in SHOW".into()),
        },
    };
    Statement::Show(name)
}

/// A setting's name: a word, or words joined by dots (`duckstream.geometry_output`).
fn name_of(tokens: &[Token]) -> Option<String> {
    let n = name_len(tokens);
    if n == 0 {
        return None;
    }
    let mut name = String::new();
    for t in &tokens[..n] {
        match t {
            Token::Word(w) | Token::Quoted(w) => name.push_str(w),
            Token::Symbol(c) => name.push(*c),
        }
    }
    Some(name)
}

fn name_len(tokens: &[Token]) -> usize {
    let mut n = 0;
    while matches!(tokens.get(n), Some(Token::Word(_))) {
        n += 1;
        if matches!(tokens.get(n), Some(Token::Symbol('.'))) {
            n += 1;
        } else {
            break;
        }
    }
    n
}

/// A `SET` value: words, numbers and strings, joined by `, ` when a list; `None` for
/// `DEFAULT`.
fn value_of(tokens: &[Token]) -> Option<String> {
    let parts: Vec<String> = tokens
        .split(|t| *t == Token::Symbol(','))
        .map(|part| {
            part.iter()
                .map(|t| match t {
                    Token::Word(w) | Token::Quoted(w) => w.clone(),
                    Token::Symbol(c) => c.to_string(),
                })
                .collect::<String>()
        })
        .collect();
    if parts.len() == 1 && parts[0].eq_ignore_ascii_case("default") {
        return None;
    }
    Some(parts.join(", "))
}

/// `SELECT version()` or `SELECT pg_catalog.version()`, nothing else.
fn is_version(tokens: &[Token]) -> bool {
    let words: Vec<String> = tokens
        .iter()
        .skip(1)
        .map(|t| match t {
            Token::Word(w) => w.to_ascii_lowercase(),
            Token::Quoted(q) => q.clone(),
            Token::Symbol(c) => c.to_string(),
        })
        .collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    matches!(
        words[..],
        ["version", "(", ")"] | ["pg_catalog", ".", "version", "(", ")"]
    )
}

/// The statement's tokens, comments skipped: words (letters, digits, `_`, `$`, `-` inside
/// numbers), `'…'` strings and `"…"` identifiers (their text), and single symbols.
fn tokenize(sql: &str) -> Vec<Token> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() || c == ';' {
            i += 1;
        } else if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i += 2;
        } else if c == '\'' || c == '"' {
            let (text, next) = quoted(&chars, i);
            out.push(if c == '\'' {
                Token::Quoted(text)
            } else {
                Token::Word(text)
            });
            i = next;
        } else if c.is_alphanumeric()
            || c == '_'
            || c == '$'
            || (c == '-' && next_is_digit(&chars, i))
        {
            let start = i;
            i += 1;
            while i < chars.len() && continues_word(&chars, i) {
                i += 1;
            }
            out.push(Token::Word(chars[start..i].iter().collect()));
        } else {
            out.push(Token::Symbol(c));
            i += 1;
        }
    }
    out
}

/// Whether `chars[i]` belongs to the word before it (a dot only inside a number: `1.5`).
fn continues_word(chars: &[char], i: usize) -> bool {
    let c = chars[i];
    c.is_alphanumeric() || c == '_' || c == '$' || (c == '.' && next_is_digit(chars, i))
}

fn next_is_digit(chars: &[char], i: usize) -> bool {
    chars.get(i + 1).is_some_and(char::is_ascii_digit)
}

/// The text of the quoted token at `start` (doubled quotes undone) and the index after it.
fn quoted(chars: &[char], start: usize) -> (String, usize) {
    let q = chars[start];
    let mut text = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        if chars[i] == q {
            if chars.get(i + 1) == Some(&q) {
                text.push(q);
                i += 2;
                continue;
            }
            return (text, i + 1);
        }
        text.push(chars[i]);
        i += 1;
    }
    (text, i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(name: &str, value: Option<&str>) -> Statement<'static> {
        Statement::Set {
            name: name.into(),
            value: value.map(String::from),
        }
    }

    #[test]
    fn session_commands_are_answered_here() {
        assert_eq!(classify("-- ping"), Statement::Empty);
        assert_eq!(classify("  "), Statement::Empty);
        assert_eq!(classify("BEGIN"), Statement::Begin);
        assert_eq!(classify("start transaction read only"), Statement::Begin);
        assert_eq!(classify("COMMIT"), Statement::Commit);
        assert_eq!(classify("rollback"), Statement::Rollback);
        assert_eq!(
            classify("ROLLBACK TO SAVEPOINT a"),
            Statement::Tag("ROLLBACK")
        );
        assert_eq!(
            classify("SET extra_float_digits = 3"),
            set("extra_float_digits", Some("3"))
        );
        assert_eq!(
            classify("SET application_name = 'PostgreSQL JDBC Driver'"),
            set("application_name", Some("PostgreSQL JDBC Driver"))
        );
        assert_eq!(
            classify("SET TIME ZONE 'UTC'"),
            set("timezone", Some("UTC"))
        );
        assert_eq!(
            classify("set TIMEZONE to 'UTC'"),
            set("TIMEZONE", Some("UTC"))
        );
        assert_eq!(
            classify("SET search_path TO \"$user\", public"),
            set("search_path", Some("$user, public"))
        );
        assert_eq!(
            classify("SET statement_timeout = DEFAULT"),
            set("statement_timeout", None)
        );
        assert_eq!(
            classify("SET SESSION duckstream.geometry_output = 'wkt'"),
            set("duckstream.geometry_output", Some("wkt"))
        );
        assert_eq!(
            classify("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"),
            Statement::Tag("SET")
        );
        assert_eq!(classify("RESET ALL"), Statement::Reset(None));
        assert_eq!(
            classify("show TRANSACTION ISOLATION LEVEL"),
            Statement::Show("transaction_isolation".into())
        );
        assert_eq!(
            classify("SHOW DateStyle"),
            Statement::Show("datestyle".into())
        );
        assert_eq!(classify("select pg_catalog.version()"), Statement::Version);
        assert_eq!(classify("SELECT version();"), Statement::Version);
    }

    #[test]
    fn the_rest_goes_to_the_engine_or_is_refused() {
        assert_eq!(classify("SELECT 1"), Statement::Query("SELECT 1"));
        assert_eq!(
            classify("select version() || 'x'"),
            Statement::Query("select version() || 'x'")
        );
        assert!(matches!(
            classify("COPY t TO '/tmp/x'"),
            Statement::Refused("42501", _)
        ));
        assert!(matches!(
            classify("COPY (SELECT 1) TO PROGRAM 'id'"),
            Statement::Refused("42501", _)
        ));
        assert!(matches!(
            classify("COPY t FROM STDIN"),
            Statement::Refused("0A000", _)
        ));
        assert!(matches!(
            classify("LISTEN x"),
            Statement::Refused("0A000", _)
        ));
        assert!(matches!(
            classify("/* c */ PREPARE p AS SELECT 1"),
            Statement::Refused("0A000", _)
        ));
        assert!(matches!(classify("SET x"), Statement::Refused("42601", _)));
    }

    #[test]
    fn copy_to_stdout_is_a_query() {
        let Statement::CopyOut(c) = classify(
            "COPY ( select a, ')' from t ) TO STDOUT with (format csv, header, delimiter ';')",
        ) else {
            panic!("not a COPY")
        };
        assert_eq!(c.query, "select a, ')' from t");
        assert_eq!(
            (c.format, c.header, c.delimiter),
            (CopyFormat::Csv, true, Some(b';'))
        );
        let Statement::CopyOut(c) = classify("copy people (id, name) to stdout binary") else {
            panic!("not a COPY")
        };
        assert_eq!(c.query, "SELECT \"id\", \"name\" FROM \"people\"");
        assert_eq!(c.format, CopyFormat::Binary);
        let Statement::CopyOut(c) = classify("COPY geo.zones TO STDOUT CSV HEADER NULL 'x'") else {
            panic!("not a COPY")
        };
        assert_eq!(c.query, "SELECT * FROM \"geo\".\"zones\"");
        assert_eq!((c.header, c.null.as_deref()), (true, Some("x")));
    }

    #[test]
    fn cursors_are_the_endpoints() {
        assert_eq!(
            classify("DECLARE \"c\" CURSOR WITHOUT HOLD FOR select 1 as forward"),
            Statement::Declare {
                name: "c".into(),
                binary: false,
                query: "select 1 as forward"
            }
        );
        assert!(matches!(
            classify("declare c binary cursor for select 2"),
            Statement::Declare { binary: true, .. }
        ));
        let fetch = |name: &str, count| Statement::Fetch {
            name: name.into(),
            count,
        };
        assert_eq!(
            classify("FETCH FORWARD 10 FROM \"c\""),
            fetch("c", Some(10))
        );
        assert_eq!(classify("fetch all in c"), fetch("c", None));
        assert_eq!(classify("FETCH NEXT FROM c"), fetch("c", Some(1)));
        assert_eq!(
            classify("CLOSE \"c\""),
            Statement::CloseCursor(Some("c".into()))
        );
        assert_eq!(classify("close all"), Statement::CloseCursor(None));
    }
}
