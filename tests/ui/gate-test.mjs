// The browser half of tests/ui_gate.rs: the gate's held view and its actions, tokens in the UI,
// and the top bar's search across repositories, in Debian's headless Chromium against a server
// the Rust test set up. UI_SCENARIO picks one: held | tokens | search.
//
// Environment: SLUICE_URL, UI_SCENARIO, and per scenario:
//   held:   ADMIN_TOKEN, PUBLISH_TOKEN, UI_FAILING_JOB, UI_FAILURE_LINE, UI_RELEASE_REASON (a gated `npm` repository
//           with broken-thing 0.1.0 failed, good-thing 1.0.0 and other-thing 2.0.0 pending)
//   tokens: ADMIN_TOKEN, READ_TOKEN (reads `secret` only)
//   search: READ_TOKEN (reads `secret`; `tools` holds many-thing-00..59, `npm` npm-thing,
//           `secret` hidden-thing)
// Exits non-zero on the first failed check.

import { createServer } from "node:http";
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
const SCENARIO = env("UI_SCENARIO");

function check(cond, message) {
  if (!cond) throw new Error(`check failed: ${message}`);
  console.log(`ok - ${message}`);
}

const profile = mkdtempSync(join(tmpdir(), "sluice-gate-profile-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1280, height: 900 },
});
const page = context.pages()[0] ?? (await context.newPage());
page.setDefaultTimeout(20_000);
const consoleErrors = [];
page.on("console", (m) => { if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) consoleErrors.push(m.text()); });
page.on("pageerror", (e) => consoleErrors.push(String(e)));

async function open(path, expectStatus = 200) {
  const r = await page.goto(URL + path);
  check(r.status() === expectStatus, `GET ${path} answers ${expectStatus} (got ${r.status()})`);
  return r;
}
const text = (sel) => page.locator(sel).first().innerText();

async function signIn(token) {
  await page.goto(URL + "/ui/login");
  await page.fill("input[name=token]", token);
  await page.click("form.login button");
  await page.waitForURL(URL + "/");
}
async function signOut() {
  await page.click("form[action='/ui/logout'] button");
  await page.waitForURL(URL + "/");
}

/// A same-origin POST from inside a Sluice page, as a script of the page would send it.
async function postFromPage(path, fields) {
  return page.evaluate(async ([path, fields]) => {
    const r = await fetch(path, { method: "POST", body: new URLSearchParams(fields), redirect: "manual" });
    return r.status;
  }, [path, fields]);
}

/// Another site's page that posts a form to Sluice: the browser sends the cookie along
/// (127.0.0.1 on another port is the same site), so only the UI's own checks stop it.
async function forgedPost(action, fields) {
  const inputs = Object.entries(fields).map(([k, v]) => `<input type="hidden" name="${k}" value="${v}">`).join("");
  const evil = createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end(`<!doctype html><form method="post" action="${URL}${action}">${inputs}<button id="go">win a prize</button></form>`);
  });
  await new Promise((ok) => evil.listen(0, "127.0.0.1", ok));
  try {
    await page.goto(`http://127.0.0.1:${evil.address().port}/`);
    const [response] = await Promise.all([page.waitForNavigation(), page.click("#go")]);
    return response.status();
  } finally {
    evil.close();
  }
}

const row = (pkg) => page.locator(`table.held tbody tr[data-package="${pkg}"]`);

