// One running sandbox as the supervise loop sees it. Each mode says how to kill it, how to learn
// that it ended and what to clean up; the loop around it (executor/supervise.hpp) is the same for
// every mode and every start path.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <optional>

#include "base/sys/syscalls.hpp"
#include "cgroups/stats.hpp"

namespace pysandbox::executor {

class SandboxProcess {
 public:
  virtual ~SandboxProcess() = default;

  // Ends every process of the sandbox. Where the sandbox's init can do it (it then still
  // reaps and accounts for them, jail/sandbox_init.hpp) it is asked to; idempotent; harmless
  // after the end.
  virtual void kill() noexcept = 0;

  // SIGKILL to every process, init included: when init did not end the sandbox in time after
  // kill(). Usage is then what the kernel still reports.
  virtual void force_kill() noexcept { kill(); }

  // Completes when the sandbox's main process has exited and was reaped: its status and rusage.
  virtual boost::asio::awaitable<base::sys::Result<base::sys::ExitStatus>> wait_exit() = 0;

  // After wait_exit(): returns once no process of the sandbox is left (stragglers killed).
  // Where the main process is the sandbox's PID-namespace init, its exit already means that.
  virtual boost::asio::awaitable<void> wait_gone() { co_return; }

  // Usage of the whole sandbox where the mode measures it (a cgroup); read before teardown().
  virtual std::optional<cgroups::LeafStats> stats() const { return std::nullopt; }

  // Removes what the run left behind (its cgroup leaf, its files), once its streams are closed.
  virtual boost::asio::awaitable<void> teardown() { co_return; }
};

}  // namespace pysandbox::executor
