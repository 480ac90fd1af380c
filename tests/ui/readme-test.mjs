// The browser half of tests/ui_readme.rs: Debian's headless Chromium opens the package page of an
// npm package whose README.md holds ordinary Markdown and hostile HTML, checks that the Markdown
// renders, that nothing in it ran (after clicking every link and hovering), and that no script,
// iframe, event handler or `javascript:` URL is left in the README's DOM.
//
// Environment: SLUICE_URL, README_PACKAGE (1.0.0 and 1.1.0 pushed, 1.1.0 with the hostile
// README), BARE_PACKAGE (no README). Exits non-zero on the first failed check.

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
const PKG = env("README_PACKAGE");
const BARE = env("BARE_PACKAGE");
// As in ui-test.mjs (importing it would run it).
const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

function check(cond, message) {
  if (!cond) throw new Error(`check failed: ${message}`);
  console.log(`ok - ${message}`);
}

const profile = mkdtempSync(join(tmpdir(), "sluice-readme-profile-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: CHROMIUM_ARGS,
  viewport: { width: 1280, height: 900 },
});
// Never the internet: anything but the test server is refused.
const origin = new globalThis.URL(URL).origin;
await context.route("**/*", (route) => (route.request().url().startsWith(origin) ? route.continue() : route.abort()));
const page = context.pages()[0] ?? (await context.newPage());
page.setDefaultTimeout(20_000);
const dialogs = [];
page.on("dialog", (d) => { dialogs.push(d.message()); d.dismiss(); });

async function open(path) {
  const r = await page.goto(URL + path);
  check(r.status() === 200, `GET ${path} answers 200 (got ${r.status()})`);
}

try {
  await open(`/ui/npm/packages/${PKG}`);
  const readme = page.locator("section.readme");
  check((await readme.count()) === 1, "the package page has a README section");
  check((await readme.locator("h1").first().innerText()).trim() === "Readme Demo", "the README's heading renders as a heading");
  check((await readme.locator("pre code").first().innerText()).includes('require("readme-demo")'), "the code block renders as code");
  check((await readme.locator("table td").allInnerTexts()).includes("depth"), "the table renders as a table");
  check((await readme.locator("a[href='https://example.com/docs']").count()) === 1, "an ordinary https link is kept");
  check(!(await page.locator("body").innerText()).includes("Old Readme"), "the page shows the newest version's README");

  // Clicking: links stay on the page (a listener stops navigation, not the links' own handlers).
  await page.evaluate(() => document.addEventListener("click", (e) => e.preventDefault(), true));
  const links = readme.locator("a");
  const n = await links.count();
  for (let i = 0; i < n; i++) await links.nth(i).click();
  await readme.locator("text=click me").click();
  await readme.locator("text=hover").hover().catch(() => {});
  check(n >= 3, `the README's ${n} links were clicked`);
  check((await page.evaluate(() => typeof window.pwned)) === "undefined", "window.pwned is undefined after clicking every link");
  check(dialogs.length === 0, "no dialog opened");

  const dom = await readme.evaluate((root) => {
    const all = [...root.querySelectorAll("*")];
    return {
      tags: all.map((e) => e.tagName.toLowerCase()),
      handlers: all.flatMap((e) => [...e.attributes].map((a) => a.name)).filter((n) => n.startsWith("on")),
      styles: all.filter((e) => e.hasAttribute("style")).length,
      urls: all.flatMap((e) => ["href", "src", "action", "formaction"].map((a) => e.getAttribute(a)).filter((v) => v !== null)),
      imgs: [...root.querySelectorAll("img")].map((i) => i.getAttribute("src")),
    };
  });
  for (const tag of ["script", "iframe", "style", "form", "object", "embed"]) {
    check(!dom.tags.includes(tag), `no <${tag}> in the README's DOM`);
  }
  check(dom.handlers.length === 0, `no on* attributes in the README's DOM (${dom.handlers.join(", ")})`);
  check(dom.styles === 0, "no style attributes in the README's DOM");
  check(dom.urls.every((u) => /^(https?:|mailto:)/.test(u)), `only http(s) URLs are left (${dom.urls.join(" ")})`);
  check(!dom.urls.some((u) => u.includes("docs/usage.md") || u.includes("img/logo.png")), "relative URLs are dropped");
  check(dom.imgs.every((s) => s === null || s.startsWith("https://")), `images keep only https sources (${dom.imgs.join(" ")})`);
  check((await readme.innerText()).includes("logo"), "a relative Markdown image shows its alt text instead");

  // An older version's page shows that version's README.
  await open(`/ui/npm/packages/${PKG}?version=1.0.0`);
  check((await page.locator("section.readme h1").first().innerText()).trim() === "Old Readme", "version 1.0.0's page shows its own README");

  // A package without a README has no README section.
  await open(`/ui/npm/packages/${BARE}`);
  check((await page.locator("section.readme").count()) === 0, "a package without a README has no README section");
  console.log("ALL README CHECKS PASSED");
} catch (e) {
  console.error(`FAILED at ${page.url()}: ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
