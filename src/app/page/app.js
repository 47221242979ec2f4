// duckstream's own dashboard. Hand-written, no dependencies, nothing fetched but the gateway's
// own API (same origin): POST /v1/{tenant}/query (NDJSON, zstd decoded by the browser),
// GET /v1/admin/tenants, GET /v1/{tenant}/datasets, POST /v1/{tenant}/tokens, GET /metrics.
//
// In Live mode it subscribes instead, over GET /v1/{tenant}/ws (see "live mode" below).
//
// For tests: #status[data-state] is idle|running|done|error|cancelled|broken (live|connecting
// in Live mode), window.duckstream.lastResult = {rows, columns, ttfbMs, bytes, status, ...}
// after each run or live result, and window.duckstream.live = {state, rows} plus, in Live mode,
// {socket, version, channel, results, acks, closes, reconnects} (resetLiveReport).

const TABLE_CAP = 1000; // rows put in the DOM
const KEEP_CAP = 100000; // rows kept in memory for the chart and the map
const MAP_CAP = 20000; // shapes drawn
const BAR_CAP = 50; // bars drawn
const XY_CAP = 5000; // points of a line or scatter
const METRICS_MS = 2000;
const SPARK_POINTS = 60;
const TENANT_RE = /^[a-z0-9_-]{1,64}$/;
const SVG_NS = "http://www.w3.org/2000/svg";
const STORE = "duckstream.";

const EXAMPLES = [
  {
    label: "Scan",
    desc: "every parcel, streamed (table, histogram, lon/lat map)",
    sql: "SELECT * FROM parcels",
  },
  {
    label: "Aggregate",
    desc: "parcels per city (bar chart)",
    sql: "SELECT city, count(*) AS parcels, round(avg(population)) AS avg_population\nFROM parcels\nGROUP BY city\nORDER BY parcels DESC",
  },
  {
    label: "Time series",
    desc: "parcels built per year (line chart)",
    sql: "SELECT date_trunc('year', built) AS year, count(*) AS parcels\nFROM parcels\nGROUP BY ALL\nORDER BY year",
  },
  {
    label: "Spatial join",
    desc: "parcels per zone with ST_Contains (bars and a choropleth)",
    sql:
      "WITH counts AS (\n  SELECT z.id, count(*) AS parcels\n  FROM zones z JOIN parcel_points p ON ST_Contains(z.geom, p.geom)\n  GROUP BY z.id\n)\n" +
      "SELECT z.name, c.parcels, z.geom\nFROM counts c JOIN zones z USING (id)\nORDER BY c.parcels DESC, z.name",
  },
  {
    label: "Bounding box",
    desc: "points inside an envelope over Europe (map)",
    sql:
      "SELECT p.id, c.city, c.population, p.geom\nFROM parcel_points p JOIN parcels c USING (id)\n" +
      "WHERE ST_Intersects(p.geom, ST_MakeEnvelope(-10, 35, 30, 60))",
  },
  {
    label: "Zones",
    desc: "the zone polygons (map)",
    sql: "SELECT id, name, geom FROM zones",
  },
  {
    label: "lon/lat",
    desc: "the most populated parcels by lon/lat (scatter and map)",
    sql: "SELECT lon, lat, population, city\nFROM parcels\nWHERE population > 90000",
  },
  {
    label: "Long stream",
    desc: "100 million rows: try Cancel",
    sql: "SELECT i, i % 7 AS bucket, 'row ' || i AS label\nFROM range(100000000) t(i)",
  },
];

// ---------------------------------------------------------------- small helpers

const $ = (id) => document.getElementById(id);
const nf = new Intl.NumberFormat("en");
const nf1 = new Intl.NumberFormat("en", { maximumFractionDigits: 1 });
const nfCompact = new Intl.NumberFormat("en", { notation: "compact", maximumFractionDigits: 1 });
const nfAxis = new Intl.NumberFormat("en", { notation: "compact", maximumFractionDigits: 3 });

function svgEl(tag, attrs, parent) {
  const e = document.createElementNS(SVG_NS, tag);
  if (attrs) for (const k in attrs) if (attrs[k] !== undefined && attrs[k] !== null) e.setAttribute(k, attrs[k]);
  if (parent) parent.appendChild(e);
  return e;
}

function h(tag, props, ...children) {
  const e = document.createElement(tag);
  if (props) {
    for (const k in props) {
      const v = props[k];
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function fmtInt(n) {
  return n === null || n === undefined || !Number.isFinite(n) ? "—" : nf.format(Math.round(n));
}
function fmtBytes(n) {
  if (n === null || n === undefined || !Number.isFinite(n)) return "—";
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (Math.abs(n) >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return (i === 0 ? String(Math.round(n)) : n.toFixed(Math.abs(n) < 10 ? 2 : Math.abs(n) < 100 ? 1 : 0)) + " " + units[i];
}
function fmtMs(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "—";
  if (ms < 10) return ms.toFixed(1) + " ms";
  if (ms < 1000) return Math.round(ms) + " ms";
  if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s";
  const s = Math.round(ms / 1000);
  return Math.floor(s / 60) + " min " + (s % 60) + " s";
}
function fmtRate(n) {
  return n === null || n === undefined || !Number.isFinite(n) ? "—" : nfCompact.format(n);
}
function safeJson(v) {
  return JSON.stringify(v, (k, x) => (typeof x === "bigint" ? x.toString() : x));
}
function truncate(s, n) {
  return s.length > n ? s.slice(0, n - 1) + "…" : s;
}
function clamp(v, lo, hi) {
  return Math.min(hi, Math.max(lo, v));
}
function store(key, value) {
  try {
    if (value === null || value === undefined) sessionStorage.removeItem(STORE + key);
    else sessionStorage.setItem(STORE + key, value);
  } catch { /* storage disabled: nothing kept */ }
}
function load(key) {
  try { return sessionStorage.getItem(STORE + key); } catch { return null; }
}

// Give the event loop a turn (clicks, timers, painting, other fetches) while a fast stream
// keeps the reader busy. A plain task, queued behind everything else that is waiting:
// scheduler.yield() would put this page's parsing ahead of them and starve them.
function yieldToBrowser() {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

// ---------------------------------------------------------------- JSON of DuckDB values

// Integers beyond 2^53 (BIGINT, HUGEINT, wide DECIMAL) stay exact: JSON.parse's reviver gets
// the source text (Chrome 114+, Firefox 135+). Only lines with a long digit run take that path.
const LONG_DIGITS = /\d{16}/;

/** A number whose text has more digits than a double keeps (a wide DECIMAL). */
class Exact {
  constructor(src) { this.src = src; this.num = Number(src); }
  valueOf() { return this.num; }
  toString() { return this.src; }
  toJSON() { return this.src; }
}

function reviver(key, value, ctx) {
  if (typeof value !== "number" || !ctx || typeof ctx.source !== "string") return value;
  const src = ctx.source;
  if (Number.isInteger(value) && !Number.isSafeInteger(value) && /^-?\d+$/.test(src)) return BigInt(src);
  const digits = src.replace(/[eE].*$/, "").replace(/\D/g, "").replace(/^0+/, "");
  if (digits.length > 15 && String(value) !== src) return new Exact(src);
  return value;
}

function parseLine(line) {
  return LONG_DIGITS.test(line) ? JSON.parse(line, reviver) : JSON.parse(line);
}

function toNum(v) {
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  if (v instanceof Exact) return v.num;
  if (typeof v === "boolean") return v ? 1 : 0;
  if (typeof v === "string") {
    if (v === "NaN" || v === "Infinity" || v === "-Infinity") return NaN;
  }
  return NaN;
}

function parseTime(v) {
  if (typeof v !== "string") return NaN;
  // DATE "YYYY-MM-DD", TIMESTAMP "YYYY-MM-DDTHH:MM:SS[.f]" (no zone: UTC), TIMESTAMPTZ "...Z"
  let s = v.replace(/(\.\d{3})\d+/, "$1");
  if (/^[+-]?\d{4,6}-\d\d-\d\d$/.test(s)) s += "T00:00:00Z";
  else if (/^[+-]?\d{4,6}-\d\d-\d\dT[\d:.]+$/.test(s)) s += "Z";
  else if (/^[+-]?\d{4,6}-\d\d-\d\d [\d:.]+$/.test(s)) s = s.replace(" ", "T") + "Z";
  const t = Date.parse(s);
  return Number.isFinite(t) ? t : NaN;
}

const NUM_TYPE = /^(TINYINT|SMALLINT|INTEGER|INT|INT1|INT2|INT4|INT8|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|FLOAT4|FLOAT8|REAL|DOUBLE|DECIMAL|NUMERIC)(\(\s*\d+\s*,\s*\d+\s*\))?$/;
const TIME_TYPE = /^(DATE|TIMESTAMP|DATETIME|TIMESTAMP_S|TIMESTAMP_MS|TIMESTAMP_NS|TIMESTAMP WITH TIME ZONE|TIMESTAMPTZ)$/;
const CAT_TYPE = /^(VARCHAR|TEXT|STRING|CHAR|BPCHAR|UUID|BOOLEAN|BOOL|ENUM)(\(.*\))?$/;

function columnInfo(c, i) {
  const type = String(c.type || "");
  const t = type.toUpperCase();
  let kind = "other";
  if (NUM_TYPE.test(t)) kind = "number";
  else if (TIME_TYPE.test(t)) kind = "time";
  else if (t.startsWith("GEOMETRY")) kind = "geometry";
  else if (CAT_TYPE.test(t)) kind = "category";
  const dec = /^(?:DECIMAL|NUMERIC)\(\s*\d+\s*,\s*(\d+)\s*\)$/.exec(t);
  return { index: i, name: String(c.name), type, kind, scale: dec ? Number(dec[1]) : null, crs: c.crs || null, sniffed: false };
}

/** Types DuckDB names by alias (a user ENUM `mood`, `JSON`): decide from the values. */
function sniffKinds(cols, rows) {
  for (const c of cols) {
    if (c.kind !== "other" || c.sniffed) continue;
    const sample = rows.slice(0, 200).map((r) => r[c.index]).filter((v) => v !== null && v !== undefined);
    if (!sample.length) continue;
    c.sniffed = true;
    if (sample.every((v) => typeof v === "string") && !/\[\]$|^(STRUCT|MAP|UNION|LIST|ARRAY|JSON|BLOB|BIT|INTERVAL|TIME)/i.test(c.type)) c.kind = "category";
    else if (sample.every((v) => typeof v === "number" || typeof v === "bigint")) c.kind = "number";
    else if (sample.some((v) => isGeo(v))) c.kind = "geometry";
  }
}

const GEO_TYPES = new Set(["Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon", "GeometryCollection"]);
function isGeo(v) {
  return v !== null && typeof v === "object" && GEO_TYPES.has(v.type) &&
    (Array.isArray(v.coordinates) || Array.isArray(v.geometries));
}

function countVertices(g) {
  const walk = (c) => (Array.isArray(c) && typeof c[0] === "number" ? 1 : Array.isArray(c) ? c.reduce((a, x) => a + walk(x), 0) : 0);
  return g.type === "GeometryCollection" ? g.geometries.reduce((a, x) => a + (isGeo(x) ? countVertices(x) : 0), 0) : walk(g.coordinates);
}

function geoSummary(g) {
  if (g.type === "GeometryCollection") return g.geometries.length ? `GeometryCollection (${g.geometries.length})` : "GeometryCollection EMPTY";
  const c = g.coordinates;
  if (!c.length) return g.type + " EMPTY";
  if (g.type === "Point") return `Point (${c.slice(0, 3).map((x) => +Number(x).toFixed(6)).join(" ")})`;
  const v = countVertices(g);
  const parts = g.type.startsWith("Multi") ? `${c.length} parts, ` : "";
  return `${g.type} (${parts}${nf.format(v)} vertices)`;
}

/** JSON text of a nested value, big integers and wide decimals written exactly. */
function valueJson(v) {
  if (v === null || v === undefined) return "null";
  if (typeof v === "bigint") return v.toString();
  if (v instanceof Exact) return v.src;
  if (Array.isArray(v)) return "[" + v.map(valueJson).join(",") + "]";
  if (typeof v === "object") return "{" + Object.keys(v).map((k) => JSON.stringify(k) + ":" + valueJson(v[k])).join(",") + "}";
  return JSON.stringify(v);
}

/** Text of one value as shown in the table. */
function cellText(v, col) {
  if (v === null || v === undefined) return null;
  switch (typeof v) {
    case "bigint": return v.toString();
    case "number":
      return col && col.scale !== null && Number.isFinite(v) && Math.abs(v) < 1e15 ? v.toFixed(col.scale) : String(v);
    case "string": return v;
    case "boolean": return String(v);
    default:
      if (v instanceof Exact) return v.src;
      if (isGeo(v)) return geoSummary(v);
      return valueJson(v);
  }
}

// ---------------------------------------------------------------- page state

const app = {
  seq: 0,
  run: null, // the run on screen
  last: null,
  mapView: null, // {zoom, cx, cy} in world units, null = fit
  resources: [], // PerformanceResourceTiming entries of queries
};

window.duckstream = {
  lastResult: null,
  live: { state: "idle", rows: 0 },
  metrics: null, // the panel's numbers after each scrape of /metrics
  metricsScrapes: 0,
};

function setStatus(state, text) {
  const s = $("status");
  s.dataset.state = state;
  s.textContent = text;
  window.duckstream.live.state = state;
  document.body.dataset.state = state;
}

function credential() {
  return $("credential").value.trim();
}

/** A token has a JWT's shape, three dot-separated parts (the gateway's own rule); else a key. */
function isToken(c) {
  return c.split(".").length === 3;
}

function authHeaders() {
  const c = credential();
  return c ? { Authorization: "Bearer " + c } : {};
}

// ---------------------------------------------------------------- resource timing

if (typeof PerformanceObserver !== "undefined") {
  try {
    performance.setResourceTimingBufferSize?.(2000);
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        if (e.name.includes("/v1/") && e.name.endsWith("/query")) {
          app.resources.push(e);
          if (app.resources.length > 200) app.resources.splice(0, 100);
        }
      }
    }).observe({ type: "resource", buffered: true });
  } catch { /* no resource timing: the wire size stays unknown */ }
}

async function findResource(r) {
  const deadline = performance.now() + 2000;
  for (;;) {
    const e = app.resources.find((x) => x.name === r.url && x.startTime >= r.t0 - 2 && !x.claimed);
    if (e) { e.claimed = true; return e; }
    if (performance.now() > deadline) return null;
    await new Promise((res) => setTimeout(res, 100));
  }
}

// ---------------------------------------------------------------- running a query

function newRun(tenant, body) {
  const url = new URL(`/v1/${encodeURIComponent(tenant)}/query`, location.href).href;
  return {
    id: ++app.seq,
    tenant,
    url,
    body,
    controller: new AbortController(),
    t0: performance.now(),
    tHeaders: null,
    tFirst: null,
    tEnd: null,
    columns: null,
    rows: 0,
    chunks: 0,
    kept: [],
    pending: [], // rows waiting for the DOM
    tableRows: 0,
    decoded: 0,
    final: null, // the end or error line
    outcome: null, // done | error | cancelled | broken
    error: null,
    brokenReason: null,
    httpStatus: null,
    queryId: null,
    cache: null,
    encoding: null,
    dataVersion: null,
    progress: null,
    cancelled: false,
    rateSamples: [],
    lastChart: 0,
    lastMap: 0,
    drawnRows: -1,
    mappedRows: -1,
    map: null,
    encodedBytes: null,
    transferSize: null,
    extraLines: 0,
  };
}

/** The form's tenant and query body, or null (after saying what is wrong). */
function readQuery() {
  const tenant = $("tenant").value.trim();
  const sql = $("sql").value;
  if (!TENANT_RE.test(tenant) || tenant === "admin") {
    showClientError("invalid_tenant", "A tenant name is 1 to 64 of a-z, 0-9, _ and - (and not “admin”).");
    $("tenant").focus();
    return null;
  }
  if (!sql.trim()) {
    showClientError("invalid_request", "Write a SQL statement first.");
    $("sql").focus();
    return null;
  }
  const body = { sql, geometry: $("geometry-format").value };
  const chunk = Number($("chunk-rows").value);
  if (Number.isInteger(chunk) && chunk >= 1 && chunk <= 100000) body.chunk_rows = chunk;
  if ($("progress-lines").checked) body.progress = true;
  store("tenant", tenant);
  store("sql", sql);
  return { tenant, body };
}

/** Stops the one-shot query on screen, if one is still streaming. */
function supersedeRun() {
  if (app.run && !app.run.outcome) {
    app.run.superseded = true;
    app.run.cancelled = true;
    app.run.controller.abort();
  }
}

/** Run (the button, Ctrl+Enter): one query over HTTP, or in Live mode a subscription. */
function submitQuery() {
  const q = readQuery();
  if (!q) return;
  if ($("live").checked) startLive(q.tenant, q.body);
  else startRun(q.tenant, q.body);
}

async function startRun(tenant, body) {
  stopLive();
  supersedeRun();
  const r = newRun(tenant, body);
  app.run = r;
  app.mapView = null;
  resetResults(r);
  setStatus("running", "running…");
  $("cancel").disabled = false;
  $("results").setAttribute("aria-busy", "true");
  r.ticker = setInterval(() => tick(r), 100);
  try {
    await execute(r);
  } catch (e) {
    // a bug in this page, not the gateway: say so rather than hang in "running"
    if (!r.outcome) {
      r.outcome = r.cancelled ? "cancelled" : "broken";
      r.brokenReason = "the page failed while reading: " + (e && e.message ? e.message : String(e));
    }
    console.warn(e);
  }
  finish(r);
}

async function execute(r) {
  const headers = { "Content-Type": "application/json", ...authHeaders() };
  let resp;
  try {
    resp = await fetch(r.url, {
      method: "POST",
      headers,
      body: JSON.stringify(r.body),
      signal: r.controller.signal,
      cache: "no-store",
    });
  } catch (e) {
    if (r.cancelled) { r.outcome = "cancelled"; return; }
    r.outcome = "error";
    r.error = { code: "network_error", message: "Could not reach the gateway (" + (e && e.message ? e.message : e) + ")." };
    return;
  }
  r.tHeaders = performance.now();
  r.httpStatus = resp.status;
  r.queryId = resp.headers.get("x-query-id");
  r.cache = resp.headers.get("x-cache");
  r.encoding = resp.headers.get("content-encoding") || "identity";
  r.dataVersion = resp.headers.get("x-data-version");
  if (!resp.ok) {
    let text = "";
    let body = null;
    try { text = await resp.text(); body = JSON.parse(text); } catch { /* not JSON */ }
    if (r.cancelled) { r.outcome = "cancelled"; return; }
    r.outcome = "error";
    r.error = {
      code: (body && body.code) || "http_" + resp.status,
      message: (body && body.message) || text || resp.statusText || "HTTP " + resp.status,
      status: resp.status,
    };
    return;
  }
  if (!resp.body) {
    r.outcome = "broken";
    r.brokenReason = "the response has no body";
    return;
  }

  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  let lastYield = performance.now();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (r.cancelled) break;
      r.decoded += value.byteLength;
      buf += decoder.decode(value, { stream: true });
      let start = 0;
      let nl;
      while ((nl = buf.indexOf("\n", start)) !== -1) {
        const line = buf.slice(start, nl);
        start = nl + 1;
        if (line.length && !handleLine(r, line)) break;
        if (performance.now() - lastYield > 16) {
          buf = buf.slice(start);
          start = 0;
          await yieldToBrowser();
          lastYield = performance.now();
          if (r.cancelled) break;
        }
      }
      if (r.cancelled || r.outcome === "broken") break;
      buf = buf.slice(start);
    }
    if (!r.cancelled && r.outcome !== "broken") {
      buf += decoder.decode();
      if (buf.trim()) handleLine(r, buf.trim());
    }
  } catch (e) {
    if (r.cancelled) { r.outcome = "cancelled"; return; }
    r.outcome = "broken";
    r.brokenReason = "the connection broke: " + (e && e.message ? e.message : String(e));
    return;
  } finally {
    if (r.cancelled) reader.cancel().catch(() => { /* already closed or aborted */ });
  }
  if (r.cancelled) { r.outcome = "cancelled"; return; }
  if (r.outcome === "broken") return;
  if (!r.final) {
    r.outcome = "broken";
    r.brokenReason = "the stream ended without an end or error line";
  } else if (r.final.type === "end") {
    r.outcome = "done";
  } else {
    r.outcome = "error";
    r.error = { code: r.final.code || "error", message: r.final.message || "", line: true };
  }
}

