// HTTP NDJSON load: each iteration streams one query and checks it ended with an `end` line.
// Env: BASE (http://127.0.0.1:8080), TENANT (demo), SQL, DURATION (20s), VUS (8).
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
    http: { executor: "constant-vus", vus: Number(__ENV.VUS || 8), duration: __ENV.DURATION || "20s" },
  },
  thresholds: {
    checks: ["rate>0.99"],
    time_to_first_data: ["p(95)<1000"],
  },
};

export default function () {
  const res = http.post(`${BASE}/v1/${TENANT}/query`, JSON.stringify({ sql: SQL, chunk_rows: 1000 }), {
    headers: { "Content-Type": "application/json" },
    timeout: "60s",
  });
  // The gateway answers once DuckDB has the first chunk: the first body byte is the data.
  ttfd.add(res.timings.waiting);
  const lines = (res.body || "").trimEnd().split("\n");
  const end = lines.length ? JSON.parse(lines[lines.length - 1]) : {};
  if (end.type === "end") rows.add(end.rows);
  check(res, {
    "status 200": (r) => r.status === 200,
    "ends with end": () => end.type === "end",
  });
}
