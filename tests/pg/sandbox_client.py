"""The sandbox over the PostgreSQL endpoint (tests/api/pg.rs): every case of
tests/data/sandbox.tsv sent as psql would send it (the simple query protocol) is refused, with
PostgreSQL's SQLSTATE for the gateway's code; then the PostgreSQL-only ways out: COPY FROM STDIN,
COPY to a server file, LISTEN, pg_read_file, dblink, set_config, and startup options that try to
turn external access back on. Afterwards the table is as it was and no file was written.
Usage: sandbox_client.py PORT DBNAME. The tenant holds `people` (3 rows).
Prints `ok` when every check held, else each failure and exits 1."""

import os
import sys

import psycopg

HERE = os.path.dirname(os.path.abspath(__file__))
TSV = os.path.join(HERE, "..", "data", "sandbox.tsv")
port, db = sys.argv[1], sys.argv[2]
dsn = f"host=127.0.0.1 port={port} dbname={db} user=tester sslmode=disable"

# Over this endpoint a case is refused (any SQLSTATE: PostgreSQL's words differ from HTTP's codes
# where the endpoint answers itself, e.g. SET of a setting it does not have is 42704), or it is
# answered by the gateway's own PostgreSQL catalog, which holds no server state:
# `current_setting`, `pg_settings` and `set_config` read or "write" a fixed list, never DuckDB's
# settings; several statements in one string are PostgreSQL's simple protocol (each is checked).
# Such an answer must show no path. BEGIN is PostgreSQL's own (a read-only transaction).
ANSWERED_LOCALLY = {"BEGIN TRANSACTION"}
EVIL_FILES = ["/tmp/duckstream-evil.csv", "/tmp/duckstream-evil.parquet", "/tmp/duckstream-pg-evil.csv"]

PG_ONLY = [
    # (sql, SQLSTATEs)
    ("COPY people FROM STDIN", {"0A000", "42501"}),
    ("COPY people TO '/tmp/duckstream-pg-evil.csv'", {"0A000", "42501"}),
    ("COPY (SELECT * FROM people) TO '/tmp/duckstream-pg-evil.csv' (FORMAT csv)", {"0A000", "42501"}),
    ("COPY (SELECT * FROM people) TO PROGRAM 'touch /tmp/duckstream-pg-evil.csv'", {"0A000", "42501", "42601"}),
    ("LISTEN evil", {"0A000"}),
    ("NOTIFY evil", {"0A000", "42501", "42601"}),
    ("SELECT pg_read_file('/etc/passwd')", {"42501", "42883"}),
    ("SELECT pg_catalog.pg_read_file('/etc/passwd')", {"42501", "42883"}),
    ("SELECT * FROM dblink('host=127.0.0.1', 'select 1') AS t(x int)", {"42501", "42601", "42883", "42P01"}),
    ("SELECT * FROM pg_ls_dir('/')", {"42501", "42601", "42883", "42P01"}),
    ("SET enable_external_access = true", {"42704"}),
    ("SELECT * FROM read_csv('/etc/passwd')", {"42501"}),
    ("SELECT * FROM ds_pg.pg_class(NULL)", {"42501"}),
]


def cases():
    for line in open(TSV, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line or line.startswith("#"):
            continue
        code, sql, *_ = line.split("\t") + [""]
        yield code, sql


def outcome(conn, sql):
    """`(SQLSTATE, None)` if the statement was refused, `(None, rows)` if it ran."""
    try:
        cur = conn.cursor()
        cur.execute(sql)
        rows = []
        while True:
            if cur.description:
                rows += cur.fetchall()
            if not cur.nextset():
                return None, rows
    except psycopg.Error as e:
        return e.sqlstate or type(e).__name__, None


def refused(conn, sql):
    return outcome(conn, sql)[0]


def shows_a_path(rows):
    return any(isinstance(v, str) and ("/tmp" in v or "/var" in v or "/home" in v or "/root" in v)
               for row in rows for v in row)


def main():
    failures = []
    with psycopg.connect(dsn, autocommit=True, cursor_factory=psycopg.ClientCursor) as conn:
        for _code, sql in cases():
            if sql.strip() in ANSWERED_LOCALLY:
                continue
            state, rows = outcome(conn, sql)
            if state is None and shows_a_path(rows):
                failures.append(f"{sql!r}: ran and shows a path: {rows}")
        for sql, wanted in PG_ONLY:
            state = refused(conn, sql)
            if state not in wanted:
                failures.append(f"{sql!r}: {state or 'ran'}, wanted one of {sorted(wanted)}")
        # set_config answers as PostgreSQL would and changes nothing.
        conn.cursor().execute("SELECT set_config('enable_external_access', 'true', false)")
        state = refused(conn, "SELECT * FROM read_csv('/etc/passwd')")
        if state != "42501":
            failures.append(f"read_csv after set_config: {state or 'ran'}")
    # Startup options are settings of the session, never DuckDB's.
    for options in ["-c enable_external_access=true", "-c lock_configuration=false"]:
        try:
            with psycopg.connect(dsn, options=options) as conn:
                failures.append(f"startup options {options!r}: logged in")
        except psycopg.OperationalError as e:
            if "42704" not in str(e) and "unrecognized configuration parameter" not in str(e):
                failures.append(f"startup options {options!r}: {e}")
    with psycopg.connect(dsn, autocommit=True) as conn:
        count = conn.execute("SELECT count(*) FROM people").fetchone()[0]
        if count != 3:
            failures.append(f"people has {count} rows")
    failures += [f"{f} exists" for f in EVIL_FILES if os.path.exists(f)]
    for f in failures:
        print("FAIL", f)
    print("ok" if not failures else f"{len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
