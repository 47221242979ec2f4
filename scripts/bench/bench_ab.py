#!/usr/bin/env python3
"""Two gateway binaries side by side, same queries, same client (curl), interleaved runs, so
that a shared, noisy machine moves both alike; prints a markdown table of median seconds and
the ratio. For build changes (DuckDB's assertions on or off, a new dependency...).

    python3 scripts/bench/bench_ab.py --a OLD_BINARY --b NEW_BINARY [--db /tmp/bench/bench.duckdb]
"""
import argparse
import os
import shutil
import statistics
import tempfile

from benchlib import gateway, timed_query as timed

QUERIES = [
    ("10M rows, plain", "SELECT * FROM parcels", False),
    ("10M rows, zstd", "SELECT * FROM parcels", True),
    ("aggregate", "SELECT city, count(*), avg(area), max(updated) FROM parcels GROUP BY city", False),
    ("filter + sort, 100k rows", "SELECT * FROM parcels WHERE population > 5000 ORDER BY area LIMIT 100000", False),
]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--a", required=True)
    p.add_argument("--b", required=True)
    p.add_argument("--db", default="/tmp/bench/bench.duckdb")
    p.add_argument("--repeat", type=int, default=3)
    o = p.parse_args()
    times = {(name, side): [] for name, _, _ in QUERIES for side in "ab"}
    # DuckDB locks its file: the second gateway reads a copy.
    copy = os.path.join(tempfile.mkdtemp(), "bench.duckdb")
    shutil.copyfile(o.db, copy)
    with gateway(o.a, o.db) as (pa, _), gateway(o.b, copy) as (pb, _):
        for name, sql, zstd in QUERIES:
            timed(pa, sql, zstd), timed(pb, sql, zstd)  # warm-up
            for _ in range(o.repeat):
                times[(name, "a")].append(timed(pa, sql, zstd))
                times[(name, "b")].append(timed(pb, sql, zstd))
    shutil.rmtree(os.path.dirname(copy))
    print("| query | a (s) | b (s) | b / a |")
    print("|---|---|---|---|")
    for name, _, _ in QUERIES:
        a = statistics.median(times[(name, "a")])
        b = statistics.median(times[(name, "b")])
        print(f"| {name} | {a:.2f} | {b:.2f} | {b / a:.2f} |")


if __name__ == "__main__":
    main()
