// Photographs the web UI's main pages into SCREENSHOT_DIR (docs/): run by tests/ui/screenshots.sh,
// which starts a server with real pushes and pipelines. Env: SLUICE_URL, SLUICE_TOKEN (admin).
import { mkdtempSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const URL = process.env.SLUICE_URL;
const TOKEN = process.env.SLUICE_TOKEN;
const OUT = process.env.SCREENSHOT_DIR;
if (!URL || !TOKEN || !OUT) throw new Error("SLUICE_URL, SLUICE_TOKEN and SCREENSHOT_DIR are needed");
mkdirSync(OUT, { recursive: true });

const profile = mkdtempSync(join(tmpdir(), "sluice-shots-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1280, height: 860 },
});
const page = context.pages()[0] ?? (await context.newPage());
try {
  async function shot(path, file, { full = false } = {}) {
    const r = await page.goto(URL + path);
    if (!r.ok()) throw new Error(`${path}: HTTP ${r.status()}`);
    await page.screenshot({ path: join(OUT, file), fullPage: full });
    console.log(`docs/${file} <- ${path}`);
  }
  // Sign in through the form, as a person would.
  await page.goto(URL + "/ui/login");
  await page.fill("input[name=token]", TOKEN);
  await page.click("form.login button");
  await page.waitForURL(URL + "/");

  await shot("/", "ui-repositories.png");
  await shot("/ui/npm/packages/@acme/widgets?version=2.1.0", "ui-package.png", { full: true });
  const pipeline = await page.locator(".file-head a[href^='/ui/pipelines/']").getAttribute("href");
  await shot(pipeline, "ui-pipeline.png");
  const job = await page.locator("table.list a", { hasText: "unit-tests" }).first().getAttribute("href");
  await shot(job, "ui-job-log.png", { full: true });
  await shot("/ui/pushes", "ui-pushes.png");
  await shot("/ui/plugins", "ui-plugins.png");
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
