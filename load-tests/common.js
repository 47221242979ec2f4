// Shared by the scenarios: the target, the query, the metrics every scenario reports, and the
// options (a constant number of VUs for a bounded time, thresholds on checks and on time to
// first data). Env: BASE (http://127.0.0.1:8080), TENANT (demo), SQL, DURATION (20s), VUS (8),
// CACHE (on; `off` makes every request's SQL text unique, so that HTTP and SSE answers are
// executed by DuckDB instead of served from the gateway's result cache).
import { Counter, Trend } from "k6/metrics";

export const BASE = __ENV.BASE || "http://127.0.0.1:8080";
export const TENANT = __ENV.TENANT || "demo";
const BASE_SQL = __ENV.SQL || "SELECT * FROM parcels LIMIT 20000";
// A getter, so that with CACHE=off each use is a new text (a trailing comment) and a miss.
export const SQL_OF = () =>
  __ENV.CACHE === "off" ? `${BASE_SQL} -- ${__VU}.${__ITER}.${Math.random()}` : BASE_SQL;
export const SQL = BASE_SQL;
export const ttfd = new Trend("time_to_first_data", true);
export const rows = new Counter("rows_received");

export function scenarioOptions(name) {
  return {
    scenarios: {
      [name]: { executor: "constant-vus", vus: Number(__ENV.VUS || 8), duration: __ENV.DURATION || "20s" },
    },
    thresholds: {
      checks: ["rate>0.99"],
      time_to_first_data: ["p(95)<1000"],
    },
  };
}
