// Host-side view of sandbox processes: which live processes run with a sandbox uid.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace pysandbox::e2e {

// Pids of host processes whose real uid lies in [first, first + count).
std::vector<pid_t> processes_with_uids(uid_t first, unsigned count);

}  // namespace pysandbox::e2e
