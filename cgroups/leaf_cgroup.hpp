// One request's cgroup: <own>/<base>/sandboxes/<name>, created with its limits already written,
// so a child cloned into it with clone3(CLONE_INTO_CGROUP, dir_fd()) never runs outside them.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "base/sys/unique_fd.hpp"
#include "cgroups/error.hpp"
#include "cgroups/stats.hpp"

namespace pysandbox::cgroups {

namespace detail {
class Sandboxes;
}

struct LeafLimits {
  std::uint64_t memory_max_bytes = 0;  // memory.max; 0 = no limit ("max")
  std::uint32_t pids_max = 0;          // pids.max (processes + threads); 0 = "max"
  double cpu_max_cores = 0;            // cpu.max quota = cores * period; <= 0 = "max"
  std::uint32_t cpu_period_usec = 100000;
};

// cpu.max's "<quota> <period>" for a fraction of cores: 0.2 -> "20000 100000". The kernel
// rejects quotas below 1 ms and periods outside [1 ms, 1 s]; both are clamped into range.
std::string format_cpu_max(double cores, std::uint32_t period_usec);

// Move-only owner of a leaf. Exactly one of these removes it: async_destroy() (the normal path),
// or the destructor (best effort: kill, wait briefly, rmdir, else the StaleLeafReaper).
class LeafCgroup {
 public:
  LeafCgroup(LeafCgroup&& other) noexcept;
  LeafCgroup& operator=(LeafCgroup&& other) noexcept;
  LeafCgroup(const LeafCgroup&) = delete;
  LeafCgroup& operator=(const LeafCgroup&) = delete;
  ~LeafCgroup();

  // The leaf directory, O_RDONLY|O_DIRECTORY|O_CLOEXEC: clone_args.cgroup for CLONE_INTO_CGROUP.
  // -1 after destruction or move.
  int dir_fd() const noexcept { return dir_fd_.get(); }
  std::string path() const { return path_; }

  // SIGKILLs everything in the leaf (cgroup.kill). Does not wait; the leaf stays.
  Result<void> kill();

  // memory.peak, memory.events, cpu.stat, pids.events. Call after the run, before teardown.
  Result<LeafStats> stats() const;

  // cgroup.events "populated".
  Result<bool> is_populated() const;

  // Teardown without blocking the event loop: cgroup.kill, wait (inotify on cgroup.events,
  // bounded by DelegationOptions::kill_timeout) for "populated 0", rmdir. Ownership moves into
  // the coroutine when it starts, so *this is empty afterwards whatever happens; if the leaf
  // cannot be removed in time it goes to the StaleLeafReaper and the error says why.
  boost::asio::awaitable<Result<void>> async_destroy();

 private:
  friend class Delegation;
  LeafCgroup(std::shared_ptr<detail::Sandboxes> sandboxes, std::string name,
             base::sys::UniqueFd dir_fd);
  void destroy_now() noexcept;

  std::shared_ptr<detail::Sandboxes> sandboxes_;  // null: owns nothing
  std::string name_;
  std::string path_;
  base::sys::UniqueFd dir_fd_;
};

}  // namespace pysandbox::cgroups
