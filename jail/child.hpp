// A running sandbox as the server sees it: owns the pid through a pidfd, watched on the
// io_context. Never leaves a zombie: destroying an unreaped Child kills and reaps it.
#pragma once

#include <sys/types.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "base/sys/syscalls.hpp"

namespace pysandbox::jail {

class Child {
 public:
  Child(boost::asio::any_io_executor io, pid_t pid, base::sys::UniqueFd pidfd);
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child();

  pid_t pid() const noexcept { return pid_; }
  bool reaped() const noexcept { return reaped_; }

  // SIGKILL through the pidfd (no pid-reuse race). Killing a PID namespace's init kills every
  // process in that namespace (pid_namespaces(7)). Idempotent; a no-op once reaped.
  void kill() noexcept;

  // Whether it has exited (its pidfd is readable), without reaping it.
  bool exited() const noexcept;

  // Any signal through the pidfd; a no-op once reaped.
  void signal(int sig) noexcept;

  // Whether some Child currently owns `pid` (not yet reaped). For finding children of this
  // process that nobody watches (a zygote died between its fork and its reply).
  static bool is_watched(pid_t pid);

  // Waits until the pidfd turns readable (the process exited), then reaps it without blocking.
  boost::asio::awaitable<base::sys::Result<base::sys::ExitStatus>> async_wait_exit();

 private:
  pid_t pid_;
  boost::asio::posix::stream_descriptor pidfd_;
  bool reaped_ = false;
};

}  // namespace pysandbox::jail
