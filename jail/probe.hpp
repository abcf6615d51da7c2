// Startup checks: try the sandbox exactly the way requests will use it, in a throwaway child.
#pragma once

#include <string>

#include "jail/spawner.hpp"

namespace pysandbox::jail {

struct ProbeResult {
  bool ok = false;
  std::string detail;  // what failed, with the step and errno; empty when ok
};

// Spawns `spawner`'s jail with `params` (its fds must be valid; /dev/null is fine), waits for it
// (blocking: startup only), and succeeds when it ran to exit status 0.
ProbeResult probe_spawn(const Spawner& spawner, RunParams params);

}  // namespace pysandbox::jail
