#!/usr/bin/env python3
"""GEOMETRY streaming beside DuckDB's own GeoJSON writer, side by side, interleaved runs.

duckstream streams `SELECT geom FROM t` (GeoJSON written in Rust from the WKB) over HTTP to
curl; DuckDB alone runs `COPY (SELECT ST_AsGeoJSON(geom) FROM t) TO '/dev/null'` in-process
(the spatial extension's writer, no network, no framing). Tables: 10M points and 1M polygons
(33-vertex buffers) from the benchmark database, built once into a copy.

    python3 scripts/bench/bench_geo.py --bin target/release/duckstream --repeat 3 \\
        --ext /var/tmp/duckstream-tools/extensions
"""
import argparse
import os
import shutil
import statistics
import subprocess
import time

import duckdb  # the harness venv's duckdb 1.5.5

from benchlib import DEFAULT_BIN, gateway

SPATIAL = "v1.5.5/linux_amd64/spatial.duckdb_extension"


def build(src, dst, ext):
    if os.path.exists(dst):
        return
    c = duckdb.connect(dst + ".part")
    c.execute(f"LOAD '{os.path.join(ext, SPATIAL)}'")
    c.execute(f"ATTACH '{src}' AS src (READ_ONLY)")
    c.execute("CREATE TABLE points AS SELECT ST_Point(lon, lat) AS geom FROM src.parcels")
    c.execute("CREATE TABLE polygons AS SELECT ST_Buffer(ST_Point(lon, lat), 0.01, 8) AS geom "
              "FROM src.parcels LIMIT 1000000")
    c.close()
    os.replace(dst + ".part", dst)


def curl(port, sql, zstd=False):
    args = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
            f"http://127.0.0.1:{port}/v1/bench/query", "--data-binary", '{"sql": "%s"}' % sql]
    if zstd:
        args[1:1] = ["-H", "Accept-Encoding: zstd"]
    t = time.perf_counter()
    out = subprocess.run(args, check=True, capture_output=True, text=True)
    assert out.stdout == "200", out
    return time.perf_counter() - t


def copy(db, ext, table):
    c = duckdb.connect(db, read_only=True)
    c.execute(f"LOAD '{os.path.join(ext, SPATIAL)}'")
    t = time.perf_counter()
    c.execute(f"COPY (SELECT ST_AsGeoJSON(geom) FROM {table}) TO '/dev/null' (FORMAT csv)")
    dt = time.perf_counter() - t
    c.close()
    return dt


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default=DEFAULT_BIN)
    p.add_argument("--src", default="/tmp/bench/bench.duckdb")
    p.add_argument("--db", default="/tmp/bench/geo.duckdb")
    p.add_argument("--ext", default="/var/tmp/duckstream-tools/extensions")
    p.add_argument("--repeat", type=int, default=3)
    o = p.parse_args()
    build(o.src, o.db, o.ext)
    # The gateway holds its file's lock: DuckDB alone reads a copy.
    alone = o.db.replace(".duckdb", "-alone.duckdb")
    if not os.path.exists(alone):
        shutil.copyfile(o.db, alone)
    rows = {"points": 10_000_000, "polygons": 1_000_000}
    times = {}
    with gateway(o.bin, o.db, extra=["--extension-repository", o.ext]) as (port, _):
        for table in rows:
            sql = f"SELECT geom FROM {table}"
            curl(port, sql)  # warm-up
            for _ in range(o.repeat):
                times.setdefault((table, "duckstream"), []).append(curl(port, sql))
                times.setdefault((table, "duckstream zstd"), []).append(curl(port, sql, True))
                times.setdefault((table, "duckdb"), []).append(copy(alone, o.ext, table))
    print("| rows | DuckDB `COPY (SELECT ST_AsGeoJSON(geom)) TO '/dev/null'` | duckstream GeoJSON | ratio | duckstream + zstd | ratio |")
    print("|---|---|---|---|---|---|")
    for table, n in rows.items():
        d = statistics.median(times[(table, "duckdb")])
        s = statistics.median(times[(table, "duckstream")])
        z = statistics.median(times[(table, "duckstream zstd")])
        print(f"| {n:,} {table} | {n / d / 1e6:.2f} M rows/s ({d:.2f} s) | {n / s / 1e6:.2f} M rows/s ({s:.2f} s) "
              f"| {d / s:.2f}× | {n / z / 1e6:.2f} M rows/s ({z:.2f} s) | {d / z:.2f}× |")


if __name__ == "__main__":
    main()
