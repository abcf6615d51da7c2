// The server's stderr, made a pipe read by a small relay process that writes every line to the
// real stderr through stamp_log_line(): so every log line is JSON with "ts", whoever wrote it
// (the server, the executor, libcgroup, a zygote's interpreter). A process rather than a
// thread: the server forks sandboxes with clone3, which runs no atfork handlers, and a thread
// holding a lock at that moment would leave it held in the child. A process also outlives a
// crash of the server long enough to pass on its last lines: it exits when every writer is
// gone.
#pragma once

#include <sys/types.h>

#include <boost/asio/any_io_executor.hpp>
#include <memory>
#include <optional>

#include "base/sys/unique_fd.hpp"
#include "jail/child.hpp"

namespace pysandbox::beast_server {

class LogRelay {
 public:
  // Forks the relay and points fd 2 at it; nullopt (fd 2 untouched) if that fails. Call while
  // the process is single-threaded and before any child is started (children inherit fd 2).
  static std::optional<LogRelay> start();

  LogRelay(LogRelay&& other) noexcept;
  LogRelay& operator=(LogRelay&&) = delete;
  LogRelay(const LogRelay&) = delete;
  LogRelay& operator=(const LogRelay&) = delete;
  // finish() if not done.
  ~LogRelay();

  // Registers the relay as a child the server owns (jail::Child), so that a sweep for
  // children nobody owns (a dead zygote's orphans) leaves it alone. Call before the executor
  // starts; the relay must be finish()ed before `io`'s io_context goes.
  void watch(const boost::asio::any_io_executor& io);

  // Points fd 2 back at the real stderr, lets the relay pass on what is left and reaps it
  // (waiting at most a couple of seconds). Idempotent.
  void finish();

 private:
  LogRelay(pid_t pid, base::sys::UniqueFd original_stderr);

  pid_t pid_ = -1;
  base::sys::UniqueFd original_stderr_;
  std::unique_ptr<jail::Child> child_;
};

// The relay's loop: reads lines from `in` until EOF and writes them stamped to `out`. Returns
// when `in` is at EOF (or fails). Exposed for tests.
void relay_log_lines(int in, int out);

}  // namespace pysandbox::beast_server
