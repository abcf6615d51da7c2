#include "probe/scheduler.hpp"

#include <fstream>

namespace pysandbox::probe {

bool sched_autogroup_enabled() {
  std::ifstream in("/proc/sys/kernel/sched_autogroup_enabled");
  int enabled = 0;
  return (in >> enabled) && enabled == 1;
}

}  // namespace pysandbox::probe
