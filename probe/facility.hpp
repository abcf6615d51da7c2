// What one startup probe found: a facility of the host (a namespace type, a syscall, a limit)
// works the way the sandboxes use it, or what failed.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pysandbox::probe {

struct Facility {
  std::string name;  // "user_ns", "pid_ns", ..., "clone3", "pidfd", "pivot_root", "seccomp"
  bool ok = false;
  int err = 0;         // errno of the step that failed (0 when ok or not applicable)
  std::string detail;  // what failed, e.g. "unshare(CLONE_NEWNET): Operation not permitted"
};

class Facilities {
 public:
  std::vector<Facility> items;

  // False for a name that was not probed.
  bool has(std::string_view name) const;
  const Facility* find(std::string_view name) const;
};

}  // namespace pysandbox::probe
