"""Grafana's PostgreSQL data source against duckstream's PostgreSQL endpoint (issue #26, item 6):
replays tests/data/grafana_pg.tsv, the statements Grafana sends (startup, health check, version
and TimescaleDB detection, the query builder's catalog queries, the demo dashboard's panels after
macro expansion, multi-statement strings), and checks each row's `expect` (the TSV's header says
what every key means and where every statement comes from).

Every statement goes as one simple-protocol Query message, the whole string, as pgx's
PgConn.Exec and lib/pq's simpleQuery send it: psycopg's ClientCursor with no parameters sends
PQsendQuery and reads every result of a multi-statement string (nextset). A row whose expect has
`startup` runs on a connection of its own, opened here on the socket, whose StartupMessage
carries exactly the parameters the driver sends (libpq cannot send lib/pq's extra_float_digits
or datestyle as startup parameters).

Usage: grafana_client.py PORT DATABASE [USER] [PASSWORD] (127.0.0.1, no TLS; USER defaults to
`grafana`). DATABASE is the demo tenant built with 20,000 rows. Prints `ok` when every row
held; else the failing rows (on stdout and stderr), and exits 1."""

import datetime
import decimal
import json
import math
import os
import re
import socket
import struct
import sys

import psycopg
from psycopg import pq

HERE = os.path.dirname(os.path.abspath(__file__))
TSV = os.path.join(HERE, "..", "data", "grafana_pg.tsv")
PG_CATALOG_TSV = os.path.join(HERE, "..", "data", "pg_catalog.tsv")

# The type OIDs pgx v5's pgtype.NewMap() registers (jackc/pgx v5.7.4, pgtype/pgtype_default.go),
# and the two Grafana adds (sqleng/sql_engine_pgx.go newProcessCfgPGX: timetz 1266, money 790).
# Grafana's pgx path fails a query whose result has any other column type.
PGX_OIDS = {
    16, 17, 18, 19, 20, 21, 23, 25, 26, 27, 28, 29, 114, 142, 143, 199, 271, 600, 601, 602, 603,
    604, 628, 629, 650, 651, 700, 701, 705, 718, 719, 774, 829, 869, 1000, 1001, 1002, 1003, 1005,
    1007, 1009, 1010, 1011, 1012, 1014, 1015, 1016, 1017, 1018, 1019, 1020, 1021, 1022, 1027,
    1028, 1033, 1034, 1040, 1041, 1042, 1043, 1082, 1083, 1114, 1115, 1182, 1183, 1184, 1185,
    1186, 1187, 1231, 1560, 1561, 1562, 1563, 1700, 2249, 2287, 2950, 2951, 3802, 3807, 3904,
    3905, 3906, 3907, 3908, 3909, 3910, 3911, 3912, 3913, 3926, 3927, 4072, 4073, 4451, 4532,
    4533, 4534, 4535, 4536, 5069,
    1266, 790,
}
INT_OIDS = {20, 21, 23, 26}
FLOAT_OIDS = {700, 701, 1700}


class Failure(Exception):
    pass


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


def read_tsv(path):
    header, rows = None, []
    for line in open(path, encoding="utf-8").read().split("\n"):
        if not line or line.startswith("#"):
            continue
        cells = line.split("\t")
        if header is None:
            header = cells
            continue
        cells += [""] * (len(header) - len(cells))
        rows.append({k: unescape(v) for k, v in zip(header, cells)})
    return header, rows


def load_rows():
    header, rows = read_tsv(TSV)
    assert header == ["step", "name", "sql", "expect"], header
    _, catalog = read_tsv(PG_CATALOG_TSV)
    by_name = {f"{r['client']}/{r['name']}": r["sql"] for r in catalog}

    def resolve(m):
        key = m.group(1)
        if key not in by_name:
            raise KeyError(f"tests/data/pg_catalog.tsv has no row {key}")
        return by_name[key]

    for r in rows:
        r["sql"] = re.sub(r"\{\{pg_catalog:([^}]+)\}\}", resolve, r["sql"])
        r["expect"] = json.loads(r["expect"])
    return rows


