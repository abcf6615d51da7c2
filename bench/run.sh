#!/usr/bin/env bash
# Benchmark of pysandboxd with wrk: three workloads at concurrency 1 and 16, plus the
# cold `import pandas` and the bare-interpreter W3 time the targets are written against.
# See bench/README.md. Usage: bench/run.sh --help
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

DURATION=10s
SERVER="$ROOT/build/bin/pysandboxd"
PY=/usr/bin/python3
LABEL=""
RUNS=10
BARE_RUNS=21
WARMUP=3
MAX_CONCURRENCY=2
QUEUE_SIZE=64
WRK_TIMEOUT=60s
KEEP=0
SERVER_FLAGS=()
ORIGINAL_ARGS=("$@")

usage() {
  cat <<'EOF'
Usage: bench/run.sh [options]

  --duration D          wrk duration per cell (wrk syntax: 10s, 1m); default 10s
  --server-flag FLAG    pass FLAG to pysandboxd; repeatable, one argument each
                        (e.g. --server-flag --isolation=rlimit); later flags win
  --label NAME          name of this run, shown in the config column
  --max-concurrency N   pysandboxd --max-concurrency; default 2
  --queue-size N        pysandboxd --queue-size; default 64 (>= 16 so c=16 never sees 429)
  --runs N              runs of `python3 -I -c 'import pandas'` (median); default 10
  --bare-runs N         calls of the W3 function in one bare interpreter (median); default 21
  --warmup N            requests sent before each cell; default 3
  --server PATH         pysandboxd binary; default build/bin/pysandboxd
  --python PATH         interpreter for the reference timings; default /usr/bin/python3
  --keep                keep the work directory (wrk outputs, server logs)
  -h, --help            this text

If `pysandboxd --help` lists --pool, the run is made twice, with --pool=on and
--pool=off (unless a --pool flag is given through --server-flag).
EOF
}

while (($#)); do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --duration=*) DURATION=${1#*=}; shift ;;
    --server-flag) SERVER_FLAGS+=("$2"); shift 2 ;;
    --server-flag=*) SERVER_FLAGS+=("${1#*=}"); shift ;;
    --label) LABEL=$2; shift 2 ;;
    --label=*) LABEL=${1#*=}; shift ;;
    --max-concurrency) MAX_CONCURRENCY=$2; shift 2 ;;
    --max-concurrency=*) MAX_CONCURRENCY=${1#*=}; shift ;;
    --queue-size) QUEUE_SIZE=$2; shift 2 ;;
    --queue-size=*) QUEUE_SIZE=${1#*=}; shift ;;
    --runs) RUNS=$2; shift 2 ;;
    --runs=*) RUNS=${1#*=}; shift ;;
    --bare-runs) BARE_RUNS=$2; shift 2 ;;
    --bare-runs=*) BARE_RUNS=${1#*=}; shift ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --warmup=*) WARMUP=${1#*=}; shift ;;
    --server) SERVER=$2; shift 2 ;;
    --server=*) SERVER=${1#*=}; shift ;;
    --python) PY=$2; shift 2 ;;
    --python=*) PY=${1#*=}; shift ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
COMMAND_LINE=$(printf '%q ' "$0" "${ORIGINAL_ARGS[@]+"${ORIGINAL_ARGS[@]}"}")
COMMAND_LINE=${COMMAND_LINE% }

log() { printf '# %s\n' "$*" >&2; }
die() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }

command -v wrk >/dev/null || die "wrk not found; install it with: apt-get install -y wrk"
command -v curl >/dev/null || die "curl not found; install it with: apt-get install -y curl"
[[ -x "$SERVER" ]] || die "server binary $SERVER not found; build it first"
[[ -x "$PY" ]] || die "python $PY not found"

WORK=$(mktemp -d /tmp/pysandbox-bench.XXXXXX)
SERVER_PID=""
FAILED=1

