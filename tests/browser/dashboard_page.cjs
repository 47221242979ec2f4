// Drives headless Chromium (Debian's /usr/bin/chromium) with playwright-core through the
// gateway's own dashboard page at `/`: an aggregate query (table and chart), geometry queries
// (map), a long query cancelled from the page, the live metrics panel; then a screenshot and a
// JSON summary on stdout.
//
// Usage: NODE_PATH=<tools>/node_modules node dashboard_page.cjs <base-url> [<page-dir>] [<screenshot.png>]
//   <page-dir>: serve `/`, `/page/app.js` and `/page/style.css` from this directory
//   (src/app/page) instead of the server, so the page can be tried against a running gateway
//   without rebuilding it; every other request goes to the real server. `-` for none.
// Needs a gateway with the demo tenant (parcels, parcel_points, zones). Exits non-zero, with the
// reasons on stderr (and in the summary's "failures"), when a check fails; the whole run is
// bounded (< 90 s).
// (CommonJS, because NODE_PATH, which points at the tools' playwright-core, only serves require.)
const fs = require("fs");
const path = require("path");
const { chromium } = require("playwright-core");

const TOTAL_MS = 85000;
const FINAL = ["done", "error", "cancelled", "broken"];

const SQL = {
  aggregate:
    "SELECT city, count(*) AS parcels, round(avg(population)) AS avg_population FROM parcels GROUP BY city ORDER BY parcels DESC",
  zones:
    "WITH counts AS (SELECT z.id, count(*) AS parcels FROM zones z JOIN parcel_points p ON ST_Contains(z.geom, p.geom) GROUP BY z.id) " +
    "SELECT z.name, c.parcels, z.geom FROM counts c JOIN zones z USING (id) ORDER BY c.parcels DESC, z.name",
  points:
    "SELECT p.id, c.city, c.population, p.geom FROM parcel_points p JOIN parcels c USING (id) " +
    "WHERE ST_Intersects(p.geom, ST_MakeEnvelope(-10, 35, 30, 60))",
  long: "SELECT i, i % 7 AS bucket, 'row ' || i AS label FROM range(100000000) t(i)",
};

function parseArgs(argv) {
  const [base, a, b] = argv;
  if (!base || !/^https?:\/\//.test(base)) {
    throw new Error("usage: node dashboard_page.cjs <base-url> [<page-dir>] [<screenshot.png>]");
  }
  let pageDir = null;
  let shot = null;
  for (const x of [a, b]) {
    if (!x || x === "-") continue;
    if (/\.png$/i.test(x)) shot = x;
    else pageDir = x;
  }
  return { base: base.replace(/\/+$/, ""), pageDir, shot };
}

async function scrape(base) {
  const res = await fetch(base + "/metrics", { signal: AbortSignal.timeout(3000) });
  const text = await res.text();
  const sum = (name, pred) =>
    text.split("\n").filter((l) => l.startsWith(name + "{") || l.startsWith(name + " "))
      .filter((l) => !pred || pred(l))
      .reduce((a, l) => a + Number(l.trim().split(/\s+/).pop()), 0);
  return {
    active_queries: sum("duckstream_active_queries"),
    disconnected: sum("duckstream_queries_total", (l) => l.includes('outcome="disconnected"')),
    interrupts: sum("duckstream_duckdb_interrupts_total"),
  };
}

