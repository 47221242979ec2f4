#!/usr/bin/env python3
"""Reference implementation of the PostgreSQL catalog rewrite (issue #26, docs/design/pgwire.md §7.6).

A client's SQL is rewritten on its tokens, never reparsed: DuckDB 1.5.5's parser refuses some
of what clients send (`x::pg_catalog.text`), and binds other parts differently (`~`, scalar
functions in FROM, a function's table alias). The Rust side ports these rules; the rows of
tests/data/pg_catalog.tsv are this rewriter's output (scripts/pg_catalog_check.py checks that
they still are, and that DuckDB answers them).

    rewrite(sql, scope=None) -> str     scope: None (every table) or a list of table names

Rules, in the order they run (each on tokens outside strings, quoted names and comments):
  1. OPERATOR(pg_catalog.OP) -> OP
  2. COLLATE pg_catalog.default / COLLATE "default" / COLLATE pg_catalog."default" -> dropped
  3. Casts to PostgreSQL-only types, `E::T` and `CAST(E AS T)` (T optionally `pg_catalog.`):
     regclass -> ds_pg.regclass(E, S); then `::text`/`::varchar`/`::name` (or CAST AS those) of
     that -> ds_pg.regclass_name(E, S); the same for regtype (no S), regnamespace (S); regproc,
     regprocedure -> ds_pg.regproc_name(E); regrole -> ds_pg.regrole_name(E);
     other types lose `pg_catalog.`; name, "char", bpchar -> VARCHAR; int2vector -> SMALLINT[];
     oidvector -> BIGINT[]; jsonb -> JSON.
  4. `A ~ B`, `A !~ B`, `A ~* B`, `A !~* B` (PostgreSQL: match anywhere; DuckDB's `~` is a full
     match) -> regexp_matches(A, B[, 'i']), NOT regexp_matches(...). A and B are one operand each
     (a name chain, literal, parameter, call, or parenthesized expression, with its casts).
  5. Relations: `pg_catalog.R`, `information_schema.R`, and bare `R` (R a pg_catalog relation) in
     a FROM clause -> `ds_pg.R(S)`, with `AS R` added when the client gave no alias; column
     references `pg_catalog.R.col` / `information_schema.R.col` -> `R.col`.
  6. Functions: `pg_catalog.f(` -> `ds_pg.f(` for f in FUNCTIONS, else `f(`; bare `f(` for f in
     FUNCTIONS -> `ds_pg.f(`; for f in SCOPED_FUNCTIONS `, S` is added as the last argument.
     json_build_object -> json_object. Bare current_user / session_user / current_role / user
     -> ds_pg.session_user().
  7. In a FROM clause: a set-returning function with a table alias and no column list
     (`generate_series(1, 3) AS i`) -> `... AS i(i)` (PostgreSQL names the column after the
     alias); any other function (`string_to_array(x, ',') s`) -> `(SELECT f(...) AS s) AS s`.
  8. A statement `SHOW name` -> SELECT ds_pg.current_setting('name') AS name (the transport
     answers SHOW itself; this is its equivalent).
S is the scope literal: NULL, or ['t1', 's.t2']::VARCHAR[].
"""

import re
import sys

