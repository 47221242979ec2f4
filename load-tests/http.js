// HTTP NDJSON load: each iteration streams one query and checks it ended with an `end` line.
// Env: see common.js.
import http from "k6/http";
import { check } from "k6";
import { BASE, TENANT, SQL_OF, rows, scenarioOptions, ttfd } from "./common.js";

export const options = scenarioOptions("http");

export default function () {
  const res = http.post(`${BASE}/v1/${TENANT}/query`, JSON.stringify({ sql: SQL_OF(), chunk_rows: 1000 }), {
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
