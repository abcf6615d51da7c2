#include "probe/child.hpp"

#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "base/sys/block_signals.hpp"
#include "base/sys/syscalls.hpp"

namespace pysandbox::probe {

namespace {

long fork_child(const ChildOptions& options) noexcept {
  if (!options.via_clone3) {
    return ::syscall(SYS_clone, options.clone_flags | SIGCHLD, nullptr, nullptr, nullptr, 0);
  }
  clone_args args{};
  args.exit_signal = SIGCHLD;
  return ::syscall(SYS_clone3, &args, sizeof args);
}

// Reads every record until the child closes the pipe (it exited) or the deadline passes; then the
// child is killed.
void collect(int read_fd, pid_t pid, std::chrono::milliseconds timeout, ChildRun& run) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Record r;
  std::size_t got = 0;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{read_fd, POLLIN, 0};
    const int ready = left.count() > 0 ? ::poll(&p, 1, static_cast<int>(left.count())) : 0;
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) {
      run.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    if (ready < 0) break;
    const ssize_t n = ::read(read_fd, reinterpret_cast<char*>(&r) + got, sizeof r - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
    if (got == sizeof r) {
      run.records.push_back(r);
      got = 0;
    }
  }
}

}  // namespace

void report(int fd, int step, int err) noexcept {
  const Record r{step, err};
  ssize_t ignored = ::write(fd, &r, sizeof r);
  (void)ignored;
}

ChildRun run_in_child(const std::function<void(int report_fd)>& child, const ChildOptions& options,
                      const std::function<bool(pid_t pid)>& parent) {
  ChildRun run;
  auto pipe = base::sys::make_pipe();
  if (!pipe) {
    run.fork_err = pipe.error().value();
    run.fork_call = "pipe";
    return run;
  }
  long pid;
  int fork_err = 0;
  {
    base::sys::BlockAllSignals blocked;
    pid = fork_child(options);
    if (pid < 0) fork_err = errno;
    if (pid == 0) {
      ::close(pipe->read.get());
      if (child) child(pipe->write.get());
      ::_exit(0);
    }
  }
  if (pid < 0) {
    run.fork_err = fork_err;
    run.fork_call = options.via_clone3 ? "clone3" : "clone";
    return run;
  }
  pipe->write.reset();
  const bool reaped = parent && parent(static_cast<pid_t>(pid));
  collect(pipe->read.get(), static_cast<pid_t>(pid), options.timeout, run);
  if (!reaped) (void)base::sys::wait4_blocking(static_cast<pid_t>(pid));
  return run;
}

}  // namespace pysandbox::probe
