// Starts one sandboxed process: clone3 into fresh namespaces, then an ordered, async-signal-safe
// list of setup steps in the child, seccomp last, then execve.
#pragma once

#include <sys/types.h>

#include <array>
#include <boost/system/result.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "jail/mount_plan.hpp"
#include "jail/sys/unique_fd.hpp"

namespace pysandbox::seccomp_policies {
class BpfProgram;
}

namespace pysandbox::jail {

// Fixed at startup.
struct JailConfig {
  std::string executable;         // absolute path, inside the sandbox's view
  std::vector<std::string> argv;  // argv[0] included
  std::vector<std::string> env;   // "KEY=value"; nothing else is inherited
  MountPlanOptions mounts;
  std::string hostname = "sandbox";
  // Where the parent finds /proc/<child>/uid_map: -1 = "/proc"; a pivoted zygote keeps a dirfd
  // of the host's proc (its own /proc shows an empty PID namespace).
  int host_proc_fd = -1;
  // The child joins the caller's network namespace instead of creating one: for a zygote that
  // moves itself into a fresh, empty network namespace after every fork (unshare), so that each
  // child still gets one of its own but its creation (the costliest namespace here, ~1-2 ms) is
  // paid between requests instead of inside one.
  bool inherit_network_namespace = false;
  // Applied last before execve; null only for capability probes.
  const seccomp_policies::BpfProgram* seccomp = nullptr;
};

struct Rlimits {
  std::uint64_t address_space = 256ull << 20;
  std::uint64_t cpu_seconds = 6;
  std::uint64_t processes = 64;
  std::uint64_t open_files = 256;
  std::uint64_t file_size = 64ull << 20;
};

// Per run.
struct RunParams {
  uid_t host_uid = 0;  // root inside the sandbox maps to this unprivileged host uid
  gid_t host_gid = 0;
  Rlimits limits;
  int cgroup_fd = -1;  // >= 0: start inside this cgroup (CLONE_INTO_CGROUP)
  // Become fds 0..4 in the sandbox: stdin, stdout, stderr, script, result.
  std::array<int, 5> fds{-1, -1, -1, -1, -1};
};

// What the child reports on the setup-error pipe before _exit when a step fails.
struct SetupFailure {
  std::int32_t step = 0;   // Step
  std::int32_t index = 0;  // mount plan index for mount steps
  std::int32_t err = 0;    // errno
};

enum class Step : std::int32_t {
  kSync = 1,
  kIds,
  kParentDeath,
  kHostname,
  kMount,
  kFds,
  kChdir,
  kRlimit,
  kCapabilities,
  kNoNewPrivs,
  kSeccomp,
  kExecve,
};

struct Spawned {
  pid_t pid = -1;
  jail::sys::UniqueFd pidfd;
  // EOF when execve succeeded (the write end is O_CLOEXEC); a SetupFailure record otherwise.
  jail::sys::UniqueFd setup_errors;
};

class Spawner {
 public:
  static boost::system::result<Spawner> create(JailConfig config);

  // Synchronous but short: clone3 and the uid/gid map writes. The child's own setup runs
  // concurrently; its failure arrives on Spawned::setup_errors.
  boost::system::result<Spawned> spawn(const RunParams& params) const;

  // For a zygote (an initialised interpreter that must not execve): the same namespaces and steps,
  // but the child is born with CLONE_PARENT, so the zygote's parent owns it (reaps it, holds its
  // pidfd), and instead of execve it returns from this call with pid 0 once seccomp is loaded and
  // every fd but 0..4 is closed. Setup failures are written to `setup_error_fd` (the caller's
  // channel, whose read end the owner holds; EOF there = setup done). In the caller, returns the
  // child's pid and pidfd; setup_errors stays empty. The caller must be single-threaded.
  boost::system::result<Spawned> fork_sandboxed(const RunParams& params, int setup_error_fd) const;

  // "mount: bind /usr -> /tmp/usr (ro): Operation not permitted", for the log.
  std::string describe(const SetupFailure& failure) const;

  const std::vector<MountOp>& plan() const { return plan_; }

 private:
  Spawner() = default;
  boost::system::result<Spawned> spawn_impl(const RunParams& params, int setup_error_fd) const;
  JailConfig config_;
  std::vector<MountOp> plan_;
};

}  // namespace pysandbox::jail
