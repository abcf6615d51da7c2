#!/usr/bin/env bash
# Builds the fuzz targets with clang (libFuzzer, ASan, UBSan) and runs each for a bounded time
# from the seed corpus in fuzz/corpus (copied: new inputs stay out of the repository).
#
#   fuzz/run.sh [SECONDS]     default 60 per target
#
# A crash leaves its input in build-fuzz/artifacts/; reproduce with
#   build-fuzz/http_request_fuzzer build-fuzz/artifacts/crash-...
# and add it to fuzz/corpus/http_request/ once fixed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-60}
build="$root/build-fuzz"
command -v clang++ >/dev/null || { echo "fuzz: clang++ not found (scripts/deps.sh installs it)" >&2; exit 1; }

CXX=clang++ cmake -S "$root/fuzz" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$build/artifacts" "$work/corpus"
cp "$root"/fuzz/corpus/http_request/* "$work/corpus/"
echo "== fuzz: http_request_fuzzer for ${seconds}s"
"$build/http_request_fuzzer" -max_total_time="$seconds" -max_len=8192 -timeout=10 \
  -rss_limit_mb=2048 -dict="$root/fuzz/http.dict" -artifact_prefix="$build/artifacts/" \
  -print_final_stats=1 "$work/corpus" 2>&1 | tail -n 25
exit "${PIPESTATUS[0]}"
