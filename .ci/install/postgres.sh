#!/usr/bin/env bash
# Installs the PostgreSQL server the store's PostgreSQL tests run against (tests/postgres.rs, and
# the npm/pipeline/gate tests' run with SLUICE_TEST_DATABASE=postgres): Debian's `postgresql`
# (pg_trgm, which the search index uses, ships with it), only when initdb is missing. The tests start their
# own cluster in a temp folder (tests/support/pg.rs); the package's own service is not used.
set -euo pipefail

if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends postgresql >/dev/null
