#!/bin/bash
# Re-derives default.policy's allow-list: straces Debian's python3 running tests/workload.py and
# prints every syscall it made, marking the ones the policy does not allow unconditionally or
# conditionally. Needs strace (apt-get install -y strace). Usage: measure_syscalls.sh [policy]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
policy=${1:-$here/default.policy}
python=${PYTHON:-/usr/bin/python3}
trace=$(mktemp)
trap 'rm -f "$trace"' EXIT

# clone3 answers ENOSYS as under the policy, so glibc's clone fallback is what gets measured.
for blas_threads in 1 ""; do
  OPENBLAS_NUM_THREADS=$blas_threads strace -f -qq -e inject=clone3:error=ENOSYS \
    -o "$trace.$$" "$python" -I -B -u "$here/tests/workload.py" </dev/null >/dev/null
  cat "$trace.$$" >>"$trace"
  rm -f "$trace.$$"
done

seen=$(sed -E 's/^[0-9]+ +//' "$trace" | grep -oE '^[a-z_0-9]+\(' | tr -d '(' | sort -u)
allowed=$(sed 's/#.*//' "$policy" | awk '$1 == "allow" { for (i = 2; i <= NF && $i != "if"; i++) print $i }' |
  tr -d '?' | sort -u)

echo "syscalls seen: $(echo "$seen" | wc -l); allowed by $(basename "$policy"): $(echo "$allowed" | wc -l)"
missing=$(comm -23 <(echo "$seen") <(echo "$allowed"))
if [ -n "$missing" ]; then
  echo "seen but not allowed (clone3 is expected: it gets ENOSYS on purpose):"
  echo "$missing" | sed 's/^/  /'
fi
