// WebSocket load: each socket runs several queries at once, cancels one of them, and checks
// that every query ends (`end`, or `error` with code `cancelled` for the cancelled one).
// Plain-text frames (compression=none): k6 cannot decode zstd frames.
// Env: see common.js; QUERIES (4 per socket).
import { WebSocket } from "k6/experimental/websockets";
import { check } from "k6";
import { Counter } from "k6/metrics";
import { BASE, TENANT, SQL, rows, scenarioOptions, ttfd } from "./common.js";

const WS_BASE = BASE.replace(/^http/, "ws");
const PER_SOCKET = Number(__ENV.QUERIES || 4);
const ended = new Counter("queries_ended");

export const options = scenarioOptions("ws");

export default function () {
  const ws = new WebSocket(`${WS_BASE}/v1/${TENANT}/ws?compression=none`);
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
