#!/usr/bin/env bash
# Builds the web IDE into OUT_DIR (what pysandboxd serves from <data-dir>/web): `npm ci` when
# package-lock.json changed since the last install, then type-check, bundle and precompress.
#
#   web/build.sh OUT_DIR
#
# Without node/npm it prints why and exits 0: the server builds and runs without the IDE (then
# `/` says so). A failed build also exits 0 with a warning, unless PYSANDBOX_WEB=ON (then 1), so
# that a registry outage cannot stop the server from building; the browser tests, which need
# the IDE wherever node and Chromium exist, catch a build that should have worked.
set -euo pipefail
out=${1:?usage: web/build.sh OUT_DIR}
cd "$(dirname "$0")"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "web: node/npm not found: the web IDE is not built (pysandboxd serves the API only)"
  exit 0
fi

build() {
  # Installs are shared by every build directory; redo one only when the lockfile changed.
  local stamp=node_modules/.pysandbox-lock-sha256 sum
  sum=$(sha256sum package.json package-lock.json | sha256sum | cut -d' ' -f1)
  if [[ ! -f $stamp || $(cat "$stamp") != "$sum" ]]; then
    # (`|| return`: errexit does not apply inside a function called as a condition.)
    npm ci --no-audit --no-fund --loglevel=error || return 1
    echo "$sum" >"$stamp" || return 1
  fi
  PYSANDBOX_WEB_OUT_DIR="$out" npm run --silent build || return 1
}

if ! build; then
  if [[ ${PYSANDBOX_WEB:-AUTO} == ON ]]; then
    echo "web: the web IDE failed to build" >&2
    exit 1
  fi
  echo "web: WARNING: the web IDE failed to build (see above); pysandboxd serves the API only" >&2
  rm -f "$out/index.html"
fi
