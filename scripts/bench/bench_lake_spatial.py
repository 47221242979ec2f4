#!/usr/bin/env python3
"""A bounding-box filter and the demo's spatial join on 10M points in a DuckLake, as loaded
beside laid out the way duckstream writes a lake upload (rows in Hilbert order, and
`geom_xmin/ymin/xmax/ymax` columns that DuckLake keeps per-file minimums and maximums of).
DuckDB 1.5.5 in-process with the ducklake and spatial extensions; the lake's catalog is a
DuckDB file and its data a local directory (file skipping works the same with PostgreSQL and
S3), files of at most `--file-size`.

    /var/tmp/duckstream-tools/venv/bin/python scripts/bench/bench_lake_spatial.py \\
        --ext /var/tmp/duckstream-tools/extensions
"""
import argparse
import os
import tempfile
import time

import duckdb

from demo_sql import ZONES_SQL

ENVELOPE = "ST_MakeEnvelope(2, 48, 3, 49)"
BOX = "geom_xmin >= 2 AND geom_xmax <= 3 AND geom_ymin >= 48 AND geom_ymax <= 49"


def best(c, sql, n=3):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        rows = c.execute(sql).fetchall()
        times.append(time.perf_counter() - t)
    return min(times), rows[0][0]


def files_read(c, sql):
    """Data files the scan opened, from EXPLAIN ANALYZE's DUCKLAKE_SCAN (`Total Files Read`)."""
    plan = "\n".join(r[1] for r in c.execute("EXPLAIN ANALYZE " + sql).fetchall())
    for line in plan.splitlines():
        if "Total Files Read" in line:
            return line.split(":")[-1].strip(" │")
    return "?"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--src", default="/tmp/bench/bench.duckdb")
    p.add_argument("--ext", default="/var/tmp/duckstream-tools/extensions")
    p.add_argument("--file-size", default="16MB")
    o = p.parse_args()
    work = tempfile.mkdtemp()
    c = duckdb.connect(config={"extension_directory": os.path.join(work, "ext")})
    for name in ("spatial", "ducklake"):
        c.execute(f"INSTALL {name} FROM '{o.ext}'; LOAD {name}")
    c.execute("SET enable_progress_bar = false")
    c.execute(f"ATTACH 'ducklake:{work}/meta.ducklake' AS lake (DATA_PATH '{work}/data/', "
              "DATA_INLINING_ROW_LIMIT 0)")
    c.execute(f"CALL ducklake_set_option('lake', 'target_file_size', '{o.file_size}')")
    c.execute(f"ATTACH '{o.src}' AS src (READ_ONLY)")
    c.execute("USE lake")
    c.execute(ZONES_SQL)
    t = time.perf_counter()
    c.execute("CREATE TABLE plain AS SELECT ST_Point(lon, lat) AS geom FROM src.parcels")
    plain_s = time.perf_counter() - t
    t = time.perf_counter()
    c.execute("""CREATE TABLE laid_out AS
        SELECT *, ST_XMin(geom) AS geom_xmin, ST_YMin(geom) AS geom_ymin,
                  ST_XMax(geom) AS geom_xmax, ST_YMax(geom) AS geom_ymax
        FROM (SELECT ST_Point(lon, lat) AS geom FROM src.parcels)
        ORDER BY ST_Hilbert(geom, (SELECT ST_Extent(ST_Extent_Agg(ST_Point(lon, lat))) FROM src.parcels))""")
    laid_s = time.perf_counter() - t
    cases = [
        ("bbox filter, as loaded (ST_Intersects)",
         f"SELECT count(*) FROM plain WHERE ST_Intersects(geom, {ENVELOPE})"),
        ("bbox filter, laid out (box columns + ST_Intersects)",
         f"SELECT count(*) FROM laid_out WHERE {BOX} AND ST_Intersects(geom, {ENVELOPE})"),
        ("spatial join, as loaded",
         "SELECT count(*) FROM zones z JOIN plain p ON ST_Contains(z.geom, p.geom)"),
        ("spatial join, laid out (box columns in the join)",
         "SELECT count(*) FROM zones z JOIN laid_out p ON p.geom_xmin >= ST_XMin(z.geom) "
         "AND p.geom_xmax <= ST_XMax(z.geom) AND p.geom_ymin >= ST_YMin(z.geom) "
         "AND p.geom_ymax <= ST_YMax(z.geom) AND ST_Contains(z.geom, p.geom)"),
    ]
    files = c.execute("SELECT count(*) FROM ducklake_list_files('lake', 'plain')").fetchone()[0]
    print(f"load: as loaded {plain_s:.1f} s, laid out {laid_s:.1f} s; "
          f"{files} files per table (target {o.file_size})\n")
    print("| query | best of 3 | rows | files read |")
    print("|---|---|---|---|")
    for name, sql in cases:
        n = 1 if "join" in name else 3
        secs, count = best(c, sql, n)
        print(f"| {name} | {secs:.3f} s | {count} | {files_read(c, sql)} |")


if __name__ == "__main__":
    main()
