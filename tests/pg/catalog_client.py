"""The client catalog queries of tests/data/pg_catalog.tsv through duckstream's PostgreSQL
endpoint with psycopg 3 (tests/api/pg.rs): each row's `sql` exactly as its client sent it (the
gateway rewrites it), with its parameters, answered as `expect` says. The databases are the
TSV's fixtures: `cat` (parcels, roads) and `rich` (keys, an index, a view, comments, every type).

Usage:
  catalog_client.py PORT                      every row, open mode
  catalog_client.py PORT DB SCOPED FULL HIDDEN
      every row of the default fixture on DB, logged in with the password SCOPED (a token
      limited to some tables): no answer shows a name in HIDDEN (comma-separated) or those
      tables' OIDs, as the password FULL (the tenant's key) reads them
Prints `ok` when every check held, else each failure and exits 1."""

import json
import os
import re
import sys

import psycopg
from psycopg.types.json import set_json_loads

HERE = os.path.dirname(os.path.abspath(__file__))
TSV = os.path.join(HERE, "..", "data", "pg_catalog.tsv")
COLUMNS = ["client", "name", "sql", "rewritten", "expect", "params"]
FIXTURE_DB = {"default": "cat", "rich": "rich"}


def unescape(cell):
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "\\": "\\"}.get(m.group(1), m.group(0)),
                  cell)


def read_tsv():
    rows, header = [], None
    for line in open(TSV, encoding="utf-8").read().split("\n"):
        if not line or line.startswith("#"):
            continue
        cells = line.split("\t")
        if header is None:
            header = cells
            continue
        cells += [""] * (len(COLUMNS) - len(cells))
        rows.append({k: unescape(v) for k, v in zip(COLUMNS, cells)})
    return rows


def plain(v):
    """Values as the TSV writes them (DuckDB's Python values, made JSON-like)."""
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v
    return str(v)


def placeholders(row, oids, tenant):
    inv = {v: k for k, v in oids.items()}
    return [("{{oid:%s}}" % inv[x]) if isinstance(x, int) and not isinstance(x, bool) and x in inv
            else ("{{tenant}}" if x == tenant else x) for x in row]


def server_params(sql, params):
    """The row's `$n` text as psycopg's named placeholders (psycopg numbers them `$n` again)."""
    if not params:
        return sql, None
    sql = sql.replace("%", "%%")
    sql = re.sub(r"\$(\d+)", lambda m: "%(p" + m.group(1) + ")s", sql)
    return sql, {f"p{i}": v for i, v in enumerate(params, 1)}


def connect(port, db, password=""):
    conn = psycopg.connect(f"host=127.0.0.1 port={port} dbname={db} user=tester "
                           f"password={password} sslmode=disable", autocommit=True)
    return conn


def oids_of(conn):
    """OIDs by name, read as psql reads them: through the endpoint's own pg_class."""
    return dict(conn.execute("SELECT c.relname, c.oid FROM pg_catalog.pg_class c").fetchall())


def run(conn, row, oids):
    sql = re.sub(r"\{\{oid:(\w+)\}\}", lambda m: str(oids[m.group(1)]), row["sql"])
    params = json.loads(row["params"]) if row["params"].strip() else []
    sql, args = server_params(sql, params)
    cur = conn.execute(sql, args)
    return [list(plain(r)) for r in cur.fetchall()] if cur.description else []


def flat(values):
    for v in values:
        if isinstance(v, (list, tuple)):
            yield from flat(v)
        elif isinstance(v, dict):
            yield from flat(list(v.keys()) + list(v.values()))
        else:
            yield v


def check_all(port):
    failures = []
    conns = {fx: connect(port, db) for fx, db in FIXTURE_DB.items()}
    oids = {fx: oids_of(c) for fx, c in conns.items()}
    for n, row in enumerate(read_tsv(), 1):
        expect = json.loads(row["expect"]) if row["expect"].strip() else {}
        if "local" in expect:
            continue
        fx = expect.get("fixture", "default")
        label = f"{n}: {row['client']} | {row['name']}"
        try:
            got = run(conns[fx], row, oids[fx])
        except psycopg.Error as e:
            failures.append(f"{label}: {type(e).__name__}: {e}")
            continue
        ordered = bool(re.search(r"(?i)order\s+by", row["sql"]))
        answer = {"rows": len(got)}
        if got and (ordered or len(got) == 1):
            answer["first"] = placeholders(got[0], oids[fx], FIXTURE_DB[fx])
        if answer["rows"] != expect["rows"] or ("first" in expect and answer.get("first") != expect["first"]):
            failures.append(f"{label}: expected {json.dumps(expect)}, got {json.dumps(answer)}")
    return failures


def check_scoped(port, db, password, full, hidden):
    """Every default-fixture row as a token limited to some tables sends it: what it may not
    read never appears, by name or by OID (the OIDs are read as the open tenant sees them)."""
    failures = []
    conn = connect(port, db, password)
    with connect(port, db, full) as full_conn:
        all_oids = oids_of(full_conn)
    hidden_oids = {all_oids[h] for h in hidden if h in all_oids}
    if not hidden_oids:
        failures.append(f"none of {hidden} is a relation of {db}")
    seen = oids_of(conn)
    if set(seen) & set(hidden):
        failures.append(f"pg_class shows {sorted(set(seen) & set(hidden))}")
    for n, row in enumerate(read_tsv(), 1):
        expect = json.loads(row["expect"]) if row["expect"].strip() else {}
        if "local" in expect or expect.get("fixture", "default") != "default":
            continue
        label = f"{n}: {row['client']} | {row['name']}"
        try:
            got = run(conn, row, {**all_oids, **seen})
        except psycopg.Error as e:
            failures.append(f"{label} [scoped]: {type(e).__name__}: {e}")
            continue
        for v in flat(got):
            shown = isinstance(v, str) and any(re.search(rf"\b{h}\b", v) for h in hidden)
            shown = shown or (isinstance(v, int) and not isinstance(v, bool) and v in hidden_oids)
            if shown:
                failures.append(f"{label} [scoped]: shows {v!r}")
                break
    return failures


def main():
    set_json_loads(lambda text: text)  # JSON as its text, as DuckDB's Python API gives it
    port = sys.argv[1]
    if len(sys.argv) > 2:
        db, scoped, full, hidden = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5].split(",")
        failures = check_scoped(port, db, scoped, full, hidden)
    else:
        failures = check_all(port)
    for f in failures:
        print("FAIL", f)
    print("ok" if not failures else f"{len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
