// Starts one process for the `rlimit` isolation mode, where clone3, pidfds, pivot_root and
// cgroups may all be missing (gVisor: Cloud Run gen1, GKE Sandbox): a plain fork (raw
// clone(SIGCHLD), optionally with CLONE_NEW* flags), then an ordered, async-signal-safe list of
// steps in the child -- own session, fds 0..4, private scratch directory, rlimits, a dedicated
// unprivileged uid/gid, no_new_privs, seccomp if given -- then execve.
#pragma once

#include <sys/types.h>

#include <array>
#include <boost/system/result.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "base/sys/unique_fd.hpp"
#include "jail/child_steps.hpp"  // Rlimits, SetupFailure
#include "jail/run_fds.hpp"

namespace pysandbox::seccomp_policies {
class BpfProgram;
}

namespace pysandbox::jail {

// The namespaces a root server can still give without a user namespace, where the startup probe
// (probe::root_namespaces) found them to work: under gVisor, PID, mount, network, IPC and UTS
// namespaces work while pivot_root, recursive binds and clone3 do not.
struct RlimitNamespaces {
  unsigned long clone_flags = 0;  // subset of CLONE_NEWPID|NEWNS|NEWNET|NEWIPC|NEWUTS
  // With CLONE_NEWNS, `mount --make-rprivate /` keeps our mounts from propagating to the host;
  // its failure is fatal unless the probe showed that mounts do not propagate here anyway
  // (gVisor: EINVAL, and no propagation).
  bool tolerate_private_failure = false;
  bool mount_proc = false;              // a fresh /proc (CLONE_NEWPID and CLONE_NEWNS)
  std::vector<std::string> tmpfs_dirs;  // a fresh tmpfs, mode 1777, over each (CLONE_NEWNS)
  std::uint64_t tmpfs_bytes = 64ull << 20;
  std::string hostname = "sandbox";  // with CLONE_NEWUTS
};

// Fixed at startup.
struct RlimitJailConfig {
  std::string executable;         // absolute path
  std::vector<std::string> argv;  // argv[0] included
  std::vector<std::string> env;   // "KEY=value"; a run's own entries override same-named ones
  // Applied last before execve when set.
  const seccomp_policies::BpfProgram* seccomp = nullptr;
  RlimitNamespaces namespaces;
  // pysandbox-init (jail/sandbox_init.hpp), opened by RlimitSpawner::create.
  std::string init_path;
};

// Per run.
struct RlimitRunParams {
  // Switch to uid/gid (no supplementary groups) before execve. Needs root; without it the script
  // runs as the server's own uid.
  bool switch_ids = true;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string cwd;  // where the run starts (its scratch directory, or /tmp)
  // Create `cwd` (mode 0700) after the uid change, so that the run owns it without the server
  // needing CAP_CHOWN; an existing one is an error (someone claimed the name first).
  bool create_cwd = false;
  std::vector<std::string> env;  // per-run "KEY=value" (HOME, TMPDIR, ...)
  Rlimits limits;
  std::uint64_t stack_bytes = 8ull << 20;  // RLIMIT_STACK
  RunFds fds;                              // become fds 0..4
};

struct RlimitSpawned {
  pid_t pid = -1;  // the run's init; also its process group and session id (setsid)
  // The read end of the run's channel (jail/sandbox_init.hpp).
  base::sys::UniqueFd channel;
};

class RlimitSpawner {
 public:
  static boost::system::result<RlimitSpawner> create(RlimitJailConfig config);

  // Synchronous and short (one clone). The child is the caller's to wait for and reap, by pid.
  boost::system::result<RlimitSpawned> spawn(const RlimitRunParams& params) const;

  // "ids #2: Operation not permitted", for the log.
  static std::string describe(const SetupFailure& failure);

  const RlimitJailConfig& config() const noexcept { return config_; }

 private:
  RlimitSpawner() = default;
  RlimitJailConfig config_;
  std::string tmpfs_data_;  // "size=N,mode=1777", built once
  base::sys::UniqueFd init_;
};

}  // namespace pysandbox::jail
