#include "beast_server/fd_budget.hpp"

#include <dirent.h>
#include <sys/resource.h>

#include <algorithm>

namespace pysandbox::beast_server {

std::variant<FdPlan, std::string> plan_fd_budget(std::uint64_t limit, std::uint64_t baseline,
                                                 unsigned max_concurrency, unsigned zygotes,
                                                 std::size_t configured_max_connections) {
  FdPlan plan;
  plan.limit = limit;
  plan.baseline = baseline;
  plan.reserved = std::uint64_t{max_concurrency} * kFdsPerRun +
                  std::uint64_t{zygotes} * kFdsPerZygote + kFdSlack;
  const std::uint64_t used = baseline + plan.reserved;
  const std::uint64_t room = limit > used ? limit - used : 0;
  if (room < kMinConnections) {
    return "RLIMIT_NOFILE is " + std::to_string(limit) + ": with " + std::to_string(baseline) +
           " descriptors open and " + std::to_string(plan.reserved) + " reserved for " +
           std::to_string(max_concurrency) + " concurrent runs and the warm pool, fewer than " +
           std::to_string(kMinConnections) +
           " connections would fit; raise the limit (ulimit -n) or lower --max-concurrency";
  }
  plan.max_connections = static_cast<std::size_t>(
      std::min<std::uint64_t>(room, std::uint64_t{configured_max_connections}));
  return plan;
}

bool room_for_run(std::uint64_t open, std::uint64_t limit) {
  // Keep a few for accepting (and refusing) connections meanwhile.
  return open + kFdsPerRun + kFdSlack / 4 <= limit;
}

NofileLimit raise_nofile_limit() {
  NofileLimit out;
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return out;
  out.soft_before = limit.rlim_cur;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  out.soft = limit.rlim_cur;
  out.hard = limit.rlim_max;
  return out;
}

std::uint64_t nofile_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  return limit.rlim_cur;
}

std::uint64_t count_open_fds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  std::uint64_t count = 0;
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  ::closedir(dir);
  // The directory stream's own descriptor was listed too.
  return count > 0 ? count - 1 : 0;
}

}  // namespace pysandbox::beast_server
