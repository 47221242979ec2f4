#!/usr/bin/env python3
"""Unchanged data on an interval: one WebSocket subscription with `interval_ms` 1000 over a
10,000-row table nobody writes, for --seconds (default 600). Counts what the gateway pushed:
data bytes (every line but heartbeats and the acknowledgement), heartbeat bytes, and the
DuckDB executions it ran meanwhile (`duckstream_duckdb_executions_total`). Aim: 0 data bytes.

    ~/.cache/duckstream-bench/.venv/bin/python scripts/bench/bench_quiet.py --bin target/release/duckstream --seconds 600

Needs the bench venv with websockets (pip install websockets).
"""
import argparse
import asyncio
import json
import os
import tempfile
import time
import urllib.request

import duckdb
import websockets

from benchlib import DEFAULT_BIN, gateway


def executions(port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    for line in text.splitlines():
        if line.startswith("duckstream_duckdb_executions_total "):
            return float(line.split()[1])
    return float("nan")


async def watch(port, seconds):
    url = f"ws://127.0.0.1:{port}/v1/t/ws?compression=none"
    sql = "SELECT count(*), sum(v) FROM panel"
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"type": "subscribe", "id": "p", "sql": sql, "interval_ms": 1000}))
        # The first result.
        while True:
            msg = await asyncio.wait_for(ws.recv(), 30)
            if '"type":"end"' in msg:
                break
        before = executions(port)
        data, beats, updates = 0, 0, 0
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = await asyncio.wait_for(ws.recv(), left)
            except asyncio.TimeoutError:
                break
            for line in msg.splitlines():
                kind = json.loads(line)["type"]
                if kind == "heartbeat":
                    beats += len(line) + 1
                else:
                    data += len(line) + 1
                    updates += kind == "update"
        return data, beats, updates, executions(port) - before


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default=DEFAULT_BIN)
    p.add_argument("--seconds", type=float, default=600)
    o = p.parse_args()
    data_dir = tempfile.mkdtemp()
    c = duckdb.connect(os.path.join(data_dir, "t.duckdb"))
    c.execute("CREATE TABLE panel AS SELECT range AS id, range * 0.5 AS v FROM range(10000)")
    c.close()
    with gateway(o.bin, data=data_dir, extra=("--min-interval-ms", "1000")) as (port, _pid):
        data, beats, updates, runs = asyncio.run(watch(port, o.seconds))
    print("| unchanged for | interval | DuckDB re-runs | results pushed | data bytes pushed | heartbeat bytes |")
    print("|---|---|---|---|---|---|")
    print(f"| {o.seconds:.0f} s | 1 s | {runs:.0f} | {updates} | {data} | {beats} |")


if __name__ == "__main__":
    main()
