#!/usr/bin/env bash
# Installs what tests/ui.rs drives: Debian's headless Chromium and playwright-core (from the npm
# registry, pinned by tests/ui/package-lock.json; it never downloads a browser of its own).
# Idempotent: installs only what is missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

if [ ! -x /usr/bin/chromium ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends chromium
fi

if ! command -v npm >/dev/null 2>&1; then
  bash "$here/.ci/install/npm.sh"
fi

# Playwright must not fetch browsers: the tests point it at /usr/bin/chromium.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
cd "$here/tests/ui"
# npm ci again only when the lock file changed since the last install.
if [ ! -d node_modules/playwright-core ] || ! cmp -s package-lock.json node_modules/.installed-lock.json; then
  npm ci --no-audit --no-fund
  cp package-lock.json node_modules/.installed-lock.json
fi
