"""Real readers against a running duckstream: pyarrow, pandas and DuckDB itself read the
Arrow, CSV and jsonl formats over HTTP, value for value against DuckDB's own answers and the
gateway's NDJSON. Run by tests/api/formats.rs (which starts the server):

    python formats.py BASE_URL TENANT EXTENSION_REPOSITORY

Prints one JSON object (the checks that ran) and exits 0; any failed check raises.
"""

import csv
import io
import json
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc
import zstandard

BASE, TENANT, REPOSITORY = sys.argv[1:4]
CHECKS = []


def check(name):
    def wrap(fn):
        fn()
        CHECKS.append(name)
        return fn

    return wrap


def url(sql, fmt=None, **extra):
    params = {"sql": sql, **extra}
    if fmt:
        params["format"] = fmt
    return f"{BASE}/v1/{TENANT}/query?" + urllib.parse.urlencode(params)


def get(sql, fmt=None, headers=None, **extra):
    req = urllib.request.Request(url(sql, fmt, **extra), headers=headers or {})
    with urllib.request.urlopen(req) as r:
        return r.headers, r.read()


def local():
    """DuckDB in this process, with spatial: the reference for every value."""
    con = duckdb.connect()
    con.sql(f"SET extension_directory = '{tempfile.mkdtemp()}'")
    con.sql(f"INSTALL spatial FROM '{REPOSITORY}'; LOAD spatial")
    con.sql(f"INSTALL httpfs FROM '{REPOSITORY}'; LOAD httpfs")
    con.sql("SET TimeZone = 'UTC'")
    return con


CON = local()


def ndjson(sql, numbers_as_text=False, **extra):
    """The NDJSON protocol's column names and rows (numbers as their text, if asked)."""
    _, body = get(sql, **extra)
    keep = {"parse_float": str, "parse_int": str} if numbers_as_text else {}
    lines = [json.loads(l, **keep) for l in body.decode().splitlines()]
    assert lines[0]["type"] == "metadata" and lines[-1]["type"] == "end", lines[-1]
    names = [c["name"] for c in lines[0]["columns"]]
    rows = [r for l in lines if l["type"] == "data" for r in l["rows"]]
    return names, rows


# Every type with an Arrow form, one column each (GEOMETRY with and without a CRS).
TYPED = [
    "true AS b",
    "NULL::INTEGER AS n",
    "(-128)::TINYINT AS i8",
    "32767::SMALLINT AS i16",
    "(-2147483648)::INTEGER AS i32",
    "9223372036854775807::BIGINT AS i64",
    "255::UTINYINT AS u8",
    "18446744073709551615::UBIGINT AS u64",
    "'170141183460469231731687303715884105727'::HUGEINT AS i128",
    "0.1::FLOAT AS f32",
    "1e300::DOUBLE AS f64",
    "'NaN'::DOUBLE AS nan",
    "123.45::DECIMAL(5,2) AS d5",
    "'12345678901234.5678'::DECIMAL(18,4) AS d18",
    "'1.5'::DECIMAL(38,10) AS d38",
    "'héllo, \"world\"\n' AS s",
    "'' AS empty",
    "'\\xAA\\xBB'::BLOB AS blob",
    "DATE '2024-02-29' AS date",
    "TIME '12:34:56.789' AS time",
    "TIMESTAMP '2024-01-02 03:04:05.123456' AS ts",
    "TIMESTAMP_S '2024-01-02 03:04:05' AS ts_s",
    "TIMESTAMP_MS '2024-01-02 03:04:05.120' AS ts_ms",
    "TIMESTAMP_NS '2024-01-02 03:04:05.123456789' AS ts_ns",
    "TIMESTAMPTZ '2024-01-02 03:04:05+02' AS tstz",
    "INTERVAL '1 year 2 months 3 days 04:05:06.789' AS iv",
    "'550e8400-e29b-41d4-a716-446655440000'::UUID AS uuid",
    "'b'::ENUM('a', 'b', 'c') AS enum",
    "[1, NULL, 3] AS list",
    "[[1], []] AS nested",
    "[1, 2]::INTEGER[2] AS array",
    "{'x': 1, 'y': 'z'} AS struct",
    "MAP {'k': 1, 'l': NULL} AS map",
    "union_value(str := 'x')::UNION(num INTEGER, str VARCHAR) AS uni",
    "'POLYGON((0 0, 1 0, 1 1, 0 0))'::GEOMETRY AS geom",
    "ST_Point(4.9, 52.4)::GEOMETRY('OGC:CRS84') AS geom_crs",
]
TYPED_SQL = "SELECT " + ", ".join(TYPED) + " FROM range(3) t(i)"


def arrow_over_http(sql, headers=None, **extra):
    """An Arrow result read by pyarrow straight from the HTTP response."""
    req = urllib.request.Request(url(sql, "arrow", **extra), headers=headers or {})
    with urllib.request.urlopen(req) as r:
        assert r.headers["Content-Type"] == "application/vnd.apache.arrow.stream"
        return ipc.open_stream(r).read_all()


