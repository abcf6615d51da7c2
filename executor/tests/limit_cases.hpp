// Runs that every mode must end the same way (a limit, or a fatal signal), and what every mode
// measures, shared by the sandbox and rlimit executors' suites: each checks its own executor.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "executor/types.hpp"

namespace pysandbox::executor {

struct LimitCase {
  const char* name;
  const char* script;
  std::chrono::milliseconds timeout;
  std::uint64_t memory_bytes;
  Status status;
  int signal = 0;  // kKilled: by this one, which the message names
  const char* signal_name = "";
  std::size_t stdout_size = 0;  // > 0: exactly this much stdout was kept (the cap)
};

// The suites' executors keep 64 KiB of each stream.
inline constexpr std::size_t kSuiteOutputCap = 64 * 1024;

inline const LimitCase kLimitCases[] = {
    {"an infinite loop times out", "def main():\n    while True:\n        pass\n",
     std::chrono::milliseconds(500), 256ull << 20, Status::kTimeout},
    {"sleeping children do not outlive the timeout",
     "import os, time\n"
     "def main():\n"
     "    if os.fork() == 0:\n"
     "        try:\n"
     "            os.setsid()\n"
     "        except OSError:\n"
     "            pass\n"
     "        time.sleep(1000)\n"
     "    time.sleep(1000)\n",
     std::chrono::milliseconds(500), 256ull << 20, Status::kTimeout},
    {"a memory blow-up is memory_limit",
     "def main():\n    x = bytearray(600 * 1024 * 1024)\n    return len(x)\n",
     std::chrono::seconds(10), 128ull << 20, Status::kMemoryLimit},
    {"flooding stdout stops at the cap",
     "import sys\ndef main():\n    while True:\n        sys.stdout.write('x' * 65536)\n",
     std::chrono::seconds(10), 256ull << 20, Status::kOutputLimit, 0, "", kSuiteOutputCap},
    // A real fault: the sandbox's first process ignores a signal it sends itself with the default
    // action (pid_namespaces(7)).
    {"a segfault is killed by SIGSEGV", "import ctypes\ndef main():\n    ctypes.string_at(0)\n",
     std::chrono::seconds(10), 256ull << 20, Status::kKilled, SIGSEGV, "SIGSEGV"},
};

inline void expect_limit_outcome(const LimitCase& c, const RunOutcome& o) {
  EXPECT_EQ(o.status, c.status) << c.name << ": " << o.message << o.stderr_data;
  if (c.status == Status::kTimeout) {
    EXPECT_TRUE(o.ran) << c.name;
    EXPECT_LT(o.usage.wall_ms, 3000) << c.name;
  }
  if (c.signal != 0) {
    EXPECT_EQ(o.signal, c.signal) << c.name;
    EXPECT_NE(o.message.find(c.signal_name), std::string::npos) << c.name << ": " << o.message;
  }
  if (c.stdout_size > 0) {
    EXPECT_EQ(o.stdout_data.size(), c.stdout_size) << c.name;
  }
}

// A run that ended normally was measured: wall time, CPU and its interpreter's memory.
inline void expect_usage_measured(const RunOutcome& o) {
  EXPECT_TRUE(o.ran);
  EXPECT_GT(o.usage.wall_ms, 0);
  EXPECT_GT(o.usage.cpu_ms, 0);
  EXPECT_GT(o.usage.peak_memory_bytes, 1u << 20);
}

}  // namespace pysandbox::executor
