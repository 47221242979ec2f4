#!/usr/bin/env python3
"""Live queries, the result cache, singleflight and DuckDB's progress bar, in one run, against
one gateway on a scratch data dir with a tenant `t` (`panel`: 10,000 rows; `other`) and a
tenant `b` (`big`: 20M rows), both created here with DuckDB.

1. Subscriptions: --sockets WebSockets × --subs subscriptions each, all to the same SQL; the
   DuckDB executions (`duckstream_duckdb_executions_total`) for the first result and per change
   of `panel` (a PUT), and the time from the PUT's response to each subscriber's `end` line;
   then a PUT to `other`, which subscribers must not hear of (nothing for 2 s, no execution).
2. Cache: `SELECT * FROM panel ORDER BY id` (10,000 rows, plain NDJSON) over GET, hits (the
   same SQL) beside misses (`LIMIT 10000+i`, a new SQL text, so a new cache key, each time):
   first-byte and total latency of sequential requests, interleaved, then req/s of a closed
   loop of --clients concurrent clients for --seconds each. `x-cache: hit` is checked.
3. Singleflight: --burst identical cold requests sent at once (connections opened first) of a
   query of a few hundred ms; executions (aim: 1), answers, byte-identical bodies.
4. Progress bar: `SELECT a.id % 10 AS k, count(*) FROM big a JOIN big b USING (id) GROUP BY k`
   in DuckDB alone (Python, same settings as the gateway's preserve_insertion_order = false)
   with enable_progress_bar off and on (print off), and through the gateway (always on),
   interleaved, medians of --repeat. Each run appends `LIMIT 1000+i` (the gateway would answer
   a repeat from its cache).

Sections 2 and 3 run before 1 (whose PUTs replace `panel`), 4 last.

    ~/.cache/duckstream-bench/.venv/bin/python scripts/bench/bench_live.py --bin target/release/duckstream

Needs the bench venv with websockets and aiohttp (pip install websockets aiohttp).
"""
import argparse
import asyncio
import collections
import json
import math
import os
import shutil
import statistics
import tempfile
import time
import http.client
import urllib.parse
import urllib.request

import aiohttp
import duckdb
import websockets

from benchlib import DEFAULT_BIN, gateway


SUB_SQL = "SELECT count(*), sum(v) FROM panel"
PANEL_SQL = "SELECT * FROM panel ORDER BY id"
BURST_SQL = "SELECT count(*), sum(a.range * b.range) FROM range({n}) a, range({n}) b"
BIG_SQL = "SELECT a.id % 10 AS k, count(*) FROM big a JOIN big b USING (id) GROUP BY k LIMIT {limit}"
COUNTERS = {"exec": "duckstream_duckdb_executions_total", "hits": "duckstream_cache_hits_total",
            "misses": "duckstream_cache_misses_total", "saved": "duckstream_executions_saved_total",
            "refused": "duckstream_connections_refused_total"}


def pct(xs, q):
    """Nearest-rank percentile (q in 0..1) of a non-empty list."""
    s = sorted(xs)
    return s[max(0, min(len(s) - 1, math.ceil(q * len(s)) - 1))]


def metrics(port):
    """The gateway's counters named in COUNTERS (0 when absent)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    values = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        values[name] = value
    return {k: float(values.get(name, 0)) for k, name in COUNTERS.items()}


def delta(before, after, key):
    return int(after[key] - before[key])


def put(port, table, body):
    """PUT a CSV body into t.`table`; returns perf_counter() when its response arrived."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/t/datasets/{table}?format=csv", data=body,
                                 method="PUT", headers={"Content-Type": "text/csv"})
    with urllib.request.urlopen(req, timeout=30) as r:
        r.read()
        t = time.perf_counter()
        assert r.status == 200, r.status
    return t


def create_data(data):
    c = duckdb.connect(os.path.join(data, "t.duckdb"))
    c.execute("CREATE TABLE panel AS SELECT range AS id, 'name ' || range AS name, range * 0.5 AS v FROM range(10000)")
    c.execute("CREATE TABLE other AS SELECT range AS id, 'name ' || range AS name, range * 0.5 AS v FROM range(100)")
    c.close()


def create_big(path, rows):
    c = duckdb.connect(path)
    c.execute(f"CREATE TABLE big AS SELECT range AS id FROM range({rows})")
    c.close()


# ---------------------------------------------------------------- 2. cache

def panel_path(sql):
    return "/v1/t/query?sql=" + urllib.parse.quote(sql)


