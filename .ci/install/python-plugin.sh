#!/usr/bin/env bash
# Installs what the Python plugin example's test drives: componentize-py (PyPI), which builds
# examples/python-generic into a wasm component, and curl, its client.
set -euo pipefail

if ! command -v componentize-py >/dev/null 2>&1; then
  # Debian's python3 marks its environment as externally managed (PEP 668).
  python3 -m pip install --quiet "componentize-py==0.25.1" \
    || python3 -m pip install --quiet --break-system-packages "componentize-py==0.25.1"
fi
if ! command -v curl >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends curl
fi
