//! The PostgreSQL catalog rewrite: a client's catalog SQL (psql `\dt`, SQLAlchemy's inspection,
//! Grafana, asyncpg) becomes SQL that DuckDB answers from the macros of the attached catalog
//! `ds_pg` (`src/engine/pg_catalog.sql`, docs/design/pgwire.md §7.6).
//!
//! This is a port of `scripts/pg_catalog_rewrite.py`, the reference: the same rules, in the same
//! order, on the same tokens, each one run until it changes nothing more (one change per pass,
//! searched for from the start again):
//! 1. `OPERATOR(pg_catalog.OP)` → `OP`; 2. `COLLATE pg_catalog.default` → dropped;
//! 3. casts to PostgreSQL-only types (`::regclass` → `ds_pg.regclass(E, S)`, `::name` → `VARCHAR`);
//! 4. `A ~ B` → `regexp_matches(A, B)`; 5. catalog relations → `ds_pg.R(S)`;
//! 6. catalog functions → `ds_pg.f(…[, S])`; 7. scalar functions in FROM → subqueries;
//! 8. `SHOW x` → `SELECT ds_pg.current_setting('x')`.
//!
//! S is the scope literal the caller renders (`NULL`, or `['t', 's.t']::VARCHAR[]`).
//!
//! Why tokens and not a parse tree: DuckDB 1.5.5's parser refuses some of what clients send
//! (`x::pg_catalog.text`), and binds other parts differently (`OPERATOR(pg_catalog.~)` loses its
//! operator, `~` is a full match, scalar functions in FROM fail), so the text must change before
//! DuckDB parses it. A parse tree of our own would be a second SQL grammar to keep in step with
//! DuckDB's; the rules only need a token's neighbours and bracket depth.
//!
//! Invariants:
//! - The output is byte-for-byte the reference's (tests: every row of
//!   tests/data/pg_catalog.tsv, and scoped rows). Where the reference raises, `rewrite` answers
//!   [`RewriteError::Unreadable`]. The reference's Python semantics are kept where they show: its
//!   `\s` and `\d` are Unicode's, `.lower()` is Unicode's, and an operand that runs off the start
//!   of the text is its `toks[-1]`. Beyond it: a character above U+FFFF is an identifier
//!   character (the reference cannot tokenize it), and a rule that would grow the text without
//!   end (the reference loops forever) is `Unreadable`.
//! - It never panics: no indexing that can fail, brackets matched by counting, FROM depth kept on
//!   an explicit stack (no recursion a deep text can overflow), every rule's loop bounded.
//! - Client text naming `ds_pg` (an identifier or a quoted name, outside strings and comments) is
//!   refused before any rule runs: only the rewrite writes `ds_pg.`, always with the caller's S.
//!   Text that cannot be tokenized is refused when `ds_pg` is anywhere in it (what cannot be
//!   read cannot be cleared); [`needs_rewrite`] is true for any `ds_pg`, so the refusal runs.

use std::borrow::Cow;
use std::fmt;

/// Why a client's text is not rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RewriteError {
    /// The text names the `ds_pg` catalog itself (a name or a quoted name, outside strings and
    /// comments): a client never may.
    NamesOurCatalog,
    /// The text cannot be tokenized or has unbalanced brackets (DuckDB's parser will say what is wrong: callers may pass the text on unchanged or refuse).
    Unreadable,
}

impl fmt::Display for RewriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RewriteError::NamesOurCatalog => "the text names the ds_pg catalog",
            RewriteError::Unreadable => "the text cannot be read as SQL tokens",
        })
    }
}

impl std::error::Error for RewriteError {}

/// The catalog that holds the macros (`ATTACH ':memory:' AS ds_pg`).
pub const CATALOG: &str = "ds_pg";

/// Relation macro names (pg_catalog's and information_schema's) the rewrite may produce: `ds_pg.<name>(<scope>)`.
pub const RELATIONS: &[&str] = &[
    "columns",
    "key_column_usage",
    "pg_am",
    "pg_attrdef",
    "pg_attribute",
    "pg_auth_members",
    "pg_authid",
    "pg_cast",
    "pg_class",
    "pg_collation",
    "pg_constraint",
    "pg_database",
    "pg_depend",
    "pg_description",
    "pg_enum",
    "pg_event_trigger",
    "pg_extension",
    "pg_foreign_table",
    "pg_index",
    "pg_indexes",
    "pg_inherits",
    "pg_language",
    "pg_matviews",
    "pg_namespace",
    "pg_opclass",
    "pg_operator",
    "pg_partitioned_table",
    "pg_policy",
    "pg_proc",
    "pg_publication",
    "pg_publication_namespace",
    "pg_publication_rel",
    "pg_range",
    "pg_rewrite",
    "pg_roles",
    "pg_sequence",
    "pg_sequences",
    "pg_settings",
    "pg_shdescription",
    "pg_stat_activity",
    "pg_stat_user_tables",
    "pg_statistic_ext",
    "pg_tables",
    "pg_tablespace",
    "pg_trigger",
    "pg_type",
    "pg_user",
    "pg_views",
    "schemata",
    "table_constraints",
    "tables",
    "views",
];

/// Functions the rewrite may produce that take the scope as their last argument (SCOPED_FUNCTIONS, plus regclass, regclass_name, regnamespace, regnamespace_name, which the cast rule produces with the scope).
pub const SCOPED_FUNCTIONS: &[&str] = &[
    "col_description",
    "has_any_column_privilege",
    "has_column_privilege",
    "has_table_privilege",
    "obj_description",
    "pg_get_constraintdef",
    "pg_get_indexdef",
    "pg_get_viewdef",
    "regclass",
    "regclass_name",
    "regnamespace",
    "regnamespace_name",
    "to_regclass",
];

/// Every other ds_pg function the rewrite may produce (FUNCTIONS minus scoped, plus regtype, regtype_name, regproc_name, regrole_name, session_user, current_setting ...): none of them reads a relation.
pub const FUNCTIONS: &[&str] = &[
    "array_lower",
    "array_ndims",
    "array_upper",
    "current_schemas",
    "current_setting",
    "format_type",
    "has_database_privilege",
    "has_schema_privilege",
    "parse_ident",
    "pg_backend_pid",
    "pg_char_to_encoding",
    "pg_collation_is_visible",
    "pg_encoding_to_char",
    "pg_function_is_visible",
    "pg_get_expr",
    "pg_get_function_arguments",
    "pg_get_function_identity_arguments",
    "pg_get_function_result",
    "pg_get_partkeydef",
    "pg_get_serial_sequence",
    "pg_get_statisticsobjdef_columns",
    "pg_get_triggerdef",
    "pg_get_userbyid",
    "pg_indexes_size",
    "pg_is_in_recovery",
    "pg_partition_ancestors",
    "pg_partition_root",
    "pg_relation_is_publishable",
    "pg_relation_size",
    "pg_table_is_visible",
    "pg_table_size",
    "pg_total_relation_size",
    "pg_type_is_visible",
    "quote_ident",
    "regproc_name",
    "regrole_name",
    "regtype",
    "regtype_name",
    "session_user",
    "set_config",
    "shobj_description",
    "to_regtype",
    "version",
];

// The reference's sets, sorted (as the lists above, for `listed` and for the reader). The
// public lists are what the output may contain; these are what the rules look for.

/// pg_catalog relations: `pg_catalog.R` and a bare `R` in FROM become `ds_pg.R(S)`.
const PG_RELATIONS: &[&str] = &[
    "pg_am",
    "pg_attrdef",
    "pg_attribute",
    "pg_auth_members",
    "pg_authid",
    "pg_cast",
    "pg_class",
    "pg_collation",
    "pg_constraint",
    "pg_database",
    "pg_depend",
    "pg_description",
    "pg_enum",
    "pg_event_trigger",
    "pg_extension",
    "pg_foreign_table",
    "pg_index",
    "pg_indexes",
    "pg_inherits",
    "pg_language",
    "pg_matviews",
    "pg_namespace",
    "pg_opclass",
    "pg_operator",
    "pg_partitioned_table",
    "pg_policy",
    "pg_proc",
    "pg_publication",
    "pg_publication_namespace",
    "pg_publication_rel",
    "pg_range",
    "pg_rewrite",
    "pg_roles",
    "pg_sequence",
    "pg_sequences",
    "pg_settings",
    "pg_shdescription",
    "pg_stat_activity",
    "pg_stat_user_tables",
    "pg_statistic_ext",
    "pg_tables",
    "pg_tablespace",
    "pg_trigger",
    "pg_type",
    "pg_user",
    "pg_views",
];

/// information_schema relations: only `information_schema.R` is rewritten (a bare `tables` is
/// the client's own).
const INFORMATION_SCHEMA_RELATIONS: &[&str] = &[
    "columns",
    "key_column_usage",
    "schemata",
    "table_constraints",
    "tables",
    "views",
];

/// Functions a client calls (bare or `pg_catalog.`-qualified) that become `ds_pg.f(`: the
/// reference's FUNCTIONS, its scoped ones included.
const CLIENT_FUNCTIONS: &[&str] = &[
    "array_lower",
    "array_ndims",
    "array_upper",
    "col_description",
    "current_schemas",
    "current_setting",
    "format_type",
    "has_any_column_privilege",
    "has_column_privilege",
    "has_database_privilege",
    "has_schema_privilege",
    "has_table_privilege",
    "obj_description",
    "parse_ident",
    "pg_backend_pid",
    "pg_char_to_encoding",
    "pg_collation_is_visible",
    "pg_encoding_to_char",
    "pg_function_is_visible",
    "pg_get_constraintdef",
    "pg_get_expr",
    "pg_get_function_arguments",
    "pg_get_function_identity_arguments",
    "pg_get_function_result",
    "pg_get_indexdef",
    "pg_get_partkeydef",
    "pg_get_serial_sequence",
    "pg_get_statisticsobjdef_columns",
    "pg_get_triggerdef",
    "pg_get_userbyid",
    "pg_get_viewdef",
    "pg_indexes_size",
    "pg_is_in_recovery",
    "pg_partition_ancestors",
    "pg_partition_root",
    "pg_relation_is_publishable",
    "pg_relation_size",
    "pg_table_is_visible",
    "pg_table_size",
    "pg_total_relation_size",
    "pg_type_is_visible",
    "quote_ident",
    "set_config",
    "shobj_description",
    "to_regclass",
    "to_regtype",
    "version",
];

/// Of CLIENT_FUNCTIONS, those that get the scope as their last argument (they read relations).
const CLIENT_SCOPED_FUNCTIONS: &[&str] = &[
    "col_description",
    "has_any_column_privilege",
    "has_column_privilege",
    "has_table_privilege",
    "obj_description",
    "pg_get_constraintdef",
    "pg_get_indexdef",
    "pg_get_viewdef",
    "to_regclass",
];

/// Functions DuckDB has under another name.
const RENAMED_FUNCTIONS: &[(&str, &str)] = &[("json_build_object", "json_object")];

/// Bare words PostgreSQL reads as the session's role.
const USER_KEYWORDS: &[&str] = &["current_role", "current_user", "session_user", "user"];

/// Set-returning functions: in FROM, they are already relations.
const SET_RETURNING: &[&str] = &[
    "generate_series",
    "range",
    "regexp_split_to_table",
    "unnest",
];

/// Types whose cast of a `ds_pg.reg*(…)` call asks for the name (`x::regclass::text`).
/// (`character varying` never matches: the type's spaces are gone before the lookup.)
const TEXT_TYPES: &[&str] = &["character varying", "name", "text", "varchar"];

/// Types that keep a reg* value an OID when cast to them (`x::regclass::oid`).
const OID_TYPES: &[&str] = &[
    "bigint",
    "int",
    "int4",
    "int8",
    "integer",
    "oid",
    "regclass",
    "regnamespace",
    "regtype",
];

/// A reg* type's cast: the function for an OID, whether it takes S, the function for the name.
struct RegType {
    name: &'static str,
    oid_fn: &'static str,
    scoped: bool,
    name_fn: &'static str,
}

