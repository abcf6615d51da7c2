// Operator settings of the executor (filled by beast_server's flag/env parsing).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "executor/types.hpp"

namespace pysandbox::executor {

struct Settings {
  // Debian's interpreter (has numpy/pandas); `python3` on PATH may be another build.
  std::string python_path = "/usr/bin/python3";
  // Holds runner.py and default.policy; empty = <dir of executable>/../share/pysandbox.
  std::string data_dir;
  // Empty = <data_dir>/default.policy.
  std::string seccomp_policy_path;
  // pysandbox-init, every sandbox's first process; empty = next to the server's binary.
  std::string init_path;

  // --isolation: force a mode instead of the strongest the probe finds.
  std::optional<Isolation> forced_isolation;
  // --min-isolation: refuse to start below this.
  Isolation min_isolation = Isolation::kRlimit;

  std::size_t max_output_bytes = 1u << 20;  // per stream (stdout, stderr) and for the result
  bool truncate_output = false;             // cut and flag instead of stopping the script

  std::uint64_t tmpfs_bytes = 64ull << 20;      // private /tmp size
  unsigned pids_max = 64;                       // processes+threads per sandbox
  unsigned nofile_max = 256;                    // RLIMIT_NOFILE
  std::uint64_t fsize_max_bytes = 64ull << 20;  // RLIMIT_FSIZE
  double cpu_max_cores = 1.0;                   // cgroup cpu.max, in cores (full mode)

  // Sandboxes run as host uids/gids from uid_base on (sandbox_uid_count() of them; rlimit mode:
  // uid_base + admission slot); the range must be unused on the host. Distinct uids keep
  // concurrent sandboxes from signalling or tracing each other.
  uid_t uid_base = 2000000;
  unsigned max_concurrency = 2;

  // Warm path (executor/zygote_pool.hpp): fork sandboxed children from pre-initialised
  // interpreters instead of starting one per request. `namespaces` and `full` modes only.
  bool pool = true;
  unsigned pool_size = 1;  // zygotes per flavour (minimal, preloaded)
  std::vector<std::string> preload = {"numpy", "pandas"};

  // rlimit mode: where each run's scratch directory is made (empty = /tmp/pysandbox-rlimit), and
  // whether its runs still get the namespaces the host allows (gVisor: all but pivot_root).
  std::string rlimit_scratch_dir;
  bool rlimit_namespaces = true;

  // Extra read-only paths to expose inside the sandbox (besides /usr, /lib*, /bin, /sbin and a
  // few /etc files).
  std::vector<std::string> extra_ro_paths;
};

// Sandboxes each warm-pool zygote keeps made, or being made, ahead of their runs.
inline constexpr unsigned kAheadPerZygote = 2;

// How many uids from uid_base the namespace modes use: one per running sandbox, and per zygote
// one per sandbox made or being made ahead, plus one being handed over.
inline unsigned sandbox_uid_count(const Settings& s) {
  const unsigned zygotes = s.pool ? s.pool_size * (s.preload.empty() ? 1 : 2) : 0;
  return s.max_concurrency + (kAheadPerZygote + 1) * zygotes + 2;
}

}  // namespace pysandbox::executor
