#!/usr/bin/env bash
# The suites that need a real cgroup v2 kernel, inside ../shared/tools/vm-run (qemu, Debian's
# kernel, full cgroup2): the cgroups module's own tests, then the server in `full` mode (the
# full-mode cases and the whole attack suite). Skips with a message when vm-run is absent.
#
# usage: tests/vm/run.sh [BUILD_DIR]
set -euo pipefail
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/../.." && pwd)
vm_run="$repo_root/../shared/tools/vm-run"
if [[ ! -x "$vm_run" ]]; then
  echo "SKIP: vm-run not available (../shared/tools/vm-run missing): cgroup v2 suites not run"
  exit 0
fi
build_dir=$(cd "${1:-$repo_root/build}" && pwd)
start=$(date +%s)

"$script_dir/run-cgroups-tests.sh" "$build_dir"

cd "$repo_root"
# Twice: with the warm pool (the default: zygotes fork the sandboxes, CLONE_INTO_CGROUP from the
# zygote) and without it (a fresh interpreter per request). The attack suite must hold in both.
for pool in on off; do
  echo "== e2e in the VM: full mode + attack suite, --pool $pool"
  filter='FullMode.*:AttackTest.*'
  [[ $pool == on ]] && filter+=':PoolTest.*'
  log="$build_dir/vm-e2e-pool-$pool.log"
  "$vm_run" --timeout "${VM_TIMEOUT:-1500}" -- \
    "PYSANDBOX_VM_TESTS=1 PYSANDBOX_E2E_ARGS='--pool $pool' $(printf '%q' "$build_dir/bin/e2e_tests") \
       --gtest_filter='$filter' >$(printf '%q' "$log") 2>&1; rc=\$?; \
     grep -v '^{\"' $(printf '%q' "$log"); exit \$rc"
done
echo "== VM suites passed in $(( $(date +%s) - start )) s"
