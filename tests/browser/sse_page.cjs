// Drives headless Chromium (Debian's /usr/bin/chromium) with playwright-core: loads the page
// the Rust test serves, waits until its EventSource has read the whole stream, and prints the
// page's result as JSON on stdout. Usage: NODE_PATH=<tools>/node_modules node sse_page.cjs <url>
// (CommonJS, because NODE_PATH, which points at the tools' playwright-core, only serves require.)
const { chromium } = require("playwright-core");

(async () => {
const url = process.argv[2];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
try {
  const page = await browser.newPage();
  page.on("console", (m) => console.error("page:", m.text()));
  await page.goto(url);
  await page.waitForFunction(() => window.result !== undefined, null, { timeout: 120000 });
  console.log(JSON.stringify(await page.evaluate(() => window.result)));
} finally {
  await browser.close();
}
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