async function heldScenario() {
  const ADMIN = env("ADMIN_TOKEN");
  const PUBLISHER = env("PUBLISH_TOKEN");
  const JOB = env("UI_FAILING_JOB");
  const LINE = env("UI_FAILURE_LINE");
  const REASON = env("UI_RELEASE_REASON");

  // ---- signed out: the list and the reasons, no actions ------------------------------------------
  await open("/ui/npm");
  await page.click("a[href='/ui/npm/held']");
  await page.waitForURL(URL + "/ui/npm/held");
  check(await page.locator("table.held tbody tr[data-package]").count() === 3, "the held view lists the three held versions");
  check((await row("broken-thing").locator(".badge").first().innerText()) === "failed", "broken-thing's pipeline failed");
  check((await row("broken-thing").locator(".why").innerText()).includes(JOB), `the held view names the failed job ${JOB}`);
  check((await row("good-thing").locator(".badge").first().innerText()) === "pending", "good-thing waits for its pipeline");
  check((await row("good-thing").locator(".who").innerText()).includes("ui-publisher"), "the held view shows who pushed");
  check(/\d{4}-\d\d-\d\d \d\d:\d\d/.test(await row("good-thing").locator(".when").innerText()), "the held view shows when");
  check(await page.locator("table.held form").count() === 0, "signed out, there are no actions");

  await row("broken-thing").locator("a.version").click();
  await page.waitForURL(/\/ui\/npm\/packages\/broken-thing/);
  const why = await text("section.held-why");
  check(why.includes(JOB) && why.includes("failed"), "the version page says which job failed");
  check((await text("section.held-why pre.log-tail")).includes(LINE), "the version page shows the failed job's last log lines");
  await page.click(`section.held-why a:text-is("${JOB}")`);
  await page.waitForURL(/\/ui\/jobs\/\d+$/);
  check((await page.locator("#log").textContent()).includes(LINE), "the reason links to the job's whole log");

  // ---- a publisher may read, not act ------------------------------------------------------------------
  await signIn(PUBLISHER);
  await open("/ui/npm/held");
  check(await page.locator("table.held form").count() === 0, "a publish token sees no retry, cancel or release");
  const goodPipeline = await row("good-thing").getAttribute("data-pipeline");
  const csrfOfPublisher = await page.locator("form[action='/ui/logout'] input[name=csrf]").getAttribute("value");
  check(await postFromPage(`/ui/pipelines/${goodPipeline}/release`, { csrf: csrfOfPublisher }) === 403, "a publisher's release is refused");
  await signOut();

  // ---- an admin acts -------------------------------------------------------------------------------
  await signIn(ADMIN);
  await open("/ui/npm/held");
  check(await row("good-thing").locator("form.action-release button").count() === 1, "an admin sees release");
  check(await row("good-thing").locator("form.action-cancel button").count() === 1, "a pending pipeline can be canceled");
  check(await row("broken-thing").locator("form.action-retry button").count() === 1, "a failed pipeline can be retried");
  check(await row("broken-thing").locator("form.action-cancel").count() === 0, "a finished pipeline cannot be canceled");
  const csrf = await row("good-thing").locator("form.action-release input[name=csrf]").getAttribute("value");
  // The release form asks why: required past a failed pipeline, optional for one still pending.
  const reasonOf = (pkg) => row(pkg).locator("form.action-release input[name=reason]");
  check(await reasonOf("broken-thing").count() === 1 && await reasonOf("good-thing").count() === 1, "the release form has a reason field");
  check(await reasonOf("broken-thing").getAttribute("required") !== null, "releasing a failed pipeline requires a reason");
  check(await reasonOf("good-thing").getAttribute("required") === null, "releasing a pending one does not");

  // Forged requests change nothing: another site's form (the cookie goes along, the Origin
  // check stops it even with the right CSRF token), and a same-origin post without the token.
  check(await forgedPost(`/ui/pipelines/${goodPipeline}/release`, { csrf, next: "/ui/npm/held" }) === 403, "another site's release form is refused");
  await open("/ui/npm/held");
  check(await postFromPage(`/ui/pipelines/${goodPipeline}/release`, { next: "/ui/npm/held" }) === 403, "a release without the CSRF token is refused");
  check(await postFromPage(`/ui/pipelines/${goodPipeline}/release`, { csrf: "0".repeat(64) }) === 403, "a release with a wrong CSRF token is refused");
  await open("/ui/npm/held");
  check(await row("good-thing").count() === 1, "after the forged requests good-thing is still held");

  // The server holds to the rule whatever the browser does: a failed pipeline's release sent
  // without a reason (the field's own check taken away) is refused with why, and changes nothing.
  const brokenPipeline = await row("broken-thing").getAttribute("data-pipeline");
  check(await postFromPage(`/ui/pipelines/${brokenPipeline}/release`, { csrf, next: "/ui/npm/held", reason: "  " }) === 400, "a blank reason for a failed pipeline is refused");
  await reasonOf("broken-thing").evaluate((e) => e.removeAttribute("required"));
  const [refused] = await Promise.all([page.waitForNavigation(), row("broken-thing").locator("form.action-release button").click()]);
  check(refused.status() === 400, `the form sent without a reason answers 400 (got ${refused.status()})`);
  const refusal = await text("main");
  check(refusal.includes("reason") && refusal.includes("failed"), `the error page says a reason is needed (${refusal.replace(/\s+/g, " ")})`);
  await open("/ui/npm/held");
  check(await row("broken-thing").count() === 1, "the refused release left broken-thing held");

  await reasonOf("good-thing").fill(REASON);
  await row("good-thing").locator("form.action-release button").click();
  await page.waitForURL(/\/ui\/npm\/held\?done=released/);
  check(await row("good-thing").count() === 0, "released, good-thing leaves the held view");
  check((await text("main")).includes("released"), "the page confirms the release");
  await open("/ui/npm/packages/good-thing");
  const releasedBy = await text(".released-by");
  check(releasedBy.includes("ui-admin") && releasedBy.includes(REASON), `the version page says who released it and why (${releasedBy})`);
  await open(`/ui/pipelines/${goodPipeline}`);
  const onPipeline = await text(".released-by");
  check(onPipeline.includes("ui-admin") && onPipeline.includes(REASON), `the pipeline page says who released it and why (${onPipeline})`);
  await open("/ui/pushes");
  check((await text("main")).includes(REASON), "the activity log shows the release's reason");

  await open("/ui/npm/held");
  await row("other-thing").locator("form.action-cancel button").click();
  await page.waitForURL(/\/ui\/npm\/held\?done=canceled/);
  check((await row("other-thing").locator(".badge").first().innerText()) === "canceled", "cancel stops other-thing's pipeline");
  check(await row("other-thing").locator("form.action-retry button").count() === 1, "a canceled pipeline can be retried");

  await row("broken-thing").locator("form.action-retry button").click();
  await page.waitForURL(/\/ui\/npm\/held\?done=retried/);
  check((await row("broken-thing").locator(".badge").first().innerText()) === "pending", "retry queues broken-thing's pipeline again");

  // The pipeline's own page has the same actions: cancel the retried pipeline there.
  await row("broken-thing").locator("td a[href^='/ui/pipelines/']").click();
  await page.waitForURL(/\/ui\/pipelines\/\d+$/);
  check(await page.locator("div.actions form.action-release button").count() === 1, "the held pipeline's page offers release");
  await page.click("div.actions form.action-cancel button");
  await page.waitForURL(/\/ui\/pipelines\/\d+\?done=canceled/);
  check((await text("h1 .badge")) === "canceled", "cancel on the pipeline page stops it");
  check(await page.locator("div.actions form.action-retry button").count() === 1, "and offers retry again");
}

