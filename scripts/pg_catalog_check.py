#!/usr/bin/env python3
"""Checks src/engine/pg_catalog.sql against tests/data/pg_catalog.tsv with DuckDB (Python, 1.5.5).

For a fixture tenant (parcels, roads) in an in-memory DuckDB, with decoy catalogs beside it
(mosaic, a DuckLake-like metadata catalog, a temp table), it runs pg_catalog.sql, then the
gateway's sandbox settings, then every row's `rewritten` SQL, and compares the answer with
`expect`. It also checks, for every row:
  - the reference rewriter (scripts/pg_catalog_rewrite.py) turns `sql` into `rewritten`;
  - `rewritten` names no pg_catalog./information_schema. relation or function (they would be
    DuckDB's own, unscoped);
  - rewritten with the scope ['parcels'], the answer never shows `roads` (its name or OID),
    nor anything of the decoy catalogs, with either scope;
and that pg_catalog.sql also works when run after the sandbox settings, and twice.

    /var/tmp/duckstream-tools/venv/bin/python scripts/pg_catalog_check.py [-v] [--fill]

--fill rewrites the TSV in place: empty `rewritten` cells get the reference rewriter's output and
empty `expect` cells the answer DuckDB gives (review them before committing). Exit status 1 on
any failure.

TSV: a header, then one row per client query, `#` lines are comments. Columns: client, name,
sql (as the client sent it), rewritten (scope NULL), expect, params. Cells escape `\\`, newline
(`\\n`) and tab (`\\t`). In sql and rewritten, `{{oid:parcels}}` stands for the table's OID
(psql and SQLAlchemy send back the OID a previous query gave them). expect is JSON:
{"rows": N} and optionally "first": the first row, where "{{oid:T}}" and "{{tenant}}" stand for
the table's OID and the database's name; {"local": "..."}: answered by the transport, never
run. params: a JSON list of the query's $n parameters, or empty.
"""

import datetime
import decimal
import json
import os
import re
import sys
import uuid

import duckdb

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import pg_catalog_rewrite as rw  # noqa: E402

SQL_FILE = os.path.join(ROOT, "src", "engine", "pg_catalog.sql")
TSV_FILE = os.path.join(ROOT, "tests", "data", "pg_catalog.tsv")
COLUMNS = ["client", "name", "sql", "rewritten", "expect", "params"]

FIXTURES = {
    # the tenant of the TSV's rows
    "default": """
CREATE TABLE parcels(id INTEGER, name VARCHAR, ts TIMESTAMP, geom_wkt VARCHAR, area DOUBLE);
CREATE TABLE roads(id BIGINT, kind VARCHAR);
""",
    # rows whose expect says "fixture": "rich": keys, an index, a view, comments, every type
    "rich": """
CREATE TABLE a(id INTEGER PRIMARY KEY, u VARCHAR UNIQUE, k INTEGER CHECK (k > 0), n INTEGER NOT NULL DEFAULT 5);
CREATE TABLE b(id INTEGER, aid INTEGER REFERENCES a(id));
CREATE INDEX b_idx ON b(aid);
CREATE VIEW v AS SELECT id, u FROM a;
COMMENT ON TABLE a IS 'hello';
COMMENT ON COLUMN a.id IS 'the id';
CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE TABLE t_types(c_bool BOOLEAN, c_tiny TINYINT, c_small SMALLINT, c_int INTEGER, c_big BIGINT,
    c_huge HUGEINT, c_ubig UBIGINT, c_uhuge UHUGEINT, c_dec DECIMAL(10,2), c_float FLOAT,
    c_double DOUBLE, c_text VARCHAR, c_blob BLOB, c_bit BIT, c_uuid UUID, c_json JSON, c_date DATE,
    c_time TIME, c_timetz TIMETZ, c_ts TIMESTAMP, c_ts_ns TIMESTAMP_NS, c_tstz TIMESTAMPTZ,
    c_interval INTERVAL, c_enum mood, c_ints INTEGER[], c_texts VARCHAR[], c_fixed DOUBLE[3],
    c_nested INTEGER[][], c_struct STRUCT(x INTEGER, y VARCHAR), c_structs STRUCT(x INTEGER)[],
    c_map MAP(VARCHAR, INTEGER), c_union UNION(i INTEGER, s VARCHAR), c_geom GEOMETRY);
CREATE SCHEMA s2;
CREATE TABLE s2.t2(x INTEGER);
""",
}
# Per fixture: the scope of the scoped run, and what it must never show (names and OIDs).
SCOPED = {
    "default": (["parcels"], {"roads"}, ["roads"]),
    "rich": (["b"], {"a", "v", "t_types", "t2", "hello", "the id", "a_id_pkey", "a_u_key",
                     "a_k_check", "s2"}, ["a", "v", "t_types", "t2"]),
}
# What the catalogs must never show: other catalogs of the same DuckDB database.
DECOYS = """
ATTACH ':memory:' AS mosaic;
CREATE TABLE mosaic.main.preagg_decoy(x INTEGER);
ATTACH ':memory:' AS __ducklake_metadata_decoy;
CREATE TABLE __ducklake_metadata_decoy.main.ducklake_decoy(x INTEGER);
CREATE TEMP TABLE temp_decoy(x INTEGER);
"""
DECOY_WORDS = ["preagg_decoy", "ducklake_decoy", "__ducklake_metadata", "temp_decoy", "mosaic",
               "memory_limit", "/tmp", "/var", "/home"]
