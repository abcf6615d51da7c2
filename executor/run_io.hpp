// What both executors (sandbox and rlimit) set up and report the same way for one run.
#pragma once

#include <array>
#include <boost/system/result.hpp>
#include <chrono>
#include <string>

#include "base/sys/syscalls.hpp"
#include "executor/settings.hpp"
#include "executor/types.hpp"
#include "jail/namespace_spawner.hpp"

namespace pysandbox::executor {

// The pipes and memfds of one run. The parent keeps the read ends; the child gets the rest.
struct RunIo {
  base::sys::UniqueFd script, stdin_data;
  base::sys::Pipe out, err, result;

  // What becomes fds 0..4 of the sandbox.
  jail::RunFds child_fds() const {
    return {.stdin_data = stdin_data.get(),
            .out = out.write.get(),
            .err = err.write.get(),
            .script = script.get(),
            .result = result.write.get()};
  }
};

boost::system::result<RunIo> make_run_io(const ExecuteRequest& request);

// The rlimits of a run of `request`, before a mode with a cgroup loosens the ones it replaces.
// RLIMIT_AS is the memory limit without cgroups: it counts reservations, so it is strict, but it
// is the only per-process bound there. RLIMIT_CPU is a backstop one second past the deadline.
jail::Rlimits request_rlimits(const ExecuteRequest& request, const Settings& settings);

// kInternal with the generic client sentence; `detail` goes to the log only.
RunOutcome internal_error(Isolation mode, std::string detail);

// "SIGKILL", or "signal N" for an unnamed one.
std::string signal_name(int sig);

inline double ms_between(std::chrono::steady_clock::time_point a,
                         std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace pysandbox::executor
