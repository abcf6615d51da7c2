#!/usr/bin/env bash
# Container suite: the Dockerfile builds, the image serves in every mode the README promises,
# and the Kubernetes / Cloud Run manifests render and validate offline.
#
#   tests/container/run.sh BUILD_DIR
#
# Needs root and ../shared/tools (container-build, container-run, gvisor-run); without them it
# prints SKIP and exits 0. Scratch files go to BUILD_DIR/container-check; the npm packages with
# the Kubernetes/Knative schemas go to a cache under /tmp (never into the repository).
#
# Checks (each prints PASS/FAIL/SKIP; the last line counts them):
#   build             container-build of the Dockerfile (BUILD=local), image size; BUILD=cloud
#                     sets the floor `namespaces`; an unknown BUILD fails
#   run-default       `docker run IMAGE` (podman/runc): rlimit mode, or SKIP while the server
#                     has no rlimit mode (it then refuses to start: asserted)
#   run-namespaces    the README's least-privilege line: mode `namespaces`, /execute, pandas,
#                     a timeout, HEALTHCHECK command, SIGTERM -> exit 0
#   run-full          the README's --privileged line: `full` on a cgroup v2 host; here (cgroup
#                     v1 inside containers) the floor `full` must make it refuse to start
#   k8s-standard      the standard overlay's securityContext as podman flags: the mode its
#                     annotation claims; and each of its four grants is necessary (without it the
#                     server refuses to start under its floor)
#   gvisor            the gke-sandbox overlay's flags under podman --runtime runsc: mode rlimit
#                     (SKIP with the server's reason while rlimit mode does not exist)
#   manifests         kustomize renders every overlay; consistency with the server's limits;
#                     OpenAPI schemas (kubernetes-models) + unknown-field check (tsc) for
#                     k8s and Knative (Cloud Run)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tools=$(cd "$root/.." && pwd)/shared/tools
build_dir=${1:?usage: tests/container/run.sh BUILD_DIR}

if [[ ! -x $tools/container-build || ! -x $tools/container-run ]]; then
  echo "SKIP: container suite: $tools/container-build not found"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "SKIP: container suite: needs root (podman)"
  exit 0
fi