PG_RELATIONS = {
    "pg_am", "pg_attrdef", "pg_attribute", "pg_auth_members", "pg_authid", "pg_cast", "pg_class",
    "pg_collation", "pg_constraint", "pg_database", "pg_depend", "pg_description", "pg_enum",
    "pg_event_trigger", "pg_extension", "pg_foreign_table", "pg_index", "pg_indexes",
    "pg_inherits", "pg_language", "pg_matviews", "pg_namespace", "pg_opclass", "pg_operator",
    "pg_partitioned_table", "pg_policy", "pg_proc", "pg_publication", "pg_publication_namespace",
    "pg_publication_rel", "pg_range", "pg_rewrite", "pg_roles", "pg_sequence", "pg_sequences",
    "pg_settings", "pg_shdescription", "pg_stat_activity", "pg_stat_user_tables",
    "pg_statistic_ext", "pg_tables", "pg_tablespace", "pg_trigger", "pg_type", "pg_user",
    "pg_views",
}
INFORMATION_SCHEMA_RELATIONS = {
    "schemata", "tables", "columns", "views", "table_constraints", "key_column_usage",
}
FUNCTIONS = {
    "version", "current_setting", "set_config", "current_schemas", "pg_get_userbyid",
    "pg_encoding_to_char", "pg_char_to_encoding", "pg_is_in_recovery", "pg_backend_pid",
    "pg_table_is_visible", "pg_type_is_visible", "pg_function_is_visible",
    "pg_collation_is_visible", "pg_relation_is_publishable", "pg_get_statisticsobjdef_columns",
    "pg_get_partkeydef", "pg_get_function_result", "pg_get_function_arguments",
    "pg_get_function_identity_arguments", "pg_get_serial_sequence", "pg_table_size",
    "pg_total_relation_size", "pg_relation_size", "pg_indexes_size", "pg_get_expr",
    "format_type", "quote_ident", "parse_ident", "array_lower", "array_upper", "array_ndims",
    "to_regclass", "to_regtype", "has_schema_privilege", "has_database_privilege",
    "shobj_description", "pg_get_triggerdef", "pg_partition_ancestors", "pg_partition_root",
}
SCOPED_FUNCTIONS = {
    "to_regclass", "has_table_privilege", "has_any_column_privilege", "has_column_privilege",
    "pg_get_indexdef", "pg_get_constraintdef", "pg_get_viewdef", "obj_description",
    "col_description",
}
FUNCTIONS |= SCOPED_FUNCTIONS
RENAMED_FUNCTIONS = {"json_build_object": "json_object"}
USER_KEYWORDS = {"current_user", "session_user", "current_role", "user"}
SET_RETURNING = {"generate_series", "unnest", "range", "regexp_split_to_table"}
TEXT_TYPES = {"text", "varchar", "name", "character varying"}
# Casts: type -> (function, takes scope, function for a following ::text)
REG_TYPES = {
    "regclass": ("ds_pg.regclass", True, "ds_pg.regclass_name"),
    "regtype": ("ds_pg.regtype", False, "ds_pg.regtype_name"),
    "regnamespace": ("ds_pg.regnamespace", True, "ds_pg.regnamespace_name"),
    "regproc": ("ds_pg.regproc_name", False, "ds_pg.regproc_name"),
    "regprocedure": ("ds_pg.regproc_name", False, "ds_pg.regproc_name"),
    "regrole": ("ds_pg.regrole_name", False, "ds_pg.regrole_name"),
}
TYPE_RENAMES = {"name": "VARCHAR", '"char"': "VARCHAR", "bpchar": "VARCHAR",
                "int2vector": "SMALLINT[]", "oidvector": "BIGINT[]", "jsonb": "JSON"}
# Words after a relation that are not its alias.
NOT_ALIAS = {
    "where", "join", "left", "right", "inner", "outer", "full", "cross", "natural", "on",
    "using", "group", "order", "limit", "offset", "union", "except", "intersect", "having",
    "window", "fetch", "for", "lateral", "returning", "qualify", "tablesample",
}
# Words that end a FROM clause at the same depth.
END_FROM = {"where", "group", "having", "order", "limit", "offset", "union", "except",
            "intersect", "window", "fetch", "for", "returning", "qualify", "select"}

TOKEN_RE = re.compile(r"""
    (?P<ws>\s+)
  | (?P<comment>--[^\n]*|/\*.*?\*/)
  | (?P<string>[eE]'(?:[^'\\]|\\.|'')*'|'(?:[^']|'')*'|\$\$.*?\$\$)
  | (?P<qident>"(?:[^"]|"")*")
  | (?P<param>\$\d+)
  | (?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)
  | (?P<ident>[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*)
  | (?P<cast>::)
  | (?P<op>[+\-*/<>=~!@#%^&|`?]+)
  | (?P<punct>[(),;.\[\]:{}])
""", re.VERBOSE | re.DOTALL)


class Tok:
    __slots__ = ("kind", "text")

    def __init__(self, kind, text):
        self.kind, self.text = kind, text

    @property
    def low(self):
        return self.text.lower()

    def __repr__(self):
        return f"{self.kind}:{self.text}"


