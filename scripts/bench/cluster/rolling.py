#!/usr/bin/env python3
"""Rolling restart: what clients see while each of 3 replicas is restarted in turn.

Same cluster as failover.py (clusterlib.py: PostgreSQL 15 + moto_server as the lake, 3
replicas configured as tests/api/cluster.rs does, HAProxy with deploy/haproxy.cfg unchanged),
the same --tenants tenants, --subs WebSocket subscribers (reconnect through the balancer,
resume by version) and one append per tenant per second through the balancer, plus --workers
loops of small HTTP queries through the balancer (`SELECT count(*) FROM d WHERE k % 97 = <n>`,
a new literal each time, --pause s between two).

Then, for each replica in turn: SIGTERM, wait until it exits (it drains: 503 on /readyz,
1012 to its sockets), start it again on the same port, wait until HAProxy shows it UP again
(its /readyz checks), wait --settle s, next.

Reports:
- every failed request, classified: small queries (status + error code, a 200 without its `end`
  line, no answer), appends (the same), WebSocket closes by code (1012 is the drain asking the
  client to reconnect: expected, listed apart), failed WebSocket connects, `error` lines;
- the delivery gap: for each acknowledged append and each subscriber of its tenant, the time
  from the append's answer until the subscriber held that version or a newer one; per
  subscriber its longest gap. Max and p99 of the longest gaps, p50/p99/max of all, and the
  same for appends answered outside the restarts (baseline);
- checks (duckstream bugs if they fail): versions strictly grow per subscriber, one version
  names one result, every subscriber ends with its tenant's latest data, every drained replica
  exits 0.

    /var/tmp/duckstream-tools/venv/bin/python scripts/bench/cluster/rolling.py
    # options: --bin /var/tmp/bench-bin/duckstream --tenants 9 --subs 30 --workers 4 --pause 0.05

Takes ~2 minutes.
"""
import argparse
import asyncio
import collections
import json
import os
import shutil
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clusterlib as cl  # noqa: E402
import livelib as ll  # noqa: E402




