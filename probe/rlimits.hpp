// Which resource limits the rlimit jail sets can be lowered here.
#pragma once

#include <vector>

#include "probe/facility.hpp"

namespace pysandbox::probe {

// Lowers each rlimit the rlimit jail uses (AS, CPU, NPROC, NOFILE, FSIZE, STACK, CORE,
// MEMLOCK, MSGQUEUE) in a throwaway child: one entry "rlimit_<NAME>" each. gVisor refuses some.
std::vector<Facility> rlimits();

}  // namespace pysandbox::probe
