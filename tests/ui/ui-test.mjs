// The browser half of tests/ui.rs: drives Debian's headless Chromium through the web UI of a
// running Sluice server that the Rust test set up (a gated `npm` repository with one pushed
// package whose pipeline waits for a runner, and a private `secret` repository).
//
// Environment: SLUICE_URL, SLUICE_READ_TOKEN (reads `secret`), SLUICE_ACTOR (the pushing
// token's name), UI_PACKAGE, UI_PRIVATE_PACKAGE, UI_JOB (the pipeline job's name),
// UI_LOG_FIRST and UI_LOG_LAST (lines the job's script echoes, before and after a pause).
// Prints `READY_FOR_RUNNER` once the job page is open: the Rust test then starts
// `sluice runner --once`, and this script checks that the page follows the log live.
// Exits non-zero on the first failed check.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const URL = env("SLUICE_URL");
const READ_TOKEN = env("SLUICE_READ_TOKEN");
const ACTOR = env("SLUICE_ACTOR");
const PKG = env("UI_PACKAGE");
const PRIVATE_PKG = env("UI_PRIVATE_PACKAGE");
const JOB = env("UI_JOB");
const LOG_FIRST = env("UI_LOG_FIRST");
const LOG_LAST = env("UI_LOG_LAST");

export const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

function check(cond, message) {
  if (!cond) throw new Error(`check failed: ${message}`);
  console.log(`ok - ${message}`);
}

const profile = mkdtempSync(join(tmpdir(), "sluice-ui-profile-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: CHROMIUM_ARGS,
  viewport: { width: 1280, height: 900 },
});
const page = context.pages()[0] ?? (await context.newPage());
page.setDefaultTimeout(20_000);
const consoleErrors = [];
// Script errors only: pages answered 401 on purpose also log "Failed to load resource".
page.on("console", (m) => { if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) consoleErrors.push(m.text()); });
page.on("pageerror", (e) => consoleErrors.push(String(e)));

async function open(path, expectStatus = 200) {
  const r = await page.goto(URL + path);
  check(r.status() === expectStatus, `GET ${path} answers ${expectStatus} (got ${r.status()})`);
  return r;
}
const text = (sel) => page.locator(sel).first().innerText();

