// The executor runs one request in a fresh, single-use sandbox and reports a typed outcome.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>

#include "executor/pool_stats.hpp"
#include "executor/types.hpp"

namespace pysandbox::executor {

class Executor {
 public:
  virtual ~Executor() = default;

  // Never throws for a script's fault or a limit; those are statuses. Must be awaited on the
  // io_context the executor was built with.
  virtual boost::asio::awaitable<RunOutcome> run(ExecuteRequest request) = 0;

  // Whether runs start at full speed now (the warm pool's zygotes are up): /readyz. A mode
  // without a pool is ready from the start.
  virtual bool ready() const { return true; }

  // The isolation mode every run gets, fixed at startup.
  virtual Isolation isolation() const = 0;

  // What /healthz shows under "isolation": mode, namespaces, cgroup, seccomp, pidfd, ...
  virtual boost::json::object describe() const = 0;

  // Releases background work held on the io_context (the pool's zygotes, their sockets and
  // pidfds). Must run before the io_context is destroyed: its io objects need its services.
  virtual void shutdown() {}

  // What /healthz shows under "pool": the warm path's zygotes, or why there are none.
  virtual boost::json::object pool_state() const {
    return {{"enabled", false}, {"reason", "this mode starts a fresh interpreter per request"}};
  }
  // pool_state()'s counts, typed (/metrics); zeros without a pool.
  virtual PoolStats pool_stats() const { return {}; }
};

}  // namespace pysandbox::executor
