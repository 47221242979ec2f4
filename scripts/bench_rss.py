#!/usr/bin/env python3
"""duckstream's streaming memory and speed at 10M and 100M rows (zstd on and off).

Starts the release binary on a scratch data dir that links the benchmark database as tenant
`bench`, then for each case: reads the idle RSS, resets the peak (/proc/PID/clear_refs), streams
the query with curl to /dev/null, and reads the peak (VmHWM). Prints a markdown table.

Usage: bench_rss.py --bin target/release/duckstream --db /tmp/bench/bench.duckdb
"""
import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

CASES = [
    ("10M", "SELECT * FROM parcels"),
    ("100M", "SELECT p.* FROM parcels p, range(10) r"),
]


def status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024  # MiB
    return float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--db", default="/tmp/bench/bench.duckdb")
    a = ap.parse_args()
    data = tempfile.mkdtemp()
    os.symlink(os.path.abspath(a.db), os.path.join(data, "bench.duckdb"))
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    proc = subprocess.Popen(
        [a.bin, "--bind", f"127.0.0.1:{port}", "--data-dir", data, "--demo", "false"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz")
                break
            except OSError:
                time.sleep(0.1)
        url = f"http://127.0.0.1:{port}/v1/bench/query"
        # Warm up: open the database, fault in the page cache.
        subprocess.run(["curl", "-sS", "-o", "/dev/null", url, "-d", '{"sql": "SELECT count(*) FROM parcels"}'], check=True)
        print("| rows | encoding | total s | rows/s | MB on the wire | idle RSS MiB | peak RSS MiB | overhead MiB |")
        print("|---|---|---:|---:|---:|---:|---:|---:|")
        for label, sql in CASES:
            rows = 10_000_000 if label == "10M" else 100_000_000
            for enc in ("identity", "zstd"):
                idle = status(proc.pid, "VmRSS")
                with open(f"/proc/{proc.pid}/clear_refs", "w") as f:
                    f.write("5")
                hdr = ["-H", "Accept-Encoding: zstd"] if enc == "zstd" else []
                t0 = time.perf_counter()
                out = subprocess.run(
                    ["curl", "-sS", "-o", "/dev/null", "-w", "%{size_download}", url, *hdr,
                     "-d", '{"sql": "%s", "chunk_rows": 1000}' % sql],
                    check=True, capture_output=True, text=True).stdout
                total = time.perf_counter() - t0
                peak = status(proc.pid, "VmHWM")
                print(f"| {label} | {enc} | {total:.2f} | {rows / total / 1e6:.2f} M | "
                      f"{int(out) / 1e6:,.0f} | {idle:.0f} | {peak:.0f} | {peak - idle:.0f} |", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