/** Handles one NDJSON line; false stops reading (an unparseable line). */
function handleLine(r, line) {
  let m;
  try {
    m = parseLine(line);
  } catch (e) {
    r.outcome = "broken";
    r.brokenReason = "a line is not JSON: " + truncate(line, 120);
    return false;
  }
  applyLine(r, m);
  return true;
}

/** Adds one parsed line (metadata, data, progress, end, error) to the run `r`. */
function applyLine(r, m) {
  if (r.final) { r.extraLines++; return; }
  switch (m.type) {
    case "metadata":
      r.columns = (m.columns || []).map(columnInfo);
      if (m.query_id) r.queryId = m.query_id;
      renderHead(r);
      break;
    case "data": {
      const rows = Array.isArray(m.rows) ? m.rows : [];
      if (r.tFirst === null) r.tFirst = performance.now();
      r.chunks++;
      r.rows += rows.length;
      if (r.kept.length < KEEP_CAP) {
        const room = KEEP_CAP - r.kept.length;
        for (let i = 0; i < rows.length && i < room; i++) r.kept.push(rows[i]);
      }
      if (r.tableRows + r.pending.length < TABLE_CAP) {
        const room = TABLE_CAP - r.tableRows - r.pending.length;
        for (let i = 0; i < rows.length && i < room; i++) r.pending.push(rows[i]);
      }
      break;
    }
    case "progress":
      r.progress = m;
      break;
    case "end":
    case "error":
      r.final = m;
      r.tEnd = performance.now();
      break;
    default:
      // other line types (update, heartbeat…) carry no rows for a one-shot query
      break;
  }
}

function cancelRun() {
  if (live.on) { // Cancel (or Esc) in Live mode ends the subscription
    $("live").checked = false;
    stopLive();
    setStatus("cancelled", "live mode off");
    return;
  }
  const r = app.run;
  if (!r || r.outcome || r.final) return;
  r.cancelled = true;
  r.controller.abort();
  setStatus("cancelled", "cancelled");
}

function tick(r) {
  if (app.run !== r) return;
  flushTable(r);
  updateStats(r);
  const now = performance.now();
  if (r.kept.length !== r.drawnRows && now - r.lastChart > 1000) {
    r.lastChart = now;
    r.drawnRows = r.kept.length;
    renderChart(r);
  }
  if (r.kept.length !== r.mappedRows && now - r.lastMap > 1500) {
    r.lastMap = now;
    r.mappedRows = r.kept.length;
    renderMap(r);
  }
  window.duckstream.live.rows = r.rows;
}

async function finish(r) {
  clearInterval(r.ticker);
  if (!r.tEnd) r.tEnd = performance.now();
  if (r.superseded || app.run !== r) return;
  $("cancel").disabled = true;
  $("results").removeAttribute("aria-busy");
  flushTable(r);
  r.drawnRows = r.kept.length;
  r.mappedRows = r.kept.length;
  renderChart(r);
  renderMap(r);
  updateStats(r);
  showOutcome(r);
  publish(r);
  // The encoded size is known once the body is complete (not for a cancelled fetch).
  // Chrome records an aborted fetch too, with only its headers: no size for cancelled or
  // broken streams rather than a wrong one.
  const complete = r.outcome === "done" || r.outcome === "error";
  const e = complete ? await findResource(r) : null;
  if (e && app.run === r) {
    r.encodedBytes = e.encodedBodySize || null;
    r.transferSize = e.transferSize || null;
    if (!r.encodedBytes && !r.transferSize) r.encodedBytes = r.transferSize = null;
    updateStats(r);
    publish(r);
  } else if (app.run === r) {
    r.wireUnknown = true;
    updateStats(r);
  }
}

function publish(r) {
  window.duckstream.lastResult = {
    id: r.id,
    status: r.outcome,
    rows: r.rows,
    columns: (r.columns || []).map((c) => ({ name: c.name, type: c.type })),
    ttfbMs: r.tFirst === null ? null : +(r.tFirst - r.t0).toFixed(1),
    bytes: r.decoded,
    encodedBytes: r.encodedBytes,
    transferSize: r.transferSize,
    contentEncoding: r.encoding,
    elapsedMs: +((r.tEnd || performance.now()) - r.t0).toFixed(1),
    chunks: r.chunks,
    end: r.final && r.final.type === "end" ? { rows: r.final.rows, chunks: r.final.chunks, elapsed_ms: r.final.elapsed_ms } : null,
    error: r.error ? { code: r.error.code, message: r.error.message } : null,
    broken: r.outcome === "broken" ? r.brokenReason : null,
    queryId: r.queryId,
    cache: r.cache,
    httpStatus: r.httpStatus,
    tenant: r.tenant,
    sql: r.body.sql,
  };
  window.duckstream.live.rows = r.rows;
}