SANDBOX = ("SET autoinstall_known_extensions = false; SET autoload_known_extensions = false; "
           "SET enable_external_access = false;")


def unescape(cell):
    out, i = [], 0
    while i < len(cell):
        c = cell[i]
        if c == "\\" and i + 1 < len(cell):
            n = cell[i + 1]
            out.append({"n": "\n", "t": "\t", "\\": "\\"}.get(n, "\\" + n))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def escape(cell):
    return cell.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")


def read_tsv(path=TSV_FILE):
    rows, lines = [], open(path, encoding="utf-8").read().split("\n")
    header = None
    for line in lines:
        if not line or line.startswith("#"):
            continue
        cells = line.split("\t")
        if header is None:
            header = cells
            assert header == COLUMNS, f"TSV header must be {COLUMNS}, is {header}"
            continue
        cells += [""] * (len(COLUMNS) - len(cells))
        rows.append({k: unescape(v) for k, v in zip(COLUMNS, cells)})
    return rows


def write_tsv(rows, path=TSV_FILE):
    head = [line for line in open(path, encoding="utf-8").read().split("\n") if line.startswith("#")]
    out = head + ["\t".join(COLUMNS)]
    out += ["\t".join(escape(r[k]) for k in COLUMNS) for r in rows]
    open(path, "w", encoding="utf-8").write("\n".join(out) + "\n")


def connect(order="macros-first", fixture="default"):
    con = duckdb.connect()
    con.execute(FIXTURES[fixture])
    con.execute(DECOYS)
    sql = open(SQL_FILE, encoding="utf-8").read()
    if order == "macros-first":
        con.execute(sql)
        con.execute(sql)  # idempotent: every pooled connection may run it
        con.execute(SANDBOX)
    else:
        con.execute(SANDBOX)
        con.execute(sql)
    return con


def plain(v):
    if isinstance(v, (datetime.date, datetime.datetime, datetime.time, datetime.timedelta,
                      decimal.Decimal, uuid.UUID)):
        return str(v)
    if isinstance(v, float) and v == int(v):
        return v
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    return v


class Fixture:
    def __init__(self, con):
        self.con = con
        self.oids = dict(con.execute(
            "SELECT table_name, table_oid FROM duckdb_tables() WHERE database_name = current_database() "
            "UNION ALL SELECT view_name, view_oid FROM duckdb_views() "
            "WHERE database_name = current_database() AND NOT internal "
            "UNION ALL SELECT index_name, index_oid FROM duckdb_indexes() "
            "WHERE database_name = current_database()").fetchall())
        self.tenant = con.execute("SELECT current_database()").fetchone()[0]

    def sub(self, sql):
        return re.sub(r"\{\{oid:(\w+)\}\}", lambda m: str(self.oids[m.group(1)]), sql)

    def run(self, sql, params):
        sql = self.sub(sql)
        args = json.loads(params) if params.strip() else []
        used = sorted({int(n) for n in re.findall(r"\$(\d+)", sql)})
        if used:
            # DuckDB takes $n positionally like PostgreSQL: pass the list whole
            cur = self.con.execute(sql, args)
        else:
            cur = self.con.execute(sql)
        return [list(plain(r)) for r in cur.fetchall()]

    def placeholders(self, row):
        inv = {v: k for k, v in self.oids.items()}
        return [("{{oid:%s}}" % inv[x]) if isinstance(x, int) and not isinstance(x, bool) and x in inv
                else ("{{tenant}}" if x == self.tenant else x) for x in row]