def rows_of(body):
    """The `rows` of a body's final `end` line (None if it ends otherwise)."""
    last = json.loads(body.rstrip(b"\n").rsplit(b"\n", 1)[-1])
    return last.get("rows") if last.get("type") == "end" else None


def get_timed(conn, path):
    """(status, x-cache, first-byte s, total s, body) over a keep-alive connection."""
    t0 = time.perf_counter()
    conn.request("GET", path)
    r = conn.getresponse()
    first = r.read(1)
    t1 = time.perf_counter()
    body = first + r.read()
    return r.status, r.getheader("x-cache"), t1 - t0, time.perf_counter() - t0, body


async def closed_loop(port, next_sql, clients, seconds, want_hit):
    """`clients` concurrent keep-alive clients for `seconds`: (requests, s, bytes, wrong answers:
    (status, x-cache, body's tail))."""
    timeout = aiohttp.ClientTimeout(total=30)
    conn = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout, auto_decompress=False,
                                     headers={"Accept-Encoding": "identity"}) as sess:
        wrong = []
        t0 = time.perf_counter()
        end = t0 + seconds

        async def worker():
            n = size = 0
            while time.perf_counter() < end:
                async with sess.get(f"http://127.0.0.1:{port}/v1/t/query", params={"sql": next_sql()}) as r:
                    body = await r.read()
                    hit = r.headers.get("x-cache") == "hit"
                    if r.status != 200 or hit != want_hit or rows_of(body) != 10000:
                        wrong.append((r.status, r.headers.get("x-cache"), body[-200:]))
                n += 1
                size += len(body)
            return n, size

        res = await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - t0
    return sum(r[0] for r in res), wall, sum(r[1] for r in res), wrong


def bench_cache(port, o):
    counter = iter(range(10_000_000))
    miss_sql = lambda: f"{PANEL_SQL} LIMIT {10000 + next(counter)}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    # Warm: the database open, the table read, and the hit SQL in the cache.
    for _ in range(3):
        get_timed(conn, panel_path(PANEL_SQL))
    # Per kind: (first byte ms, total ms) over the keep-alive connection, and over a new
    # connection per request.
    lat = {k: ([], [], [], []) for k in ("miss", "hit")}
    bad = {"miss": [], "hit": []}
    m0 = metrics(port)
    for i in range(o.seq):
        for kind in (("miss", "hit") if i % 2 == 0 else ("hit", "miss")):
            for fresh in (False, True):
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=30) if fresh else conn
                status, xc, first, total, body = get_timed(c, panel_path(PANEL_SQL if kind == "hit" else miss_sql()))
                if fresh:
                    c.close()
                if status != 200 or (xc == "hit") != (kind == "hit") or rows_of(body) != 10000:
                    bad[kind].append((status, xc, body[-200:]))
                lat[kind][2 * fresh].append(first * 1000)
                lat[kind][2 * fresh + 1].append(total * 1000)
    size = len(body)
    conn.close()
    m1 = metrics(port)
    loops = {}
    for kind in ("miss", "hit"):
        # The misses' loop fills the cache (256 MiB by default) past its budget, which may evict
        # the hit SQL's entry: put it back first.
        prime = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        get_timed(prime, panel_path(PANEL_SQL))
        prime.close()
        loops[kind] = asyncio.run(closed_loop(port, miss_sql if kind == "miss" else (lambda: PANEL_SQL),
                                              o.clients, o.seconds, kind == "hit"))
    m2 = metrics(port)
    print(f"\n**Cache**: `{PANEL_SQL}` (10,000 rows, {size / 1024:.0f} KiB NDJSON, plain) over GET; "
          f"{o.seq} sequential requests of each (on one keep-alive connection, and on a new connection each), interleaved, then a {o.seconds:g} s closed loop of "
          f"{o.clients} clients of each. Misses: `… LIMIT 10000+i`.\n")
    print("| | keep-alive: first byte ms (median / p99) | keep-alive: total ms (median / p99) | "
          "new connection: first byte ms (median / p99) | new connection: total ms (median / p99) | "
          f"req/s, {o.clients} clients (keep-alive) | MB/s | wrong answers (status, x-cache, rows) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for kind in ("miss", "hit"):
        cells = " | ".join(f"{statistics.median(x):.2f} / {pct(x, 0.99):.2f}" for x in lat[kind])
        n, wall, nbytes, wrong = loops[kind]
        bad[kind] += wrong
        print(f"| {kind} | {cells} | {n / wall:,.0f} | {nbytes / wall / 1e6:,.0f} | {len(bad[kind])} |")
    print(f"\nGateway counters over the sequential part: cache hits +{delta(m0, m1, 'hits')}, "
          f"misses +{delta(m0, m1, 'misses')}, executions +{delta(m0, m1, 'exec')}; over the loops: "
          f"hits +{delta(m1, m2, 'hits')}, misses +{delta(m1, m2, 'misses')}, "
          f"executions +{delta(m1, m2, 'exec')}.", flush=True)
    for kind in ("miss", "hit"):
        if bad[kind]:
            print(f"\nFirst wrong {kind} answer (status, x-cache, tail): {bad[kind][0]}")


# ---------------------------------------------------------------- 3. singleflight

def parse_http(data):
    """(status, headers, de-chunked body) of one HTTP/1.1 response read to EOF."""
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    if headers.get("transfer-encoding") != "chunked":
        return status, headers, rest
    body = bytearray()
    while True:
        nl = rest.index(b"\r\n")
        size = int(rest[:nl].split(b";")[0], 16)
        if size == 0:
            return status, headers, bytes(body)
        body += rest[nl + 2:nl + 2 + size]
        rest = rest[nl + 2 + size + 2:]


async def burst(port, sql, n):
    """`n` connections opened, then the same GET written on each at once; read all to EOF."""
    req = f"GET {panel_path(sql)} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    conns = []
    for _ in range(n):
        conns.append(await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10))
    t0 = time.perf_counter()
    for _, w in conns:
        w.write(req)
    sent = time.perf_counter() - t0

    async def one(r, w):
        try:
            data = await asyncio.wait_for(r.read(), 120)
            return data, time.perf_counter()
        finally:
            w.close()

    res = await asyncio.gather(*(one(r, w) for r, w in conns), return_exceptions=True)
    return t0, sent, res