stop_server() {
  [[ -n "$SERVER_PID" ]] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  local waited=0
  while kill -0 "$SERVER_PID" 2>/dev/null; do
    if ((waited >= 400)); then  # 40 s: past the server's drain bound, give up politely
      log "server $SERVER_PID did not stop after SIGTERM; sending SIGKILL"
      kill -KILL "$SERVER_PID" 2>/dev/null || true
      break
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

cleanup() {
  stop_server
  if ((KEEP)) || ((FAILED)); then
    log "work directory kept: $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- workloads

# shellcheck disable=SC2034  # read through ${!script_var} below
W1_SCRIPT='def main(): return {"ok": True}'
# shellcheck disable=SC2034
W2_SCRIPT=$'import pandas as pd\ndef main():\n    s = pd.Series([1, 2, 3])\n    print("len:", len(s))\n    return {"sum": int(s.sum())}'
W3_SCRIPT='def main(): return sum(i*i for i in range(300000))'
WORKLOADS=(W1 W2 W3)
CONCURRENCIES=(1 16)

for w in "${WORKLOADS[@]}"; do
  script_var="${w}_SCRIPT"
  SCRIPT="${!script_var}" "$PY" -I -c '
import json, os, sys
json.dump({"script": os.environ["SCRIPT"], "timeout_ms": 30000}, sys.stdout)
' >"$WORK/$w.json"
done

# ---------------------------------------------------------------- server

PORT=""
BASE=""
STARTUP=""

start_server() {  # start_server NAME FLAG...
  local name=$1; shift
  local err="$WORK/server-$name.err"
  "$SERVER" --listen 127.0.0.1 --port 0 \
    --max-concurrency "$MAX_CONCURRENCY" --queue-size "$QUEUE_SIZE" "$@" \
    >"$WORK/server-$name.out" 2>"$err" &
  SERVER_PID=$!
  local i
  for ((i = 0; i < 150; i++)); do
    if STARTUP=$(grep -m1 '"event":"startup"' "$err" 2>/dev/null); then break; fi
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$err" >&2; die "server exited during startup"; }
    sleep 0.1
  done
  [[ -n "$STARTUP" ]] || { cat "$err" >&2; die "no startup line from the server within 15 s"; }
  PORT=$(grep -o '"port":[0-9]*' <<<"$STARTUP" | head -1 | cut -d: -f2)
  [[ -n "$PORT" ]] || die "no port in the startup line: $STARTUP"
  BASE="http://127.0.0.1:$PORT"
  curl -fsS --max-time 5 "$BASE/healthz" >/dev/null || die "GET /healthz failed on $BASE"
  wait_pool
}

wait_pool() {  # with the pool on, measure warm zygotes, not their start-up
  local i health
  for ((i = 0; i < 1200; i++)); do
    health=$(curl -fsS --max-time 5 "$BASE/healthz") || die "GET /healthz failed"
    grep -q '"pool":{"enabled":true' <<<"$health" || return 0
    ! grep -q '"state":"starting"' <<<"$health" && return 0
    sleep 0.1
  done
  die "the pool's zygotes did not start within 120 s: $health"
}

wait_idle() {  # the previous cell's leftover requests must not load the next one
  local i health in_flight queued
  for ((i = 0; i < 1200; i++)); do
    health=$(curl -fsS --max-time 5 "$BASE/healthz") || die "GET /healthz failed"
    in_flight=$(grep -o '"in_flight":[0-9]*' <<<"$health" | cut -d: -f2)
    queued=$(grep -o '"queued":[0-9]*' <<<"$health" | cut -d: -f2)
    [[ "${in_flight:-0}" == 0 && "${queued:-0}" == 0 ]] && return 0
    sleep 0.1
  done
  die "server still busy after 120 s: $health"
}

warm_up() {  # warm_up WORKLOAD
  local w=$1 i code
  for ((i = 0; i < WARMUP; i++)); do
    code=$(curl -sS --max-time 60 -o "$WORK/warmup.body" -w '%{http_code}' \
      -H 'Content-Type: application/json' --data-binary "@$WORK/$w.json" "$BASE/execute") || code=000
    if [[ "$code" != 200 ]] || ! grep -q '"result"' "$WORK/warmup.body"; then
      log "warm-up $w: HTTP $code: $(head -c 300 "$WORK/warmup.body" 2>/dev/null)"
    fi
  done
}

declare -A RESULT  # "config|workload|concurrency" -> BENCH line

run_cell() {  # run_cell CONFIG WORKLOAD CONCURRENCY
  local config=$1 w=$2 c=$3 threads=1
  ((c > 1)) && threads=2
  wait_idle
  warm_up "$w"
  wait_idle
  log "$config $w c=$c: wrk -t$threads -c$c -d$DURATION"
  local out="$WORK/wrk-${config//[^A-Za-z0-9_.=-]/_}-$w-c$c.txt"
  BENCH_BODY_FILE="$WORK/$w.json" wrk -t"$threads" -c"$c" -d"$DURATION" --timeout "$WRK_TIMEOUT" \
    -s "$HERE/post.lua" "$BASE/execute" >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed"; }
  local line
  line=$(sed -n 's/^BENCH //p' "$out" | tail -1)
  [[ -n "$line" ]] || { cat "$out" >&2; die "no BENCH line in the wrk output"; }
  RESULT["$config|$w|$c"]=$line
  # wrk stops at the deadline with requests still in flight or queued; report how long the
  # server takes to finish them (the next cell waits for that).
  local t0 t1
  t0=$(date +%s%N)
  wait_idle
  t1=$(date +%s%N)
  log "  $line; server idle $(awk -v ns=$((t1 - t0)) 'BEGIN { printf "%.1f", ns / 1e9 }') s after wrk ended"
}

field() {  # field NAME "k=v k=v ...": a latency of a cell without a single response is nan
  local pair
  if [[ "$1" == *_ms && " $2" == *" requests=0 "* ]]; then printf 'nan'; return 0; fi
  for pair in $2; do
    [[ "${pair%%=*}" == "$1" ]] && { printf '%s' "${pair#*=}"; return 0; }
  done
  printf 'nan'
}

# ---------------------------------------------------------------- reference timings

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit }
  if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

time_process_ms() {  # time_process_ms RUNS CMD...: median wall time of a fresh process, ms
  local runs=$1; shift
  "$@" >/dev/null 2>&1 || die "reference command failed: $*"  # warm the page cache
  local i t0 t1
  for ((i = 0; i < runs; i++)); do
    t0=$(date +%s%N)
    "$@" >/dev/null 2>&1
    t1=$(date +%s%N)
    awk -v ns=$((t1 - t0)) 'BEGIN { printf "%.3f\n", ns / 1e6 }'
  done | median
}

bare_w3_ms() {  # the W3 function, called BARE_RUNS times in one bare interpreter; median ms
  SCRIPT="$W3_SCRIPT" RUNS="$BARE_RUNS" "$PY" -I -c '
import os, statistics, time
namespace = {}
exec(os.environ["SCRIPT"], namespace)
main = namespace["main"]
main()  # warm-up
samples = []
for _ in range(int(os.environ["RUNS"])):
    t0 = time.perf_counter_ns()
    main()
    samples.append((time.perf_counter_ns() - t0) / 1e6)
print("%.3f" % statistics.median(samples))
'
}

# ---------------------------------------------------------------- configurations

CONFIG_NAMES=()
CONFIG_FLAGS=()
user_pool=0
for f in "${SERVER_FLAGS[@]+"${SERVER_FLAGS[@]}"}"; do
  [[ "$f" == --pool || "$f" == --pool=* ]] && user_pool=1
done
base_name=${LABEL:-default}
# (The help text first: grep -q stopping early would SIGPIPE --help, and pipefail would then
# report "no pool".)
server_help=$("$SERVER" --help 2>&1 || true)
if grep -q -- '--pool' <<<"$server_help"; then
  POOL_AVAILABLE=1
  if ((user_pool)); then
    CONFIG_NAMES=("$base_name"); CONFIG_FLAGS=("")
  else
    CONFIG_NAMES=("${LABEL:+$LABEL/}pool=on" "${LABEL:+$LABEL/}pool=off")
    CONFIG_FLAGS=("--pool=on" "--pool=off")
  fi
else
  POOL_AVAILABLE=0
  CONFIG_NAMES=("$base_name"); CONFIG_FLAGS=("")
fi

# ---------------------------------------------------------------- header

echo "== pysandboxd benchmark =="
echo "command:     $COMMAND_LINE"
echo "date:        $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine:     nproc=$(nproc) load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" \
  "kernel=$(uname -r)"
echo "cpu:         $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "memory:      $(awk '/MemTotal/ { printf "%.1f GiB total", $2 / 1048576 }' /proc/meminfo)"
echo "wrk:         $(wrk -v 2>&1 | head -1)"
echo "python:      $PY ($("$PY" -c 'import sys, pandas; print(sys.version.split()[0], "pandas", pandas.__version__)' 2>&1))"
echo "server:      $SERVER --max-concurrency $MAX_CONCURRENCY --queue-size $QUEUE_SIZE${SERVER_FLAGS[*]:+ ${SERVER_FLAGS[*]}}"
echo "cells:       wrk -d $DURATION --timeout $WRK_TIMEOUT; c=1: -t1 -c1, c=16: -t2 -c16; $WARMUP warm-up requests before each"
if ((POOL_AVAILABLE)); then
  echo "pool:        available; configurations: ${CONFIG_NAMES[*]}"
else
  echo "pool:        not available in this build"
fi
echo

# ---------------------------------------------------------------- run

for idx in "${!CONFIG_NAMES[@]}"; do
  config=${CONFIG_NAMES[$idx]}
  extra=()
  [[ -n "${CONFIG_FLAGS[$idx]}" ]] && extra=("${CONFIG_FLAGS[$idx]}")
  start_server "$idx" "${SERVER_FLAGS[@]+"${SERVER_FLAGS[@]}"}" "${extra[@]+"${extra[@]}"}"
  echo "server [$config]: port $PORT; $(grep -o '"version":"[^"]*"' <<<"$STARTUP" | head -1)," \
    "$(grep -o '"mode":"[^"]*"' <<<"$STARTUP" | head -1), $(grep -o '"cgroup":"[^"]*"' <<<"$STARTUP" | head -1)"
  for w in "${WORKLOADS[@]}"; do
    for c in "${CONCURRENCIES[@]}"; do
      run_cell "$config" "$w" "$c"
    done
  done
  wait_idle
  stop_server
done

log "reference: python3 -I -c 'import pandas' x$RUNS, bare W3 x$BARE_RUNS"
COLD_PANDAS_MS=$(time_process_ms "$RUNS" "$PY" -I -c 'import pandas')
PY_STARTUP_MS=$(time_process_ms "$RUNS" "$PY" -I -c 'pass')
BARE_W3_MS=$(bare_w3_ms)

# ---------------------------------------------------------------- report

echo
printf '%-22s %-8s %3s %9s %9s %10s %10s %10s %10s %7s %s\n' \
  config workload c requests 'req/s' 'p50 ms' 'p90 ms' 'p99 ms' 'max ms' errors '(non-2xx/connect/read/write/timeout, bad body)'
for config in "${CONFIG_NAMES[@]}"; do
  for w in "${WORKLOADS[@]}"; do
    for c in "${CONCURRENCIES[@]}"; do
      r=${RESULT["$config|$w|$c"]}
      non2xx=$(field non2xx "$r"); conn=$(field connect "$r"); rd=$(field read "$r")
      wr=$(field write "$r"); to=$(field timeout "$r"); bad=$(field bad_body "$r")
      errors=$((non2xx + conn + rd + wr + to))
      printf '%-22s %-8s %3s %9s %9s %10s %10s %10s %10s %7s (%s/%s/%s/%s/%s, %s)\n' \
        "$config" "$w" "$c" "$(field requests "$r")" "$(field rps "$r")" \
        "$(field p50_ms "$r")" "$(field p90_ms "$r")" "$(field p99_ms "$r")" "$(field max_ms "$r")" \
        "$errors" "$non2xx" "$conn" "$rd" "$wr" "$to" "$bad"
    done
  done
done

echo
echo "reference (fresh processes of $PY, page cache warm):"
printf '  cold  python3 -I -c %-16s median of %3d: %10.3f ms\n' "'import pandas'" "$RUNS" "$COLD_PANDAS_MS"
printf '  bare  python3 -I -c %-16s median of %3d: %10.3f ms   (interpreter start-up, for context)\n' "'pass'" "$RUNS" "$PY_STARTUP_MS"
printf '  bare  W3 function in one interpreter    median of %3d: %10.3f ms\n' "$BARE_RUNS" "$BARE_W3_MS"

verdict() { if (($1)); then printf 'met'; else printf 'NOT MET'; fi; }
fcmp() { awk -v a="$1" -v b="$2" -v op="$3" 'BEGIN {
  if (a == "nan" || b == "nan") { print 0; exit }
  if (op == "<=") print (a + 0 <= b + 0) ? 1 : 0; else print (a + 0 >= b + 0) ? 1 : 0 }'; }
ratio() { awk -v a="$1" -v b="$2" -v scale="$3" 'BEGIN {
  if (a == "nan" || b == "nan" || b + 0 == 0) print "nan"; else printf "%.3f", scale * a / b }'; }
errors_of() {
  local r=$1
  echo $(($(field non2xx "$r") + $(field connect "$r") + $(field read "$r") + $(field write "$r") \
    + $(field timeout "$r") + $(field bad_body "$r")))
}

all_met=1
for config in "${CONFIG_NAMES[@]}"; do
  w1c16=${RESULT["$config|W1|16"]}
  w2c1=${RESULT["$config|W2|1"]}
  w2c16=${RESULT["$config|W2|16"]}
  w3c1=${RESULT["$config|W3|1"]}
  w2p50=$(field p50_ms "$w2c1")
  w3p50=$(field p50_ms "$w3c1")
  w2_pct=$(ratio "$w2p50" "$COLD_PANDAS_MS" 100)
  w3_x=$(ratio "$w3p50" "$BARE_W3_MS" 1)
  echo
  echo "ratios [$config]:"
  printf '  W2 p50 at c=1 / cold import pandas: %9s ms / %9s ms = %s %%\n' "$w2p50" "$COLD_PANDAS_MS" "$w2_pct"
  printf '  W3 p50 at c=1 / bare python W3:     %9s ms / %9s ms = %s x\n' "$w3p50" "$BARE_W3_MS" "$w3_x"
  echo "targets [$config]:"
  t1=$(fcmp "$w2p50" 8 '<=')
  t2=$(fcmp "$w2_pct" 3 '<=')
  w2e=$(errors_of "$w2c16"); w1e=$(errors_of "$w1c16")
  t3=$(( $(fcmp "$(field rps "$w2c16")" 250 '>=') && w2e == 0 ))
  t4=$(( $(fcmp "$(field rps "$w1c16")" 800 '>=') && w1e == 0 ))
  t5=$(fcmp "$w3_x" 1.15 '<=')
  printf '  %-8s W2 p50 at c=1 <= 8 ms                      (%s ms)\n' "$(verdict "$t1")" "$w2p50"
  printf '  %-8s W2 p50 at c=1 <= 3%% of cold import pandas  (%s %%)\n' "$(verdict "$t2")" "$w2_pct"
  printf '  %-8s W2 >= 250 req/s at c=16 with zero errors   (%s req/s, %s errors)\n' \
    "$(verdict "$t3")" "$(field rps "$w2c16")" "$w2e"
  printf '  %-8s W1 >= 800 req/s at c=16 with zero errors   (%s req/s, %s errors)\n' \
    "$(verdict "$t4")" "$(field rps "$w1c16")" "$w1e"
  printf '  %-8s W3 p50 at c=1 within 15%% of bare python    (%s x)\n' "$(verdict "$t5")" "$w3_x"
  ((t1 && t2 && t3 && t4 && t5)) || all_met=0
done
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
if ((all_met)); then echo "summary: all targets met"; else echo "summary: some targets not met"; fi
FAILED=0
