// What the namespace jail needs from the host, each facility tried the way the jail uses it, in
// throwaway children, with the errno of what failed.
#pragma once

#include <sys/types.h>

#include "probe/facility.hpp"

namespace pysandbox::seccomp_policies {
class BpfProgram;
}

namespace pysandbox::probe {

struct NamespaceProbeOptions {
  // The user namespace probe maps root inside to this uid/gid outside, as the jail does.
  uid_t uid = 0;
  gid_t gid = 0;
  // The filter the sandboxes will load; null skips the seccomp probe.
  const seccomp_policies::BpfProgram* seccomp = nullptr;
};

// Probes, in this order: clone3, pidfd, user_ns, net_ns, ipc_ns, uts_ns, cgroup_ns, pid_ns,
// mount_ns, mount_private (propagation change), bind_rec_ro (recursive bind + read-only
// remount), pivot_root, chroot, seccomp. Blocking (startup only), every child reaped. A facility
// that depends on one that failed (the namespaces need the user namespace) reports ok=false with
// the dependency named in `detail`.
Facilities namespace_facilities(const NamespaceProbeOptions& options);

}  // namespace pysandbox::probe
