#!/usr/bin/env bash
# Runs cgroups_tests on a real cgroup v2 kernel inside ../shared/tools/vm-run, in one VM boot,
# twice over so both delegation shapes are covered:
#   pass 1: the own cgroup is the hierarchy root (a VM; a container's private cgroup namespace)
#           -> leaves are made through libcgroup; the whole binary runs;
#   pass 2: the own cgroup is nested, /sys/fs/cgroup/pysandbox-test.slice/unit (a systemd unit
#           with Delegate=yes) -> leaves use direct cgroupfs I/O, and the test that watches the
#           cgroups above the own one for writes is active; the VmCgroup* suite runs.
# Everything that writes cgroups happens inside the guest; the host's cgroups are never touched.
#
# usage: tests/vm/run-cgroups-tests.sh [BUILD_DIR] [GTEST_ARGS...]
#   BUILD_DIR defaults to ./build; VM_TIMEOUT (seconds, default 600) bounds the VM.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(git -C "$script_dir" rev-parse --show-toplevel 2>/dev/null || (cd "$script_dir/../.." && pwd))
vm_run="$repo_root/../shared/tools/vm-run"
if [[ ! -x "$vm_run" ]]; then
  echo "SKIP: vm-run not available (../shared/tools/vm-run missing)"
  exit 0
fi

build_dir=${1:-build}
shift || true
if [[ ! -d "$build_dir" ]]; then
  echo "error: build directory '$build_dir' not found" >&2
  exit 2
fi
build_dir=$(cd "$build_dir" && pwd)
binary=""
for candidate in "$build_dir/bin/cgroups_tests" "$build_dir/cgroups/tests/cgroups_tests"; do
  if [[ -x "$candidate" ]]; then
    binary=$candidate
    break
  fi
done
if [[ -z "$binary" ]]; then
  echo "error: cgroups_tests not found in $build_dir (build it: cmake --build $build_dir --target cgroups_tests)" >&2
  exit 2
fi

gtest_args=""
for arg in "$@"; do gtest_args+=" $(printf '%q' "$arg")"; done
bin=$(printf '%q' "$binary")
nest=/sys/fs/cgroup/pysandbox-test.slice

# The guest script (runs as root in the guest's root cgroup).
guest_script="
rc1=0; rc2=0
echo '== pass 1: own cgroup = the cgroup2 root (libcgroup backend)'
$bin --gtest_color=no$gtest_args || rc1=\$?
echo '== pass 2: own cgroup = $nest/unit (like systemd Delegate=yes; direct I/O)'
mkdir -p $nest/unit &&
  echo '+memory +pids +cpu' > $nest/cgroup.subtree_control &&
  sh -c 'echo \$\$ > $nest/unit/cgroup.procs && exec \"\$0\" \"\$@\"' $bin --gtest_color=no \
    --gtest_filter='VmCgroup*'$gtest_args || rc2=\$?
echo \"== pass 1 exit \$rc1, pass 2 exit \$rc2\"
[ \$rc1 -eq 0 ] && [ \$rc2 -eq 0 ]
"

export PYSANDBOX_VM_TESTS=1
cd "$build_dir"
start=$(date +%s.%N)
rc=0
"$vm_run" --timeout "${VM_TIMEOUT:-600}" -- "$guest_script" || rc=$?
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" -v rc="$rc" 'BEGIN { printf "== vm-run wall time: %.1f s (exit %d)\n", e - s, rc }'
exit "$rc"