@check("arrow: every type equals DuckDB's own Arrow export, schema and metadata included")
def _():
    got = arrow_over_http(TYPED_SQL)
    want = CON.sql(TYPED_SQL).arrow()
    want = want.read_all() if hasattr(want, "read_all") else want
    assert got.schema.equals(want.schema, check_metadata=True), (got.schema, want.schema)
    for name in want.column_names:
        a, b = got.column(name), want.column(name)
        if name == "nan":  # NaN equals nothing, itself included
            assert all(v != v for v in a.to_pylist()) and a.type == b.type
            continue
        assert a.equals(b), (name, a.to_pylist(), b.to_pylist())
    field = got.schema.field("geom_crs")
    assert field.metadata[b"ARROW:extension:name"] == b"geoarrow.wkb"
    assert b"crs" in field.metadata[b"ARROW:extension:metadata"]


@check("arrow: scalar values equal the NDJSON protocol's")
def _():
    sql = "SELECT i, i * 0.5 AS half, 'r' || i AS label, i % 2 = 0 AS even FROM range(5000) t(i)"
    table = arrow_over_http(sql)
    names, rows = ndjson(sql)
    assert table.column_names == names
    assert [list(r.values()) for r in table.to_pylist()] == rows


def arrow_zstd(sql):
    """An Arrow result read by pyarrow through a streaming zstd decoder."""
    req = urllib.request.Request(url(sql, "arrow"), headers={"Accept-Encoding": "zstd"})
    with urllib.request.urlopen(req) as r:
        assert r.headers["Content-Encoding"] == "zstd"
        return ipc.open_stream(zstandard.ZstdDecompressor().stream_reader(r)).read_all()


@check("arrow: a big scan arrives in bounded batches, every row once")
def _():
    sql = "SELECT i, i::VARCHAR AS s FROM range(1000000) t(i)"
    req = urllib.request.Request(url(sql, "arrow"))
    with urllib.request.urlopen(req) as r:
        reader = ipc.open_stream(r)
        sizes = [b.num_rows for b in reader]
    assert sum(sizes) == 1_000_000, sum(sizes)
    assert max(sizes) <= 65_536, max(sizes)
    assert sizes[0] <= 2_048, sizes[:4]  # first data at DuckDB's first chunk
    assert len(sizes) >= 1_000_000 // 65_536


@check("arrow: zstd over the whole stream, and Accept picks the format")
def _():
    req = urllib.request.Request(
        f"{BASE}/v1/{TENANT}/query",
        data=json.dumps({"sql": TYPED_SQL}).encode(),
        headers={
            "Content-Type": "application/json",
            "Accept": "application/vnd.apache.arrow.stream",
            "Accept-Encoding": "zstd",
        },
    )
    with urllib.request.urlopen(req) as r:
        assert r.headers["Content-Encoding"] == "zstd"
        assert r.headers["Content-Type"] == "application/vnd.apache.arrow.stream"
        plain = zstandard.ZstdDecompressor().stream_reader(r).read()
    got = ipc.open_stream(plain).read_all()
    assert got.drop_columns(["nan"]).equals(arrow_over_http(TYPED_SQL).drop_columns(["nan"]))


@check("arrow: an empty result is its schema")
def _():
    sql = TYPED_SQL + " WHERE false"
    got = arrow_over_http(sql)
    assert got.num_rows == 0
    want = CON.sql(sql).arrow()
    want = want.read_all() if hasattr(want, "read_all") else want
    assert got.schema.equals(want.schema, check_metadata=True)


# Values with every CSV hazard: delimiters, quotes, newlines, empty strings and NULLs.
PLAIN_SQL = """
SELECT i AS id,
       i * 1.25 AS amount,
       CASE i % 4 WHEN 0 THEN 'plain' WHEN 1 THEN 'a, "quoted"' WHEN 2 THEN 'two
lines' ELSE '' END AS text,
       CASE WHEN i % 3 = 0 THEN NULL ELSE i END AS maybe,
       DATE '2024-01-01' + i::INTEGER AS day,
       TIMESTAMP '2024-01-01 00:00:00' + INTERVAL (i) MINUTE AS at,
       i % 2 = 0 AS even
FROM range(2000) t(i) ORDER BY i
"""


@check("csv: pandas reads the protocol's values")
def _():
    headers, _ = get("SELECT 1", "csv")
    assert headers["Content-Type"].startswith("text/csv"), headers["Content-Type"]
    frame = pd.read_csv(url(PLAIN_SQL, "csv"), dtype=str, keep_default_na=False)
    names, rows = ndjson(PLAIN_SQL, numbers_as_text=True)
    assert list(frame.columns) == names
    text = lambda v: "" if v is None else (str(v).lower() if isinstance(v, bool) else str(v))
    want = [[text(v) for v in r] for r in rows]
    assert frame.values.tolist() == want, (frame.values.tolist()[:4], want[:4])


