// The startup probe of what this host (or gVisor sandbox) lets the server do: each capability
// tried the way the sandboxes use it, in throwaway children, with the errno of what failed.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

namespace pysandbox::seccomp_policies {
class BpfProgram;
}

namespace pysandbox::jail {

struct Capability {
  std::string name;  // "user_ns", "pid_ns", ..., "clone3", "pidfd", "pivot_root", "seccomp"
  bool ok = false;
  int err = 0;         // errno of the step that failed (0 when ok or not applicable)
  std::string detail;  // what failed, e.g. "unshare(CLONE_NEWNET): Operation not permitted"
};

struct CapabilityProbeOptions {
  // The user namespace probe maps root inside to this uid/gid outside, as the jail does.
  uid_t uid = 0;
  gid_t gid = 0;
  // The filter the sandboxes will load; null skips the seccomp probe.
  const seccomp_policies::BpfProgram* seccomp = nullptr;
};

class HostCapabilities {
 public:
  std::vector<Capability> items;

  // False for a name that was not probed.
  bool has(std::string_view name) const;
  const Capability* find(std::string_view name) const;
};

// Probes, in this order: clone3, pidfd, user_ns, pid_ns, mount_ns, net_ns, ipc_ns, uts_ns,
// cgroup_ns, mount_private (propagation change), bind_rec_ro (recursive bind + read-only
// remount), pivot_root, chroot, seccomp. Blocking (startup only), every child reaped. A
// capability that depends on one that failed (the namespaces need the user namespace) reports
// ok=false with the dependency named in `detail`.
HostCapabilities probe_capabilities(const CapabilityProbeOptions& options);

// What a root server can use in rlimit mode without a user namespace (RlimitNamespaces).
struct RootNamespaces {
  unsigned long clone_flags = 0;  // the CLONE_NEW* flags a plain clone accepted
  // Private mounts work: a tmpfs mounted in a new mount namespace did not show up in ours, a
  // fresh /proc (with a PID namespace) and a tmpfs over /tmp could be mounted.
  bool mounts = false;
  bool tolerate_private_failure = false;  // make-rprivate failed with EINVAL, yet no propagation
  bool proc = false;                      // /proc shows the new PID namespace
  bool net_isolated = false;      // from a new network namespace our loopback is unreachable
  std::vector<Capability> items;  // one per check, for the log
};

// Needs root. Tries each of CLONE_NEWPID, NEWNS, NEWNET, NEWIPC, NEWUTS with a plain clone, then,
// in one throwaway child with the ones that worked: make-rprivate, a tmpfs mounted over a fresh
// directory of `probe_base` (which must be absent from our view afterwards: otherwise mounts
// propagate to the host, the probe undoes it and reports mounts=false), then -- only if they do
// not propagate -- /proc and a tmpfs over /tmp, and a connect() to a listener on our loopback.
RootNamespaces probe_root_namespaces(const std::string& probe_base = "/tmp");

// Whether a process of `uid` (unprivileged) is refused our /proc/<pid>/environ, as Linux does
// (ptrace access mode). gVisor 2022-12 lets any uid read it, and maps, auxv and the fd list.
Capability probe_proc_environ_protected(uid_t uid, gid_t gid);

// Lowers each rlimit the rlimit jail uses (AS, CPU, NPROC, NOFILE, FSIZE, STACK, CORE,
// MEMLOCK, MSGQUEUE) in a throwaway child: one entry "rlimit_<NAME>" each. gVisor refuses some.
std::vector<Capability> probe_rlimits();

// Loads `program` in a throwaway child (after no_new_privs) and checks that it holds: namespace
// creation through unshare and clone, and socket(AF_INET), must all fail with EPERM.
Capability probe_seccomp(const seccomp_policies::BpfProgram& program);

}  // namespace pysandbox::jail