def bench_singleflight(port, o):
    # The query alone, once, cold (another constant), for its duration.
    t = time.perf_counter()
    r = urllib.request.urlopen(f"http://127.0.0.1:{port}{panel_path(BURST_SQL.format(n=o.burst_size + 1))}",
                               timeout=120)
    r.read()
    alone = time.perf_counter() - t
    sql = BURST_SQL.format(n=o.burst_size + 2 + int(time.time()) % 1000)
    m0 = metrics(port)
    t0, sent, res = asyncio.run(burst(port, sql, o.burst))
    m1 = metrics(port)
    errors = [e for e in res if isinstance(e, BaseException)]
    ok = [x for x in res if not isinstance(x, BaseException)]
    parsed = [parse_http(d) for d, _ in ok]
    statuses = collections.Counter(s for s, _, _ in parsed)
    xcache = collections.Counter(h.get("x-cache", "(none)") for _, h, _ in parsed)
    bodies = collections.Counter(b for s, _, b in parsed if s == 200)
    wall = max(t for _, t in ok) - t0 if ok else float("nan")
    firsts = sorted((t - t0) * 1000 for _, t in ok)
    print(f"\n**Singleflight**: {o.burst} identical cold GETs written at once on open connections "
          f"(writing all took {sent * 1000:.1f} ms) of `{sql}`; the query alone (cold, another "
          f"constant) took {alone * 1000:.0f} ms.\n")
    print("| requests | answers (status: count) | x-cache | DuckDB executions | cache hits | "
          "executions saved | distinct 200 bodies | complete ms (min / median / max) | client errors |")
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|")
    st = ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()))
    xc = ", ".join(f"{k}: {v}" for k, v in sorted(xcache.items()))
    print(f"| {o.burst} | {st} | {xc} | {delta(m0, m1, 'exec')} | {delta(m0, m1, 'hits')} | "
          f"{delta(m0, m1, 'saved')} | {len(bodies)} | {firsts[0]:.0f} / {statistics.median(firsts):.0f} / "
          f"{firsts[-1]:.0f} | {len(errors)} |", flush=True)
    if errors:
        print(f"\nFirst client error: {errors[0]!r}")
    bad = [(s, b[:300]) for s, _, b in parsed if s != 200]
    if bad:
        print(f"\nFirst non-200 answer: {bad[0]}")


# ---------------------------------------------------------------- 1. subscriptions

class Sock:
    """One WebSocket's received lines: the arrival times of `end` lines, updates, data rows."""

    def __init__(self):
        self.ends, self.updates, self.rows, self.errors = [], [], [], []
        self.subscribed = 0
        self.closed = None