async function tokensScenario() {
  const ADMIN = env("ADMIN_TOKEN");
  const READER = env("READ_TOKEN");

  await open("/ui/tokens", 401);
  check(await page.locator("form.login input[name=token]").count() === 1, "signed out, the tokens page asks for a token");

  // ---- anyone signed in: their own token ----------------------------------------------------------
  await signIn(READER);
  await page.click("header a[href='/ui/tokens']");
  await page.waitForURL(URL + "/ui/tokens");
  const mine = await text("section.my-token");
  check(mine.includes("ui-reader") && mine.includes("read") && mine.includes("secret"), "a reader sees its token's name, scopes and repository");
  check(/Last used\s+\d{4}-\d\d-\d\d/.test(mine), `a reader sees its token's last use (${mine.replace(/\s+/g, " ")})`);
  check(/Expires\s+\d{4}-\d\d-\d\d/.test(mine), "a reader sees when its token expires");
  check(await page.locator("table.tokens").count() === 0 && await page.locator("form.new-token").count() === 0, "a reader sees no other tokens and no create form");
  const readerCsrf = await page.locator("form[action='/ui/logout'] input[name=csrf]").getAttribute("value");
  check(await postFromPage("/ui/tokens", { csrf: readerCsrf, name: "sneaky", scope_admin: "on" }) === 403, "a reader cannot create tokens");
  await signOut();

  // ---- an admin lists, creates (shown once) and revokes ------------------------------------------------
  await signIn(ADMIN);
  await open("/ui/tokens");
  const list = await text("table.tokens");
  check(list.includes("ui-reader") && list.includes("ui-admin"), "an admin sees every token");
  await page.fill("form.new-token input[name=name]", "deploy-bot");
  await page.click("form.new-token button");
  check(page.url() === URL + "/ui/tokens" && (await text("main")).includes("at least one scope"), "a token without scopes is refused with the reason");
  await page.fill("form.new-token input[name=name]", "deploy-bot");
  await page.check("form.new-token input[name=scope_publish]");
  await page.selectOption("form.new-token select[name=repository]", "npm");
  await page.fill("form.new-token input[name=expires]", "30d");
  await page.click("form.new-token button");
  const secret = (await text("code.secret")).trim();
  check(/^sluice_[a-z2-7]{40}$/.test(secret), "the new token is shown");
  check((await text("main")).includes("only time"), "the page says it is shown once");
  const api = (token) => page.request.get(URL + "/api/v1/repositories/npm/packages", { headers: { authorization: `Bearer ${token}` } });
  check((await api(secret)).status() === 200, "the new token works against the API");
  await open("/ui/tokens");
  check(!(await page.content()).includes(secret), "the token list never shows the secret again");
  const bot = page.locator("table.tokens tbody tr[data-name='deploy-bot']");
  check((await bot.locator(".scopes").innerText()).includes("publish") && (await bot.innerText()).includes("npm"), "the list shows the new token's scopes and repository");
  check((await bot.locator(".state").innerText()) === "active", "the new token is active");
  await bot.locator("form.revoke button").click();
  await page.waitForURL(URL + "/ui/tokens");
  check((await page.locator("table.tokens tbody tr[data-name='deploy-bot'] .state").innerText()) === "revoked", "the list shows it revoked");
  check((await api(secret)).status() === 401, "the revoked token is refused at once");
  check(await page.locator("table.tokens tbody tr[data-name='deploy-bot'] form.revoke").count() === 0, "a revoked token has no revoke button");
}

