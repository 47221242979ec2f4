#!/usr/bin/env python3
"""First data for small queries while many long streams run: --streams clients (a third each
HTTP zstd, SSE zstd, WebSocket zstd) stream `SELECT * FROM parcels` (10M rows), reading
--read bytes a second each; once they all stream, --small clients (half HTTP, half on a
WebSocket each) run a small query --samples times each and time its first data line.

Prints the small queries' first data p50 / p95 / p99 / max per transport, and what failed.

    ~/.cache/duckstream-bench/.venv/bin/python scripts/bench/bench_short.py --bin BINARY --streams 500
    ... -- --pool-size 8         # gateway flags after --
"""
import argparse
import asyncio
import json
import subprocess
import sys
import time

import aiohttp
import websockets

from benchlib import DEFAULT_BIN, gateway

from bench_streams import http_stream, ws_stream

SMALL = "SELECT * FROM parcels LIMIT 10"


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


async def small_http(session, port, samples, out, errors):
    url = f"http://127.0.0.1:{port}/v1/bench/query"
    for _ in range(samples):
        t0 = time.monotonic()
        async with session.post(url, data=json.dumps({"sql": SMALL})) as resp:
            if resp.status != 200:
                errors.append(f"http {resp.status} {(await resp.text())[:80]}")
                continue
            async for line in resp.content:
                if line.startswith(b'{"type":"data"'):
                    out.append((time.monotonic() - t0) * 1000)
                    break
            await resp.read()
        await asyncio.sleep(0.05)


async def small_ws(port, samples, out, errors):
    async with websockets.connect(f"ws://127.0.0.1:{port}/v1/bench/ws?compression=none") as ws:
        for i in range(samples):
            t0 = time.monotonic()
            await ws.send(json.dumps({"type": "query", "id": f"s{i}", "sql": SMALL}))
            seen = False
            while True:
                msg = await ws.recv()
                if not seen and '"type":"data"' in msg:
                    out.append((time.monotonic() - t0) * 1000)
                    seen = True
                if '"type":"end"' in msg or '"type":"error"' in msg:
                    if '"type":"error"' in msg:
                        errors.append("ws " + msg[:80])
                    break
            await asyncio.sleep(0.05)


async def load(port, o):
    """The long streams, in a process of their own (so that their client's work does not
    delay the small queries' client): prints `streaming N` once they stream, then holds them
    until killed."""
    started, stop = [], asyncio.Event()
    conn = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout, auto_decompress=False) as s:
        kinds = o.kinds.split(",")
        streams = []
        for i in range(o.streams):
            kind = kinds[i % len(kinds)]
            if kind == "ws":
                streams.append(asyncio.create_task(ws_stream(port, o.read, started, stop)))
            else:
                path = "query" if kind == "http" else "sse"
                streams.append(asyncio.create_task(http_stream(s, port, o.read, started, stop, path)))
            if i % 50 == 49:
                await asyncio.sleep(0.05)
        t0 = time.monotonic()
        while len(started) < o.streams and time.monotonic() - t0 < 120:
            await asyncio.sleep(0.5)
        print(f"streaming {len(started)}", flush=True)
        done = await asyncio.gather(*streams, return_exceptions=True)
        failed = [d for d in done if isinstance(d, str)]
        print(f"failed {len(failed)} {failed[:3]}", flush=True)


async def small(port, o):
    http_ms, ws_ms, errors = [], [], []
    async with aiohttp.ClientSession() as s:
        smalls = []
        for i in range(o.small):
            if i % 2 == 0:
                smalls.append(small_http(s, port, o.samples, http_ms, errors))
            else:
                smalls.append(small_ws(port, o.samples, ws_ms, errors))
        await asyncio.gather(*smalls, return_exceptions=True)
    return http_ms, ws_ms, errors


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default=DEFAULT_BIN)
    p.add_argument("--db", default="/tmp/bench/bench.duckdb")
    p.add_argument("--streams", type=int, default=500)
    p.add_argument("--read", type=int, default=65536, help="bytes each stream reads per second")
    p.add_argument("--kinds", default="http,sse,ws", help="the long streams' transports, in turn")
    p.add_argument("--small", type=int, default=20)
    p.add_argument("--samples", type=int, default=20)
    p.add_argument("extra", nargs="*")
    p.add_argument("--load-port", type=int, help=argparse.SUPPRESS)
    o = p.parse_args()
    if o.load_port:
        asyncio.run(load(o.load_port, o))
        return
    with gateway(o.bin, o.db, o.extra) as (port, pid):
        streams = subprocess.Popen(
            [sys.executable, __file__, "--load-port", str(port), "--streams", str(o.streams),
             "--read", str(o.read), "--kinds", o.kinds], stdout=subprocess.PIPE, text=True)
        running = streams.stdout.readline().strip()
        http_ms, ws_ms, errors = asyncio.run(small(port, o))
        alive = streams.poll() is None
        streams.kill()
        rest = streams.stdout.read().strip()
    print(f"long streams: {running} of {o.streams} ({'all still open' if alive else rest})")
    print("| small query | n | first data p50 ms | p95 | p99 | max |")
    print("|---|---|---|---|---|---|")
    for name, xs in (("HTTP", http_ms), ("WebSocket", ws_ms)):
        if xs:
            print(f"| {name} | {len(xs)} | {pct(xs, 50):.1f} | {pct(xs, 95):.1f} | {pct(xs, 99):.1f} | {max(xs):.1f} |")
    if errors:
        print(f"small queries failed: {len(errors)}, e.g. {errors[:3]}")


if __name__ == "__main__":
    main()