async def read_sock(ws, s):
    try:
        async for msg in ws:
            t = time.perf_counter()
            if isinstance(msg, bytes):
                msg = msg.decode()
            for line in msg.splitlines():
                if not line.startswith('{"type":"'):
                    continue
                kind = line[9:line.index('"', 9)]
                if kind == "end":
                    s.ends.append(t)
                elif kind == "update":
                    s.updates.append((t, json.loads(line)["version"]))
                elif kind == "data":
                    s.rows.append(json.loads(line)["rows"])
                elif kind == "subscribed":
                    s.subscribed += 1
                elif kind == "error":
                    s.errors.append(json.loads(line))
    except websockets.ConnectionClosed as e:
        s.closed = e
    else:
        s.closed = "closed"


async def open_sock(url, subs):
    ws = await websockets.connect(url, compression=None, open_timeout=10, close_timeout=5, max_size=None,
                                  ping_interval=None)
    s = Sock()
    task = asyncio.create_task(read_sock(ws, s))
    for j in range(subs):
        await ws.send(json.dumps({"type": "subscribe", "id": f"p{j}", "sql": SUB_SQL}))
    return ws, s, task


async def wait_for(pred, timeout):
    """Polls `pred` until true or `timeout` s; returns whether it became true."""
    end = time.perf_counter() + timeout
    while not pred():
        if time.perf_counter() > end:
            return False
        await asyncio.sleep(0.005)
    return True


