// Drives headless Chromium (Debian's /usr/bin/chromium) with playwright-core through the
// gateway's own page at `/` in Live mode, step by step as the test asks: the test restarts the
// gateway and changes the data between steps, and this driver reports what the page holds.
//
// Usage: NODE_PATH=<tools>/node_modules node live_page.cjs <base-url> <tenant> <sql>
// It opens the page, fills in the tenant and the SQL and turns Live on; then it reads one JSON
// command per line on stdin and answers each with one JSON line on stdout:
//   {"until": {"results": 2, "acks": 2, "reconnects": 1, "socket": "open"}, "timeout_ms": 15000}
//       waits until window.duckstream.live has at least that many results, acknowledgements and
//       reconnects (and that socket state); answers {"ok": true|false, "live": {...}}
//   {"quiet_ms": 1500}   waits that long; answers {"ok": true, "live": {...}}
// At the end of stdin it closes the browser and answers {"done": true, "page_errors": [...],
// "console_errors": [...]}. Every step is bounded; the whole run is bounded too (< 90 s).
// (CommonJS, because NODE_PATH, which points at the tools' playwright-core, only serves require.)
const readline = require("readline");
const { chromium } = require("playwright-core");

const TOTAL_MS = 85000;

function say(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

/** The page's Live report (window.duckstream.live) plus what is on screen. */
function snapshot(page) {
  return page.evaluate(() => ({
    ...window.duckstream.live,
    status: document.getElementById("status").dataset.state,
    status_text: document.getElementById("status").textContent,
    table: [...document.querySelectorAll("#rows tbody tr")].map((tr) =>
      [...tr.querySelectorAll("td:not(.rownum)")].map((td) => td.textContent)),
  }));
}

async function until(page, want, timeout) {
  const ok = await page.waitForFunction((w) => {
    const l = window.duckstream.live;
    return l && Array.isArray(l.results) &&
      l.results.length >= (w.results || 0) &&
      l.acks.length >= (w.acks || 0) &&
      l.reconnects >= (w.reconnects || 0) &&
      (!w.socket || l.socket === w.socket);
  }, want, { timeout, polling: 50 }).then(() => true, () => false);
  return { ok, live: await snapshot(page) };
}

(async () => {
  const [base, tenant, sql] = process.argv.slice(2);
  if (!base || !tenant || !sql) throw new Error("usage: node live_page.cjs <base-url> <tenant> <sql>");
  const pageErrors = [];
  const consoleErrors = [];
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  const killer = setTimeout(() => {
    console.error(`live_page: gave up after ${TOTAL_MS / 1000} s`);
    browser.close().finally(() => process.exit(2));
  }, TOTAL_MS);
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    page.setDefaultTimeout(15000);
    // Refused connects while the gateway is down are logged as console errors: expected, and
    // reported; an exception thrown by the page's own code is not.
    page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
    page.on("pageerror", (e) => pageErrors.push(String(e && e.message ? e.message : e)));

    const resp = await page.goto(base.replace(/\/+$/, "") + "/", { waitUntil: "load" });
    if (!resp || !resp.ok()) throw new Error(`GET / answered ${resp && resp.status()}`);
    await page.waitForSelector("#status[data-state='idle']", { timeout: 10000 });
    await page.fill("#tenant", tenant);
    await page.fill("#sql", sql);
    await page.check("#live");

    const lines = readline.createInterface({ input: process.stdin });
    for await (const line of lines) {
      if (!line.trim()) continue;
      const cmd = JSON.parse(line);
      if (cmd.until) say(await until(page, cmd.until, cmd.timeout_ms || 15000));
      else if (cmd.quiet_ms) {
        await page.waitForTimeout(cmd.quiet_ms);
        say({ ok: true, live: await snapshot(page) });
      } else say({ ok: false, error: "unknown command " + line });
    }
  } finally {
    clearTimeout(killer);
    await browser.close();
  }
  say({ done: true, page_errors: pageErrors, console_errors: consoleErrors });
})().catch((e) => {
  console.error("live_page:", e && e.message ? e.message : e);
  process.exit(1);
});