async function searchScenario() {
  const READER = env("READ_TOKEN");

  await open("/");
  await page.fill("header form.topsearch input[name=q]", "thing");
  await page.press("header form.topsearch input[name=q]", "Enter");
  await page.waitForURL(/\/ui\/search\?q=thing/);
  const first = await text("main");
  check(first.includes("61 packages"), "signed out, 61 packages in public repositories match");
  check(first.includes("many-thing-00") && !first.includes("npm-thing"), "results are ordered by name (npm-thing comes on page 2)");
  check(!first.includes("hidden-thing"), "the private repository's package is not found signed out");
  check(first.includes("Page 1 of 2") && await page.locator("table.results tbody tr").count() === 50, "50 results a page");
  check(await page.locator("table.results td.repo", { hasText: "tools" }).count() > 0, "each result names its repository");
  await page.click("nav.pager a[rel=next]");
  await page.waitForURL(/page=2/);
  check(await page.locator("table.results tbody tr").count() === 11, "the second page has the other 11");
  check(await page.locator("table.results tr", { hasText: "npm-thing" }).locator("td.repo", { hasText: "npm" }).count() === 1, "results come from several repositories: npm-thing from npm");
  check((await page.locator("header form.topsearch input[name=q]").inputValue()) === "thing", "the top bar keeps the query");
  await page.click("table.results a:text-is('many-thing-59')");
  await page.waitForURL(URL + "/ui/tools/packages/many-thing-59");
  check((await text("h1")).includes("many-thing-59"), "a result opens its package page");

  await open("/ui/search?q=" + encodeURIComponent("no-such-package-anywhere"));
  check((await text("table.results")).includes("No package matches"), "a search without match says so");
  await open("/ui/search?q=" + encodeURIComponent("hidden"));
  check(!(await text("main")).includes("hidden-thing"), "signed out, hidden-thing stays hidden");

  await signIn(READER);
  await page.fill("header form.topsearch input[name=q]", "hidden");
  await page.press("header form.topsearch input[name=q]", "Enter");
  await page.waitForURL(/\/ui\/search\?q=hidden/);
  check((await page.locator("table.results td.repo", { hasText: "secret" }).count()) === 1 && (await text("table.results")).includes("hidden-thing"), "signed in with a token that reads secret, hidden-thing is found");
}

try {
  if (SCENARIO === "held") await heldScenario();
  else if (SCENARIO === "tokens") await tokensScenario();
  else if (SCENARIO === "search") await searchScenario();
  else throw new Error(`unknown UI_SCENARIO ${SCENARIO}`);
  check(consoleErrors.length === 0, `no script errors in the pages (${consoleErrors.join("; ")})`);
  console.log(`ALL ${SCENARIO.toUpperCase()} CHECKS PASSED`);
} catch (e) {
  console.error(`FAILED at ${page.url()}: ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
