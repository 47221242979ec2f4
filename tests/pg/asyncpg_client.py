"""asyncpg against duckstream's PostgreSQL endpoint (tests/api/pg.rs): asyncpg prepares every
statement and reads its types from `Describe`, then binds parameters and reads results in
binary. (Arrays other than text[] need asyncpg's type introspection, whose own lookup
reads an int4[] column it has no codec for before the lookup: docs/PROTOCOL.md.) Typed values,
parameters of several types, fetchrow/fetchval, a prepared statement reused, a cursor in a
transaction, a cancel (a timeout) that leaves the connection usable.
Usage: asyncpg_client.py PORT DBNAME [PASSWORD]. Prints `ok` when every check held."""

import asyncio
import datetime
import decimal
import json
import sys
import time
import uuid

import asyncpg

port, db = int(sys.argv[1]), sys.argv[2]
password = sys.argv[3] if len(sys.argv) > 3 else ""

TYPES = """SELECT 1::INTEGER AS i, 2::BIGINT AS b, 3::SMALLINT AS s, 1.5::DOUBLE AS d,
    'x'::VARCHAR AS t, true AS ok, DATE '2024-01-02' AS day,
    TIMESTAMP '2024-01-02 03:04:05.25' AS ts, TIMESTAMPTZ '2024-01-02 03:04:05+00' AS tz,
    12345.678::DECIMAL(10,3) AS n, UUID '00000000-0000-0000-0000-000000000001' AS u,
    'ab'::BLOB AS bytes, INTERVAL '1 day 3 hours' AS span, ['a', 'b c', NULL] AS texts, '{"a": [1, 2]}'::JSON AS j, NULL::INTEGER AS missing"""
EXPECTED = {
    "i": 1, "b": 2, "s": 3, "d": 1.5, "t": "x", "ok": True, "day": datetime.date(2024, 1, 2),
    "ts": datetime.datetime(2024, 1, 2, 3, 4, 5, 250000),
    "tz": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
    "n": decimal.Decimal("12345.678"), "u": uuid.UUID(int=1), "bytes": b"ab",
    "span": datetime.timedelta(days=1, hours=3), "texts": ["a", "b c", None],
    "missing": None,
}


async def types(conn):
    row = await conn.fetchrow(TYPES)
    got = dict(row)
    assert json.loads(got.pop("j")) == {"a": [1, 2]}, row
    assert got == EXPECTED, got


async def parameters(conn):
    row = await conn.fetchrow(
        "SELECT $1::INTEGER + 1 AS n, $2 || '!' AS s, $3::DATE + 1 AS day, "
        "len($4::VARCHAR[]) AS total, $5::DOUBLE * 2 AS d, $6::BIGINT AS big, "
        "$7::BOOLEAN AS yes, $8::UUID AS u, $9::TIMESTAMP AS ts, $10::DECIMAL(10,2) AS dec",
        41, "hi", datetime.date(2024, 2, 28), ["a", "b", None], 1.25, 9007199254740993, True,
        uuid.UUID(int=7), datetime.datetime(2024, 1, 2, 3, 4, 5), decimal.Decimal("1.50"),
    )
    assert tuple(row) == (
        42, "hi!", datetime.date(2024, 2, 29), 3, 2.5, 9007199254740993, True,
        uuid.UUID(int=7), datetime.datetime(2024, 1, 2, 3, 4, 5), decimal.Decimal("1.50"),
    ), row
    rows = await conn.fetch(
        "SELECT id, name FROM people WHERE id <= $1 AND name <> $2 ORDER BY id", 2, "Grace"
    )
    assert [tuple(r) for r in rows] == [(1, "Ada")], rows
    # A parameter DuckDB cannot type is text; an enum column reads as its label.
    assert await conn.fetchval("SELECT $1 AS v", "free") == "free"
    assert await conn.fetchval("SELECT feeling FROM people WHERE id = $1", 1) == "happy"
    assert await conn.fetchval("SELECT $1 || '!' AS v", "free") == "free!"
    # Typed by its place (an INTEGER column): bound as an INTEGER, the column stays one.
    assert await conn.fetchval("SELECT id * 2 FROM people WHERE id = $1", 2) == 4
    texts = await conn.fetchval("SELECT $1::VARCHAR[] AS t", ["a,b", 'say "hi"', None])
    assert texts == ["a,b", 'say "hi"', None], texts



async def prepared(conn):
    stmt = await conn.prepare("SELECT name FROM people WHERE id = $1")
    assert [a.name for a in stmt.get_attributes()] == ["name"], stmt.get_attributes()
    assert [t.name for t in stmt.get_parameters()] == ["int4"], stmt.get_parameters()
    assert await stmt.fetchval(1) == "Ada"
    assert await stmt.fetchval(2) == "Grace"
    assert await stmt.fetchval(3) is None
    assert await stmt.fetchrow(4) is None
    assert await conn.fetchval("SELECT count(*) FROM people") == 3


async def cursor(conn):
    async with conn.transaction():
        total, seen = 0, 0
        async for r in conn.cursor("SELECT range AS n FROM range($1::BIGINT)", 5000, prefetch=700):
            total += r["n"]
            seen += 1
        assert (seen, total) == (5000, sum(range(5000))), (seen, total)
        cur = await conn.cursor("SELECT range AS n FROM range(100)")
        first = await cur.fetch(10)
        assert [r["n"] for r in first] == list(range(10)), first
        assert (await cur.fetchrow())["n"] == 10


async def cancel(conn):
    started = time.monotonic()
    try:
        await asyncio.wait_for(conn.fetch("SELECT count(*) FROM range(10000000000)"), 0.5)
        raise AssertionError("the long query was not cancelled")
    except asyncio.TimeoutError:
        pass
    assert time.monotonic() - started < 20
    assert await conn.fetchval("SELECT 1") == 1


async def main():
    conn = await asyncpg.connect(
        host="127.0.0.1", port=port, database=db, user="tester", password=password, ssl=False
    )
    try:
        await types(conn)
        await parameters(conn)
        await prepared(conn)
        await cursor(conn)
        await cancel(conn)
    finally:
        await conn.close()
    print("ok")


asyncio.run(main())