mkdir -p "$build_dir/container-check"
work=$(cd "$build_dir/container-check" && pwd)
image=pysandbox:test
started=$SECONDS
passed=0 failed=0 skipped=0
pass() { echo "PASS: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
skip() { echo "SKIP: $*"; skipped=$((skipped + 1)); }
note() { echo "  $*"; }

containers=()
cleanup() {
  local c
  for c in "${containers[@]+"${containers[@]}"}"; do podman rm -f -t 0 "$c" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT

# ------------------------------------------------------------------------------------ build
build_log=$work/build.log
t0=$SECONDS
if "$tools/container-build" -t "$image" "$root" -- --format docker >"$build_log" 2>&1; then
  size=$(podman image inspect -f '{{.Size}}' "$image")
  pass "build: container-build -t $image . ($((SECONDS - t0)) s; image $((size / 1000000)) MB)"
else
  fail "build: container-build failed ($((SECONDS - t0)) s); last lines of $build_log:"
  tail -25 "$build_log" | sed 's/^/    /'
  echo "container: $passed passed, $failed failed, $skipped skipped"
  exit 1
fi
# Keep the newest build stage (its apt and compile layers are the cache of the next run) and
# drop the dangling ones earlier runs left behind (~600 MB per source change).
if "$tools/container-build" -t pysandbox:test-build-stage "$root" -- --format docker --target build >>"$build_log" 2>&1; then
  podman image prune -f >/dev/null 2>&1 || true
fi
env_of() { podman image inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$1"; }
local_env=$(env_of "$image")
cloud_env=""
if "$tools/container-build" -t pysandbox:test-cloud --build-arg BUILD=cloud "$root" -- --format docker >>"$build_log" 2>&1; then
  cloud_env=$(env_of pysandbox:test-cloud)
fi
typo_rc=0
"$tools/container-build" -t pysandbox:test-typo --build-arg BUILD=typo "$root" >>"$build_log" 2>&1 || typo_rc=$?
if grep -qx 'PYSANDBOX_MIN_ISOLATION=rlimit' <<<"$local_env" &&
   grep -qx 'PYSANDBOX_MIN_ISOLATION=namespaces' <<<"$cloud_env" && ((typo_rc != 0)); then
  pass "build: BUILD=local -> floor rlimit, BUILD=cloud -> floor namespaces, BUILD=typo fails"
else
  fail "build: BUILD argument (see $build_log)"
fi
podman rmi pysandbox:test-cloud >/dev/null 2>&1 || true

# ------------------------------------------------------------------------------ run helpers
free_port() {  # a free loopback port below the ephemeral range
  /usr/bin/python3 - <<'EOF'
import socket
for port in range(18080, 32000):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
EOF
}
post() {  # post PORT JSON -> body; status in $work/status
  curl -sS -m 60 -o "$work/body" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary "$2" "http://127.0.0.1:$1/execute" >"$work/status" || echo 000 >"$work/status"
  cat "$work/body" 2>/dev/null || true
}
jget() { /usr/bin/python3 -c 'import json,sys; v=json.load(sys.stdin)
for k in sys.argv[1].split("."): v=v.get(k) if isinstance(v, dict) else None
print(json.dumps(v) if not isinstance(v, str) else v)' "$1"; }

# start NAME RUNTIME_ARGS... -- RUN_ARGS... : starts the container in the background; sets
# $port, $log, $pid; waits until /healthz answers or the container is gone (returns 1).
start() {
  local name=$1; shift
  local rt=()
  while [[ $1 != -- ]]; do rt+=("$1"); shift; done
  shift
  port=$(free_port)
  log=$work/$name.log
  cname=pysandbox-check-$$-$name
  containers+=("$cname")
  local nofile nproc
  nofile=$(ulimit -Hn); [[ $nofile == unlimited ]] && nofile=1048576
  nproc=$(ulimit -Hu); [[ $nproc == unlimited || $nproc -gt 32768 ]] && nproc=32768
  if ((${#rt[@]})); then
    # Another OCI runtime (runsc): container-run pins runc, so call podman the same way.
    podman --runtime "${rt[@]}" run --rm --ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc" \
      --no-healthcheck --name "$cname" -p "127.0.0.1:$port:8080" "$@" "$image" >"$log" 2>&1 &
  else
    "$tools/container-run" --no-healthcheck --name "$cname" -p "127.0.0.1:$port:8080" "$@" "$image" >"$log" 2>&1 &
  fi
  pid=$!
  local i
  for i in $(seq 1 120); do
    curl -s -m 1 -o /dev/null "http://127.0.0.1:$port/healthz" && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.25
  done
  return 1
}
stop() {  # stop: SIGTERM (the image's STOPSIGNAL) and wait; sets $rc
  podman stop -t 45 "$cname" >/dev/null 2>&1 || true
  rc=0; wait "$pid" || rc=$?
}
# The refusal line: plain before the log relay starts, a relayed JSON "message" after.
refusal() { grep -m1 -E '"event":"(config_error|startup_failed)"|"message":"pysandboxd:' "$log" || tail -1 "$log"; }

# serve NAME MODE: the running server reports MODE, turns ready (/readyz: the probes of the
# k8s and Cloud Run manifests) and runs scripts; prints /healthz.
serve() {
  local name=$1 mode=$2 health got body ok=1 ready=0 i
  for i in $(seq 1 240); do
    [[ $(curl -s -m 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz") == 200 ]] && { ready=1; break; }
    sleep 0.5
  done
  ((ready)) || { note "$name /readyz never answered 200"; ok=0; }
  health=$(curl -sS -m 5 "http://127.0.0.1:$port/healthz")
  note "$name /healthz: $health"
  got=$(jget isolation.mode <<<"$health")
  [[ $(jget status <<<"$health") == ok && $got == "$mode" ]] || { note "expected mode $mode, got $got"; ok=0; }
  body=$(post "$port" '{"script": "def main(): return 1+1"}')
  note "$name 1+1: $(cat "$work/status") $body"
  [[ $(cat "$work/status") == 200 && $(jget result <<<"$body") == 2 && $(jget isolation <<<"$body") == "$mode" ]] || ok=0
  body=$(post "$port" '{"script": "import pandas as pd\ndef main():\n    df = pd.DataFrame({\"x\": [1, 2, 3], \"y\": [10, 20, 30]})\n    return {\"sum\": int(df.x.sum()), \"mean_y\": float(df.y.mean())}"}')
  note "$name pandas: $(cat "$work/status") $(cut -c1-160 <<<"$body")"
  [[ $(cat "$work/status") == 200 && $(jget result <<<"$body") == '{"sum": 6, "mean_y": 20.0}' ]] || ok=0
  ((ok))
}

# A plain run tells whether this build has the rlimit mode at all.
rlimit_missing=""
if start probe-rlimit -- -e PYSANDBOX_ISOLATION=rlimit; then stop; else
  rlimit_missing=$(refusal); stop
fi

# ------------------------------------------------------------------------------ run-default
# README: docker run --rm -p 8080:8080 pysandbox
if start default --; then
  if serve default rlimit; then pass "run-default: plain run -> rlimit"; else fail "run-default"; fi
  stop
else
  stop
  if [[ -n $rlimit_missing ]]; then
    skip "run-default: no rlimit mode in this build yet; the plain run refuses to start: $(refusal)"
  else
    fail "run-default: did not start: $(refusal)"
  fi
fi

# --------------------------------------------------------------------------- run-namespaces
# README: least privilege for `namespaces` (docker spells unmask=ALL systempaths=unconfined).
ns_flags=(--cap-drop ALL --cap-add SETUID,SETGID --security-opt seccomp=unconfined
          --security-opt unmask=ALL --security-opt no-new-privileges --read-only --tmpfs /tmp
          -e PYSANDBOX_MIN_ISOLATION=namespaces)
if start namespaces -- "${ns_flags[@]}"; then
  ok=1
  serve namespaces namespaces || ok=0
  body=$(post "$port" '{"script": "def main():\n    while True: pass", "timeout_ms": 1000}')
  note "namespaces timeout: $(cat "$work/status") $(jget error_type <<<"$body")"
  if [[ $(cat "$work/status") != 422 || $(jget error_type <<<"$body") != timeout ]]; then
    note "namespaces timeout: unexpected answer: $body"
    ok=0
  fi
  # The image's HEALTHCHECK command, run as the engine would.
  hc=$(podman image inspect -f '{{json .Config.Healthcheck.Test}}' "$image")
  mapfile -t hc_argv < <(/usr/bin/python3 -c 'import json,sys; t=json.loads(sys.argv[1]); print("\n".join(t[1:]))' "$hc")
  if podman exec "$cname" "${hc_argv[@]}"; then note "HEALTHCHECK command: ok"; else note "HEALTHCHECK command failed"; ok=0; fi
  t0=$SECONDS; stop
  note "SIGTERM: exit $rc after $((SECONDS - t0)) s"
  ((rc == 0)) || ok=0
  if ((ok)); then pass "run-namespaces: least-privilege flags -> namespaces"; else fail "run-namespaces"; fi
else
  stop; fail "run-namespaces: did not start: $(refusal)"
fi

# --------------------------------------------------------------------------------- run-full
# README: docker run --privileged --cgroupns=private -e PYSANDBOX_MIN_ISOLATION=full ...
if [[ $(stat -f -c %T /sys/fs/cgroup) == cgroup2fs ]]; then
  if start full -- --privileged --cgroupns=private -e PYSANDBOX_MIN_ISOLATION=full && serve full full; then
    stop; pass "run-full: --privileged -> full"
  else stop; fail "run-full: $(refusal)"; fi
else
  if start full -- --privileged --cgroupns=private -e PYSANDBOX_MIN_ISOLATION=full; then
    stop; fail "run-full: started with floor full on a cgroup v1 host"
  else
    stop
    note "full refused as it must here: $(refusal | cut -c1-300)"
    if start privileged -- --privileged --cgroupns=private && serve privileged namespaces; then
      stop; pass "run-full: host containers see cgroup v1: floor full refuses to start, --privileged alone gives namespaces"
    else stop; fail "run-full: --privileged without floor: $(refusal)"; fi
  fi
fi

# ------------------------------------------------------------------------------- manifests
manifest_dir=$work/manifests
rm -rf "$manifest_dir"; mkdir -p "$manifest_dir"
kustomize_cmd=()
if command -v kubectl >/dev/null && kubectl kustomize --help >/dev/null 2>&1; then
  kustomize_cmd=(kubectl kustomize)
elif command -v kustomize >/dev/null; then
  kustomize_cmd=(kustomize build)
fi
overlays=()
for d in "$root"/k8s/overlays/*/; do overlays+=("$(basename "$d")"); done
rendered=0
if ((${#kustomize_cmd[@]})); then
  ok=1
  for o in "${overlays[@]}"; do
    if "${kustomize_cmd[@]}" "$root/k8s/overlays/$o" >"$manifest_dir/$o.yaml" 2>"$manifest_dir/$o.err"; then
      /usr/bin/python3 "$here/manifest-checks.py" consistency k8s "$manifest_dir/$o.yaml" >"$manifest_dir/$o.consistency" || ok=0
      grep '^FAIL' "$manifest_dir/$o.consistency" | sed "s/^/  /" || true
    else
      ok=0; note "$o: $(cat "$manifest_dir/$o.err")"
    fi
  done
  for f in "$root"/cloudrun/service-*.yaml; do
    /usr/bin/python3 "$here/manifest-checks.py" consistency cloudrun "$f" >"$manifest_dir/$(basename "$f").consistency" || ok=0
    grep '^FAIL' "$manifest_dir/$(basename "$f").consistency" | sed "s/^/  /" || true
  done
  if ((ok)); then
    rendered=1
    pass "manifests: ${kustomize_cmd[*]} renders ${overlays[*]}; limits, probes, grace period, floors consistent (k8s + Cloud Run)"
  else
    fail "manifests: render/consistency (see $manifest_dir)"
  fi
else
  skip "manifests: no kustomize (kubectl kustomize) on this machine"
fi

# Schemas: npm packages of the Kubernetes OpenAPI and Knative Serving schemas, pinned.
npm_pkgs=(kubernetes-models@5.1.0 @kubernetes-models/knative@4.0.0 typescript@5.9.3)
npm_dir=/tmp/pysandbox-container-check/npm-$(echo "${npm_pkgs[*]}" | md5sum | cut -c1-12)
if ((rendered)); then
  if [[ ! -x $npm_dir/node_modules/.bin/tsc ]]; then
    mkdir -p "$npm_dir"
    npm install --silent --no-audit --no-fund --no-save --prefix "$npm_dir" "${npm_pkgs[@]}" \
      >"$work/npm.log" 2>&1 || true
  fi
  if [[ -x $npm_dir/node_modules/.bin/tsc ]]; then
    inputs=()
    for o in "${overlays[@]}"; do
      /usr/bin/python3 "$here/manifest-checks.py" tojson "$manifest_dir/$o.yaml" "$manifest_dir/$o.json"
      inputs+=("k8s-$o=$manifest_dir/$o.json")
    done
    for f in "$root"/cloudrun/service-*.yaml; do
      b=$(basename "$f" .yaml)
      /usr/bin/python3 "$here/manifest-checks.py" tojson "$f" "$manifest_dir/$b.json"
      inputs+=("cloudrun-$b=$manifest_dir/$b.json")
    done
    cp "$here/validate-manifests.mjs" "$npm_dir/"
    rm -rf "$npm_dir/work"
    ok=1
    (cd "$npm_dir" && node validate-manifests.mjs "$npm_dir/work" "${inputs[@]}") >"$manifest_dir/schema.log" 2>&1 || ok=0
    grep -E '^FAIL|objects checked' "$manifest_dir/schema.log" | sed 's/^/  /'
    (cd "$npm_dir/work" && "$npm_dir/node_modules/.bin/tsc" -p .) >"$manifest_dir/tsc.log" 2>&1 || { ok=0; sed 's/^/  /' "$manifest_dir/tsc.log" | head -20; }
    # The validators must see errors: a wrong type (the OpenAPI schemas) and a misspelt field
    # (only the tsc check can: the schemas allow unknown properties).
    /usr/bin/python3 - "$manifest_dir/standard.json" "$manifest_dir" <<'EOF'
import copy, json, sys
docs = json.load(open(sys.argv[1]))
dep = next(d for d in docs if d["kind"] == "Deployment")
typo, wrong = copy.deepcopy(dep), copy.deepcopy(dep)
c = typo["spec"]["template"]["spec"]["containers"][0]
c["securityContex"] = c.pop("securityContext")
wrong["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8080"
json.dump([typo], open(sys.argv[2] + "/broken-typo.json", "w"))
json.dump([wrong], open(sys.argv[2] + "/broken-type.json", "w"))
EOF
    rm -rf "$npm_dir/work-broken"
    if (cd "$npm_dir" && node validate-manifests.mjs "$npm_dir/work-broken" "type=$manifest_dir/broken-type.json") >/dev/null 2>&1; then
      ok=0; note "the OpenAPI schemas accepted containerPort \"8080\""
    fi
    (cd "$npm_dir" && node validate-manifests.mjs "$npm_dir/work-broken" "typo=$manifest_dir/broken-typo.json") >/dev/null 2>&1 || true
    tsc_out=$(cd "$npm_dir/work-broken" && "$npm_dir/node_modules/.bin/tsc" -p . 2>&1) || true
    if ! grep -q securityContex <<<"$tsc_out"; then
      ok=0; note "the unknown-field check accepted securityContex"
    fi
    if ((ok)); then
      pass "manifests: every object valid against the Kubernetes / Knative Serving OpenAPI schemas, no unknown fields (${npm_pkgs[*]})"
    else
      fail "manifests: schema validation (see $manifest_dir/schema.log, tsc.log)"
    fi
  else
    skip "manifests: schema packages not installable from npm (${npm_pkgs[*]}; see $work/npm.log)"
  fi
fi

# ---------------------------------------------------------------------------- k8s-standard
# The standard overlay's securityContext, translated by manifest-checks.py podman-args.
if ((rendered)); then
  mapfile -t k8s_args < <(/usr/bin/python3 "$here/manifest-checks.py" podman-args "$manifest_dir/standard.yaml")
  want=${k8s_args[-1]#expect }
  unset 'k8s_args[-1]'
  note "standard overlay as podman flags: ${k8s_args[*]}"
  if start k8s-standard -- "${k8s_args[@]}" && serve k8s-standard "$want"; then
    stop
    # Each grant is necessary: without it the server refuses to start under its floor.
    drop_pair() {  # drop_pair OPT GLOB: k8s_args minus the pairs "OPT value" with value ~ GLOB
      reduced=()
      local i n=${#k8s_args[@]}
      for ((i = 0; i < n; i++)); do
        # shellcheck disable=SC2053
        if [[ ${k8s_args[i]} == "$1" ]] && ((i + 1 < n)) && [[ ${k8s_args[i + 1]} == $2 ]]; then
          i=$((i + 1)); continue
        fi
        reduced+=("${k8s_args[i]}")
      done
    }
    needed=()
    check_needed() {  # check_needed WHAT: start with $reduced, which must be refused
      if start "k8s-without-${#needed[@]}" -- "${reduced[@]}"; then
        note "still starts without $1: $(curl -s -m 2 "http://127.0.0.1:$port/healthz" | cut -c1-100)"
        stop; return 1
      fi
      stop; needed+=("$1"); note "without $1: $(refusal | cut -c1-200)"
    }
    ok=1
    drop_pair --security-opt unmask=ALL; check_needed "procMount=Unmasked" || ok=0
    drop_pair --security-opt seccomp=unconfined; check_needed "seccomp=Unconfined" || ok=0
    drop_pair --cap-add '*'; check_needed "SETUID+SETGID" || ok=0
    drop_pair -e 'PYSANDBOX_UID_BASE=*'; check_needed "uid-base-in-pod-range" || ok=0
    if ((ok)); then
      pass "k8s-standard: overlay's securityContext -> $want; each grant needed (${needed[*]})"
    else
      fail "k8s-standard: a grant in the standard overlay is not needed (see above)"
    fi
  else
    stop; fail "k8s-standard: expected $want: $(refusal)"
  fi
else
  skip "k8s-standard: manifests not rendered"
fi

# ---------------------------------------------------------------------------------- gvisor
# GKE Sandbox / Cloud Run gen1: the gke-sandbox overlay's flags, OCI runtime runsc.
if ! command -v runsc >/dev/null; then "$tools/gvisor-run" -- true >/dev/null 2>&1 || true; fi
if ! command -v runsc >/dev/null; then
  skip "gvisor: runsc not installable"
elif ((rendered == 0)); then
  skip "gvisor: manifests not rendered"
else
  mapfile -t gv_args < <(/usr/bin/python3 "$here/manifest-checks.py" podman-args "$manifest_dir/gke-sandbox.yaml")
  want=${gv_args[-1]#expect }
  unset 'gv_args[-1]'
  # runsc's own netstack refuses podman's network namespace here ("cannot run with network
  # enabled in root network namespace"); hostinet inside the container's netns works.
  if start gvisor "$(command -v runsc)" --runtime-flag platform=ptrace --runtime-flag network=host -- "${gv_args[@]}" &&
     serve gvisor "$want"; then
    stop; pass "gvisor: gke-sandbox overlay's flags under runsc -> $want"
  else
    stop
    if [[ -n $rlimit_missing ]]; then
      skip "gvisor: the server does not start under gVisor yet (no rlimit mode in this build: $rlimit_missing); under runsc it said: $(refusal | cut -c1-300)"
    else
      fail "gvisor: expected $want: $(refusal)"
    fi
  fi
fi

echo "container suite: $((SECONDS - started)) s"
echo "container: $passed passed, $failed failed, $skipped skipped"
((failed == 0))
