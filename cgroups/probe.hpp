// Read-only detection of a usable cgroup v2 subtree for this process. Safe anywhere: it never
// writes. Run once at startup; Delegation::setup only proceeds when `usable` is true.
#pragma once

#include <string>
#include <vector>

namespace pysandbox::cgroups {

struct ProbeOptions {
  std::string proc_self_cgroup = "/proc/self/cgroup";
  std::string proc_self_mountinfo = "/proc/self/mountinfo";
  // Unit tests: a directory standing in for the cgroup2 mount point found in mountinfo (it holds
  // fake cgroup.controllers etc.). When set, the statfs(CGROUP2_SUPER_MAGIC) check is skipped.
  std::string mount_point_override;
};

struct V2Probe {
  bool usable = false;
  // Why not usable, for the operator: which cgroup, which file, which errno, what to change.
  // Empty when usable.
  std::string reason;
  std::string mount_point;  // the cgroup2 mount, e.g. "/sys/fs/cgroup"
  std::string own_path;     // from the "0::" line of /proc/self/cgroup, e.g. "/" or "/a.slice/x"
  std::string own_dir;      // the own cgroup's directory, e.g. "/sys/fs/cgroup/a.slice/x"
  std::vector<std::string> controllers;  // own cgroup.controllers
};

V2Probe probe_v2(const ProbeOptions& options = {});

}  // namespace pysandbox::cgroups
