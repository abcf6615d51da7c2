// What a root server can use in rlimit mode without a user namespace (RlimitNamespaces).
#pragma once

#include <array>
#include <string>
#include <vector>

#include "probe/facility.hpp"

namespace pysandbox::probe {

struct RootNamespaces {
  unsigned long clone_flags = 0;  // the CLONE_NEW* flags a plain clone accepted
  // Private mounts work: a tmpfs mounted in a new mount namespace did not show up in ours, a
  // fresh /proc (with a PID namespace) and a tmpfs over /tmp could be mounted.
  bool mounts = false;
  bool tolerate_private_failure = false;  // make-rprivate failed with EINVAL, yet no propagation
  bool proc = false;                      // /proc shows the new PID namespace
  bool net_isolated = false;    // from a new network namespace our loopback is unreachable
  std::vector<Facility> items;  // one per check, for the log
};

// Needs root. Tries each of CLONE_NEWPID, NEWNS, NEWNET, NEWIPC, NEWUTS with a plain clone, then,
// in one throwaway child with the ones that worked: make-rprivate, a tmpfs mounted over a fresh
// directory of `probe_base` (which must be absent from our view afterwards: otherwise mounts
// propagate to the host, the probe undoes it and reports mounts=false), then -- only if they do
// not propagate -- /proc and a tmpfs over /tmp, and a connect() to a listener on our loopback.
RootNamespaces root_namespaces(const std::string& probe_base = "/tmp");

// The mount trial's steps, in the child's order; each reports its errno (0: done).
enum RootStep : int {
  kRootPrivate,
  kRootProbeTmpfs,
  kRootMarker,
  kRootProc,
  kRootProcSelf,
  kRootTmpTmpfs,
  kRootConnect,
  kRootStepCount,
};

struct MountTrial {
  std::array<int, kRootStepCount> step_err{};  // errno per step; -1: the child never got there
  bool child_ready = false;                    // the child reached the handshake
  bool propagated = false;                     // its tmpfs showed up in our mount namespace
};

// Why private mounts cannot be used after `trial`, or "" when they can. The first cause wins:
// the probe mount itself, then propagation to the host, then a dead child, then make-rprivate
// (EINVAL is tolerated when nothing propagated), then the tmpfs over /tmp. Pure.
std::string mount_failure(const MountTrial& trial);

}  // namespace pysandbox::probe
