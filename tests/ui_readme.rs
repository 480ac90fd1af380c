//! READMEs on the web UI's package page, end to end: a real `npm publish` of a package whose
//! README.md mixes ordinary Markdown with hostile HTML, then Debian's headless Chromium
//! (playwright-core, tests/ui/readme-test.mjs) checks that the Markdown renders and nothing in it
//! runs or survives (scripts, iframes, event handlers, `javascript:` links).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::npm::{make_package, Npm};
use support::{require_tool, Server};

/// Ordinary Markdown around everything a hostile README might try.
const HOSTILE_README: &str = r#"# Readme Demo

A package whose README tries everything.

```js
const demo = require("readme-demo");
```

| option | default |
|--------|---------|
| depth  | 3       |

See [the docs](https://example.com/docs) and [a relative page](docs/usage.md).

<script>window.pwned = 1</script>

<img src=x onerror="window.pwned=1">

![logo](img/logo.png) ![badge](https://example.com/badge.svg)

[click me](javascript:window.pwned=1)

<iframe src="https://example.com/frame" onload="window.pwned=1"></iframe>

<a href="https://example.com" onclick="window.pwned=1; return false">a handled link</a>

<div onmouseover="window.pwned=1" style="position:fixed;inset:0">hover</div>
"#;

fn ui_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/ui")
}

/// Fails (never skips) when the browser or playwright-core is missing.
fn require_browser() {
    require_tool("node");
    assert!(Path::new("/usr/bin/chromium").exists(), "/usr/bin/chromium is missing; run .ci/install/ui.sh");
    assert!(
        ui_dir().join("node_modules/playwright-core/package.json").exists(),
        "playwright-core is not installed in tests/ui; run .ci/install/ui.sh"
    );
}

fn with_readme(dir: PathBuf, readme: &str) -> PathBuf {
    std::fs::write(dir.join("README.md"), readme).unwrap();
    dir
}

#[test]
fn the_package_page_renders_a_hostile_readme_safely() {
    require_browser();
    let server = Server::start();
    let token = server.token("readme-publisher", "publish", None);
    let npm = Npm::new(&server, "pub", Some(&token));
    let root = server.work.join("readme-src");
    // An older version with its own README: the page shows the newest one's unless asked.
    let old = with_readme(make_package(&root.join("old"), "readme-demo", "1.0.0"), "# Old Readme\n\nfrom 1.0.0\n");
    npm.ok(&old, &["publish"]);
    let new = with_readme(make_package(&root.join("new"), "readme-demo", "1.1.0"), HOSTILE_README);
    npm.ok(&new, &["publish"]);
    // And one without a README: its page has no README section.
    npm.ok(&make_package(&root.join("bare"), "no-readme", "0.1.0"), &["publish"]);

    let status = Command::new("node")
        .current_dir(ui_dir())
        .arg("readme-test.mjs")
        .env("SLUICE_URL", &server.url)
        .env("README_PACKAGE", "readme-demo")
        .env("BARE_PACKAGE", "no-readme")
        .status()
        .expect("run node tests/ui/readme-test.mjs");
    assert!(status.success(), "the browser checks failed (see the ok/check lines above)");
}
