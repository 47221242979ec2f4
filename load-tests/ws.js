// WebSocket load: each socket runs several queries at once, cancels one of them, and checks
// that every query ends (`end`, or `error` with code `cancelled` for the cancelled one).
// Plain-text frames (compression=none): k6 cannot decode zstd frames.
// Env: BASE, TENANT, SQL, DURATION (20s), VUS (8), QUERIES (4 per socket).
import { WebSocket } from "k6/experimental/websockets";
import { check } from "k6";
import { Counter, Trend } from "k6/metrics";

const BASE = (__ENV.BASE || "http://127.0.0.1:8080").replace(/^http/, "ws");
const TENANT = __ENV.TENANT || "demo";
const SQL = __ENV.SQL || "SELECT * FROM parcels LIMIT 20000";
const PER_SOCKET = Number(__ENV.QUERIES || 4);
const ttfd = new Trend("time_to_first_data", true);
const rows = new Counter("rows_received");
const ended = new Counter("queries_ended");

export const options = {
  scenarios: {
    ws: { executor: "constant-vus", vus: Number(__ENV.VUS || 8), duration: __ENV.DURATION || "20s" },
  },
  thresholds: {
    checks: ["rate>0.99"],
    time_to_first_data: ["p(95)<1000"],
  },
};

export default function () {
  const ws = new WebSocket(`${BASE}/v1/${TENANT}/ws?compression=none`);
  const sent = {};
  const first = {};
  let open = PER_SOCKET + 1;
  let closed = false;
  ws.onopen = () => {
    for (let i = 0; i < PER_SOCKET; i++) {
      sent[`q${i}`] = Date.now();
      ws.send(JSON.stringify({ type: "query", id: `q${i}`, sql: SQL, chunk_rows: 1000 }));
    }
    // One more, big, cancelled after its first data.
    sent.big = Date.now();
    ws.send(JSON.stringify({ type: "query", id: "big", sql: "SELECT * FROM parcels", chunk_rows: 1000 }));
  };
  ws.onmessage = (e) => {
    for (const line of e.data.split("\n")) {
      if (!line || closed) continue;
      // Data lines are big: look at their prefix only (JSON.parse in k6's JS is slow).
      if (line.startsWith('{"type":"data"')) {
        const id = line.slice(27, line.indexOf('"', 27));
        if (!first[id]) {
          first[id] = true;
          ttfd.add(Date.now() - sent[id]);
          if (id === "big") ws.send(JSON.stringify({ type: "cancel", id: "big" }));
        }
        continue;
      }
      const m = JSON.parse(line);
      // The cancel raced with the big query's own end: nothing left to cancel, not an error.
      if (m.type === "error" && m.code === "unknown_query") continue;
      if (m.type === "end" || m.type === "error") {
        ended.add(1);
        if (m.type === "end") rows.add(m.rows);
        check(m, {
          "query ended": (x) => x.type === "end" || (x.query_id === "big" && x.code === "cancelled"),
        });
        if (--open === 0) {
          closed = true;
          ws.close();
        }
      }
    }
  };
  ws.onerror = (e) => {
    if (closed) return;
    console.error(`socket error: ${e.error}`);
    check(null, { "no socket error": () => false });
  };
}
