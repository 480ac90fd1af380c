#!/usr/bin/env bash
# Installs the real NuGet client for tests/nuget.rs: nuget.exe 5.8 (shipped inside the npm
# package `nuget-exe`) run by Debian's mono, behind a `nuget` wrapper on the PATH.
set -euo pipefail

NUGET_VERSION=5.8.0
NUGET_HOME=/opt/nuget-exe
NUGET_EXE="$NUGET_HOME/nuget-$NUGET_VERSION.exe"

# The mono runtime and the assemblies nuget.exe references (`monodis --assemblyref`), rather than
# mono-complete (~180 packages), to keep CI installs short.
MONO_PACKAGES=(
  mono-runtime
  ca-certificates-mono
  libmono-system-componentmodel-composition4.0-cil
  libmono-system-xml-linq4.0-cil
  libmono-system-net-http4.0-cil
  libmono-system-io-compression4.0-cil
  libmono-system-io-compression-filesystem4.0-cil
  libmono-system-security4.0-cil
  libmono-system-runtime-serialization4.0-cil
  libmono-microsoft-csharp4.0-cil
  libmono-system-data4.0-cil
  libmono-system-componentmodel-dataannotations4.0-cil
  libmono-windowsbase4.0-cil
  libmono-microsoft-build-utilities-v4.0-4.0-cil
  libmono-microsoft-build-framework4.0-cil
  libmono-system-data-services-client4.0-cil
  libmono-system-identitymodel4.0-cil
  libmono-system-servicemodel4.0a-cil
  libmono-system-numerics4.0-cil
)

missing=()
for pkg in "${MONO_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done
# npm fetches nuget.exe from the npm registry (.ci/install/npm.sh usually installed it already).
if ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi
if ((${#missing[@]})); then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

if [[ ! -f "$NUGET_EXE" ]]; then
  workdir="$(mktemp -d)"
  trap 'rm -rf "$workdir"' EXIT
  (cd "$workdir" && npm pack --silent "nuget-exe@$NUGET_VERSION" >/dev/null)
  tar -xzf "$workdir/nuget-exe-$NUGET_VERSION.tgz" -C "$workdir"
  install -D -m 0644 "$workdir/package/nuget-$NUGET_VERSION.exe" "$NUGET_EXE"
fi

wrapper=/usr/local/bin/nuget
expected="#!/bin/sh
exec mono \"$NUGET_EXE\" \"\$@\""
if [[ ! -x "$wrapper" ]] || [[ "$(cat "$wrapper")" != "$expected" ]]; then
  printf '%s\n' "$expected" > "$wrapper"
  chmod 0755 "$wrapper"
fi