async def bench_subscriptions(port, o):
    url = f"ws://127.0.0.1:{port}/v1/t/ws?compression=none"
    n = o.sockets * o.subs
    m0 = await asyncio.to_thread(metrics, port)
    t0 = time.perf_counter()
    opened = await asyncio.gather(*(open_sock(url, o.subs) for _ in range(o.sockets)), return_exceptions=True)
    refused = [e for e in opened if isinstance(e, BaseException)]
    socks = [x for x in opened if not isinstance(x, BaseException)]
    subs_of = [o.subs] * len(socks)
    got_all = await wait_for(lambda: all(len(s.ends) >= k for (_, s, _), k in zip(socks, subs_of)), 60)
    t_first = time.perf_counter() - t0
    m1 = await asyncio.to_thread(metrics, port)
    subscribed = sum(s.subscribed for _, s, _ in socks)
    firsts = sum(min(len(s.ends), k) for (_, s, _), k in zip(socks, subs_of))
    print(f"\n**Subscriptions**: {o.sockets} WebSockets × {o.subs} subscriptions = {n} subscribers of "
          f"`{SUB_SQL}` (compression=none); {len(socks)} sockets opened ({len(refused)} refused), "
          f"{subscribed} `subscribed`, {firsts} first results in {t_first:.2f} s"
          f"{'' if got_all else ' (TIMED OUT waiting for all)'}, with "
          f"{delta(m0, m1, 'exec')} DuckDB executions for them.\n")
    if refused:
        print(f"First refusal: {refused[0]!r}\n")
    print("| change | DuckDB executions | subscribers with the new result | wrong results | "
          "PUT response → `end` ms (p50 / p99 / max) | earliest ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in range(o.changes):
        base = [len(s.ends) for _, s, _ in socks]
        rbase = [len(s.rows) for _, s, _ in socks]
        before = await asyncio.to_thread(metrics, port)
        body = f"id,name,v\n1,a,{r + 2}\n".encode()
        t_put = await asyncio.to_thread(put, port, "panel", body)
        done = await wait_for(lambda: all(len(s.ends) >= b + k for (_, s, _), b, k in zip(socks, base, subs_of)), 30)
        after = await asyncio.to_thread(metrics, port)
        lat = [(t - t_put) * 1000 for (_, s, _), b, k in zip(socks, base, subs_of) for t in s.ends[b:b + k]]
        wrong = sum(1 for (_, s, _), b in zip(socks, rbase) for rows in s.rows[b:] if rows != [[1, r + 2]])
        got = len(lat)
        cells = (f"{pct(lat, 0.5):.1f} / {pct(lat, 0.99):.1f} / {max(lat):.1f} | {min(lat):.1f}"
                 if lat else "— | —")
        print(f"| PUT `panel` #{r + 1} | {delta(before, after, 'exec')} | {got} / {n}"
              f"{'' if done else ' (timed out)'} | {wrong} | {cells} |", flush=True)
        await asyncio.sleep(0.2)
    ubase = [len(s.updates) for _, s, _ in socks]
    before = await asyncio.to_thread(metrics, port)
    await asyncio.to_thread(put, port, "other", b"id,name,v\n1,a,2\n")
    await asyncio.sleep(2)
    after = await asyncio.to_thread(metrics, port)
    heard = sum(len(s.updates) - b for (_, s, _), b in zip(socks, ubase))
    print(f"| PUT `other` (2 s watched) | {delta(before, after, 'exec')} | {heard} updates / {n} | — | — | — |")
    errors = [e for _, s, _ in socks for e in s.errors]
    closed = [s.closed for _, s, _ in socks if s.closed is not None]
    if errors or closed:
        print(f"\nError lines: {len(errors)} (first: {errors[:1]}); sockets closed by the server: "
              f"{len(closed)} (first: {closed[:1]!r})")
    for ws, _, task in socks:
        await ws.close()
    await asyncio.wait_for(asyncio.gather(*(t for _, _, t in socks), return_exceptions=True), 30)


# ---------------------------------------------------------------- 4. progress bar

def bench_progress(port, o, path):
    c = duckdb.connect(path)
    c.execute("SET preserve_insertion_order = false")
    runs = iter(range(1_000_000))

    def alone(on):
        c.execute("SET enable_progress_bar = true; SET enable_progress_bar_print = false" if on
                  else "SET enable_progress_bar = false")
        sql = BIG_SQL.format(limit=1000 + next(runs))
        t = time.perf_counter()
        rows = c.execute(sql).fetchall()
        assert len(rows) == 10, rows
        return time.perf_counter() - t

    def gw(_):
        sql = BIG_SQL.format(limit=1000 + next(runs))
        t = time.perf_counter()
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/b/query?sql={urllib.parse.quote(sql)}",
                                      timeout=300).read()
        assert rows_of(body) == 10, body[-300:]
        return time.perf_counter() - t

    cases = {"off": lambda: alone(False), "on": lambda: alone(True), "gateway": lambda: gw(None)}
    for f in cases.values():  # warm: the file read, the gateway's tenant open
        f()
    times = {k: [] for k in cases}
    order = list(cases)
    for i in range(o.repeat):
        for k in order[i % 3:] + order[:i % 3]:
            times[k].append(cases[k]())
    c.close()
    off, on, g = (statistics.median(times[k]) for k in ("off", "on", "gateway"))
    print(f"\n**Progress bar**: `{BIG_SQL.format(limit='1000+i')}` on {o.big_rows:,} rows; "
          f"medians of {o.repeat}, interleaved (after one warm run each).\n")
    print("| DuckDB alone, progress bar off | DuckDB alone, on (print off) | on / off | "
          "duckstream (on), HTTP | duckstream / DuckDB off |")
    print("|---:|---:|---:|---:|---:|")
    print(f"| {off:.3f} s | {on:.3f} s | {on / off:.3f}× | {g:.3f} s | {g / off:.3f}× |")
    spread = ", ".join(f"{k}: " + " ".join(f"{x:.2f}" for x in v) for k, v in times.items())
    print(f"\nAll runs (s): {spread}", flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default=DEFAULT_BIN)
    p.add_argument("--sockets", type=int, default=100)
    p.add_argument("--subs", type=int, default=10, help="subscriptions per socket")
    p.add_argument("--changes", type=int, default=3, help="PUTs to `panel` while subscribed")
    p.add_argument("--seq", type=int, default=200, help="sequential requests of each, hits and misses")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--burst", type=int, default=1000)
    p.add_argument("--burst-size", type=int, default=10000, help="range(N) × range(N) in the burst's query")
    p.add_argument("--big-rows", type=int, default=20_000_000)
    p.add_argument("--repeat", type=int, default=5)
    o = p.parse_args()
    work = tempfile.mkdtemp(prefix="bench_live_")
    data = os.path.join(work, "data")
    os.mkdir(data)
    try:
        create_data(data)
        create_big(os.path.join(data, "b.duckdb"), o.big_rows)
        alone = os.path.join(work, "alone.duckdb")
        create_big(alone, o.big_rows)
        with gateway(o.bin, data=data) as (port, pid):
            bench_cache(port, o)
            bench_singleflight(port, o)
            asyncio.run(bench_subscriptions(port, o))
            bench_progress(port, o, alone)
            m = metrics(port)
            print(f"\nStreams/WebSockets refused over the run (duckstream_connections_refused_total): "
                  f"{int(m['refused'])}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