def tokenize(sql):
    out, pos = [], 0
    while pos < len(sql):
        m = TOKEN_RE.match(sql, pos)
        if not m:
            raise ValueError(f"cannot tokenize at {pos}: {sql[pos:pos + 20]!r}")
        kind = m.lastgroup
        text = m.group()
        if kind == "op" and len(text) > 1 and text[-1] in "+-" and not re.search(r"[~!@#%^&|`?]", text):
            # `a=-1`: PostgreSQL splits a trailing + or - off an operator of plain characters
            out.append(Tok("op", text[:-1]))
            out.append(Tok("op", text[-1]))
        else:
            out.append(Tok(kind, text))
        pos = m.end()
    return out


def text(toks):
    return "".join(t.text for t in toks)


def sig(toks, i, step=1):
    """Index of the next significant token from i (inclusive), or -1 / len."""
    while 0 <= i < len(toks) and toks[i].kind in ("ws", "comment"):
        i += step
    return i


def at(toks, i):
    return toks[i] if 0 <= i < len(toks) else None


def is_word(t, *words):
    return t is not None and t.kind == "ident" and t.low in words


def match_close(toks, i):
    """i is at `(` or `[`: the index of its closing bracket."""
    open_, close = toks[i].text, {"(": ")", "[": "]"}[toks[i].text]
    depth = 0
    for j in range(i, len(toks)):
        if toks[j].kind == "punct" and toks[j].text == open_:
            depth += 1
        elif toks[j].kind == "punct" and toks[j].text == close:
            depth -= 1
            if depth == 0:
                return j
    raise ValueError("unbalanced brackets")


def match_open(toks, j):
    close = toks[j].text
    open_ = {")": "(", "]": "["}[close]
    depth = 0
    for i in range(j, -1, -1):
        if toks[i].kind == "punct" and toks[i].text == close:
            depth += 1
        elif toks[i].kind == "punct" and toks[i].text == open_:
            depth -= 1
            if depth == 0:
                return i
    raise ValueError("unbalanced brackets")


def operand_start(toks, end):
    """Start index of the operand that ends at token `end` (inclusive): a name chain, literal,
    parameter, call, subscript or parenthesized expression, with the casts before it."""
    i = end
    while True:
        t = toks[i]
        if t.kind == "punct" and t.text in (")", "]"):
            i = match_open(toks, i)
            p = sig(toks, i - 1, -1)
            if at(toks, p) is not None and (at(toks, p).kind in ("ident", "qident") or
                                            (at(toks, p).kind == "punct" and at(toks, p).text in (")", "]"))):
                if toks[i].text == "[" or at(toks, p).kind in ("ident", "qident"):
                    i = p
                    continue
        # a dotted chain: a.b.c
        p = sig(toks, i - 1, -1)
        if at(toks, p) is not None and at(toks, p).kind == "punct" and at(toks, p).text == ".":
            q = sig(toks, p - 1, -1)
            if at(toks, q) is not None and at(toks, q).kind in ("ident", "qident"):
                i = q
                continue
        # casts before: x::t
        if at(toks, p) is not None and at(toks, p).kind == "cast":
            i = sig(toks, p - 1, -1)
            continue
        return i


def operand_end(toks, start):
    """End index (inclusive) of the operand that starts at `start`."""
    i = start
    t = toks[i]
    if t.kind == "punct" and t.text == "(":
        i = match_close(toks, i)
    elif t.kind in ("ident", "qident"):
        n = sig(toks, i + 1)
        while at(toks, n) is not None and at(toks, n).kind == "punct" and at(toks, n).text == ".":
            i = sig(toks, n + 1)
            n = sig(toks, i + 1)
        if at(toks, n) is not None and at(toks, n).kind == "punct" and at(toks, n).text == "(":
            i = match_close(toks, n)
    while True:
        n = sig(toks, i + 1)
        nt = at(toks, n)
        if nt is not None and nt.kind == "punct" and nt.text == "[":
            i = match_close(toks, n)
        elif nt is not None and nt.kind == "cast":
            i = type_end(toks, sig(toks, n + 1))
        else:
            return i