const REG_TYPES: &[RegType] = &[
    RegType {
        name: "regclass",
        oid_fn: "ds_pg.regclass",
        scoped: true,
        name_fn: "ds_pg.regclass_name",
    },
    RegType {
        name: "regtype",
        oid_fn: "ds_pg.regtype",
        scoped: false,
        name_fn: "ds_pg.regtype_name",
    },
    RegType {
        name: "regnamespace",
        oid_fn: "ds_pg.regnamespace",
        scoped: true,
        name_fn: "ds_pg.regnamespace_name",
    },
    RegType {
        name: "regproc",
        oid_fn: "ds_pg.regproc_name",
        scoped: false,
        name_fn: "ds_pg.regproc_name",
    },
    RegType {
        name: "regprocedure",
        oid_fn: "ds_pg.regproc_name",
        scoped: false,
        name_fn: "ds_pg.regproc_name",
    },
    RegType {
        name: "regrole",
        oid_fn: "ds_pg.regrole_name",
        scoped: false,
        name_fn: "ds_pg.regrole_name",
    },
];

/// PostgreSQL types DuckDB spells otherwise.
const TYPE_RENAMES: &[(&str, &str)] = &[
    ("name", "VARCHAR"),
    ("\"char\"", "VARCHAR"),
    ("bpchar", "VARCHAR"),
    ("int2vector", "SMALLINT[]"),
    ("oidvector", "BIGINT[]"),
    ("jsonb", "JSON"),
];

/// Words after a relation that are not its alias.
const NOT_ALIAS: &[&str] = &[
    "cross",
    "except",
    "fetch",
    "for",
    "full",
    "group",
    "having",
    "inner",
    "intersect",
    "join",
    "lateral",
    "left",
    "limit",
    "natural",
    "offset",
    "on",
    "order",
    "outer",
    "qualify",
    "returning",
    "right",
    "tablesample",
    "union",
    "using",
    "where",
    "window",
];

/// Words that end a FROM clause at the same depth.
const END_FROM: &[&str] = &[
    "except",
    "fetch",
    "for",
    "group",
    "having",
    "intersect",
    "limit",
    "offset",
    "order",
    "qualify",
    "returning",
    "select",
    "union",
    "where",
    "window",
];

/// Text some rule acts on (besides CLIENT_FUNCTIONS and USER_KEYWORDS), lower case and without
/// spaces, for [`needs_rewrite`]: `reg` covers the reg* types and to_regclass/to_regtype,
/// `pg_` the pg_catalog relations, functions and `pg_catalog.` itself.
const TRIGGERS: &[&str] = &[
    "ds_pg",
    "pg_",
    "information_schema",
    "operator",
    "collate",
    "~",
    "reg",
    "jsonb",
    "int2vector",
    "oidvector",
    "bpchar",
    "\"char\"",
    "json_build_object",
];

/// Rewrites `sql` for DuckDB. `scope` is the SQL text of the scope literal: `"NULL"` (every table) or e.g. `"['main.parcels', 's2.t']::VARCHAR[]"`; it is inserted verbatim.
pub fn rewrite(sql: &str, scope: &str) -> Result<String, RewriteError> {
    let toks = match tokenize(sql) {
        Ok(toks) => toks,
        // The reference answers `SHOW` before it tokenizes; what we cannot read we cannot
        // clear of `ds_pg`, so any spelling of it refuses.
        Err(_) if contains_catalog_name(sql) => return Err(RewriteError::NamesOurCatalog),
        Err(err) => return rule_show(sql).ok_or(err),
    };
    if toks.iter().any(names_catalog) {
        return Err(RewriteError::NamesOurCatalog);
    }
    if let Some(show) = rule_show(sql) {
        return Ok(show);
    }
    let toks = rule_operator(toks)?;
    let toks = rule_collate(toks);
    let toks = fixed_point(toks, scope, |t| cast_edit(t, scope))?;
    let toks = fixed_point(toks, scope, regex_edit)?;
    let toks = fixed_point(toks, scope, |t| relation_edit(t, scope))?;
    let toks = fixed_point(toks, scope, |t| function_edit(t, scope))?;
    let toks = fixed_point(toks, scope, from_function_edit)?;
    Ok(text(&toks))
}

/// Whether the rewrite would change anything: cheap pre-check so ordinary data queries skip the work. Must be true whenever `rewrite` would change the text (e.g. the text contains, case-insensitively, `pg_`, `information_schema`, `::reg`, `regclass`, `~`, `operator(`, `collate`, `::name`, `"char"`, `jsonb`, `current_user`, ..., `show`, `version`, one of the FUNCTIONS names, json_build_object, generate_series/unnest/range/regexp_split_to_table..., or `ds_pg`). Being conservative (true too often) is fine; false when a rewrite is needed is a bug. Test it against every TSV row where sql != rewritten.
///
/// How it is complete: rules 1 to 6 change nothing unless a word of theirs is in the text
/// (searched for without spaces, as the cast rule's `CAST(x AS n ame)` reads `name`); U+212A
/// (Kelvin), `ſ` and `İ` lower-case or match to ASCII letters in the reference, so they count as
/// anything. Without those words, rule 7 sees the client's own tokens: it is asked directly.
/// `ds_pg` anywhere is true, so that the refusal runs.
pub fn needs_rewrite(sql: &str) -> bool {
    if sql.contains(['\u{212A}', '\u{17F}', '\u{130}']) {
        return true;
    }
    let squeezed: String = sql
        .chars()
        .filter(|c| !is_py_space(*c))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let has = |word: &str| squeezed.contains(word);
    let cast = has("::") || has("cast");
    let words = || TRIGGERS.iter().chain(CLIENT_FUNCTIONS).chain(USER_KEYWORDS);
    // a word that holds another (`pg_get_expr` holds `pg_`) is found with it
    let needed = |w: &&&str| !words().any(|v| v != *w && w.contains(*v));
    if words().filter(needed).any(|w| has(w)) || (cast && has("name")) || rule_show(sql).is_some() {
        return true;
    }
    tokenize(sql).is_ok_and(|toks| matches!(from_function_edit(&toks), Ok(Some(_))))
}

/// Whether `ds_pg` is anywhere in the text, in any case.
/// `ds_pg` or `"ds_pg"` (DuckDB resolves a quoted name without regard to case too).
fn names_catalog(t: &Tok<'_>) -> bool {
    match t.kind {
        Kind::Ident => t.low_is(CATALOG),
        Kind::QIdent => t
            .text
            .strip_prefix('"')
            .and_then(|q| q.strip_suffix('"'))
            .is_some_and(|name| name.eq_ignore_ascii_case(CATALOG)),
        _ => false,
    }
}

fn contains_catalog_name(sql: &str) -> bool {
    sql.as_bytes()
        .windows(CATALOG.len())
        .any(|w| w.eq_ignore_ascii_case(CATALOG.as_bytes()))
}

// ---------------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------------

/// A token's kind, as the reference's TOKEN_RE names its groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ws,
    Comment,
    Str,
    QIdent,
    Param,
    Number,
    Ident,
    Cast,
    Op,
    Punct,
}

/// One token: the text is the client's (borrowed) or the rewrite's (owned).
#[derive(Debug, Clone)]
struct Tok<'a> {
    kind: Kind,
    text: Cow<'a, str>,
}

impl Tok<'static> {
    fn owned(kind: Kind, text: &str) -> Self {
        Tok {
            kind,
            text: Cow::Owned(text.to_owned()),
        }
    }
}

impl Tok<'_> {
    /// Whitespace and comments are skipped by every rule (the reference's `sig`).
    fn is_sig(&self) -> bool {
        !matches!(self.kind, Kind::Ws | Kind::Comment)
    }

    /// The reference's `.low`: Python's `str.lower()`.
    fn low(&self) -> Cow<'_, str> {
        py_lower(&self.text)
    }

    /// Whether `.low` is `word` (lower case ASCII), without allocating for ASCII text.
    fn low_is(&self, word: &str) -> bool {
        if self.text.is_ascii() {
            self.text.eq_ignore_ascii_case(word)
        } else {
            self.text.to_lowercase() == word
        }
    }

    /// Whether `.low` is in `words` (lower case ASCII), without allocating for ASCII text.
    fn low_listed(&self, words: &[&str]) -> bool {
        if self.text.is_ascii() {
            let len = self.text.len();
            words
                .iter()
                .any(|w| w.len() == len && self.text.eq_ignore_ascii_case(w))
        } else {
            listed(words, &self.text.to_lowercase())
        }
    }

    fn is_punct(&self, text: &str) -> bool {
        self.kind == Kind::Punct && self.text == text
    }

    fn is_name(&self) -> bool {
        matches!(self.kind, Kind::Ident | Kind::QIdent)
    }
}

/// Python's `str.lower()` (Unicode's full lower-casing, which Rust's `to_lowercase` also is),
/// without an allocation for text already in lower case ASCII.
fn py_lower(s: &str) -> Cow<'_, str> {
    if !s.is_ascii() {
        Cow::Owned(s.to_lowercase())
    } else if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

/// Python's `\s` and `str.isspace()`: Unicode's whitespace and the ASCII separators 0x1C-0x1F.
fn is_py_space(c: char) -> bool {
    matches!(
        c,
        '\t'..='\r'
            | '\u{1C}'..=' '
            | '\u{85}'
            | '\u{A0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200A}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202F}'
            | '\u{205F}'
            | '\u{3000}'
    )
}

/// The first digits of every run of ten decimal digits beyond ASCII (Unicode 14's Nd, the
/// reference's Python 3.11): Python's `\d` matches them.
const DIGIT_RUNS: &[u32] = &[
    0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66, 0xDE6,
    0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90, 0x1B50,
    0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650,
    0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0, 0x16B50,
    0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

/// Python's `\d`: a decimal digit of any script.
fn is_py_digit(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    let c = u32::from(c);
    let runs_started = DIGIT_RUNS.partition_point(|&first| first <= c);
    runs_started
        .checked_sub(1)
        .and_then(|i| DIGIT_RUNS.get(i))
        .is_some_and(|&first| c < first + 10)
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || !c.is_ascii()
}

/// The reference's `[A-Za-z0-9_$\u0080-\uffff]`, and a character above U+FFFF too (the
/// reference cannot tokenize one) unless it is a digit (its `\d` reads one as a number).
fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || c == '_'
        || c == '$'
        || (!c.is_ascii() && (c <= '\u{FFFF}' || !is_py_digit(c)))
}

fn is_op_char(c: char) -> bool {
    "+-*/<>=~!@#%^&|`?".contains(c)
}

fn is_punct_char(c: char) -> bool {
    "(),;.[]:{}".contains(c)
}

/// Splits `sql` into tokens as the reference's TOKEN_RE does: its alternatives in its order,
/// the first that matches at a position wins.
fn tokenize(sql: &str) -> Result<Vec<Tok<'_>>, RewriteError> {
    let mut toks = Vec::with_capacity(sql.len() / 4);
    let mut rest = sql;
    while !rest.is_empty() {
        let (kind, len) = next_token(rest).ok_or(RewriteError::Unreadable)?;
        let (text, tail) = rest.split_at_checked(len).ok_or(RewriteError::Unreadable)?;
        push_token(&mut toks, kind, text);
        rest = tail;
    }
    Ok(toks)
}

/// The rewrite's own text as tokens that outlive the text.
fn retokenize(sql: &str) -> Result<Vec<Tok<'static>>, RewriteError> {
    Ok(tokenize(sql)?
        .into_iter()
        .map(|t| Tok::owned(t.kind, &t.text))
        .collect())
}

/// `a=-1`: PostgreSQL splits a trailing + or - off an operator of plain characters.
fn push_token<'a>(toks: &mut Vec<Tok<'a>>, kind: Kind, text: &'a str) {
    let plain = || !text.contains(['~', '!', '@', '#', '%', '^', '&', '|', '`', '?']);
    if kind == Kind::Op && text.len() > 1 && text.ends_with(['+', '-']) && plain() {
        if let Some((op, sign)) = text.split_at_checked(text.len() - 1) {
            toks.push(Tok {
                kind,
                text: Cow::Borrowed(op),
            });
            toks.push(Tok {
                kind,
                text: Cow::Borrowed(sign),
            });
            return;
        }
    }
    toks.push(Tok {
        kind,
        text: Cow::Borrowed(text),
    });
}

