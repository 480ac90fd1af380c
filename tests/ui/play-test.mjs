// The browser half of tests/manual_jobs.rs's play-button test: headless Chromium signs in with an
// approver's token, opens a pipeline waiting at a manual job, presses "play", and checks that the
// page comes back naming the approver and the job queued for a runner.
//
// Environment: SLUICE_URL, SLUICE_APPROVE_TOKEN, UI_PIPELINE (its id), UI_APPROVER (the token's
// name). Exits non-zero on the first failed check.

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
const TOKEN = env("SLUICE_APPROVE_TOKEN");
const PIPELINE = env("UI_PIPELINE");
const APPROVER = env("UI_APPROVER");

function check(cond, message) {
  if (!cond) throw new Error(`check failed: ${message}`);
  console.log(`ok - ${message}`);
}

const profile = mkdtempSync(join(tmpdir(), "sluice-ui-profile-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(20_000);
  const path = `/ui/pipelines/${PIPELINE}`;

  await page.goto(URL + path);
  check((await page.locator("form.play button").count()) === 0, "signed out, the pipeline page has no play button");
  check((await page.locator("h1 .badge-manual").count()) === 1, "the pipeline's badge says manual");

  await page.goto(`${URL}/ui/login?next=${encodeURIComponent(path)}`);
  await page.fill("#token", TOKEN);
  await Promise.all([page.waitForURL(URL + path), page.locator("form.login button, form.login input[type=submit]").first().click()]);
  const play = page.locator("form.play button");
  check((await play.count()) === 1, "signed in as an approver, the manual job has a play button");

  await Promise.all([page.waitForURL(URL + path), play.click()]);
  const body = await page.locator("main, body").first().innerText();
  check(body.includes(`approved by ${APPROVER}`), "back on the pipeline page, the job names its approver");
  check((await page.locator("form.play button").count()) === 0, "the played job has no play button any more");
  check((await page.locator("td .badge-pending").count()) === 1, "the played job waits for a runner");
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