(async () => {
  const { base, pageDir, shot } = parseArgs(process.argv.slice(2));
  const failures = [];
  const summary = {
    ok: false,
    table_rows: 0,
    chart_marks: 0,
    map_shapes: 0,
    map_points: 0,
    cancelled: false,
    cancel_ms: null,
    server_cancelled: null,
    metrics: {},
    zstd: false,
    accept_encoding: null,
    ttfb_ms: null,
    console_errors: [],
    page_dir: pageDir,
    screenshot: shot,
  };
  const check = (cond, msg) => { if (!cond) failures.push(msg); return cond; };

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  const killer = setTimeout(() => {
    console.error(`dashboard_page: gave up after ${TOTAL_MS / 1000} s`);
    summary.failures = failures.concat(["timed out"]);
    console.log(JSON.stringify(summary));
    browser.close().finally(() => process.exit(2));
  }, TOTAL_MS);

  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.setDefaultTimeout(20000);
    page.on("console", (m) => {
      if (m.type() === "error") summary.console_errors.push(m.text());
      if (process.env.DASHBOARD_DEBUG) console.error("page:", m.type(), m.text());
    });
    page.on("pageerror", (e) => summary.console_errors.push("pageerror: " + (e && e.message ? e.message : e)));

    if (pageDir) {
      const files = {
        "/": ["index.html", "text/html; charset=utf-8"],
        "/page/app.js": ["app.js", "text/javascript; charset=utf-8"],
        "/page/style.css": ["style.css", "text/css; charset=utf-8"],
      };
      const origin = new URL(base).origin;
      await page.route(
        (url) => url.origin === origin && Object.prototype.hasOwnProperty.call(files, url.pathname),
        (route) => {
          const [file, type] = files[new URL(route.request().url()).pathname];
          route.fulfill({
            status: 200,
            headers: { "content-type": type, "cache-control": "no-store" },
            body: fs.readFileSync(path.join(pageDir, file)),
          });
        },
      );
    }

    const queryResponses = [];
    // The headers the network stack really sent (it adds Accept-Encoding below the page, and
    // request interception shows a request before that): from the DevTools protocol.
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Network.enable");
    const queryRequests = new Set();
    const acceptEncoding = new Map(); // requestId -> header
    cdp.on("Network.requestWillBeSent", (e) => {
      if (/\/v1\/[^/]+\/query$/.test(new URL(e.request.url).pathname)) queryRequests.add(e.requestId);
    });
    cdp.on("Network.requestWillBeSentExtraInfo", (e) => {
      const hdrs = e.headers || {};
      const key = Object.keys(hdrs).find((k) => k.toLowerCase() === "accept-encoding");
      if (key) acceptEncoding.set(e.requestId, hdrs[key]);
    });
    page.on("response", async (res) => {
      if (/\/v1\/[^/]+\/query$/.test(new URL(res.url()).pathname)) {
        let enc = null;
        try { enc = (await res.allHeaders())["content-encoding"] || null; } catch { enc = res.headers()["content-encoding"] || null; }
        queryResponses.push({ status: res.status(), encoding: enc });
      }
    });

    const resp = await page.goto(base + "/", { waitUntil: "load" });
    if (!check(resp && resp.ok(), `GET / answered ${resp && resp.status()}`)) throw new Error("no page");
    const type = (resp.headers()["content-type"] || "").split(";")[0];
    const isDashboard = (await page.locator("#status[data-state]").count()) === 1;
    if (!isDashboard) {
      throw new Error(`GET ${base}/ is not the dashboard (content-type ${type || "none"}, no #status): ` +
        "pass the page directory (src/app/page) to serve it from files, or build a gateway that serves it");
    }
    await page.waitForSelector("#status[data-state='idle']", { timeout: 10000 });
    await page.waitForFunction(() => window.duckstream && "lastResult" in window.duckstream, null, { timeout: 10000 });
    for (const id of ["#sql", "#run", "#cancel", "#tenant", "#credential", "#rows", "#chart", "#map", "#metrics"]) {
      check((await page.locator(id).count()) === 1, `missing ${id}`);
    }
    await page.fill("#tenant", "demo");

    // Runs `sql` from the page and waits for its final state; returns lastResult.
    const run = async (sql, timeout = 30000) => {
      const before = await page.evaluate(() => (window.duckstream.lastResult ? window.duckstream.lastResult.id : 0));
      await page.fill("#sql", sql);
      await page.click("#run");
      await page.waitForFunction(
        ([prev, finals]) => {
          const r = window.duckstream.lastResult;
          return r && r.id !== prev && finals.includes(document.getElementById("status").dataset.state);
        },
        [before, FINAL],
        { timeout },
      );
      return page.evaluate(() => ({ ...window.duckstream.lastResult, state: document.getElementById("status").dataset.state }));
    };

    // 1. an aggregate: the table fills and the chart draws
    const agg = await run(SQL.aggregate);
    check(agg.state === "done", `aggregate ended ${agg.state}: ${JSON.stringify(agg.error || agg.broken)}`);
    summary.table_rows = await page.locator("#rows tbody tr").count();
    summary.chart_marks = await page.locator("#chart .mark").count();
    summary.ttfb_ms = agg.ttfbMs;
    check(summary.table_rows > 0 && summary.table_rows === Math.min(agg.rows, 1000), `table has ${summary.table_rows} rows, result ${agg.rows}`);
    check(summary.chart_marks > 0, "the chart drew no marks");
    check(typeof agg.ttfbMs === "number", "no time to first data");
    check(agg.end && agg.end.rows === agg.rows, "end line count differs from the rows counted");
    for (const id of queryRequests) if (acceptEncoding.has(id)) { summary.accept_encoding = acceptEncoding.get(id); break; }
    const aggEnc = queryResponses.length ? queryResponses[queryResponses.length - 1].encoding : null;
    summary.zstd = aggEnc === "zstd";
    check(agg.contentEncoding === (aggEnc || "identity"), `page saw Content-Encoding ${agg.contentEncoding}, the network ${aggEnc}`);

    // 2. geometry: zone polygons from a spatial join (paths), then points in a bounding box (circles)
    const zones = await run(SQL.zones, 45000);
    check(zones.state === "done", `zones query ended ${zones.state}: ${JSON.stringify(zones.error || zones.broken)}`);
    summary.map_shapes = await page.locator("#map .shapes .shape").count();
    const polyPaths = await page.locator("#map .shapes path").count();
    check(summary.map_shapes > 0 && polyPaths > 0, `the map drew ${summary.map_shapes} shapes, ${polyPaths} paths`);
    const points = await run(SQL.points, 45000);
    check(points.state === "done", `points query ended ${points.state}: ${JSON.stringify(points.error || points.broken)}`);
    summary.map_points = await page.locator("#map .shapes circle").count();
    check(summary.map_points > 0, "the map drew no points");
    check(summary.map_points <= 20000, `the map drew ${summary.map_points} points, over its cap`);

    // 3. a long query, cancelled from the page
    const before = await scrape(base);
    const prevId = await page.evaluate(() => window.duckstream.lastResult.id);
    await page.fill("#sql", SQL.long);
    await page.click("#run");
    await page.waitForFunction(() => window.duckstream.live.rows > 5000, null, { timeout: 20000 });
    const t0 = Date.now();
    await page.click("#cancel");
    await page.waitForFunction(
      (prev) => {
        const r = window.duckstream.lastResult;
        return r && r.id !== prev && r.status === "cancelled" && document.getElementById("status").dataset.state === "cancelled";
      },
      prevId,
      { timeout: 5000 },
    );
    summary.cancel_ms = Date.now() - t0;
    summary.cancelled = true;
    const cancelledRows = await page.evaluate(() => window.duckstream.lastResult.rows);
    summary.cancelled_after_rows = cancelledRows;
    // the server noticed the hang-up and interrupted DuckDB
    const deadline = Date.now() + 10000;
    let after = await scrape(base);
    while (Date.now() < deadline && !(after.active_queries === 0 && after.disconnected > before.disconnected)) {
      await new Promise((r) => setTimeout(r, 250));
      after = await scrape(base);
    }
    summary.server_cancelled = after.active_queries === 0 && after.disconnected > before.disconnected;
    check(summary.server_cancelled, `the server did not record the cancel (active ${after.active_queries}, disconnected ${before.disconnected} -> ${after.disconnected})`);

    // 4. the metrics panel shows numbers (rates need two scrapes)
    const since = await page.evaluate(() => window.duckstream.metricsScrapes || 0);
    await page.waitForFunction((n) => {
      const v = (k) => document.querySelector(`#metrics [data-metric="${k}"]`)?.dataset.value;
      return window.duckstream.metricsScrapes > n && v("queries_total") !== undefined && v("rows_per_s") !== undefined;
    }, since, { timeout: 8000 }).catch(() => failures.push("the metrics panel did not refresh within 8 s"));
    summary.metrics = await page.evaluate(() => {
      const out = {};
      for (const dd of document.querySelectorAll("#metrics [data-metric]")) {
        out[dd.dataset.metric] = dd.dataset.value === undefined ? null : Number(dd.dataset.value);
      }
      return out;
    });
    for (const k of ["active_connections", "active_queries", "queries_total", "rows_per_s", "bytes_per_s", "cache_hits", "errors"]) {
      check(Number.isFinite(summary.metrics[k]), `metric ${k} shows no number`);
    }
    check(summary.metrics.queries_total >= 3, `queries_total ${summary.metrics.queries_total} < 3`);

    if (shot) {
      // the picture shows a result with a chart and a map: the spatial join again
      await run(SQL.zones, 45000);
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: shot, fullPage: true });
    }
    check(summary.console_errors.length === 0, "console errors: " + summary.console_errors.join(" | "));
  } catch (e) {
    failures.push(String(e && e.message ? e.message.split("\n")[0] : e));
  } finally {
    clearTimeout(killer);
    await browser.close();
  }
  summary.ok = failures.length === 0;
  if (failures.length) summary.failures = failures;
  console.log(JSON.stringify(summary));
  if (failures.length) {
    console.error("dashboard_page: FAILED\n  - " + failures.join("\n  - "));
    process.exit(1);
  }
})().catch((e) => {
  console.error("dashboard_page:", e && e.message ? e.message : e);
  process.exit(1);
});
