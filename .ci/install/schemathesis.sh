#!/usr/bin/env bash
# Installs schemathesis (PyPI), which tests/openapi.rs runs against a live `sluice serve` to fuzz
# the native API with its own OpenAPI document.
set -euo pipefail

VERSION=4.32.5
if ! command -v schemathesis >/dev/null 2>&1; then
  # Debian's python3 marks its environment as externally managed (PEP 668).
  python3 -m pip install --quiet "schemathesis==$VERSION" \
    || python3 -m pip install --quiet --break-system-packages "schemathesis==$VERSION"
fi