function showOutcome(r) {
  const box = $("error-box");
  box.hidden = true;
  box.replaceChildren();
  switch (r.outcome) {
    case "done": {
      const end = r.final;
      let text = `done — ${nf.format(end.rows)} row${end.rows === 1 ? "" : "s"} in ${fmtMs(r.tEnd - r.t0)}`;
      if (typeof end.rows === "number" && end.rows !== r.rows) text += ` (counted ${nf.format(r.rows)}!)`;
      setStatus("done", text);
      if (typeof end.rows === "number" && end.rows !== r.rows) {
        showBox("warning", "Row count mismatch", `The end line says ${end.rows} rows, ${r.rows} arrived.`);
      }
      break;
    }
    case "error": {
      const e = r.error || {};
      setStatus("error", "error — " + (e.code || "error"));
      const where = e.line ? "in the stream (after some rows)" : e.status ? `HTTP ${e.status}` : "in the page";
      let hint = "";
      if (e.code === "unauthenticated" || e.code === "token_expired") hint = "Enter an API key or a fresh token above.";
      else if (e.code === "access_denied") hint = "The credential is for another tenant, or may not do this.";
      else if (e.code === "tenant_not_found") hint = "Check the tenant name.";
      showBox("error", e.code || "error", e.message || "", where, hint);
      break;
    }
    case "cancelled":
      setStatus("cancelled", `cancelled — after ${nf.format(r.rows)} rows`);
      break;
    case "broken":
    default:
      setStatus("broken", "broken — stream ended without end/error");
      showBox("error", "broken stream", (r.brokenReason || "the stream ended without an end or error line") +
        `. ${nf.format(r.rows)} rows arrived; the result is incomplete.`);
      break;
  }
}

function showBox(kind, code, message, where, hint) {
  const box = $("error-box");
  box.className = "error-box " + kind;
  box.replaceChildren(...[
    h("p", { class: "code" }, h("strong", { text: code }), where ? h("span", { class: "muted", text: " · " + where }) : null),
    message ? h("pre", { class: "message", text: message }) : null,
    hint ? h("p", { class: "hint", text: hint }) : null,
  ].filter(Boolean));
  box.hidden = false;
}

function showClientError(code, message) {
  if (app.run && !app.run.outcome) return; // keep the running query's view
  setStatus("error", "error — " + code);
  showBox("error", code, message, "in the page");
  window.duckstream.lastResult = {
    id: ++app.seq, status: "error", rows: 0, columns: [], ttfbMs: null, bytes: 0, error: { code, message },
  };
}

// ---------------------------------------------------------------- live mode

// Live mode subscribes to the query over a WebSocket (`?compression=none`: text lines) and
// redraws the table, chart and map with each whole result (update → metadata → data… → end).
// A replica that restarts closes its sockets with 1012 and one that dies just drops them
// (1006): on any close, or a connect that fails, the page comes back with capped exponential
// backoff and jitter, and resubscribes with the version of the last result it holds whole.
// The gateway then answers "resumed":"unchanged" and sends nothing, or "replaced" and the
// current result: no gap, no duplicate. The same loop as README's WebSocket example.

const LIVE_ID = "page"; // the subscription's id on its socket (one subscription per socket)
const BACKOFF_MS = 100; // the first retry; doubles per failed attempt…
const BACKOFF_CAP_MS = 5000; // …up to this, then ×0.5–1.5 so that clients do not come back in step
const LIVE_KEEP = 100; // entries kept in window.duckstream.live's lists
// A connection whose peer vanished without a close (a dead replica behind a NAT or a balancer
// that never says so) looks open forever. A quiet subscription hears a heartbeat at least
// every 30 s (ws_heartbeat_secs ≤ 30), so silence past this means the socket is dead.
const LIVE_SILENCE_MS = 65000;
// Errors that end a subscription but may not come again on another try (on another replica,
// with the lake back, with a fresh token for an API key); any other (invalid_sql,
// forbidden…) would, and ends Live mode.
const LIVE_RETRY = new Set(["shutting_down", "storage_unavailable", "tenant_unavailable", "too_busy", "timeout", "internal"]);

const live = {
  on: false,
  gen: 0, // bumped by every start and stop: a socket or timer of an older one ignores itself
  tenant: null,
  body: null, // the query subscribed (sql, geometry, chunk_rows)
  ws: null,
  wsOpen: false, // whether `ws` opened: a close before that is a failed connect
  attempt: 0, // failed connects since the last open: the backoff's exponent
  opened: 0, // sockets opened for this subscription (reconnects = opened - 1)
  timer: 0, // the pending reconnect
  watchdog: 0,
  channel: null, // the channel id that this socket's result lines carry as query_id
  held: null, // the version of the result on screen, held whole: sent on resubscribe
  pending: null, // the result being received: {version, lines, bytes, t0, tFirst}
};

/** window.duckstream.live, for tests: the page's state plus the subscription's. */
function publishLive(patch) {
  Object.assign(window.duckstream.live, patch);
}

function resetLiveReport() {
  publishLive({
    socket: "off", // off | connecting | open | waiting (to reconnect)
    version: null, // the version of the result held whole
    channel: null,
    results: [], // {version, rows, head, at} per whole result shown, oldest first
    acks: [], // each `subscribed`'s "resumed" (null for a fresh subscription)
    closes: [], // each close's code (1012 restarting, 1006 dropped…), "silent", or why no
    // connect was tried ("no token: …") or the subscription ended (an error's code)
    reconnects: 0, // sockets reopened after a close
  });
}

function pushCapped(list, item) {
  list.push(item);
  if (list.length > LIVE_KEEP) list.shift();
}

function startLive(tenant, body) {
  stopLive();
  supersedeRun();
  live.on = true;
  live.gen++;
  live.tenant = tenant;
  // Progress lines of a re-run would come before its `update`: the page shows whole results only.
  live.body = { sql: body.sql, geometry: body.geometry, chunk_rows: body.chunk_rows };
  live.attempt = 0;
  live.opened = 0;
  live.held = null;
  app.mapView = null; // a new query is fitted once; its later results keep the user's view
  resetLiveReport();
  $("cancel").disabled = false;
  setStatus("connecting", "live: connecting…");
  connectLive(live.gen);
}

/** Ends Live mode: closes the socket and forgets the pending reconnect. */
function stopLive() {
  if (!live.on) return;
  live.on = false;
  live.gen++;
  clearTimeout(live.timer);
  clearTimeout(live.watchdog);
  const ws = live.ws;
  live.ws = null;
  live.pending = null;
  if (ws) { detach(ws); ws.close(1000, "live mode off"); }
  $("cancel").disabled = true;
  publishLive({ socket: "off" });
}

function detach(ws) {
  ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
}

/** A browser WebSocket cannot send headers: the credential goes as `?token=`, which takes a
 * token only (three dot-separated parts). An API key is first swapped for a short-lived token,
 * on every connect, so that a reconnect an hour later does not carry an expired one. */
async function socketToken() {
  const c = credential();
  if (!c || isToken(c)) return c || null;
  const res = await fetch(`/v1/${encodeURIComponent(live.tenant)}/tokens`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...authHeaders() },
    body: "{}",
    cache: "no-store",
  });
  const body = await res.json().catch(() => null);
  if (!res.ok || !body || !body.token) throw new Error((body && body.code) || "HTTP " + res.status);
  return body.token;
}

