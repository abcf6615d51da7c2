// Waiting for children without pidfds (gVisor has no pidfd_open, no clone3): SIGCHLD through an
// Asio signal_set, then waitid(P_PID, pid, WNOHANG) for each pid a caller registered. Never
// waits on -1 or a process group: the namespaces executor's children and the probes' children
// belong to someone else, and stealing their exit status would lose it.
//
// One per io_context (an Asio service: ChildReaper::of(executor)), so there is a single SIGCHLD
// handler for the process and its Asio objects go away with the io_context, whoever else holds
// a reference to the reaper.
#pragma once

#include <sys/types.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <map>
#include <memory>
#include <optional>

#include "base/sys/syscalls.hpp"

namespace pysandbox::jail {

class ChildReaper final : public boost::asio::execution_context::service {
 public:
  static boost::asio::execution_context::id id;

  // The reaper of `io`'s io_context, created on first use. Call it before creating the first
  // child it will wait for: SIGCHLD is caught from then on, and a signal that arrives while
  // nobody waits is kept by the signal_set. Throws std::invalid_argument unless `io` belongs to
  // an io_context.
  static ChildReaper& of(const boost::asio::any_io_executor& io);

  explicit ChildReaper(boost::asio::io_context& io);
  ChildReaper(const ChildReaper&) = delete;
  ChildReaper& operator=(const ChildReaper&) = delete;
  ~ChildReaper() override;

  // Completes once `pid` (a child of this process) has exited, WITHOUT reaping it: while the
  // zombie exists its pid, and so its process group id, cannot be reused, so the caller can
  // still signal the group safely; it then reaps with base::sys::wait4_nohang(pid). Signals
  // coalesce, so every SIGCHLD polls every registered pid; a slow timer polls too, in case a signal
  // was lost anyway. One waiter per pid; ECHILD if `pid` is not our child.
  boost::asio::awaitable<base::sys::Result<void>> async_wait_exited(pid_t pid);

  // Whether `pid` has a waiter (so nobody else may reap it).
  bool watching(pid_t pid) const { return waiters_.count(pid) != 0; }

 private:
  struct Waiter {
    boost::asio::steady_timer* wake = nullptr;
    bool done = false;
    boost::system::error_code error;
  };

  void shutdown() override;
  void arm_signal();
  void arm_fallback();
  void poll();
  void idle_if_unused();
  static bool poll_one(pid_t pid, Waiter& waiter) noexcept;

  boost::asio::io_context& io_;
  std::optional<boost::asio::signal_set> signals_;
  std::optional<boost::asio::steady_timer> fallback_;
  bool signal_armed_ = false;
  bool fallback_armed_ = false;
  std::map<pid_t, Waiter*> waiters_;
  // Cleared at shutdown: handlers and frames that Asio destroys afterwards must not touch us.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace pysandbox::jail
