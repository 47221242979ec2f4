#!/usr/bin/env python3
"""Where the gateway's memory goes with many queries at once: N clients run `SELECT * FROM
parcels` (10M rows) at the same time over HTTP (curl, reading at --rate) or WebSocket (reading
as fast as Python can, or not at all with --stalled); prints the base and peak RSS and the
cost per client.

    ~/.cache/duckstream-bench/.venv/bin/python scripts/bench/bench_mem.py --transport http --n 64 [--zstd]
    ~/.cache/duckstream-bench/.venv/bin/python scripts/bench/bench_mem.py --transport ws --n 200 [--stalled]
Extra gateway flags after `--` (default here: --pool-size 32 --executor-threads 1024, as load-tests/run.sh).
"""
import argparse
import asyncio
import json
import subprocess
import time

from benchlib import DEFAULT_BIN, gateway, status


def watch(pid, seconds):
    peak = 0
    for _ in range(seconds):
        time.sleep(1)
        peak = max(peak, status(pid, "VmRSS"))
    return peak


async def ws_clients(port, n, stalled, seconds, pid):
    import websockets
    socks = []
    for _ in range(n):
        ws = await websockets.connect(f"ws://127.0.0.1:{port}/v1/bench/ws", max_size=None, max_queue=1)
        await ws.send(json.dumps({"type": "query", "id": "q", "sql": "SELECT * FROM parcels"}))
        socks.append(ws)

    async def drain(ws):
        try:
            async for _ in ws:
                pass
        except Exception:
            pass

    tasks = [] if stalled else [asyncio.create_task(drain(ws)) for ws in socks]
    peak = 0
    for _ in range(seconds):
        await asyncio.sleep(1)
        peak = max(peak, status(pid, "VmRSS"))
    for t in tasks:
        t.cancel()
    for ws in socks:
        ws.transport.abort()
    return peak


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default=DEFAULT_BIN)
    p.add_argument("--db", default="/tmp/bench/bench.duckdb")
    p.add_argument("--transport", choices=["http", "ws"], default="http")
    p.add_argument("--n", type=int, default=32)
    p.add_argument("--zstd", action="store_true")
    p.add_argument("--stalled", action="store_true")
    p.add_argument("--rate", default="200k")
    p.add_argument("--seconds", type=int, default=15)
    p.add_argument("extra", nargs="*")
    o = p.parse_args()
    with gateway(o.bin, o.db, ["--pool-size", "32", "--executor-threads", "1024", *o.extra]) as (port, pid):
        base = status(pid, "VmRSS")
        if o.transport == "http":
            curls = []
            for _ in range(o.n):
                args = ["curl", "-sS", "-o", "/dev/null", "--limit-rate", o.rate,
                        f"http://127.0.0.1:{port}/v1/bench/query", "--data-binary", '{"sql":"SELECT * FROM parcels"}']
                if o.zstd:
                    args[1:1] = ["-H", "Accept-Encoding: zstd"]
                curls.append(subprocess.Popen(args))
            peak = watch(pid, o.seconds)
            for c in curls:
                c.kill()
        else:
            peak = asyncio.run(ws_clients(port, o.n, o.stalled, o.seconds, pid))
        what = f"{o.transport} n={o.n}" + (" zstd" if o.zstd else "") + (" stalled" if o.stalled else "")
        print(f"| {what} | {base:.0f} | {peak:.0f} | {(peak - base) / o.n:.1f} |")


if __name__ == "__main__":
    main()
