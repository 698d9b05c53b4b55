// Drive JupyterLab in headless Chromium like a student: open a notebook, run all
// cells, wait for the kernel, save, take screenshots, and (optionally) move the
// first ipywidgets slider and report whether the displayed output changed.
//
// usage: node lab_driver.mjs <base-url> <token> <notebook-path> <out-dir> [--slider]
// prints one JSON line with what it saw.
import { chromium } from "playwright-core";

const [base, token, nbPath, outDir, ...flags] = process.argv.slice(2);
const wantSlider = flags.includes("--slider");
const stem = nbPath.replace(/.*\//, "").replace(/\.ipynb$/, "");
const result = { notebook: nbPath, images: 0, sliders: 0, sliderChanged: null, timedOut: false, errors: [] };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on("pageerror", (e) => result.errors.push(String(e)));
  await page.goto(`${base}/lab/tree/${nbPath}?token=${token}&reset`, { waitUntil: "domcontentloaded" });
  await page.waitForSelector(".jp-Notebook .jp-Cell", { timeout: 120000 });
  // wait for the kernel to be ready, accepting the kernel dialog if JupyterLab asks
  const kernelDeadline = Date.now() + 180000;
  while (true) {
    const dialog = page.locator(".jp-Dialog .jp-mod-accept");
    if (await dialog.count()) await dialog.first().click().catch(() => {});
    const status = await page.evaluate(() => {
      const bar = document.querySelector("#jp-main-statusbar");
      return bar ? bar.innerText : "";
    });
    if (/\|\s*Idle/.test(status)) break;
    if (Date.now() > kernelDeadline) { result.errors.push("kernel did not become idle"); break; }
    await page.waitForTimeout(500);
  }
  // Run > Run All Cells, through the menu a student would use
  await page.click(".lm-MenuBar-itemLabel:text-is('Run')");
  await page.click(".lm-Menu-itemLabel:text-is('Run All Cells')");
  // wait until no cell is queued or running: prompts read "[*]:" while busy
  const deadline = Date.now() + Number(process.env.E2E_RUN_TIMEOUT_MS || 400000);
  await page.waitForTimeout(2000);
  while (true) {
    const busy = await page.evaluate(() =>
      [...document.querySelectorAll(".jp-InputPrompt")].some((p) => p.textContent.includes("*")));
    if (!busy) break;
    if (Date.now() > deadline) { result.timedOut = true; break; }
    await page.waitForTimeout(1000);
  }
  result.images = await page.locator(".jp-RenderedImage img").count();
  await page.screenshot({ path: `${outDir}/${stem}_notebook.png`, fullPage: false });
  if (wantSlider) {
    const slider = page.locator(".widget-slider, .widget-hslider").first();
    result.sliders = await page.locator(".widget-slider, .widget-hslider").count();
    if (result.sliders > 0) {
      await slider.scrollIntoViewIfNeeded();
      const view = slider.locator("xpath=ancestor::div[contains(@class,'jp-OutputArea-output')][1]");
      const before = await view.evaluate((el) => el.innerHTML);
      await slider.screenshot({ path: `${outDir}/${stem}_widget_before.png` }).catch(() => {});
      const handle = slider.locator(".noUi-handle, .slider-handle, [role=slider]").first();
      await handle.focus();
      for (let i = 0; i < 3; i++) { await page.keyboard.press("ArrowRight"); await page.waitForTimeout(200); }
      // the explorer redraws its figure: wait for the output to change
      let after = before;
      for (let i = 0; i < 60 && after === before; i++) {
        await page.waitForTimeout(500);
        after = await view.evaluate((el) => el.innerHTML);
      }
      result.sliderChanged = after !== before;
      await view.screenshot({ path: `${outDir}/${stem}_widget_after.png` }).catch(() => {});
    }
  }
  // save so the test can read the executed outputs from disk
  await page.keyboard.press("Control+s");
  await page.waitForTimeout(3000);
} catch (e) {
  result.errors.push(String(e));
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
