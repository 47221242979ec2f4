// load-tests/cluster.js unchanged (same scenarios, same functions, same options), plus
// thresholds that always pass on `queries_done` per query kind, only so that k6's summary
// export carries each kind's count (scaling.sh divides replica CPU seconds by them).
import { options as base, ws, small, sse, scan } from "../../../load-tests/cluster.js";

export { ws, small, sse, scan };

const counts = {};
for (const q of ["small_http", "small_ws", "sse", "scan"]) counts[`queries_done{query:${q}}`] = ["count>=0"];

export const options = Object.assign({}, base, { thresholds: Object.assign({}, base.thresholds, counts) });
