// Drives headless Chromium (Debian's /usr/bin/chromium) with playwright-core through the
// vgplot dashboard in examples/mosaic-dashboard: serves the built page from a tiny HTTP
// server on 127.0.0.1:0 (or opens it as file://), points it at a Mosaic server, waits
// until the plots have drawn their marks, brushes the area histogram, then the map, then
// clicks a zone bar, and prints one JSON object on stdout:
//   { "marks": N, "marksBy": {...}, "queries": [{type, sql}...], "errors": [...], "steps": [...] }
// queries are the requests as they went on the wire (REST POST bodies or WebSocket
// frames), in order; errors are page errors, console errors, failed requests, HTTP
// statuses >= 400 and the errors the coordinator logged.
//
// Usage: NODE_PATH=<tools>/node_modules node tests/browser/mosaic_dashboard.cjs <server-uri>
//          [--file] [--no-brush] [--preagg=off] [--table=NAME] [--category=COLUMN] [--screenshot=PATH] [--timeout=MS]
//   <server-uri> e.g. http://127.0.0.1:3000/, ws://127.0.0.1:3000/,
//                http://127.0.0.1:8080/v1/demo/mosaic?token=T
// The bundle must be built first:
//   npm ci --prefix examples/mosaic-dashboard && npm run build --prefix examples/mosaic-dashboard
// Exit: 0 when the plots rendered (errors, if any, are in the JSON), 3 when they did not
// render in time (JSON still printed), 2 on bad usage, 1 on any other harness failure.
// (CommonJS, because NODE_PATH, which points at the tools' playwright-core, only serves require.)
const { chromium } = require("playwright-core");
const http = require("node:http");
const fs = require("node:fs");
const path = require("node:path");
const { pathToFileURL } = require("node:url");

const DASHBOARD = path.resolve(__dirname, "../../examples/mosaic-dashboard");

function usage(msg) {
  console.error(`${msg}\nusage: node mosaic_dashboard.cjs <server-uri> [--file] [--no-brush] [--preagg=off] [--table=NAME] [--category=COLUMN] [--screenshot=PATH] [--timeout=MS]`);
  process.exit(2);
}

const argv = process.argv.slice(2);
const opt = (name) => {
  const a = argv.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : undefined;
};
const serverUri = argv.find((a) => !a.startsWith("--"));
if (!serverUri) usage("missing <server-uri>");
const useFile = argv.includes("--file");
const brush = !argv.includes("--no-brush");
const timeout = Number(opt("timeout") || 60000);

const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".map": "application/json", ".css": "text/css" };

