// The life of a run once its sandbox exists, the same for every mode and start path: drain
// stdout, stderr and the result channel (capped), watch the setup channel, the exit, the deadline
// and the caller's cancellation; kill the sandbox when a limit is hit. A run ends when its sandbox
// ends: once no process of it is left, what its streams already hold is read and, after a short
// grace, the streams are closed whether or not they reached EOF (their write ends may still be
// held as fds in flight in a unix socket that nothing can reach any more).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <optional>

#include "base/sys/syscalls.hpp"
#include "cgroups/stats.hpp"
#include "executor/cancel.hpp"
#include "executor/output_capture.hpp"
#include "executor/run_io.hpp"
#include "executor/sandbox_process.hpp"
#include "executor/settings.hpp"
#include "jail/sandbox_init.hpp"

namespace pysandbox::executor {

using Clock = std::chrono::steady_clock;

// The parent's read ends of a run's channels.
struct RunStreams {
  base::sys::UniqueFd out, err, result;
  // The sandbox's channel (jail/sandbox_init.hpp): setup failure, running, exited; EOF when its
  // init is gone.
  base::sys::UniqueFd channel;
};

struct SuperviseLimits {
  std::chrono::milliseconds timeout{5000};  // from the start of supervise()
  std::size_t max_output_bytes = 1 << 20;   // each of stdout, stderr, the result channel
  bool truncate_output = false;             // stdout/stderr past the cap: cut instead of kill
  // After kill(), how long the sandbox's init may take to end it before it is killed too.
  std::chrono::milliseconds kill_grace{2000};
  // How long the streams may take to reach EOF once no process of the sandbox is left. Whatever
  // was written before the end is already buffered and is read regardless.
  std::chrono::milliseconds drain_grace{200};
};

struct Supervised {
  explicit Supervised(const SuperviseLimits& limits)
      : out(limits.max_output_bytes),
        err(limits.max_output_bytes),
        result(limits.max_output_bytes),
        channel(16 * sizeof(jail::ChannelRecord)) {}

  BoundedBuffer out, err, result, channel;
  jail::ChannelReport report;  // what the channel said, decoded
  base::sys::Result<base::sys::ExitStatus> exit = boost::system::error_code{};
  std::optional<cgroups::LeafStats> cgroup;
  bool timed_out = false;
  bool output_limited = false;  // stdout/stderr (not truncating) or the result past the cap
  bool cancelled = false;
  bool streams_cut = false;  // some stream had no EOF within drain_grace after the end
  Clock::time_point started, executing, exited, done;
};

// Supervises `sandbox` to its end and tears it down. `cancel` may be null.
boost::asio::awaitable<Supervised> supervise(SandboxProcess& sandbox, RunStreams streams,
                                             const SuperviseLimits& limits, CancelSignal* cancel);

// supervise() for a run of `request` under `settings`: the parent keeps the read ends of `io`
// and closes the rest (only the sandbox may hold the write ends: EOF then means every process in
// it closed them); `channel` is the sandbox's.
boost::asio::awaitable<Supervised> supervise_run(SandboxProcess& sandbox, RunIo io,
                                                 base::sys::UniqueFd channel,
                                                 const ExecuteRequest& request,
                                                 const Settings& settings);

// Makes the kernel collect unreachable fds in flight now: releasing any unix socket runs the
// garbage collector when fds are in flight (net/unix/garbage.c). A sandbox that parked its own
// pipes, memfds or tmpfs files in a cycle of sockets would otherwise keep them (and the memory
// they pin) until some unrelated socket is released on the host.
void collect_fds_in_flight() noexcept;

}  // namespace pysandbox::executor