def type_end(toks, i):
    """i at the first token of a type name: index of its last token."""
    n = sig(toks, i + 1)
    if at(toks, n) is not None and at(toks, n).kind == "punct" and at(toks, n).text == ".":
        i = sig(toks, n + 1)
        n = sig(toks, i + 1)
    if at(toks, n) is not None and at(toks, n).kind == "punct" and at(toks, n).text == "(":
        i = match_close(toks, n)
        n = sig(toks, i + 1)
    while at(toks, n) is not None and at(toks, n).kind == "punct" and at(toks, n).text == "[":
        i = match_close(toks, n)
        n = sig(toks, i + 1)
    return i


def type_name(toks, i, j):
    """The type spelled by tokens i..j, without pg_catalog., lower case (quoted names kept)."""
    s = re.sub(r"\s+", "", text(toks[i:j + 1]))
    s = re.sub(r'^(pg_catalog|"pg_catalog")\.', "", s, flags=re.I)
    return s if s.startswith('"') else s.lower()


def scope_literal(scope):
    if scope is None:
        return "NULL"
    return "[" + ", ".join("'" + s.replace("'", "''") + "'" for s in scope) + "]::VARCHAR[]"


def rule_operator(toks):
    out, i = [], 0
    while i < len(toks):
        t = toks[i]
        if is_word(t, "operator"):
            a = sig(toks, i + 1)
            if at(toks, a) is not None and at(toks, a).text == "(":
                close = match_close(toks, a)
                inner = [x for x in toks[a + 1:close] if x.kind not in ("ws", "comment")]
                if len(inner) == 3 and inner[0].low == "pg_catalog" and inner[1].text == ".":
                    out.append(Tok("op", inner[2].text))
                    i = close + 1
                    continue
                if len(inner) == 1 and inner[0].kind == "op":
                    out.append(Tok("op", inner[0].text))
                    i = close + 1
                    continue
        out.append(t)
        i += 1
    return out


def rule_collate(toks):
    out, i = [], 0
    while i < len(toks):
        t = toks[i]
        if is_word(t, "collate"):
            a = sig(toks, i + 1)
            parts = []
            j = a
            while True:
                tj = at(toks, j)
                if tj is None:
                    break
                parts.append(tj.text)
                n = sig(toks, j + 1)
                if at(toks, n) is not None and at(toks, n).text == ".":
                    parts.append(".")
                    j = sig(toks, n + 1)
                    continue
                break
            name = "".join(parts).lower().replace('"', "")
            if name in ("default", "pg_catalog.default"):
                while out and out[-1].kind == "ws":
                    out.pop()
                i = j + 1
                continue
        out.append(t)
        i += 1
    return out


