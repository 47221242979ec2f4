#!/usr/bin/env python3
"""Memory per stream with many streams at once: N clients, a third each HTTP with zstd, SSE
with zstd and WebSocket with zstd, all running `SELECT * FROM parcels` (10M rows) at the same
time and reading slowly (--read bytes every second), so every stream's pipeline is full. The
gateway runs with --pool-size N, so every query runs in DuckDB at once (none waits).

Prints one table row: streams, streams running, idle RSS, RSS after one whole scan (DuckDB's
buffer pool warm), peak RSS, MiB per stream above idle and above warm, threads.

    ~/.cache/duckstream-bench/.venv/bin/python scripts/bench/bench_streams.py --bin BINARY --n 500
    ... --heaptrack /tmp/ht    # runs the gateway under heaptrack (apt-get install heaptrack)

Needs open files for 2 × N sockets in this process and the gateway (ulimit -n).
"""
import argparse
import asyncio
import json
import os
import time

import aiohttp
import websockets

from benchlib import DEFAULT_BIN, gateway, status, timed_query

SQL = "SELECT * FROM parcels"


async def http_stream(session, port, read, started, stop, path):
    url = f"http://127.0.0.1:{port}/v1/bench/{path}"
    headers = {"accept-encoding": "zstd"}
    if path == "sse":
        headers["accept"] = "text/event-stream"
    async with session.get(url, params={"sql": SQL}, headers=headers) as resp:
        if resp.status != 200:
            return f"{path} {resp.status}"
        first = True
        while not stop.is_set():
            chunk = await resp.content.read(read)
            if not chunk:
                return f"{path} ended"
            if first:
                started.append(time.monotonic())
                first = False
            await asyncio.sleep(1)
    return None


async def ws_stream(port, read, started, stop):
    async with websockets.connect(f"ws://127.0.0.1:{port}/v1/bench/ws?compression=zstd",
                                  max_size=None, max_queue=1) as ws:
        await ws.send(json.dumps({"type": "query", "id": "q", "sql": SQL}))
        first = True
        while not stop.is_set():
            got = 0
            while got < read:
                msg = await ws.recv()
                got += len(msg)
                if isinstance(msg, str) and '"error"' in msg:
                    return "ws " + msg[:80]
            if first:
                started.append(time.monotonic())
                first = False
            await asyncio.sleep(1)
    return None


async def clients(port, pid, n, read, seconds):
    started, stop = [], asyncio.Event()
    conn = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout, auto_decompress=False) as s:
        tasks = []
        for i in range(n):
            kind = i % 3
            if kind == 0:
                tasks.append(asyncio.create_task(http_stream(s, port, read, started, stop, "query")))
            elif kind == 1:
                tasks.append(asyncio.create_task(http_stream(s, port, read, started, stop, "sse")))
            else:
                tasks.append(asyncio.create_task(ws_stream(port, read, started, stop)))
            if i % 50 == 49:
                await asyncio.sleep(0.05)
        t0 = time.monotonic()
        while len(started) < n and time.monotonic() - t0 < 120:
            await asyncio.sleep(0.5)
            if all(t.done() for t in tasks):
                break
        running = len(started)
        peak = 0.0
        for _ in range(seconds):
            await asyncio.sleep(1)
            peak = max(peak, status(pid, "VmRSS"))
        threads = status_int(pid, "Threads")
        stop.set()
        for t in tasks:
            t.cancel()
        done = await asyncio.gather(*tasks, return_exceptions=True)
        failed = [d for d in done if isinstance(d, str)]
        return running, peak, threads, failed


def status_int(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return -1


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default=DEFAULT_BIN)
    p.add_argument("--db", default="/tmp/bench/bench.duckdb")
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--read", type=int, default=16384, help="bytes each client reads per second")
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--heaptrack", help="run the gateway under heaptrack, output to this prefix")
    p.add_argument("extra", nargs="*")
    o = p.parse_args()
    flags = ["--pool-size", str(o.n), "--executor-threads", str(o.n + 16),
             *o.extra]
    wrapper = ["heaptrack", "-o", o.heaptrack] if o.heaptrack else []
    with gateway(o.bin, o.db, flags, wrapper=wrapper) as (port, pid):
        base = status(pid, "VmRSS")
        # One whole scan first: DuckDB's buffer pool then holds the table's blocks, which every
        # stream shares (a cache of the database, bounded by its size), so that what the
        # streams add above this is what each stream costs.
        timed_query(port, SQL)
        warm = status(pid, "VmRSS")
        running, peak, threads, failed = asyncio.run(clients(port, pid, o.n, o.read, o.seconds))
        print(f"| {o.n} | {running} | {base:.0f} | {warm:.0f} | {peak:.0f} | {(peak - base) / o.n:.2f} "
              f"| {(peak - warm) / o.n:.2f} | {threads} |")
        if failed:
            print(f"failed: {len(failed)}, e.g. {failed[:3]}")


if __name__ == "__main__":
    main()
