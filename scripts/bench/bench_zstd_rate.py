#!/usr/bin/env python3
"""The 10M-row scan with zstd through each gateway binary, beside DuckDB's own
`COPY … TO '/dev/null' (FORMAT json)`, interleaved round by round so that the machine's drift
moves them all alike; prints each one's median rows/s, its ratio to COPY's, and the bytes on
the wire.

    ~/.cache/duckstream-bench/.venv/bin/python scripts/bench/bench_zstd_rate.py BINARY... [--rounds 5]
"""
import argparse
import os
import statistics
import tempfile
import time

import duckdb

from benchlib import gateway, timed_query

SQL = "SELECT * FROM parcels"


def copy_json(db):
    con = duckdb.connect(db, read_only=True)
    t = time.monotonic()
    con.execute(f"COPY ({SQL}) TO '/dev/null' (FORMAT json)")
    d = time.monotonic() - t
    con.close()
    return d


def scan(binary, db, out):
    with gateway(binary, db) as (port, _):
        return timed_query(port, SQL, zstd=True, out=out)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("bins", nargs="+")
    p.add_argument("--db", default="/tmp/bench/bench.duckdb")
    p.add_argument("--rounds", type=int, default=5)
    o = p.parse_args()
    times = {"copy_json": []}
    wire = {}
    out = os.path.join(tempfile.mkdtemp(), "out.zst")
    for _ in range(o.rounds):
        times["copy_json"].append(copy_json(o.db))
        for b in o.bins:
            times.setdefault(b, []).append(scan(b, o.db, out))
            wire[b] = os.path.getsize(out)
    rows = 10_000_000
    base = rows / statistics.median(times["copy_json"])
    print("| what | seconds (each round) | median rows/s | ratio to COPY json | wire MB |")
    print("|---|---|---|---|---|")
    for k, ts in times.items():
        rate = rows / statistics.median(ts)
        mb = f"{wire[k] / 1e6:.1f}" if k in wire else "–"
        print(f"| {k} | {' '.join(f'{t:.2f}' for t in ts)} | {rate / 1e6:.2f} M | {rate / base:.2f}× | {mb} |")


if __name__ == "__main__":
    main()
