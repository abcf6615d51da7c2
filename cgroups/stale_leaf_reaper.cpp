#include "cgroups/stale_leaf_reaper.hpp"

#include <algorithm>
#include <utility>

namespace pysandbox::cgroups {

void StaleLeafReaper::add(std::string name) {
  const std::lock_guard lock(mutex_);
  if (std::find(names_.begin(), names_.end(), name) == names_.end()) {
    names_.push_back(std::move(name));
  }
}

std::size_t StaleLeafReaper::retry(const std::function<bool(const std::string&)>& try_remove) {
  std::vector<std::string> batch;
  {
    const std::lock_guard lock(mutex_);
    if (names_.empty()) return 0;
    batch.swap(names_);
  }
  std::vector<std::string> kept;
  for (std::string& name : batch) {
    if (!try_remove(name)) kept.push_back(std::move(name));
  }
  const std::lock_guard lock(mutex_);
  for (std::string& name : kept) {
    if (std::find(names_.begin(), names_.end(), name) == names_.end()) {
      names_.push_back(std::move(name));
    }
  }
  return names_.size();
}

std::size_t StaleLeafReaper::pending() const {
  const std::lock_guard lock(mutex_);
  return names_.size();
}

}  // namespace pysandbox::cgroups
