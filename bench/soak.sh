#!/usr/bin/env bash
# Soak benchmark of pysandboxd: sustained load for a long while, sampling what a leak would make
# grow (the server's RSS, its descriptors, its processes), then the slope of each by least
# squares. A flat server has slopes near zero; the report says how far each moved.
# Usage: bench/soak.sh --help
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

DURATION=600
CONCURRENCY=16
INTERVAL=5
SETTLE=30
SERVER="$ROOT/build/bin/pysandboxd"
PORT=0
CHURN=1
KEEP=0
SERVER_FLAGS=()

usage() {
  cat <<'EOF'
Usage: bench/soak.sh [options]

  --duration SECONDS    load duration; default 600
  --concurrency N       wrk connections; default 16
  --interval SECONDS    sampling period; default 5
  --settle SECONDS      samples before this are left out of the slopes (allocator and pool
                        warm-up); default 30
  --server PATH         pysandboxd binary; default build/bin/pysandboxd
  --port N              port to listen on; default 0 (ephemeral)
  --server-flag FLAG    pass FLAG to pysandboxd; repeatable (e.g. --server-flag=--uid-base=2100000)
  --no-churn            only wrk's load (by default, every second one client also leaves
                        while its request runs, and one sends a malformed request)
  --keep                keep the work directory (samples.csv, wrk output, server log)
  -h, --help            this text

Samples (every --interval): the server's VmRSS, the RSS of the server and all its descendants
(zygotes, sandboxes), the server's open descriptors, the number of its descendant processes,
its open connections. Printed: first, last, min, max and the least-squares slope per minute of
each over the samples after --settle, and wrk's totals. Exit status 0 unless the benchmark
itself could not run.
EOF
}

while (($#)); do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --duration=*) DURATION=${1#*=}; shift ;;
    --concurrency) CONCURRENCY=$2; shift 2 ;;
    --concurrency=*) CONCURRENCY=${1#*=}; shift ;;
    --interval) INTERVAL=$2; shift 2 ;;
    --interval=*) INTERVAL=${1#*=}; shift ;;
    --settle) SETTLE=$2; shift 2 ;;
    --settle=*) SETTLE=${1#*=}; shift ;;
    --server) SERVER=$2; shift 2 ;;
    --server=*) SERVER=${1#*=}; shift ;;
    --port) PORT=$2; shift 2 ;;
    --port=*) PORT=${1#*=}; shift ;;
    --server-flag) SERVER_FLAGS+=("$2"); shift 2 ;;
    --server-flag=*) SERVER_FLAGS+=("${1#*=}"); shift ;;
    --no-churn) CHURN=0; shift ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "soak.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

log() { printf '# %s\n' "$*" >&2; }
die() { printf 'soak.sh: %s\n' "$*" >&2; exit 1; }

command -v wrk >/dev/null || die "wrk not found; install it with: apt-get install -y wrk"
command -v curl >/dev/null || die "curl not found; install it with: apt-get install -y curl"
[[ -x "$SERVER" ]] || die "server binary $SERVER not found; build it first"

WORK=$(mktemp -d /tmp/pysandbox-soak.XXXXXX)
SERVER_PID=""
WRK_PID=""
CHURN_PID=""

cleanup() {
  [[ -n "$CHURN_PID" ]] && kill "$CHURN_PID" 2>/dev/null
  [[ -n "$WRK_PID" ]] && kill "$WRK_PID" 2>/dev/null
  if [[ -n "$SERVER_PID" ]]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if ((KEEP)); then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- server

"$SERVER" --listen 127.0.0.1 --port "$PORT" ${SERVER_FLAGS[@]+"${SERVER_FLAGS[@]}"} \
  >"$WORK/server.out" 2>"$WORK/server.log" &
SERVER_PID=$!
STARTUP=""
for ((i = 0; i < 300; i++)); do
  STARTUP=$(grep -m1 '"event":"startup"' "$WORK/server.log" 2>/dev/null) && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; die "server exited during startup"; }
  sleep 0.1
done
[[ -n "$STARTUP" ]] || die "no startup line from the server within 30 s"
PORT=$(grep -o '"port":[0-9]*' <<<"$STARTUP" | head -1 | cut -d: -f2)
BASE="http://127.0.0.1:$PORT"
for ((i = 0; i < 1200; i++)); do
  [[ $(curl -s -m 5 -o /dev/null -w '%{http_code}' "$BASE/readyz") == 200 ]] && break
  sleep 0.1
done
[[ $(curl -s -m 5 -o /dev/null -w '%{http_code}' "$BASE/readyz") == 200 ]] ||
  die "the server did not become ready within 120 s"

# ---------------------------------------------------------------- sampling