/** A static server for index.html and dist/, nothing else. */
function serveDashboard() {
  const server = http.createServer((req, res) => {
    const { pathname } = new URL(req.url, "http://x");
    if (pathname === "/favicon.ico") return res.writeHead(204).end();
    const rel = pathname === "/" ? "index.html" : decodeURIComponent(pathname).replace(/^\/+/, "");
    if (!(rel === "index.html" || rel.startsWith("dist/")) || rel.includes("..")) {
      res.writeHead(404).end("not found");
      return;
    }
    fs.readFile(path.join(DASHBOARD, rel), (err, body) => {
      if (err) return res.writeHead(404).end("not found");
      res.writeHead(200, { "Content-Type": TYPES[path.extname(rel)] || "application/octet-stream" }).end(body);
    });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

(async () => {
  if (!fs.existsSync(path.join(DASHBOARD, "dist/bundle.js"))) {
    console.error(`no ${DASHBOARD}/dist/bundle.js: run npm ci --prefix examples/mosaic-dashboard && npm run build --prefix examples/mosaic-dashboard`);
    process.exit(1);
  }
  const query = new URLSearchParams({ server: serverUri });
  if (opt("preagg")) query.set("preagg", opt("preagg"));
  if (opt("table")) query.set("table", opt("table"));
  if (opt("category")) query.set("category", opt("category"));

  let httpServer = null;
  let pageUrl;
  if (useFile) {
    pageUrl = `${pathToFileURL(path.join(DASHBOARD, "index.html"))}?${query}`;
  } else {
    httpServer = await serveDashboard();
    pageUrl = `http://127.0.0.1:${httpServer.address().port}/index.html?${query}`;
  }

  const out = { page: pageUrl, server: serverUri, marks: 0, marksBy: {}, queries: [], errors: [], steps: [], requestHeaders: null };
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  let code = 0;
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    page.on("console", (m) => {
      if (m.type() === "error") out.errors.push(`console: ${m.text()}`);
    });
    page.on("pageerror", (e) => out.errors.push(`pageerror: ${e.message}`));

    // the wire: REST POST bodies, and WebSocket frames
    const isServer = (u) => u.split("#")[0] === serverUri.split("#")[0];
    page.on("request", (req) => {
      if (!isServer(req.url())) return;
      if (req.method() === "POST") {
        if (!out.requestHeaders) out.requestHeaders = req.headers();
        try {
          const q = JSON.parse(req.postData());
          out.queries.push({ type: q.type, sql: q.sql, ...(Object.keys(q).length > 2 ? { keys: Object.keys(q) } : {}) });
        } catch {
          out.queries.push({ raw: req.postData() });
        }
      }
    });
    // restConnector never reads the body of an exec answer; Chromium then reports the
    // request as net::ERR_ABORTED although a 200 response arrived: a note, not an error
    const answered = new Map();
    out.notes = [];
    page.on("requestfailed", (req) => {
      if (!isServer(req.url())) return;
      const status = answered.get(req);
      if (status !== undefined && status < 400) {
        out.notes.push(`${req.failure()?.errorText} after HTTP ${status} (body not read): ${(req.postData() || '').slice(0, 120)}`);
        return;
      }
      out.errors.push(`requestfailed: ${req.method()} ${req.url()}: ${req.failure()?.errorText}: ${(req.postData() || '').slice(0, 300)}`);
    });
    page.on("response", (res) => {
      if (isServer(res.url())) answered.set(res.request(), res.status());
      if (isServer(res.url()) && res.status() >= 400) out.errors.push(`http ${res.status()} for ${res.request().method()} ${res.url()}`);
    });
    page.on("websocket", (ws) => {
      if (!isServer(ws.url())) return;
      out.websocketUrl = ws.url();
      ws.on("framesent", (f) => {
        try {
          const q = JSON.parse(typeof f.payload === "string" ? f.payload : f.payload.toString());
          out.queries.push({ type: q.type, sql: q.sql });
        } catch {
          out.queries.push({ raw: String(f.payload) });
        }
      });
      ws.on("socketerror", (e) => out.errors.push(`websocket error: ${e}`));
    });

    // CORS preflights and CORS failures are only visible through the DevTools protocol
    out.preflights = [];
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Network.enable");
    const preflightIds = new Map();
    cdp.on("Network.requestWillBeSent", (e) => {
      if (e.type === "Preflight" || e.request.method === "OPTIONS") {
        preflightIds.set(e.requestId, { url: e.request.url, headers: e.request.headers });
      }
    });
    cdp.on("Network.responseReceived", (e) => {
      const p = preflightIds.get(e.requestId);
      if (p) out.preflightCount = (out.preflightCount || 0) + 1;
      if (p && out.preflights.length < 2) {
        out.preflights.push({ url: p.url, requestHeaders: p.headers, status: e.response.status, responseHeaders: e.response.headers });
      }
    });
    cdp.on("Network.loadingFailed", (e) => {
      if (e.corsErrorStatus) out.errors.push(`cors: ${JSON.stringify(e.corsErrorStatus)} (${e.errorText})`);
    });

    await page.goto(pageUrl);

    const countMarks = () => page.evaluate(() => {
      const n = (sel) => document.querySelectorAll(sel).length;
      return {
        histogramRects: n('#histogram svg g[aria-label="rect"] rect'),
        zoneBars: n('#zones svg g[aria-label="bar"] rect'),
        mapImages: n("#map svg image"),
      };
    });
    // wait until every plot has drawn, then until the coordinator goes quiet
    const settle = async () => {
      let last = -1;
      for (let stable = 0; stable < 5; ) {
        await sleep(100);
        const n = out.queries.length;
        stable = n === last ? stable + 1 : 0;
        last = n;
      }
    };
    try {
      await page.waitForFunction(() => {
        const n = (sel) => document.querySelectorAll(sel).length;
        return n('#histogram svg g[aria-label="rect"] rect') > 0
          && n('#zones svg g[aria-label="bar"] rect') > 0
          && n("#map svg image") > 0;
      }, null, { timeout });
      await settle();
      out.steps.push({ step: "rendered", marksBy: await countMarks(), queries: out.queries.length });
    } catch (e) {
      out.errors.push(`plots did not render within ${timeout} ms`);
      code = 3;
    }

    if (code === 0 && brush) {
      const drag = async (selector, from, to) => {
        const box = await page.locator(selector).first().boundingBox();
        if (!box) throw new Error(`no ${selector}`);
        const at = ([fx, fy]) => [box.x + fx * box.width, box.y + fy * box.height];
        const [x0, y0] = at(from);
        const [x1, y1] = at(to);
        await page.mouse.move(x0 - 5, y0 - 5);
        await page.mouse.move(x0, y0, { steps: 3 });
        await page.mouse.down();
        await page.mouse.move(x1, y1, { steps: 12 });
        await page.mouse.up();
      };
      const step = async (name, fn) => {
        const before = out.queries.length;
        try {
          await fn();
          await settle();
        } catch (e) {
          out.errors.push(`${name}: ${e.message}`);
        }
        out.steps.push({ step: name, marksBy: await countMarks(), sql: out.queries.slice(before).map((q) => q.sql) });
      };
      // d3-brush's overlay rect covers the plot area of a brushable plot
      await step("brush histogram", () => drag("#histogram svg rect.overlay", [0.15, 0.5], [0.45, 0.5]));
      await step("move histogram brush", () => drag("#histogram svg rect.selection", [0.5, 0.5], [1.4, 0.5]));
      await step("brush map", () => drag("#map svg rect.overlay", [0.25, 0.25], [0.7, 0.75]));
      await step("click zone bar", async () => {
        await page.locator('#zones svg g[aria-label="bar"] rect').first().click();
      });
    }

    out.marksBy = await countMarks();
    out.marks = Object.values(out.marksBy).reduce((a, b) => a + b, 0);
    const state = await page.evaluate(() => window.__dashboard);
    out.connector = state?.connector;
    out.preagg = state?.preagg;
    for (const e of state?.errors ?? []) out.errors.push(`coordinator: ${e}`);
    if (opt("screenshot")) {
      await page.screenshot({ path: opt("screenshot"), fullPage: true });
      out.screenshot = opt("screenshot");
    }
  } finally {
    await browser.close();
    if (httpServer) {
      httpServer.closeAllConnections();
      httpServer.close();
    }
  }
  process.stdout.write(JSON.stringify(out, null, 1) + "\n", () => process.exit(code));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
