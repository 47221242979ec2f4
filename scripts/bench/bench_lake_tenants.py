#!/usr/bin/env python3
"""What a loaded lake tenant costs a replica (docs/OPERATIONS.md, "Sizing"): memory, file
descriptors, threads and catalog connections, as more and more tenants are loaded.

The script starts its own PostgreSQL 15 and moto_server (the classes of bench_lake.py), one
gateway C that creates --tenants lake tenants with a small table each (`id,score`, --rows rows)
and is then stopped, and one gateway A (upkeep off) that has loaded none. A then answers one
query per tenant (`SELECT sum(score) FROM scores`), in steps (--steps); after each step, once
A is quiet, it reads A's RSS and thread count (/proc/PID/status), its open descriptors
(/proc/PID/fd) and the catalog database's connections (pg_stat_activity: after C stopped, all of
them are A's). Prints one markdown table and the cost per tenant (least squares over the steps).

    /var/tmp/duckstream-tools/venv/bin/python scripts/bench/bench_lake_tenants.py --tenants 200

Needs what bench_lake.py needs (PostgreSQL 15, moto_server and psycopg in the tests' venv, the
lake extensions in /var/tmp/duckstream-tools/extensions).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_lake as bl  # noqa: E402
import psycopg  # noqa: E402


def proc_status(pid):
    """(RSS in MiB, threads) of a process."""
    rss, threads = 0.0, 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss, threads


def catalog_connections(pg):
    with psycopg.connect(pg.dsn("postgres"), autocommit=True) as c:
        return c.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = 'lakes'").fetchone()[0]


def measure(gw, pg):
    time.sleep(1.0)  # background work of the last queries settles
    rss, threads = proc_status(gw.proc.pid)
    fds = len(os.listdir(f"/proc/{gw.proc.pid}/fd"))
    return rss, threads, fds, catalog_connections(pg)


def slope(xs, ys):
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bin", default=bl.DEFAULT_BIN)
    p.add_argument("--tenants", type=int, default=200)
    p.add_argument("--rows", type=int, default=1000)
    p.add_argument("--steps", default="0,1,10,25,50,100,150,200")
    o = p.parse_args()
    steps = [s for s in map(int, o.steps.split(",")) if s <= o.tenants]
    work = tempfile.mkdtemp(prefix="bench_lake_tenants_")
    os.chmod(work, 0o755)
    binary = os.path.join(work, "duckstream")
    shutil.copy2(o.bin, binary)
    pg, moto, gateways = bl.Postgres(work), bl.Moto(work), []
    try:
        config = bl.start_lake(pg, moto, work, "s3://lake/tenants/")
        off = ["--config", config, "--maintenance-interval-secs", "0"]
        C = bl.Gateway("C", binary, work, off)
        gateways.append(C)
        csv = "id,score\n" + "".join(f"{i},{i % 97}\n" for i in range(o.rows))
        t0 = time.perf_counter()
        names = [f"t{i:04d}" for i in range(o.tenants)]
        for name in names:
            C.create_tenant(name)
            C.put(name, "scores", csv)
        made = time.perf_counter() - t0
        C.stop()
        gateways.remove(C)
        A = bl.Gateway("A", binary, work, off)
        gateways.append(A)
        A.query_count = 0
        print(f"## bench_lake_tenants.py, {time.strftime('%Y-%m-%d %H:%M:%S')}\n\n`{' '.join(sys.argv)}`; "
              f"{o.tenants} tenants made in {made:.1f} s by another gateway; load average "
              f"{os.getloadavg()[0]:.2f}.\n")
        print("| tenants loaded | RSS MiB | threads | descriptors | catalog connections |")
        print("|---:|---:|---:|---:|---:|")
        rows, loaded = [], 0
        expected = sum(i % 97 for i in range(o.rows))
        for step in steps:
            while loaded < step:
                got, _ = A.query(names[loaded], "SELECT sum(score) FROM scores")
                if got != [[expected]]:
                    raise SystemExit(f"{names[loaded]}: {got}")
                loaded += 1
            m = measure(A, pg)
            rows.append((step, *m))
            print(f"| {step} | {m[0]:.1f} | {m[1]} | {m[2]} | {m[3]} |", flush=True)
        xs = [r[0] for r in rows if r[0] >= 1]
        if len(xs) >= 2:
            per = [slope(xs, [r[i] for r in rows if r[0] >= 1]) for i in (1, 2, 3, 4)]
            print(f"\nPer loaded tenant (least squares over {xs[0]}..{xs[-1]}): "
                  f"{per[0] * 1024:.0f} KiB RSS, {per[1]:.2f} threads, {per[2]:.2f} descriptors, "
                  f"{per[3]:.2f} catalog connections.")
        print(f"\nLoad average at the end: {os.getloadavg()[0]:.2f}.")
        complaints = [l for g in gateways for l in g.complaints()]
        if complaints:
            print("\n### Gateway log lines at WARN or above\n")
            print("\n".join(complaints[:40]))
    finally:
        for g in gateways:
            g.stop()
        moto.stop()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
