#!/usr/bin/env python3
"""A bounding-box filter and a spatial join on 10M points: as loaded, Hilbert-sorted, and
with an RTREE index (DuckDB 1.5.5 + the spatial extension, in-process). Builds the point and
zone tables from the benchmark database into a scratch copy.

    ~/.cache/duckstream-bench/.venv/bin/python scripts/bench/bench_spatial_index.py \\
        --ext /var/tmp/duckstream-tools/extensions
"""
import argparse
import os
import tempfile
import time

import duckdb

from demo_sql import ZONES_SQL


def best(c, sql, n=3):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        c.execute(sql).fetchall()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--src", default="/tmp/bench/bench.duckdb")
    p.add_argument("--ext", default="/var/tmp/duckstream-tools/extensions")
    o = p.parse_args()
    db = os.path.join(tempfile.mkdtemp(), "idx.duckdb")
    c = duckdb.connect(db)
    c.execute(f"LOAD '{o.ext}/v1.5.5/linux_amd64/spatial.duckdb_extension'")
    c.execute("SET enable_progress_bar = false")
    c.execute(f"ATTACH '{o.src}' AS src (READ_ONLY)")
    c.execute("CREATE TABLE points AS SELECT ST_Point(lon, lat) AS geom FROM src.parcels")
    c.execute(ZONES_SQL)
    bbox = "SELECT count(*) FROM {t} WHERE ST_Intersects(geom, ST_MakeEnvelope(2, 48, 3, 49))"
    join = "SELECT count(*) FROM zones z JOIN {t} p ON ST_Contains(z.geom, p.geom)"
    rows = [("as loaded (random order)", "points", None)]
    t = time.perf_counter()
    c.execute("CREATE TABLE hilbert AS SELECT * FROM points ORDER BY "
              "ST_Hilbert(geom, (SELECT ST_Extent(ST_Extent_Agg(geom)) FROM points))")
    c.execute("CHECKPOINT")
    rows.append(("sorted by ST_Hilbert(geom, extent)", "hilbert", time.perf_counter() - t))
    t = time.perf_counter()
    c.execute("CREATE TABLE rtree AS SELECT * FROM points")
    c.execute("CREATE INDEX rtree_idx ON rtree USING RTREE (geom)")
    c.execute("CHECKPOINT")
    rows.append(("with an RTREE index on geom", "rtree", time.perf_counter() - t))
    print("| table | build | bounding-box filter | spatial join |")
    print("|---|---|---|---|")
    for name, table, build in rows:
        b = best(c, bbox.format(t=table))
        j = best(c, join.format(t=table), 1)
        print(f"| {name} | {'—' if build is None else f'+{build:.1f} s'} | {b:.4f} s | {j:.2f} s |")


if __name__ == "__main__":
    main()