function liveUrl(token) {
  const url = new URL(`/v1/${encodeURIComponent(live.tenant)}/ws`, location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("compression", "none"); // text lines: no zstd decoder in this page
  if (token) url.searchParams.set("token", token);
  return url.href;
}

async function connectLive(gen) {
  publishLive({ socket: "connecting" });
  let ws;
  try {
    const token = await socketToken();
    if (gen !== live.gen) return; // stopped or restarted meanwhile
    ws = new WebSocket(liveUrl(token));
  } catch (e) {
    if (gen !== live.gen) return;
    // The gateway is unreachable (a restart) or refused the key: try again later.
    const why = "no token: " + (e && e.message ? e.message : e);
    pushCapped(window.duckstream.live.closes, why);
    scheduleReconnect(why);
    return;
  }
  live.ws = ws;
  live.wsOpen = false;
  live.channel = null;
  live.pending = null; // a result half received on the last socket is not held: drop it
  ws.onopen = () => onLiveOpen(ws);
  ws.onmessage = (ev) => onLiveMessage(ws, ev);
  // A refused handshake or a dropped connection fires error then close: close alone decides.
  ws.onclose = (ev) => dropLive(ws, ev.code);
  armWatchdog(ws); // a handshake to a host that vanished can hang for minutes
}

function onLiveOpen(ws) {
  live.attempt = 0;
  live.wsOpen = true;
  live.opened++;
  publishLive({ socket: "open", reconnects: Math.max(0, live.opened - 1) });
  armWatchdog(ws);
  // `version` (left out before the first result): the result held whole, so that the
  // gateway sends it again only if it changed while this page was away.
  ws.send(JSON.stringify({ type: "subscribe", id: LIVE_ID, ...live.body, version: live.held ?? undefined }));
}

function armWatchdog(ws) {
  clearTimeout(live.watchdog);
  live.watchdog = setTimeout(() => dropLive(ws, "silent"), LIVE_SILENCE_MS);
}

/** The socket `ws` is gone (closed with `code`, or given up on): come back later. */
function dropLive(ws, code) {
  if (ws !== live.ws) return; // an older socket, already replaced or stopped
  live.ws = null;
  live.pending = null;
  clearTimeout(live.watchdog);
  detach(ws);
  if (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN) ws.close();
  pushCapped(window.duckstream.live.closes, code);
  scheduleReconnect(live.wsOpen ? closeReason(code) : "could not connect");
}

/** Why the socket went, in words, from its close code or what else ended it. */
function closeReason(code) {
  if (code === 1012) return "the server is restarting";
  if (code === 1006) return "the connection dropped";
  if (code === "silent") return "the connection went silent";
  if (typeof code === "number") return `the connection closed (${code})`;
  return code; // the code of an error that ended the subscription
}

/** Connects again after a capped, jittered, exponential delay (README's formula). */
function scheduleReconnect(why) {
  const delay = Math.min(BACKOFF_CAP_MS, BACKOFF_MS * 2 ** live.attempt) * (0.5 + Math.random());
  live.attempt++;
  setStatus("connecting", `live: ${why}; reconnecting in ${fmtMs(delay)}…`);
  publishLive({ socket: "waiting" });
  const gen = live.gen;
  clearTimeout(live.timer);
  live.timer = setTimeout(() => { if (gen === live.gen) connectLive(gen); }, delay);
}

function onLiveMessage(ws, ev) {
  if (ws !== live.ws) return;
  armWatchdog(ws);
  if (typeof ev.data !== "string") return; // compression=none: every message is text
  for (const line of ev.data.split("\n")) {
    if (!line) continue;
    let m;
    try { m = parseLine(line); } catch { continue; /* not JSON: skip the line, keep the socket */ }
    onLiveLine(ws, m, line.length + 1);
    if (ws !== live.ws) return; // the line ended this socket
  }
}

/** One line of the socket: the acknowledgement, then per result update, metadata, data…, end. */
function onLiveLine(ws, m, bytes) {
  if (m.query_id === LIVE_ID) return onLiveControl(ws, m);
  if (m.query_id !== live.channel) return;
  switch (m.type) {
    case "update":
      live.pending = { version: m.version, lines: [], bytes, t0: performance.now(), tFirst: null };
      break;
    case "metadata":
    case "data":
      if (!live.pending) break; // the tail of a result that began before this socket
      if (m.type === "data" && live.pending.tFirst === null) live.pending.tFirst = performance.now();
      live.pending.lines.push(m);
      live.pending.bytes += bytes;
      break;
    case "end":
    case "error": // a failed re-run is the channel's current result too, with its version
      if (!live.pending) break;
      live.pending.bytes += bytes;
      showLiveResult(live.pending, m);
      live.pending = null;
      break;
    default: // heartbeat (alive, still that version), progress
      break;
  }
}

/** Lines with the page's own id: the acknowledgement, or the end of the subscription. */
function onLiveControl(ws, m) {
  if (m.type === "subscribed") {
    live.channel = m.channel;
    pushCapped(window.duckstream.live.acks, m.resumed || null);
    publishLive({ channel: m.channel });
    if (m.resumed === "unchanged") setStatus("live", `live · resumed, version ${live.held} unchanged`);
    else if (m.resumed === "replaced") setStatus("connecting", "live: resumed; the data changed meanwhile, receiving it…");
    else setStatus("connecting", "live: subscribed, waiting for the result…");
  } else if (m.type === "error") {
    // The subscription ended. A fresh token (for an API key) or another replica may help with
    // some codes; the others would only fail again.
    const retry = LIVE_RETRY.has(m.code) || (m.code === "token_expired" && !isToken(credential()));
    if (retry) return dropLive(ws, m.code);
    $("live").checked = false;
    stopLive();
    const r = newRun(live.tenant, live.body);
    r.outcome = "error";
    r.error = { code: m.code || "error", message: m.message || "", line: true };
    resetResults(r);
    finishLiveRun(r);
  }
}

/** A whole result arrived: replace the one on screen with it and remember its version. */
function showLiveResult(p, final) {
  const r = newRun(live.tenant, live.body);
  r.t0 = p.t0;
  app.run = r;
  resetResults(r);
  for (const m of p.lines) applyLine(r, m);
  applyLine(r, final);
  r.tFirst = p.tFirst;
  r.decoded = p.bytes;
  r.dataVersion = p.version;
  if (final.type === "end") r.outcome = "done";
  else {
    r.outcome = "error";
    r.error = { code: final.code || "error", message: final.message || "", line: true };
  }
  finishLiveRun(r);
  live.held = p.version;
  const report = window.duckstream.live;
  pushCapped(report.results, {
    version: p.version,
    rows: r.rows,
    head: JSON.parse(safeJson(r.kept.slice(0, 10))),
    error: r.error ? r.error.code : null,
    at: Date.now(),
  });
  publishLive({ version: p.version });
  const when = new Date().toLocaleTimeString();
  if (r.outcome === "done") setStatus("live", `live · version ${p.version} · ${nf.format(r.rows)} row${r.rows === 1 ? "" : "s"} · ${when}`);
}

/** Draws a live result (or the subscription's end) like a finished one-shot query. */
function finishLiveRun(r) {
  r.tEnd = performance.now();
  r.httpStatus = 101;
  r.queryId = live.channel;
  r.cache = r.dataVersion === null ? "subscription" : `subscription, version ${r.dataVersion}`;
  r.encoding = "none (WebSocket)";
  r.wireUnknown = true; // a WebSocket's frames have no resource timing
  app.run = r;
  flushTable(r);
  renderChart(r);
  renderMap(r);
  updateStats(r);
  showOutcome(r);
  publish(r);
}

// ---------------------------------------------------------------- stats

function updateStats(r) {
  const now = r.outcome ? r.tEnd : performance.now();
  const elapsed = now - r.t0;
  $("stat-rows").textContent = nf.format(r.rows) +
    (r.final && r.final.type === "end" && r.final.rows !== r.rows ? ` (end says ${nf.format(r.final.rows)})` : "");

  // rows/s: over the last second while running, the whole stream's average once finished
  let rate = null;
  if (!r.outcome) {
    r.rateSamples.push([now, r.rows]);
    while (r.rateSamples.length > 2 && now - r.rateSamples[0][0] > 1000) r.rateSamples.shift();
    const [t0, n0] = r.rateSamples[0];
    if (now - t0 > 150) rate = ((r.rows - n0) * 1000) / (now - t0);
  } else if (r.tFirst !== null && r.rows > 0) {
    const span = Math.max(1, (r.tEnd || now) - r.t0);
    rate = (r.rows * 1000) / span;
  }
  $("stat-rate").textContent = rate === null ? "—" : fmtRate(rate) + (r.outcome ? " avg" : "");

  $("stat-ttfb").textContent = r.tFirst !== null
    ? fmtMs(r.tFirst - r.t0) + (r.tHeaders !== null ? ` (headers ${fmtMs(r.tHeaders - r.t0)})` : "")
    : r.outcome ? "— (no data line)" : r.tHeaders !== null ? `… (headers ${fmtMs(r.tHeaders - r.t0)})` : "…";
  $("stat-elapsed").textContent = fmtMs(elapsed) +
    (r.final && r.final.type === "end" && Number.isFinite(r.final.elapsed_ms) ? ` (server ${fmtMs(r.final.elapsed_ms)})` : "");
  $("stat-bytes").textContent = fmtBytes(r.decoded) + " NDJSON";
  let wire = "…";
  if (r.encodedBytes !== null || r.transferSize !== null) {
    wire = `${fmtBytes(r.encodedBytes)} body · ${fmtBytes(r.transferSize)} transfer`;
    if (r.encodedBytes && r.decoded) wire += ` (${nf1.format(r.decoded / r.encodedBytes)}× smaller)`;
  } else if (r.outcome) {
    wire = r.wireUnknown || r.outcome === "cancelled" ? "n/a" + (r.outcome === "cancelled" ? " (cancelled)" : "") : "…";
  }
  $("stat-wire").textContent = wire;
  $("stat-encoding").textContent = r.encoding || "…";
  $("stat-cache").textContent = r.httpStatus === null ? "…" : r.cache ? r.cache : "miss (executed)";
  $("stat-qid").textContent = r.queryId || "—";
  const p = $("progress");
  if (r.progress && Number.isFinite(r.progress.percentage) && !r.outcome) {
    p.hidden = false;
    p.value = r.progress.percentage;
    p.textContent = r.progress.percentage + "%";
  } else if (r.outcome) {
    p.hidden = true;
  }
}

function resetStats() {
  for (const id of ["stat-rows", "stat-rate", "stat-ttfb", "stat-elapsed", "stat-bytes", "stat-wire", "stat-encoding", "stat-cache", "stat-qid"]) {
    $(id).textContent = "…";
  }
  $("progress").hidden = true;
  $("error-box").hidden = true;
}

// ---------------------------------------------------------------- the table

function resetResults(r) {
  resetStats();
  const table = $("rows");
  table.tHead.replaceChildren();
  table.tBodies[0].replaceChildren();
  $("rows-note").textContent = "Waiting for the first rows…";
  clearSvg($("chart"), "Waiting for rows…");
  $("chart-note").textContent = "";
  clearSvg($("map"), "");
  $("map-note").textContent = "";
  $("map-legend").hidden = true;
  $("map-info").textContent = "";
  window.duckstream.live.rows = 0;
  void r;
}

function renderHead(r) {
  const tr = h("tr", null, h("th", { scope: "col", class: "rownum" }, "#"));
  for (const c of r.columns) {
    tr.append(h("th", { scope: "col", class: c.kind === "number" ? "num" : null, title: c.type },
      h("span", { class: "colname", text: c.name }), h("span", { class: "coltype", text: c.type })));
  }
  $("rows").tHead.replaceChildren(tr);
}

function flushTable(r) {
  if (r.pending.length && r.columns) {
    const frag = document.createDocumentFragment();
    const cols = r.columns;
    for (const row of r.pending) {
      r.tableRows++;
      const tr = document.createElement("tr");
      const num = document.createElement("td");
      num.className = "rownum";
      num.textContent = r.tableRows;
      tr.appendChild(num);
      for (let i = 0; i < cols.length; i++) {
        const td = document.createElement("td");
        const v = row[i];
        const text = cellText(v, cols[i]);
        if (text === null) {
          td.textContent = "NULL";
          td.className = "null";
        } else {
          if (cols[i].kind === "number" || typeof v === "number" || typeof v === "bigint") td.className = "num";
          if (text.length > 160) {
            td.textContent = truncate(text, 160);
            td.title = truncate(text, 4000);
          } else {
            td.textContent = text;
            if (v !== null && typeof v === "object" && isGeo(v)) td.title = truncate(safeJson(v), 4000);
          }
        }
        tr.appendChild(td);
      }
      frag.appendChild(tr);
    }
    r.pending.length = 0;
    $("rows").tBodies[0].appendChild(frag);
  }
  let note;
  if (!r.columns) note = r.outcome ? "No result." : "Waiting for the first rows…";
  else if (r.rows === 0) note = r.outcome ? "No rows." : "Waiting for the first rows…";
  else if (r.rows > r.tableRows) note = `Showing the first ${nf.format(r.tableRows)} of ${nf.format(r.rows)} rows${r.outcome ? "" : " (still counting)"}.`;
  else note = `${nf.format(r.rows)} row${r.rows === 1 ? "" : "s"}${r.outcome ? "" : " so far"}.`;
  $("rows-note").textContent = note;
}

// ---------------------------------------------------------------- scales, ticks

function niceStep(span, count) {
  if (!(span > 0) || !Number.isFinite(span)) return 1;
  const raw = span / Math.max(1, count);
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const f = raw / p;
  return (f >= 7.5 ? 10 : f >= 3.5 ? 5 : f >= 1.5 ? 2 : 1) * p;
}

function decimalsOf(step) {
  return Math.max(0, Math.min(12, -Math.floor(Math.log10(step) + 1e-9)));
}

function ticks(lo, hi, count) {
  if (!(hi > lo)) return [lo];
  const step = niceStep(hi - lo, count);
  const d = decimalsOf(step);
  const out = [];
  const first = Math.ceil(lo / step - 1e-9);
  for (let i = first; i * step <= hi + step * 1e-9 && out.length < 100; i++) out.push(+(i * step).toFixed(d));
  return out;
}

function niceDomain(lo, hi, count) {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1];
  if (lo === hi) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    return [lo - pad, hi + pad];
  }
  const step = niceStep(hi - lo, count);
  return [Math.floor(lo / step) * step, Math.ceil(hi / step) * step];
}

function linear(d0, d1, r0, r1) {
  const k = d1 === d0 ? 0 : (r1 - r0) / (d1 - d0);
  return (v) => r0 + (v - d0) * k;
}

function fmtAxis(v) {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e-3 && a < 1e4) return String(+v.toPrecision(6));
  return nfAxis.format(v);
}

const DAY = 86400000;
function timeTicks(lo, hi, count) {
  const span = hi - lo;
  const out = [];
  const d0 = new Date(lo);
  if (span > 3 * 365 * DAY) {
    const years = span / (365.25 * DAY);
    const step = Math.max(1, Math.round(niceStep(years, count)));
    let y = Math.ceil(d0.getUTCFullYear() / step) * step;
    for (let t = Date.UTC(y, 0, 1); t <= hi && out.length < 50; y += step, t = Date.UTC(y, 0, 1)) {
      if (t >= lo) out.push([t, String(y)]);
    }
  } else if (span > 90 * DAY) {
    const months = span / (30.44 * DAY);
    const step = [1, 2, 3, 6].find((s) => months / s <= count) || 12;
    let y = d0.getUTCFullYear();
    let m = Math.ceil(d0.getUTCMonth() / step) * step;
    for (let t = Date.UTC(y, m, 1); t <= hi && out.length < 50; m += step, t = Date.UTC(y, m, 1)) {
      if (t >= lo) out.push([t, new Date(t).toISOString().slice(0, 7)]);
    }
  } else if (span > 3 * DAY) {
    const days = span / DAY;
    const step = [1, 2, 7, 14, 30].find((s) => days / s <= count) || 30;
    for (let t = Math.ceil(lo / (step * DAY)) * step * DAY; t <= hi && out.length < 50; t += step * DAY) {
      out.push([t, new Date(t).toISOString().slice(0, 10)]);
    }
  } else {
    const steps = [1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200, 10800, 21600, 43200].map((s) => s * 1000);
    const step = steps.find((s) => span / s <= count) || DAY;
    for (let t = Math.ceil(lo / step) * step; t <= hi && out.length < 50; t += step) {
      const iso = new Date(t).toISOString();
      out.push([t, span > DAY ? iso.slice(5, 16).replace("T", " ") : iso.slice(11, step < 60000 ? 19 : 16)]);
    }
  }
  return out;
}

function clearSvg(svg, message) {
  svg.replaceChildren();
  const w = svg.clientWidth || 600;
  const hgt = svg.clientHeight || 300;
  svg.setAttribute("viewBox", `0 0 ${w} ${hgt}`);
  delete svg.dataset.marks;
  delete svg.dataset.shapes;
  if (message) svgEl("text", { x: w / 2, y: hgt / 2, class: "placeholder", "text-anchor": "middle" }, svg).textContent = message;
}

// ---------------------------------------------------------------- the chart

function idLike(name) {
  return /^(id|rowid|row_id|.*_id|i)$/i.test(name);
}

