#!/usr/bin/env bash
# Installs the S3-compatible server the object-storage tests run against (tests/s3_blobs.rs and the
# npm/pipeline/gate tests' second run with SLUICE_TEST_BLOBS=s3): s3s-fs, which serves a folder over
# S3 with SigV4, multipart uploads, ranged and conditional GETs. It builds from crates.io (no
# download from elsewhere), into a tools root the machine keeps between runs, and only when the
# binary is missing: the build takes minutes.
set -euo pipefail

S3S_FS_VERSION=0.14.1
TOOLS="${SLUICE_TOOLS:-$HOME/.cache/sluice-tools}"
BIN="$TOOLS/bin/s3s-fs"

if [[ -x "$BIN" ]] && "$BIN" --version 2>/dev/null | grep -q "$S3S_FS_VERSION"; then
  exit 0
fi
mkdir -p "$TOOLS"
# CARGO_TARGET_DIR is kept apart so the build neither shares locks with nor pollutes the workspace's.
CARGO_TARGET_DIR="$TOOLS/build" nice -n 10 cargo install s3s-fs --version "$S3S_FS_VERSION" \
  --features binary --locked --root "$TOOLS"
rm -rf "$TOOLS/build"