/// The kind and byte length of the token `s` starts with; None where the reference raises.
fn next_token(s: &str) -> Option<(Kind, usize)> {
    let c = s.chars().next()?;
    if is_py_space(c) {
        return Some((Kind::Ws, run_len(s, is_py_space)));
    }
    if let Some(n) = comment_len(s) {
        return Some((Kind::Comment, n));
    }
    if let Some(n) = string_len(s) {
        return Some((Kind::Str, n));
    }
    if let Some(n) = quoted_len(s, "\"", b'"', false) {
        return Some((Kind::QIdent, n));
    }
    if let Some(n) = param_len(s) {
        return Some((Kind::Param, n));
    }
    if let Some(n) = number_len(s) {
        return Some((Kind::Number, n));
    }
    if is_ident_start(c) {
        let tail = s.get(c.len_utf8()..).unwrap_or("");
        return Some((Kind::Ident, c.len_utf8() + run_len(tail, is_ident_char)));
    }
    if s.starts_with("::") {
        return Some((Kind::Cast, 2));
    }
    if is_op_char(c) {
        return Some((Kind::Op, run_len(s, is_op_char)));
    }
    is_punct_char(c).then_some((Kind::Punct, 1))
}

/// Byte length of the longest prefix of `s` whose characters all satisfy `pred`.
fn run_len(s: &str, pred: impl Fn(char) -> bool) -> usize {
    s.char_indices()
        .find(|&(_, c)| !pred(c))
        .map_or(s.len(), |(i, _)| i)
}

/// `--[^\n]*` or `/\*.*?\*/` (an unterminated `/*` is not a comment: it becomes an operator).
fn comment_len(s: &str) -> Option<usize> {
    if s.starts_with("--") {
        return Some(s.find('\n').unwrap_or(s.len()));
    }
    if s.starts_with("/*") {
        return s.get(2..)?.find("*/").map(|end| end + 4);
    }
    None
}

/// `E'…'` (backslash escapes), `'…'`, or `$$…$$`.
fn string_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    match (b.first(), b.get(1)) {
        (Some(b'e' | b'E'), Some(b'\'')) => quoted_len(s, "e'", b'\'', true),
        (Some(b'\''), _) => quoted_len(s, "'", b'\'', false),
        (Some(b'$'), Some(b'$')) => s.get(2..)?.find("$$").map(|end| end + 4),
        _ => None,
    }
}

/// `open` then `(?:[^q]|q q)*q` (with `\\.` too when `backslash`), as Python's regex engine
/// matches it: greedily, and when no closing quote follows, backtracking to end the literal at
/// the first quote of its last doubled pair.
fn quoted_len(s: &str, open: &str, quote: u8, backslash: bool) -> Option<usize> {
    let b = s.as_bytes();
    let opened = b
        .get(..open.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(open.as_bytes()));
    if !opened {
        return None;
    }
    let mut i = open.len();
    let mut last_pair = None;
    loop {
        match b.get(i) {
            Some(&b'\\') if backslash => match s.get(i + 1..).and_then(|r| r.chars().next()) {
                Some(escaped) => i += 1 + escaped.len_utf8(),
                None => return last_pair.map(|p: usize| p + 1),
            },
            Some(&c) if c == quote => {
                if b.get(i + 1) != Some(&quote) {
                    return Some(i + 1);
                }
                last_pair = Some(i);
                i += 2;
            }
            Some(_) => i += 1,
            None => return last_pair.map(|p| p + 1),
        }
    }
}

/// `\$\d+`.
fn param_len(s: &str) -> Option<usize> {
    let digits = run_len(s.strip_prefix('$')?, is_py_digit);
    (digits > 0).then_some(1 + digits)
}

/// `\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+`.
fn number_len(s: &str) -> Option<usize> {
    let digits = run_len(s, is_py_digit);
    if digits == 0 {
        let fraction = run_len(s.strip_prefix('.')?, is_py_digit);
        return (fraction > 0).then_some(1 + fraction);
    }
    let mut n = digits;
    if let Some(fraction) = s.get(n..).and_then(|r| r.strip_prefix('.')) {
        n += 1 + run_len(fraction, is_py_digit);
    }
    Some(n + s.get(n..).map_or(0, exponent_len))
}

/// `[eE][+-]?\d+` at the start of `s`, or 0.
fn exponent_len(s: &str) -> usize {
    let Some(rest) = s.strip_prefix(['e', 'E']) else {
        return 0;
    };
    let sign = usize::from(rest.starts_with(['+', '-']));
    let digits = rest.get(sign..).map_or(0, |r| run_len(r, is_py_digit));
    if digits == 0 {
        0
    } else {
        1 + sign + digits
    }
}

fn text(toks: &[Tok<'_>]) -> String {
    toks.iter().map(|t| t.text.as_ref()).collect()
}

// ---------------------------------------------------------------------------------------------
// Positions, with the reference's Python semantics
// ---------------------------------------------------------------------------------------------

/// A token index as the reference computes it: its walks stop at -1 or past the end.
type Ix = isize;

fn ix(i: usize) -> Ix {
    Ix::try_from(i).unwrap_or(Ix::MAX)
}

/// The reference's `at`: the token at `i`, None outside.
fn at<'t, 'a>(toks: &'t [Tok<'a>], i: Ix) -> Option<&'t Tok<'a>> {
    usize::try_from(i).ok().and_then(|i| toks.get(i))
}

/// The reference's `toks[i]`: -1 is the last token (an operand that starts before the text
/// does); past the end is its IndexError.
fn index<'t, 'a>(toks: &'t [Tok<'a>], i: Ix) -> Result<&'t Tok<'a>, RewriteError> {
    let i = if i < 0 { i + ix(toks.len()) } else { i };
    at(toks, i).ok_or(RewriteError::Unreadable)
}

/// A bound of Python's slice `toks[i:]` / `toks[:i]`.
fn bound(toks: &[Tok<'_>], i: Ix) -> usize {
    let len = ix(toks.len());
    let i = if i < 0 { (i + len).max(0) } else { i.min(len) };
    usize::try_from(i).unwrap_or(0)
}

/// Python's `toks[start:stop]`.
fn slice<'t, 'a>(toks: &'t [Tok<'a>], start: Ix, stop: Ix) -> &'t [Tok<'a>] {
    toks.get(bound(toks, start)..bound(toks, stop))
        .unwrap_or(&[])
}