# ---- values ------------------------------------------------------------------------------------

def plain(v):
    """A psycopg value as the TSV writes it."""
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, (datetime.datetime, datetime.date, datetime.time, datetime.timedelta)):
        return str(v)
    return v


def from_text(text, oid):
    """A text-format value of the raw protocol as the TSV writes it."""
    if text is None:
        return None
    if oid in INT_OIDS:
        return int(text)
    if oid in FLOAT_OIDS:
        return float(text)
    if oid == 16:
        return text == "t"
    return text


def same(a, b):
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def sort_key(row):
    return json.dumps(row, sort_keys=True, default=str)


# ---- running a row -----------------------------------------------------------------------------
# A result: {"empty": True} for an EmptyQueryResponse, else {"columns", "oids", "rows", "tag"}.

def run_psycopg(conn, sql):
    cur = psycopg.ClientCursor(conn)
    cur.execute(sql)  # no parameters: PQsendQuery, one Query message with the whole string
    results = []
    while True:
        res = cur.pgresult
        if res is not None and res.status == pq.ExecStatus.EMPTY_QUERY:
            results.append({"empty": True})
        elif cur.description is not None:
            results.append({
                "columns": [d.name for d in cur.description],
                "oids": [d.type_code for d in cur.description],
                "rows": [[plain(v) for v in row] for row in cur.fetchall()],
                "tag": cur.statusmessage,
            })
        else:
            results.append({"columns": [], "oids": [], "rows": [], "tag": cur.statusmessage})
        if not cur.nextset():
            break
    cur.close()
    return results


def read_message(sock):
    head = b""
    while len(head) < 5:
        chunk = sock.recv(5 - len(head))
        if not chunk:
            raise Failure("the server closed the connection")
        head += chunk
    kind, size = head[:1], struct.unpack("!I", head[1:])[0]
    body = b""
    while len(body) < size - 4:
        chunk = sock.recv(size - 4 - len(body))
        if not chunk:
            raise Failure("the server closed the connection")
        body += chunk
    return kind, body


def error_text(body):
    fields = dict((f[:1], f[1:].decode("utf-8", "replace")) for f in body.split(b"\0") if f)
    return f"{fields.get(b'C', '?')}: {fields.get(b'M', '')}"


def run_raw(port, user, database, password, params, sql):
    """A connection of its own with exactly these startup parameters, then one Query."""
    sock = socket.create_connection(("127.0.0.1", int(port)), timeout=60)
    try:
        body = struct.pack("!I", 196608)
        for k, v in [("user", user), ("database", database)] + list(params.items()):
            body += k.encode() + b"\0" + v.encode() + b"\0"
        body += b"\0"
        sock.sendall(struct.pack("!I", len(body) + 4) + body)
        while True:
            kind, msg = read_message(sock)
            if kind == b"R":
                code = struct.unpack("!I", msg[:4])[0]
                if code == 3:  # cleartext password, the only method duckstream asks
                    pw = password.encode() + b"\0"
                    sock.sendall(b"p" + struct.pack("!I", len(pw) + 4) + pw)
                elif code != 0:
                    raise Failure(f"authentication request {code}: this client sends cleartext only")
            elif kind == b"E":
                raise Failure("startup refused: " + error_text(msg))
            elif kind == b"Z":
                break
        q = sql.encode() + b"\0"
        sock.sendall(b"Q" + struct.pack("!I", len(q) + 4) + q)
        results, current, error = [], None, None
        while True:
            kind, msg = read_message(sock)
            if kind == b"T":
                n = struct.unpack("!H", msg[:2])[0]
                pos, cols, oids = 2, [], []
                for _ in range(n):
                    end = msg.index(b"\0", pos)
                    cols.append(msg[pos:end].decode())
                    oids.append(struct.unpack("!I", msg[end + 7:end + 11])[0])
                    pos = end + 19
                current = {"columns": cols, "oids": oids, "rows": [], "tag": None}
            elif kind == b"D":
                n, pos, row = struct.unpack("!H", msg[:2])[0], 2, []
                for i in range(n):
                    size = struct.unpack("!i", msg[pos:pos + 4])[0]
                    pos += 4
                    text = None if size < 0 else msg[pos:pos + size].decode()
                    pos += max(size, 0)
                    row.append(from_text(text, current["oids"][i]))
                current["rows"].append(row)
            elif kind == b"C":
                tag = msg.rstrip(b"\0").decode()
                if current is None:
                    current = {"columns": [], "oids": [], "rows": []}
                current["tag"] = tag
                results.append(current)
                current = None
            elif kind == b"I":
                results.append({"empty": True})
            elif kind == b"E":
                error = error_text(msg)
            elif kind == b"Z":
                break
        sock.sendall(b"X" + struct.pack("!I", 4))
        if error:
            raise Failure(error)
        return results
    finally:
        sock.close()


