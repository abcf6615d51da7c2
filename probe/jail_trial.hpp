// The last startup check: the namespace jail itself, run once exactly the way requests will use
// it.
#pragma once

#include <string>

#include "jail/namespace_spawner.hpp"

namespace pysandbox::probe {

struct TrialRun {
  bool ok = false;
  std::string detail;  // what failed, with the step and errno; empty when ok
};

// Spawns `spawner`'s jail with `params` (its fds must be valid; /dev/null is fine), waits for it
// (blocking: startup only), and succeeds when it ran to exit status 0.
TrialRun jail_trial(const jail::NamespaceSpawner& spawner, jail::RunParams params);

}  // namespace pysandbox::probe
