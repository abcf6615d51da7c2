#!/usr/bin/env bash
# Installs what pysandbox needs to build, test and run on Debian 12 (as root). Quiet and quick
# when everything is already there.
set -euo pipefail

PACKAGES=(
  # build
  cmake g++ make pkg-config clang-format
  libboost1.81-dev libboost-json1.81-dev libseccomp-dev libcgroup-dev googletest libgtest-dev
  # the zygote embeds CPython 3.11 (same interpreter as /usr/bin/python3)
  libpython3.11-dev
  # the sandboxed runtime: Debian's interpreter with numpy and pandas
  python3 python3-numpy python3-pandas
  # tests and benchmarks: curl runs the README's examples, wrk is the load tool,
  # python3-jsonschema checks responses against /openapi.json, Chromium runs the browser suite
  curl wrk python3-jsonschema chromium
  # the fuzz targets (fuzz/run.sh): clang with libFuzzer and the sanitizer runtimes
  clang libclang-rt-14-dev
)
# The web IDE is built with node and npm (web/build.sh); machines that already have them (e.g.
# a newer node from elsewhere) keep theirs, others get Debian's.
command -v node >/dev/null || PACKAGES+=(nodejs)
command -v npm >/dev/null || PACKAGES+=(npm)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "deps: missing packages: ${missing[*]} (run as root to install them)" >&2
    exit 1
  fi
  echo "deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