function chooseChart(cols) {
  const kinds = cols.map((c) => c.kind);
  if (kinds[0] === "category") {
    const yi = kinds.findIndex((k, i) => i > 0 && k === "number");
    if (yi > 0) return { type: "bar", xi: 0, yi };
  }
  if ((kinds[0] === "number" || kinds[0] === "time") && kinds[1] === "number") return { type: "xy", xi: 0, yi: 1 };
  const hi = kinds.findIndex((k, i) => k === "number" && !idLike(cols[i].name));
  if (hi >= 0) return { type: "hist", xi: hi };
  if (kinds[0] === "number" && cols.length === 1) return { type: "hist", xi: 0 };
  return null;
}

function renderChart(r) {
  const svg = $("chart");
  const note = $("chart-note");
  if (!r.columns) {
    clearSvg(svg, r.outcome ? "No result" : "Waiting for rows…");
    return;
  }
  sniffKinds(r.columns, r.kept);
  if (!r.kept.length) {
    clearSvg(svg, r.outcome ? "No rows to chart" : "Waiting for rows…");
    note.textContent = "";
    return;
  }
  const spec = chooseChart(r.columns);
  if (!spec) {
    clearSvg(svg, "No numeric column to chart");
    note.textContent = "A bar chart needs a text column followed by a number; a line or scatter two leading numeric (or date) columns; a histogram any numeric column.";
    return;
  }
  const W = Math.max(280, svg.clientWidth || 600);
  const H = Math.max(200, svg.clientHeight || 320);
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const from = r.rows > r.kept.length ? ` (from the first ${nf.format(r.kept.length)} rows)` : "";
  const partial = !r.outcome ? " — streaming" : r.outcome !== "done" ? ` — partial (${r.outcome})` : "";
  let desc;
  if (spec.type === "bar") desc = drawBars(svg, W, H, r.columns, r.kept, spec);
  else if (spec.type === "xy") desc = drawXY(svg, W, H, r.columns, r.kept, spec);
  else desc = drawHistogram(svg, W, H, r.columns, r.kept, spec);
  note.textContent = desc + from + partial + ".";
  svg.dataset.marks = String(svg.querySelectorAll(".mark").length);
}

function drawAxes(svg, W, H, m, xTicks, yTicks, xLabel, yLabel, rotate) {
  const g = svgEl("g", { class: "axes" }, svg);
  for (const [y, label] of yTicks) {
    svgEl("line", { x1: m.l, x2: W - m.r, y1: y, y2: y, class: "grid" }, g);
    svgEl("text", { x: m.l - 6, y, dy: "0.32em", "text-anchor": "end", class: "tick" }, g).textContent = label;
  }
  svgEl("line", { x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b, class: "axis" }, g);
  svgEl("line", { x1: m.l, x2: m.l, y1: m.t, y2: H - m.b, class: "axis" }, g);
  for (const [x, label, full] of xTicks) {
    svgEl("line", { x1: x, x2: x, y1: H - m.b, y2: H - m.b + 4, class: "axis" }, g);
    const t = rotate
      ? svgEl("text", { x, y: H - m.b + 8, "text-anchor": "end", transform: `rotate(-40 ${x} ${H - m.b + 8})`, dy: "0.6em", class: "tick" }, g)
      : svgEl("text", { x, y: H - m.b + 16, "text-anchor": "middle", class: "tick" }, g);
    t.textContent = label;
    if (full && full !== label) svgEl("title", null, t).textContent = full;
  }
  svgEl("text", { x: m.l + (W - m.l - m.r) / 2, y: H - 6, "text-anchor": "middle", class: "label" }, g).textContent = xLabel;
  svgEl("text", { x: 14, y: m.t + (H - m.t - m.b) / 2, "text-anchor": "middle", transform: `rotate(-90 14 ${m.t + (H - m.t - m.b) / 2})`, class: "label" }, g).textContent = yLabel;
}

function leftMargin(labels) {
  const longest = labels.reduce((a, s) => Math.max(a, s.length), 1);
  return Math.min(90, 30 + longest * 7);
}

function drawBars(svg, W, H, cols, rows, spec) {
  const xc = cols[spec.xi];
  const yc = cols[spec.yi];
  const sums = new Map();
  let duplicates = false;
  for (const row of rows) {
    const v = toNum(row[yc.index]);
    if (!Number.isFinite(v)) continue;
    const key = cellText(row[xc.index], xc) ?? "NULL";
    if (sums.has(key)) { duplicates = true; sums.set(key, sums.get(key) + v); } else sums.set(key, v);
  }
  let entries = [...sums];
  if (duplicates) entries.sort((a, b) => b[1] - a[1]);
  const total = entries.length;
  if (entries.length > BAR_CAP) entries = entries.slice(0, BAR_CAP);
  if (!entries.length) {
    clearSvg(svg, "No numeric values to chart");
    return "Bar chart: no numeric values";
  }
  const vals = entries.map((e) => e[1]);
  const [y0, y1] = niceDomain(Math.min(0, ...vals), Math.max(0, ...vals), 5);
  const yt = ticks(y0, y1, 5);
  const ytl = yt.map(fmtAxis);
  const longest = entries.reduce((a, e) => Math.max(a, e[0].length), 1);
  const m = { t: 14, r: 14, l: leftMargin(ytl), b: 40 };
  const plotW = W - m.l - m.r;
  const band = plotW / entries.length;
  const rotate = longest * 6.5 > band;
  const maxChars = rotate ? 16 : Math.max(3, Math.floor(band / 6.5));
  if (rotate) m.b = Math.min(110, 26 + Math.min(longest, maxChars) * 5.2);
  const y = linear(y0, y1, H - m.b, m.t);
  drawAxes(svg, W, H, m, [], yt.map((v, i) => [y(v), ytl[i]]), xc.name, (duplicates ? "sum of " : "") + yc.name, rotate);
  const g = svgEl("g", { class: "marks" }, svg);
  const labels = svgEl("g", { class: "axes" }, svg);
  const showEvery = Math.max(1, Math.ceil(12 / band));
  entries.forEach(([key, v], i) => {
    const x = m.l + i * band + band * 0.1;
    const top = y(Math.max(0, v));
    const hgt = Math.max(v === 0 ? 0 : 1, Math.abs(y(v) - y(0)));
    const rect = svgEl("rect", { x: x.toFixed(2), y: top.toFixed(2), width: Math.max(1, band * 0.8).toFixed(2), height: hgt.toFixed(2), class: "mark bar" + (v < 0 ? " neg" : "") }, g);
    svgEl("title", null, rect).textContent = `${key}: ${nf.format(v)}`;
    if (i % showEvery === 0) {
      const cx = m.l + i * band + band / 2;
      const text = rotate
        ? svgEl("text", { x: cx, y: H - m.b + 8, "text-anchor": "end", dy: "0.6em", transform: `rotate(-40 ${cx} ${H - m.b + 8})`, class: "tick" }, labels)
        : svgEl("text", { x: cx, y: H - m.b + 16, "text-anchor": "middle", class: "tick" }, labels);
      text.textContent = truncate(key, maxChars);
      svgEl("title", null, text).textContent = key;
    }
  });
  // x-axis title below rotated labels sits at the bottom already (drawAxes)
  const shown = total > entries.length ? `the first ${entries.length} of ${nf.format(total)} categories` : `${entries.length} bar${entries.length === 1 ? "" : "s"}`;
  return `Bar chart: ${duplicates ? "sum of " : ""}${yc.name} by ${xc.name}, ${shown}`;
}

function drawXY(svg, W, H, cols, rows, spec) {
  const xc = cols[spec.xi];
  const yc = cols[spec.yi];
  const time = xc.kind === "time";
  let pts = [];
  for (const row of rows) {
    const x = time ? parseTime(row[xc.index]) : toNum(row[xc.index]);
    const yv = toNum(row[yc.index]);
    if (Number.isFinite(x) && Number.isFinite(yv)) pts.push([x, yv]);
  }
  if (!pts.length) {
    clearSvg(svg, "No numeric values to chart");
    return "Line chart: no numeric values";
  }
  let sorted = true;
  for (let i = 1; i < pts.length; i++) if (pts[i][0] < pts[i - 1][0]) { sorted = false; break; }
  const total = pts.length;
  if (pts.length > XY_CAP) {
    const stride = pts.length / XY_CAP;
    const s = [];
    for (let i = 0; i < XY_CAP; i++) s.push(pts[Math.floor(i * stride)]);
    if (sorted) s.push(pts[pts.length - 1]);
    pts = s;
  }
  let xmin = Infinity, xmax = -Infinity, ymin = Infinity, ymax = -Infinity;
  for (const [x, yv] of pts) {
    if (x < xmin) xmin = x; if (x > xmax) xmax = x;
    if (yv < ymin) ymin = yv; if (yv > ymax) ymax = yv;
  }
  const [y0, y1] = niceDomain(ymin, ymax, 5);
  const yt = ticks(y0, y1, 5);
  const ytl = yt.map(fmtAxis);
  const m = { t: 14, r: 18, l: leftMargin(ytl), b: 40 };
  let x0 = xmin, x1 = xmax;
  if (x0 === x1) { const pad = time ? DAY : Math.abs(x0) * 0.1 || 1; x0 -= pad; x1 += pad; }
  if (!time) [x0, x1] = niceDomain(x0, x1, 6);
  const x = linear(x0, x1, m.l, W - m.r);
  const y = linear(y0, y1, H - m.b, m.t);
  const count = Math.max(2, Math.floor((W - m.l - m.r) / 90));
  const xt = time ? timeTicks(x0, x1, count).map(([t, l]) => [x(t), l]) : ticks(x0, x1, count).map((v) => [x(v), fmtAxis(v)]);
  drawAxes(svg, W, H, m, xt, yt.map((v, i) => [y(v), ytl[i]]), xc.name, yc.name, false);
  const g = svgEl("g", { class: "marks" }, svg);
  const fmtX = (v) => (time ? new Date(v).toISOString().replace("T00:00:00.000Z", "").replace(".000Z", "Z") : String(v));
  if (sorted) {
    let d = "";
    for (let i = 0; i < pts.length; i++) d += (i ? "L" : "M") + x(pts[i][0]).toFixed(1) + " " + y(pts[i][1]).toFixed(1);
    svgEl("path", { d, class: "mark line" }, g);
  }
  if (!sorted || pts.length <= 300) {
    const r = sorted ? 2.5 : pts.length > 2000 ? 1.6 : 2.4;
    for (const [px, py] of pts) {
      const c = svgEl("circle", { cx: x(px).toFixed(1), cy: y(py).toFixed(1), r, class: "mark " + (sorted ? "pt" : "pt scatter") }, g);
      if (pts.length <= 1000) svgEl("title", null, c).textContent = `${xc.name} ${fmtX(px)}, ${yc.name} ${py}`;
    }
  }
  const sampled = total > pts.length ? `, ${nf.format(pts.length)} of ${nf.format(total)} points (evenly sampled)` : `, ${nf.format(total)} point${total === 1 ? "" : "s"}`;
  return `${sorted ? "Line chart" : "Scatter plot"}: ${yc.name} against ${xc.name}${sampled}`;
}

function drawHistogram(svg, W, H, cols, rows, spec) {
  const c = cols[spec.xi];
  const vals = [];
  for (const row of rows) {
    const v = toNum(row[c.index]);
    if (Number.isFinite(v)) vals.push(v);
  }
  if (!vals.length) {
    clearSvg(svg, "No numeric values to chart");
    return `Histogram of ${c.name}: no numeric values`;
  }
  let lo = Infinity, hi = -Infinity;
  for (const v of vals) { if (v < lo) lo = v; if (v > hi) hi = v; }
  const integer = /INT/i.test(c.type);
  let step, start, nb;
  if (lo === hi) {
    step = integer ? 1 : Math.abs(lo) * 0.1 || 1;
    start = lo - step / 2;
    nb = 1;
  } else {
    step = niceStep(hi - lo, clamp(Math.ceil(Math.sqrt(vals.length)), 5, 40));
    if (integer && step < 1) step = 1;
    start = Math.floor(lo / step) * step;
    nb = Math.max(1, Math.ceil((hi - start) / step + 1e-9));
    if (start + nb * step <= hi) nb++;
  }
  const counts = new Array(nb).fill(0);
  for (const v of vals) counts[clamp(Math.floor((v - start) / step + 1e-9), 0, nb - 1)]++;
  const cmax = Math.max(...counts);
  const [y0, y1] = niceDomain(0, cmax, 5);
  const yt = ticks(y0, y1, 5);
  const ytl = yt.map(fmtAxis);
  const m = { t: 14, r: 18, l: leftMargin(ytl), b: 40 };
  const x = linear(start, start + nb * step, m.l, W - m.r);
  const y = linear(y0, y1, H - m.b, m.t);
  const count = Math.max(2, Math.floor((W - m.l - m.r) / 80));
  const xt = ticks(start, start + nb * step, count).map((v) => [x(v), fmtAxis(v)]);
  drawAxes(svg, W, H, m, xt, yt.map((v, i) => [y(v), ytl[i]]), c.name, "count", false);
  const g = svgEl("g", { class: "marks" }, svg);
  const d = decimalsOf(step);
  counts.forEach((n, i) => {
    const bx = x(start + i * step);
    const bw = Math.max(1, x(start + (i + 1) * step) - bx - 1);
    const rect = svgEl("rect", { x: bx.toFixed(2), y: y(n).toFixed(2), width: bw.toFixed(2), height: Math.max(0, y(0) - y(n)).toFixed(2), class: "mark bar" }, g);
    svgEl("title", null, rect).textContent = `[${(start + i * step).toFixed(d)}, ${(start + (i + 1) * step).toFixed(d)}): ${nf.format(n)}`;
  });
  return `Histogram of ${c.name}: ${nf.format(vals.length)} values in ${nb} bin${nb === 1 ? "" : "s"} of ${fmtAxis(step)}`;
}

