"""psycopg 3 against duckstream's PostgreSQL endpoint (tests/api/pg.rs): text and binary
results, parameters, COPY TO STDOUT, a server-side cursor, a cancel that leaves the connection
usable.
Usage: psycopg_client.py PORT DBNAME [PASSWORD]. Prints `ok` when every check held."""

import datetime
import decimal
import sys
import threading
import time
import uuid

import psycopg

port, db = sys.argv[1], sys.argv[2]
password = sys.argv[3] if len(sys.argv) > 3 else ""
dsn = f"host=127.0.0.1 port={port} dbname={db} user=tester password={password} sslmode=disable"

TYPES = """SELECT 1::INTEGER, 2::BIGINT, 1.5::DOUBLE, 'x'::VARCHAR, true, DATE '2024-01-02',
    TIMESTAMP '2024-01-02 03:04:05.25', 12345.678::DECIMAL(10,3), [1, 2, NULL],
    UUID '00000000-0000-0000-0000-000000000001', INTERVAL '1 day 3 hours', 'ab'::BLOB,
    {'a': 1}, 123::HUGEINT, TIMESTAMPTZ '2024-01-02 03:04:05+00', NULL::INTEGER"""
EXPECTED = (
    1, 2, 1.5, "x", True, datetime.date(2024, 1, 2),
    datetime.datetime(2024, 1, 2, 3, 4, 5, 250000), decimal.Decimal("12345.678"), [1, 2, None],
    uuid.UUID(int=1), datetime.timedelta(days=1, hours=3), b"ab", {"a": 1},
    decimal.Decimal(123), datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
    None,
)

with psycopg.connect(dsn, autocommit=True) as conn:
    for binary in (False, True):
        row = conn.cursor(binary=binary).execute(TYPES).fetchone()
        assert row == EXPECTED, (binary, row)
    rows = conn.execute(
        "SELECT id, name FROM people WHERE id <= %s AND name <> %s ORDER BY id", (2, "Grace")
    ).fetchall()
    assert rows == [(1, "Ada")], rows
    day = conn.execute("SELECT %s::DATE + 1", (datetime.date(2024, 2, 28),)).fetchone()[0]
    assert day == datetime.date(2024, 2, 29), day
    # Many rows, fetched as they stream.
    total = sum(r[0] for r in conn.cursor().stream("SELECT range FROM range(100000)"))
    assert total == sum(range(100000)), total

# COPY … TO STDOUT, text and binary.
with psycopg.connect(dsn, autocommit=True) as conn:
    cur = conn.cursor()
    with cur.copy("COPY (SELECT id, name FROM people ORDER BY id) TO STDOUT") as copy:
        rows = list(copy.rows())
    assert rows == [("1", "Ada"), ("2", "Grace"), ("3", None)], rows
    with cur.copy("COPY (SELECT id, name FROM people ORDER BY id) TO STDOUT (FORMAT BINARY)") as copy:
        copy.set_types(["int4", "text"])
        rows = list(copy.rows())
    assert rows == [(1, "Ada"), (2, "Grace"), (3, None)], rows

# A server-side cursor, fetched in batches inside a transaction (psycopg's default).
with psycopg.connect(dsn) as conn:
    with conn.cursor(name="big") as cur:
        cur.execute("SELECT range AS n FROM range(25000)")
        first = cur.fetchmany(1000)
        rest = cur.fetchall()
        assert [r[0] for r in first] == list(range(1000)), first[:3]
        assert len(rest) == 24000 and rest[-1][0] == 24999, len(rest)
    # Binary: the FETCH asks the formats (DECLARE does not), dates as dates.
    with conn.cursor(name="typed", binary=True) as cur:
        cur.execute("SELECT range AS n, DATE '2024-01-01' + range::INTEGER AS d FROM range(3000)")
        rows = cur.fetchmany(1000) + cur.fetchall()
        assert rows[0] == (0, datetime.date(2024, 1, 1)), rows[0]
        assert rows[-1] == (2999, datetime.date(2024, 1, 1) + datetime.timedelta(days=2999)), rows[-1]

# A cancel interrupts DuckDB; the connection answers the next query.
with psycopg.connect(dsn, autocommit=True) as conn:
    threading.Timer(0.5, conn.cancel_safe).start()
    started = time.monotonic()
    try:
        conn.execute("SELECT count(*) FROM range(1000000000000)").fetchone()
        raise AssertionError("the long query was not cancelled")
    except psycopg.errors.QueryCanceled as e:
        assert "canceling statement due to user request" in str(e), e
    assert time.monotonic() - started < 20
    assert conn.execute("SELECT 42").fetchone() == (42,)

print("ok")
