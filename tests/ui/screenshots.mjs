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
  // A package page with its README rendered from Markdown.
  await shot("/ui/npm/packages/left-pad-plus", "ui-readme.png", { full: true });
  const pipeline = await page.locator(".file-head a[href^='/ui/pipelines/']").getAttribute("href");
  await shot(pipeline, "ui-pipeline.png");
  const job = await page.locator("table.list a", { hasText: "unit-tests" }).first().getAttribute("href");
  await shot(job, "ui-job-log.png", { full: true });
  await shot("/ui/pushes", "ui-pushes.png");
  await shot("/ui/plugins", "ui-plugins.png");
  // The gate: what it holds, and why one version is held.
  await shot("/ui/npm/held", "ui-held.png", { full: true });
  await shot("/ui/npm/packages/broken-thing", "ui-held-version.png", { full: true });
  // Search across repositories from the top bar.
  await page.goto(URL + "/");
  await page.fill("header form.topsearch input[name=q]", "acme");
  await page.press("header form.topsearch input[name=q]", "Enter");
  await page.waitForURL(/\/ui\/search\?q=acme/);
  await page.screenshot({ path: join(OUT, "ui-search.png") });
  console.log("docs/ui-search.png <- /ui/search?q=acme");
  // Tokens: an admin creates one (its secret is shown this once; this server is thrown away).
  await page.goto(URL + "/ui/tokens");
  await page.fill("form.new-token input[name=name]", "deploy-bot");
  await page.check("form.new-token input[name=scope_publish]");
  await page.selectOption("form.new-token select[name=repository]", "npm");
  await page.fill("form.new-token input[name=expires]", "90d");
  await page.click("form.new-token button");
  await page.locator("code.secret").waitFor();
  await page.screenshot({ path: join(OUT, "ui-tokens.png"), fullPage: true });
  console.log("docs/ui-tokens.png <- POST /ui/tokens");
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
