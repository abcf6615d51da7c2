// Whether a seccomp filter loads here and holds.
#pragma once

#include "probe/facility.hpp"

namespace pysandbox::seccomp_policies {
class BpfProgram;
}

namespace pysandbox::probe {

// Loads `program` in a throwaway child (after no_new_privs) and checks that it holds: namespace
// creation through unshare and clone, and socket(AF_INET), must all fail with EPERM.
Facility seccomp_holds(const seccomp_policies::BpfProgram& program);

}  // namespace pysandbox::probe
