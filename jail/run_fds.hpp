// The fds of one run, named: what the sandbox's runner finds at 0..4, in this order (runner.py
// reads its script from 3 and writes its result to 4). The channel to the sandbox's init follows
// at 5 (jail/sandbox_init.hpp). Cold and warm starts place the same layout.
#pragma once

#include <array>

namespace pysandbox::jail {

inline constexpr int kRunFdCount = 5;

struct RunFds {
  int stdin_data = -1;
  int out = -1;
  int err = -1;
  int script = -1;
  int result = -1;

  // Index i holds what becomes fd i of the sandbox.
  std::array<int, kRunFdCount> in_order() const { return {stdin_data, out, err, script, result}; }

  // The same fd everywhere (/dev/null for probes and sandboxes made ahead of their run).
  static RunFds all(int fd) { return {fd, fd, fd, fd, fd}; }
};

}  // namespace pysandbox::jail
