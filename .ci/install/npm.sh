#!/usr/bin/env bash
# Installs the real npm client that tests/npm.rs drives: Node.js and npm 11 (the tests speak the
# protocol npm 11 uses). Installs only what is missing.
set -euo pipefail

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends nodejs npm
fi

npm_major="$(npm --version | cut -d. -f1)"
if [ "$npm_major" -lt 11 ]; then
  npm install --global npm@11
fi
