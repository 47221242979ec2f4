#!/usr/bin/env python3
"""The 10M-row scan as Arrow IPC, side by side in one run, interleaved (medians of --repeat):

- DuckDB alone, in-process: `to_arrow_reader()` written as an IPC stream to a byte-counting
  sink (shared/bench/limits.py's `arrow_ipc`): the limit;
- duckstream `POST /v1/bench/query` with `format: "arrow"`, plain and zstd, and NDJSON plain
  and zstd (curl, to /dev/null), and its Mosaic endpoint (`POST /v1/bench/mosaic`);
- Mosaic's own duckdb-server (`POST /` `{"type": "arrow"}`), on a copy of the same database.

First batch: pyarrow over HTTP (urllib), the time to the first record batch (the schema comes
before it). Peak RSS above the server's RSS before the request (VmHWM reset per request).
Then the vgplot example's dashboard queries on both Mosaic servers.

    /var/tmp/duckstream-tools/venv/bin/python scripts/bench/bench_arrow.py \
        --bin target/release/duckstream --mosaic /var/tmp/mosaic-venvs/ds-0.34.2/bin/duckdb-server

Needs pyarrow and duckdb 1.5.5 in the Python that runs it (the test tools' venv has both:
/var/tmp/duckstream-tools/venv), curl, and Mosaic's duckdb-server (tests/mosaic/validate.sh
installs 0.34.2 into /var/tmp/mosaic-venvs).
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request

import duckdb
import pyarrow as pa
import pyarrow.ipc as ipc

from benchlib import gateway, reset_peak, status

SCAN = "SELECT * FROM parcels"
ROWS = 10_000_000

# The first render of examples/mosaic-dashboard (what its Coordinator sends), on the bench data.
DASHBOARD = [
    'DESC SELECT "area" AS "column" FROM "parcels" AS "source"',
    'DESC SELECT count(*) AS "column", * FROM "parcels" AS "source" GROUP BY ALL',
    'SELECT min("area") AS "col0", max("area") AS "col1", min("lon") AS "col2", max("lon") AS "col3", '
    'min("lat") AS "col4", max("lat") AS "col5" FROM "parcels"',
    'SELECT count(*) AS "x", "city" FROM "parcels" AS "source" GROUP BY "city"',
    'SELECT (5000 * floor(("area" / (5000)::DOUBLE))) AS "x1", (5000 * (1 + floor(("area" / (5000)::DOUBLE)))) AS "x2", '
    'count(*) AS "y" FROM "parcels" AS "source" GROUP BY "x1", "x2"',
    'SELECT ((floor((("lon")::DOUBLE - -180) * (0.525)::DOUBLE))::INTEGER + (floor((("lat")::DOUBLE - -90) * (1.02)::DOUBLE))::INTEGER * 190) '
    'AS "index", count(*) AS "density" FROM "parcels" WHERE ("lon" BETWEEN -180 AND 180) AND ("lat" BETWEEN -90 AND 90) GROUP BY "index"',
]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def curl(url, body, headers=()):
    """(seconds, bytes received) of a POST read to /dev/null."""
    args = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", url,
            "-H", "content-type: application/json", "--data-binary", body]
    for h in headers:
        args += ["-H", h]
    t = time.perf_counter()
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout.split()
    elapsed = time.perf_counter() - t
    if out[0] != "200":
        raise SystemExit(f"HTTP {out[0]} from {url}")
    return elapsed, int(out[1])


def first_batch(url, body):
    """Seconds to the first record batch, read by pyarrow over HTTP."""
    req = urllib.request.Request(url, data=body.encode(), headers={"content-type": "application/json"})
    t = time.perf_counter()
    with urllib.request.urlopen(req) as r:
        reader = ipc.open_stream(r)
        reader.read_next_batch()
        return time.perf_counter() - t


def duckdb_ipc(db):
    """DuckDB alone: (seconds, first batch seconds, IPC bytes)."""
    with duckdb.connect(db, read_only=True) as con:
        t0 = time.perf_counter()
        reader = con.execute(SCAN).to_arrow_reader()
        sink = pa.MockOutputStream()
        writer = pa.ipc.new_stream(sink, reader.schema)
        first = None
        for batch in reader:
            first = first or time.perf_counter() - t0
            writer.write_batch(batch)
        writer.close()
        return time.perf_counter() - t0, first, sink.size()


def peak_of(pid, fn):
    """Runs fn(); (its result, peak RSS above the RSS before, MiB)."""
    reset_peak(pid)
    before = status(pid, "VmRSS")
    result = fn()
    return result, status(pid, "VmHWM") - before


class MosaicServer:
    def __init__(self, binary, db):
        self.port = free_port()
        self.proc = subprocess.Popen([binary, "--database", db, "--port", str(self.port), "--no-http2"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                curl(f"http://127.0.0.1:{self.port}/", json.dumps({"type": "arrow", "sql": "SELECT 1"}))
                return
            except (subprocess.CalledProcessError, SystemExit):
                time.sleep(0.1)
        raise SystemExit("duckdb-server did not start")

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def med(xs):
    return statistics.median(xs)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--mosaic", default="/var/tmp/mosaic-venvs/ds-0.34.2/bin/duckdb-server")
    p.add_argument("--db", default="/tmp/bench/bench.duckdb")
    p.add_argument("--repeat", type=int, default=3)
    o = p.parse_args()
    scratch = tempfile.mkdtemp()
    # duckdb-server opens its file read-write (an exclusive lock): a copy of its own; DuckDB
    # alone reads a third.
    mosaic_db, alone_db = os.path.join(scratch, "mosaic.duckdb"), os.path.join(scratch, "alone.duckdb")
    shutil.copyfile(o.db, mosaic_db)
    shutil.copyfile(o.db, alone_db)
    t = {}

    def add(key, value):
        t.setdefault(key, []).append(value)

    mosaic = MosaicServer(o.mosaic, mosaic_db)
    try:
        with gateway(o.bin, o.db) as (port, pid):
            q = f"http://127.0.0.1:{port}/v1/bench/query"
            mq = f"http://127.0.0.1:{port}/v1/bench/mosaic"
            ds = f"http://127.0.0.1:{mosaic.port}/"
            arrow_body = json.dumps({"sql": SCAN, "format": "arrow"})
            nd_body = json.dumps({"sql": SCAN, "chunk_rows": 1000})
            mosaic_body = json.dumps({"type": "arrow", "sql": SCAN})
            # Warm-up: each opens its database and reads the table once.
            curl(q, arrow_body), curl(ds, mosaic_body), duckdb_ipc(alone_db)
            for _ in range(o.repeat):
                s, f, b = duckdb_ipc(alone_db)
                add("duckdb", s), add("duckdb first", f), add("duckdb bytes", b)
                (s, b), mem = peak_of(pid, lambda: curl(q, arrow_body))
                add("arrow", s), add("arrow bytes", b), add("arrow mem", mem)
                add("arrow first", first_batch(q, arrow_body))
                (s, b), mem = peak_of(pid, lambda: curl(q, arrow_body, ["Accept-Encoding: zstd"]))
                add("arrow zstd", s), add("arrow zstd bytes", b), add("arrow zstd mem", mem)
                s, b = curl(q, nd_body)
                add("ndjson", s), add("ndjson bytes", b)
                s, b = curl(q, nd_body, ["Accept-Encoding: zstd"])
                add("ndjson zstd", s), add("ndjson zstd bytes", b)
                (s, b), mem = peak_of(pid, lambda: curl(mq, mosaic_body))
                add("gw mosaic", s), add("gw mosaic bytes", b), add("gw mosaic mem", mem)
                add("gw mosaic first", first_batch(mq, mosaic_body))
                (s, b), mem = peak_of(mosaic.proc.pid, lambda: curl(ds, mosaic_body))
                add("ds", s), add("ds bytes", b), add("ds mem", mem)
                add("ds first", first_batch(ds, mosaic_body))
            dash = {}
            for sql in DASHBOARD:
                body = json.dumps({"type": "arrow", "sql": sql})
                # The first request of each runs the query (duckstream's cache would answer
                # repeats): count only the first, then the repeats separately.
                dash[sql] = {"gw": curl(mq, body)[0], "ds": curl(ds, body)[0],
                             "gw again": med([curl(mq, body)[0] for _ in range(o.repeat)]),
                             "ds again": med([curl(ds, body)[0] for _ in range(o.repeat)])}
    finally:
        mosaic.close()
        shutil.rmtree(scratch)

    def rate(key):
        return ROWS / med(t[key]) / 1e6

    alone = rate("duckdb")
    print(f"10M-row scan, medians of {o.repeat}, interleaved\n")
    print("| | total | rows/s | vs DuckDB's IPC | first batch | bytes | peak RSS above the server's |")
    print("|---|---|---|---|---|---|---|")

    def row(name, key, first=None, mem=None):
        r = rate(key)
        f = f"{med(t[first]) * 1000:.1f} ms" if first else ""
        m = f"{med(t[mem]):.0f} MiB" if mem else ""
        print(f"| {name} | {med(t[key]):.2f} s | {r:.2f} M | {r / alone:.2f}× | {f} | {med(t[key + ' bytes']) / 1e6:.0f} MB | {m} |")

    row("DuckDB alone, in-process IPC writer", "duckdb", "duckdb first")
    row("duckstream `format: arrow`", "arrow", "arrow first", "arrow mem")
    row("duckstream `format: arrow`, zstd", "arrow zstd", None, "arrow zstd mem")
    row("duckstream NDJSON", "ndjson")
    row("duckstream NDJSON, zstd", "ndjson zstd")
    row("duckstream Mosaic endpoint (REST)", "gw mosaic", "gw mosaic first", "gw mosaic mem")
    row("Mosaic duckdb-server 0.34.2", "ds", "ds first", "ds mem")
    ratio = med(t["arrow zstd bytes"]) / med(t["ndjson zstd bytes"])
    print(f"\nArrow zstd bytes / NDJSON zstd bytes: {ratio:.2f}")
    print("\nThe example dashboard's first render, each query once (then its repeats' median):\n")
    print("| query | duckstream Mosaic endpoint | duckdb-server 0.34.2 | again: duckstream | again: duckdb-server |")
    print("|---|---|---|---|---|")
    for sql, d in dash.items():
        short = sql if len(sql) < 60 else sql[:57] + "…"
        print(f"| `{short}` | {d['gw'] * 1000:.0f} ms | {d['ds'] * 1000:.0f} ms | {d['gw again'] * 1000:.1f} ms | {d['ds again'] * 1000:.1f} ms |")
    tot = lambda k: sum(d[k] for d in dash.values()) * 1000
    print(f"| **all** | {tot('gw'):.0f} ms | {tot('ds'):.0f} ms | {tot('gw again'):.1f} ms | {tot('ds again'):.1f} ms |")


if __name__ == "__main__":
    main()
