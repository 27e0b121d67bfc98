#!/usr/bin/env bash
# The machine-level programs the test suites start for real, installed from Debian when missing,
# so that `make test` (and `make integrations`) work on a fresh machine with only Python and make:
# Node.js and npm (the official JS Edge SDK test, tests/js, installed from its lock file),
# PostgreSQL 15 (tests/state), nginx (tests/conformance) and a Java runtime (the Spark runner's
# tests). Those tests fail, not skip, without them. Needs root or sudo only when something is
# missing.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
{ command -v node >/dev/null && command -v npm >/dev/null; } || missing+=(nodejs npm)
[ -x /usr/lib/postgresql/15/bin/initdb ] || missing+=(postgresql)
{ command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; } || missing+=(nginx)
if [ "${1:-}" = "--with-java" ] && ! command -v java >/dev/null; then
  missing+=(openjdk-17-jre-headless)
fi
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "installing from Debian: ${missing[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
fi
if [ ! -f tests/js/node_modules/.package-lock.json ] \
  || [ tests/js/package-lock.json -nt tests/js/node_modules/.package-lock.json ]; then
  npm ci --prefix tests/js --no-audit --no-fund
fi
