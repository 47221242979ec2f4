#!/usr/bin/env python3
"""Upload speed and memory: a 10M-row CSV (~1 GB) PUT to duckstream beside DuckDB's own
`CREATE TABLE … AS FROM read_csv(…)` on the same file, side by side, interleaved; and the
gateway's peak RSS above idle during the upload (VmHWM, reset before each).

    ~/.cache/duckstream-bench/.venv/bin/python scripts/bench/bench_upload.py \\
        --bin target/release/duckstream --repeat 3 --copies 1,5
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import duckdb

from benchlib import DEFAULT_BIN, gateway, reset_peak, status


def csv_of(base, copies):
    """`base` repeated `copies` times under one header (a 1 GB and a 5 GB body of the same rows)."""
    if copies == 1:
        return base
    path = base.replace(".csv", f"_x{copies}.csv")
    if not os.path.exists(path):
        with open(path + ".part", "wb") as out, open(base, "rb") as f:
            header = f.readline()
            out.write(header)
            for _ in range(copies):
                f.seek(len(header))
                while chunk := f.read(1 << 24):
                    out.write(chunk)
        os.replace(path + ".part", path)
    return path


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default=DEFAULT_BIN)
    p.add_argument("--src", default="/tmp/bench/bench.duckdb")
    p.add_argument("--csv", default="/tmp/bench/parcels.csv")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--copies", default="1,5", help="bodies of N copies of the 10M rows")
    o = p.parse_args()
    if not os.path.exists(o.csv):
        c = duckdb.connect(o.src, read_only=True)
        c.execute(f"COPY parcels TO '{o.csv}.part' (HEADER)")
        c.close()
        os.replace(o.csv + ".part", o.csv)
    data = tempfile.mkdtemp()
    # An empty tenant to upload into.
    duckdb.connect(os.path.join(data, "up.duckdb")).close()
    print("| body | DuckDB CTAS read_csv | duckstream PUT | ratio | peak RSS above idle: DuckDB alone | duckstream |")
    print("|---|---|---|---|---|---|")
    with gateway(o.bin, data=data) as (port, pid):
        base = f"http://127.0.0.1:{port}/v1/up/datasets/parcels"
        # Warm: the tenant's database is open (and its extensions loaded) before idle is read.
        urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/up/query?sql=SELECT%201").read()
        for copies in map(int, o.copies.split(",")):
            path = csv_of(o.csv, copies)
            size = os.path.getsize(path)
            t_gw, t_db, peaks, db_peaks = [], [], [], []
            for _ in range(o.repeat):
                # Each load into an empty place, as DuckDB alone gets a new database.
                urllib.request.urlopen(urllib.request.Request(base, method="DELETE")).read() \
                    if t_gw else None
                idle = status(pid, "VmRSS")
                reset_peak(pid)
                t = time.perf_counter()
                out = subprocess.run(["curl", "-sS", "-T", path, "-o", "/dev/null", "-w", "%{http_code}",
                                      f"{base}?format=csv"], check=True, capture_output=True, text=True)
                assert out.stdout == "200", out
                t_gw.append(time.perf_counter() - t)
                peaks.append(status(pid, "VmHWM") - idle)
                # DuckDB alone, in a process of its own so that its peak RSS is its own.
                alone = os.path.join(tempfile.mkdtemp(), "alone.duckdb")
                script = ("import duckdb, resource, sys, time\n"
                          "c = duckdb.connect(sys.argv[1]); c.execute('SET enable_progress_bar = false'); base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
                          "t = time.perf_counter()\n"
                          f"c.execute(\"CREATE TABLE parcels AS FROM read_csv('{path}')\")\n"
                          "print(time.perf_counter() - t, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)\n")
                out = subprocess.run([sys.executable, "-c", script, alone], check=True, capture_output=True, text=True)
                dt, peak = map(float, out.stdout.strip().splitlines()[-1].split())
                t_db.append(dt)
                db_peaks.append(peak)
                os.remove(alone)
            urllib.request.urlopen(urllib.request.Request(base, method="DELETE")).read()
            gw, db = statistics.median(t_gw), statistics.median(t_db)
            print(f"| {copies * 10}M rows, {size / 2**20:.0f} MiB CSV | {db:.2f} s ({size / db / 2**20:.0f} MiB/s) | "
                  f"{gw:.2f} s ({size / gw / 2**20:.0f} MiB/s) | {db / gw:.2f}× | {max(db_peaks):.0f} MiB | "
                  f"{max(peaks):.0f} MiB |", flush=True)


if __name__ == "__main__":
    main()
