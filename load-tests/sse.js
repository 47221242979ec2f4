// SSE load: each iteration reads one event stream to its `end` event.
// Env: BASE, TENANT, SQL, DURATION (20s), VUS (8).
import http from "k6/http";
import { check } from "k6";
import { Counter, Trend } from "k6/metrics";

const BASE = __ENV.BASE || "http://127.0.0.1:8080";
const TENANT = __ENV.TENANT || "demo";
const SQL = __ENV.SQL || "SELECT * FROM parcels LIMIT 20000";
const ttfd = new Trend("time_to_first_data", true);
const rows = new Counter("rows_received");

export const options = {
  scenarios: {
    sse: { executor: "constant-vus", vus: Number(__ENV.VUS || 8), duration: __ENV.DURATION || "20s" },
  },
  thresholds: {
    checks: ["rate>0.99"],
    time_to_first_data: ["p(95)<1000"],
  },
};

export default function () {
  const res = http.get(`${BASE}/v1/${TENANT}/sse?sql=${encodeURIComponent(SQL)}&chunk_rows=1000`, {
    headers: { Accept: "text/event-stream" },
    timeout: "60s",
  });
  // SSE answers once the statement is bound; the first data event follows the first chunk.
  ttfd.add(res.timings.waiting);
  const body = res.body || "";
  const at = body.lastIndexOf("event: end\n");
  let end = {};
  if (at >= 0) {
    const data = body.slice(at).split("\n").find((l) => l.startsWith("data: "));
    end = JSON.parse(data.slice(6));
    rows.add(end.rows);
  }
  check(res, {
    "status 200": (r) => r.status === 200,
    "event-stream": (r) => (r.headers["Content-Type"] || "").startsWith("text/event-stream"),
    "ends with end": () => end.type === "end",
  });
}
