#!/usr/bin/env python3
"""Splits a heaptrack recording's peak heap into where it went, by the call stacks that
allocated it: DuckDB's streaming buffer, DuckDB's other state, zstd contexts, the encoded lines
and compressed chunks waiting in channels, actix's HTTP and WebSocket buffers, the rest.

    heaptrack_print -f /tmp/ht.zst -F /tmp/ht.flame --flamegraph-cost-type peak --print-peaks 0 \
        --print-allocators 0 --print-temporary 0 --print-leaks 0
    python3 scripts/bench/heap_breakdown.py /tmp/ht.flame [--streams 100]

The first category whose key occurs in a stack takes it (most specific first).
"""
import argparse
import collections

CATEGORIES = [
    ("zstd contexts", ("ZSTD_",)),
    ("DuckDB streaming buffer (SimpleBufferedData)", ("SimpleBufferedData",)),
    ("DuckDB, opening databases", ("duckdb_open", "DBInstanceCache", "DatabaseInstance::Initialize")),
    ("DuckDB query state (plans, scans, chunks)", ("duckdb::",)),
    ("compressed chunks (compress.rs)", ("(compress.rs)",)),
    ("encoded lines (executor / encoders)", ("(executor.rs)", "engine::executor::", "(ndjson.rs)", "(csv.rs)", "(arrow.rs)")),
    ("WebSocket transport (actix-ws, ws.rs)", ("actix_ws", "(ws.rs)", "(session.rs)")),
    ("HTTP transport (actix-http, body.rs, sse.rs)", ("actix_http", "(h1", "(body.rs)", "(sse.rs)", "(dispatcher.rs)")),
    ("tokio / actix runtimes", ("tokio", "actix_rt", "(system.rs)", "(arbiter.rs)")),
]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("flame")
    p.add_argument("--streams", type=int, default=0)
    o = p.parse_args()
    sums = collections.Counter()
    total = 0
    with open(o.flame) as f:
        for line in f:
            stack, _, cost = line.rstrip("\n").rpartition(" ")
            try:
                cost = int(cost)
            except ValueError:
                continue
            total += cost
            for name, keys in CATEGORIES:
                if any(k in stack for k in keys):
                    sums[name] += cost
                    break
            else:
                sums["other"] += cost
    mib = 1 << 20
    print("| where | MiB at peak |" + (" per stream (KiB) |" if o.streams else ""))
    print("|---|---|" + ("---|" if o.streams else ""))
    for name, _ in CATEGORIES + [("other", ())]:
        v = sums[name]
        row = f"| {name} | {v / mib:.1f} |"
        if o.streams:
            row += f" {v / 1024 / o.streams:.0f} |"
        print(row)
    print(f"| **heap at peak** | **{total / mib:.1f}** |" + (f" {total / 1024 / o.streams:.0f} |" if o.streams else ""))


if __name__ == "__main__":
    main()