try {
  // ---- the repositories page ------------------------------------------------------------------
  await open("/");
  const repos = await text("table.list");
  check(repos.includes("npm") && repos.includes("secret"), "the repositories page lists both repositories");
  check(repos.includes("pipeline must pass"), "the gated repository shows its gate");
  check((await page.locator("link[rel=stylesheet]").getAttribute("href")) === "/ui/static/sluice.css", "the page uses the stylesheet");
  const css = await page.request.get(URL + "/ui/static/sluice.css");
  check(css.ok() && (await css.text()).includes(".badge-success"), "the stylesheet is served");

  // ---- search -----------------------------------------------------------------------------------
  await page.click("a[href='/ui/npm']");
  await page.fill("input[name=q]", PKG.slice(0, 6));
  await page.click("form.search button");
  await page.waitForURL(/\/ui\/npm\?q=/);
  check(await page.locator("table.list a", { hasText: PKG }).count() === 1, `search for "${PKG.slice(0, 6)}" finds ${PKG}`);
  await open("/ui/npm?q=no-such-package-anywhere");
  check((await text("table.list")).includes("No package matches"), "a search without match says so");

  // ---- a pushed package waits for its pipeline ------------------------------------------------------
  await open("/ui/npm?q=" + encodeURIComponent(PKG));
  await page.click(`table.list a:text-is("${PKG}")`);
  await page.waitForURL(new RegExp(`/ui/npm/packages/`));
  check((await text("h1")).includes(PKG), "the package page names the package");
  const row = page.locator("table.list.compact tbody tr").last();
  check((await row.locator(".badge").innerText()) === "pending", "the version's pipeline badge is pending before a runner ran it");
  check((await text(".file")).includes("not released to clients"), "the gated version is marked as not released");
  const install = await text("pre.cmd");
  check(install.includes(`npm install --registry ${URL}/npm/ ${PKG}@1.0.0`), `the install command is filled in: ${install}`);
  const facts = await text(".file dl.facts");
  check(/[0-9a-f]{64}/.test(facts) && /\d+(\.\d)? (B|KiB)/.test(facts), "the file's sha256 and size are shown");
  check((await text(".main-col")).includes("left-pad"), "the dependencies are listed");
  const badgeSrc = await page.locator("img.svgbadge").getAttribute("src");
  const svg = await (await page.request.get(URL + badgeSrc)).text();
  check(svg.startsWith("<svg") && svg.includes("pending"), "the package's SVG badge says pending");

  // ---- pipeline and job pages, then follow the running job's log --------------------------------------
  await page.click(".file-head a[href^='/ui/pipelines/']");
  await page.waitForURL(/\/ui\/pipelines\/\d+$/);
  check((await text("h1 .badge")) === "pending", "the pipeline page shows the pending pipeline");
  await page.click(`table.list a:text-is("${JOB}")`);
  await page.waitForURL(/\/ui\/jobs\/\d+$/);
  const jobUrl = page.url();
  check((await page.locator("#log").getAttribute("data-final")) === "0", "the job page knows the job has not finished");
  console.log("READY_FOR_RUNNER");
  // No reload from here on: the page's script follows the log.
  await page.waitForFunction((line) => document.getElementById("log").textContent.includes(line), LOG_FIRST, { timeout: 120_000 });
  check(true, `the log shows "${LOG_FIRST}" while the job runs`);
  await page.waitForFunction((line) => document.getElementById("log").textContent.includes(line), LOG_LAST, { timeout: 120_000 });
  await page.waitForFunction(() => document.querySelector("#job-status .badge")?.textContent === "success", null, { timeout: 60_000 });
  check(true, `the followed log shows "${LOG_LAST}" and the status turned to success without a reload`);
  const followed = await page.locator("#log").textContent();
  await page.goto(jobUrl);
  const whole = await page.locator("#log").textContent();
  check(whole.includes(LOG_LAST), "the reloaded job page shows the whole log");
  check(followed === whole, "the followed log equals the stored log: no gap, no repeat");
  check((await text("h1 .badge")) === "success", "the reloaded job page shows success");

  // ---- after the pipeline passed --------------------------------------------------------------------
  await open(`/ui/npm/packages/${PKG}`);
  check((await page.locator("table.list.compact tbody tr").last().locator(".badge").innerText()) === "success", "the package page shows the success badge");
  check((await text(".file")).includes("released"), "the version is now released");
  check((await text(".side-col")).includes("latest"), "the dist-tag latest shows once released");
  check((await (await page.request.get(URL + badgeSrc)).text()).includes("success"), "the package's SVG badge says success");
  const pipelineHref = await page.locator(".file-head a[href^='/ui/pipelines/']").getAttribute("href");
  const pipelineSvg = await page.request.get(URL + "/api/v1" + pipelineHref.replace("/ui", "") + "/badge.svg");
  check(pipelineSvg.headers()["content-type"] === "image/svg+xml" && (await pipelineSvg.text()).includes("success"), "the pipeline's SVG badge says success");

  // ---- activity -------------------------------------------------------------------------------------------
  await open("/ui/pushes");
  const activity = await text("table.list");
  check(activity.includes(`${PKG} 1.0.0`) && activity.includes(ACTOR), "the activity page shows who pushed what");
  check(!activity.includes(PRIVATE_PKG), "signed out, the activity page hides the private repository's pushes");
  check(!activity.includes("127.0.0.1"), "signed out, the activity page hides client addresses");

  // ---- a private repository needs a token -----------------------------------------------------------------
  await open("/ui/secret", 401);
  check(await page.locator("form.login input[name=token]").count() === 1, "the private repository answers with the login form");
  check(!(await page.content()).includes(PRIVATE_PKG), "the private package stays hidden");
  await open("/ui/plugins", 401);
  await open("/ui/secret", 401);
  await page.fill("input[name=token]", "sluice_not_a_real_token");
  await page.click("form.login button");
  check((await text("main")).includes("not valid"), "a wrong token is refused");
  await page.fill("input[name=token]", READ_TOKEN);
  await page.click("form.login button");
  await page.waitForURL(URL + "/ui/secret");
  check(await page.locator("table.list a", { hasText: PRIVATE_PKG }).count() === 1, "after signing in, the private repository shows its package");
  const cookie = (await context.cookies()).find((c) => c.name === "sluice_token");
  check(cookie && cookie.httpOnly && cookie.sameSite === "Strict" && cookie.path === "/" && !cookie.secure, "the token cookie is HttpOnly, SameSite=Strict, Path=/ (not Secure over http)");
  await open(`/ui/secret/packages/${PRIVATE_PKG}`);
  check((await text("h1")).includes(PRIVATE_PKG), "the private package page opens when signed in");
  await open("/ui/pushes");
  check((await text("table.list")).includes(PRIVATE_PKG), "signed in, the activity page shows the private repository's pushes");
  await open("/ui/plugins");
  const plugins = await text("main");
  check(plugins.includes("tar") && plugins.includes("package_push"), "the plugins page shows the extraction tool and the trigger");
  await page.click("form[action='/ui/logout'] button");
  await page.waitForURL(URL + "/");
  await open("/ui/secret", 401);
  check(!(await context.cookies()).some((c) => c.name === "sluice_token"), "signing out removes the cookie");

  check(consoleErrors.length === 0, `no script errors in the pages (${consoleErrors.join("; ")})`);
  console.log("ALL UI CHECKS PASSED");
} catch (e) {
  console.error(`FAILED at ${page.url()}: ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
