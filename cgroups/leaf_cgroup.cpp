#include "cgroups/leaf_cgroup.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <utility>

#include "cgroups/cgroup_kill.hpp"
#include "cgroups/cgroupfs.hpp"
#include "cgroups/sandboxes.hpp"

namespace pysandbox::cgroups {

namespace {

// The destructor runs on the event loop: SIGKILLed processes are normally gone within a few ms;
// past this the leaf goes to the reaper instead of blocking longer.
constexpr std::chrono::milliseconds kDestructorGrace{100};

constexpr std::uint32_t kMinCpuUsec = 1000;        // kernel: quota and period >= 1 ms
constexpr std::uint32_t kMaxPeriodUsec = 1000000;  // kernel: period <= 1 s

}  // namespace

std::string format_cpu_max(double cores, std::uint32_t period_usec) {
  period_usec = std::clamp(period_usec, kMinCpuUsec, kMaxPeriodUsec);
  if (!(cores > 0)) return "max " + std::to_string(period_usec);
  const double quota = std::max(std::round(cores * period_usec), double{kMinCpuUsec});
  return std::to_string(static_cast<std::uint64_t>(quota)) + " " + std::to_string(period_usec);
}

LeafCgroup::LeafCgroup(std::shared_ptr<detail::Sandboxes> sandboxes, std::string name,
                       base::sys::UniqueFd dir_fd)
    : sandboxes_(std::move(sandboxes)),
      name_(std::move(name)),
      path_(sandboxes_->leaf_path(name_)),
      dir_fd_(std::move(dir_fd)) {}

LeafCgroup::LeafCgroup(LeafCgroup&& other) noexcept
    : sandboxes_(std::move(other.sandboxes_)),
      name_(std::move(other.name_)),
      path_(std::move(other.path_)),
      dir_fd_(std::move(other.dir_fd_)) {
  other.sandboxes_.reset();
}

LeafCgroup& LeafCgroup::operator=(LeafCgroup&& other) noexcept {
  if (this != &other) {
    destroy_now();
    sandboxes_ = std::move(other.sandboxes_);
    other.sandboxes_.reset();
    name_ = std::move(other.name_);
    path_ = std::move(other.path_);
    dir_fd_ = std::move(other.dir_fd_);
  }
  return *this;
}

LeafCgroup::~LeafCgroup() { destroy_now(); }

void LeafCgroup::destroy_now() noexcept {
  if (!sandboxes_) return;
  try {
    sandboxes_->destroy_or_adopt(name_, dir_fd_.get(), kDestructorGrace);
  } catch (...) {
    // Allocation failure while formatting a message: nothing more can be done here.
  }
  sandboxes_.reset();
  dir_fd_.reset();
}

Result<void> LeafCgroup::kill() {
  if (!dir_fd_) return Error(EBADF, "kill " + path_ + ": leaf already destroyed");
  return detail::kill_cgroup(dir_fd_.get(), path_);
}

Result<bool> LeafCgroup::is_populated() const {
  if (!dir_fd_) return Error(EBADF, "read " + path_ + "/cgroup.events: leaf already destroyed");
  return detail::read_populated(dir_fd_.get(), path_);
}

Result<LeafStats> LeafCgroup::stats() const {
  if (!dir_fd_) return Error(EBADF, "stats of " + path_ + ": leaf already destroyed");
  const int fd = dir_fd_.get();
  LeafStats stats;
  const bool has_peak = sandboxes_ && sandboxes_->config().memory_peak;
  const char* memory_file = has_peak ? "memory.peak" : "memory.current";
  auto memory = fs::read_file_at(fd, path_, memory_file);
  if (!memory) return memory.error();
  auto bytes = fs::parse_u64(*memory);
  if (!bytes) return Error(EPROTO, "parse " + fs::join(path_, memory_file) + ": " + *memory);
  stats.memory_peak_bytes = *bytes;
  stats.memory_peak_exact = has_peak;

  auto events = fs::read_file_at(fd, path_, "memory.events");
  if (!events) return events.error();
  parse_memory_events(*events, stats);
  auto cpu = fs::read_file_at(fd, path_, "cpu.stat");
  if (!cpu) return cpu.error();
  parse_cpu_stat(*cpu, stats);
  auto pids = fs::read_file_at(fd, path_, "pids.events");
  if (!pids) return pids.error();
  parse_pids_events(*pids, stats);
  return stats;
}

boost::asio::awaitable<Result<void>> LeafCgroup::async_destroy() {
  // From here on this frame is the only owner: if it is destroyed while suspended (io_context
  // shut down), `self`'s destructor still kills and removes the leaf.
  LeafCgroup self(std::move(*this));
  if (!self.sandboxes_) co_return Result<void>();
  detail::Sandboxes& sandboxes = *self.sandboxes_;

  Result<void> outcome = detail::kill_cgroup(self.dir_fd_.get(), self.path_);
  if (outcome) {
    outcome = co_await detail::async_wait_unpopulated(self.dir_fd_.get(), self.path_,
                                                      sandboxes.config().kill_timeout);
  }
  if (outcome) outcome = sandboxes.remove(self.name_);
  if (!outcome) sandboxes.adopt(self.name_, outcome.error());
  // Removed, or owned by the reaper now: either way `self` must not act again.
  self.dir_fd_.reset();
  self.sandboxes_.reset();
  co_return outcome;
}

}  // namespace pysandbox::cgroups