// ---------------------------------------------------------------- the map

function mapSpec(cols, rows) {
  let gi = cols.findIndex((c) => c.kind === "geometry");
  if (gi < 0) {
    const probe = rows.slice(0, 50);
    gi = cols.findIndex((c, i) => probe.some((row) => isGeo(row[i])));
  }
  const valueCol = (skip) => {
    const i = cols.findIndex((c, j) => !skip.includes(j) && c.kind === "number" && !idLike(c.name) &&
      !/^(lon|lng|long|longitude|lat|latitude|x|y)$/i.test(c.name));
    return i >= 0 ? i : null;
  };
  if (gi >= 0) {
    const sample = rows.find((row) => row[gi] !== null && row[gi] !== undefined);
    if (sample && !isGeo(sample[gi])) return { kind: "unsupported", gi };
    return { kind: "geometry", gi, value: valueCol([gi]), geographic: /4326|CRS84/i.test(cols[gi].crs || "") ? true : null };
  }
  const names = cols.map((c) => c.name.toLowerCase());
  const numeric = (i) => cols[i].kind === "number";
  let xi = names.findIndex((n, i) => /^(lon|lng|long|longitude)$/.test(n) && numeric(i));
  let yi = names.findIndex((n, i) => /^(lat|latitude)$/.test(n) && numeric(i));
  if (xi >= 0 && yi >= 0) return { kind: "lonlat", xi, yi, value: valueCol([xi, yi]), geographic: true };
  xi = names.findIndex((n, i) => n === "x" && numeric(i));
  yi = names.findIndex((n, i) => n === "y" && numeric(i));
  if (xi >= 0 && yi >= 0) return { kind: "xy", xi, yi, value: valueCol([xi, yi]), geographic: false };
  return null;
}

function collectGeom(g, acc, depth) {
  if (!isGeo(g) || depth > 32) return;
  const c = g.coordinates;
  const ok = (p) => Array.isArray(p) && p.length >= 2 && Number.isFinite(p[0]) && Number.isFinite(p[1]);
  switch (g.type) {
    case "Point": if (ok(c)) acc.pts.push(c); break;
    case "MultiPoint": for (const p of c) if (ok(p)) acc.pts.push(p); break;
    case "LineString": if (c.length) acc.lines.push(c.filter(ok)); break;
    case "MultiLineString": for (const l of c) if (l.length) acc.lines.push(l.filter(ok)); break;
    case "Polygon": if (c.length) acc.polys.push(c.map((ring) => ring.filter(ok))); break;
    case "MultiPolygon": for (const p of c) if (p.length) acc.polys.push(p.map((ring) => ring.filter(ok))); break;
    case "GeometryCollection": for (const sub of g.geometries) collectGeom(sub, acc, depth + 1); break;
  }
}

function extend(bb, p) {
  if (p[0] < bb[0]) bb[0] = p[0];
  if (p[1] < bb[1]) bb[1] = p[1];
  if (p[0] > bb[2]) bb[2] = p[0];
  if (p[1] > bb[3]) bb[3] = p[1];
}

/** Adds shapes for the rows not seen yet (at most MAP_CAP shapes in all). */
function prepareMap(r) {
  if (!r.columns) return null;
  if (!r.map) {
    if (!r.kept.length) return null;
    const spec = mapSpec(r.columns, r.kept);
    if (!spec) return null;
    r.map = { spec, shapes: [], next: 0, bbox: [Infinity, Infinity, -Infinity, -Infinity], empty: 0, types: new Map(), vmin: Infinity, vmax: -Infinity };
  }
  const mp = r.map;
  if (mp.spec.kind === "unsupported") return mp;
  const { spec } = mp;
  for (; mp.next < r.kept.length && mp.shapes.length < MAP_CAP; mp.next++) {
    const row = r.kept[mp.next];
    const shape = { i: mp.next, pts: [], lines: [], polys: [], bbox: [Infinity, Infinity, -Infinity, -Infinity], value: NaN };
    if (spec.kind === "geometry") {
      const g = row[spec.gi];
      if (!isGeo(g)) { mp.empty++; continue; }
      collectGeom(g, shape, 0);
      mp.types.set(g.type, (mp.types.get(g.type) || 0) + 1);
    } else {
      const x = toNum(row[spec.xi]);
      const y = toNum(row[spec.yi]);
      if (!Number.isFinite(x) || !Number.isFinite(y)) { mp.empty++; continue; }
      shape.pts.push([x, y]);
      mp.types.set("Point", (mp.types.get("Point") || 0) + 1);
    }
    for (const p of shape.pts) extend(shape.bbox, p);
    for (const l of shape.lines) for (const p of l) extend(shape.bbox, p);
    for (const poly of shape.polys) for (const ring of poly) for (const p of ring) extend(shape.bbox, p);
    if (!(shape.bbox[2] >= shape.bbox[0])) { mp.empty++; continue; }
    extend(mp.bbox, [shape.bbox[0], shape.bbox[1]]);
    extend(mp.bbox, [shape.bbox[2], shape.bbox[3]]);
    if (spec.value !== null) {
      shape.value = toNum(row[spec.value]);
      if (Number.isFinite(shape.value)) {
        if (shape.value < mp.vmin) mp.vmin = shape.value;
        if (shape.value > mp.vmax) mp.vmax = shape.value;
      }
    }
    mp.shapes.push(shape);
  }
  return mp;
}

const RAMP = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
function rampColor(t) {
  t = clamp(t, 0, 1) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(t));
  const f = t - i;
  const c = RAMP[i].map((v, k) => Math.round(v + (RAMP[i + 1][k] - v) * f));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

function fmtDeg(v, pos, neg) {
  const a = +Math.abs(v).toFixed(4);
  return v === 0 ? "0°" : `${a}°${v > 0 ? pos : neg}`;
}

function renderMap(r) {
  const svg = $("map");
  const note = $("map-note");
  const legend = $("map-legend");
  const mp = prepareMap(r);
  if (!mp) {
    clearSvg(svg, r.columns && r.kept.length ? "No GEOMETRY, lon/lat or x/y column" : "");
    note.textContent = r.columns && r.kept.length ? "Nothing to map: no GEOMETRY column, nor lon/lat (longitude/latitude) or x/y columns." : "";
    legend.hidden = true;
    return;
  }
  if (mp.spec.kind === "unsupported") {
    clearSvg(svg, "Geometry is not GeoJSON");
    note.textContent = "The map draws GeoJSON geometry: choose “Geometry as: GeoJSON” and run again.";
    legend.hidden = true;
    return;
  }
  if (!mp.shapes.length) {
    clearSvg(svg, "No shapes (NULL or empty geometries)");
    note.textContent = `${nf.format(mp.empty)} rows without a drawable geometry.`;
    legend.hidden = true;
    return;
  }
  const W = Math.max(280, svg.clientWidth || 600);
  const H = Math.max(200, svg.clientHeight || 400);
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);

  const bb = mp.bbox;
  const geographic = mp.spec.geographic !== null ? mp.spec.geographic
    : bb[0] >= -180.0001 && bb[2] <= 180.0001 && bb[1] >= -90.0001 && bb[3] <= 90.0001;
  const midLat = (bb[1] + bb[3]) / 2;
  const k = geographic ? clamp(Math.cos((midLat * Math.PI) / 180), 0.2, 1) : 1;
  // world coordinates: x = lon * k, y = -lat (north up)
  let wx0 = bb[0] * k, wx1 = bb[2] * k, wy0 = -bb[3], wy1 = -bb[1];
  let w = wx1 - wx0, hh = wy1 - wy0;
  if (w <= 0 && hh <= 0) { const pad = geographic ? 0.01 : Math.max(1e-9, Math.abs(wx0) * 0.01 || 1); wx0 -= pad; wx1 += pad; wy0 -= pad; wy1 += pad; }
  else if (w <= 0) { wx0 -= hh / 2; wx1 += hh / 2; }
  else if (hh <= 0) { wy0 -= w / 2; wy1 += w / 2; }
  w = wx1 - wx0; hh = wy1 - wy0;
  const pad = 14;
  const s0 = Math.min((W - 2 * pad) / w, (H - 2 * pad) / hh);
  const view = app.mapView || { zoom: 1, cx: (wx0 + wx1) / 2, cy: (wy0 + wy1) / 2 };
  mp.base = { s0, cx: (wx0 + wx1) / 2, cy: (wy0 + wy1) / 2, k };
  const s = s0 * view.zoom;
  const px = (lon) => (lon * k - view.cx) * s + W / 2;
  const py = (lat) => (-lat - view.cy) * s + H / 2;
  // the visible window in lon/lat
  const vlon0 = (view.cx - W / 2 / s) / k, vlon1 = (view.cx + W / 2 / s) / k;
  const vlat1 = -(view.cy - H / 2 / s), vlat0 = -(view.cy + H / 2 / s);

  // graticule and its labels
  const grid = svgEl("g", { class: "graticule" }, svg);
  const gridLabels = [];
  const count = Math.max(2, Math.floor(W / 110));
  const lonStep = niceStep(vlon1 - vlon0, count);
  const latStep = niceStep(vlat1 - vlat0, Math.max(2, Math.floor(H / 80)));
  const lonTicks = ticks(vlon0, vlon1, count).filter((v) => !geographic || (v >= -180 && v <= 180));
  const latTicks = ticks(vlat0, vlat1, Math.max(2, Math.floor(H / 80))).filter((v) => !geographic || (v >= -90 && v <= 90));
  void lonStep; void latStep;
  for (const lon of lonTicks) {
    const x = px(lon);
    svgEl("line", { x1: x, x2: x, y1: 0, y2: H, class: "grid" }, grid);
    gridLabels.push([x + 3, H - 4, geographic ? fmtDeg(lon, "E", "W") : fmtAxis(lon)]);
  }
  for (const lat of latTicks) {
    const y = py(lat);
    svgEl("line", { x1: 0, x2: W, y1: y, y2: y, class: "grid" }, grid);
    gridLabels.push([3, y - 3, geographic ? fmtDeg(lat, "N", "S") : fmtAxis(lat)]);
  }

  const colored = mp.spec.value !== null && mp.vmax >= mp.vmin;
  const color = (v) => (!Number.isFinite(v) ? null : rampColor(mp.vmax === mp.vmin ? 0.5 : (v - mp.vmin) / (mp.vmax - mp.vmin)));
  const g = svgEl("g", { class: "shapes" + (colored ? " colored" : "") }, svg);
  const frag = document.createDocumentFragment();
  const few = mp.shapes.length < 500;
  const radius = few ? 3.5 : mp.shapes.length < 5000 ? 2.4 : 1.6;
  let drawn = 0;
  const f1 = (v) => Math.round(v * 10) / 10;
  const ringPath = (ring, close) => {
    let d = "";
    let lx = NaN, ly = NaN, n = 0;
    for (let j = 0; j < ring.length; j++) {
      const x = f1(px(ring[j][0])), y = f1(py(ring[j][1]));
      if (n && Math.abs(x - lx) < 0.5 && Math.abs(y - ly) < 0.5 && j !== ring.length - 1) continue;
      d += (n ? "L" : "M") + x + " " + y;
      lx = x; ly = y; n++;
    }
    return n ? d + (close ? "Z" : "") : "";
  };
  for (const sh of mp.shapes) {
    // skip shapes outside the view
    const b = sh.bbox;
    if (b[2] < vlon0 || b[0] > vlon1 || b[3] < vlat0 || b[1] > vlat1) continue;
    const fill = colored ? color(sh.value) : null;
    const parts = [];
    if (sh.polys.length) {
      let d = "";
      for (const poly of sh.polys) for (const ring of poly) d += ringPath(ring, true);
      if (d) parts.push(svgEl("path", { d, class: "poly", "fill-rule": "evenodd", fill }));
    }
    if (sh.lines.length) {
      let d = "";
      for (const l of sh.lines) d += ringPath(l, false);
      if (d) parts.push(svgEl("path", { d, class: "line", stroke: fill }));
    }
    if (sh.pts.length === 1 && !parts.length) {
      parts.push(svgEl("circle", { cx: f1(px(sh.pts[0][0])), cy: f1(py(sh.pts[0][1])), r: radius, class: "pt", fill }));
    } else if (sh.pts.length) {
      let d = "";
      for (const p of sh.pts) {
        const x = f1(px(p[0])), y = f1(py(p[1]));
        d += `M${f1(x - radius)} ${y}a${radius} ${radius} 0 1 0 ${2 * radius} 0a${radius} ${radius} 0 1 0 ${-2 * radius} 0`;
      }
      parts.push(svgEl("path", { d, class: "pt", fill }));
    }
    if (!parts.length) continue;
    let el;
    if (parts.length === 1) el = parts[0];
    else { el = svgEl("g"); for (const p of parts) el.appendChild(p); }
    el.classList.add("shape");
    el.dataset.i = sh.i;
    frag.appendChild(el);
    drawn++;
  }
  g.appendChild(frag);
  svg.dataset.shapes = String(drawn);
  // graticule labels above the shapes, with a halo
  const labels = svgEl("g", { class: "graticule-labels", "aria-hidden": "true" }, svg);
  for (const [x, y, text] of gridLabels) svgEl("text", { x, y, class: "tick" }, labels).textContent = text;

  const kinds = [...mp.types].map(([t, n]) => `${nf.format(n)} ${t}`).join(", ");
  const src = mp.spec.kind === "geometry" ? `column ${r.columns[mp.spec.gi].name}` : `columns ${r.columns[mp.spec.xi].name}/${r.columns[mp.spec.yi].name}`;
  let text = `${nf.format(mp.shapes.length)} shapes from ${src} (${kinds})`;
  if (drawn < mp.shapes.length) text += `, ${nf.format(drawn)} in view`;
  const rowsWithShapes = r.rows - mp.empty;
  if (mp.shapes.length >= MAP_CAP && rowsWithShapes > mp.shapes.length) text += `; capped at ${nf.format(MAP_CAP)} of ${nf.format(rowsWithShapes)} rows`;
  else if (r.rows > r.kept.length && !(mp.shapes.length >= MAP_CAP)) text += `; from the first ${nf.format(r.kept.length)} rows`;
  if (mp.empty) text += `; ${nf.format(mp.empty)} without geometry`;
  text += geographic ? ". Equirectangular (lon/lat)" : ". Plain x/y";
  if (!r.outcome) text += " — streaming";
  note.textContent = text + ".";
  svg.setAttribute("aria-label", `Map of ${nf.format(drawn)} shapes`);
  if (colored) {
    const vc = r.columns[mp.spec.value];
    legend.replaceChildren(
      h("span", { text: vc.name + ": " }),
      h("span", { class: "mono", text: fmtAxis(mp.vmin) }),
      h("span", { class: "ramp", "aria-hidden": "true" }),
      h("span", { class: "mono", text: fmtAxis(mp.vmax) }),
    );
    legend.hidden = false;
  } else {
    legend.hidden = true;
  }
}

