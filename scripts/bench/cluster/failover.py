#!/usr/bin/env python3
"""Failover: how long WebSocket subscribers go without the latest data when a replica dies.

Starts PostgreSQL 15 + moto_server (the lake), 3 replicas and HAProxy with deploy/haproxy.cfg
unchanged (clusterlib.py: the replicas configured as tests/api/cluster.rs does). Creates
--tenants tenants, each with a table `d` (one CSV row uploaded through the balancer), opens
--subs WebSocket subscribers of `SELECT count(*) AS n, sum(k) AS s FROM d` spread round robin
over the tenants through the balancer; each reconnects on any close or failed connect through
the balancer (README's backoff: 100 ms doubling, x0.5-1.5) and resubscribes with the version it
holds. A writer appends one row to every tenant each second through the balancer.

Each trial: `kill -9` the replica holding the most subscriber sockets (its
duckstream_active_connections{transport="ws"}), then measure, per subscriber whose tenant lived
there ("affected"), the time from the kill until it again holds the latest data: on a new
connection, either a result whose version is at least the newest version acknowledged to the
writer before the kill, or `subscribed` with `resumed: unchanged` while holding that version.
Then the killed replica is started again on its port, HAProxy sees it UP, every subscriber
reconnects (so each sits on its tenant's home replica again), and the next trial starts once
every subscriber holds its tenant's latest data. Trials repeat until --min-samples affected
subscribers were measured (at least --trials).

Also reported: closes, failed connects and error lines seen by subscribers whose replica was
NOT killed (from the kill to the restart; aim 0), the writer's failed appends, and the usual
delivery gap (write acknowledged -> every subscriber of its tenant holds it) inside and
outside the trials. Checks (duckstream bugs if they fail): versions strictly grow per
subscriber; one version names one result; every subscriber ends with the latest result.

    /var/tmp/duckstream-tools/venv/bin/python scripts/bench/cluster/failover.py
    # options: --bin /var/tmp/bench-bin/duckstream --tenants 9 --subs 30 --trials 3 --min-samples 30

Takes ~2 minutes. Needs PostgreSQL 15 binaries, moto_server, haproxy and the venv's aiohttp
and websockets (all present in /var/tmp/duckstream-tools/venv).
"""
import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clusterlib as cl  # noqa: E402
import livelib as ll  # noqa: E402