def rule_casts(toks, scope):
    """One cast rewrite per pass, until none is left."""
    S = scope_literal(scope)
    changed = True
    while changed:
        changed = False
        # CAST(E AS T), innermost first
        for i in range(len(toks) - 1, -1, -1):
            if not is_word(toks[i], "cast"):
                continue
            a = sig(toks, i + 1)
            if at(toks, a) is None or at(toks, a).text != "(":
                continue
            close = match_close(toks, a)
            depth, as_at = 0, None
            for j in range(a + 1, close):
                if toks[j].kind == "punct" and toks[j].text in "([":
                    depth += 1
                elif toks[j].kind == "punct" and toks[j].text in ")]":
                    depth -= 1
                elif depth == 0 and is_word(toks[j], "as"):
                    as_at = j
            if as_at is None:
                continue
            t0 = sig(toks, as_at + 1)
            t1 = sig(toks, close - 1, -1)
            ty = type_name(toks, t0, t1)
            expr = toks[a + 1:as_at]
            # the type of a cast applied to this one: CAST(CAST(x AS regclass) AS oid), CAST(...)::oid
            nk = sig(toks, close + 1)
            next_type = None
            if is_word(at(toks, nk), "as") or (at(toks, nk) is not None and at(toks, nk).kind == "cast"):
                n0 = sig(toks, nk + 1)
                next_type = type_name(toks, n0, type_end(toks, n0))
            new = cast_replacement(expr, ty, S, next_type)
            if new is not None:
                toks = toks[:i] + tokenize(new) + toks[close + 1:]
                changed = True
                break
            if ty in TYPE_RENAMES or re.match(r'(?i)(pg_catalog|"pg_catalog")\s*\.', text(toks[t0:t1 + 1])):
                toks = toks[:t0] + tokenize(TYPE_RENAMES.get(ty, ty)) + toks[t1 + 1:]
                changed = True
                break
        if changed:
            continue
        # E::T, leftmost first
        for k, t in enumerate(toks):
            if t.kind != "cast":
                continue
            t0 = sig(toks, k + 1)
            t1 = type_end(toks, t0)
            ty = type_name(toks, t0, t1)
            e1 = sig(toks, k - 1, -1)
            e0 = operand_start(toks, e1)
            nk = sig(toks, t1 + 1)
            next_type = None
            if at(toks, nk) is not None and at(toks, nk).kind == "cast":
                n0 = sig(toks, nk + 1)
                next_type = type_name(toks, n0, type_end(toks, n0))
            new = cast_replacement(toks[e0:e1 + 1], ty, S, next_type)
            if new is not None:
                toks = toks[:e0] + tokenize(new) + toks[t1 + 1:]
                changed = True
                break
            spelled = text(toks[t0:t1 + 1])
            if ty in TYPE_RENAMES or re.match(r'(?i)(pg_catalog|"pg_catalog")\s*\.', spelled):
                toks = toks[:t0] + tokenize(TYPE_RENAMES.get(ty, ty)) + toks[t1 + 1:]
                changed = True
                break
    return toks


OID_TYPES = {"oid", "int", "int4", "int8", "integer", "bigint", "regclass", "regtype", "regnamespace"}


def cast_replacement(expr_toks, ty, S, next_type=None):
    """SQL replacing `expr::ty`, or None when the cast stays. next_type: the type of a cast
    that follows (`x::regclass::oid`)."""
    expr = text(expr_toks).strip()
    base = ty
    if base in REG_TYPES:
        fn, scoped, name_fn = REG_TYPES[base]
        sig_toks = [t for t in expr_toks if t.kind not in ("ws", "comment")]
        literal = len(sig_toks) == 1 and sig_toks[0].kind in ("string", "param")
        # PostgreSQL's reg* values compare as OIDs and print as names: a literal (`'t'::regclass`,
        # compared with an OID) becomes the OID, an OID expression (`c.oid::regclass`, shown)
        # the name, unless an OID cast follows
        if not literal and next_type not in OID_TYPES:
            fn = name_fn
        return f"{fn}({expr}, {S})" if scoped else f"{fn}({expr})"
    if base in TEXT_TYPES:
        m = re.fullmatch(r"ds_pg\.(regclass|regtype|regnamespace)\((.*)\)", expr, re.S)
        if m:
            _, _, name_fn = REG_TYPES[m.group(1)]
            return f"{name_fn}({m.group(2)})"
        if re.fullmatch(r"ds_pg\.(regproc_name|regrole_name)\((.*)\)", expr, re.S):
            return expr
    return None


def rule_regex(toks):
    changed = True
    while changed:
        changed = False
        for k, t in enumerate(toks):
            if t.kind == "op" and t.text in ("~", "!~", "~*", "!~*"):
                a1 = sig(toks, k - 1, -1)
                a0 = operand_start(toks, a1)
                b0 = sig(toks, k + 1)
                b1 = operand_end(toks, b0)
                a, b = text(toks[a0:a1 + 1]), text(toks[b0:b1 + 1])
                flags = ", 'i'" if t.text.endswith("*") else ""
                neg = "NOT " if t.text.startswith("!") else ""
                toks = toks[:a0] + tokenize(f"{neg}regexp_matches({a}, {b}{flags})") + toks[b1 + 1:]
                changed = True
                break
    return toks


