#!/usr/bin/env python3
"""duckstream over WebSocket: one socket streaming a query, and N sockets at once.

For each case: time to the first data frame, total time, rows/s, bytes on the wire (WebSocket
payload bytes received) and the server's peak RSS (VmHWM, reset before each case). Every zstd
frame is decoded with a fresh decoder, and the rows of the `end` line are checked.

Usage: ~/.cache/duckstream-bench/.venv/bin/python scripts/bench/bench_ws.py --bin target/release/duckstream --db /tmp/bench/bench.duckdb [--sockets 8] [-- GATEWAY FLAGS]
Needs the bench venv (websockets, zstandard): ~/.cache/duckstream-bench/.venv/bin/python
"""
import argparse
import asyncio
import json
import time

import websockets
import zstandard

from benchlib import gateway, reset_peak, status


QUERIES = {"Q1": "SELECT * FROM parcels LIMIT 1000000", "Q2": "SELECT * FROM parcels"}




async def one(url, sql, qid, compression):
    dctx = zstandard.ZstdDecompressor()
    t0 = time.perf_counter()
    first = None
    wire = 0
    rows = None
    async with websockets.connect(url, max_size=None, compression=None) as ws:
        await ws.send(json.dumps({"type": "query", "id": qid, "sql": sql, "chunk_rows": 1000}))
        async for msg in ws:
            wire += len(msg)
            text = dctx.decompress(msg) if compression == "zstd" else msg.encode()
            if first is None and b'"type":"data"' in text[:64 * 1024]:
                first = time.perf_counter() - t0
            tail = text[-300:]
            if b'"type":"end"' in tail or b'"type":"error"' in tail:
                last = json.loads(text.splitlines()[-1])
                if last["type"] == "error":
                    raise RuntimeError(last)
                rows = last["rows"]
                break
    return first, time.perf_counter() - t0, wire, rows


async def case(port, pid, label, sql, sockets, compression):
    url = f"ws://127.0.0.1:{port}/v1/bench/ws?compression={compression}"
    reset_peak(pid)
    idle = status(pid, "VmRSS")
    t0 = time.perf_counter()
    results = await asyncio.gather(*(one(url, sql, f"s{i}", compression) for i in range(sockets)))
    wall = time.perf_counter() - t0
    peak = status(pid, "VmHWM")
    rows = sum(r[3] for r in results)
    firsts = sorted(r[0] for r in results)
    wire = sum(r[2] for r in results)
    print(f"| {label} | {sockets} | {compression} | {firsts[0] * 1000:.1f} / {firsts[-1] * 1000:.1f} | "
          f"{wall:.2f} | {rows / wall / 1e6:.2f} M | {wire / 1e6:,.0f} | {idle:.0f} | {peak:.0f} |", flush=True)


async def main_async(a, port, pid):
    # Warm up: open the database and read the table once.
    await one(f"ws://127.0.0.1:{port}/v1/bench/ws?compression=zstd", QUERIES["Q2"], "warm", "zstd")
    print("| query | sockets | compression | first data frame ms (min / max) | wall s | rows/s (all sockets) | MB on the wire | RSS before MiB | peak RSS MiB |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for _ in range(a.repeat):
        await case(port, pid, "Q2", QUERIES["Q2"], 1, "zstd")
        await case(port, pid, "Q2", QUERIES["Q2"], 1, "none")
        await case(port, pid, "Q1", QUERIES["Q1"], a.sockets, "zstd")
        await case(port, pid, "Q2", QUERIES["Q2"], a.sockets, "zstd")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--db", default="/tmp/bench/bench.duckdb")
    ap.add_argument("--sockets", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("extra", nargs="*", help="gateway flags, after --")
    a = ap.parse_args()
    with gateway(a.bin, a.db, a.extra) as (port, pid):
        asyncio.run(main_async(a, port, pid))


if __name__ == "__main__":
    main()