/// The reference's `sig`: the next token from `i` (inclusive) that is not whitespace or a
/// comment, walking by `step`; -1 or the length when there is none.
fn sig(toks: &[Tok<'_>], mut i: Ix, step: Ix) -> Ix {
    while at(toks, i).is_some_and(|t| !t.is_sig()) {
        i += step;
    }
    i
}

/// The reference's `is_word`: an identifier that is one of `words`, in any case.
fn is_word(t: Option<&Tok<'_>>, words: &[&str]) -> bool {
    t.is_some_and(|t| t.kind == Kind::Ident && words.iter().any(|w| t.low_is(w)))
}

/// Whether the token's text is `text` (the reference compares many neighbours by text alone).
fn text_is(t: Option<&Tok<'_>>, text: &str) -> bool {
    t.is_some_and(|t| t.text == text)
}

fn listed(sorted: &[&str], word: &str) -> bool {
    sorted.binary_search(&word).is_ok()
}

/// `i` is at `(` or `[`: the index of its closing bracket, counting depth (no recursion).
fn match_close(toks: &[Tok<'_>], i: Ix) -> Result<Ix, RewriteError> {
    let (open, close) = match at(toks, i).map(|t| t.text.as_ref()) {
        Some("(") => ("(", ")"),
        Some("[") => ("[", "]"),
        _ => return Err(RewriteError::Unreadable),
    };
    let mut depth = 0_i64;
    for (j, t) in toks.iter().enumerate().skip(bound(toks, i)) {
        if t.is_punct(open) {
            depth += 1;
        } else if t.is_punct(close) {
            depth -= 1;
            if depth == 0 {
                return Ok(ix(j));
            }
        }
    }
    Err(RewriteError::Unreadable)
}

/// `j` is at `)` or `]`: the index of its opening bracket. At -1 (the reference's last token
/// seen from before the start) its loop is empty: unbalanced.
fn match_open(toks: &[Tok<'_>], j: Ix) -> Result<Ix, RewriteError> {
    let (open, close) = match at(toks, j).map(|t| t.text.as_ref()) {
        Some(")") => ("(", ")"),
        Some("]") => ("[", "]"),
        _ => return Err(RewriteError::Unreadable),
    };
    let mut depth = 0_i64;
    for (i, t) in toks.iter().enumerate().take(bound(toks, j + 1)).rev() {
        if t.is_punct(close) {
            depth += 1;
        } else if t.is_punct(open) {
            depth -= 1;
            if depth == 0 {
                return Ok(ix(i));
            }
        }
    }
    Err(RewriteError::Unreadable)
}

/// Start index of the operand that ends at `end` (inclusive): a name chain, literal, parameter,
/// call, subscript or parenthesized expression, with the casts before it. -1 when it runs off
/// the start (the reference then reads `toks[-1]`).
fn operand_start(toks: &[Tok<'_>], end: Ix) -> Result<Ix, RewriteError> {
    let mut i = end;
    loop {
        let t = index(toks, i)?;
        if t.is_punct(")") || t.is_punct("]") {
            i = match_open(toks, i)?;
            let p = sig(toks, i - 1, -1);
            if let Some(pt) = at(toks, p) {
                let closer = pt.is_punct(")") || pt.is_punct("]");
                if pt.is_name() || (closer && text_is(at(toks, i), "[")) {
                    i = p;
                    continue;
                }
            }
        }
        let p = sig(toks, i - 1, -1);
        match at(toks, p) {
            Some(pt) if pt.is_punct(".") => {
                let q = sig(toks, p - 1, -1);
                if at(toks, q).is_some_and(Tok::is_name) {
                    i = q;
                    continue;
                }
            }
            Some(pt) if pt.kind == Kind::Cast => {
                i = sig(toks, p - 1, -1);
                continue;
            }
            _ => {}
        }
        return Ok(i);
    }
}

/// End index (inclusive) of the operand that starts at `start`.
fn operand_end(toks: &[Tok<'_>], start: Ix) -> Result<Ix, RewriteError> {
    let mut i = start;
    let t = index(toks, i)?;
    if t.is_punct("(") {
        i = match_close(toks, i)?;
    } else if t.is_name() {
        let mut n = sig(toks, i + 1, 1);
        while at(toks, n).is_some_and(|x| x.is_punct(".")) {
            i = sig(toks, n + 1, 1);
            n = sig(toks, i + 1, 1);
        }
        if at(toks, n).is_some_and(|x| x.is_punct("(")) {
            i = match_close(toks, n)?;
        }
    }
    loop {
        let n = sig(toks, i + 1, 1);
        match at(toks, n) {
            Some(x) if x.is_punct("[") => i = match_close(toks, n)?,
            Some(x) if x.kind == Kind::Cast => i = type_end(toks, sig(toks, n + 1, 1))?,
            _ => return Ok(i),
        }
    }
}

/// `i` at the first token of a type name: the index of its last token (`s.t`, `t(…)`, `t[]`).
fn type_end(toks: &[Tok<'_>], mut i: Ix) -> Result<Ix, RewriteError> {
    let mut n = sig(toks, i + 1, 1);
    if at(toks, n).is_some_and(|x| x.is_punct(".")) {
        i = sig(toks, n + 1, 1);
        n = sig(toks, i + 1, 1);
    }
    if at(toks, n).is_some_and(|x| x.is_punct("(")) {
        i = match_close(toks, n)?;
        n = sig(toks, i + 1, 1);
    }
    while at(toks, n).is_some_and(|x| x.is_punct("[")) {
        i = match_close(toks, n)?;
        n = sig(toks, i + 1, 1);
    }
    Ok(i)
}

/// The type spelled by tokens i..=j: without spaces and `pg_catalog.`, lower case unless quoted.
fn type_name(toks: &[Tok<'_>], i: Ix, j: Ix) -> String {
    let mut name: String = slice(toks, i, j + 1)
        .iter()
        .flat_map(|t| t.text.chars())
        .filter(|c| !is_py_space(*c))
        .collect();
    let qualifier = ["pg_catalog.", "\"pg_catalog\"."]
        .iter()
        .find(|prefix| strip_prefix_ignore_ascii_case(&name, prefix).is_some());
    if let Some(qualifier) = qualifier {
        name.drain(..qualifier.len());
    }
    if name.starts_with('"') {
        name
    } else if name.is_ascii() {
        name.make_ascii_lowercase();
        name
    } else {
        name.to_lowercase()
    }
}

fn strip_prefix_ignore_ascii_case<'s>(s: &'s str, prefix: &str) -> Option<&'s str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| s.get(prefix.len()..))
        .flatten()
}

/// The reference's `(?i)(pg_catalog|"pg_catalog")\s*\.` at the start of a type's tokens.
fn qualified_by_pg_catalog(span: &[Tok<'_>]) -> bool {
    let mut chars = span.iter().flat_map(|t| t.text.chars()).peekable();
    let quoted = chars.next_if_eq(&'"').is_some();
    let schema = "pg_catalog"
        .chars()
        .all(|w| chars.next().is_some_and(|c| c.to_ascii_lowercase() == w));
    let closed = !quoted || chars.next() == Some('"');
    schema && closed && chars.find(|c| !is_py_space(*c)) == Some('.')
}

/// Python's `str.strip()`.
fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

// ---------------------------------------------------------------------------------------------
// Edits and the rules' loops
// ---------------------------------------------------------------------------------------------

/// One change: the reference's `toks[:head] + new + toks[tail:]`.
struct Edit<'a> {
    head: Ix,
    new: Vec<Tok<'a>>,
    tail: Ix,
}

impl<'a> Edit<'a> {
    fn new(head: Ix, new: Vec<Tok<'a>>, tail: Ix) -> Self {
        Edit { head, new, tail }
    }

    /// `toks[:head] + tokenize(sql) + toks[tail:]`.
    fn text(head: Ix, sql: &str, tail: Ix) -> Result<Option<Self>, RewriteError> {
        Ok(Some(Edit::new(head, retokenize(sql)?, tail)))
    }

    fn apply(self, mut toks: Vec<Tok<'a>>) -> Vec<Tok<'a>> {
        let (head, tail) = (bound(&toks, self.head), bound(&toks, self.tail));
        if head <= tail {
            toks.splice(head..tail, self.new);
            return toks;
        }
        // head -1 (`toks[:-1]`): the reference keeps the tokens before the last, then repeats
        // those from `tail`.
        let kept = toks.get(..head).unwrap_or(&[]);
        let repeated = toks.get(tail..).unwrap_or(&[]);
        let mut out = Vec::with_capacity(kept.len() + self.new.len() + repeated.len());
        out.extend_from_slice(kept);
        out.extend(self.new);
        out.extend_from_slice(repeated);
        out
    }
}

/// Bounds a rule's loop. On SQL each change removes what triggered it, so a rule changes a text
/// at most about once per token, and grows it by a replacement and the scope at most; an
/// operand that runs off the start (`toks[-1]`) can instead copy the text's tail, forever.
struct Budget {
    passes_left: usize,
    max_growth: usize,
    len: usize,
}

impl Budget {
    fn new(toks: &[Tok<'_>], scope: &str) -> Self {
        Budget {
            passes_left: toks.len().saturating_mul(2).saturating_add(64),
            max_growth: scope.len().saturating_add(32),
            len: toks.len(),
        }
    }

    fn spend(&mut self, toks: &[Tok<'_>]) -> Result<(), RewriteError> {
        if self.passes_left == 0 || toks.len() > self.len.saturating_add(self.max_growth) {
            return Err(RewriteError::Unreadable);
        }
        self.passes_left -= 1;
        self.len = toks.len();
        Ok(())
    }
}

/// Runs one rule as the reference's `while changed` loops do: find the first change from the
/// start, make it, and again, until there is none.
fn fixed_point<'a>(
    mut toks: Vec<Tok<'a>>,
    scope: &str,
    find: impl Fn(&[Tok<'a>]) -> Result<Option<Edit<'a>>, RewriteError>,
) -> Result<Vec<Tok<'a>>, RewriteError> {
    let mut budget = Budget::new(&toks, scope);
    while let Some(edit) = find(&toks)? {
        toks = edit.apply(toks);
        budget.spend(&toks)?;
    }
    Ok(toks)
}

// ---------------------------------------------------------------------------------------------
// Rule 1: OPERATOR(pg_catalog.OP) -> OP
// ---------------------------------------------------------------------------------------------

/// DuckDB parses `a OPERATOR(pg_catalog.~) b` but loses the operator: keep the operator alone
/// (one pass, as the reference's).
fn rule_operator(toks: Vec<Tok<'_>>) -> Result<Vec<Tok<'_>>, RewriteError> {
    let mut out = Vec::with_capacity(toks.len());
    let mut i: Ix = 0;
    while let Some(t) = at(&toks, i) {
        if is_word(Some(t), &["operator"]) {
            let a = sig(&toks, i + 1, 1);
            if text_is(at(&toks, a), "(") {
                let close = match_close(&toks, a)?;
                if let Some(op) = operator_inside(slice(&toks, a + 1, close)) {
                    out.push(op);
                    i = close + 1;
                    continue;
                }
            }
        }
        out.push(t.clone());
        i += 1;
    }
    Ok(out)
}

/// The operator `OPERATOR(…)` names: `pg_catalog.OP` (OP whatever token it is) or a lone one.
fn operator_inside<'a>(inner: &[Tok<'a>]) -> Option<Tok<'a>> {
    let inner: Vec<&Tok<'a>> = inner.iter().filter(|t| t.is_sig()).collect();
    match inner.as_slice() {
        [schema, dot, op] if schema.low_is("pg_catalog") && dot.text == "." => Some(Tok {
            kind: Kind::Op,
            text: op.text.clone(),
        }),
        [op] if op.kind == Kind::Op => Some(Tok {
            kind: Kind::Op,
            text: op.text.clone(),
        }),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Rule 2: COLLATE pg_catalog.default / "default" -> dropped
// ---------------------------------------------------------------------------------------------

/// DuckDB keeps `COLLATE pg_catalog.default` and fails to bind it: drop it with the spaces
/// before it (one pass, as the reference's).
fn rule_collate(toks: Vec<Tok<'_>>) -> Vec<Tok<'_>> {
    let mut out: Vec<Tok<'_>> = Vec::with_capacity(toks.len());
    let mut i: Ix = 0;
    while let Some(t) = at(&toks, i) {
        if is_word(Some(t), &["collate"]) {
            let (name, last) = collation_name(&toks, sig(&toks, i + 1, 1));
            let name = py_lower(&name).replace('"', "");
            if name == "default" || name == "pg_catalog.default" {
                while out.last().is_some_and(|w| w.kind == Kind::Ws) {
                    out.pop();
                }
                i = last + 1;
                continue;
            }
        }
        out.push(t.clone());
        i += 1;
    }
    out
}

/// The dotted name from `j` (any tokens, joined by `.`) and the index of its last part.
fn collation_name(toks: &[Tok<'_>], mut j: Ix) -> (String, Ix) {
    let mut name = String::new();
    while let Some(part) = at(toks, j) {
        name.push_str(&part.text);
        let n = sig(toks, j + 1, 1);
        if !text_is(at(toks, n), ".") {
            break;
        }
        name.push('.');
        j = sig(toks, n + 1, 1);
    }
    (name, j)
}

// ---------------------------------------------------------------------------------------------
// Rule 3: casts to PostgreSQL-only types
// ---------------------------------------------------------------------------------------------

/// One cast change: `CAST(E AS T)` innermost first, else `E::T` leftmost first.
fn cast_edit<'a>(toks: &[Tok<'a>], scope: &str) -> Result<Option<Edit<'a>>, RewriteError> {
    match cast_call_edit(toks, scope)? {
        Some(edit) => Ok(Some(edit)),
        None => cast_operator_edit(toks, scope),
    }
}

/// `CAST(E AS T)`, scanning from the right so the innermost comes first.
fn cast_call_edit<'a>(toks: &[Tok<'a>], scope: &str) -> Result<Option<Edit<'a>>, RewriteError> {
    for i in (0..ix(toks.len())).rev() {
        if !is_word(at(toks, i), &["cast"]) {
            continue;
        }
        let a = sig(toks, i + 1, 1);
        if !text_is(at(toks, a), "(") {
            continue;
        }
        let close = match_close(toks, a)?;
        let Some(as_at) = last_top_level_as(toks, a, close) else {
            continue;
        };
        let (t0, t1) = (sig(toks, as_at + 1, 1), sig(toks, close - 1, -1));
        let ty = type_name(toks, t0, t1);
        // the type of a cast applied to this one: CAST(CAST(x AS regclass) AS oid), CAST(…)::oid
        let nk = sig(toks, close + 1, 1);
        let next_type = if is_word(at(toks, nk), &["as"]) || is_cast(at(toks, nk)) {
            Some(type_at(toks, sig(toks, nk + 1, 1))?)
        } else {
            None
        };
        let expr = slice(toks, a + 1, as_at);
        if let Some(new) = cast_replacement(expr, &ty, scope, next_type.as_deref()) {
            return Edit::text(i, &new, close + 1);
        }
        if let Some(edit) = type_rename(toks, t0, t1, &ty)? {
            return Ok(Some(edit));
        }
    }
    Ok(None)
}

/// The last `AS` at the top level of the brackets `a`..`close`.
fn last_top_level_as(toks: &[Tok<'_>], a: Ix, close: Ix) -> Option<Ix> {
    let mut depth = 0_i64;
    let mut as_at = None;
    for j in a + 1..close {
        let t = at(toks, j)?;
        if t.is_punct("(") || t.is_punct("[") {
            depth += 1;
        } else if t.is_punct(")") || t.is_punct("]") {
            depth -= 1;
        } else if depth == 0 && is_word(Some(t), &["as"]) {
            as_at = Some(j);
        }
    }
    as_at
}

/// `E::T`, leftmost first.
fn cast_operator_edit<'a>(toks: &[Tok<'a>], scope: &str) -> Result<Option<Edit<'a>>, RewriteError> {
    for (k, t) in toks.iter().enumerate() {
        if t.kind != Kind::Cast {
            continue;
        }
        let k = ix(k);
        let t0 = sig(toks, k + 1, 1);
        let t1 = type_end(toks, t0)?;
        let ty = type_name(toks, t0, t1);
        let e1 = sig(toks, k - 1, -1);
        let e0 = operand_start(toks, e1)?;
        let nk = sig(toks, t1 + 1, 1);
        let next_type = if is_cast(at(toks, nk)) {
            Some(type_at(toks, sig(toks, nk + 1, 1))?)
        } else {
            None
        };
        let expr = slice(toks, e0, e1 + 1);
        if let Some(new) = cast_replacement(expr, &ty, scope, next_type.as_deref()) {
            return Edit::text(e0, &new, t1 + 1);
        }
        if let Some(edit) = type_rename(toks, t0, t1, &ty)? {
            return Ok(Some(edit));
        }
    }
    Ok(None)
}

fn is_cast(t: Option<&Tok<'_>>) -> bool {
    t.is_some_and(|t| t.kind == Kind::Cast)
}

/// The name of the type that starts at `i`.
fn type_at(toks: &[Tok<'_>], i: Ix) -> Result<String, RewriteError> {
    Ok(type_name(toks, i, type_end(toks, i)?))
}

/// SQL replacing `expr::ty`, or None when the cast stays. `next_type`: the type of a cast that
/// follows (`x::regclass::oid`).
fn cast_replacement(
    expr_toks: &[Tok<'_>],
    ty: &str,
    scope: &str,
    next_type: Option<&str>,
) -> Option<String> {
    let whole = || text(expr_toks);
    if let Some(reg) = REG_TYPES.iter().find(|r| r.name == ty) {
        let whole = whole();
        let expr = py_strip(&whole);
        let sig_toks: Vec<&Tok<'_>> = expr_toks.iter().filter(|t| t.is_sig()).collect();
        let literal =
            matches!(sig_toks.as_slice(), [t] if matches!(t.kind, Kind::Str | Kind::Param));
        // PostgreSQL's reg* values compare as OIDs and print as names: a literal
        // (`'t'::regclass`, compared with an OID) becomes the OID, an OID expression
        // (`c.oid::regclass`, shown) the name, unless an OID cast follows
        let to_oid = next_type.is_some_and(|n| OID_TYPES.contains(&n));
        let f = if literal || to_oid {
            reg.oid_fn
        } else {
            reg.name_fn
        };
        return Some(if reg.scoped {
            format!("{f}({expr}, {scope})")
        } else {
            format!("{f}({expr})")
        });
    }
    if TEXT_TYPES.contains(&ty) {
        let whole = whole();
        let expr = py_strip(&whole);
        let shown = ["regclass", "regtype", "regnamespace"];
        for reg in REG_TYPES.iter().filter(|r| shown.contains(&r.name)) {
            if let Some(args) = call_args(expr, reg.oid_fn) {
                return Some(format!("{}({args})", reg.name_fn));
            }
        }
        let named = ["ds_pg.regproc_name", "ds_pg.regrole_name"];
        if named.iter().any(|f| call_args(expr, f).is_some()) {
            return Some(expr.to_owned());
        }
    }
    None
}

/// The reference's `re.fullmatch(r"F\((.*)\)", expr, re.S)`: what lies between `F(` and the
/// text's last `)`.
fn call_args<'e>(expr: &'e str, function: &str) -> Option<&'e str> {
    expr.strip_prefix(function)?
        .strip_prefix('(')?
        .strip_suffix(')')
}

/// `ty` spelled at t0..=t1 renamed (`name` → `VARCHAR`) or stripped of `pg_catalog.`.
fn type_rename<'a>(
    toks: &[Tok<'a>],
    t0: Ix,
    t1: Ix,
    ty: &str,
) -> Result<Option<Edit<'a>>, RewriteError> {
    let renamed = TYPE_RENAMES.iter().find(|(from, _)| *from == ty);
    if renamed.is_none() && !qualified_by_pg_catalog(slice(toks, t0, t1 + 1)) {
        return Ok(None);
    }
    Edit::text(t0, renamed.map_or(ty, |(_, to)| to), t1 + 1)
}

// ---------------------------------------------------------------------------------------------
// Rule 4: A ~ B -> regexp_matches(A, B)
// ---------------------------------------------------------------------------------------------

/// PostgreSQL's `~` matches anywhere; DuckDB's is a full match.
fn regex_edit<'a>(toks: &[Tok<'a>]) -> Result<Option<Edit<'a>>, RewriteError> {
    for (k, t) in toks.iter().enumerate() {
        if t.kind != Kind::Op || !["~", "!~", "~*", "!~*"].contains(&t.text.as_ref()) {
            continue;
        }
        let k = ix(k);
        let a1 = sig(toks, k - 1, -1);
        let a0 = operand_start(toks, a1)?;
        let b0 = sig(toks, k + 1, 1);
        let b1 = operand_end(toks, b0)?;
        let a = text(slice(toks, a0, a1 + 1));
        let b = text(slice(toks, b0, b1 + 1));
        let flags = if t.text.ends_with('*') { ", 'i'" } else { "" };
        let neg = if t.text.starts_with('!') { "NOT " } else { "" };
        return Edit::text(a0, &format!("{neg}regexp_matches({a}, {b}{flags})"), b1 + 1);
    }
    Ok(None)
}

