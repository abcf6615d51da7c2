// The libcgroup (v2.0.2, Debian 12) side of leaf management: create a leaf, set its limits,
// delete it. Only used when Delegation decided libcgroup's view of the hierarchy matches the
// probed cgroup2 mount and its writes stay inside our delegated subtree (see delegation.cpp).
#pragma once

#include <string>
#include <vector>

#include "cgroups/error.hpp"

namespace pysandbox::cgroups::detail {

struct ControlValue {
  const char* controller;  // "memory", "pids", "cpu": selects the hierarchy libcgroup writes to
  const char* file;        // "memory.max", ...
  std::string value;
};

// cgroup_init() once per process (libcgroup keeps a global mount table), with libcgroup's log
// routed to the log on stderr (base/log.hpp) instead of its default stdout. Later calls return the
// first outcome.
Result<void> libcgroup_init();

// Where libcgroup's mount table puts `controller` (cgroup_get_subsys_mount_point).
Result<std::string> libcgroup_mount_point(const char* controller);

// Creates <mount>/<relative> through cgroup_create_cgroup (with the first value's controller),
// then writes every value through cgroup_modify_cgroup, one value per call so a
// failure names its file. `path` is the absolute directory, for messages. On failure the caller
// removes the leaf.
Result<void> libcgroup_create(const std::string& relative, const std::string& path,
                              const std::vector<ControlValue>& values);

// cgroup_delete_cgroup_ext(CGFLAG_DELETE_EMPTY_ONLY): a plain rmdir, no task migration to the
// parent (which the no-internal-process rule would refuse anyway). EBUSY when still populated
// or with child cgroups; a missing cgroup counts as deleted.
Result<void> libcgroup_delete(const std::string& relative, const std::string& path);

}  // namespace pysandbox::cgroups::detail