async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=cl.DEFAULT_BIN)
    ap.add_argument("--tenants", type=int, default=9)
    ap.add_argument("--subs", type=int, default=30)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--max-trials", type=int, default=8)
    ap.add_argument("--min-samples", type=int, default=30)
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = ap.parse_args()

    work, lake, reps, lb, tenants, home = cl.start_cluster("ds-failover-", args.bin, args.tenants, "f")

    stop = asyncio.Event()
    subs = ll.subscribers(lb, tenants, args.subs)
    writer = ll.Writer(lb.base, tenants)
    tasks = [asyncio.create_task(s.run(stop)) for s in subs] + [asyncio.create_task(writer.run(stop))]

    def all_latest():
        t = ll.now()
        return all(s.held is not None and s.held >= (writer.latest(s.tenant, t - 0.5) or 0)
                   and s.ws is not None for s in subs)

    if not await ll.wait_until(lambda: all(s.held is not None for s in subs), 60):
        raise SystemExit("not every subscriber got its first result")
    await asyncio.sleep(3)

    samples, trials, unaffected_trouble, kills, warm = [], [], [], [], []
    print(f"load average before the trials: {open('/proc/loadavg').read().strip()}", flush=True)
    trial = 0
    while trial < args.max_trials and (trial < args.trials or len(samples) < args.min_samples):
        trial += 1
        ws_open = [await asyncio.to_thread(r.metric_sum, "duckstream_active_connections", 'transport="ws"')
                   for r in reps]
        victim = max(range(3), key=lambda i: ws_open[i])
        affected = [s for s in subs if home[s.tenant] == victim]
        others = [s for s in subs if home[s.tenant] != victim]
        conn_at = {s.idx: s.conn for s in subs}
        t_kill = ll.now()
        reps[victim].kill()
        kills.append((trial, t_kill))
        v_kill = {t: writer.latest(t, t_kill) for t in tenants}
        # Recovery of every affected subscriber (at most 60 s).
        def recovered(s):
            return s.holds_since(v_kill[s.tenant], after=t_kill, conn_after=conn_at[s.idx])
        await ll.wait_until(lambda: all(recovered(s) is not None for s in affected), 60)
        await asyncio.sleep(2)  # watch the survivors a moment longer
        t_restart = ll.now()
        rec = [(s, recovered(s)) for s in affected]
        got = [r - t_kill for _s, r in rec if r is not None]
        never = [s.idx for s, r in rec if r is None]
        samples.extend(got)
        if trial > 1:
            warm.extend(got)
        trouble = []
        for s in others:
            trouble += [(s.idx, "close", c) for c in s.closes if t_kill <= c[0] <= t_restart]
            trouble += [(s.idx, "connect failed", f) for f in s.fails if t_kill <= f[0] <= t_restart]
            trouble += [(s.idx, "error line", e) for e in s.errors if t_kill <= e[0] <= t_restart]
        unaffected_trouble += trouble
        opened = [min((t for t, c in s.opens if c > conn_at[s.idx]), default=None) for s in affected]
        opened = [t - t_kill for t in opened if t is not None]
        wrong_conn = [s.idx for s in affected if s.conn == conn_at[s.idx]]
        tr = {"trial": trial, "victim": reps[victim].name, "ws_open": ws_open,
              "affected": len(affected), "recovered": len(got), "never": never,
              "p50": statistics.median(got) if got else None,
              "socket_open_p50": statistics.median(opened) if opened else None, "max": max(got) if got else None,
              "unaffected_trouble": len(trouble), "affected_not_reconnected": wrong_conn}
        trials.append(tr)
        print(json.dumps(tr, default=str), flush=True)
        # Restart on the same port, wait until HAProxy has it UP, move everyone home.
        await asyncio.to_thread(reps[victim].start)
        await asyncio.to_thread(lb.wait_status, f"replica{victim + 1}", "UP", 60)
        for s in subs:
            await s.reconnect()
        if not await ll.wait_until(all_latest, 60):
            print("WARN: not every subscriber holds the latest data 60 s after the reconnect", flush=True)
        await asyncio.sleep(2)

    t_end = ll.now()
    await asyncio.sleep(2)
    stop.set()
    for s in subs:
        if s.ws is not None:
            s.force = True  # our own close, not the server's
            await s.ws.close()
    await asyncio.wait(tasks, timeout=20)

    # Final state: every subscriber holds its tenant's latest acknowledged version.
    final_bad = []
    for s in subs:
        want = writer.latest(s.tenant, t_end)
        if s.held is None or s.held < want:
            final_bad.append((s.idx, s.tenant, s.held, want))
    vprob = {s.idx: s.version_problems() for s in subs if s.version_problems()}
    incons = ll.consistency(subs)
    writes = writer.acks
    failed = [a for a in writes if a[4] != 200]

    print()
    print(f"## Failover: kill -9 of the busiest replica, {len(trials)} trials, {args.subs} subscribers on "
          f"{args.tenants} tenants, one append per tenant per second")
    print()
    print("| trial | killed | ws sockets per replica | affected | recovered | new socket open, p50 ms | holds latest, p50 ms | max ms | trouble on other replicas |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for tr in trials:
        print(f"| {tr['trial']} | {tr['victim']} | {'/'.join(str(int(x)) for x in tr['ws_open'])} | "
              f"{tr['affected']} | {tr['recovered']} | {ll.ms(tr['socket_open_p50'])} | {ll.ms(tr['p50'])} | {ll.ms(tr['max'])} | "
              f"{tr['unaffected_trouble']} |")
    print()
    if samples:
        print(f"kill -> holds the latest again, {len(samples)} affected subscribers: "
              f"p50 {ll.ms(statistics.median(samples))} ms, p99 {ll.ms(cl.pct(samples, 0.99))} ms, "
              f"max {ll.ms(max(samples))} ms; never recovered: {sum(len(t['never']) for t in trials)}")
    if warm:
        print(f"  trials 2 and later only (the survivors already had the tenants open), {len(warm)}: "
              f"p50 {ll.ms(statistics.median(warm))} ms, p99 {ll.ms(cl.pct(warm, 0.99))} ms, max {ll.ms(max(warm))} ms")
    g = [x for x in ll.gaps(subs, writer)]
    gv = [x[2] for x in g if x[2] is not None]
    print(f"delivery gap (write answered -> each subscriber of its tenant holds it), all writes: "
          f"{len(gv)} deliveries, p50 {ll.ms(statistics.median(gv))} ms, p99 {ll.ms(cl.pct(gv, 0.99))} ms, "
          f"max {ll.ms(max(gv))} ms; never delivered {sum(1 for x in g if x[2] is None)}")
    print(f"appends: {len(writes)}, failed {len(failed)}: "
          + "; ".join(sorted({f'{a[4]} {a[6][:90]}' for a in failed}))[:1500])
    print(f"trouble on subscribers of replicas not killed: {len(unaffected_trouble)}")
    for x in unaffected_trouble[:20]:
        print("   ", x)
    print(f"versions not strictly growing: {vprob or 'none'}")
    print(f"one version, two results: {incons[:5] or 'none'}")
    print(f"subscribers not holding the latest at the end: {final_bad or 'none'}")
    for r in reps:
        c = r.complaints()
        print(f"{r.name}: {len(c)} WARN/ERROR log lines" + "".join(f"\n    {l[:300]}" for l in c[:8]))
    # Every subscriber's timeline relative to each kill, for a closer look (--keep).
    with open(os.path.join(work, "events.json"), "w") as f:
        json.dump({"trials": trials, "kills": kills, "subs": [
            {"idx": s.idx, "tenant": s.tenant, "home": reps[home[s.tenant]].name,
             "results": [(t, v, c) for t, v, _r, c in s.results], "acks": s.acks,
             "closes": s.closes, "fails": s.fails, "opens": s.opens, "errors": s.errors} for s in subs],
            "writes": writer.acks}, f, default=str)
    print(f"load average at the end: {open('/proc/loadavg').read().strip()}")
    if not args.keep:
        cl._cleanups.insert(0, lambda: shutil.rmtree(work, ignore_errors=True))
    else:
        print(f"logs kept in {work}")


if __name__ == "__main__":
    asyncio.run(main())