async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=cl.DEFAULT_BIN)
    ap.add_argument("--tenants", type=int, default=9)
    ap.add_argument("--subs", type=int, default=30)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--pause", type=float, default=0.05)
    ap.add_argument("--settle", type=float, default=5.0)
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = ap.parse_args()

    work, lake, reps, lb, tenants, home = cl.start_cluster("ds-rolling-", args.bin, args.tenants, "g")

    stop = asyncio.Event()
    subs = ll.subscribers(lb, tenants, args.subs)
    writer = ll.Writer(lb.base, tenants)
    queries = ll.Queries(lb.base, tenants, args.workers, args.pause)
    tasks = ([asyncio.create_task(s.run(stop)) for s in subs]
             + [asyncio.create_task(writer.run(stop)), asyncio.create_task(queries.run(stop))])
    if not await ll.wait_until(lambda: all(s.held is not None for s in subs), 60):
        raise SystemExit("not every subscriber got its first result")
    await asyncio.sleep(5)
    print(f"load average before the restarts: {open('/proc/loadavg').read().strip()}", flush=True)

    t_begin = ll.now()
    restarts = []
    for i, r in enumerate(reps):
        t_term = ll.now()
        r.terminate()
        code = await asyncio.to_thread(r.wait_exit, 60)
        t_exit = ll.now()
        if code is None:
            print(f"WARN: {r.name} did not exit within 60 s of SIGTERM; killing it", flush=True)
            r.kill()
        await asyncio.to_thread(r.start)
        t_started = ll.now()
        await asyncio.to_thread(lb.wait_status, f"replica{i + 1}", "UP", 60)
        t_up = ll.now()
        restarts.append({"replica": r.name, "exit_code": code, "drain_s": t_exit - t_term,
                         "start_s": t_started - t_exit, "up_after_term_s": t_up - t_term,
                         "t_term": t_term, "t_up": t_up})
        print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in restarts[-1].items()
                          if not k.startswith("t_")}), flush=True)
        await asyncio.sleep(args.settle)
    t_done = ll.now()
    # Let the last writes land, then stop the clients.
    await ll.wait_until(lambda: all(s.held is not None and s.held >= (writer.latest(s.tenant, ll.now() - 1) or 0)
                                 for s in subs), 30)
    t_end = ll.now()
    stop.set()
    for s in subs:
        if s.ws is not None:
            s.force = True  # our own close, not the server's
            await s.ws.close()
    await asyncio.wait(tasks, timeout=20)

    def in_restart(t):
        return any(x["t_term"] - 0.5 <= t <= x["t_up"] + 2 for x in restarts)

    # Requests.
    q = [x for x in queries.log if x[0] >= t_begin]
    qout = collections.Counter(x[3] for x in q)
    w = [a for a in writer.acks if a[2] >= t_begin]
    wout = collections.Counter("ok" if a[4] == 200 else f"{a[4]} {a[6][:100]}" for a in w)
    closes = collections.Counter(c[2] for s in subs for c in s.closes if c[0] >= t_begin and not c[3])
    fails = collections.Counter(f[1][:100] for s in subs for f in s.fails if f[0] >= t_begin)
    errs = [e for s in subs for e in s.errors]
    # Gaps: writes answered from t_begin to t_done.
    g = ll.gaps(subs, writer, t_begin, t_done)
    never = [(s.idx, a[0], a[5]) for s, a, x in g if x is None]
    allg = [x for _s, _a, x in g if x is not None]
    base = [x for _s, a, x in g if x is not None and not in_restart(a[3])]
    per_sub = {}
    for s, a, x in g:
        if x is not None:
            per_sub[s.idx] = max(per_sub.get(s.idx, 0), x)
    longest = sorted(per_sub.values())

    print()
    print(f"## Rolling restart of 3 replicas ({args.subs} subscribers on {args.tenants} tenants, one append per "
          f"tenant per second, {args.workers} small-query loops)")
    print()
    print("| replica | exit code | SIGTERM -> exit s | exit -> listening s | SIGTERM -> UP in HAProxy s |")
    print("|---|---:|---:|---:|---:|")
    for x in restarts:
        print(f"| {x['replica']} | {x['exit_code']} | {x['drain_s']:.2f} | {x['start_s']:.2f} | {x['up_after_term_s']:.2f} |")
    print()
    print(f"small queries: {len(q)} ({len(q) / (t_done - t_begin):.0f}/s), "
          + ", ".join(f"{k}: {v}" for k, v in qout.most_common()))
    print(f"appends: {len(w)}, " + ", ".join(f"{k}: {v}" for k, v in wout.most_common()))
    print(f"websocket closes by the server: " + (", ".join(f"{k}: {v}" for k, v in closes.most_common()) or "none"))
    print(f"websocket connects that failed: {sum(fails.values())}" +
          "".join(f"\n    {v} x {k}" for k, v in fails.most_common(8)))
    print(f"error lines on subscriptions: {len(errs)}" + "".join(f"\n    {e}" for e in errs[:8]))
    print(f"delivery gap, {len(allg)} deliveries of {len({a[1] for _s, a, _x in g})} appends: "
          f"p50 {ll.ms(statistics.median(allg))} ms, p99 {ll.ms(cl.pct(allg, 0.99))} ms, max {ll.ms(max(allg))} ms; "
          f"never delivered: {len(never)} {never[:10]}")
    print(f"longest gap per subscriber ({len(longest)} subscribers): p50 {ll.ms(statistics.median(longest))} ms, "
          f"p99 {ll.ms(cl.pct(longest, 0.99))} ms, max {ll.ms(max(longest))} ms")
    if base:
        print(f"baseline (appends answered outside the restarts): {len(base)} deliveries, p50 "
              f"{ll.ms(statistics.median(base))} ms, p99 {ll.ms(cl.pct(base, 0.99))} ms, max {ll.ms(max(base))} ms")
    vprob = {s.idx: s.version_problems() for s in subs if s.version_problems()}
    print(f"versions not strictly growing: {vprob or 'none'}")
    print(f"one version, two results: {ll.consistency(subs)[:5] or 'none'}")
    final_bad = [(s.idx, s.tenant, s.held, writer.latest(s.tenant, t_end - 1)) for s in subs
                 if s.held is None or s.held < (writer.latest(s.tenant, t_end - 1) or 0)]
    print(f"subscribers not holding the latest at the end: {final_bad or 'none'}")
    for r in reps:
        c = r.complaints()
        print(f"{r.name}: {len(c)} WARN/ERROR log lines" + "".join(f"\n    {l[:300]}" for l in c[:8]))
    print(f"load average at the end: {open('/proc/loadavg').read().strip()}")
    with open(os.path.join(work, "events.json"), "w") as f:
        json.dump({"restarts": restarts, "queries": queries.log, "writes": writer.acks, "subs": [
            {"idx": s.idx, "tenant": s.tenant, "results": [(t, v, c) for t, v, _r, c in s.results],
             "acks": s.acks, "closes": s.closes, "fails": s.fails, "opens": s.opens, "errors": s.errors}
            for s in subs]}, f, default=str)
    if not args.keep:
        cl._cleanups.insert(0, lambda: shutil.rmtree(work, ignore_errors=True))
    else:
        print(f"logs kept in {work}")


if __name__ == "__main__":
    asyncio.run(main())
