#!/usr/bin/env bash
# The rlimit-mode fallback under real gVisor (../shared/tools/gvisor-run: Debian's runsc, ptrace
# platform, host networking), as on Cloud Run gen1 and GKE Sandbox. The server runs inside runsc;
# everything is driven from the host over 127.0.0.1.
#   1. pysandboxd without --isolation: its probe must pick `rlimit` on its own; prints the probe's
#      log lines and /healthz.
#   2. the e2e suites through PYSANDBOX_E2E_WRAPPER (each starts its server inside runsc):
#      RlimitMode.* (what rlimit mode claims) and AttackTest.* (in the mode the probe picks),
#      once with the namespaces rlimit mode finds usable there, once without
#      (PYSANDBOX_RLIMIT_NAMESPACES=0), once with GKE Sandbox's capability set (setpriv).
# Skips with a message when gvisor-run is absent.
#
# usage: tests/gvisor/run.sh [BUILD_DIR]
set -euo pipefail
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/../.." && pwd)
gvisor_run="$(cd "$(dirname "$0")/../.." && pwd)/../shared/tools/gvisor-run"
if [[ ! -x $gvisor_run ]]; then
  echo "SKIP: gvisor-run not available ($gvisor_run missing): gVisor suites not run"
  exit 0
fi
build_dir=$(cd "${1:-$repo_root/build}" && pwd)
server="$build_dir/bin/pysandboxd"
e2e="$build_dir/bin/e2e_tests"
for f in "$server" "$e2e"; do
  [[ -x $f ]] || { echo "FAIL: $f not built" >&2; exit 1; }
done
start=$(date +%s)
work=$(mktemp -d /tmp/pysandbox-gvisor.XXXXXX)
wrapper_pid=""
cleanup() {
  if [[ -n $wrapper_pid ]]; then
    kill -TERM "$wrapper_pid" 2>/dev/null || true
    wait "$wrapper_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# A free loopback port below the ephemeral range (gVisor's hostinet binds in the host's stack).
free_port() {
  python3 - <<'PY'
import random, socket
for _ in range(200):
    port = random.randint(20000, 32000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
PY
}

echo "== gVisor: the probe picks rlimit on its own"
port=$(free_port)
"$gvisor_run" --network host --timeout 300 -- "$server" --listen 127.0.0.1 --port "$port" \
  >"$work/server.log" 2>&1 &
wrapper_pid=$!
healthz=""
for _ in $(seq 1 120); do
  if healthz=$(curl -sf -m 2 "http://127.0.0.1:$port/healthz"); then break; fi
  if ! kill -0 "$wrapper_pid" 2>/dev/null; then break; fi
  sleep 0.5
done
grep '"event":"probe"' "$work/server.log" || true
if [[ -z $healthz ]]; then
  echo "FAIL: the server under gVisor did not answer /healthz; its log:" >&2
  cat "$work/server.log" >&2
  exit 1
fi
echo "healthz: $healthz"
mode=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["isolation"]["mode"])' <<<"$healthz")
if [[ $mode != rlimit ]]; then
  echo "FAIL: under gVisor the probe picked '$mode', expected 'rlimit'" >&2
  exit 1
fi
run=$(curl -s -m 60 -H 'Content-Type: application/json' \
  -d '{"script": "import os\ndef main():\n    return os.getuid()\n"}' \
  "http://127.0.0.1:$port/execute")
echo "execute: $run"
python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["isolation"] == "rlimit" and d["result"] != 0, d' <<<"$run"
kill -TERM "$wrapper_pid"
wait "$wrapper_pid" 2>/dev/null || true
wrapper_pid=""

# The server's JSON log lines stay in the log file; the exit status is the test binary's.
run_e2e() {  # NAME FILTER WRAPPER_SUFFIX [VAR=VALUE...]
  local name=$1 filter=$2 suffix=$3
  shift 3
  local log="$build_dir/gvisor-e2e-$name.log" rc=0
  echo "== gVisor: e2e $filter ($name), each server inside runsc"
  env "$@" PYSANDBOX_E2E_WRAPPER="$gvisor_run --network host --timeout 900 -- $suffix" \
    "$e2e" --gtest_filter="$filter" >"$log" 2>&1 || rc=$?
  grep -v '^{"' "$log"
  if [[ $rc -ne 0 ]]; then
    echo "FAIL: gVisor e2e $name (full log: $log)" >&2
    exit "$rc"
  fi
}
# With the namespaces the probe finds usable under gVisor (the default), then without any, then
# as GKE Sandbox runs it (k8s/overlays/gke-sandbox): root with only SETUID, SETGID and KILL.
run_e2e namespaces 'RlimitMode.*:AttackTest.*' ''
run_e2e plain 'RlimitMode.*:AttackTest.*' '' PYSANDBOX_RLIMIT_NAMESPACES=0
run_e2e minimal-caps 'RlimitMode.*:AttackTest.*' \
  'setpriv --inh-caps=-all --bounding-set=-all,+setuid,+setgid,+kill --'
echo "== gVisor suites passed in $(( $(date +%s) - start )) s"