# Descendants of the server (zygotes, sandboxes and their children, the log relay).
descendants() {
  local pid ppid line
  declare -A children=()
  for stat in /proc/[0-9]*/stat; do
    line=$(cat "$stat" 2>/dev/null) || continue  # gone meanwhile
    pid=${line%% *}
    # After "(comm) ", which may itself hold spaces: state, ppid, ...
    read -r _ ppid _ <<<"${line##*) }"
    children[$ppid]+="$pid "
  done
  local queue=("$SERVER_PID") out=() p
  while ((${#queue[@]})); do
    p=${queue[0]}; queue=("${queue[@]:1}")
    for c in ${children[$p]:-}; do out+=("$c"); queue+=("$c"); done
  done
  echo "${out[@]:-}"
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

sample() {  # sample T -> "t,server_rss_kb,tree_rss_kb,fds,processes,connections"
  local t=$1 server_rss tree_rss fds procs conns d
  server_rss=$(rss_kb "$SERVER_PID")
  tree_rss=$server_rss
  procs=0
  for d in $(descendants); do
    tree_rss=$((tree_rss + $(rss_kb "$d")))
    procs=$((procs + 1))
  done
  fds=$(find "/proc/$SERVER_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
  conns=$(curl -s -m 5 "$BASE/metrics" | awk '/^pysandbox_connections / {print $2}')
  echo "$t,$server_rss,$tree_rss,$fds,$procs,${conns:-0}"
}

# ---------------------------------------------------------------- load

/usr/bin/python3 -I -c 'import json, sys; json.dump({"script": "def main():\n    return {\"ok\": True}", "timeout_ms": 30000}, sys.stdout)' >"$WORK/body.json"
/usr/bin/python3 -I -c 'import json, sys; json.dump({"script": "import time\ndef main():\n    time.sleep(2)", "timeout_ms": 30000}, sys.stdout)' >"$WORK/sleep.json"

log "soak: $DURATION s at c=$CONCURRENCY on $BASE (server pid $SERVER_PID), sampling every $INTERVAL s"
BENCH_BODY_FILE="$WORK/body.json" wrk -t2 -c"$CONCURRENCY" -d"${DURATION}s" --timeout 60s \
  -s "$HERE/post.lua" "$BASE" >"$WORK/wrk.out" 2>&1 &
WRK_PID=$!

if ((CHURN)); then
  (
    while true; do
      # A client that leaves while its request runs (cancelled server-side), and one that sends
      # a malformed request.
      curl -s -m 0.3 -o /dev/null -H 'Content-Type: application/json' \
        --data-binary "@$WORK/sleep.json" "$BASE/execute" || true
      curl -s -m 1 -o /dev/null -H 'Transfer-Encoding: gzip' -H 'Content-Type: application/json' \
        --data-binary '{}' "$BASE/execute" || true
      sleep 1
    done
  ) &
  CHURN_PID=$!
fi

echo "t_s,server_rss_kb,tree_rss_kb,fds,processes,connections" >"$WORK/samples.csv"
start=$(date +%s)
while kill -0 "$WRK_PID" 2>/dev/null; do
  now=$(($(date +%s) - start))
  sample "$now" >>"$WORK/samples.csv"
  sleep "$INTERVAL"
done
wait "$WRK_PID" || die "wrk failed: $(cat "$WORK/wrk.out")"
WRK_PID=""
if [[ -n "$CHURN_PID" ]]; then kill "$CHURN_PID" 2>/dev/null; wait "$CHURN_PID" 2>/dev/null || true; CHURN_PID=""; fi
# After the load: everything the requests held must have gone back.
sleep "$INTERVAL"
sample "$(($(date +%s) - start))" >"$WORK/after.csv"

# ---------------------------------------------------------------- report

echo "pysandboxd soak: ${DURATION} s, c=$CONCURRENCY, churn=$CHURN, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "server flags: ${SERVER_FLAGS[*]:-(defaults)}"
grep -m1 '^BENCH' "$WORK/wrk.out" || tail -5 "$WORK/wrk.out"
echo
awk -F, -v settle="$SETTLE" -v after="$(cat "$WORK/after.csv")" '
  NR == 1 { for (i = 2; i <= NF; i++) name[i] = $i; cols = NF; next }
  {
    rows++
    for (i = 2; i <= cols; i++) {
      if (rows == 1) first[i] = $i
      last[i] = $i
      if (rows == 1 || $i < min[i]) min[i] = $i
      if (rows == 1 || $i > max[i]) max[i] = $i
    }
    if ($1 < settle) next
    n++; sx += $1; sxx += $1 * $1
    for (i = 2; i <= cols; i++) { sy[i] += $i; sxy[i] += $1 * $i }
  }
  END {
    split(after, idle, ",")
    printf "%-16s %10s %10s %10s %10s %14s %12s\n", "series", "first", "last", "min", "max",
           "slope/min", "after load"
    d = n * sxx - sx * sx
    for (i = 2; i <= cols; i++) {
      slope = (n > 1 && d != 0) ? (n * sxy[i] - sx * sy[i]) / d * 60 : 0
      printf "%-16s %10d %10d %10d %10d %14.2f %12d\n", name[i], first[i], last[i], min[i], max[i],
             slope, idle[i]
    }
    printf "(%d samples under load, %d after %d s used for the slopes; \"after load\" is one more, %d s after wrk ended)\n",
           rows, n, settle, '"$INTERVAL"'
  }' "$WORK/samples.csv"
abandoned=$(curl -s -m 5 "$BASE/metrics" | awk '/^pysandbox_requests_abandoned_total/ {s += $2} END {print s + 0}')
echo "requests abandoned by their client (cancelled): $abandoned"
