#!/usr/bin/env python3
"""The round trip of a tiny query the result cache never keeps (it calls `random()`), on one
keep-alive HTTP connection: what the gateway adds to a query that DuckDB answers at once
(admission, the read-only transaction, prepare, the response). Each binary in turn, 3
interleaved rounds of 300 queries after 30 to warm up; prints p50 and p90.

    ~/.cache/duckstream-bench/.venv/bin/python scripts/bench/bench_tiny.py BINARY [BINARY...]
"""
import http.client
import json
import statistics
import sys
import time

from benchlib import gateway

SQL = "SELECT i FROM range(100) t(i) WHERE i > random() * 10"


def main():
    res = {}
    for _ in range(3):
        for b in sys.argv[1:]:
            with gateway(b, "/tmp/bench/bench.duckdb") as (port, _pid):
                c = http.client.HTTPConnection("127.0.0.1", port)
                body = json.dumps({"sql": SQL})
                for i in range(330):
                    t0 = time.perf_counter()
                    c.request("POST", "/v1/bench/query", body)
                    resp = c.getresponse()
                    data = resp.read()
                    if resp.status != 200 or b'"end"' not in data:
                        raise RuntimeError(f"{resp.status}: {data[:200]!r}")
                    if i >= 30:
                        res.setdefault(b, []).append((time.perf_counter() - t0) * 1000)
    print("| binary | p50 ms | p90 ms |")
    print("|---|---|---|")
    for b, xs in res.items():
        xs.sort()
        print(f"| {b} | {statistics.median(xs):.3f} | {xs[int(len(xs) * 0.9)]:.3f} |")


if __name__ == "__main__":
    main()