function scheduleMap() {
  if (app.mapFrame) return;
  app.mapFrame = requestAnimationFrame(() => {
    app.mapFrame = 0;
    if (app.run && app.run.map) renderMap(app.run);
  });
}

function currentView() {
  const mp = app.run && app.run.map;
  if (!mp || !mp.base) return null;
  return app.mapView || { zoom: 1, cx: mp.base.cx, cy: mp.base.cy };
}

function zoomMap(factor, sx, sy) {
  const v = currentView();
  if (!v) return;
  const svg = $("map");
  const W = svg.clientWidth || 600, H = svg.clientHeight || 400;
  const mp = app.run.map;
  const s = mp.base.s0 * v.zoom;
  const zoom = clamp(v.zoom * factor, 0.5, 1e6);
  const fx = sx === undefined ? W / 2 : sx, fy = sy === undefined ? H / 2 : sy;
  // keep the world point under (fx, fy) in place
  const wx = v.cx + (fx - W / 2) / s, wy = v.cy + (fy - H / 2) / s;
  const s2 = mp.base.s0 * zoom;
  app.mapView = { zoom, cx: wx - (fx - W / 2) / s2, cy: wy - (fy - H / 2) / s2 };
  scheduleMap();
}

function panMap(dx, dy) {
  const v = currentView();
  if (!v) return;
  const s = app.run.map.base.s0 * v.zoom;
  app.mapView = { zoom: v.zoom, cx: v.cx - dx / s, cy: v.cy - dy / s };
  scheduleMap();
}

function setupMapControls() {
  const svg = $("map");
  $("map-zoom-in").addEventListener("click", () => zoomMap(1.6));
  $("map-zoom-out").addEventListener("click", () => zoomMap(1 / 1.6));
  $("map-reset").addEventListener("click", () => { app.mapView = null; scheduleMap(); });
  svg.addEventListener("wheel", (e) => {
    if (document.activeElement !== svg && !e.ctrlKey && !e.metaKey) return; // let the page scroll
    e.preventDefault();
    const rect = svg.getBoundingClientRect();
    zoomMap(Math.exp(-e.deltaY * 0.002), e.clientX - rect.left, e.clientY - rect.top);
  }, { passive: false });
  let drag = null;
  svg.addEventListener("pointerdown", (e) => {
    if (e.button !== 0) return;
    svg.focus({ preventScroll: true });
    drag = { x: e.clientX, y: e.clientY, id: e.pointerId };
    svg.setPointerCapture(e.pointerId);
    svg.classList.add("dragging");
  });
  svg.addEventListener("pointermove", (e) => {
    if (drag && e.pointerId === drag.id) {
      panMap(e.clientX - drag.x, e.clientY - drag.y);
      drag.x = e.clientX;
      drag.y = e.clientY;
      return;
    }
    const t = e.target.closest && e.target.closest(".shape");
    const info = $("map-info");
    if (!t || !app.run || !app.run.columns) { info.textContent = ""; return; }
    const row = app.run.kept[Number(t.dataset.i)];
    if (!row) return;
    const parts = [];
    for (const c of app.run.columns) {
      if (c.kind === "geometry") continue;
      const text = cellText(row[c.index], c);
      parts.push(`${c.name}=${text === null ? "NULL" : truncate(text, 40)}`);
      if (parts.length >= 6) break;
    }
    info.textContent = `row ${Number(t.dataset.i) + 1}: ${parts.join(", ")}`;
  });
  const end = (e) => {
    if (drag && e.pointerId === drag.id) { drag = null; svg.classList.remove("dragging"); }
  };
  svg.addEventListener("pointerup", end);
  svg.addEventListener("pointercancel", end);
  svg.addEventListener("keydown", (e) => {
    const stepPx = 60;
    let handled = true;
    switch (e.key) {
      case "+": case "=": zoomMap(1.6); break;
      case "-": case "_": zoomMap(1 / 1.6); break;
      case "0": app.mapView = null; scheduleMap(); break;
      case "ArrowLeft": panMap(stepPx, 0); break;
      case "ArrowRight": panMap(-stepPx, 0); break;
      case "ArrowUp": panMap(0, stepPx); break;
      case "ArrowDown": panMap(0, -stepPx); break;
      default: handled = false;
    }
    if (handled) e.preventDefault();
  });
}

// ---------------------------------------------------------------- gateway metrics

function parseProm(text) {
  const out = new Map();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line[0] === "#") continue;
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[2]) {
      const re = /([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      let lm;
      while ((lm = re.exec(m[2]))) labels[lm[1]] = lm[2].replace(/\\(.)/g, (x, c) => (c === "n" ? "\n" : c));
    }
    const v = m[3] === "+Inf" ? Infinity : m[3] === "-Inf" ? -Infinity : Number(m[3]);
    if (!out.has(m[1])) out.set(m[1], []);
    out.get(m[1]).push({ labels, value: v });
  }
  return out;
}

function summarize(m) {
  const has = (name) => m.has(name);
  const sum = (name) => (has(name) ? m.get(name).reduce((a, s) => a + (Number.isFinite(s.value) ? s.value : 0), 0) : null);
  const by = (name, label) => {
    const o = {};
    for (const s of m.get(name) || []) {
      const k = s.labels[label] ?? "";
      o[k] = (o[k] || 0) + s.value;
    }
    return o;
  };
  return {
    active_connections: sum("duckstream_active_connections"),
    connections_by: by("duckstream_active_connections", "transport"),
    active_queries: sum("duckstream_active_queries"),
    queries_by: by("duckstream_active_queries", "transport"),
    queries_total: sum("duckstream_queries_total"),
    outcomes: by("duckstream_queries_total", "outcome"),
    rows_sent: sum("duckstream_rows_sent_total"),
    bytes_sent: sum("duckstream_bytes_sent_total"),
    uncompressed: sum("duckstream_uncompressed_bytes_total"),
    cache_hits: sum("duckstream_cache_hits_total"),
    cache_misses: sum("duckstream_cache_misses_total"),
    cache_bytes: sum("duckstream_cache_bytes"),
    errors: sum("duckstream_query_errors_total"),
    error_codes: by("duckstream_query_errors_total", "code"),
    interrupts: sum("duckstream_duckdb_interrupts_total"),
    executions: sum("duckstream_duckdb_executions_total"),
    ttfb_sum: sum("duckstream_query_ttfb_seconds_sum"),
    ttfb_count: sum("duckstream_query_ttfb_seconds_count"),
    rss: sum("process_resident_memory_bytes"),
  };
}

const TILES = [
  ["active_connections", "Active connections"],
  ["active_queries", "Active queries"],
  ["queries_total", "Queries (total)"],
  ["rows_per_s", "Rows/s sent"],
  ["bytes_per_s", "Bytes/s on the wire"],
  ["cache_hits", "Cache hits"],
  ["errors", "Errors"],
  ["ttfb_ms", "Time to first byte (avg, last 30 s)"],
  ["interrupts", "DuckDB interrupts"],
  ["rss", "Memory (RSS)"],
];

function setupMetrics() {
  const dl = $("metric-tiles");
  for (const [key, label] of TILES) {
    dl.append(h("div", { class: "tile" },
      h("dt", { text: label }),
      h("dd", { class: "value", id: "m-" + key, "data-metric": key, text: "—" }),
      h("dd", { class: "detail", id: "m-" + key + "-detail" })));
  }
  const metrics = { prev: null, prevT: 0, history: [], ttfb: [], busy: false };
  const poll = async () => {
    if (metrics.busy || !$("metrics-live").checked || document.hidden) return;
    metrics.busy = true;
    try {
      const res = await fetch("/metrics", { cache: "no-store" });
      if (!res.ok) throw new Error("HTTP " + res.status);
      const text = await res.text();
      const t = performance.now();
      const cur = summarize(parseProm(text));
      metrics.ttfb.push([cur.ttfb_sum, cur.ttfb_count]);
      if (metrics.ttfb.length > 30000 / METRICS_MS + 1) metrics.ttfb.shift();
      showMetrics(cur, metrics.prev, (t - metrics.prevT) / 1000, metrics.history, metrics.ttfb[0]);
      metrics.prev = cur;
      metrics.prevT = t;
      $("metrics").dataset.state = "live";
      window.duckstream.metricsScrapes = (window.duckstream.metricsScrapes || 0) + 1;
      $("metrics-updated").textContent = "updated " + new Date().toLocaleTimeString();
    } catch (e) {
      $("metrics").dataset.state = "error";
      $("metrics-updated").textContent = "metrics unavailable: " + (e && e.message ? e.message : e);
    } finally {
      metrics.busy = false;
      // the resource timing buffer would fill with scrapes: queries are kept by the observer
      try { performance.clearResourceTimings(); } catch { /* none */ }
    }
  };
  setInterval(poll, METRICS_MS);
  $("metrics-live").addEventListener("change", poll);
  document.addEventListener("visibilitychange", poll);
  poll();
}

function setTile(key, value, text, detail) {
  const dd = $("m-" + key);
  if (value === null || value === undefined || !Number.isFinite(value)) {
    delete dd.dataset.value;
    dd.textContent = text || "—";
  } else {
    dd.dataset.value = String(value);
    dd.textContent = text;
  }
  $("m-" + key + "-detail").textContent = detail || "";
}

