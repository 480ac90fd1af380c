#!/usr/bin/env bash
# Installs the real RubyGems clients that tests/rubygems.rs drives: `gem` (Debian's ruby) and
# `bundle` (ruby-bundler). Installs only what is missing.
set -euo pipefail

missing=()
command -v ruby >/dev/null 2>&1 || missing+=(ruby)
command -v gem >/dev/null 2>&1 || missing+=(ruby)
command -v bundle >/dev/null 2>&1 || missing+=(ruby-bundler)

if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
fi
