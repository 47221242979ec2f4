#!/usr/bin/env python3
"""The PostgreSQL endpoint beside HTTP and beside a real PostgreSQL 15, in one run, on the same
rows and the same client machine (issue 26's benchmarks):

- a scan of N rows of `parcels` (9 columns) read by psycopg 3: binary rows fetched in batches
  of 10,000 from a server-side cursor, and `COPY (…) TO STDOUT` read as it comes;
- the same scan over duckstream's HTTP as Arrow and as NDJSON (curl, to /dev/null);
- the same two psycopg reads from PostgreSQL 15 (Debian's, its own cluster on a free port),
  the protocol's own reference;
- the gateway's peak RSS during each of its scans;
- a small query's round trip (`SELECT 1`-like, on one connection): psycopg vs HTTP keep-alive;
- a slow reader of the scan (a raw socket taking 64 KiB every 50 ms for 20 s): the gateway's RSS
  stays flat while DuckDB waits.

    /var/tmp/duckstream-tools/venv/bin/python scripts/bench/bench_pg.py [--rows N] [--bin BIN]

Needs /tmp/bench/bench.duckdb (../shared/bench/data.py) and /usr/lib/postgresql/15/bin.
"""
import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time

import psycopg

from bench_lake import Postgres
from benchlib import DEFAULT_BIN, gateway, reset_peak, status, timed_query


def free_port_here():
    from bench_lake import free_port
    return free_port()


def psycopg_scan(dsn, sql):
    """Seconds to read every row of `sql` in binary, 10,000 at a time, and the row count."""
    t = time.perf_counter()
    n = 0
    with psycopg.connect(dsn) as conn:
        with conn.cursor(name="scan", binary=True) as cur:
            cur.itersize = 10_000
            cur.execute(sql)
            while rows := cur.fetchmany(10_000):
                n += len(rows)
    return time.perf_counter() - t, n


def copy_scan(dsn, sql):
    """Seconds to read `COPY (sql) TO STDOUT` to its end, and its bytes."""
    t = time.perf_counter()
    size = 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        with conn.cursor().copy(f"COPY ({sql}) TO STDOUT") as copy:
            for block in copy:
                size += len(block)
    return time.perf_counter() - t, size


def round_trips(dsn, port):
    """p50 of 300 small queries (after 30) on one connection: psycopg, then HTTP keep-alive."""
    small = "SELECT i FROM range(10) t(i) WHERE i > 5"
    out = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        times = []
        for i in range(330):
            t = time.perf_counter()
            conn.execute(small).fetchall()
            if i >= 30:
                times.append(time.perf_counter() - t)
        out["psycopg"] = statistics.median(times) * 1000
    c = http.client.HTTPConnection("127.0.0.1", port)
    body = json.dumps({"sql": small})
    times = []
    for i in range(330):
        t = time.perf_counter()
        c.request("POST", "/v1/bench/query", body)
        c.getresponse().read()
        if i >= 30:
            times.append(time.perf_counter() - t)
    out["http"] = statistics.median(times) * 1000
    return out