function nonZero(o, fmt) {
  return Object.entries(o).filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${fmt ? fmt(v) : fmtInt(v)}`).join(" · ");
}

function showMetrics(cur, prev, dt, history, ttfbFrom) {
  const rate = (key) => {
    if (!prev || !(dt > 0) || cur[key] === null || prev[key] === null) return null;
    const d = cur[key] - prev[key];
    return d < 0 ? null : d / dt; // a counter reset (restart): skip one interval
  };
  const byText = (o) => Object.entries(o).map(([k, v]) => `${k} ${fmtInt(v)}`).join(" · ");
  setTile("active_connections", cur.active_connections, fmtInt(cur.active_connections), byText(cur.connections_by));
  setTile("active_queries", cur.active_queries, fmtInt(cur.active_queries), byText(cur.queries_by));
  setTile("queries_total", cur.queries_total, fmtInt(cur.queries_total), nonZero(cur.outcomes));
  const rps = rate("rows_sent");
  setTile("rows_per_s", rps, rps === null ? "—" : fmtRate(rps), "total " + fmtRate(cur.rows_sent));
  const bps = rate("bytes_sent");
  const ups = rate("uncompressed");
  setTile("bytes_per_s", bps, bps === null ? "—" : fmtBytes(bps) + "/s",
    (ups === null ? "" : `NDJSON before compression ${fmtBytes(ups)}/s · `) + "total " + fmtBytes(cur.bytes_sent));
  const lookups = (cur.cache_hits || 0) + (cur.cache_misses || 0);
  setTile("cache_hits", cur.cache_hits, fmtInt(cur.cache_hits),
    (lookups ? `hit ratio ${Math.round((100 * cur.cache_hits) / lookups)}% · ` : "") + `${fmtBytes(cur.cache_bytes)} held`);
  setTile("errors", cur.errors, fmtInt(cur.errors), nonZero(cur.error_codes) || "none");
  let ttfb = null;
  if (ttfbFrom && cur.ttfb_count !== null && ttfbFrom[1] !== null && cur.ttfb_count > ttfbFrom[1]) {
    ttfb = ((cur.ttfb_sum - ttfbFrom[0]) / (cur.ttfb_count - ttfbFrom[1])) * 1000;
  }
  const overall = cur.ttfb_count ? (cur.ttfb_sum / cur.ttfb_count) * 1000 : null;
  setTile("ttfb_ms", ttfb, ttfb === null ? "—" : fmtMs(ttfb),
    (ttfb === null ? "no queries in the last 30 s · " : "") + (overall === null ? "" : "since start " + fmtMs(overall)));
  setTile("interrupts", cur.interrupts, fmtInt(cur.interrupts), cur.executions === null ? "" : `of ${fmtInt(cur.executions)} executions`);
  setTile("rss", cur.rss, fmtBytes(cur.rss), "");
  if (rps !== null) {
    history.push(rps);
    if (history.length > SPARK_POINTS) history.shift();
    drawSpark(history);
  }
  window.duckstream.metrics = {
    active_connections: cur.active_connections,
    active_queries: cur.active_queries,
    queries_total: cur.queries_total,
    rows_per_s: rps,
    bytes_per_s: bps,
    cache_hits: cur.cache_hits,
    errors: cur.errors,
  };
}

function drawSpark(history) {
  const svg = $("metrics-spark");
  const W = Math.max(120, svg.clientWidth || 240);
  const H = Math.max(30, svg.clientHeight || 48);
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const max = Math.max(1, ...history);
  const x = linear(0, SPARK_POINTS - 1, 1, W - 1);
  const y = linear(0, max, H - 2, 2);
  const off = SPARK_POINTS - history.length;
  let d = "";
  history.forEach((v, i) => { d += (i ? "L" : "M") + x(i + off).toFixed(1) + " " + y(v).toFixed(1); });
  svgEl("path", { d: d + `L${x(SPARK_POINTS - 1).toFixed(1)} ${H}L${x(off).toFixed(1)} ${H}Z`, class: "spark-area" }, svg);
  svgEl("path", { d, class: "spark-line" }, svg);
  svgEl("text", { x: 4, y: 11, class: "tick" }, svg).textContent = "max " + fmtRate(max) + "/s";
}

// ---------------------------------------------------------------- tenants, datasets, tokens

async function loadTenants() {
  const list = $("tenant-list");
  try {
    const res = await fetch("/v1/admin/tenants", { headers: authHeaders(), cache: "no-store" });
    if (!res.ok) throw new Error(String(res.status));
    const body = await res.json();
    const tenants = Array.isArray(body.tenants) ? body.tenants : [];
    list.replaceChildren(...tenants.map((t) => h("option", {
      value: t.name,
      label: `${t.name} — ${(t.datasets || []).length} tables, ${fmtBytes(t.bytes)}`,
    })));
    $("tenant-hint").textContent = `${tenants.length} tenant${tenants.length === 1 ? "" : "s"} on this gateway (pick or type).`;
  } catch (e) {
    // 401/403 with authentication on (only admin keys list tenants): free text it is
    list.replaceChildren();
    $("tenant-hint").textContent = "Type the tenant's name (listing tenants needs an admin key or loopback without auth).";
  }
}

async function loadDatasets() {
  const tenant = $("tenant").value.trim();
  const box = $("datasets");
  const count = $("datasets-count");
  if (!TENANT_RE.test(tenant) || tenant === "admin") {
    box.replaceChildren(h("p", { class: "hint", text: "Enter a valid tenant name." }));
    count.textContent = "";
    return;
  }
  const seq = (loadDatasets.seq = (loadDatasets.seq || 0) + 1);
  try {
    const res = await fetch(`/v1/${encodeURIComponent(tenant)}/datasets`, { headers: authHeaders(), cache: "no-store" });
    const body = await res.json().catch(() => null);
    if (seq !== loadDatasets.seq) return;
    if (!res.ok) {
      box.replaceChildren(h("p", { class: "hint", text: `${(body && body.code) || "HTTP " + res.status}: ${(body && body.message) || ""}` }));
      count.textContent = "(unavailable)";
      return;
    }
    const sets = Array.isArray(body.datasets) ? body.datasets : [];
    count.textContent = `(${sets.length})`;
    if (!sets.length) { box.replaceChildren(h("p", { class: "hint", text: "No tables." })); return; }
    const ul = h("ul", { class: "dataset-list" });
    for (const d of sets) {
      const geo = new Set((d.geometry_columns || []).map((g) => g.name));
      const cols = (d.columns || []).map((c) => `${c.name} ${c.type}${geo.has(c.name) ? " (geometry)" : ""}`).join(", ");
      const quoted = /^[a-z_][a-z0-9_]*$/.test(d.name) ? d.name : `"${String(d.name).replace(/"/g, '""')}"`;
      ul.append(h("li", null,
        h("button", {
          type: "button", class: "link",
          onclick: () => { $("sql").value = `SELECT * FROM ${quoted} LIMIT 1000`; $("sql").focus(); },
          title: "Put SELECT * FROM " + d.name + " in the editor",
        }, d.name),
        h("span", { class: "muted", text: ` ${fmtInt(d.rows)} rows` }),
        h("div", { class: "cols mono", text: cols })));
    }
    box.replaceChildren(ul);
  } catch (e) {
    if (seq !== loadDatasets.seq) return;
    box.replaceChildren(h("p", { class: "hint", text: "Could not list tables: " + (e && e.message ? e.message : e) }));
    count.textContent = "";
  }
}

function describeCredential() {
  const c = credential();
  const hint = $("credential-hint");
  if (!c) {
    hint.textContent = "Sent as Authorization: Bearer …. Needed only when the gateway has a tenants file.";
    return;
  }
  const parts = c.split(".");
  if (isToken(c)) {
    try {
      const claims = JSON.parse(atob(parts[1].replace(/-/g, "+").replace(/_/g, "/")));
      const left = claims.exp ? Math.round(claims.exp - Date.now() / 1000) : null;
      let text = `Token for tenant “${claims.sub}”`;
      if (Array.isArray(claims.tables)) text += `, tables ${claims.tables.join(", ")}`;
      text += left === null ? "" : left > 0 ? `, expires in ${fmtMs(left * 1000)}` : ", expired";
      if (claims.sub && claims.sub !== $("tenant").value.trim()) text += " — not this tenant";
      hint.textContent = text + ".";
      return;
    } catch { /* not a JWT */ }
  }
  hint.textContent = c.startsWith("dsk_") ? "API key (sent as Authorization: Bearer). “Get token” swaps it for a short-lived token." : "Sent as Authorization: Bearer ….";
}

async function getToken() {
  const tenant = $("tenant").value.trim();
  const c = credential();
  if (!c) { showClientError("unauthenticated", "Enter an API key first: the token endpoint takes an API key, not a token."); return; }
  try {
    const res = await fetch(`/v1/${encodeURIComponent(tenant)}/tokens`, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...authHeaders() },
      body: "{}",
      cache: "no-store",
    });
    const body = await res.json().catch(() => null);
    if (!res.ok || !body || !body.token) {
      showClientError((body && body.code) || "http_" + res.status, (body && body.message) || "The gateway issued no token.");
      return;
    }
    $("credential").value = body.token;
    saveCredential();
    describeCredential();
    loadDatasets();
  } catch (e) {
    showClientError("network_error", "Could not reach the gateway: " + (e && e.message ? e.message : e));
  }
}

function saveCredential() {
  if ($("remember").checked) {
    store("remember", "1");
    store("credential", credential() || null);
  } else {
    store("remember", null);
    store("credential", null);
  }
}

// ---------------------------------------------------------------- wiring

function debounce(f, ms) {
  let t = 0;
  return (...a) => { clearTimeout(t); t = setTimeout(() => f(...a), ms); };
}

function setup() {
  const saved = { tenant: load("tenant"), sql: load("sql"), credential: load("credential"), remember: load("remember") };
  if (saved.tenant && TENANT_RE.test(saved.tenant)) $("tenant").value = saved.tenant;
  if (saved.sql) $("sql").value = saved.sql;
  if (saved.remember === "1") {
    $("remember").checked = true;
    if (saved.credential) $("credential").value = saved.credential;
  }

  const ex = $("examples");
  for (const e of EXAMPLES) {
    ex.append(h("button", {
      type: "button", class: "example", title: e.desc + "\n\n" + e.sql,
      onclick: () => { $("sql").value = e.sql; $("sql").focus(); },
    }, h("span", { class: "example-label", text: e.label }), h("span", { class: "example-desc", text: e.desc })));
  }

  $("query-form").addEventListener("submit", (e) => { e.preventDefault(); submitQuery(); });
  $("cancel").addEventListener("click", cancelRun);
  $("live").addEventListener("change", () => {
    if ($("live").checked) submitQuery();
    else if (live.on) cancelRun();
  });
  $("sql").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); submitQuery(); }
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && (live.on || (app.run && !app.run.outcome))) { cancelRun(); }
  });
  const refresh = debounce(() => { loadDatasets(); describeCredential(); }, 350);
  $("tenant").addEventListener("input", refresh);
  $("credential").addEventListener("input", () => { saveCredential(); refresh(); });
  $("credential").addEventListener("change", debounce(loadTenants, 350));
  $("remember").addEventListener("change", saveCredential);
  $("credential-show").addEventListener("click", () => {
    const input = $("credential");
    const show = input.type === "password";
    input.type = show ? "text" : "password";
    $("credential-show").setAttribute("aria-pressed", String(show));
    $("credential-show").textContent = show ? "Hide" : "Show";
  });
  $("get-token").addEventListener("click", getToken);
  $("datasets-panel").addEventListener("toggle", () => { if ($("datasets-panel").open) loadDatasets(); });

  setupMapControls();
  setupMetrics();
  clearSvg($("chart"), "No chart yet");
  clearSvg($("map"), "No map yet");

  // charts and maps are drawn at their pixel size: redraw when it changes
  if (typeof ResizeObserver !== "undefined") {
    const redraw = debounce(() => {
      const r = app.run;
      if (!r) return;
      renderChart(r);
      if (r.map) renderMap(r);
    }, 150);
    let seen = new WeakMap();
    const ro = new ResizeObserver((entries) => {
      let changed = false;
      for (const e of entries) {
        const w = Math.round(e.contentRect.width);
        if (seen.get(e.target) !== w) { seen.set(e.target, w); changed = true; }
      }
      if (changed) redraw();
    });
    ro.observe($("chart"));
    ro.observe($("map"));
  }

  loadTenants();
  loadDatasets();
  describeCredential();
  setInterval(describeCredential, 15000); // a token's "expires in"
  setStatus("idle", "idle");
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setup);
else setup();
