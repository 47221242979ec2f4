#!/usr/bin/env python3
"""Time to first data on the 10M-row scan over HTTP: for each binary, the first body byte and
the first `data` line of `SELECT * FROM parcels` (a new connection per request, closed once the
data line is in), of the same scan under a new text each time, and of `SELECT 1`; binaries are run one after the other, rounds interleaved.

    ~/.cache/duckstream-bench/.venv/bin/python scripts/bench/bench_first.py BINARY [BINARY...] [--n 21]
"""
import argparse
import json
import socket
import statistics
import time

from benchlib import gateway

# "scan, new text": the same scan under a text never seen before (a comment that counts up),
# so nothing kept by SQL text helps it: not the prepared statement, not the tables-read memo.
QUERIES = {"scan": "SELECT * FROM parcels", "scan, new text": "SELECT * FROM parcels -- {n}",
           "select 1": "SELECT 1"}


def first(port, sql):
    body = json.dumps({"sql": sql}).encode()
    req = (f"POST /v1/bench/query HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body
    with socket.create_connection(("127.0.0.1", port)) as s:
        t0 = time.perf_counter()
        s.sendall(req)
        buf, t_body = b"", None
        while True:
            data = s.recv(65536)
            if not data:
                raise RuntimeError("closed before a data line")
            buf += data
            end = buf.find(b"\r\n\r\n")
            if end >= 0 and len(buf) > end + 4 and t_body is None:
                t_body = time.perf_counter() - t0
            if end >= 0 and b'{"type":"data"' in buf[end:]:
                return t_body * 1000, (time.perf_counter() - t0) * 1000


def main():
    p = argparse.ArgumentParser()
    p.add_argument("bins", nargs="+")
    p.add_argument("--db", default="/tmp/bench/bench.duckdb")
    p.add_argument("--n", type=int, default=21)
    o = p.parse_args()
    res = {}
    for _ in range(3):
        for b in o.bins:
            with gateway(b, o.db) as (port, pid):
                first(port, "SELECT 1")  # the tenant's database opens
                for name, sql in QUERIES.items():
                    for i in range(o.n // 3):
                        text = sql.format(n=f"{time.time_ns()}-{i}")
                        res.setdefault((b, name), []).append(first(port, text))
                        time.sleep(0.02)
    print("| binary | query | first body byte p50 ms | first data line p50 ms | min |")
    print("|---|---|---|---|---|")
    for (b, name), xs in res.items():
        body = statistics.median(x[0] for x in xs)
        data = statistics.median(x[1] for x in xs)
        print(f"| {b} | {name} | {body:.2f} | {data:.2f} | {min(x[1] for x in xs):.2f} |")


if __name__ == "__main__":
    main()