// ---------------------------------------------------------------------------------------------
// Rule 5: relations -> ds_pg.R(S)
// ---------------------------------------------------------------------------------------------

/// For each token: whether it is directly in a FROM clause (at its own depth). `IS DISTINCT
/// FROM`, `EXTRACT(x FROM y)` are not clauses (the latter because brackets start a new depth).
fn from_context(toks: &[Tok<'_>]) -> Vec<bool> {
    let mut flags = Vec::with_capacity(toks.len());
    let mut stack = Vec::new();
    let mut in_from = false;
    for (i, t) in toks.iter().enumerate() {
        let flag = if t.is_punct("(") {
            stack.push(in_from);
            std::mem::replace(&mut in_from, false)
        } else if t.is_punct(")") {
            in_from = stack.pop().unwrap_or(false);
            in_from
        } else if is_word(Some(t), &["from"])
            && !is_word(at(toks, sig(toks, ix(i) - 1, -1)), &["distinct"])
        {
            in_from = true;
            false
        } else {
            if (t.kind == Kind::Ident && t.low_listed(END_FROM)) || t.is_punct(";") {
                in_from = false;
            }
            in_from
        };
        flags.push(flag);
    }
    flags
}

/// Whether a name follows the relation ending at `j`: `AS`, a quoted name, or a word that is not
/// a clause's.
fn alias_given(toks: &[Tok<'_>], j: Ix) -> bool {
    match at(toks, sig(toks, j + 1, 1)) {
        None => false,
        Some(t) if t.kind == Kind::QIdent => true,
        Some(t) => t.kind == Kind::Ident && !t.low_listed(NOT_ALIAS),
    }
}

/// ` AS R` when the client gave the relation no alias (its columns are qualified by R).
fn alias_for(toks: &[Tok<'_>], j: Ix, relation: &str) -> String {
    if alias_given(toks, j) {
        String::new()
    } else {
        format!(" AS {relation}")
    }
}

/// `pg_catalog.R`, `information_schema.R`, and a bare pg_catalog `R` after FROM, JOIN, ONLY or
/// a comma in a FROM clause: `ds_pg.R(S)`, named `R` unless the client gave an alias.
fn relation_edit<'a>(toks: &[Tok<'a>], scope: &str) -> Result<Option<Edit<'a>>, RewriteError> {
    let in_from = from_context(toks);
    for ((i, t), in_clause) in toks.iter().enumerate().zip(in_from) {
        if t.kind != Kind::Ident {
            continue;
        }
        let i = ix(i);
        let prev = at(toks, sig(toks, i - 1, -1));
        if text_is(prev, ".") {
            continue;
        }
        let d1 = sig(toks, i + 1, 1);
        if text_is(at(toks, d1), ".") {
            let schema = ["pg_catalog", "information_schema"]
                .into_iter()
                .find(|schema| t.low_is(schema));
            if let Some(schema) = schema {
                if let Some(edit) = qualified_relation_edit(toks, i, d1, schema, scope)? {
                    return Ok(Some(edit));
                }
            }
            continue;
        }
        let after_from = is_word(prev, &["from", "join", "only"]) || text_is(prev, ",");
        if t.low_listed(PG_RELATIONS) && in_clause && after_from && !text_is(at(toks, d1), "(") {
            let low = t.low();
            let new = format!("ds_pg.{low}({scope}){}", alias_for(toks, i, &low));
            return Edit::text(i, &new, i + 1);
        }
    }
    Ok(None)
}

/// `pg_catalog.R` / `information_schema.R` at `i` (`d1` its dot): `ds_pg.R(S)`, or, for a
/// column `pg_catalog.R.col`, `R.col`.
fn qualified_relation_edit<'a>(
    toks: &[Tok<'a>],
    i: Ix,
    d1: Ix,
    schema: &str,
    scope: &str,
) -> Result<Option<Edit<'a>>, RewriteError> {
    let r = sig(toks, d1 + 1, 1);
    let Some(rt) = at(toks, r).filter(|rt| rt.kind == Kind::Ident) else {
        return Ok(None);
    };
    let relations = if schema == "pg_catalog" {
        PG_RELATIONS
    } else {
        INFORMATION_SCHEMA_RELATIONS
    };
    if !rt.low_listed(relations) {
        return Ok(None);
    }
    let relation = rt.low();
    let next = at(toks, sig(toks, r + 1, 1));
    if text_is(next, ".") {
        return Ok(Some(Edit::new(i, Vec::new(), r)));
    }
    if text_is(next, "(") {
        return Ok(None);
    }
    let new = format!("ds_pg.{relation}({scope}){}", alias_for(toks, r, &relation));
    Edit::text(i, &new, r + 1)
}

// ---------------------------------------------------------------------------------------------
// Rule 6: functions -> ds_pg.f(…[, S])
// ---------------------------------------------------------------------------------------------

/// `pg_catalog.f(` loses its qualifier; a catalog function's `f(` becomes `ds_pg.f(`; a bare
/// `current_user` (and the like) becomes `ds_pg.session_user()`.
fn function_edit<'a>(toks: &[Tok<'a>], scope: &str) -> Result<Option<Edit<'a>>, RewriteError> {
    for (i, t) in toks.iter().enumerate() {
        if t.kind != Kind::Ident {
            continue;
        }
        let i = ix(i);
        let after_dot = text_is(at(toks, sig(toks, i - 1, -1)), ".");
        let n = sig(toks, i + 1, 1);
        let next = at(toks, n);
        if t.low_is("pg_catalog") && text_is(next, ".") && !after_dot {
            // drop `pg_catalog.` before a call; the bare rule runs on the next pass
            let f = sig(toks, n + 1, 1);
            let called = at(toks, f).is_some_and(|ft| ft.kind == Kind::Ident)
                && text_is(at(toks, sig(toks, f + 1, 1)), "(");
            if called {
                return Ok(Some(Edit::new(i, Vec::new(), f)));
            }
            continue;
        }
        if after_dot {
            continue;
        }
        if text_is(next, "(") {
            if let Some(edit) = call_edit(toks, i, n, t, scope)? {
                return Ok(Some(edit));
            }
        } else if t.low_listed(USER_KEYWORDS) && !text_is(next, ".") {
            return Edit::text(i, "ds_pg.session_user()", i + 1);
        }
    }
    Ok(None)
}

/// The call `f(` at `i` (`n` its bracket): renamed, or `ds_pg.f(` with S as the last argument
/// of a scoped function. The arguments stay the client's tokens.
fn call_edit<'a>(
    toks: &[Tok<'a>],
    i: Ix,
    n: Ix,
    name: &Tok<'_>,
    scope: &str,
) -> Result<Option<Edit<'a>>, RewriteError> {
    if let Some((_, to)) = RENAMED_FUNCTIONS.iter().find(|(from, _)| name.low_is(from)) {
        return Ok(Some(Edit::new(i, vec![Tok::owned(Kind::Ident, to)], i + 1)));
    }
    if !name.low_listed(CLIENT_FUNCTIONS) {
        return Ok(None);
    }
    let function = name.low();
    let close = match_close(toks, n)?;
    let args = slice(toks, n + 1, close);
    let extra = match (
        listed(CLIENT_SCOPED_FUNCTIONS, &function),
        args.iter().any(Tok::is_sig),
    ) {
        (false, _) => String::new(),
        (true, false) => scope.to_owned(),
        (true, true) => format!(", {scope}"),
    };
    let mut new = retokenize(&format!("ds_pg.{function}("))?;
    new.extend_from_slice(args);
    new.extend(retokenize(&format!("{extra})"))?);
    Ok(Some(Edit::new(i, new, close + 1)))
}

// ---------------------------------------------------------------------------------------------
// Rule 7: functions in FROM
// ---------------------------------------------------------------------------------------------

/// A function in a FROM clause: DuckDB has no scalar functions there, and names a
/// set-returning function's column after the function, where PostgreSQL uses the alias.
fn from_function_edit<'a>(toks: &[Tok<'a>]) -> Result<Option<Edit<'a>>, RewriteError> {
    let in_from = from_context(toks);
    for ((i, t), in_clause) in toks.iter().enumerate().zip(in_from) {
        if t.kind != Kind::Ident || !in_clause {
            continue;
        }
        let i = ix(i);
        let prev = at(toks, sig(toks, i - 1, -1));
        if !(is_word(prev, &["join", "from", "lateral"]) || text_is(prev, ",")) {
            continue;
        }
        if let Some(edit) = from_call_edit(toks, i)? {
            return Ok(Some(edit));
        }
    }
    Ok(None)
}