@check("csv: DuckDB's read_csv over HTTP reads back DuckDB's own values")
def _():
    got = CON.sql(f"SELECT * FROM read_csv('{url(PLAIN_SQL, 'csv')}')").fetchall()
    want = CON.sql(PLAIN_SQL).fetchall()
    # CSV has no NULL distinct from an empty field: DuckDB reads '' back as NULL.
    want = [tuple(None if v == "" else v for v in r) for r in want]
    assert got == want, (got[:4], want[:4])


@check("csv: an empty result is its header row")
def _():
    _, body = get(PLAIN_SQL.replace("ORDER BY i", "LIMIT 0"), "csv")
    assert body == b"id,amount,text,maybe,day,at,even\n", body
    frame = pd.read_csv(io.BytesIO(body))
    assert frame.empty and list(frame.columns)[0] == "id"


@check("csv: GEOMETRY as WKT, nested values as their JSON text")
def _():
    sql = "SELECT 'POINT (1 2)'::GEOMETRY AS g, [1, 2] AS l, {'a': 'x'} AS s"
    _, body = get(sql, "csv", geometry="wkt")
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert rows == [["g", "l", "s"], ["POINT (1 2)", "[1,2]", '{"a":"x"}']], rows


@check("jsonl: pandas and json read one object per row, the protocol's values")
def _():
    headers, body = get(TYPED_SQL, "jsonl")
    assert headers["Content-Type"].startswith("application/jsonl"), headers["Content-Type"]
    names, rows = ndjson(TYPED_SQL)
    objects = [json.loads(l) for l in body.decode().splitlines()]
    assert objects == [dict(zip(names, r)) for r in rows]
    assert objects[0]["geom"] == {
        "type": "Polygon",
        "coordinates": [[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]],
    }
    # pandas (ujson) refuses integers past 64 bits: the plain table for it.
    frame = pd.read_json(url(PLAIN_SQL, "jsonl"), lines=True, dtype=False, convert_dates=False)
    frame = frame.astype(object).where(frame.notna(), None)
    names, rows = ndjson(PLAIN_SQL)
    assert list(frame.columns) == names
    assert frame.values.tolist() == rows, (frame.values.tolist()[:4], rows[:4])


@check("jsonl: DuckDB's read_json over HTTP reads back DuckDB's own values")
def _():
    got = CON.sql(f"SELECT * FROM read_json('{url(PLAIN_SQL, 'jsonl')}')").fetchall()
    want = CON.sql(PLAIN_SQL).fetchall()
    assert got == want, (got[:4], want[:4])


@check("jsonl: an empty result is an empty body")
def _():
    _, body = get("SELECT 1 AS x WHERE false", "jsonl")
    assert body == b""


# Fails after the first rows have gone out (a streaming scan, no ORDER BY: DuckDB meets the
# bad row long after the first batches were sent).
FAILING = (
    "SELECT i, repeat('x', 100) AS pad, CASE WHEN i = 1500000 THEN error('boom') ELSE i END AS v "
    "FROM range(2000000) t(i)"
)


def started(sql, fmt):
    """The failing query's response began as a success: the failure comes mid-stream."""
    with urllib.request.urlopen(url(sql, fmt)) as r:
        assert r.status == 200
        assert len(r.read(1)) == 1


def raises(fn, what):
    try:
        fn()
    except Exception as e:  # the reader's own error, whatever its class
        assert not isinstance(e, urllib.error.HTTPError), e  # a status: not mid-stream
        return f"{type(e).__name__}: {e}"[:200]
    raise AssertionError(f"{what} read a failed result as complete")


@check("errors mid-stream: every reader fails, none sees a complete shorter result")
def _():
    for fmt in ("arrow", "csv", "jsonl"):
        started(FAILING, fmt)
    seen = {}
    seen["pyarrow"] = raises(lambda: arrow_over_http(FAILING), "pyarrow")
    seen["pyarrow+zstd"] = raises(lambda: arrow_zstd(FAILING), "pyarrow through zstd")
    seen["pandas csv"] = raises(lambda: pd.read_csv(url(FAILING, "csv")), "pandas read_csv")
    seen["pandas jsonl"] = raises(
        lambda: pd.read_json(url(FAILING, "jsonl"), lines=True), "pandas read_json"
    )
    seen["duckdb read_csv"] = raises(
        lambda: CON.sql(f"SELECT count(*) FROM read_csv('{url(FAILING, 'csv')}')").fetchall(),
        "DuckDB read_csv",
    )
    seen["duckdb read_json"] = raises(
        lambda: CON.sql(f"SELECT count(*) FROM read_json('{url(FAILING, 'jsonl')}')").fetchall(),
        "DuckDB read_json",
    )
    CHECKS.append(seen)


print(json.dumps({"checks": CHECKS}))
