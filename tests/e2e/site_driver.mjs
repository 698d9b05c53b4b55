// Open pages of the built course site (or slide decks) in headless Chromium and
// report what each shows: images (and broken ones), error outputs, JavaScript
// errors, failed or remote requests, and the links on the page.
//
// usage: node site_driver.mjs <base-url> <out-dir> <page> [<page> ...]
// prints one JSON line: {pages: [{page, status, images, brokenImages, errors, ...}]}
import { chromium } from "playwright-core";

const [base, outDir, ...pages] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"],
});
const result = { pages: [] };
try {
  const context = await browser.newContext({ viewport: { width: 1300, height: 900 } });
  for (const path of pages) {
    const page = await context.newPage();
    const seen = { page: path, status: 0, images: 0, outputImages: 0, brokenImages: [], errorOutputs: 0,
                   jsErrors: [], failedRequests: [], remoteRequests: [], links: [], title: "", stamp: false,
                   licence: false, slides: 0, math: 0 };
    page.on("pageerror", (e) => seen.jsErrors.push(String(e)));
    page.on("requestfailed", (r) => seen.failedRequests.push(r.url()));
    page.on("request", (r) => { if (!r.url().startsWith(base) && !r.url().startsWith("data:")) seen.remoteRequests.push(r.url()); });
    page.on("response", (r) => { if (r.status() >= 400) seen.failedRequests.push(`${r.status()} ${r.url()}`); });
    // nothing remote may load: block it (and record it above)
    await page.route((url) => !url.href.startsWith(base) && !url.href.startsWith("data:"), (route) => route.abort());
    const resp = await page.goto(`${base}/${path}`, { waitUntil: "load", timeout: 60000 });
    seen.status = resp ? resp.status() : 0;
    // MathJax typesets after load: give it a moment
    await page.waitForFunction(() => !window.MathJax || !window.MathJax.startup || window.MathJax.startup.promise
      .then(() => true), null, { timeout: 5000 }).catch(() => {});
    await page.waitForTimeout(800);
    Object.assign(seen, await page.evaluate(() => {
      const imgs = [...document.querySelectorAll("img")];
      const outImgs = [...document.querySelectorAll(".cell_output img, .jp-OutputArea img, .output img")];
      return {
        title: document.title,
        images: imgs.length,
        outputImages: outImgs.length,
        brokenImages: imgs.filter((i) => i.complete && i.naturalWidth === 0).map((i) => i.getAttribute("src").slice(0, 80)),
        errorOutputs: document.querySelectorAll(".cell_output .traceback, .output.traceback, .jp-RenderedText[data-mime-type='application/vnd.jupyter.stderr'] .ansi-red-fg, .output_error").length,
        links: [...document.querySelectorAll("a[href]")].map((a) => a.getAttribute("href")),
        stamp: !!document.querySelector(".course-stamp"),
        licence: !!document.querySelector(".course-data-licence"),
        slides: document.querySelectorAll(".reveal .slides section").length,
        math: document.querySelectorAll("mjx-container").length,
      };
    }));
    const stem = path.replace(/[^A-Za-z0-9_.-]+/g, "_");
    await page.screenshot({ path: `${outDir}/${stem}.png`, fullPage: false }).catch(() => {});
    result.pages.push(seen);
    await page.close();
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
