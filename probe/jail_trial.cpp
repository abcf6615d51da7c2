#include "probe/jail_trial.hpp"

#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "jail/sandbox_init.hpp"

namespace pysandbox::probe {

TrialRun jail_trial(const jail::NamespaceSpawner& spawner, jail::RunParams params) {
  auto spawned = spawner.spawn(params);
  if (!spawned) return {false, "clone3: " + spawned.error().message()};
  const jail::ChannelReport report = jail::read_channel_blocking(spawned->channel.get());
  siginfo_t info{};
  while (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(spawned->pidfd.get()), &info,
                  WEXITED) != 0) {
    if (errno != EINTR) return {false, std::string("waitid: ") + std::strerror(errno)};
  }
  if (report.setup_failed) {
    const auto& r = *report.setup_failed;
    return {false, spawner.describe(jail::SetupFailure{r.step, r.index, r.err})};
  }
  if (!report.exited) return {false, "the sandbox's init ended without a report"};
  if (report.exited->status != 0) {
    return {false, "probe process " + jail::describe_wait_status(report.exited->status)};
  }
  return {true, {}};
}

}  // namespace pysandbox::probe
