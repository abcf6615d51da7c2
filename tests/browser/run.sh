#!/usr/bin/env bash
# The browser suite (CTest browser.ide): the web IDE in Debian's Chromium via Playwright against
# the real server.
#
#   tests/browser/run.sh PYSANDBOXD BUILD_DIR
#
# Exits 77 (CTest: skipped) with a message where node/npm or Chromium are absent. Where they are
# present the IDE must have been built (BUILD_DIR/share/pysandbox/web): its absence fails.
# Screenshots and failure artifacts: BUILD_DIR/browser-artifacts.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
server=$(realpath "${1:?usage: tests/browser/run.sh PYSANDBOXD BUILD_DIR}")
build=$(cd "${2:?usage: tests/browser/run.sh PYSANDBOXD BUILD_DIR}" && pwd)
chromium=${CHROMIUM:-/usr/bin/chromium}

skip() {
  echo "SKIP: browser suite: $*"
  exit 77
}
command -v node >/dev/null && command -v npm >/dev/null || skip "node/npm not found"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
  skip "Playwright needs node >= 20 (found $(node --version))"
[[ -x $chromium ]] || skip "Chromium not found at $chromium (scripts/deps.sh installs Debian's chromium)"
index=$build/share/pysandbox/web/index.html
if [[ ! -f $index ]]; then
  echo "FAIL: the web IDE is not built ($index is missing) although node and npm are here"
  exit 1
fi

cd "$here"
stamp=node_modules/.pysandbox-lock-sha256
sum=$(sha256sum package.json package-lock.json | sha256sum | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$sum" ]]; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
  echo "$sum" >"$stamp"
fi

export PYSANDBOXD=$server CHROMIUM=$chromium
export PYSANDBOX_BROWSER_ARTIFACTS=$build/browser-artifacts
rm -rf "$PYSANDBOX_BROWSER_ARTIFACTS"
mkdir -p "$PYSANDBOX_BROWSER_ARTIFACTS/screenshots"
exec npx --no-install playwright test
