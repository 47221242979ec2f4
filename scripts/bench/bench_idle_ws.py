#!/usr/bin/env python3
"""Idle WebSockets: opens N connections to one tenant (client sockets bound across
127.0.0.2…127.0.0.254, so that more than one port range of source ports is available), reads
the gateway's RSS, then asks every connection a query and checks every answer.

    ~/.cache/duckstream-bench/.venv/bin/python scripts/bench/bench_idle_ws.py --bin BINARY --n 9000

Limits: each side needs N file descriptors (`ulimit -n`, raised to the hard limit by the
gateway itself; this script raises its own), and the kernel's `fs.nr_open` / `fs.file-max`
above that. 50,000 needs a hard limit above 50,300 for the gateway (`LimitNOFILE=` in systemd,
`ulimits: nofile:` in compose) and `net.core.somaxconn` ≥ 4096 for bursts of connects.
"""
import argparse
import asyncio
import json
import resource
import time

import websockets

from benchlib import DEFAULT_BIN, gateway, status


async def run(port, pid, n):
    base = status(pid, "VmRSS")
    socks = []
    t0 = time.monotonic()
    for i in range(n):
        host = f"127.0.0.{2 + i % 253}"
        ws = await websockets.connect(f"ws://127.0.0.1:{port}/v1/bench/ws?compression=none",
                                      local_addr=(host, 0), ping_interval=None, max_queue=4)
        socks.append(ws)
    opened = time.monotonic() - t0
    await asyncio.sleep(3)
    idle = status(pid, "VmRSS")

    async def ask(i, ws):
        await ws.send(json.dumps({"type": "query", "id": f"q{i}", "sql": f"SELECT {i % 1000} AS v"}))
        while True:
            msg = await ws.recv()
            if '"type":"end"' in msg:
                return True
            if '"type":"error"' in msg:
                return False

    answered = 0
    t1 = time.monotonic()
    # 50 at a time: the tenant runs 8 and queues 64 (more would be `too_busy`, as it should).
    for start in range(0, n, 50):
        batch = await asyncio.gather(*(ask(i, ws) for i, ws in enumerate(socks[start:start + 50], start)))
        answered += sum(batch)
    asked = time.monotonic() - t1
    peak = status(pid, "VmHWM")
    for ws in socks:
        ws.transport.abort()
    return base, idle, peak, opened, answered, asked


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default=DEFAULT_BIN)
    p.add_argument("--db", default="/tmp/bench/bench.duckdb")
    p.add_argument("--n", type=int, default=9000)
    p.add_argument("extra", nargs="*")
    o = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    flags = ["--max-streams-per-tenant", str(o.n + 100), *o.extra]
    with gateway(o.bin, o.db, flags) as (port, pid):
        base, idle, peak, opened, answered, asked = asyncio.run(run(port, pid, o.n))
    print(f"| {o.n} | {base:.0f} | {idle:.0f} | {(idle - base) * 1024 / o.n:.1f} | {answered} | {peak:.0f} | {opened:.1f} | {asked:.1f} |")


if __name__ == "__main__":
    main()