def from_context(toks):
    """For each token index: whether it is directly in a FROM clause (at its own depth)."""
    flags, stack, in_from = [False] * len(toks), [], False
    for i, t in enumerate(toks):
        if t.kind == "punct" and t.text == "(":
            flags[i] = in_from
            stack.append(in_from)
            in_from = False
            continue
        if t.kind == "punct" and t.text == ")":
            in_from = stack.pop() if stack else False
            flags[i] = in_from
            continue
        if t.kind == "ident" and t.low == "from":
            # `IS DISTINCT FROM`, `EXTRACT(x FROM y)`, `trim(x FROM y)` are not clauses
            p = at(toks, sig(toks, i - 1, -1))
            if not is_word(p, "distinct"):
                in_from = True
                flags[i] = False
                continue
        if t.kind == "ident" and t.low in END_FROM:
            in_from = False
        if t.kind == "punct" and t.text == ";":
            in_from = False
        flags[i] = in_from
    return flags


def alias_given(toks, j):
    n = sig(toks, j + 1)
    t = at(toks, n)
    if t is None:
        return False
    if is_word(t, "as"):
        return True
    if t.kind == "qident":
        return True
    return t.kind == "ident" and t.low not in NOT_ALIAS


def rule_relations(toks, scope):
    S = scope_literal(scope)
    changed = True
    while changed:
        changed = False
        in_from = from_context(toks)
        for i, t in enumerate(toks):
            if t.kind != "ident":
                continue
            prev = at(toks, sig(toks, i - 1, -1))
            if prev is not None and prev.text == ".":
                continue
            d1 = sig(toks, i + 1)
            schema = t.low if at(toks, d1) is not None and at(toks, d1).text == "." else None
            if schema in ("pg_catalog", "information_schema"):
                r = sig(toks, d1 + 1)
                rt = at(toks, r)
                if rt is None or rt.kind != "ident":
                    continue
                rels = PG_RELATIONS if schema == "pg_catalog" else INFORMATION_SCHEMA_RELATIONS
                if rt.low not in rels:
                    continue
                nxt = at(toks, sig(toks, r + 1))
                if nxt is not None and nxt.text == ".":
                    # pg_catalog.pg_class.relname -> pg_class.relname
                    toks = toks[:i] + toks[r:]
                    changed = True
                    break
                if nxt is not None and nxt.text == "(":
                    continue
                alias = "" if alias_given(toks, r) else f" AS {rt.low}"
                toks = toks[:i] + tokenize(f"ds_pg.{rt.low}({S}){alias}") + toks[r + 1:]
                changed = True
                break
            if (t.low in PG_RELATIONS and in_from[i] and schema is None
                    and (is_word(prev, "from", "join", "only") or (prev is not None and prev.text == ","))):
                nxt = at(toks, d1)
                if nxt is not None and nxt.text == "(":
                    continue
                alias = "" if alias_given(toks, i) else f" AS {t.low}"
                toks = toks[:i] + tokenize(f"ds_pg.{t.low}({S}){alias}") + toks[i + 1:]
                changed = True
                break
    return toks


def rule_functions(toks, scope):
    S = scope_literal(scope)
    out_changed = True
    while out_changed:
        out_changed = False
        for i, t in enumerate(toks):
            if t.kind != "ident":
                continue
            prev = at(toks, sig(toks, i - 1, -1))
            n = sig(toks, i + 1)
            nt = at(toks, n)
            if t.low == "pg_catalog" and nt is not None and nt.text == "." and not (prev is not None and prev.text == "."):
                f = sig(toks, n + 1)
                ft = at(toks, f)
                p = sig(toks, f + 1)
                if ft is not None and ft.kind == "ident" and at(toks, p) is not None and at(toks, p).text == "(":
                    toks = toks[:i] + toks[f:]   # drop `pg_catalog.`; the bare rule below runs next
                    out_changed = True
                    break
                continue
            if prev is not None and prev.text == ".":
                continue
            if nt is not None and nt.text == "(":
                if t.low in RENAMED_FUNCTIONS:
                    toks = toks[:i] + [Tok("ident", RENAMED_FUNCTIONS[t.low])] + toks[i + 1:]
                    out_changed = True
                    break
                if t.low in FUNCTIONS:
                    close = match_close(toks, n)
                    args = toks[n + 1:close]
                    has_args = any(x.kind not in ("ws", "comment") for x in args)
                    extra = ((", " if has_args else "") + S) if t.low in SCOPED_FUNCTIONS else ""
                    toks = (toks[:i] + tokenize(f"ds_pg.{t.low}(") + args + tokenize(extra + ")")
                            + toks[close + 1:])
                    out_changed = True
                    break
            elif t.low in USER_KEYWORDS and (nt is None or nt.text != "."):
                toks = toks[:i] + tokenize("ds_pg.session_user()") + toks[i + 1:]
                out_changed = True
                break
    return toks


