// The scaffolding every startup probe shares: fork a throwaway child, run a function in it, read
// what it reports through a pipe, reap it -- in bounded time.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace pysandbox::probe {

// One (step, errno) record, written by the child for each step it got to.
struct Record {
  std::int32_t step = 0;
  std::int32_t err = 0;
};

// Async-signal-safe: for the child's side.
void report(int fd, int step, int err) noexcept;

struct ChildOptions {
  unsigned long clone_flags = 0;  // CLONE_NEW* for the child
  bool via_clone3 = false;        // fork with clone3 rather than clone (clone_flags must be 0)
  // The child is killed when it has not finished by then (a probe must never hang startup).
  std::chrono::milliseconds timeout{10000};
};

struct ChildRun {
  int fork_err = 0;       // errno of the fork (or of making the pipe); no child then
  std::string fork_call;  // "clone", "clone3" or "pipe", when fork_err is set
  std::vector<Record> records;
  bool timed_out = false;
};

// Forks (all signals blocked around it, so no handler runs in the child), runs `child(report_fd)`
// in the child -- async-signal-safe code only; the child exits with 0 when it returns -- and in
// the parent `parent(pid)` if given (for a handshake; it returns true when it reaped the child
// itself), then reads the child's records until it exits, and reaps it.
ChildRun run_in_child(const std::function<void(int report_fd)>& child, const ChildOptions& options,
                      const std::function<bool(pid_t pid)>& parent = {});
inline ChildRun run_in_child(const std::function<void(int report_fd)>& child) {
  return run_in_child(child, ChildOptions{});
}

}  // namespace pysandbox::probe
