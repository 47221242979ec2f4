#!/usr/bin/env python3
"""Where Arrow IPC's bytes go under zstd, column by column, beside NDJSON and Parquet.

Issue 13 aims at Arrow + zstd bytes <= 0.6x NDJSON + zstd bytes on the 10M-row scan. This
script shows what each column costs as Arrow IPC (batches of 65,536 rows, zstd level 1, as
the gateway sends it), what dictionary-encoded strings would cost, what the same rows cost as
the gateway's NDJSON (a dump of `GET /v1/bench/query?sql=SELECT * FROM parcels`, if given),
and what DuckDB's own Parquet writer with zstd makes of the whole table.

    ~/.cache/duckstream-bench/.venv/bin/python scripts/bench/arrow_bytes.py \
        --db /tmp/bench/bench.duckdb --rows 2000000 --ndjson /tmp/scan.ndjson
"""
import argparse
import io
import os
import tempfile

import duckdb
import pyarrow as pa
import pyarrow.ipc as ipc
import zstandard


def ipc_zstd(table):
    """(raw, zstd level 1) bytes of `table` as one IPC stream of 65,536-row batches."""
    buf = io.BytesIO()
    w = ipc.new_stream(buf, table.schema)
    for batch in table.to_batches(65536):
        w.write_batch(batch)
    w.close()
    raw = buf.getvalue()
    return len(raw), len(zstandard.ZstdCompressor(level=1).compress(raw))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--db", default="/tmp/bench/bench.duckdb")
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--ndjson", help="the gateway's NDJSON of the whole scan (its first rows are used)")
    a = p.parse_args()
    con = duckdb.connect(a.db, read_only=True)
    t = con.sql(f"SELECT * FROM parcels LIMIT {a.rows}").to_arrow_table()
    n = a.rows
    print("| bytes per row | Arrow IPC | Arrow IPC + zstd 1 |")
    print("|---|---|---|")
    for name in t.column_names:
        raw, z = ipc_zstd(t.select([name]))
        print(f"| `{name}` | {raw / n:.2f} | {z / n:.2f} |")
        if pa.types.is_string(t.schema.field(name).type):
            raw, z = ipc_zstd(pa.table({name: t[name].dictionary_encode()}))
            print(f"| `{name}`, dictionary-encoded | {raw / n:.2f} | {z / n:.2f} |")
    raw, z = ipc_zstd(t)
    print(f"| **all columns** | {raw / n:.2f} | {z / n:.2f} |")
    if a.ndjson:
        # The NDJSON of the first `rows` rows: its lines hold 1,000 rows each.
        with open(a.ndjson, "rb") as f:
            lines = [f.readline() for _ in range(1 + n // 1000)]
        nd = b"".join(lines)
        z = len(zstandard.ZstdCompressor(level=1).compress(nd))
        print(f"| NDJSON (the gateway's lines) | {len(nd) / n:.2f} | {z / n:.2f} |")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "p.parquet")
        con.sql(f"COPY (SELECT * FROM parcels) TO '{path}' (FORMAT parquet, COMPRESSION zstd)")
        total = con.sql("SELECT count(*) FROM parcels").fetchone()[0]
        print(f"| Parquet, DuckDB's writer, zstd (whole table) | | {os.path.getsize(path) / total:.2f} |")


if __name__ == "__main__":
    main()