def rule_from_functions(toks):
    changed = True
    while changed:
        changed = False
        in_from = from_context(toks)
        for i, t in enumerate(toks):
            if t.kind != "ident" or not in_from[i]:
                continue
            prev = at(toks, sig(toks, i - 1, -1))
            if not (is_word(prev, "join", "from", "lateral") or (prev is not None and prev.text == ",")):
                continue
            # the call: f(...) or schema.f(...)
            n = sig(toks, i + 1)
            name = t.low
            if at(toks, n) is not None and at(toks, n).text == ".":
                f = sig(toks, n + 1)
                if at(toks, f) is None or at(toks, f).kind != "ident":
                    continue
                name = at(toks, f).low
                n = sig(toks, f + 1)
            if at(toks, n) is None or at(toks, n).text != "(":
                continue
            if name in PG_RELATIONS or name in INFORMATION_SCHEMA_RELATIONS:
                continue  # our table macros
            close = match_close(toks, n)
            call = text(toks[i:close + 1])
            a = sig(toks, close + 1)
            if is_word(at(toks, a), "with") and is_word(at(toks, sig(toks, a + 1)), "ordinality"):
                if name not in SET_RETURNING:
                    # f(x) WITH ORDINALITY AS a(v, n) -> unnest([f(x)]) WITH ORDINALITY AS a(v, n)
                    toks = toks[:i] + tokenize(f"unnest([{call}])") + toks[close + 1:]
                    changed = True
                    break
                continue
            al = sig(toks, a + 1) if is_word(at(toks, a), "as") else a
            alt = at(toks, al)
            if alt is None or alt.kind not in ("ident", "qident") or (alt.kind == "ident" and alt.low in NOT_ALIAS):
                continue
            after = at(toks, sig(toks, al + 1))
            if after is not None and after.text == "(":
                if name not in SET_RETURNING:
                    # f(x) AS a(v) -> (SELECT f(x)) AS a(v)
                    toks = toks[:i] + tokenize(f"(SELECT {call})") + toks[close + 1:]
                    changed = True
                    break
                continue     # a column list is given
            if name in SET_RETURNING:
                toks = toks[:al + 1] + tokenize(f"({alt.text})") + toks[al + 1:]
            else:
                toks = toks[:i] + tokenize(f"(SELECT {call} AS {alt.text}) AS {alt.text}") + toks[al + 1:]
            changed = True
            break
    return toks


def rule_show(sql):
    m = re.fullmatch(r"\s*show\s+(.+?)\s*;?\s*", sql, re.I | re.S)
    if not m:
        return None
    name = re.sub(r"\s+", " ", m.group(1).strip()).lower()
    name = {"transaction isolation level": "transaction_isolation", "time zone": "TimeZone"}.get(name, name)
    alias = name.lower().replace(".", "_")
    return f"SELECT ds_pg.current_setting('{name}') AS {alias}"


def rewrite(sql, scope=None):
    show = rule_show(sql)
    if show is not None:
        return show
    toks = tokenize(sql)
    toks = rule_operator(toks)
    toks = rule_collate(toks)
    toks = rule_casts(toks, scope)
    toks = rule_regex(toks)
    toks = rule_relations(toks, scope)
    toks = rule_functions(toks, scope)
    toks = rule_from_functions(toks)
    return text(toks)


if __name__ == "__main__":
    scope = sys.argv[1].split(",") if len(sys.argv) > 1 and sys.argv[1] else None
    print(rewrite(sys.stdin.read(), scope))
