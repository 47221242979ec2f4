// The dashboard workload against a cluster (or one gateway), as four k6 scenarios that run at
// once, each with its own VUs:
//   ws     live panels: each VU holds a WebSocket to one tenant with SUBS subscriptions open
//          and sends a small query every SMALL_EVERY_MS on the same socket, for HOLD_S seconds,
//          then reconnects;
//   small  small HTTP queries (a point lookup by id, a new id each time), one after another;
//   sse    SSE consumers: one-shot event streams of a mid-sized result, read to their `end`;
//   scan   HTTP scans: a big NDJSON result streamed to its `end` line.
// Tenants: TENANTS, comma-separated (default demo); each VU sticks to one tenant (VU n: the
// (n-1)th, round robin), as a dashboard's browser does, so a balancer's tenant affinity matters.
// Small queries are timed from send to their `end` line in `small_query_ms`, tagged
// transport:http or transport:ws; thresholds hold its p99 (P99_SMALL_MS, default 250) for each.
//
// Env (besides common.js's BASE and CACHE):
//   TENANTS=demo  DURATION=30s
//   VUS_WS=8 VUS_SMALL=4 VUS_SSE=2 VUS_SCAN=1   (0 leaves a scenario out)
//   SUBS=3 SUB_INTERVAL_MS=0 (re-run subscriptions this often; 0: only when data changes)
//   SMALL_EVERY_MS=500 HOLD_S=15 ID_MAX=100000 (ids drawn in [0, ID_MAX) for point lookups)
//   SMALL_SQL, SSE_SQL, SCAN_SQL, SUB_SQL (one query, or several separated by ';;')
//   P99_SMALL_MS=250
// Examples:
//   k6 run -e BASE=http://127.0.0.1:8090 -e TENANTS=acme,globex,initech load-tests/cluster.js
//   k6 run -e VUS_WS=200 -e VUS_SMALL=20 -e VUS_SSE=10 -e VUS_SCAN=2 --summary-export out.json load-tests/cluster.js
import http from "k6/http";
import { WebSocket } from "k6/experimental/websockets";
import { check } from "k6";
import { Counter, Trend } from "k6/metrics";
import { BASE, rows, ttfd } from "./common.js";

const TENANTS = (__ENV.TENANTS || "demo").split(",").map((t) => t.trim()).filter((t) => t);
const DURATION = __ENV.DURATION || "30s";
const WS_BASE = BASE.replace(/^http/, "ws");
const SUBS = Number(__ENV.SUBS || 3);
const SUB_INTERVAL_MS = Number(__ENV.SUB_INTERVAL_MS || 0);
const SMALL_EVERY_MS = Number(__ENV.SMALL_EVERY_MS || 500);
const HOLD_MS = Number(__ENV.HOLD_S || 15) * 1000;
const ID_MAX = Number(__ENV.ID_MAX || 100000);
const P99_SMALL_MS = Number(__ENV.P99_SMALL_MS || 250);
const SMALL_SQL = __ENV.SMALL_SQL || "SELECT id, city, population, area FROM parcels WHERE id = ?";
const SSE_SQL = __ENV.SSE_SQL || "SELECT * FROM parcels LIMIT 5000";
const SCAN_SQL = __ENV.SCAN_SQL || "SELECT * FROM parcels LIMIT 200000";
const SUB_SQL = (
  __ENV.SUB_SQL ||
  "SELECT city, count(*) AS parcels, sum(population) AS population FROM parcels GROUP BY city ORDER BY parcels DESC LIMIT 10" +
    ";;SELECT count(*) AS parcels, avg(area) AS area, max(updated) AS updated FROM parcels" +
    ";;SELECT tags, count(*) AS n FROM parcels GROUP BY tags ORDER BY n DESC LIMIT 12"
)
  .split(";;")
  .map((s) => s.trim())
  .filter((s) => s);

// Send to `end`, per small query; tagged transport:http|ws.
const smallQuery = new Trend("small_query_ms", true);
// From `subscribe` to the subscription's first whole result.
const firstResult = new Trend("subscription_first_result_ms", true);
// Results delivered to subscribers (the first and every change).
const updates = new Counter("subscription_results");
// Finished queries, tagged query: small_http, small_ws, sse, scan (their rate is throughput).
const done = new Counter("queries_done");

const tenantOf = (vu) => TENANTS[(vu - 1) % TENANTS.length];
// With CACHE=off the SQL text is new each time (a trailing comment): DuckDB runs it.
const fresh = (sql) => (__ENV.CACHE === "off" ? `${sql} -- ${__VU}.${__ITER}.${Math.random()}` : sql);
const smallParams = () => (SMALL_SQL.includes("?") ? [Math.floor(Math.random() * ID_MAX)] : undefined);

function scenario(exec, vus) {
  return { executor: "constant-vus", exec, vus, duration: DURATION, gracefulStop: "20s", tags: { kind: exec } };
}

const scenarios = {};
for (const [name, vus] of [
  ["ws", Number(__ENV.VUS_WS || 8)],
  ["small", Number(__ENV.VUS_SMALL || 4)],
  ["sse", Number(__ENV.VUS_SSE || 2)],
  ["scan", Number(__ENV.VUS_SCAN || 1)],
]) {
  if (vus > 0) scenarios[name] = scenario(name, vus);
}

const thresholds = { checks: ["rate>0.99"] };
if (scenarios.small) thresholds["small_query_ms{transport:http}"] = [`p(99)<${P99_SMALL_MS}`];
if (scenarios.ws) {
  thresholds["small_query_ms{transport:ws}"] = [`p(99)<${P99_SMALL_MS}`];
  thresholds.subscription_first_result_ms = ["p(95)<2000"];
}
if (scenarios.sse || scenarios.scan) thresholds.time_to_first_data = ["p(95)<2000"];

