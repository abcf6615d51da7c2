// The warm pool's counts as numbers: what /healthz shows under "pool" as "ready", "busy" and
// "restarts", for /metrics to take as they are instead of reading them back out of that JSON.
#pragma once

namespace pysandbox::executor {

struct PoolStats {
  unsigned ready = 0;     // zygotes up
  unsigned busy = 0;      // zygotes forking a run now
  unsigned restarts = 0;  // zygote restarts since the pool started, all zygotes together
};

}  // namespace pysandbox::executor
