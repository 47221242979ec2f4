// Shared by the scenarios: the target, the query, the metrics every scenario reports, and the
// options (a constant number of VUs for a bounded time, thresholds on checks and on time to
// first data). Env: BASE (http://127.0.0.1:8080), TENANT (demo), SQL, DURATION (20s), VUS (8).
import { Counter, Trend } from "k6/metrics";

export const BASE = __ENV.BASE || "http://127.0.0.1:8080";
export const TENANT = __ENV.TENANT || "demo";
export const SQL = __ENV.SQL || "SELECT * FROM parcels LIMIT 20000";
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
