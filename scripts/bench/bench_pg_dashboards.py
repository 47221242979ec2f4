#!/usr/bin/env python3
"""200 concurrent PostgreSQL connections running dashboard queries (issue 26's benchmark):
duckstream's PostgreSQL endpoint beside a real PostgreSQL 15 (Debian's, its own cluster) on the
same N rows of `parcels`, the same client and the same queries, one after the other in one run.

Each connection is a psycopg 3 async connection sending Grafana-shaped SQL over the simple query
protocol, as Grafana's data source does (its macros expanded into literals, so the time range, and
with it the text, changes from query to query: nothing comes from a result cache):
  - a time series: `floor(extract(epoch from updated)/86400)*86400 AS time, count(*)` over a
    random 90-day window, grouped and ordered by time;
  - a table: the top 10 cities of a random window by count, with their mean population;
  - a stat: one parcel by id.
Every connection runs them in turn, back to back, for `--seconds`; the gateway's tenant queue is
sized to the connections, so queries wait for a slot instead of being refused. Reported per server:
queries/s, latency p50/p99 (ms), errors by SQLSTATE, and for duckstream its peak RSS.

    /var/tmp/duckstream-tools/venv/bin/python scripts/bench/bench_pg_dashboards.py \
        [--rows 1000000] [--connections 200] [--seconds 30] [--bin BIN]

Needs /tmp/bench/bench.duckdb (../shared/bench/data.py) and /usr/lib/postgresql/15/bin.
"""
import argparse
import asyncio
import datetime
import os
import random
import statistics
import time
from collections import Counter

import duckdb
import psycopg

from bench_lake import free_port
from bench_pg import Reference
from benchlib import DEFAULT_BIN, gateway, reset_peak, status

START = datetime.datetime(2015, 1, 1)


def subset(rows):
    """A DuckDB file holding the first `rows` parcels (the gateway's tenant `bench`)."""
    path = f"/tmp/bench/dash_{rows}.duckdb"
    if not os.path.exists(path):
        con = duckdb.connect(path + ".tmp")
        con.execute("ATTACH '/tmp/bench/bench.duckdb' AS src (READ_ONLY)")
        con.execute(f"CREATE TABLE parcels AS SELECT * FROM src.parcels LIMIT {rows}")
        con.close()
        os.rename(path + ".tmp", path)
    return path


def window(rng):
    """A random 90-day window as Grafana's `$__timeFilter` writes it."""
    start = START + datetime.timedelta(days=rng.randrange(0, 3000))
    end = start + datetime.timedelta(days=90)
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return f"updated BETWEEN '{start.strftime(fmt)}' AND '{end.strftime(fmt)}'"


def queries(rng, rows):
    """One round of a dashboard's panels."""
    return [
        f"SELECT floor(extract(epoch from updated)/86400)*86400 AS \"time\", count(*) AS n "
        f"FROM parcels WHERE {window(rng)} GROUP BY 1 ORDER BY 1",
        f"SELECT city, count(*) AS n, avg(population) AS pop FROM parcels WHERE {window(rng)} "
        f"GROUP BY city ORDER BY n DESC LIMIT 10",
        f"SELECT id, city, population, area FROM parcels WHERE id = {rng.randrange(rows)}",
    ]


async def viewer(dsn, rows, until, latencies, errors, seed):
    rng = random.Random(seed)
    try:
        conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True,
                                                     cursor_factory=psycopg.AsyncClientCursor)
    except psycopg.Error as e:
        errors[getattr(e, "sqlstate", None) or type(e).__name__] += 1
        return
    async with conn:
        while time.perf_counter() < until:
            for sql in queries(rng, rows):
                t = time.perf_counter()
                try:
                    cur = await conn.execute(sql)
                    await cur.fetchall()
                    latencies.append(time.perf_counter() - t)
                except psycopg.Error as e:
                    errors[e.sqlstate or type(e).__name__] += 1


async def load(dsn, rows, connections, seconds):
    latencies, errors = [], Counter()
    until = time.perf_counter() + seconds
    t = time.perf_counter()
    await asyncio.gather(*(viewer(dsn, rows, until, latencies, errors, i) for i in range(connections)))
    return time.perf_counter() - t, latencies, errors


def report(name, elapsed, latencies, errors, peak=None):
    lat = sorted(latencies)
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")  # noqa: E731
    peak_text = f", peak RSS {peak:.0f} MiB" if peak else ""
    print(f"  {name:32s} {len(lat) / elapsed:8.1f} queries/s  p50 {p(0.5):7.1f} ms  p99 {p(0.99):7.1f} ms"
          f"  errors {dict(errors) or 0}{peak_text}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--connections", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--bin", default=DEFAULT_BIN)
    args = ap.parse_args()
    db = subset(args.rows)
    pg = Reference(args.rows)
    pg_port = free_port()
    results = []
    try:
        with pg_conn(pg) as c:
            c.execute("CREATE INDEX ON parcels (updated)")
            c.execute("CREATE INDEX ON parcels (id)")
            c.execute("ANALYZE parcels")
        # A dashboard waits for its turn rather than being refused: every connection's query
        # may queue (the default per-tenant queue, 64, answers the rest 53300 at once).
        extra = ["--pg-bind", f"127.0.0.1:{pg_port}", "--pg-max-connections", str(args.connections + 10),
                 "--queue-size", str(args.connections), "--max-queued", str(2 * args.connections)]
        with gateway(args.bin, db, extra=extra) as (port, pid):
            dsn = f"host=127.0.0.1 port={pg_port} dbname=bench user=bench sslmode=disable"
            asyncio.run(load(dsn, args.rows, 4, 2))  # opens the tenant, warms its pool
            reset_peak(pid)
            elapsed, lat, err = asyncio.run(load(dsn, args.rows, args.connections, args.seconds))
            results.append(("duckstream pg", elapsed, lat, err, status(pid, "VmHWM")))
        elapsed, lat, err = asyncio.run(load(pg.dsn, args.rows, args.connections, args.seconds))
        results.append(("PostgreSQL 15 (indexed)", elapsed, lat, err, None))
    finally:
        pg.stop()
    print(f"{args.connections} connections, {args.seconds:.0f} s each, {args.rows:,} rows of parcels, "
          f"{os.cpu_count()} cores")
    for r in results:
        report(*r)
    durations = [statistics.median(r[2]) for r in results if r[2]]
    if len(durations) == 2:
        print(f"  p50 ratio PostgreSQL / duckstream: {durations[1] / durations[0]:.2f}")


def pg_conn(pg):
    return psycopg.connect(pg.dsn, autocommit=True)


if __name__ == "__main__":
    main()
