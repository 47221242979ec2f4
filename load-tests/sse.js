// SSE load: each iteration reads one event stream to its `end` event.
// Env: see common.js.
import http from "k6/http";
import { check } from "k6";
import { BASE, TENANT, SQL_OF, rows, scenarioOptions, ttfd } from "./common.js";

export const options = scenarioOptions("sse");

export default function () {
  const res = http.get(`${BASE}/v1/${TENANT}/sse?sql=${encodeURIComponent(SQL_OF())}&chunk_rows=1000`, {
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
