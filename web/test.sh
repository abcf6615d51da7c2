#!/usr/bin/env bash
# The IDE's unit tests (vitest: share links, storage, traceback lines, limits from /openapi.json).
# CTest web.unit; exits 77 (skipped) without node/npm or without installed packages.
set -euo pipefail
cd "$(dirname "$0")"
command -v node >/dev/null && command -v npm >/dev/null || { echo "SKIP: web unit tests: node/npm not found"; exit 77; }
[[ -x node_modules/.bin/vitest ]] || { echo "SKIP: web unit tests: packages not installed (web/build.sh runs npm ci)"; exit 77; }
exec node_modules/.bin/vitest run