def answer_of(result, ordered, fx):
    exp = {"rows": len(result)}
    if result and (ordered or len(result) == 1):
        exp["first"] = fx.placeholders(result[0])
    return exp


def leaks_catalog(sql):
    toks = [t for t in rw.tokenize(sql) if t.kind not in ("ws", "comment")]
    for a, b in zip(toks, toks[1:]):
        if a.kind == "ident" and a.low in ("pg_catalog", "information_schema") and b.text == ".":
            return True
    return False


def flat(values):
    for v in values:
        if isinstance(v, (list, tuple)):
            yield from flat(v)
        elif isinstance(v, dict):
            yield from flat(list(v.keys()) + list(v.values()))
        else:
            yield v


def check(rows, verbose=False, fill=False):
    failures = []
    fixtures = {(o, fx): Fixture(connect(o, fx)) for o in ("macros-first", "sandbox-first")
                for fx in FIXTURES}
    for n, r in enumerate(rows, 1):
        label = f"{n}: {r['client']} | {r['name']}"
        want_rewrite = rw.rewrite(r["sql"], None)
        if fill and not r["rewritten"].strip():
            r["rewritten"] = want_rewrite
        if r["rewritten"] != want_rewrite:
            failures.append(f"{label}: `rewritten` is not what the reference rewriter gives:\n{want_rewrite}")
        if leaks_catalog(r["rewritten"]):
            failures.append(f"{label}: `rewritten` still names pg_catalog./information_schema.")
        expect = json.loads(r["expect"]) if r["expect"].strip() else {}
        if "local" in expect:
            if verbose:
                print(f"ok    {label} (local: {expect['local']})")
            continue
        fixture = expect.get("fixture", "default")
        ordered = bool(re.search(r"(?i)order\s+by", r["sql"]))
        for order in ("macros-first", "sandbox-first"):
            f = fixtures[(order, fixture)]
            try:
                got = f.run(r["rewritten"], r["params"])
            except Exception as e:  # noqa: BLE001
                failures.append(f"{label} [{order}]: {type(e).__name__}: {e}")
                continue
            answer = answer_of(got, ordered, f)
            if "rows" not in expect and fill and order == "macros-first":
                expect.update(answer)
                r["expect"] = json.dumps(expect, ensure_ascii=False)
            if "rows" not in expect:
                failures.append(f"{label}: no expected answer (run with --fill)")
            elif (answer["rows"] != expect["rows"]
                  or ("first" in expect and answer.get("first") != expect["first"])):
                failures.append(f"{label} [{order}]: expected {json.dumps(expect)}, got {json.dumps(answer)}")
            for v in flat(got):
                if isinstance(v, str) and any(w in v for w in DECOY_WORDS):
                    failures.append(f"{label} [{order}]: shows {v!r}")
        # the scope: what is outside it never appears
        f = fixtures[("macros-first", fixture)]
        scope, names, hidden = SCOPED[fixture]
        hidden_oids = {f.oids[h] for h in hidden}
        try:
            got = f.run(rw.rewrite(r["sql"], scope), r["params"])
            for v in flat(got):
                if ((isinstance(v, str) and (v in names or (fixture == "default" and "roads" in v)))
                        or (isinstance(v, int) and not isinstance(v, bool) and v in hidden_oids)):
                    failures.append(f"{label} [scope {scope}]: shows {v!r}")
                    break
        except Exception as e:  # noqa: BLE001
            failures.append(f"{label} [scope {scope}]: {type(e).__name__}: {e}")
        if verbose:
            print(f"ok    {label}" if not any(f.startswith(label) for f in failures) else f"FAIL  {label}")
    return failures


def main():
    verbose = "-v" in sys.argv
    fill = "--fill" in sys.argv
    rows = read_tsv()
    failures = check(rows, verbose, fill)
    if fill:
        write_tsv(rows)
    for f in failures:
        print("FAIL", f)
    print(f"{len(rows) - len({f.split(':')[0] for f in failures})} passed, "
          f"{len({f.split(':')[0] for f in failures})} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