/// The call `f(…)` or `schema.f(…)` starting at `i` in a FROM clause, if it changes.
fn from_call_edit<'a>(toks: &[Tok<'a>], i: Ix) -> Result<Option<Edit<'a>>, RewriteError> {
    let mut name = at(toks, i);
    let mut n = sig(toks, i + 1, 1);
    if text_is(at(toks, n), ".") {
        let f = sig(toks, n + 1, 1);
        name = at(toks, f).filter(|ft| ft.kind == Kind::Ident);
        n = sig(toks, f + 1, 1);
    }
    let Some(name) = name else {
        return Ok(None);
    };
    if !text_is(at(toks, n), "(") || name.low_listed(RELATIONS) {
        return Ok(None); // not a call, or one of our table macros
    }
    let close = match_close(toks, n)?;
    let call = || text(slice(toks, i, close + 1));
    let set_returning = name.low_listed(SET_RETURNING);
    let a = sig(toks, close + 1, 1);
    if is_word(at(toks, a), &["with"]) && is_word(at(toks, sig(toks, a + 1, 1)), &["ordinality"]) {
        // f(x) WITH ORDINALITY AS a(v, n) -> unnest([f(x)]) WITH ORDINALITY AS a(v, n)
        if set_returning {
            return Ok(None);
        }
        return Edit::text(i, &format!("unnest([{}])", call()), close + 1);
    }
    let al = if is_word(at(toks, a), &["as"]) {
        sig(toks, a + 1, 1)
    } else {
        a
    };
    let Some(alias) = at(toks, al).filter(|t| alias_given_at(t)) else {
        return Ok(None);
    };
    if text_is(at(toks, sig(toks, al + 1, 1)), "(") {
        // a column list is given: f(x) AS a(v) -> (SELECT f(x)) AS a(v)
        if set_returning {
            return Ok(None);
        }
        return Edit::text(i, &format!("(SELECT {})", call()), close + 1);
    }
    let alias = &alias.text;
    if set_returning {
        // generate_series(1, 3) AS i -> … AS i(i): PostgreSQL names the column after the alias
        return Edit::text(al + 1, &format!("({alias})"), al + 1);
    }
    let new = format!("(SELECT {} AS {alias}) AS {alias}", call());
    Edit::text(i, &new, al + 1)
}

/// Whether the token after a FROM function is an alias: a name that is not a clause's word.
fn alias_given_at(t: &Tok<'_>) -> bool {
    t.kind == Kind::QIdent || (t.kind == Kind::Ident && !t.low_listed(NOT_ALIAS))
}

// ---------------------------------------------------------------------------------------------
// Rule 8: SHOW name
// ---------------------------------------------------------------------------------------------

/// A statement `SHOW name` → `SELECT ds_pg.current_setting('name') AS name` (the transport
/// answers SHOW itself; this is its equivalent). The reference's
/// `re.fullmatch(r"\s*show\s+(.+?)\s*;?\s*", sql, re.I | re.S)`, step by step.
fn rule_show(sql: &str) -> Option<String> {
    let rest = strip_show(sql.trim_start_matches(is_py_space))?;
    let name = py_lower(&collapse_spaces(py_strip(show_operand(rest)?))).into_owned();
    let name = match name.as_str() {
        "transaction isolation level" => "transaction_isolation".to_owned(),
        "time zone" => "TimeZone".to_owned(),
        _ => name,
    };
    let alias = py_lower(&name).replace('.', "_");
    Some(format!("SELECT ds_pg.current_setting('{name}') AS {alias}"))
}

/// `show` in any case, as Python's case-insensitive `re` reads it (where `ſ` is an `s`).
fn strip_show(s: &str) -> Option<&str> {
    let rest = s.strip_prefix(['s', 'S', 'ſ'])?;
    strip_prefix_ignore_ascii_case(rest, "how")
}

/// What `\s+(.+?)\s*;?\s*` captures after `show`: from the first non-space (or, when only
/// spaces follow, from the last of at least two) to where only spaces and one `;` remain.
fn show_operand(rest: &str) -> Option<&str> {
    let value = rest.trim_start_matches(is_py_space);
    let spaces = rest.get(..rest.len() - value.len())?;
    let start = if spaces.is_empty() {
        return None;
    } else if !value.is_empty() {
        spaces.len()
    } else if spaces.chars().count() >= 2 {
        spaces.len() - spaces.chars().next_back()?.len_utf8()
    } else {
        return None;
    };
    let first = rest.get(start..)?.chars().next()?;
    let end_trimmed = rest.trim_end_matches(is_py_space);
    let tail = end_trimmed
        .strip_suffix(';')
        .unwrap_or(end_trimmed)
        .trim_end_matches(is_py_space)
        .len();
    rest.get(start..tail.max(start + first.len_utf8()))
}