def slow_reader(pg_port, pid, sql, seconds=20.0):
    """A client that reads a simple query's rows slowly (64 KiB every 50 ms, a raw socket, as a
    client busy with each batch would): the gateway's RSS each second, and the bytes read. The
    engine's bounded channel and the socket's buffers are all that may hold rows meanwhile."""
    import socket
    import struct
    params = b"user\0bench\0database\0bench\0\0"
    s = socket.create_connection(("127.0.0.1", pg_port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    s.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
    hello = b""
    while not hello.endswith(b"Z\0\0\0\x05I"):
        hello += s.recv(4096)
    query = sql.encode() + b"\0"
    s.sendall(b"Q" + struct.pack("!i", 4 + len(query)) + query)
    read, samples, t0 = 0, [], time.perf_counter()
    next_sample = t0
    while time.perf_counter() - t0 < seconds:
        read += len(s.recv(64 * 1024))
        time.sleep(0.05)
        if time.perf_counter() >= next_sample:
            samples.append(status(pid, "VmRSS"))
            next_sample += 1.0
    s.close()
    return samples, read


class Reference:
    """PostgreSQL 15 (bench_lake's scratch cluster), with `parcels` loaded from the same rows."""

    def __init__(self, rows):
        self.work = tempfile.mkdtemp()
        os.chmod(self.work, 0o755)  # the cluster runs as `postgres` when we are root
        self.server = Postgres(self.work)
        self.server.start()
        self.dsn = self.server.dsn("postgres")
        self.load(rows)

    def load(self, rows):
        import duckdb
        csv = os.path.join(self.work, "parcels.csv")
        duckdb.connect("/tmp/bench/bench.duckdb", read_only=True).execute(
            f"COPY (SELECT * FROM parcels LIMIT {rows}) TO '{csv}' (HEADER false)")
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE parcels (id bigint, city text, population integer, area float8,"
                         " lon float8, lat float8, built date, updated timestamp, tags text)")
            with conn.cursor().copy("COPY parcels FROM STDIN (FORMAT csv)") as copy:
                with open(csv, "rb") as f:
                    while block := f.read(1 << 20):
                        copy.write(block)
            conn.execute("VACUUM ANALYZE parcels")
        os.remove(csv)

    def stop(self):
        self.server.stop()
        shutil.rmtree(self.work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--bin", default=DEFAULT_BIN)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    sql = f"SELECT * FROM parcels LIMIT {args.rows}"
    pg = Reference(args.rows)
    pg_port = free_port_here()
    results = {}

    def add(name, seconds):
        results.setdefault(name, []).append(seconds)

    try:
        with gateway(args.bin, "/tmp/bench/bench.duckdb",
                     extra=["--pg-bind", f"127.0.0.1:{pg_port}"]) as (port, pid):
            dsn = f"host=127.0.0.1 port={pg_port} dbname=bench user=bench sslmode=disable"
            psycopg_scan(dsn, "SELECT * FROM parcels LIMIT 1000")  # opens the tenant
            peaks = {}
            for _ in range(args.rounds):
                for name, run in [
                    ("duckstream pg, psycopg binary cursor", lambda: psycopg_scan(dsn, sql)),
                    ("duckstream pg, psycopg COPY TO STDOUT", lambda: copy_scan(dsn, sql)),
                ]:
                    reset_peak(pid)
                    seconds, _ = run()
                    add(name, seconds)
                    peaks[name] = max(peaks.get(name, 0), status(pid, "VmHWM"))
                for name, body in [("duckstream HTTP, Arrow", "arrow"), ("duckstream HTTP, NDJSON", "ndjson")]:
                    reset_peak(pid)
                    add(name, timed_query(port, sql) if body == "ndjson" else arrow_query(port, sql))
                    peaks[name] = max(peaks.get(name, 0), status(pid, "VmHWM"))
                add("PostgreSQL 15, psycopg binary cursor", psycopg_scan(pg.dsn, sql)[0])
                add("PostgreSQL 15, psycopg COPY TO STDOUT", copy_scan(pg.dsn, sql)[0])
            small = round_trips(dsn, port)
            slow_rss, slow_bytes = slow_reader(pg_port, pid, sql)
    finally:
        pg.stop()
    print(f"{args.rows:,} rows of parcels, {args.rounds} rounds interleaved (median s; gateway peak RSS MiB)")
    for name, times in results.items():
        peak = peaks.get(name)
        peak_text = f"  peak RSS {peak:.0f} MiB" if peak else ""
        print(f"  {name:42s} {statistics.median(times):7.2f} s  "
              f"({args.rows / statistics.median(times) / 1e6:.2f} M rows/s){peak_text}")
    print(f"  small query round trip, p50: psycopg {small['psycopg']:.3f} ms, HTTP {small['http']:.3f} ms")
    print(f"  slow reader (64 KiB per 50 ms, 20 s, {slow_bytes / 2**20:.0f} MiB read): gateway RSS "
          f"{slow_rss[0]:.0f} MiB at 1 s, {max(slow_rss):.0f} MiB at most, {slow_rss[-1]:.0f} MiB at the end")


def arrow_query(port, sql):
    """Seconds curl takes to read `sql` as an Arrow IPC stream."""
    args = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", f"http://127.0.0.1:{port}/v1/bench/query",
            "-H", "content-type: application/json", "--data-binary", json.dumps({"sql": sql, "format": "arrow"})]
    t = time.perf_counter()
    done = subprocess.run(args, check=True, capture_output=True, text=True)
    if done.stdout != "200":
        raise SystemExit(f"HTTP {done.stdout} for {sql}")
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