# ---- checking ----------------------------------------------------------------------------------

def check(expect, results):
    problems = []
    for r in results:
        bad = [o for o in r.get("oids", []) if o not in PGX_OIDS]
        if bad:
            problems.append(f"column types {bad} of {r['columns']}: pgx knows no such OID")
        # pgx's path keeps only the results whose tag starts with SELECT
        if r.get("columns") and not (r.get("tag") or "").startswith("SELECT"):
            problems.append(f"a result with columns {r['columns']} has the tag {r.get('tag')!r}, "
                            "which Grafana skips")
    if expect.get("empty"):
        if results != [{"empty": True}]:
            problems.append(f"expected one EmptyQueryResponse, got {results}")
        return problems
    if "results" in expect and len(results) != expect["results"]:
        problems.append(f"expected {expect['results']} results, got {len(results)}")
    if "tags" in expect:
        tags = [r.get("tag") for r in results]
        if tags != expect["tags"]:
            problems.append(f"expected the tags {expect['tags']}, got {tags}")
    if not results or results[-1].get("empty"):
        problems.append(f"no result with rows: {results}")
        return problems
    last = results[-1]
    rows = last["rows"]
    if "rows" in expect and len(rows) != expect["rows"]:
        problems.append(f"expected {expect['rows']} rows, got {len(rows)}")
    if "columns" in expect and last["columns"] != expect["columns"]:
        problems.append(f"expected the columns {expect['columns']}, got {last['columns']}")
    if "first" in expect and (not rows or not same(rows[0], expect["first"])):
        problems.append(f"expected the first row {expect['first']}, got {rows[:1]}")
    if "all" in expect:
        got, want = rows, expect["all"]
        if expect.get("unordered"):
            got, want = sorted(got, key=sort_key), sorted(want, key=sort_key)
        if not same(got, want):
            problems.append(f"expected the rows {expect['all']}, got {rows}")
    return problems


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    port, database = sys.argv[1], sys.argv[2]
    user = sys.argv[3] if len(sys.argv) > 3 else "grafana"
    password = sys.argv[4] if len(sys.argv) > 4 else ""
    rows = load_rows()

    def connect():
        # libpq's StartupMessage: user and database, as pgx sends (no application_name).
        return psycopg.connect(host="127.0.0.1", port=port, dbname=database, user=user,
                               password=password, sslmode="disable", autocommit=True)

    conn = connect()
    failures = []
    for n, row in enumerate(rows, 1):
        label = f"{n} {row['step']} | {row['name']}"
        expect = row["expect"]
        try:
            if "startup" in expect:
                results = run_raw(port, user, database, password, expect["startup"], row["sql"])
            else:
                if conn.closed:
                    conn = connect()
                results = run_psycopg(conn, row["sql"])
            problems = check(expect, results)
        except (psycopg.Error, Failure, OSError) as e:
            sqlstate = getattr(getattr(e, "diag", None), "sqlstate", None)
            problems = [f"{type(e).__name__}{' ' + sqlstate if sqlstate else ''}: {e}".strip()]
        if problems:
            failures.append(label + "\n    " + "\n    ".join(problems)
                            + "\n    sql: " + row["sql"].replace("\n", "\n         "))
    conn.close()
    if failures:
        report = f"{len(failures)} of {len(rows)} rows failed\n" + "\n".join(failures)
        print(report)
        print(report, file=sys.stderr)
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
