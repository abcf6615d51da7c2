// What both executors (sandbox and rlimit) set up and report the same way for one run.
#pragma once

#include <boost/system/result.hpp>
#include <chrono>
#include <string>

#include "base/sys/syscalls.hpp"
#include "executor/types.hpp"

namespace pysandbox::executor {

// The pipes and memfds of one run. The parent keeps the read ends; the child gets the rest.
struct RunIo {
  base::sys::UniqueFd script, stdin_data;
  base::sys::Pipe out, err, result;
};

boost::system::result<RunIo> make_run_io(const ExecuteRequest& request);

// kInternal with the generic client sentence; `detail` goes to the log only.
RunOutcome internal_error(Isolation mode, std::string detail);

// "SIGKILL", or "signal N" for an unnamed one.
std::string signal_name(int sig);

inline double ms_between(std::chrono::steady_clock::time_point a,
                         std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace pysandbox::executor