/// `re.sub(r"\s+", " ", s)`.
fn collapse_spaces(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_space = false;
    for c in s.chars() {
        if is_py_space(c) {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TSV: &str = include_str!("../../tests/data/pg_catalog.tsv");

    struct Row {
        client: String,
        name: String,
        sql: String,
        rewritten: String,
    }

    /// scripts/pg_catalog_check.py's `unescape`: `\\`, `\n`, `\t`; any other backslash stays.
    fn unescape(cell: &str) -> String {
        let mut out = String::with_capacity(cell.len());
        let mut chars = cell.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('\\') => out.push('\\'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            }
        }
        out
    }

    /// The TSV's rows: `#` lines are comments, the first other line is the header.
    fn rows() -> Vec<Row> {
        let mut lines = TSV
            .split('\n')
            .filter(|line| !line.is_empty() && !line.starts_with('#'));
        let header: Vec<&str> = lines.next().unwrap_or("").split('\t').collect();
        assert_eq!(
            header,
            ["client", "name", "sql", "rewritten", "expect", "params"]
        );
        lines
            .map(|line| {
                let mut cells = line.split('\t').map(unescape);
                let mut cell = || cells.next().unwrap_or_default();
                Row {
                    client: cell(),
                    name: cell(),
                    sql: cell(),
                    rewritten: cell(),
                }
            })
            .collect()
    }

    fn row(client: &str, name: &str) -> Row {
        rows()
            .into_iter()
            .find(|r| r.client == client && r.name == name)
            .unwrap_or_else(|| panic!("no TSV row {client} / {name}"))
    }

    #[test]
    fn every_tsv_row_is_the_references_output() {
        let rows = rows();
        assert_eq!(rows.len(), 132);
        for r in &rows {
            assert_eq!(
                rewrite(&r.sql, "NULL").as_deref(),
                Ok(r.rewritten.as_str()),
                "{} / {}",
                r.client,
                r.name
            );
        }
    }

    const SCOPE: &str = "['main.parcels']::VARCHAR[]";

    /// Rows of tests/data/pg_catalog.tsv (client, name) and the reference's output for them with
    /// the scope `['main.parcels']` (`rewrite(sql, ["main.parcels"])` in the Python).
    const SCOPED_ROWS: &[(&str, &str, &str)] = &[
        (
            "psql15",
            "\\dt",
            "SELECT n.nspname as \"Schema\",\n  c.relname as \"Name\",\n  CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'i' THEN 'index' WHEN 'S' THEN 'sequence' WHEN 't' THEN 'TOAST table' WHEN 'f' THEN 'foreign table' WHEN 'p' THEN 'partitioned table' WHEN 'I' THEN 'partitioned index' END as \"Type\",\n  ds_pg.pg_get_userbyid(c.relowner) as \"Owner\"\nFROM ds_pg.pg_class(['main.parcels']::VARCHAR[]) c\n     LEFT JOIN ds_pg.pg_namespace(['main.parcels']::VARCHAR[]) n ON n.oid = c.relnamespace\n     LEFT JOIN ds_pg.pg_am(['main.parcels']::VARCHAR[]) am ON am.oid = c.relam\nWHERE c.relkind IN ('r','p','')\n      AND n.nspname <> 'pg_catalog'\n      AND NOT regexp_matches(n.nspname, '^pg_toast')\n      AND n.nspname <> 'information_schema'\n  AND ds_pg.pg_table_is_visible(c.oid)\nORDER BY 1,2;",
        ),
        (
            "psql15",
            "\\d parcels: table",
            "SELECT c.relchecks, c.relkind, c.relhasindex, c.relhasrules, c.relhastriggers, c.relrowsecurity, c.relforcerowsecurity, false AS relhasoids, c.relispartition, '', c.reltablespace, CASE WHEN c.reloftype = 0 THEN '' ELSE ds_pg.regtype_name(c.reloftype)::text END, c.relpersistence, c.relreplident, am.amname\nFROM ds_pg.pg_class(['main.parcels']::VARCHAR[]) c\n LEFT JOIN ds_pg.pg_class(['main.parcels']::VARCHAR[]) tc ON (c.reltoastrelid = tc.oid)\nLEFT JOIN ds_pg.pg_am(['main.parcels']::VARCHAR[]) am ON (c.relam = am.oid)\nWHERE c.oid = '{{oid:parcels}}';",
        ),
        (
            "psql15",
            "\\d parcels: inherits",
            "SELECT ds_pg.regclass_name(c.oid, ['main.parcels']::VARCHAR[])\nFROM ds_pg.pg_class(['main.parcels']::VARCHAR[]) c, ds_pg.pg_inherits(['main.parcels']::VARCHAR[]) i\nWHERE c.oid = i.inhparent AND i.inhrelid = '{{oid:parcels}}'\n  AND c.relkind != 'p' AND c.relkind != 'I'\nORDER BY inhseqno;",
        ),
        (
            "psql15",
            "\\d a: check constraints",
            "SELECT r.conname, ds_pg.pg_get_constraintdef(r.oid, true, ['main.parcels']::VARCHAR[])\nFROM ds_pg.pg_constraint(['main.parcels']::VARCHAR[]) r\nWHERE r.conrelid = '{{oid:a}}' AND r.contype = 'c'\nORDER BY 1;",
        ),
        (
            "dbeaver",
            "regclass",
            "SELECT ds_pg.regclass('parcels', ['main.parcels']::VARCHAR[])",
        ),
        (
            "dbeaver",
            "qualified regclass",
            "SELECT ds_pg.regclass('main.parcels', ['main.parcels']::VARCHAR[])::oid",
        ),
        (
            "dbeaver",
            "oid::regclass::text",
            "SELECT ds_pg.regclass_name(c.oid, ['main.parcels']::VARCHAR[])::text, c.relkind FROM ds_pg.pg_class(['main.parcels']::VARCHAR[]) c WHERE c.oid = ds_pg.regclass('parcels', ['main.parcels']::VARCHAR[])",
        ),
        (
            "dbeaver",
            "regclass in another schema",
            "SELECT ds_pg.regclass_name('s2.t2', ['main.parcels']::VARCHAR[]), ds_pg.regclass('t2', ['main.parcels']::VARCHAR[])",
        ),
        (
            "duckgres",
            "info_schema_columns",
            "SELECT column_name, data_type, is_nullable FROM ds_pg.columns(['main.parcels']::VARCHAR[]) AS columns WHERE table_name = 'parcels' ORDER BY ordinal_position",
        ),
        (
            "duckgres",
            "has_table_privilege",
            "SELECT ds_pg.has_table_privilege('parcels', 'SELECT', ['main.parcels']::VARCHAR[])",
        ),
        (
            "duckgres",
            "obj_description",
            "SELECT ds_pg.obj_description(1, 'pg_class', ['main.parcels']::VARCHAR[])",
        ),
        (
            "sqlalchemy2.1",
            "get_view_definition(v)",
            "SELECT ds_pg.pg_get_viewdef(pg_class.oid, ['main.parcels']::VARCHAR[]) AS pg_get_viewdef_1 \nFROM ds_pg.pg_class(['main.parcels']::VARCHAR[]) AS pg_class JOIN ds_pg.pg_namespace(['main.parcels']::VARCHAR[]) AS pg_namespace ON pg_namespace.oid = pg_class.relnamespace \nWHERE pg_class.relname = 'v' AND pg_class.relkind = ANY (ARRAY['v', 'm']) AND ds_pg.pg_table_is_visible(pg_class.oid) AND pg_namespace.nspname != 'pg_catalog'",
        ),
        (
            "sqlalchemy2.0",
            "get_columns",
            "SELECT pg_attribute.attname AS name, ds_pg.format_type(pg_attribute.atttypid, pg_attribute.atttypmod) AS format_type, (SELECT ds_pg.pg_get_expr(pg_attrdef.adbin, pg_attrdef.adrelid) AS pg_get_expr_1 \nFROM ds_pg.pg_attrdef(['main.parcels']::VARCHAR[]) AS pg_attrdef \nWHERE pg_attrdef.adrelid = pg_attribute.attrelid AND pg_attrdef.adnum = pg_attribute.attnum AND pg_attribute.atthasdef) AS \"default\", pg_attribute.attnotnull AS not_null, pg_class.relname AS table_name, pg_description.description AS comment, pg_attribute.attgenerated AS generated, (SELECT json_object('always', pg_attribute.attidentity = 'a', 'start', pg_sequence.seqstart, 'increment', pg_sequence.seqincrement, 'minvalue', pg_sequence.seqmin, 'maxvalue', pg_sequence.seqmax, 'cache', pg_sequence.seqcache, 'cycle', pg_sequence.seqcycle) AS json_build_object_1 \nFROM ds_pg.pg_sequence(['main.parcels']::VARCHAR[]) AS pg_sequence \nWHERE pg_attribute.attidentity != '' AND pg_sequence.seqrelid = CAST(ds_pg.regclass(ds_pg.pg_get_serial_sequence(CAST(ds_pg.regclass_name(pg_attribute.attrelid, ['main.parcels']::VARCHAR[]) AS TEXT), pg_attribute.attname), ['main.parcels']::VARCHAR[]) AS OID)) AS identity_options, CASE WHEN (pg_attribute.attcollation != 0 AND (SELECT pg_type.typcollation \nFROM ds_pg.pg_type(['main.parcels']::VARCHAR[]) AS pg_type \nWHERE pg_type.oid = pg_attribute.atttypid) != pg_attribute.attcollation) THEN (SELECT pg_collation.collname \nFROM ds_pg.pg_collation(['main.parcels']::VARCHAR[]) AS pg_collation \nWHERE pg_collation.oid = pg_attribute.attcollation) ELSE NULL END AS collation \nFROM ds_pg.pg_class(['main.parcels']::VARCHAR[]) AS pg_class LEFT OUTER JOIN ds_pg.pg_attribute(['main.parcels']::VARCHAR[]) AS pg_attribute ON pg_class.oid = pg_attribute.attrelid AND pg_attribute.attnum > 0 AND NOT pg_attribute.attisdropped LEFT OUTER JOIN ds_pg.pg_description(['main.parcels']::VARCHAR[]) AS pg_description ON pg_description.objoid = pg_attribute.attrelid AND pg_description.objsubid = pg_attribute.attnum JOIN ds_pg.pg_namespace(['main.parcels']::VARCHAR[]) AS pg_namespace ON pg_namespace.oid = pg_class.relnamespace \nWHERE pg_class.relkind = ANY (ARRAY['r', 'p', 'f', 'v', 'm']) AND ds_pg.pg_table_is_visible(pg_class.oid) AND pg_namespace.nspname != 'pg_catalog' AND pg_class.relname IN ('parcels') ORDER BY pg_class.relname, pg_attribute.attnum",
        ),
    ];

    /// Client text outside the TSV and the reference's output for it with the same scope.
    const SCOPED_TEXTS: &[(&str, &str)] = &[
        (
            "SELECT to_regclass('parcels'), pg_catalog.to_regclass('main.parcels') IS NOT NULL",
            "SELECT ds_pg.to_regclass('parcels', ['main.parcels']::VARCHAR[]), ds_pg.to_regclass('main.parcels', ['main.parcels']::VARCHAR[]) IS NOT NULL",
        ),
        (
            "SELECT pg_catalog.pg_get_viewdef('v'::pg_catalog.regclass, true), CAST('s2' AS regnamespace)::text",
            "SELECT ds_pg.pg_get_viewdef(ds_pg.regclass('v', ['main.parcels']::VARCHAR[]), true, ['main.parcels']::VARCHAR[]), ds_pg.regnamespace_name('s2', ['main.parcels']::VARCHAR[])",
        ),
        (
            "SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'main'::regnamespace AND pg_catalog.has_column_privilege(c.oid, 'id', 'SELECT')",
            "SELECT c.relname FROM ds_pg.pg_class(['main.parcels']::VARCHAR[]) c WHERE c.relnamespace = ds_pg.regnamespace('main', ['main.parcels']::VARCHAR[]) AND ds_pg.has_column_privilege(c.oid, 'id', 'SELECT', ['main.parcels']::VARCHAR[])",
        ),
    ];

    #[test]
    fn scoped_rows_are_the_references_output() {
        for (client, name, expected) in SCOPED_ROWS {
            let r = row(client, name);
            assert_eq!(
                rewrite(&r.sql, SCOPE).as_deref(),
                Ok(*expected),
                "{client} / {name}"
            );
        }
        for (sql, expected) in SCOPED_TEXTS {
            assert_eq!(rewrite(sql, SCOPE).as_deref(), Ok(*expected), "{sql}");
        }
    }

    /// Text that shows the reference's Python semantics (Unicode `\s` and `\d`, regex
    /// backtracking, `re.I`, Unicode `lower()`) and its quirks, with its output for each.
    const PYTHON_SEMANTICS: &[(&str, &str)] = &[
        (
            "SELECT x FROM\u{A0}pg_class",
            "SELECT x FROM\u{A0}pg_class",
        ),
        (
            "SELECT x FROM pg_class\u{A0}c",
            "SELECT x FROM pg_class\u{A0}c",
        ),
        (
            "SELECT 1 FROM pg_class \u{663}",
            "SELECT 1 FROM ds_pg.pg_class(NULL) AS pg_class \u{663}",
        ),
        (
            "SELECT 1 FROM pg_class \u{3000}c",
            "SELECT 1 FROM ds_pg.pg_class(NULL) \u{3000}c",
        ),
        (
            "SELECT E'\\'' ~ 'a'",
            "SELECT regexp_matches(E'\\'', 'a')",
        ),
        (
            "SELECT E'a'' \\' ~ x",
            "SELECT E'a'regexp_matches(' \\', x)",
        ),
        (
            "SELECT a=-1, b ~- c FROM pg_am",
            "SELECT a=-1, b ~- c FROM ds_pg.pg_am(NULL) AS pg_am",
        ),
        (
            "SELECT 1 /* unterminated ~ x",
            "SELECT 1 /* regexp_matches(unterminated, x)",
        ),
        (
            "SELECT $$ a ~ b $$ ~ $1",
            "SELECT regexp_matches($$ a ~ b $$, $1)",
        ),
        (
            "SELECT 1.e5::regtype, .5::name",
            "SELECT ds_pg.regtype_name(1.e5), .5::VARCHAR",
        ),
        (
            "SELECT pg_bac\u{212A}end_pid()",
            "SELECT ds_pg.pg_backend_pid()",
        ),
        (
            "\u{17F}how search_path",
            "SELECT ds_pg.current_setting('search_path') AS search_path",
        ),
        (
            "  SHOW   Transaction   Isolation  Level ;  ",
            "SELECT ds_pg.current_setting('transaction_isolation') AS transaction_isolation",
        ),
        (
            "show  ",
            "SELECT ds_pg.current_setting('') AS ",
        ),
        (
            "SHOW TIME ZONE",
            "SELECT ds_pg.current_setting('TimeZone') AS timezone",
        ),
        (
            "SHOW a.b",
            "SELECT ds_pg.current_setting('a.b') AS a_b",
        ),
        (
            "SELECT x::character varying, CAST(y AS n ame), z::\" char \"",
            "SELECT x::character varying, CAST(y AS VARCHAR), z::VARCHAR",
        ),
        (
            "SELECT CAST(CAST(x AS regclass) AS oid), CAST(x AS pg_catalog.regtype)::text",
            "SELECT CAST(ds_pg.regclass(x, NULL) AS oid), ds_pg.regtype_name(x)::text",
        ),
        (
            "SELECT x::pg_catalog.numeric(10, 2), y::pg_catalog.int2vector, z::jsonb, w::bpchar",
            "SELECT x::numeric(10,2), y::SMALLINT[], z::JSON, w::VARCHAR",
        ),
        (
            "SELECT c.oid::regclass::text, 'a'::regclass::name, $1::regrole, x::regproc::text",
            "SELECT ds_pg.regclass_name(c.oid, NULL)::text, ds_pg.regclass_name('a', NULL), ds_pg.regrole_name($1), ds_pg.regproc_name(x)",
        ),
        (
            "SELECT a OPERATOR(pg_catalog.!~*) b, c OPERATOR(~) d, e OPERATOR(pg_catalog.=) f",
            "SELECT NOT regexp_matches(a, b, 'i'), regexp_matches(c, d), e = f",
        ),
        (
            "SELECT x COLLATE \"default\", y COLLATE pg_catalog.\"DEFAULT\", z COLLATE \"C\"",
            "SELECT x, y, z COLLATE \"C\"",
        ),
        (
            "SELECT current_user, user, session_user(), current_role.x, json_build_object('a', 1)",
            "SELECT ds_pg.session_user(), ds_pg.session_user(), session_user(), current_role.x, json_object('a', 1)",
        ),
        (
            "SELECT * FROM string_to_array('a,b', ',') s, generate_series(1, 3) AS g, unnest(x) WITH ORDINALITY AS u(v, n), f(x) AS a(v), pg_catalog.pg_get_keywords() k",
            "SELECT * FROM (SELECT string_to_array('a,b', ',') AS s) AS s, generate_series(1, 3) AS g(g), unnest(x) WITH ORDINALITY AS u(v, n), (SELECT f(x)) AS a(v), (SELECT pg_get_keywords() AS k) AS k",
        ),
        (
            "SELECT x FROM pg_catalog.pg_class.relname, information_schema.tables t, information_schema.routines",
            "SELECT x FROM pg_class.relname, ds_pg.tables(NULL) t, information_schema.routines",
        ),
        (
            "SELECT EXTRACT(epoch FROM pg_class), a IS DISTINCT FROM pg_class FROM ONLY pg_class, pg_type JOIN pg_proc ON true",
            "SELECT EXTRACT(epoch FROM ds_pg.pg_class(NULL) AS pg_class), a IS DISTINCT FROM pg_class FROM ONLY ds_pg.pg_class(NULL) AS pg_class, ds_pg.pg_type(NULL) AS pg_type JOIN ds_pg.pg_proc(NULL) AS pg_proc ON true",
        ),
        (
            "SELECT a.b[1] ~ f(x)::text, (c) !~ d[2], e.\"F\"(1) ~* g",
            "SELECT regexp_matches(a.b[1], f(x)::text), NOT regexp_matches((c), d[2]), regexp_matches(e.\"F\"(1), g, 'i')",
        ),
        (
            "SELECT ~5",
            "regexp_matches(SELECT, 5)",
        ),
        (
            "WHERE (x) ~ 'a'",
            "regexp_matches(WHERE (x), 'a')",
        ),
        (
            "SELECT 1; ~ x",
            "SELECT 1regexp_matches(;, x)",
        ),
        (
            "SELECT x::pg_catalog.",
            "SELECT x::",
        ),
        (
            "SELECT \u{43A}\u{43B}\u{44E}\u{447}, \u{540D}\u{524D} FROM \u{8868} WHERE \u{43A}\u{43B}\u{44E}\u{447} ~ '\u{FC}'",
            "SELECT \u{43A}\u{43B}\u{44E}\u{447}, \u{540D}\u{524D} FROM \u{8868} WHERE regexp_matches(\u{43A}\u{43B}\u{44E}\u{447}, '\u{FC}')",
        ),
        (
            "SELECT E'abc\\'",
            "SELECT E'abc\\'",
        ),
        (
            "SELECT /* abc",
            "SELECT /* abc",
        ),
        (
            "::",
            "::",
        ),
        (
            "SHOW x'y",
            "SELECT ds_pg.current_setting('x'y') AS x'y",
        ),
        (
            "SELECT * FROM pg_class WHERE relname = 'a' -- ~ x",
            "SELECT * FROM ds_pg.pg_class(NULL) AS pg_class WHERE relname = 'a' -- ~ x",
        ),
    ];

    /// Text the reference raises on (ValueError, IndexError) or never finishes (the last two).
    const UNREADABLE: &[&str] = &[
        "SELECT 'abc",
        "SELECT \"abc",
        "SELECT $$ abc",
        "SELECT pg_catalog.format_type((a, b)",
        "SELECT x::regclass(",
        "SELECT x ~",
        "~",
        "SELECT CAST(x AS regclass",
        "SELECT operator(",
        "SELECT $x",
        "SELECT 1 \\ 2",
        "::regclass",
        "~ 'x'",
        "~ x ~",
        "::regclass::regclass",
    ];

    #[test]
    fn python_semantics_and_quirks_are_the_references() {
        for (sql, expected) in PYTHON_SEMANTICS {
            assert_eq!(rewrite(sql, "NULL").as_deref(), Ok(*expected), "{sql:?}");
        }
    }

    #[test]
    fn what_the_reference_raises_on_is_unreadable() {
        for sql in UNREADABLE {
            assert_eq!(
                rewrite(sql, "NULL"),
                Err(RewriteError::Unreadable),
                "{sql:?}"
            );
        }
    }

    #[test]
    fn a_scope_that_does_not_tokenize_is_unreadable() {
        let sql = "SELECT * FROM pg_class";
        assert_eq!(rewrite(sql, "'open"), Err(RewriteError::Unreadable));
        assert_eq!(rewrite("SELECT 1", "'open").as_deref(), Ok("SELECT 1"));
    }

    #[test]
    fn naming_ds_pg_is_refused() {
        for sql in [
            "SELECT * FROM ds_pg.pg_class(NULL)",
            "SELECT DS_PG.version()",
            "SELECT 1 FROM t, Ds_Pg.rels(NULL) r",
            "SELECT * FROM \"ds_pg\".pg_class(NULL)",
            "SELECT * FROM \"DS_PG\".\"pg_class\"(NULL)",
            "SHOW a') AS a, (SELECT * FROM ds_pg.rels(NULL)) AS b --",
            // untokenizable: any spelling refuses
            "SELECT $x FROM ds_pg.rels(NULL)",
            "SHOW x FROM 'ds_pg",
        ] {
            assert_eq!(
                rewrite(sql, "NULL"),
                Err(RewriteError::NamesOurCatalog),
                "{sql}"
            );
            assert!(needs_rewrite(sql), "{sql}");
        }
    }

    #[test]
    fn ds_pg_in_a_string_another_name_or_a_comment_is_not_refused() {
        for (sql, expected) in [
            ("SELECT 'ds_pg'", "SELECT 'ds_pg'"),
            ("SELECT \"ds_pg_x\" FROM t", "SELECT \"ds_pg_x\" FROM t"),
            ("SELECT x -- ds_pg\n", "SELECT x -- ds_pg\n"),
            ("SELECT ds_pg_x /* ds_pg */", "SELECT ds_pg_x /* ds_pg */"),
            (
                "SHOW 'ds_pg'",
                "SELECT ds_pg.current_setting(''ds_pg'') AS 'ds_pg'",
            ),
        ] {
            assert_eq!(rewrite(sql, "NULL").as_deref(), Ok(expected), "{sql}");
        }
    }

    #[test]
    fn hostile_text_never_panics() {
        let deep = "(".repeat(100_000);
        let closed = format!("SELECT {}1{}", "(".repeat(50_000), ")".repeat(50_000));
        let deep_call = format!("SELECT pg_catalog.format_type({}", "(".repeat(100_000));
        let deep_cast = format!("SELECT {}x{}", "(".repeat(300), ")::regclass".repeat(300));
        let texts = [
            "",
            "::",
            ":::",
            "(",
            ")",
            "[",
            "]",
            "SELECT (1",
            "SELECT 1)",
            "SELECT 'abc",
            "SELECT E'abc",
            "SELECT \"abc",
            "SELECT $$ abc",
            "SELECT $$",
            "SELECT /* abc",
            "SELECT -- abc",
            "SELECT x::regclass(",
            "SELECT x ~",
            "~",
            "!~*",
            "::regclass",
            "x ~ ~ y",
            "SELECT CAST(",
            "SELECT CAST(x AS",
            "CAST(x AS regclass)::",
            "OPERATOR(",
            "OPERATOR(pg_catalog.[)",
            "COLLATE",
            "COLLATE pg_catalog.",
            "SHOW",
            "SHOW ",
            "show\u{3000}\u{3000}",
            "SELECT ключ, 名前, 😀 FROM 表 WHERE ключ ~ 'ü' AND \u{1D7CE}::name",
            "\u{FEFF}SELECT 1",
            "\0",
        ];
        for sql in texts {
            for scope in ["NULL", SCOPE, "", "(", "'"] {
                let out = std::panic::catch_unwind(|| (rewrite(sql, scope), needs_rewrite(sql)));
                assert!(out.is_ok(), "panicked on {sql:?}");
            }
        }
        for sql in [&deep, &closed, &deep_call, &deep_cast] {
            let out = std::panic::catch_unwind(|| (rewrite(sql, SCOPE), needs_rewrite(sql)));
            assert!(
                out.is_ok(),
                "panicked on {:?}",
                sql.get(..40).unwrap_or(sql)
            );
        }
        assert_eq!(rewrite(&deep, "NULL").as_deref(), Ok(deep.as_str()));
        assert_eq!(rewrite(&closed, "NULL").as_deref(), Ok(closed.as_str()));
        assert_eq!(rewrite(&deep_call, "NULL"), Err(RewriteError::Unreadable));
        assert!(rewrite(&deep_cast, "NULL").is_ok());
    }

    #[test]
    fn text_that_would_grow_without_end_is_unreadable() {
        // the reference loops forever on these (its `toks[-1]` copies the tail each pass)
        for sql in [
            "~ x ~",
            "::regclass::regclass",
            "::regclass FROM t WHERE a ~ b",
        ] {
            assert_eq!(rewrite(sql, "NULL"), Err(RewriteError::Unreadable), "{sql}");
        }
    }

    const PLAIN_DATA_SQL: &[&str] = &[
        "SELECT id, name FROM parcels WHERE id > 3",
        "SELECT count(*), avg(area) FROM parcels GROUP BY name ORDER BY 1 LIMIT 10",
        "SELECT p.id, r.kind FROM parcels p JOIN roads r ON r.id = p.id WHERE p.ts > now() - INTERVAL 1 DAY",
        "WITH a AS (SELECT id FROM parcels) SELECT * FROM a, roads WHERE a.id IN (SELECT id FROM roads)",
        "SELECT CAST(id AS VARCHAR), area::DOUBLE, 'label' FROM parcels",
        "INSERT INTO parcels VALUES (1, 'x', now(), 'POINT(1 2)', 3.5)",
    ];

    #[test]
    fn needs_rewrite_is_false_for_plain_data_sql() {
        for sql in PLAIN_DATA_SQL {
            assert!(!needs_rewrite(sql), "{sql}");
            assert_eq!(rewrite(sql, "NULL").as_deref(), Ok(*sql));
        }
    }

    #[test]
    fn needs_rewrite_is_true_for_every_changed_row() {
        let rows = rows();
        let changed: Vec<&Row> = rows.iter().filter(|r| r.sql != r.rewritten).collect();
        assert_eq!(changed.len(), 129);
        for r in changed {
            assert!(needs_rewrite(&r.sql), "{} / {}", r.client, r.name);
        }
    }

    /// `needs_rewrite` false must mean `rewrite` changes nothing: checked on the TSV's text,
    /// on pieces of it cut at every space (a clause without its context), and on text whose
    /// trigger is easy to miss.
    #[test]
    fn needs_rewrite_false_means_nothing_changes() {
        let tricky = [
            "SELECT * FROM read_csv('f.csv') t",
            "SELECT * FROM range(3) r, generate_series(1, 2) g",
            "SELECT CAST(y AS n ame) FROM t",
            "SELECT z::\" char \" FROM t",
            "SELECT pg_bac\u{212A}end_pid()",
            "\u{17F}how x",
            "SELECT a FROM t WHERE a ~ 'x'",
            "SELECT user FROM t",
            "SELECT json_build_object('a', 1)",
            "SELECT x FROM t, LATERAL f(x) AS y",
        ];
        let rows = rows();
        let mut texts: Vec<String> = tricky.iter().map(|s| s.to_string()).collect();
        texts.extend(PLAIN_DATA_SQL.iter().map(|s| s.to_string()));
        for r in &rows {
            let cuts: Vec<usize> = r.sql.match_indices(' ').map(|(i, _)| i).collect();
            for &i in cuts.iter().step_by(5) {
                texts.extend(r.sql.get(..i).map(str::to_owned));
                texts.extend(r.sql.get(i..).map(str::to_owned));
            }
            texts.push(r.sql.clone());
        }
        for sql in &texts {
            if needs_rewrite(sql) {
                continue;
            }
            match rewrite(sql, SCOPE) {
                Ok(out) => assert_eq!(&out, sql, "needs_rewrite false, but rewritten"),
                Err(err) => assert_eq!(err, RewriteError::Unreadable, "{sql}"),
            }
        }
        for sql in tricky {
            assert!(needs_rewrite(sql), "{sql}");
        }
    }

    #[test]
    fn large_text_finishes_quickly() {
        let ids: Vec<String> = (0..150_000).map(|i| i.to_string()).collect();
        let big = format!(
            "SELECT id, name FROM parcels WHERE id IN ({})",
            ids.join(", ")
        );
        assert!(big.len() > 1_000_000);
        let started = std::time::Instant::now();
        assert!(!needs_rewrite(&big));
        let ids = ids.get(..15_000).unwrap_or_default().join(", ");
        let mid = format!("SELECT version(), id FROM parcels WHERE name ~ 'x' AND id IN ({ids})");
        assert!(mid.len() > 90_000 && needs_rewrite(&mid));
        let out = rewrite(&mid, SCOPE).unwrap_or_default();
        assert!(out.starts_with(
            "SELECT ds_pg.version(), id FROM parcels WHERE regexp_matches(name, 'x')"
        ));
        // release builds take milliseconds; this only catches a blowup (debug, a loaded machine)
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }

    #[test]
    fn public_lists_are_the_references_sets() {
        let sorted = |mut v: Vec<&'static str>| {
            v.sort_unstable();
            v
        };
        let relations = sorted([PG_RELATIONS, INFORMATION_SCHEMA_RELATIONS].concat());
        assert_eq!(RELATIONS, relations.as_slice());
        let produced_scoped = [
            "regclass",
            "regclass_name",
            "regnamespace",
            "regnamespace_name",
        ];
        let scoped = sorted([CLIENT_SCOPED_FUNCTIONS, &produced_scoped].concat());
        assert_eq!(SCOPED_FUNCTIONS, scoped.as_slice());
        let produced = [
            "regtype",
            "regtype_name",
            "regproc_name",
            "regrole_name",
            "session_user",
        ];
        let unscoped = CLIENT_FUNCTIONS
            .iter()
            .filter(|f| !CLIENT_SCOPED_FUNCTIONS.contains(f));
        let functions = sorted(unscoped.copied().chain(produced).collect());
        assert_eq!(FUNCTIONS, functions.as_slice());
        assert_eq!(
            (PG_RELATIONS.len(), INFORMATION_SCHEMA_RELATIONS.len()),
            (46, 6)
        );
        assert_eq!(
            (CLIENT_FUNCTIONS.len(), CLIENT_SCOPED_FUNCTIONS.len()),
            (47, 9)
        );
        // every function a reg* cast produces is listed
        for reg in REG_TYPES {
            for f in [reg.oid_fn, reg.name_fn] {
                let name = f.strip_prefix("ds_pg.").unwrap_or(f);
                assert!(
                    FUNCTIONS.contains(&name) || SCOPED_FUNCTIONS.contains(&name),
                    "{f}"
                );
                assert_eq!(reg.scoped, SCOPED_FUNCTIONS.contains(&name), "{f}");
            }
        }
    }

    #[test]
    fn searched_lists_are_sorted() {
        for list in [
            RELATIONS,
            SCOPED_FUNCTIONS,
            FUNCTIONS,
            PG_RELATIONS,
            INFORMATION_SCHEMA_RELATIONS,
            CLIENT_FUNCTIONS,
            CLIENT_SCOPED_FUNCTIONS,
            USER_KEYWORDS,
            SET_RETURNING,
            TEXT_TYPES,
            OID_TYPES,
            NOT_ALIAS,
            END_FROM,
        ] {
            assert!(
                list.windows(2).all(|w| matches!(w, [a, b] if a < b)),
                "{list:?}"
            );
        }
    }

    #[test]
    fn python_whitespace_and_digits() {
        let spaces: Vec<char> = (0..=0x10FFFF_u32)
            .filter_map(char::from_u32)
            .filter(|c| is_py_space(*c))
            .collect();
        assert_eq!(spaces.len(), 29);
        assert!(spaces
            .iter()
            .all(|c| c.is_whitespace() || ('\u{1C}'..='\u{1F}').contains(c)));
        let digits = (0..=0x10FFFF_u32)
            .filter_map(char::from_u32)
            .filter(|c| is_py_digit(*c))
            .count();
        assert_eq!(digits, 660); // Python 3.11: sum(chr(c).isdecimal() for c in range(0x110000))
        assert!(is_py_digit('\u{663}') && is_py_digit('\u{1D7FF}') && !is_py_digit('\u{1D800}'));
    }
}
