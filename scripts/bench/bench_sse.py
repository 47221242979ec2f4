#!/usr/bin/env python3
"""duckstream over SSE beside HTTP NDJSON, same server, same query, curl as the client.

For each transport and encoding: time to the first `data` event (or line), total time, rows/s,
bytes on the wire, and the server's peak RSS (VmHWM, reset before each request). Medians of
--repeat runs.

Usage: ~/.cache/duckstream-bench/.venv/bin/python scripts/bench/bench_sse.py --bin target/release/duckstream --db /tmp/bench/bench.duckdb [--repeat 3]
"""
import argparse
import socket
import statistics
import subprocess
import time
import urllib.parse

import zstandard

from benchlib import gateway, reset_peak, status


SQL = "SELECT * FROM parcels"
ROWS = 10_000_000




def first_data(port, path, zstd):
    """Seconds until the first data event/line is readable (decoded), then hang up."""
    s = socket.create_connection(("127.0.0.1", port))
    enc = "Accept-Encoding: zstd\r\n" if zstd else ""
    t0 = time.perf_counter()
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{enc}Connection: close\r\n\r\n".encode())
    buf = b""
    dec = zstandard.ZstdDecompressor().decompressobj() if zstd else None
    body = b""
    while True:
        data = s.recv(65536)
        if not data:
            raise RuntimeError("closed early")
        buf += data
        head_end = buf.find(b"\r\n\r\n")
        if head_end < 0:
            continue
        raw = buf[head_end + 4:]
        # chunked transfer: good enough to look for the marker in the de-chunked prefix
        chunks, rest = b"", raw
        while True:
            nl = rest.find(b"\r\n")
            if nl < 0:
                break
            size = int(rest[:nl], 16)
            if len(rest) < nl + 2 + size:
                break
            chunks += rest[nl + 2:nl + 2 + size]
            rest = rest[nl + 2 + size + 2:]
        body = dec.decompress(chunks) if dec else chunks
        if dec:
            dec = zstandard.ZstdDecompressor().decompressobj()
        if b'"type":"data"' in body:
            t = time.perf_counter() - t0
            s.close()
            return t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--db", default="/tmp/bench/bench.duckdb")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    with gateway(a.bin, a.db) as (port, pid):
        q = urllib.parse.quote(SQL)
        paths = {"http": f"/v1/bench/query?sql={q}", "sse": f"/v1/bench/sse?sql={q}"}
        base = f"http://127.0.0.1:{port}"
        subprocess.run(["curl", "-sS", "-o", "/dev/null", base + paths["http"]], check=True)  # warm up
        print("| transport | encoding | first data ms | total s | rows/s | MB on the wire | peak RSS MiB (before) |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for transport in ("http", "sse"):
            for enc in ("identity", "zstd"):
                firsts, totals, sizes, peaks, befores = [], [], [], [], []
                for _ in range(a.repeat):
                    firsts.append(first_data(port, paths[transport], enc == "zstd"))
                    time.sleep(0.5)
                    reset_peak(pid)
                    befores.append(status(pid, "VmRSS"))
                    hdr = ["-H", "Accept-Encoding: zstd"] if enc == "zstd" else []
                    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{time_total} %{size_download}",
                                          *hdr, base + paths[transport]], check=True, capture_output=True, text=True).stdout
                    t, n = out.split()
                    totals.append(float(t))
                    sizes.append(int(n))
                    peaks.append(status(pid, "VmHWM"))
                med = statistics.median
                print(f"| {transport} | {enc} | {med(firsts) * 1000:.1f} | {med(totals):.2f} | "
                      f"{ROWS / med(totals) / 1e6:.2f} M | {med(sizes) / 1e6:,.0f} | {med(peaks):.0f} ({med(befores):.0f}) |",
                      flush=True)


if __name__ == "__main__":
    main()