export const options = {
  scenarios,
  thresholds,
  summaryTrendStats: ["avg", "med", "p(95)", "p(99)", "max"],
};

// A live dashboard: subscriptions and small queries on one socket.
export function ws() {
  const tenant = tenantOf(__VU);
  const socket = new WebSocket(`${WS_BASE}/v1/${tenant}/ws?compression=none`);
  const sentSmall = {};
  const subscribedAt = {};
  const channelOf = {};
  const gotFirst = {};
  let next = 0;
  let closed = false;
  let ticker = null;
  const finish = () => {
    if (closed) return;
    closed = true;
    if (ticker !== null) clearInterval(ticker);
    socket.close();
  };
  socket.onopen = () => {
    for (let i = 0; i < SUBS; i++) {
      const id = `sub${i}`;
      const msg = { type: "subscribe", id, sql: SUB_SQL[i % SUB_SQL.length] };
      if (SUB_INTERVAL_MS > 0) msg.interval_ms = SUB_INTERVAL_MS;
      subscribedAt[id] = Date.now();
      socket.send(JSON.stringify(msg));
    }
    ticker = setInterval(() => {
      if (closed) return;
      const id = `q${next++}`;
      sentSmall[id] = Date.now();
      const msg = { type: "query", id, sql: fresh(SMALL_SQL) };
      const params = smallParams();
      if (params) msg.params = params;
      socket.send(JSON.stringify(msg));
    }, SMALL_EVERY_MS);
    setTimeout(finish, HOLD_MS);
  };
  socket.onmessage = (e) => {
    for (const line of e.data.split("\n")) {
      if (!line || closed) continue;
      // Data lines: only their prefix matters here (JSON.parse in k6 is slow).
      if (line.startsWith('{"type":"data"')) continue;
      const m = JSON.parse(line);
      if (m.type === "subscribed") {
        channelOf[m.channel] = m.query_id;
      } else if (m.type === "end" && m.query_id in sentSmall) {
        smallQuery.add(Date.now() - sentSmall[m.query_id], { transport: "ws" });
        done.add(1, { query: "small_ws" });
        delete sentSmall[m.query_id];
        check(m, { "ws small query ended": () => true });
      } else if (m.type === "end" && m.query_id in channelOf) {
        // A subscription's result is whole at its `end`.
        updates.add(1);
        const sub = channelOf[m.query_id];
        if (!gotFirst[sub]) {
          gotFirst[sub] = true;
          firstResult.add(Date.now() - subscribedAt[sub]);
        }
      } else if (m.type === "error") {
        check(m, { "no error on the socket": () => false });
        console.error(`${tenant} ws: ${line.slice(0, 300)}`);
      }
    }
  };
  socket.onclose = () => {
    // Closed by the server before we were done (a replica draining: 1012 or 1001).
    if (!closed) {
      closed = true;
      if (ticker !== null) clearInterval(ticker);
      check(null, { "ws closed by the client": () => false });
    }
  };
  socket.onerror = (e) => {
    if (closed) return;
    console.error(`${tenant} ws error: ${e.error}`);
    check(null, { "no socket error": () => false });
  };
}

// Small HTTP queries, one after another.
export function small() {
  const tenant = tenantOf(__VU);
  const body = { sql: fresh(SMALL_SQL) };
  const params = smallParams();
  if (params) body.params = params;
  const started = Date.now();
  const res = http.post(`${BASE}/v1/${tenant}/query`, JSON.stringify(body), {
    headers: { "Content-Type": "application/json" },
    timeout: "30s",
    tags: { name: "small" },
  });
  const lines = (res.body || "").trimEnd().split("\n");
  const end = res.status === 200 && lines.length ? JSON.parse(lines[lines.length - 1]) : {};
  if (end.type === "end") {
    smallQuery.add(Date.now() - started, { transport: "http" });
    done.add(1, { query: "small_http" });
  }
  check(res, { "small: 200 and end": () => end.type === "end" });
}

// SSE consumers: one-shot event streams read to their `end` event.
export function sse() {
  const tenant = tenantOf(__VU);
  const res = http.get(`${BASE}/v1/${tenant}/sse?sql=${encodeURIComponent(fresh(SSE_SQL))}&chunk_rows=1000`, {
    headers: { Accept: "text/event-stream" },
    timeout: "120s",
    tags: { name: "sse" },
  });
  ttfd.add(res.timings.waiting, { transport: "sse" });
  const body = res.body || "";
  const at = body.lastIndexOf("event: end\n");
  let end = {};
  if (at >= 0) {
    const data = body.slice(at).split("\n").find((l) => l.startsWith("data: "));
    end = JSON.parse(data.slice(6));
    rows.add(end.rows, { transport: "sse" });
    done.add(1, { query: "sse" });
  }
  check(res, {
    "sse: 200": (r) => r.status === 200,
    "sse: ends with end": () => end.type === "end",
  });
}

// HTTP scans: a big NDJSON result streamed to its `end` line.
export function scan() {
  const tenant = tenantOf(__VU);
  const res = http.post(`${BASE}/v1/${tenant}/query`, JSON.stringify({ sql: fresh(SCAN_SQL), chunk_rows: 1000 }), {
    headers: { "Content-Type": "application/json" },
    timeout: "300s",
    tags: { name: "scan" },
  });
  ttfd.add(res.timings.waiting, { transport: "http" });
  const body = res.body || "";
  const last = body.slice(body.lastIndexOf("\n", body.length - 2) + 1);
  const end = res.status === 200 && last ? JSON.parse(last) : {};
  if (end.type === "end") {
    rows.add(end.rows, { transport: "http" });
    done.add(1, { query: "scan" });
  }
  check(res, { "scan: 200 and end": () => end.type === "end" });
}
