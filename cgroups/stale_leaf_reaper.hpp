// Leaves whose teardown failed (still populated after the deadline, rmdir EBUSY). They were
// killed; the reaper retries kill + rmdir later (on every create_leaf and when the delegation
// is released) so that no request cgroup outlives its request for long.
#pragma once

#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace pysandbox::cgroups {

class StaleLeafReaper {
 public:
  void add(std::string name);

  // Calls try_remove(name) for every pending leaf, outside the lock; keeps the ones for which
  // it returns false. Returns how many are still pending.
  std::size_t retry(const std::function<bool(const std::string&)>& try_remove);

  std::size_t pending() const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> names_;
};

}  // namespace pysandbox::cgroups
