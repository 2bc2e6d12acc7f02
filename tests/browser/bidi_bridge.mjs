// Firefox for the browser tests: Debian's firefox-esr driven over WebDriver BiDi by
// puppeteer-core, commanded by the Python tests (engines.FirefoxDriver) with one JSON object
// per line on stdin, answered with one per line on stdout:
//   -> {"id": 1, "op": "call", "frames": ["#checkout iframe"], "fn": "(a) => a + 1", "arg": 1}
//   <- {"id": 1, "ok": true, "value": 2}     or     {"id": 1, "ok": false, "error": "..."}
// Operations: newPage, closePage, goto, call, click, fill, viewport, screenshot, quit.
// `frames` is the CSS selectors of nested iframes, from the top document down.
import { createInterface } from "node:readline";
import puppeteer from "puppeteer-core";

const executablePath = process.env.FIREFOX || "/usr/bin/firefox-esr";
// Nothing but the pages under test: no updates, telemetry, captive-portal or connectivity
// probes, safe-browsing lists, DNS prefetch or DNS over HTTPS.
const prefs = {
  "app.update.enabled": false,
  "app.update.auto": false,
  "browser.safebrowsing.malware.enabled": false,
  "browser.safebrowsing.phishing.enabled": false,
  "browser.safebrowsing.downloads.enabled": false,
  "browser.safebrowsing.provider.mozilla.updateURL": "",
  "browser.search.update": false,
  "browser.newtabpage.enabled": false,
  "browser.startup.page": 0,
  "datareporting.healthreport.uploadEnabled": false,
  "datareporting.policy.dataSubmissionEnabled": false,
  "extensions.update.enabled": false,
  "extensions.getAddons.cache.enabled": false,
  "media.gmp-manager.updateEnabled": false,
  "network.captive-portal-service.enabled": false,
  "network.connectivity-service.enabled": false,
  "network.dns.disablePrefetch": true,
  "network.prefetch-next": false,
  "network.trr.mode": 5,
  "toolkit.telemetry.enabled": false,
  "toolkit.telemetry.unified": false,
  "browser.download.useDownloadDir": true,
  "browser.download.dir": process.env.FIREFOX_DOWNLOADS || "/tmp",
  "browser.download.folderList": 2,
};

const browser = await puppeteer.launch({
  browser: "firefox",
  executablePath,
  headless: true,
  extraPrefsFirefox: prefs,
  protocolTimeout: 60_000,
});
let context = null;
let page = null;

async function frameOf(frames) {
  let frame = page.mainFrame();
  for (const selector of frames || []) {
    const handle = await frame.waitForSelector(selector, { timeout: 15_000 });
    frame = await handle.contentFrame();
    if (!frame) throw new Error(`no frame in ${selector}`);
  }
  return frame;
}

const ops = {
  async newPage({ width, height }) {
    context = await browser.createBrowserContext();
    page = await context.newPage();
    await page.setViewport({ width: width || 1280, height: height || 800 });
    page.setDefaultTimeout(15_000);
  },
  async closePage() {
    if (context) await context.close();
    context = null;
    page = null;
  },
  async goto({ url }) {
    const response = await page.goto(url, { waitUntil: "load" });
    return response ? response.status() : null;
  },
  async call({ frames, fn, arg }) {
    const frame = await frameOf(frames);
    return await frame.evaluate(`(${fn})(${JSON.stringify(arg ?? null)})`);
  },
  async click({ frames, selector }) {
    const frame = await frameOf(frames);
    const handle = await frame.waitForSelector(selector, { visible: true });
    await handle.click();
  },
  async fill({ frames, selector, text }) {
    const frame = await frameOf(frames);
    const handle = await frame.waitForSelector(selector, { visible: true });
    await handle.evaluate((e) => { e.value = ""; });
    await handle.type(text);
  },
  async viewport({ width, height }) {
    await page.setViewport({ width, height });
  },
  async screenshot({ path }) {
    await page.screenshot({ path, fullPage: true });
  },
  async version() {
    return await browser.version();
  },
};

const lines = createInterface({ input: process.stdin });
const reply = (message) => process.stdout.write(JSON.stringify(message) + "\n");
reply({ id: 0, ok: true, value: "ready" });
for await (const line of lines) {
  const { id, op, ...args } = JSON.parse(line);
  if (op === "quit") break;
  try {
    const value = await ops[op](args);
    reply({ id, ok: true, value: value ?? null });
  } catch (e) {
    reply({ id, ok: false, error: String(e && e.message ? e.message : e) });
  }
}
await browser.close();
process.exit(0);
