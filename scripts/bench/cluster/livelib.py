"""Shared by failover.py and rolling.py: WebSocket subscribers that reconnect through the
balancer and resume by version (as README's example and tests/api/cluster.rs), a writer that
appends one row to each tenant's `d` every second, and small HTTP queries. Everything records
monotonic timestamps (time.monotonic()) so the scripts can line events up with kills and
restarts.
"""
import asyncio
import json
import random
import time

import aiohttp
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

SUBSCRIBED = "SELECT count(*) AS n, sum(k) AS s FROM d"
now = time.monotonic


class Sub:
    """One subscriber: `results` [(t, version, rows, conn)], `acks` [(t, conn, resumed)],
    `closes` [(t, conn, what, forced)], `fails` [(t, what)] (a connect that failed),
    `errors` [(t, conn, line)] (an `error` line), `opens` [(t, conn)] (a socket open)."""

    def __init__(self, idx, tenant, url):
        self.idx, self.tenant, self.url = idx, tenant, url
        self.results, self.acks, self.closes, self.fails, self.errors = [], [], [], [], []
        self.opens = []
        self.conn = 0
        self.ws = None
        self.force = False

    @property
    def held(self):
        return self.results[-1][1] if self.results else None

    async def run(self, stop):
        attempt = 0
        while not stop.is_set():
            if attempt > 0:
                # README's client: 100 ms doubling to 5 s, x0.5-1.5.
                await asyncio.sleep(min(5.0, 0.1 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5))
            attempt += 1
            try:
                async with connect(self.url, open_timeout=10, ping_interval=None, max_size=None,
                                   compression=None, close_timeout=2) as ws:
                    self.conn += 1
                    conn = self.conn
                    self.opens.append((now(), conn))
                    self.ws = ws
                    attempt = 1
                    sub = {"type": "subscribe", "id": "p", "sql": SUBSCRIBED}
                    if self.held is not None:
                        sub["version"] = self.held
                    await ws.send(json.dumps(sub))
                    pending = None
                    try:
                        async for msg in ws:
                            t = now()
                            for line in msg.splitlines():
                                if not line:
                                    continue
                                l = json.loads(line)
                                ty = l.get("type")
                                if ty == "subscribed":
                                    self.acks.append((t, conn, l.get("resumed")))
                                elif ty == "update":
                                    pending = (l["version"], [])
                                elif ty == "data" and pending is not None:
                                    pending[1].extend(l["rows"])
                                elif ty == "end" and pending is not None:
                                    self.results.append((t, pending[0], pending[1], conn))
                                    pending = None
                                elif ty == "error":
                                    self.errors.append((t, conn, line[:300]))
                        self.closes.append((now(), conn, f"close {ws.close_code}", self.force))
                    except ConnectionClosed as e:
                        code = e.rcvd.code if e.rcvd else None
                        self.closes.append((now(), conn, f"close {code}", self.force))
                    finally:
                        self.ws = None
                    if self.force:
                        self.force = False
                        attempt = 0
            except (OSError, InvalidStatus, asyncio.TimeoutError, ConnectionClosed) as e:
                self.fails.append((now(), type(e).__name__ + ": " + str(e)[:120]))

    async def reconnect(self):
        """Closes the socket from the client side; the loop reconnects at once."""
        ws = self.ws
        if ws is not None:
            self.force = True
            await ws.close()

    def holds_since(self, version, after=None, conn_after=0):
        """The first time this subscriber held a result of `version` or newer (on a connection
        numbered above `conn_after`, and not before `after`), or a resumed-unchanged ack on such
        a connection while holding one; None if never."""
        cands = []
        for t, v, _rows, c in self.results:
            if v >= version and c > conn_after and (after is None or t >= after):
                cands.append(t)
                break
        if conn_after:
            held_at = {}
            for t, c, resumed in self.acks:
                if c > conn_after and resumed == "unchanged" and (after is None or t >= after):
                    # What it held then: the last result before the ack.
                    prior = [r for r in self.results if r[0] <= t]
                    if prior and prior[-1][1] >= version:
                        cands.append(t)
                        break
        return min(cands) if cands else None

    def version_problems(self):
        """Versions that did not strictly grow (a repeat or going back)."""
        vs = [r[1] for r in self.results]
        return [(a, b) for a, b in zip(vs, vs[1:]) if b <= a]


