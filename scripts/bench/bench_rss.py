#!/usr/bin/env python3
"""duckstream's streaming memory and speed at 10M and 100M rows (zstd on and off).

Starts the release binary on a scratch data dir that links the benchmark database as tenant
`bench`, then for each case: reads the idle RSS, resets the peak (/proc/PID/clear_refs), streams
the query with curl to /dev/null, and reads the peak (VmHWM). Prints a markdown table.

Usage: python3 scripts/bench/bench_rss.py --bin target/release/duckstream --db /tmp/bench/bench.duckdb
"""
import argparse
import subprocess
import sys
import time

from benchlib import gateway, reset_peak, status


CASES = [
    ("10M", "SELECT * FROM parcels"),
    ("100M", "SELECT p.* FROM parcels p, range(10) r"),
]




def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--db", default="/tmp/bench/bench.duckdb")
    a = ap.parse_args()
    with gateway(a.bin, a.db) as (port, pid):
        url = f"http://127.0.0.1:{port}/v1/bench/query"
        # Warm up: open the database, fault in the page cache.
        subprocess.run(["curl", "-sS", "-o", "/dev/null", url, "-d", '{"sql": "SELECT count(*) FROM parcels"}'], check=True)
        print("| rows | encoding | total s | rows/s | MB on the wire | idle RSS MiB | peak RSS MiB | overhead MiB |")
        print("|---|---|---:|---:|---:|---:|---:|---:|")
        for label, sql in CASES:
            rows = 10_000_000 if label == "10M" else 100_000_000
            for enc in ("identity", "zstd"):
                idle = status(pid, "VmRSS")
                reset_peak(pid)
                hdr = ["-H", "Accept-Encoding: zstd"] if enc == "zstd" else []
                t0 = time.perf_counter()
                out = subprocess.run(
                    ["curl", "-sS", "-o", "/dev/null", "-w", "%{size_download}", url, *hdr,
                     "-d", '{"sql": "%s", "chunk_rows": 1000}' % sql],
                    check=True, capture_output=True, text=True).stdout
                total = time.perf_counter() - t0
                peak = status(pid, "VmHWM")
                print(f"| {label} | {enc} | {total:.2f} | {rows / total / 1e6:.2f} M | "
                      f"{int(out) / 1e6:,.0f} | {idle:.0f} | {peak:.0f} | {peak - idle:.0f} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
