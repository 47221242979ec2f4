#!/usr/bin/env python3
"""Where a lake CSV upload's time goes: DuckDB alone (`CREATE TABLE … AS FROM read_csv(…)` into
a DuckLake on the same catalog and S3, autocommit, then inside a transaction with the count and
the commit the gateway also makes) beside the gateway's PUT, whose log gives the body's receipt
(`upload body received … elapsed_ms`) and the load (`dataset written`, timestamps).

Starts its own PostgreSQL 15 and moto_server (bench_lake.py's classes); writes a CSV of --rows
rows (4 columns) to /tmp/bench/phases_ROWS.csv once. With `--base BIN`, a second gateway runs
that binary on the same lake (tenant `upb`), PUT after the first in every round, for a before /
after in one run.

    /var/tmp/duckstream-tools/venv/bin/python scripts/bench/bench_lake_upload_phases.py --rows 5000000
"""
import argparse
import os
import re
import sys
import tempfile
import time
from datetime import datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_lake as bl  # noqa: E402
import duckdb  # noqa: E402


def lake_connection(work, pg, moto, schema):
    c = duckdb.connect(":memory:", config={"extension_directory": os.path.join(work, "ext"),
                                           "autoinstall_known_extensions": "false",
                                           "autoload_known_extensions": "false"})
    for e in ("httpfs", "postgres", "ducklake"):
        c.execute(f"INSTALL {e} FROM '{os.path.join(bl.TOOLS, 'extensions')}'")
        c.execute(f"LOAD {e}")
    c.execute(f"CREATE SECRET lake (TYPE s3, KEY_ID 'test', SECRET 'test', REGION 'us-east-1', "
              f"ENDPOINT '{moto.endpoint}', URL_STYLE 'path', USE_SSL false)")
    c.execute(f"ATTACH 'ducklake:postgres:{pg.dsn('lakes')}' AS lake (METADATA_SCHEMA '{schema}', "
              f"DATA_PATH 's3://lake/{schema}/', DATA_INLINING_ROW_LIMIT 0)")
    c.execute("USE lake")
    return c


def stamp(line):
    return datetime.fromisoformat(line.split()[0].rstrip("Z")).timestamp()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bin", default=bl.DEFAULT_BIN)
    p.add_argument("--rows", type=int, default=5_000_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--base", help="a second binary, on a second gateway beside --bin's")
    o = p.parse_args()
    os.makedirs("/tmp/bench", exist_ok=True)
    csv = f"/tmp/bench/phases_{o.rows}.csv"
    if not os.path.exists(csv):
        duckdb.sql(f"COPY (SELECT i AS id, i % 97 AS score, 'name ' || i AS name, random() AS x "
                   f"FROM range({o.rows}) t(i)) TO '{csv}'")
    work = tempfile.mkdtemp(prefix="bench_phases_")
    os.chmod(work, 0o755)
    pg, moto, g, b = bl.Postgres(work), bl.Moto(work), None, None
    try:
        config = bl.start_lake(pg, moto, work, "s3://lake/gw/")
        g = bl.Gateway("A", o.bin, work, ["--config", config, "--maintenance-interval-secs", "0"])
        g.create_tenant("up")
        if o.base:
            b = bl.Gateway("B", o.base, work, ["--config", config, "--maintenance-interval-secs", "0"])
            b.create_tenant("upb")
        print(f"{os.path.getsize(csv) / 2**20:.0f} MiB CSV; load average {os.getloadavg()[0]:.2f}\n")
        base = " base PUT s | DuckDB alone s ÷ PUT s, base |" if b else ""
        print(f"| round | DuckDB alone s | DuckDB in a transaction (CTAS + count + commit) s | gateway PUT s | "
              f"DuckDB alone s ÷ PUT s |{base}")
        print("|---:|---:|---:|---:|---:|" + ("---:|---:|" if b else ""))
        for i in range(o.repeat):
            c = lake_connection(work, pg, moto, f"a{i}")
            t = time.perf_counter()
            c.execute(f"CREATE TABLE parcels AS FROM read_csv('{csv}')")
            alone = time.perf_counter() - t
            c = lake_connection(work, pg, moto, f"b{i}")
            t = time.perf_counter()
            c.execute("BEGIN")
            c.execute(f"CREATE TABLE parcels AS FROM read_csv('{csv}')")
            c.execute("SELECT count(*) FROM parcels").fetchall()
            c.execute("COMMIT")
            txn = time.perf_counter() - t
            g.delete_dataset("up", "parcels")
            put = g.put_file("up", "parcels", csv, "csv")
            row = f"| {i + 1} | {alone:.2f} | {txn:.2f} | {put:.2f} | {alone / put:.2f} |"
            if b:
                b.delete_dataset("upb", "parcels")
                put_b = b.put_file("upb", "parcels", csv, "csv")
                row += f" {put_b:.2f} | {alone / put_b:.2f} |"
            print(row, flush=True)
        for gw in (g, b) if b else (g,):
            with open(gw.log) as f:
                lines = [l for l in f if "upload body received" in l or "dataset written" in l]
            print(f"\n{gw.name}: {o.bin if gw is g else o.base}\n")
            print("| upload | body received and spooled, ms | then loaded, s |\n|---:|---:|---:|")
            for n, (x, y) in enumerate(zip(lines[::2], lines[1::2])):
                body = re.search(r"elapsed_ms=(\d+)", x).group(1)
                print(f"| {n + 1} | {body} | {stamp(y) - stamp(x):.2f} |")
    finally:
        for gw in (g, b):
            if gw:
                gw.stop()
        moto.stop()
        pg.stop()


if __name__ == "__main__":
    main()