class Writer:
    """Every `period` s, one append of a new row k to each tenant's `d`, through the balancer;
    `acks` [(tenant, k, t_sent, t_answer, status, version or None, error text)]."""

    def __init__(self, base, tenants, period=1.0):
        self.base, self.tenants, self.period = base, tenants, period
        self.acks = []
        self.next = 1000

    async def one(self, session, tenant):
        self.next += 1
        k = self.next
        t0 = now()
        url = f"{self.base}/v1/{tenant}/datasets/d?format=csv&mode=append"
        try:
            async with session.put(url, data=f"k\n{k}\n") as r:
                body = await r.read()
                v = json.loads(body).get("version") if r.status == 200 else None
                err = "" if r.status == 200 else body[:200].decode(errors="replace")
                self.acks.append((tenant, k, t0, now(), r.status, v, err))
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            self.acks.append((tenant, k, t0, now(), 0, None, type(e).__name__ + ": " + str(e)[:150]))

    async def run(self, stop):
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async def loop(tenant, offset):
                await asyncio.sleep(offset)
                while not stop.is_set():
                    t = now()
                    await self.one(session, tenant)
                    await asyncio.sleep(max(0.0, self.period - (now() - t)))
            n = len(self.tenants)
            await asyncio.gather(*(loop(t, i * self.period / n) for i, t in enumerate(self.tenants)))

    def latest(self, tenant, at):
        """The newest version acknowledged (200) for `tenant` by monotonic time `at`."""
        vs = [a[5] for a in self.acks if a[0] == tenant and a[4] == 200 and a[3] <= at]
        return max(vs) if vs else None


class Queries:
    """`workers` loops of small HTTP queries through the balancer (a new literal each time),
    each waiting `pause` s between queries; `log` [(t_sent, t_answer, tenant, outcome)], where
    outcome is "ok", "http <status> <code>", "no end line", or "no answer: <error>"."""

    def __init__(self, base, tenants, workers=4, pause=0.05):
        self.base, self.tenants, self.workers, self.pause = base, tenants, workers, pause
        self.log = []

    async def run(self, stop):
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async def worker(w):
                i = 0
                while not stop.is_set():
                    i += 1
                    tenant = random.choice(self.tenants)
                    sql = f"SELECT count(*) AS n FROM d WHERE k % 97 = {random.randrange(97)} -- {w}.{i}"
                    t0 = now()
                    try:
                        async with session.post(f"{self.base}/v1/{tenant}/query",
                                                data=json.dumps({"sql": sql})) as r:
                            body = await r.read()
                            if r.status == 200:
                                last = body.rstrip(b"\n").rsplit(b"\n", 1)[-1]
                                ok = last.startswith(b'{"type":"end"')
                                outcome = "ok" if ok else "no end line: " + last[:120].decode(errors="replace")
                            else:
                                try:
                                    code = json.loads(body).get("error", {}).get("code")
                                except (ValueError, AttributeError):
                                    code = body[:80].decode(errors="replace")
                                outcome = f"http {r.status} {code}"
                    except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                        outcome = "no answer: " + type(e).__name__
                    self.log.append((t0, now(), tenant, outcome))
                    await asyncio.sleep(self.pause)
            await asyncio.gather(*(worker(w) for w in range(self.workers)))


def gaps(subs, writer, start=None, end=None):
    """Per acknowledged write (ack within [start, end]) and per subscriber of its tenant: the
    time from the write's answer until the subscriber held that version or a newer one
    (0 when it held it before the answer came); None when it never did. [(sub, write, gap)]."""
    out = []
    for a in writer.acks:
        tenant, _k, _t0, t_ack, status, v, _e = a
        if status != 200 or (start is not None and t_ack < start) or (end is not None and t_ack > end):
            continue
        for s in subs:
            if s.tenant != tenant:
                continue
            t = s.holds_since(v)
            out.append((s, a, None if t is None else max(0.0, t - t_ack)))
    return out


def consistency(subs):
    """Every (tenant, version) must name one result across all subscribers: [(tenant, v, rows a,
    rows b)] where two differ."""
    seen, bad = {}, []
    for s in subs:
        for _t, v, rows, _c in s.results:
            key = (s.tenant, v)
            if key in seen and seen[key] != rows:
                bad.append((s.tenant, v, seen[key], rows))
            seen.setdefault(key, rows)
    return bad


async def wait_until(pred, timeout, step=0.05):
    """Whether `pred()` held within `timeout` seconds."""
    deadline = now() + timeout
    while now() < deadline:
        if pred():
            return True
        await asyncio.sleep(step)
    return pred()


def ms(x):
    """Seconds as whole milliseconds, `-` for none."""
    return "-" if x is None else f"{x * 1000:.0f}"


def subscribers(lb, tenants, n):
    """`n` subscribers spread over `tenants`, through the balancer."""
    return [Sub(i, tenants[i % len(tenants)], f"{lb.ws_base}/v1/{tenants[i % len(tenants)]}/ws?compression=none")
            for i in range(n)]

