#!/usr/bin/env bash
# Makes the web UI's screenshots in docs/ (docs/ui.md shows them): starts a `sluice serve` with a
# gated npm repository and a private one, pushes a few real packages with npm, lets a real
# `sluice runner` run their pipelines (one fails, one stays pending), then has headless Chromium
# photograph the main pages (tests/ui/screenshots.mjs).
#
#   cargo build -p sluice && bash .ci/install/ui.sh && bash tests/ui/screenshots.sh
#
# SLUICE_BIN picks another binary (default target/debug/sluice).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="${SLUICE_BIN:-$root/target/debug/sluice}"
[ -x "$bin" ] || { echo "no sluice binary at $bin; run cargo build -p sluice" >&2; exit 1; }
[ -x /usr/bin/chromium ] && [ -d "$root/tests/ui/node_modules/playwright-core" ] || { echo "run .ci/install/ui.sh first" >&2; exit 1; }

work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

cat > "$work/ci.yml" <<'YAML'
stages: [test, scan]
unit-tests:
  stage: test
  script:
    - echo "unpacked $NPM_PACKAGE_NAME@$NPM_PACKAGE_VERSION into pkg/"
    - ls -la pkg/
    - node -e "const p=require('./pkg/package.json'); console.log('name', p.name, 'version', p.version)"
    - if grep -q broken-thing pkg/package.json; then echo lint found 3 problems in index.js; exit 1; fi
    - echo "12 tests passed"
audit:
  stage: scan
  script:
    - echo "checking licenses and dependencies"
    - grep -o '"license"[^,]*' pkg/package.json
    - echo "no known vulnerabilities"
YAML
cat > "$work/sluice.toml" <<'TOML'
[[repository]]
name = "npm"
format = "npm"
gate = "pipeline"
pipeline = "ci.yml"

[[repository]]
name = "internal"
format = "npm"
read = "token"
TOML

"$bin" serve --listen 127.0.0.1:0 --data "$work/data" --config "$work/sluice.toml" > "$work/serve.out" 2> "$work/serve.log" &
pids+=($!)
for _ in $(seq 1 200); do grep -q "listening on" "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
url="$(sed -n 's/^sluice listening on //p' "$work/serve.out" | head -1)"
[ -n "$url" ] || { cat "$work/serve.log" >&2; exit 1; }
echo "server at $url"

admin="$("$bin" token create --data "$work/data" --name alice --scopes admin)"
ci="$("$bin" token create --data "$work/data" --name release-bot --scopes publish)"
runner="$("$bin" token create --data "$work/data" --name runner --scopes runner)"

publish() { # token repo name version deps [readme]
  local d="$work/pkg-${3//\//-}-$4"
  mkdir -p "$d"
  cat > "$d/package.json" <<JSON
{"name": "$3", "version": "$4", "description": "$3: a small library used to show the Sluice web UI",
 "main": "index.js", "license": "MIT", "keywords": ["demo", "sluice"], "author": "Alice Example",
 "homepage": "https://example.com/$3", "dependencies": $5}
JSON
  echo "module.exports = () => '$3@$4';" > "$d/index.js"
  [ -z "${6:-}" ] || printf '%s' "$6" > "$d/README.md"
  local reg="$url/$2/"
  printf 'registry=%s\n%s:_authToken=%s\n' "$reg" "${reg#http:}" "$1" > "$d.npmrc"
  (cd "$d" && HOME="$work" npm publish --registry "$reg" --userconfig "$d.npmrc" --access public \
     --cache "$work/npm-cache" --no-audit --no-fund >"$d.log" 2>&1) || { cat "$d.log" >&2; echo "publish $3@$4 failed" >&2; exit 1; }
  echo "pushed $2/$3@$4"
}

"$bin" runner --url "$url" --token "$runner" --work-dir "$work/runner" > "$work/runner.log" 2>&1 &
runner_pid=$!
pids+=($runner_pid)
publish "$admin" npm left-pad-plus 1.0.0 '{}'
publish "$ci" npm left-pad-plus 1.1.0 '{}' "$(cat <<'MD'
# left-pad-plus

Pads strings on the left, with **any** fill and full Unicode support.

```js
const pad = require("left-pad-plus");
pad("42", 5, "0"); // "00042"
```

| option  | default | meaning                       |
|---------|---------|-------------------------------|
| `fill`  | `" "`   | what to pad with              |
| `width` | `0`     | the length of the result      |

- Works in Node.js 18 and later
- No dependencies

See [the changelog](https://example.com/left-pad-plus/changes) for what is new in 1.1.0.
MD
)"
publish "$ci" npm @acme/widgets 2.0.0 '{"left-pad-plus": "^1.1.0", "react": ">=18"}'
publish "$ci" npm broken-thing 0.1.0 '{}'
publish "$ci" npm @acme/widgets 2.1.0 '{"left-pad-plus": "^1.1.0", "react": ">=18", "scheduler": "^0.23.0"}'
publish "$admin" internal billing-client 3.2.0 '{"@acme/widgets": "^2.0.0"}'
publish "$admin" internal @acme/billing-ui 1.0.0 '{"@acme/widgets": "^2.0.0"}'

# Wait until every pipeline so far has finished, then stop the runner so the next push stays pending.
for _ in $(seq 1 600); do
  open="$(curl -fsS -H "authorization: Bearer $admin" "$url/api/v1/pipelines?repository=npm" \
    | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const p=JSON.parse(s).pipelines;console.log(p.filter(x=>!["success","failed","canceled","skipped"].includes(x.status)).length)})')"
  [ "$open" = 0 ] && break
  sleep 0.5
done
kill "$runner_pid"; wait "$runner_pid" 2>/dev/null || true
publish "$ci" npm @acme/widgets 2.2.0 '{"left-pad-plus": "^1.1.0", "react": ">=18"}'

cd "$root/tests/ui"
SLUICE_URL="$url" SLUICE_TOKEN="$admin" SCREENSHOT_DIR="$root/docs" node screenshots.mjs
