// Starts one sandboxed process: clone3 into fresh namespaces, then an ordered, async-signal-safe
// list of setup steps in the child, seccomp last, then execve.
#pragma once

#include <sys/types.h>

#include <array>
#include <boost/system/result.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "base/sys/unique_fd.hpp"
#include "jail/child_steps.hpp"
#include "jail/mount_plan.hpp"
#include "jail/run_fds.hpp"

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
  // pysandbox-init (jail/sandbox_init.hpp), which every sandbox's first process becomes: opened
  // by NamespaceSpawner::create from init_path, or duplicated from init_fd when that is >= 0 (a
  // zygote opens it before it moves into the sandbox's root, where the path is not visible).
  std::string init_path;
  int init_fd = -1;
};

// Per run.
struct RunParams {
  uid_t host_uid = 0;  // root inside the sandbox maps to this unprivileged host uid
  gid_t host_gid = 0;
  Rlimits limits;
  int cgroup_fd = -1;  // >= 0: start inside this cgroup (CLONE_INTO_CGROUP)
  RunFds fds;          // become fds 0..4 in the sandbox
};

// A sandbox made ahead of its run, by a zygote (see NamespaceSpawner::fork_ready).
struct ReadyParams {
  uid_t host_uid = 0;
  gid_t host_gid = 0;
  Rlimits limits;        // until the run lowers them
  int null_fd = -1;      // /dev/null: fds 0..2 until the run
  int handover_fd = -1;  // becomes fd 3 of the runner: its run's fds and limits arrive there
  int channel_fd = -1;   // the channel's write end (jail/sandbox_init.hpp): becomes fd 5
};

struct Spawned {
  pid_t pid = -1;  // the sandbox's init
  base::sys::UniqueFd pidfd;
  // The read end of the sandbox's channel (jail/sandbox_init.hpp); empty for fork_ready, whose
  // caller made the channel.
  base::sys::UniqueFd channel;
};

class NamespaceSpawner {
 public:
  static boost::system::result<NamespaceSpawner> create(JailConfig config);

  // Cold start, synchronous but short: clone3 and the uid/gid map writes. In the new sandbox,
  // init (jail/sandbox_init.hpp) runs the steps, then starts the runner, which execs the
  // interpreter. Its progress, failure and end arrive on Spawned::channel.
  boost::system::result<Spawned> spawn(const RunParams& params) const;

  // For a zygote (an initialised interpreter that must not execve): the same namespaces and
  // steps, done ahead of any run. The sandbox is born with CLONE_PARENT, so the zygote's parent
  // owns its init (reaps it, holds its pidfd). Its runner is a copy of the caller that returns
  // from this call with pid 0, sandboxed (seccomp loaded, every fd closed but 0..2 and 4 =
  // /dev/null, 3 = handover, 5 = channel); the caller then waits on fd 3 for its run. In the
  // caller, returns init's pid and pidfd. The caller must be single-threaded.
  boost::system::result<Spawned> fork_ready(const ReadyParams& params) const;

  // "mount: bind /usr -> /tmp/usr (ro): Operation not permitted", for the log.
  std::string describe(const SetupFailure& failure) const;

  const std::vector<MountOp>& plan() const { return plan_; }

 private:
  NamespaceSpawner() = default;
  boost::system::result<Spawned> clone_sandbox(uid_t uid, gid_t gid, const Rlimits& limits,
                                               int cgroup_fd, const int* place, int nplace,
                                               int channel_fd) const;
  boost::system::result<void> release(const Spawned& child, uid_t uid, gid_t gid, int sync_write,
                                      int channel_fd) const;
  JailConfig config_;
  std::vector<MountOp> plan_;
  base::sys::UniqueFd init_;
};

}  // namespace pysandbox::jail
